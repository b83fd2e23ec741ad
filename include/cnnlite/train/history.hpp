// History: one record per epoch (loss, accuracy, validation loss and accuracy, learning rate,
// wall time), written as CSV (epoch,loss,accuracy,val_loss,val_accuracy,learning_rate,seconds)
// or JSON.
#pragma once

#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "cnnlite/io/csv.hpp"

namespace cnnlite {

/// Metrics of one epoch; validation values are NaN when there is no validation set.
struct EpochRecord {
    std::int64_t epoch = 0;  ///< counted from 1
    double loss = 0;  ///< Mean training loss of the epoch.
    double accuracy = 0;  ///< Training accuracy of the epoch.

    /// Validation loss (NaN without validation).
    double val_loss = std::numeric_limits<double>::quiet_NaN();
    /// Validation accuracy (NaN without validation).
    double val_accuracy = std::numeric_limits<double>::quiet_NaN();
    /// The optimiser's learning rate at the end of the epoch (of its last step, under a
    /// per-step schedule), as Keras logs `learning_rate`.
    double learning_rate = std::numeric_limits<double>::quiet_NaN();
    double seconds = 0;       ///< wall time of the epoch (training and validation)
    double images_per_second = 0;  ///< training throughput of the epoch
    /// Share of the epoch's steps that ran on one thread instead of the team
    /// (FitOptions::adapt_threads; core/thread_governor.hpp), in [0, 1].
    double one_thread_share = 0;

    /// The value of a metric by name: loss, accuracy, val_loss, val_accuracy.
    double metric(const std::string& name) const {
        if (name == "loss") return loss;
        if (name == "accuracy") return accuracy;
        if (name == "val_loss") return val_loss;
        if (name == "val_accuracy") return val_accuracy;
        fail("unknown metric '", name, "' (known: loss, accuracy, val_loss, val_accuracy)");
    }
};

/// The records of a training run, in epoch order.
struct History {
    /// One record per epoch, in order.
    std::vector<EpochRecord> epochs;

    /// Writes `path` atomically: epoch,loss,accuracy,val_loss,val_accuracy,learning_rate,seconds,
    /// numbers in their shortest exact (round-trip) form.
    void write_csv(const std::string& path) const {
        std::vector<std::vector<CsvCell>> rows;
        for (const auto& e : epochs)
            rows.push_back({e.epoch, e.loss, e.accuracy, e.val_loss, e.val_accuracy, e.learning_rate, e.seconds});
        cnnlite::write_csv(path, {"epoch", "loss", "accuracy", "val_loss", "val_accuracy", "learning_rate", "seconds"},
                           rows);
    }

    /// The records as a JSON array (for checkpoints).
    nlohmann::json to_json() const {
        nlohmann::json out = nlohmann::json::array();
        for (const auto& e : epochs) {
            auto num = [](double v) { return std::isfinite(v) ? nlohmann::json(v) : nlohmann::json(nullptr); };
            out.push_back({{"epoch", e.epoch}, {"loss", num(e.loss)}, {"accuracy", num(e.accuracy)},
                           {"val_loss", num(e.val_loss)}, {"val_accuracy", num(e.val_accuracy)},
                           {"learning_rate", num(e.learning_rate)}, {"seconds", e.seconds},
                           {"images_per_second", e.images_per_second}, {"one_thread_share", e.one_thread_share}});
        }
        return out;
    }
    /// The history from to_json() output.
    static History from_json(const nlohmann::json& in) {
        History h;
        check(in.is_array(), "History: JSON must be an array of epoch records");
        auto num = [](const nlohmann::json& v) {
            return v.is_null() ? std::numeric_limits<double>::quiet_NaN() : v.get<double>();
        };
        for (const auto& r : in) {
            EpochRecord e;
            e.epoch = r.at("epoch").get<std::int64_t>();
            e.loss = num(r.at("loss"));
            e.accuracy = num(r.at("accuracy"));
            e.val_loss = num(r.at("val_loss"));
            e.val_accuracy = num(r.at("val_accuracy"));
            e.seconds = r.at("seconds").get<double>();
            e.images_per_second = r.value("images_per_second", 0.0);
            e.one_thread_share = r.value("one_thread_share", 0.0);  // older checkpoints lack it
            if (r.contains("learning_rate")) e.learning_rate = num(r.at("learning_rate"));  // older checkpoints lack it
            h.epochs.push_back(e);
        }
        return h;
    }
};

}  // namespace cnnlite

// Training recipes in fit(): augmentation, label smoothing, gradient clipping, per-step
// schedules, the exponential moving average of the weights, their checkpoints and resumption,
// and models with buffers in KeepBest and checkpoints.
#include <doctest/doctest.h>

#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "cnnlite/data/fashion_mnist.hpp"
#include "cnnlite/io/safetensors.hpp"
#include "cnnlite/nn/batch_normalization.hpp"
#include "cnnlite/nn/conv2d.hpp"
#include "cnnlite/nn/dense.hpp"
#include "cnnlite/nn/dropout.hpp"
#include "cnnlite/nn/flatten.hpp"
#include "cnnlite/nn/relu.hpp"
#include "cnnlite/nn/sequential.hpp"
#include "cnnlite/optim/adam.hpp"
#include "cnnlite/optim/sgd.hpp"
#include "cnnlite/train/checkpoint.hpp"
#include "cnnlite/train/fit.hpp"
#include "running_mean_layer.hpp"
#include "source_dir.hpp"

namespace test_train_recipes {

using namespace cnnlite;
namespace fs = std::filesystem;

namespace {

const FashionMnist& fixture() {
    static const FashionMnist data = load_fashion_mnist(test_support::source_dir().string() + "/data/fixtures");
    return data;
}

struct TempDir {
    fs::path path;
    TempDir() : path(fs::temp_directory_path() / ("cnnlite_recipes_" + std::to_string(::getpid()))) {
        fs::create_directories(path);
    }
    ~TempDir() {
        std::error_code ec;
        fs::remove_all(path, ec);
    }
    std::string file(const std::string& name) const { return (path / name).string(); }
};

using cnnlite::testing::RunningMean;

/// A small network: Flatten, a buffer, Dense(8, relu), optional Dropout, Dense(10, softmax).
Sequential<float> tiny(std::uint64_t seed = 1, bool dropout = false) {
    Sequential<float> model(Shape{1, 28, 28}, seed);
    model.add(Flatten<float>());
    model.add(std::unique_ptr<Layer<float>>(std::make_unique<RunningMean>()));
    model.add(Dense<float>(8).activation("relu"));
    if (dropout) model.add(Dropout<float>(0.25));
    model.add(Dense<float>(10).activation("softmax"));
    return model;
}

FitOptions quiet(std::int64_t epochs, std::int64_t batch = 32) {
    FitOptions o;
    o.epochs = epochs;
    o.batch_size = batch;
    o.seed = 7;
    o.verbosity = Verbosity::silent;
    return o;
}

std::vector<float> flat(const Model<float>& model) {
    std::vector<float> out;
    for (const auto& p : model.state()) out.insert(out.end(), p.variable.value().begin(), p.variable.value().end());
    return out;
}

std::vector<Tensor<float>> values(const std::vector<Variable<float>>& vars) {
    std::vector<Tensor<float>> out;
    for (const auto& v : vars) out.push_back(v.value().clone());
    return out;
}

bool same_bits(const Tensor<float>& a, const Tensor<float>& b) {
    return a.shape() == b.shape() && a.to_vector() == b.to_vector();
}

Batch first_samples(const Dataset& data, std::int64_t n) {
    Batch batch;
    std::vector<std::int64_t> positions;
    for (std::int64_t i = 0; i < n; ++i) positions.push_back(i);
    gather_batch(data, positions, batch);
    return batch;
}

}  // namespace

TEST_CASE("label smoothing: the training loss is the hand formula, the validation loss is unsmoothed") {
    auto model = tiny();
    const Batch batch = first_samples(fixture().train, 3);
    const double s = 0.2;
    const ForwardAndLoss<float> f = forward_and_loss(model, batch, ForwardContext{}, s);
    double want = 0;
    for (std::int64_t i = 0; i < 3; ++i) {
        const float* z = f.logits.value().data() + i * 10;
        double top = z[0], sum = 0;
        for (int j = 1; j < 10; ++j) top = std::max(top, static_cast<double>(z[j]));
        for (int j = 0; j < 10; ++j) sum += std::exp(z[j] - top);
        for (int j = 0; j < 10; ++j) {
            const double target = (j == batch.labels[static_cast<std::size_t>(i)] ? 1 - s : 0.0) + s / 10;
            want -= target * (z[j] - top - std::log(sum)) / 3;
        }
    }
    CHECK(f.mean_loss == doctest::Approx(want).epsilon(1e-6));
    CHECK(f.mean_loss != doctest::Approx(forward_and_loss(model, batch, ForwardContext{}).mean_loss).epsilon(1e-6));

    // fit() trains on the smoothed loss but reports val_loss as evaluate() does.
    const Dataset train = fixture().train.slice(0, 64), validation = fixture().train.slice(64, 32);
    auto smoothed = tiny();
    Adam<float> adam(smoothed.trainable_variables());
    FitOptions o = quiet(1);
    o.label_smoothing = 0.3;
    const History h = fit(smoothed, adam, train, &validation, o);
    CHECK(h.epochs[0].val_loss == evaluate(smoothed, validation).loss);
    auto plain = tiny();
    Adam<float> plain_adam(plain.trainable_variables());
    fit(plain, plain_adam, train, &validation, quiet(1));
    CHECK(flat(plain) != flat(smoothed));
}

TEST_CASE("gradient clipping bounds the update: one step equals the hand-clipped SGD step") {
    const Batch batch = first_samples(fixture().train, 16);
    const double lr = 0.5, max_norm = 1e-3;
    // The hand step: the same model's gradients, scaled by max_norm / (norm + 1e-6).
    auto reference = tiny();
    const auto before = values(reference.trainable_variables());
    ForwardAndLoss<float> f = forward_and_loss(reference, batch, ForwardContext{});
    f.loss.backward();
    double squares = 0;
    for (const auto& v : reference.trainable_variables())
        for (float g : v.grad()) squares += static_cast<double>(g) * g;
    const double norm = std::sqrt(squares);
    REQUIRE(norm > 10 * max_norm);  // so that clipping acts
    const double scale = max_norm / (norm + 1e-6);

    auto model = tiny();
    SGD<float> sgd(model.trainable_variables(), SGDOptions{lr});
    StepRecipe<float> recipe;
    recipe.clip_grad_norm = max_norm;
    TrainStep<float> step(model, sgd, NonFinitePolicy::error, recipe);
    step(batch, ForwardContext{}, 1, 1);
    const auto vars = model.trainable_variables();
    const auto grads = reference.trainable_variables();
    double moved = 0;
    for (std::size_t k = 0; k < vars.size(); ++k)
        for (std::int64_t i = 0; i < vars[k].value().numel(); ++i) {
            const double want = before[k][i] - lr * scale * grads[k].grad()[i];
            REQUIRE(vars[k].value()[i] == doctest::Approx(want).epsilon(1e-6).scale(1e-6));
            moved += (vars[k].value()[i] - before[k][i]) * static_cast<double>(vars[k].value()[i] - before[k][i]);
        }
    CHECK(std::sqrt(moved) <= lr * max_norm * 1.001);
    CHECK(std::sqrt(moved) >= lr * max_norm * 0.99);

    // Through fit(): every one of the 4 steps moves the weights by at most lr * max_norm.
    auto fitted = tiny();
    const auto start = flat(fitted);
    SGD<float> fit_sgd(fitted.trainable_variables(), SGDOptions{lr});
    FitOptions o = quiet(1, 16);
    o.clip_grad_norm = max_norm;
    fit(fitted, fit_sgd, fixture().train.slice(0, 64), nullptr, o);
    double total = 0;
    const auto trained = values(fitted.trainable_variables());
    auto fresh = tiny();
    const auto initial = values(fresh.trainable_variables());
    for (std::size_t k = 0; k < trained.size(); ++k)
        for (std::int64_t i = 0; i < trained[k].numel(); ++i)
            total += std::abs(static_cast<double>(trained[k][i]) - initial[k][i]);
    CHECK(total > 0);
    double l2 = 0;
    for (std::size_t k = 0; k < trained.size(); ++k)
        for (std::int64_t i = 0; i < trained[k].numel(); ++i)
            l2 += (static_cast<double>(trained[k][i]) - initial[k][i]) * (static_cast<double>(trained[k][i]) - initial[k][i]);
    CHECK(std::sqrt(l2) <= 4 * lr * max_norm * 1.001);
    CHECK(flat(fitted) != start);
}

TEST_CASE("the weight average after k steps is the hand-computed average, and validation uses it") {
    // One step per epoch (the batch is the whole set), so the callbacks see every step's weights.
    const Dataset train = fixture().train.slice(0, 32), validation = fixture().train.slice(32, 32);
    const double decay = 0.6;
    std::vector<std::vector<Tensor<float>>> live;  // weights after each step
    std::vector<double> val_losses, average_losses;
    auto model = tiny();
    const auto initial = values(model.trainable_variables());
    std::vector<std::vector<double>> average;  // the hand average, in double
    for (const auto& t : initial) average.push_back(std::vector<double>(t.begin(), t.end()));
    auto copy = tiny();
    LambdaCallback<float> watch([&](const Model<float>& m, const History& h, TrainControl&) {
        const auto now = values(m.trainable_variables());
        for (std::size_t k = 0; k < now.size(); ++k)
            for (std::int64_t i = 0; i < now[k].numel(); ++i)
                average[k][static_cast<std::size_t>(i)] =
                    decay * average[k][static_cast<std::size_t>(i)] + (1 - decay) * now[k][i];
        live.push_back(now);
        // The validation figure is that of the averaged weights (and the model's buffers).
        auto to = copy.state();
        const auto from = m.state();
        for (std::size_t i = 0; i < to.size(); ++i) to[i].variable.value().copy_from(from[i].variable.value());
        auto vars = copy.trainable_variables();
        for (std::size_t k = 0; k < vars.size(); ++k)
            for (std::int64_t i = 0; i < vars[k].value().numel(); ++i)
                vars[k].value()[i] = static_cast<float>(average[k][static_cast<std::size_t>(i)]);
        val_losses.push_back(h.epochs.back().val_loss);
        average_losses.push_back(evaluate(copy, validation).loss);
    });
    Adam<float> adam(model.trainable_variables(), AdamOptions{0.05});
    FitOptions o = quiet(4, 32);
    o.ema_decay = decay;
    o.ema_overwrite_at_end = false;
    fit(model, adam, train, &validation, o, {&watch});
    REQUIRE(live.size() == 4);
    for (std::size_t e = 0; e < 4; ++e) CHECK(val_losses[e] == doctest::Approx(average_losses[e]).epsilon(1e-5));
    // Without overwrite the model keeps the live weights of the last step.
    const auto last = values(model.trainable_variables());
    for (std::size_t k = 0; k < last.size(); ++k) CHECK(same_bits(last[k], live.back()[k]));

    // The same run with the default overwrite ends with the average.
    auto averaged = tiny();
    Adam<float> adam2(averaged.trainable_variables(), AdamOptions{0.05});
    o.ema_overwrite_at_end = true;
    fit(averaged, adam2, train, &validation, o);
    const auto vars = averaged.trainable_variables();
    bool differs_from_live = false;
    for (std::size_t k = 0; k < vars.size(); ++k)
        for (std::int64_t i = 0; i < vars[k].value().numel(); ++i) {
            REQUIRE(vars[k].value()[i] ==
                    doctest::Approx(average[k][static_cast<std::size_t>(i)]).epsilon(1e-5).scale(1e-3));
            differs_from_live = differs_from_live || vars[k].value()[i] != live.back()[k][i];
        }
    CHECK(differs_from_live);
}

TEST_CASE("augmentation changes the training batches as the Batcher does, never the validation") {
    const Dataset train = fixture().train.slice(0, 32), validation = fixture().train.slice(32, 32);
    const Augmentation augmentation = Augmentation().translate(3).flip_horizontal(0.5).random_erasing(0.5);
    // fit() with one step: the step of a TrainStep on the Batcher's augmented batch.
    auto by_hand = tiny();
    SGD<float> sgd(by_hand.trainable_variables(), SGDOptions{0.1});
    Batcher batcher(train, BatchOptions{32, true, false, 7});
    batcher.set_augmentation(augmentation);
    batcher.start_epoch(0);
    Batch augmented, plain;
    batcher.fill(0, augmented);
    Batcher plain_batcher(train, BatchOptions{32, true, false, 7});
    plain_batcher.fill(0, plain);
    CHECK(augmented.images.to_vector() != plain.images.to_vector());
    TrainStep<float> step(by_hand, sgd);
    step(augmented, ForwardContext{true, 7, 0, augmented.indices.data()}, 1, 1);

    auto fitted = tiny();
    SGD<float> fit_sgd(fitted.trainable_variables(), SGDOptions{0.1});
    FitOptions o = quiet(1, 32);
    o.augmentation = augmentation;
    const History h = fit(fitted, fit_sgd, train, &validation, o);
    CHECK(flat(fitted) == flat(by_hand));
    CHECK(h.epochs[0].val_loss == evaluate(fitted, validation).loss);  // validation as it is

    auto unaugmented = tiny();
    SGD<float> plain_sgd(unaugmented.trainable_variables(), SGDOptions{0.1});
    fit(unaugmented, plain_sgd, train, &validation, quiet(1, 32));
    CHECK(flat(unaugmented) != flat(fitted));
}

TEST_CASE("schedules: per step before every update, per epoch at each epoch, not both") {
    const Dataset train = fixture().train.slice(0, 64);
    auto model = tiny();
    SGD<float> sgd(model.trainable_variables(), SGDOptions{0.1});
    FitOptions o = quiet(2, 16);  // 4 steps per epoch
    o.schedule = LearningRateSchedule::one_cycle(8);
    std::vector<double> rates;
    LambdaCallback<float> watch([&](const Model<float>&, const History&, TrainControl&) { rates.push_back(sgd.learning_rate()); });
    fit(model, sgd, train, nullptr, o, {&watch});
    REQUIRE(sgd.steps() == 8);
    CHECK(rates == std::vector<double>{o.schedule->rate(3, 0.1), o.schedule->rate(7, 0.1)});

    auto model2 = tiny();
    SGD<float> sgd2(model2.trainable_variables(), SGDOptions{0.1});
    o.schedule = LearningRateSchedule::step_decay(1, 0.5);  // per epoch: 0.1, 0.05
    rates.clear();
    LambdaCallback<float> watch2([&](const Model<float>&, const History&, TrainControl&) { rates.push_back(sgd2.learning_rate()); });
    fit(model2, sgd2, train, nullptr, o, {&watch2});
    CHECK(rates == std::vector<double>{0.1, 0.05});

    o.learning_rate_schedule = [](std::int64_t) { return 0.1; };
    CHECK_THROWS_WITH_AS(fit(model2, sgd2, train, nullptr, o), doctest::Contains("FitOptions::schedule and FitOptions::learning_rate_schedule"), Error);
}

TEST_CASE("bad recipe options are refused naming the option") {
    auto model = tiny();
    Adam<float> adam(model.trainable_variables());
    const Dataset train = fixture().train.slice(0, 32);
    struct Case {
        const char* what;
        void (*change)(FitOptions&);
        const char* message;
    };
    const Case cases[] = {
        {"negative smoothing", [](FitOptions& o) { o.label_smoothing = -0.1; }, "FitOptions::label_smoothing must be in [0, 1)"},
        {"smoothing 1", [](FitOptions& o) { o.label_smoothing = 1.0; }, "FitOptions::label_smoothing must be in [0, 1)"},
        {"NaN smoothing", [](FitOptions& o) { o.label_smoothing = std::nan(""); }, "FitOptions::label_smoothing"},
        {"clip 0", [](FitOptions& o) { o.clip_grad_norm = 0.0; }, "FitOptions::clip_grad_norm must be > 0"},
        {"clip -1", [](FitOptions& o) { o.clip_grad_norm = -1.0; }, "FitOptions::clip_grad_norm must be > 0"},
        {"clip NaN", [](FitOptions& o) { o.clip_grad_norm = std::nan(""); }, "FitOptions::clip_grad_norm"},
        {"decay 1", [](FitOptions& o) { o.ema_decay = 1.0; }, "FitOptions::ema_decay must be in [0, 1)"},
        {"decay -0.1", [](FitOptions& o) { o.ema_decay = -0.1; }, "FitOptions::ema_decay must be in [0, 1)"},
        {"translation too large", [](FitOptions& o) { o.augmentation = Augmentation().translate(28); },
         "padding 28 must be smaller than the 28 x 28 image"},
    };
    const auto before = flat(model);
    for (const Case& c : cases) {
        CAPTURE(c.what);
        FitOptions o = quiet(1);
        c.change(o);
        CHECK_THROWS_WITH_AS(fit(model, adam, train, nullptr, o), doctest::Contains(c.message), Error);
    }
    CHECK(flat(model) == before);
    FitOptions resume = quiet(2);
    resume.initial_epoch = 1;
    resume.ema_decay = 0.9;
    CHECK_THROWS_WITH_AS(fit(model, adam, train, nullptr, resume),
                         doctest::Contains("needs the weight average: resume with resume_fit()"), Error);
}

TEST_CASE("resuming from a checkpoint with EMA, augmentation, schedule, clipping and smoothing is bitwise the uninterrupted run") {
    TempDir dir;
    const Dataset train = fixture().train.slice(0, 96), validation = fixture().train.slice(96, 32);
    auto options = [](std::int64_t epochs) {
        FitOptions o = quiet(epochs, 32);
        o.augmentation = Augmentation().translate(2).flip_horizontal().random_erasing(0.5);
        o.label_smoothing = 0.1;
        o.clip_grad_norm = 0.5;
        o.schedule = LearningRateSchedule::linear_warmup(4, LearningRateSchedule::cosine(8, 0, ScheduleUnit::step));
        o.ema_decay = 0.8;
        o.ema_warmup = true;
        return o;
    };
    const auto run = [&](const std::string& path, std::int64_t epochs) {
        auto model = tiny(3, true);
        Adam<float> adam(model.trainable_variables(), AdamOptions{0.01});
        KeepBest<float> best("val_loss");
        Checkpointer<float> checkpointer(path, adam, &best, nullptr);
        fit(model, adam, train, &validation, options(epochs), {&best, &checkpointer});
        return flat(model);
    };
    const auto whole = run(dir.file("whole.ckpt"), 4);
    run(dir.file("half.ckpt"), 2);

    auto model = tiny(99, true);
    Adam<float> adam(model.trainable_variables(), AdamOptions{0.01});
    KeepBest<float> best("val_loss");
    const TrainingState state = load_checkpoint(dir.file("half.ckpt"), model, adam, &best);
    REQUIRE(state.epoch == 2);
    CHECK(state.ema.size() == 1 + model.trainable_variables().size());
    CHECK(state.recipe.at("label_smoothing") == round_trip_text(0.1));
    Checkpointer<float> checkpointer(dir.file("resumed.ckpt"), adam, &best, nullptr);
    FitOptions o = options(4);
    o.initial_epoch = 2;
    const History h = resume_fit(model, adam, train, &validation, o, state, {&best, &checkpointer});
    CHECK(h.epochs.size() == 4);
    CHECK(flat(model) == whole);

    // The two last checkpoints hold the same bits: weights, buffers, optimiser, average, best.
    const auto a = SafetensorsFile::load(dir.file("whole.ckpt"));
    const auto b = SafetensorsFile::load(dir.file("resumed.ckpt"));
    REQUIRE(a.entries().size() == b.entries().size());
    CHECK(a.entries().count("ema.updates") == 1);
    CHECK(a.entries().count("ema.average.0") == 1);
    CHECK(a.entries().count("model.running_mean.running_mean") == 1);
    for (const auto& entry : a.entries()) {
        CAPTURE(entry.first);
        CHECK(same_bits(a.tensor<float>(entry.first), b.tensor<float>(entry.first)));
    }
    CHECK(a.tensor<float>("ema.updates")[0] == 12.0f);
    CHECK(a.require_metadata("recipe") == b.require_metadata("recipe"));
}

TEST_CASE("resuming with other training settings is refused, naming the option") {
    TempDir dir;
    const Dataset train = fixture().train.slice(0, 64);
    FitOptions o = quiet(1, 32);
    o.augmentation = Augmentation().flip_horizontal();
    o.label_smoothing = 0.1;
    o.clip_grad_norm = 1.0;
    o.schedule = LearningRateSchedule::one_cycle(10);
    o.ema_decay = 0.9;
    {
        auto model = tiny();
        Adam<float> adam(model.trainable_variables());
        Checkpointer<float> checkpointer(dir.file("run.ckpt"), adam, nullptr, nullptr);
        fit(model, adam, train, nullptr, o, {&checkpointer});
    }
    struct Case {
        const char* what;
        void (*change)(FitOptions&);
        const char* message;
    };
    const Case cases[] = {
        {"smoothing", [](FitOptions& x) { x.label_smoothing = 0.2; }, "FitOptions::label_smoothing was 0.1"},
        {"clipping", [](FitOptions& x) { x.clip_grad_norm.reset(); }, "FitOptions::clip_grad_norm was 1, now none"},
        {"decay", [](FitOptions& x) { x.ema_decay = 0.99; }, "FitOptions::ema_decay was 0.90000000000000002, now 0.98999999999999999"},
        {"average off", [](FitOptions& x) { x.ema_decay.reset(); }, "FitOptions::ema_decay was 0.90000000000000002, now none"},
        {"augmentation", [](FitOptions& x) { x.augmentation = Augmentation().flip_horizontal(0.25); },
         "FitOptions::augmentation was flip_horizontal(probability=0.5), now flip_horizontal(probability=0.25)"},
        {"schedule", [](FitOptions& x) { x.schedule = LearningRateSchedule::cosine(10, 0, ScheduleUnit::step); },
         "FitOptions::schedule was one_cycle(total_steps=10, pct_start=0.3, div_factor=25, final_div_factor=1e+04) "
         "per step, now cosine(period=10, minimum=0) per step"},
        {"batch size", [](FitOptions& x) { x.batch_size = 16; }, "FitOptions::batch_size was 32, now 16"},
        {"epoch", [](FitOptions& x) { x.initial_epoch = 0; }, "the checkpoint holds 1 epoch(s) but FitOptions::initial_epoch is 0"},
    };
    for (const Case& c : cases) {
        CAPTURE(c.what);
        auto model = tiny(5);
        Adam<float> adam(model.trainable_variables());
        const TrainingState state = load_checkpoint(dir.file("run.ckpt"), model, adam);
        const auto before = flat(model);
        FitOptions changed = o;
        changed.epochs = 2;
        changed.initial_epoch = 1;
        c.change(changed);
        CHECK_THROWS_WITH_AS(resume_fit(model, adam, train, nullptr, changed, state), doctest::Contains(c.message), Error);
        CHECK(flat(model) == before);
    }
    // The same settings resume.
    auto model = tiny(5);
    Adam<float> adam(model.trainable_variables());
    const TrainingState state = load_checkpoint(dir.file("run.ckpt"), model, adam);
    FitOptions same = o;
    same.epochs = 2;
    same.initial_epoch = 1;
    CHECK(resume_fit(model, adam, train, nullptr, same, state).epochs.size() == 2);
}

TEST_CASE("KeepBest and checkpoints copy buffers as well as parameters") {
    auto model = tiny();
    auto buffer = model.buffers().at(0).variable;
    auto parameter = model.parameters().at(0).variable;
    KeepBest<float> best("val_loss");
    History h;
    TrainControl control;
    const double losses[] = {1.0, 0.5, 0.9};
    for (int e = 0; e < 3; ++e) {
        Tensor<float> b = buffer.value();
        b.fill(static_cast<float>(e + 1));
        parameter.value()[0] = static_cast<float>(10 * (e + 1));
        EpochRecord r;
        r.epoch = e + 1;
        r.val_loss = losses[e];
        h.epochs.push_back(r);
        best.on_epoch_end(model, h, control);
    }
    REQUIRE(best.best_epoch() == 2);
    CHECK(best.weights().size() == model.state().size());
    best.restore(model);
    for (float v : buffer.value()) REQUIRE(v == 2.0f);
    CHECK(parameter.value()[0] == 20.0f);

    // A checkpoint round trip brings back the buffer and the kept buffer.
    TempDir dir;
    Adam<float> adam(model.trainable_variables());
    buffer.value().fill(3.0f);
    TrainingState state;
    state.epoch = 3;
    state.history = h;
    save_checkpoint(dir.file("buffers.ckpt"), model, adam, state, &best, static_cast<const EarlyStopping<float>*>(nullptr));
    auto other = tiny(2);
    Adam<float> other_adam(other.trainable_variables());
    KeepBest<float> other_best("val_loss");
    load_checkpoint(dir.file("buffers.ckpt"), other, other_adam, &other_best);
    for (float v : other.buffers().at(0).variable.value()) REQUIRE(v == 3.0f);
    other_best.restore(other);
    for (float v : other.buffers().at(0).variable.value()) REQUIRE(v == 2.0f);
    CHECK(other.parameters().at(0).variable.value()[0] == 20.0f);
}

TEST_CASE("BatchNormalization's num_batches_tracked is checkpointed: a resumed run counts on bitwise as the uninterrupted one") {
    TempDir dir;
    const Dataset train = fixture().train.slice(0, 96), validation = fixture().train.slice(96, 32);
    const auto network = [](std::uint64_t seed) {
        Sequential<float> model(Shape{1, 28, 28}, seed);
        model.add(Conv2D<float>(4, 3).strides(2, 2).use_bias(false));
        model.add(BatchNormalization<float>(BatchNormConvention::torch));
        model.add(ReLU<float>());
        model.add(Flatten<float>());
        model.add(Dense<float>(8).use_bias(false));
        model.add(BatchNormalization<float>());
        model.add(ReLU<float>());
        model.add(Dense<float>(10).activation("softmax"));
        return model;
    };
    const auto counts = [](const Model<float>& model) {
        std::vector<std::int64_t> out;
        for (const auto& c : model.counters()) out.push_back(c.value[0]);
        return out;
    };
    const auto run = [&](const std::string& path, std::int64_t epochs) {
        auto model = network(3);
        Adam<float> adam(model.trainable_variables(), AdamOptions{0.01});
        Checkpointer<float> checkpointer(path, adam, nullptr, nullptr);
        fit(model, adam, train, &validation, quiet(epochs), {&checkpointer});
        return std::make_pair(flat(model), counts(model));
    };
    const auto whole = run(dir.file("whole.ckpt"), 4);
    CHECK(whole.second == std::vector<std::int64_t>{12, 12});  // 4 epochs of 3 batches
    run(dir.file("half.ckpt"), 2);

    auto model = network(99);
    Adam<float> adam(model.trainable_variables(), AdamOptions{0.01});
    const TrainingState state = load_checkpoint(dir.file("half.ckpt"), model, adam);
    CHECK(counts(model) == std::vector<std::int64_t>{6, 6});
    Checkpointer<float> checkpointer(dir.file("resumed.ckpt"), adam, nullptr, nullptr);
    FitOptions o = quiet(4);
    o.initial_epoch = 2;
    resume_fit(model, adam, train, &validation, o, state, {&checkpointer});
    CHECK(flat(model) == whole.first);  // weights and running statistics
    CHECK(counts(model) == whole.second);

    // The checkpoints hold the same bits; the counts as 0-d I64, as in model files.
    const auto a = SafetensorsFile::load(dir.file("whole.ckpt"));
    const auto b = SafetensorsFile::load(dir.file("resumed.ckpt"));
    REQUIRE(a.entries().size() == b.entries().size());
    const std::string counter = "model.batch_normalization.num_batches_tracked";
    REQUIRE(a.contains(counter));
    CHECK(a.entry(counter).dtype == SafetensorsDtype::I64);
    CHECK(a.entry(counter).shape == Shape{});
    for (const auto& entry : a.entries()) {
        CAPTURE(entry.first);
        if (entry.second.dtype == SafetensorsDtype::I64)
            CHECK(a.tensor<std::int64_t>(entry.first).to_vector() == b.tensor<std::int64_t>(entry.first).to_vector());
        else
            CHECK(same_bits(a.tensor<float>(entry.first), b.tensor<float>(entry.first)));
    }

    // A count of the wrong dtype is refused naming it; a checkpoint without counts (from before
    // format version 3) restores everything else and leaves the counts as they are.
    const auto copy_without = [&](const std::string& to, bool as_float) {
        SafetensorsWriter writer;
        for (const auto& [name, entry] : a.entries()) {
            if (entry.dtype == SafetensorsDtype::I64) {
                if (as_float) writer.add(name, a.tensor<std::int64_t>(name).cast<float>());
            } else {
                writer.add(name, a.tensor<float>(name));
            }
        }
        for (const auto& [key, value] : a.metadata()) writer.set_metadata(key, value);
        writer.save(to);
    };
    copy_without(dir.file("float_count.ckpt"), true);
    auto other = network(5);
    Adam<float> other_adam(other.trainable_variables(), AdamOptions{0.01});
    const auto before = flat(other);
    CHECK_THROWS_WITH_AS(load_checkpoint(dir.file("float_count.ckpt"), other, other_adam),
                         doctest::Contains("tensor 'model.batch_normalization.num_batches_tracked' has dtype F32, "
                                           "expected I64 (a count)"),
                         Error);
    CHECK(flat(other) == before);
    copy_without(dir.file("old.ckpt"), false);
    load_checkpoint(dir.file("old.ckpt"), other, other_adam);
    CHECK(flat(other) == whole.first);
    CHECK(counts(other) == std::vector<std::int64_t>{0, 0});
}

TEST_CASE("with a weight average, KeepBest keeps the averaged weights that validation measured") {
    const Dataset train = fixture().train.slice(0, 32), validation = fixture().train.slice(32, 32);
    auto model = tiny();
    Adam<float> adam(model.trainable_variables(), AdamOptions{0.05});
    KeepBest<float> best("val_loss");
    FitOptions o = quiet(3, 32);
    o.ema_decay = 0.5;
    const History h = fit(model, adam, train, &validation, o, {&best});
    REQUIRE(best.best_epoch() >= 1);
    best.restore(model);
    CHECK(evaluate(model, validation).loss == doctest::Approx(h.epochs[static_cast<std::size_t>(best.best_epoch() - 1)].val_loss).epsilon(1e-12));
}

}  // namespace test_train_recipes

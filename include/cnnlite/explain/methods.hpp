// One entry point for every explanation method, and the comparison table of the methods'
// faithfulness (deletion and insertion AUC with bootstrap intervals, ROAD) and speed on a sample
// of images, as the pipeline writes it to methods.csv, optionally with a method's maps of a
// randomised-weights copy of the model as a baseline.
#pragma once

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "cnnlite/explain/bootstrap.hpp"
#include "cnnlite/explain/deletion_insertion.hpp"
#include "cnnlite/explain/gradcam.hpp"
#include "cnnlite/explain/gradcam_plus_plus.hpp"
#include "cnnlite/explain/hirescam.hpp"
#include "cnnlite/explain/integrated_gradients.hpp"
#include "cnnlite/explain/layercam.hpp"
#include "cnnlite/explain/randomisation.hpp"
#include "cnnlite/explain/road.hpp"
#include "cnnlite/explain/saliency.hpp"
#include "cnnlite/explain/score_cam.hpp"
#include "cnnlite/explain/smoothgrad.hpp"

namespace cnnlite::explain {

/// The explanation methods, plus a random-map baseline.
enum class Method {
    grad_cam,
    grad_cam_plus_plus,
    hires_cam,
    layer_cam,
    score_cam,
    saliency,
    smoothgrad,
    integrated_gradients,
    random
};

/// Display name: "Grad-CAM", "Grad-CAM++", "HiResCAM", "LayerCAM", "Score-CAM", "Saliency",
/// "SmoothGrad", "Integrated Gradients", "Random".
inline const char* to_string(Method m) {
    switch (m) {
        case Method::grad_cam: return "Grad-CAM";
        case Method::grad_cam_plus_plus: return "Grad-CAM++";
        case Method::hires_cam: return "HiResCAM";
        case Method::layer_cam: return "LayerCAM";
        case Method::score_cam: return "Score-CAM";
        case Method::saliency: return "Saliency";
        case Method::smoothgrad: return "SmoothGrad";
        case Method::integrated_gradients: return "Integrated Gradients";
        default: return "Random";
    }
}

/// Every method, the random baseline last.
inline std::vector<Method> all_methods() {
    return {Method::grad_cam,  Method::grad_cam_plus_plus, Method::hires_cam,
            Method::layer_cam, Method::score_cam,          Method::saliency,
            Method::smoothgrad, Method::integrated_gradients, Method::random};
}

/// Settings shared by all methods in explain_with().
struct MethodOptions {
    std::string layer;                    ///< CAM methods: Conv2D layer; empty: the last one
    Target target = Target::predicted();  ///< class explained for each image
    Score score = Score::probability;     ///< differentiated score of the target class
    PostProcess post;                     ///< ReLU, normalisation, upsampling
    std::int64_t chunk_size = 256;        ///< images per forward/backward pass
    int smoothgrad_samples = 25;          ///< SmoothGrad: noisy copies per image
    double smoothgrad_noise = 0.15;       ///< SmoothGrad: noise std as a fraction of the value range
    int integrated_gradients_steps = 32;  ///< Integrated Gradients: points on the path
    std::uint64_t seed = 0;               ///< SmoothGrad noise, random maps and randomised weights
};

/// Maps of `images` by `method` with shared `options`. The random baseline's maps come with the
/// model's predictions like the others'.
template <class T>
Explanation explain_with(const Model<T>& model, const Tensor<T>& images, Method method, const MethodOptions& options = {}) {
    CamOptions cam;
    cam.layer = options.layer, cam.target = options.target, cam.score = options.score;
    cam.post = options.post, cam.chunk_size = options.chunk_size;
    const auto common = [&](GradientOptions& g) {
        g.target = options.target, g.score = options.score, g.post = options.post, g.chunk_size = options.chunk_size;
    };
    switch (method) {
        case Method::grad_cam: return grad_cam(model, images, cam);
        case Method::grad_cam_plus_plus: return grad_cam_plus_plus(model, images, cam);
        case Method::hires_cam: return hires_cam(model, images, cam);
        case Method::layer_cam: return layer_cam(model, images, cam);
        case Method::score_cam: return score_cam(model, images, cam);
        case Method::saliency: {
            GradientOptions g;
            common(g);
            return saliency(model, images, g);
        }
        case Method::smoothgrad: {
            SmoothGradOptions g;
            common(g);
            g.samples = options.smoothgrad_samples, g.noise_level = options.smoothgrad_noise, g.seed = options.seed;
            return smoothgrad(model, images, g);
        }
        case Method::integrated_gradients: {
            IntegratedGradientsOptions g;
            common(g);
            g.steps = options.integrated_gradients_steps;
            return integrated_gradients(model, images, g);
        }
        default: {
            detail::check_explain_call(model, images, options.chunk_size, options.target, "explain_with");
            Explanation e;
            const Tensor<T> probs = detail::class_scores(model, images, Score::probability, options.chunk_size);
            e.probabilities = detail::to_float(probs);
            e.predicted = detail::argmax_rows(probs);
            e.targets = options.target.resolve(e.probabilities, e.predicted, 0, "explain_with");
            e.maps = random_maps(images.dim(0), images.dim(2), images.dim(3), options.seed);
            return e;
        }
    }
}

/// Maps of `images` by `method` computed on randomized_weights_copy(model, options.seed): the
/// model-randomisation baseline (Adebayo et al., 2018), maps of a network that has learnt
/// nothing. They explain the classes options.target picks from `model`'s own output, and come
/// with `model`'s probabilities and predictions, so that they are scored like the maps of
/// `model` itself. `model` is not changed.
template <class T>
Explanation explain_with_randomized_weights(const Model<T>& model, const Tensor<T>& images, Method method,
                                            const MethodOptions& options = {}) {
    const char* op = "explain_with_randomized_weights";
    detail::check_explain_call(model, images, options.chunk_size, options.target, op);
    const Tensor<T> probs = detail::class_scores(model, images, Score::probability, options.chunk_size);
    Tensor<float> probabilities = detail::to_float(probs);
    std::vector<int> predicted = detail::argmax_rows(probs);
    std::vector<int> targets = options.target.resolve(probabilities, predicted, 0, op);
    const Model<T> random = randomized_weights_copy(model, options.seed);
    MethodOptions on_random = options;
    on_random.target = Target::classes(targets);
    Explanation e = explain_with(random, images, method, on_random);
    e.probabilities = std::move(probabilities);
    e.predicted = std::move(predicted);
    e.targets = std::move(targets);
    return e;
}

/// One row of the comparison table.
struct MethodScore {
    /// Name of the method.
    std::string method;
    double deletion_auc = 0;       ///< mean over images; lower is better
    double deletion_auc_low = 0;   ///< bootstrap confidence interval of the mean deletion AUC: lower end
    double deletion_auc_high = 0;  ///< upper end
    double insertion_auc = 0;      ///< higher is better
    double insertion_auc_low = 0;  ///< bootstrap confidence interval of the mean insertion AUC: lower end
    double insertion_auc_high = 0; ///< upper end
    double road_morf = 0;          ///< mean probability with the most relevant pixels imputed; lower is better
    double road_lerf = 0;          ///< with the least relevant imputed; higher is better
    double images_per_second = 0;  ///< explanation speed (maps only, not the metrics)
};

/// The table and the maps behind it (same order), for a figure of the same images per method.
struct MethodComparison {
    /// One row per method.
    std::vector<MethodScore> rows;
    /// The maps of each method, in the order of `rows`.
    std::vector<Explanation> explanations;
};

/// What compare_methods() runs.
struct ComparisonOptions {
    /// The methods to compare (default: all).
    std::vector<Method> methods = all_methods();
    MethodOptions explain;  ///< target: keep the predicted class, which the metrics track
    /// Settings of the deletion and insertion curves.
    CurveOptions curves;
    /// Settings of ROAD.
    RoadOptions road;
    /// Resampling of the per-image AUCs for their confidence intervals (2000 resamples, 95%).
    /// Every row and both curves draw the same resampled image sets, so rows compare paired.
    BootstrapOptions bootstrap;
    /// Adds a last row: `randomized_weights_method` on a copy of the model with re-drawn
    /// weights (explain_with_randomized_weights, keyed by explain.seed), scored by the curves
    /// of the model itself (its speed includes building the copy). A method that explains the
    /// model must beat it.
    bool randomized_weights_baseline = false;
    /// The method of the randomised-weights row, named "<method> (random weights)".
    Method randomized_weights_method = Method::grad_cam;
};

/// Explains `images` by each method (and, if asked, by a method on a randomised-weights copy of
/// the model), times it, and scores the maps by deletion/insertion AUC with bootstrap
/// intervals of their means and by ROAD MoRF/LeRF means.
template <class T>
MethodComparison compare_methods(const Model<T>& model, const Tensor<T>& images, const ComparisonOptions& options = {}) {
    check(!options.methods.empty(), "compare_methods: no methods given");
    MethodComparison out;
    const auto score = [&](Explanation e, std::string name, double seconds) {
        const Curves curves = deletion_insertion(model, images, e.maps, options.curves);
        const RoadResult r = road(model, images, e.maps, options.road);
        const BootstrapInterval deletion = bootstrap_mean_interval(curves.deletion_auc, options.bootstrap);
        const BootstrapInterval insertion = bootstrap_mean_interval(curves.insertion_auc, options.bootstrap);
        MethodScore row;
        row.method = std::move(name);
        row.deletion_auc = curves.mean_deletion_auc;
        row.deletion_auc_low = deletion.low;
        row.deletion_auc_high = deletion.high;
        row.insertion_auc = curves.mean_insertion_auc;
        row.insertion_auc_low = insertion.low;
        row.insertion_auc_high = insertion.high;
        row.road_morf = r.mean_morf;
        row.road_lerf = r.mean_lerf;
        row.images_per_second = static_cast<double>(images.dim(0)) / std::max(seconds, 1e-9);
        out.rows.push_back(row);
        out.explanations.push_back(std::move(e));
    };
    const auto since = [](std::chrono::steady_clock::time_point start) {
        return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    };
    for (Method m : options.methods) {
        const auto start = std::chrono::steady_clock::now();
        Explanation e = explain_with(model, images, m, options.explain);
        score(std::move(e), to_string(m), since(start));
    }
    if (options.randomized_weights_baseline) {
        const auto start = std::chrono::steady_clock::now();
        Explanation e =
            explain_with_randomized_weights(model, images, options.randomized_weights_method, options.explain);
        score(std::move(e), std::string(to_string(options.randomized_weights_method)) + " (random weights)",
              since(start));
    }
    return out;
}

/// The table as CSV: method,deletion_auc,insertion_auc,road_morf,road_lerf,images_per_second.
inline std::string methods_csv(const std::vector<MethodScore>& rows) {
    std::string csv = "method,deletion_auc,insertion_auc,road_morf,road_lerf,images_per_second\n";
    char line[256];
    for (const MethodScore& r : rows) {
        std::snprintf(line, sizeof line, ",%.6f,%.6f,%.6f,%.6f,%.1f\n", r.deletion_auc, r.insertion_auc, r.road_morf,
                      r.road_lerf, r.images_per_second);
        csv += r.method + line;
    }
    return csv;
}

}  // namespace cnnlite::explain

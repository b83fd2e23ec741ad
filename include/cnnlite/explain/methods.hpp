// One entry point for every explanation method, and the comparison table of the methods'
// faithfulness (deletion and insertion AUC, ROAD) and speed on a sample of images, as the
// pipeline writes it to methods.csv.
#pragma once

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "cnnlite/explain/deletion_insertion.hpp"
#include "cnnlite/explain/gradcam.hpp"
#include "cnnlite/explain/gradcam_plus_plus.hpp"
#include "cnnlite/explain/hirescam.hpp"
#include "cnnlite/explain/integrated_gradients.hpp"
#include "cnnlite/explain/road.hpp"
#include "cnnlite/explain/saliency.hpp"
#include "cnnlite/explain/score_cam.hpp"
#include "cnnlite/explain/smoothgrad.hpp"

namespace cnnlite::explain {

/// The explanation methods, plus a random-map baseline.
enum class Method { grad_cam, grad_cam_plus_plus, hires_cam, score_cam, saliency, smoothgrad, integrated_gradients, random };

/// Display name: "Grad-CAM", "Grad-CAM++", "HiResCAM", "Score-CAM", "Saliency", "SmoothGrad",
/// "Integrated Gradients", "Random".
inline const char* to_string(Method m) {
    switch (m) {
        case Method::grad_cam: return "Grad-CAM";
        case Method::grad_cam_plus_plus: return "Grad-CAM++";
        case Method::hires_cam: return "HiResCAM";
        case Method::score_cam: return "Score-CAM";
        case Method::saliency: return "Saliency";
        case Method::smoothgrad: return "SmoothGrad";
        case Method::integrated_gradients: return "Integrated Gradients";
        default: return "Random";
    }
}

/// Every method, the random baseline last.
inline std::vector<Method> all_methods() {
    return {Method::grad_cam,   Method::grad_cam_plus_plus,   Method::hires_cam, Method::score_cam,
            Method::saliency,   Method::smoothgrad, Method::integrated_gradients, Method::random};
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
    std::uint64_t seed = 0;               ///< SmoothGrad noise and random maps
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

/// One row of the comparison table.
struct MethodScore {
    /// Name of the method.
    std::string method;
    double deletion_auc = 0;       ///< mean over images; lower is better
    double insertion_auc = 0;      ///< higher is better
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
};

/// Explains `images` by each method, times it, and scores the maps by deletion/insertion AUC
/// and ROAD MoRF/LeRF means.
template <class T>
MethodComparison compare_methods(const Model<T>& model, const Tensor<T>& images, const ComparisonOptions& options = {}) {
    check(!options.methods.empty(), "compare_methods: no methods given");
    MethodComparison out;
    for (Method m : options.methods) {
        const auto start = std::chrono::steady_clock::now();
        Explanation e = explain_with(model, images, m, options.explain);
        const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        const Curves curves = deletion_insertion(model, images, e.maps, options.curves);
        const RoadResult r = road(model, images, e.maps, options.road);
        MethodScore row;
        row.method = to_string(m);
        row.deletion_auc = curves.mean_deletion_auc;
        row.insertion_auc = curves.mean_insertion_auc;
        row.road_morf = r.mean_morf;
        row.road_lerf = r.mean_lerf;
        row.images_per_second = static_cast<double>(images.dim(0)) / std::max(seconds, 1e-9);
        out.rows.push_back(row);
        out.explanations.push_back(std::move(e));
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

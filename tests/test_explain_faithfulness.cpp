// Faithfulness and sanity of explanations: areas and orders by hand, the blur and the ROAD
// imputation on images whose answer is known, deletion/insertion on a trained model (Grad-CAM
// must beat random maps), the model-randomisation check, the randomised-weights copy, bootstrap
// intervals and the methods table.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "cnnlite/data/fashion_mnist.hpp"
#include "cnnlite/explain/bootstrap.hpp"
#include "cnnlite/explain/methods.hpp"
#include "cnnlite/explain/randomisation.hpp"
#include "cnnlite/nn/paper_model.hpp"
#include "cnnlite/optim/adam.hpp"
#include "cnnlite/train/fit.hpp"
#include "source_dir.hpp"

namespace test_explain_faithfulness {

using namespace cnnlite;
using namespace cnnlite::explain;

namespace {

const FashionMnist& fixture() {
    static const FashionMnist data = load_fashion_mnist(test_support::source_dir().string() + "/data/fixtures");
    return data;
}

// The paper's network after one epoch on the 2,000 fixture training images (about 80% test
// accuracy): trained once, shared by the tests below.
const Sequential<float>& trained_model() {
    static const Sequential<float> model = [] {
        Sequential<float> m = fashion_mnist_cnn<float>(0);
        Adam<float> adam(m.trainable_variables());
        FitOptions o;
        o.epochs = 1;
        o.verbosity = Verbosity::silent;
        fit(m, adam, fixture().train, nullptr, o);
        return m;
    }();
    return model;
}

Tensor<float> test_images(std::int64_t first, std::int64_t count) { return fixture().test.images().rows(first, count).clone(); }

// Deep copies of a model's parameters and buffers, to see later whether they changed.
std::vector<std::vector<float>> state_values(const Model<float>& model) {
    std::vector<std::vector<float>> values;
    for (const auto& s : model.state()) values.push_back(s.variable.value().to_vector());
    return values;
}

}  // namespace

TEST_CASE("area under a curve, importance order and blur by hand") {
    const std::vector<float> curve{1, 0.5f, 0.5f, 0};
    CHECK(area_under_curve(curve.data(), 4) == doctest::Approx((0.75 + 0.5 + 0.25) / 3));
    CHECK(area_under_curve(curve.data(), 1) == 1.0);

    const std::vector<float> map{0.1f, 0.9f, 0.5f, 0.9f, 0.0f, std::nanf("")};
    const auto order = importance_order(map.data(), 6, 0, 0);
    REQUIRE(order.size() == 6);
    CHECK(((order[0] == 1 && order[1] == 3) || (order[0] == 3 && order[1] == 1)));
    CHECK(order[2] == 2);
    CHECK(order[3] == 0);
    CHECK(((order[4] == 4 && order[5] == 5) || (order[4] == 5 && order[5] == 4)));  // NaN counts as 0
    CHECK(importance_order(map.data(), 6, 0, 0) == order);  // deterministic
    // A constant map gives a different random order per seed.
    const std::vector<float> flat(100, 0.5f);
    CHECK(importance_order(flat.data(), 100, 1, 0) != importance_order(flat.data(), 100, 2, 0));

    Tensor<double> constant = Tensor<double>::full(Shape{1, 1, 6, 5}, 0.25);
    const Tensor<double> blurred = gaussian_blur(constant, 2.0);
    for (std::int64_t i = 0; i < blurred.numel(); ++i) CHECK(blurred[i] == doctest::Approx(0.25));
    Tensor<double> dot(Shape{1, 1, 9, 9});
    dot[40] = 1;
    const Tensor<double> spread = gaussian_blur(dot, 1.0);
    double total = 0;
    for (std::int64_t i = 0; i < 81; ++i) total += spread[i];
    CHECK(total == doctest::Approx(1.0).epsilon(1e-3));  // kernel of radius 3 sigma fits inside
    double kernel_sum = 0;  // the discrete kernel exp(-d^2 / 2), d = -3..3, normalised
    for (int d = -3; d <= 3; ++d) kernel_sum += std::exp(-0.5 * d * d);
    CHECK(spread[40] == doctest::Approx(1 / (kernel_sum * kernel_sum)).epsilon(1e-12));
    CHECK(spread[41] == doctest::Approx(spread[40] * std::exp(-0.5)).epsilon(1e-9));
}

TEST_CASE("ROAD's noisy linear imputation") {
    SUBCASE("reproduces a linear ramp inside the image exactly (without noise)") {
        const std::int64_t h = 7, w = 8;
        std::vector<double> image(static_cast<std::size_t>(2 * h * w));
        for (std::int64_t c = 0; c < 2; ++c)
            for (std::int64_t y = 0; y < h; ++y)
                for (std::int64_t x = 0; x < w; ++x) image[static_cast<std::size_t>((c * h + y) * w + x)] = (c + 1) * (0.5 + y - 2.0 * x);
        std::vector<char> removed(static_cast<std::size_t>(h * w), 0);
        for (std::int64_t y = 1; y < h - 1; ++y)
            for (std::int64_t x = 2; x < w - 1; ++x) removed[static_cast<std::size_t>(y * w + x)] = (x + y) % 3 != 0;
        std::vector<double> filled = image;
        for (std::size_t i = 0; i < removed.size(); ++i)
            if (removed[i]) filled[i] = filled[i + static_cast<std::size_t>(h * w)] = 99;  // must be overwritten
        impute_noisy_linear(filled.data(), 2, h, w, removed, 0.0, RandomStream(0, Purpose::user));
        for (std::size_t i = 0; i < image.size(); ++i) CHECK(filled[i] == doctest::Approx(image[i]).epsilon(1e-12));
    }
    SUBCASE("each imputed pixel is the weighted mean of its neighbours, plus noise of the given size") {
        const std::int64_t h = 6, w = 6;
        std::vector<float> image(36);
        for (std::size_t i = 0; i < 36; ++i) image[i] = static_cast<float>(std::cos(1.3 * static_cast<double>(i)));
        std::vector<char> removed(36, 0);
        for (int p : {0, 1, 6, 7, 14, 20, 21, 35}) removed[static_cast<std::size_t>(p)] = 1;  // corner block, border pixel
        std::vector<float> filled = image;
        impute_noisy_linear(filled.data(), 1, h, w, removed, 0.0, RandomStream(0, Purpose::user));
        for (int p = 0; p < 36; ++p) {
            if (!removed[static_cast<std::size_t>(p)]) {
                CHECK(filled[static_cast<std::size_t>(p)] == image[static_cast<std::size_t>(p)]);
                continue;
            }
            double sum = 0, weights = 0;
            for (int dy = -1; dy <= 1; ++dy)
                for (int dx = -1; dx <= 1; ++dx) {
                    const int y = p / 6 + dy, x = p % 6 + dx;
                    if ((dy == 0 && dx == 0) || y < 0 || y >= 6 || x < 0 || x >= 6) continue;
                    const double wgt = (dy == 0 || dx == 0) ? 1.0 / 6 : 1.0 / 12;
                    sum += wgt * filled[static_cast<std::size_t>(y * 6 + x)];
                    weights += wgt;
                }
            CHECK(filled[static_cast<std::size_t>(p)] == doctest::Approx(sum / weights).epsilon(1e-5));
        }
        std::vector<float> noisy = image;
        impute_noisy_linear(noisy.data(), 1, h, w, removed, 0.5, RandomStream(3, Purpose::user));
        double spread = 0;
        for (int p = 0; p < 36; ++p) spread += std::fabs(noisy[static_cast<std::size_t>(p)] - filled[static_cast<std::size_t>(p)]);
        CHECK(spread > 0.5);   // 8 draws of N(0, 0.25)
        CHECK(spread < 20.0);
    }
    SUBCASE("removing every pixel is an error") {
        std::vector<float> image(4, 1.0f);
        CHECK_THROWS_WITH_AS(impute_noisy_linear(image.data(), 1, 2, 2, std::vector<char>(4, 1), 0.0, RandomStream(0, Purpose::user)),
                             doctest::Contains("every pixel is removed"), Error);
    }
}

TEST_CASE("deletion and insertion curves start and end where they must") {
    const auto& model = trained_model();
    const Tensor<float> x = test_images(0, 6);
    CurveOptions o;
    o.steps = 7;
    o.chunk_size = 20;  // blocks of one image (2 x 8 variants)
    const Curves c = deletion_insertion(model, x, random_maps(6, 28, 28, 5), o);
    REQUIRE(c.deletion.shape() == Shape{6, 8});
    const Tensor<float> p = model.predict(x);
    const Tensor<float> black = model.predict(Tensor<float>(Shape{1, 1, 28, 28}));
    const Tensor<float> blurred = model.predict(gaussian_blur(x, o.blur_sigma));
    for (std::int64_t i = 0; i < 6; ++i) {
        const int k = c.predicted[static_cast<std::size_t>(i)];
        CHECK(c.deletion(i, 0) == doctest::Approx(p(i, k)).epsilon(1e-5));
        CHECK(c.deletion(i, 7) == doctest::Approx(black(0, k)).epsilon(1e-5));
        CHECK(c.insertion(i, 0) == doctest::Approx(blurred(i, k)).epsilon(1e-5));
        CHECK(c.insertion(i, 7) == doctest::Approx(p(i, k)).epsilon(1e-5));
        CHECK(c.deletion_auc[static_cast<std::size_t>(i)] == doctest::Approx(area_under_curve(c.deletion.data() + i * 8, 8)));
    }
    // The same with another block size.
    o.chunk_size = 256;
    const Curves d = deletion_insertion(model, x, random_maps(6, 28, 28, 5), o);
    CHECK(d.mean_deletion_auc == doctest::Approx(c.mean_deletion_auc).epsilon(1e-6));
    CHECK(d.mean_insertion_auc == doctest::Approx(c.mean_insertion_auc).epsilon(1e-6));

    CHECK_THROWS_WITH_AS(deletion_insertion(model, x, random_maps(5, 28, 28)), doctest::Contains("do not fit images"), Error);
    RoadOptions r;
    r.fractions = {0.5, 1.0};
    CHECK_THROWS_WITH_AS(road(model, x, random_maps(6, 28, 28), r), doctest::Contains("fraction 1 outside [0, 1)"), Error);
}

TEST_CASE("on a trained model, Grad-CAM is more faithful than random maps") {
    const auto& model = trained_model();
    const Tensor<float> x = test_images(100, 96);
    const Explanation cam = grad_cam(model, x);
    const Tensor<float> random = random_maps(96, 28, 28, 1);

    CurveOptions curves;
    curves.steps = 16;
    const Curves cam_curves = deletion_insertion(model, x, cam.maps, curves);
    const Curves random_curves = deletion_insertion(model, x, random, curves);
    MESSAGE("deletion AUC: Grad-CAM ", cam_curves.mean_deletion_auc, ", random ", random_curves.mean_deletion_auc);
    MESSAGE("insertion AUC: Grad-CAM ", cam_curves.mean_insertion_auc, ", random ", random_curves.mean_insertion_auc);
    CHECK(cam_curves.mean_deletion_auc < random_curves.mean_deletion_auc);
    CHECK(cam_curves.mean_insertion_auc > random_curves.mean_insertion_auc);

    RoadOptions r;
    r.fractions = {0.2, 0.5, 0.8};
    const RoadResult cam_road = road(model, x.rows(0, 32), cam.maps.rows(0, 32), r);
    const RoadResult random_road = road(model, x.rows(0, 32), random.rows(0, 32), r);
    MESSAGE("ROAD MoRF: Grad-CAM ", cam_road.mean_morf, ", random ", random_road.mean_morf, "; LeRF: Grad-CAM ",
            cam_road.mean_lerf, ", random ", random_road.mean_lerf);
    CHECK(cam_road.morf.shape() == Shape{32, 3});
    CHECK(cam_road.mean_morf < cam_road.mean_lerf);  // removing the important pixels hurts more
}

TEST_CASE("Spearman rank correlation by hand, with ties, never NaN") {
    const std::vector<float> a{1, 2, 3, 4, 5}, b{5, 6, 7, 8, 70}, c{5, 4, 3, 2, 1};
    CHECK(spearman(a.data(), b.data(), 5) == doctest::Approx(1.0));
    CHECK(spearman(a.data(), c.data(), 5) == doctest::Approx(-1.0));
    // Ranks of {1, 2, 2, 3} are {0, 1.5, 1.5, 3} and of {1, 3, 2, 4} {0, 2, 1, 3}, both of mean
    // 1.5: the centred products add up to 4.5, the squares to 4.5 and 5.
    const std::vector<float> t{1, 2, 2, 3}, u{1, 3, 2, 4};
    CHECK(spearman(t.data(), u.data(), 4) == doctest::Approx(4.5 / std::sqrt(4.5 * 5.0)));
    const std::vector<float> flat(4, 0.0f);
    CHECK(spearman(flat.data(), u.data(), 4) == 0.0);
}

TEST_CASE("model randomisation: Grad-CAM changes as the layers are randomised; a model-blind map does not") {
    const auto& model = trained_model();
    const Tensor<float> x = test_images(200, 16);
    const auto steps = model_randomisation(model, x);
    REQUIRE(steps.size() == 3);
    CHECK(steps[0].layer == "dense_1");
    CHECK(steps[1].layer == "dense");
    CHECK(steps[2].layer == "conv2d");
    for (const auto& s : steps) {
        MESSAGE("randomised down to ", s.layer, ": mean Spearman ", s.mean_spearman);
        CHECK(s.spearman.size() == 16);
        CHECK(std::isfinite(s.mean_spearman));
        CHECK(s.mean_spearman < 0.9);
    }
    // The trained weights are untouched.
    const Tensor<float> before = grad_cam(model, x).maps;
    CHECK(grad_cam(model, x).maps.to_vector() == before.to_vector());

    // A "method" that returns the image itself ignores the model: correlation 1 throughout.
    const auto blind = model_randomisation<float>(model, x, [](const Model<float>&, const Tensor<float>& images) {
        return images.reshape(Shape{images.dim(0), 28, 28}).clone();
    });
    for (const auto& s : blind) CHECK(s.mean_spearman == doctest::Approx(1.0));
}

TEST_CASE("the methods table: every method, finite numbers, CSV for the pipeline") {
    const auto& model = trained_model();
    const Tensor<float> x = test_images(300, 6);
    ComparisonOptions o;
    o.explain.smoothgrad_samples = 3;
    o.explain.integrated_gradients_steps = 6;
    o.curves.steps = 14;
    o.road.fractions = {0.25, 0.5, 0.75};
    o.bootstrap.resamples = 500;
    o.randomized_weights_baseline = true;
    const auto before = state_values(model);
    const MethodComparison table = compare_methods(model, x, o);
    REQUIRE(table.rows.size() == 10);
    REQUIRE(table.explanations.size() == 10);
    for (const auto& r : table.rows) {
        MESSAGE(r.method, ": deletion ", r.deletion_auc, " [", r.deletion_auc_low, ", ", r.deletion_auc_high,
                "], insertion ", r.insertion_auc, " [", r.insertion_auc_low, ", ", r.insertion_auc_high, "], ROAD MoRF ",
                r.road_morf, ", LeRF ", r.road_lerf, ", ", r.images_per_second, " images/s");
        for (double v : {r.deletion_auc, r.insertion_auc, r.road_morf, r.road_lerf, r.deletion_auc_low,
                         r.deletion_auc_high, r.insertion_auc_low, r.insertion_auc_high}) {
            CHECK(std::isfinite(v));
            CHECK(v >= 0);
            CHECK(v <= 1);
        }
        CHECK(r.deletion_auc_low <= r.deletion_auc);
        CHECK(r.deletion_auc <= r.deletion_auc_high);
        CHECK(r.insertion_auc_low <= r.insertion_auc);
        CHECK(r.insertion_auc <= r.insertion_auc_high);
        CHECK(r.deletion_auc_low < r.deletion_auc_high);  // six images that do not all score alike
        CHECK(r.images_per_second > 0);
    }
    CHECK(table.rows.front().method == "Grad-CAM");
    CHECK(table.rows[3].method == "LayerCAM");
    CHECK(table.rows[8].method == "Random");
    CHECK(table.rows.back().method == "Grad-CAM (random weights)");
    CHECK(state_values(model) == before);  // the trained model is left as it was

    // Each interval is the bootstrap of the row's per-image AUCs under the trained model's
    // curves, for the randomised-weights row too (scored by the model it claims to explain).
    const auto check_intervals = [&](std::size_t row) {
        const Curves c = deletion_insertion(model, x, table.explanations[row].maps, o.curves);
        const BootstrapInterval d = bootstrap_mean_interval(c.deletion_auc, o.bootstrap);
        const BootstrapInterval i = bootstrap_mean_interval(c.insertion_auc, o.bootstrap);
        const MethodScore& r = table.rows[row];
        CHECK(r.deletion_auc == doctest::Approx(d.mean).epsilon(1e-12));
        CHECK(r.deletion_auc_low == doctest::Approx(d.low).epsilon(1e-12));
        CHECK(r.deletion_auc_high == doctest::Approx(d.high).epsilon(1e-12));
        CHECK(r.insertion_auc_low == doctest::Approx(i.low).epsilon(1e-12));
        CHECK(r.insertion_auc_high == doctest::Approx(i.high).epsilon(1e-12));
    };
    check_intervals(0);
    check_intervals(9);

    // The randomised-weights row explains the trained model's predictions with other maps.
    const Explanation& cam = table.explanations[0];
    const Explanation& random_weights = table.explanations[9];
    CHECK(random_weights.predicted == cam.predicted);
    CHECK(random_weights.targets == cam.predicted);
    CHECK(random_weights.probabilities.to_vector() == cam.probabilities.to_vector());
    int differing = 0;
    for (std::int64_t i = 0; i < 6; ++i) {
        double distance = 0;
        for (std::int64_t p = 0; p < 784; ++p) distance += std::fabs(random_weights.maps[i * 784 + p] - cam.maps[i * 784 + p]);
        differing += distance > 1.0;
    }
    CHECK(differing == 6);

    const std::string csv = methods_csv(table.rows);
    CHECK(csv.rfind("method,deletion_auc,insertion_auc,road_morf,road_lerf,images_per_second\nGrad-CAM,0.", 0) == 0);
    CHECK(std::count(csv.begin(), csv.end(), '\n') == 11);
}

TEST_CASE("bootstrap interval of a mean: hand-checkable cases, the normal approximation, repeatability, errors") {
    SUBCASE("constant values, and a single value, give a zero-width interval at the mean") {
        for (const std::vector<double>& v : {std::vector<double>(50, 0.3), std::vector<double>{0.7}}) {
            const BootstrapInterval b = bootstrap_mean_interval(v);
            CHECK(b.mean == doctest::Approx(v[0]).epsilon(1e-15));
            CHECK(b.low == b.mean);
            CHECK(b.high == b.mean);
        }
    }
    SUBCASE("two values 0 and 1: resampled means are 0, 0.5, 1 with chances 1/4, 1/2, 1/4") {
        // 95%: the 2.5% and 97.5% quantiles fall among the ~500 zeros and ~500 ones.
        const BootstrapInterval b = bootstrap_mean_interval({0.0, 1.0});
        CHECK(b.mean == 0.5);
        CHECK(b.low == 0.0);
        CHECK(b.high == 1.0);
        // 40%: the 30% and 70% quantiles both fall among the ~1000 halves.
        BootstrapOptions o;
        o.confidence = 0.4;
        const BootstrapInterval c = bootstrap_mean_interval({0.0, 1.0}, o);
        CHECK(c.low == 0.5);
        CHECK(c.high == 0.5);
        // A single resample: both ends are its mean.
        o.resamples = 1;
        const BootstrapInterval one = bootstrap_mean_interval({0.0, 1.0, 0.25}, o);
        CHECK(one.low == one.high);
    }
    SUBCASE("normal data: width close to 2 x 1.96 x sd / sqrt(n), centred on the mean") {
        const RandomStream normal(4, Purpose::user, 17);
        std::vector<double> v;
        for (std::uint64_t i = 0; i < 400; ++i) v.push_back(2.0 + 0.5 * normal.normal(i));
        double mean = 0, square = 0;
        for (double x : v) mean += x / 400;
        for (double x : v) square += (x - mean) * (x - mean) / 400;
        const double expected = 2 * 1.96 * std::sqrt(square) / std::sqrt(400.0);  // about 0.098
        const BootstrapInterval b = bootstrap_mean_interval(v);
        MESSAGE("width ", b.high - b.low, ", normal approximation ", expected);
        CHECK(b.mean == doctest::Approx(mean).epsilon(1e-12));
        CHECK(b.high - b.low == doctest::Approx(expected).epsilon(0.1));
        CHECK(b.low < b.mean);
        CHECK(b.mean < b.high);
        CHECK(std::fabs(0.5 * (b.low + b.high) - mean) < 0.1 * expected);
        // The same seed gives the same interval, another seed or stream another one.
        const BootstrapInterval again = bootstrap_mean_interval(v);
        CHECK(again.low == b.low);
        CHECK(again.high == b.high);
        BootstrapOptions o;
        o.seed = 1;
        CHECK(bootstrap_mean_interval(v, o).low != b.low);
        o.seed = 0;
        o.stream = 1;
        CHECK(bootstrap_mean_interval(v, o).low != b.low);
        // More confidence, a wider interval.
        o.stream = 0;
        o.confidence = 0.99;
        const BootstrapInterval wide = bootstrap_mean_interval(v, o);
        CHECK(wide.low < b.low);
        CHECK(wide.high > b.high);
    }
    SUBCASE("misuse") {
        CHECK_THROWS_WITH_AS(bootstrap_mean_interval({}), doctest::Contains("bootstrap_mean_interval: no values to resample"), Error);
        BootstrapOptions o;
        o.resamples = 0;
        CHECK_THROWS_WITH_AS(bootstrap_mean_interval({1.0}, o), doctest::Contains("resamples must be at least 1, got 0"), Error);
        o.resamples = 10;
        o.confidence = 1.0;
        CHECK_THROWS_WITH_AS(bootstrap_mean_interval({1.0}, o), doctest::Contains("confidence must be in (0, 1), got 1"), Error);
        CHECK_THROWS_WITH_AS(bootstrap_mean_interval({1.0, std::nan("")}), doctest::Contains("value 1 is not finite"), Error);
    }
}

TEST_CASE("a randomised-weights copy: fresh parameters, the original untouched, other maps") {
    const auto& model = trained_model();
    const auto before = state_values(model);
    const Model<float> random = randomized_weights_copy(model, 5);
    CHECK(state_values(model) == before);
    const auto original = model.parameters(), fresh = random.parameters();
    REQUIRE(original.size() == fresh.size());
    for (std::size_t p = 0; p < original.size(); ++p) {
        INFO(original[p].name);
        CHECK(fresh[p].name == original[p].name);
        CHECK(fresh[p].variable.shape() == original[p].variable.shape());
        // Trained biases are not zero; the Keras scheme starts them at zero.
        CHECK(fresh[p].variable.value().to_vector() != original[p].variable.value().to_vector());
        CHECK(fresh[p].variable.value().data() != original[p].variable.value().data());
    }
    // The kernels are drawn by the scheme afresh: not the weights the model started from either.
    const Sequential<float> initial = fashion_mnist_cnn<float>(0);
    CHECK(fresh[0].variable.value().to_vector() != initial.parameters()[0].variable.value().to_vector());
    CHECK(random.parameters()[0].variable.value().to_vector() ==
          randomized_weights_copy(model, 5).parameters()[0].variable.value().to_vector());  // keyed by the seed
    CHECK(random.parameters()[0].variable.value().to_vector() !=
          randomized_weights_copy(model, 6).parameters()[0].variable.value().to_vector());

    // Cascading: from 'dense' up; conv2d keeps its trained weights.
    const Model<float> top = randomized_weights_copy(model, 5, "dense");
    const auto cascaded = top.parameters();
    CHECK(cascaded[0].variable.value().to_vector() == original[0].variable.value().to_vector());
    CHECK(cascaded[1].variable.value().to_vector() == original[1].variable.value().to_vector());
    CHECK(cascaded[0].variable.value().data() != original[0].variable.value().data());
    for (std::size_t p = 2; p < cascaded.size(); ++p)
        CHECK(cascaded[p].variable.value().to_vector() == fresh[p].variable.value().to_vector());
    CHECK_THROWS_WITH_AS(randomized_weights_copy(model, 5, "dense_7"),
                         doctest::Contains("randomized_weights_copy: no layer named 'dense_7'; the model's layers are: conv2d"),
                         Error);

    // Maps: Grad-CAM of the copy for the trained model's classes, not the trained model's maps.
    const Tensor<float> x = test_images(400, 4);
    MethodOptions o;
    o.seed = 5;
    const Explanation e = explain_with_randomized_weights(model, x, Method::grad_cam, o);
    const Explanation trained = grad_cam(model, x);
    CHECK(e.predicted == trained.predicted);
    CHECK(e.targets == trained.predicted);
    CamOptions on_copy;
    on_copy.target = Target::classes(trained.predicted);
    CHECK(e.maps.to_vector() == grad_cam(random, x, on_copy).maps.to_vector());
    CHECK(e.maps.to_vector() != trained.maps.to_vector());
    CHECK(state_values(model) == before);
    o.target = Target::same_class(3);
    CHECK(explain_with_randomized_weights(model, x, Method::layer_cam, o).targets == std::vector<int>(4, 3));
}

}  // namespace test_explain_faithfulness

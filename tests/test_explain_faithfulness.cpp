// Faithfulness and sanity of explanations: areas and orders by hand, the blur and the ROAD
// imputation on images whose answer is known, deletion/insertion on a trained model (Grad-CAM
// must beat random maps), the model-randomisation check and the methods table.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "cnnlite/data/fashion_mnist.hpp"
#include "cnnlite/explain/methods.hpp"
#include "cnnlite/explain/randomisation.hpp"
#include "cnnlite/nn/paper_model.hpp"
#include "cnnlite/optim/adam.hpp"
#include "cnnlite/train/fit.hpp"

namespace test_explain_faithfulness {

using namespace cnnlite;
using namespace cnnlite::explain;

namespace {

const FashionMnist& fixture() {
    static const FashionMnist data = load_fashion_mnist(std::string(CNNLITE_SOURCE_DIR) + "/data/fixtures");
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
    const MethodComparison table = compare_methods(model, x, o);
    REQUIRE(table.rows.size() == 8);
    REQUIRE(table.explanations.size() == 8);
    for (const auto& r : table.rows) {
        MESSAGE(r.method, ": deletion ", r.deletion_auc, ", insertion ", r.insertion_auc, ", ROAD MoRF ", r.road_morf,
                ", LeRF ", r.road_lerf, ", ", r.images_per_second, " images/s");
        for (double v : {r.deletion_auc, r.insertion_auc, r.road_morf, r.road_lerf}) {
            CHECK(std::isfinite(v));
            CHECK(v >= 0);
            CHECK(v <= 1);
        }
        CHECK(r.images_per_second > 0);
    }
    CHECK(table.rows.front().method == "Grad-CAM");
    CHECK(table.rows.back().method == "Random");
    const std::string csv = methods_csv(table.rows);
    CHECK(csv.rfind("method,deletion_auc,insertion_auc,road_morf,road_lerf,images_per_second\nGrad-CAM,0.", 0) == 0);
    CHECK(std::count(csv.begin(), csv.end(), '\n') == 9);
}

}  // namespace test_explain_faithfulness

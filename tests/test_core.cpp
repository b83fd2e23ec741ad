// Core plumbing: Tensor construction and views, shape errors, counter-based random streams,
// flushing denormals.
#include <doctest/doctest.h>

#include <unistd.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <filesystem>
#include <fstream>
#include <limits>
#include <string>
#include <thread>
#include <vector>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "cnnlite/core/denormals.hpp"
#include "cnnlite/core/number_text.hpp"
#include "cnnlite/core/error.hpp"
#include "cnnlite/core/folder_lock.hpp"
#include "cnnlite/core/random.hpp"
#include "cnnlite/core/tensor.hpp"
#include "cnnlite/core/threading.hpp"
#include "cnnlite/core/version.hpp"
#include "error_message.hpp"

namespace test_core {

using test_support::error_of;
using test_support::contains;

using cnnlite::RandomStream;
using cnnlite::Shape;
using cnnlite::Tensor;

TEST_CASE_TEMPLATE("Tensor construction fills zeros and keeps the shape", T, float, double) {
    Tensor<T> t(Shape{2, 3, 4});
    CHECK(t.rank() == 3);
    CHECK(t.numel() == 24);
    CHECK(t.shape() == Shape{2, 3, 4});
    for (T v : t) CHECK(v == T(0));

    const auto f = Tensor<T>::from(Shape{2, 2}, {T(1), T(2), T(3), T(4)});
    CHECK(f(1, 0) == T(3));
    CHECK(reinterpret_cast<std::uintptr_t>(f.data()) % 64 == 0);
}

TEST_CASE("Shape::numel is 0 with any zero extent and refuses counts beyond 64 bits") {
    CHECK(Shape{}.numel() == 1);
    CHECK(Shape{2, 3, 4}.numel() == 24);
    // The zero comes last: the product of the others alone would overflow.
    CHECK(Shape{4294967296, 4294967296, 0}.numel() == 0);
    CHECK(Shape{std::int64_t{1} << 31, std::int64_t{1} << 31}.numel() == std::int64_t{1} << 62);
    CHECK_THROWS_AS((void)Shape({std::int64_t{1} << 31, std::int64_t{1} << 31, 2}).numel(), cnnlite::Error);
    CHECK(error_of([] { (void)Shape{4294967296, 4294967296}.numel(); }) ==
          "Shape [4294967296, 4294967296] has more elements than a 64-bit count holds");
    CHECK(error_of([] { Tensor<float>(Shape{4294967296, 4294967296}); }).find("more elements than a 64-bit count") !=
          std::string::npos);
    CHECK(error_of([] { Tensor<double>(Shape{std::int64_t{1} << 62}); }) ==
          "Tensor: shape [4611686018427387904] needs more bytes than memory can address");
}

TEST_CASE("Tensor reshape is a view that shares storage") {
    auto t = Tensor<float>::from(Shape{2, 3}, {0, 1, 2, 3, 4, 5});
    auto v = t.reshape({3, -1});
    CHECK(v.shape() == Shape{3, 2});
    CHECK(v.shares_storage_with(t));
    v(2, 1) = 50.0f;  // writes through to the original
    CHECK(t(1, 2) == 50.0f);
}

TEST_CASE("shape mismatches name the operation and both shapes") {
    Tensor<float> a(Shape{2, 3});
    Tensor<float> b(Shape{3, 2});
    std::string message;
    try {
        cnnlite::check_same_shape("add", a, b);
    } catch (const cnnlite::Error& e) {
        message = e.what();
    }
    CHECK(message == "add: shape mismatch [2, 3] vs [3, 2]");
    CHECK_THROWS_AS(a.reshape({4, 2}), cnnlite::Error);
    CHECK_THROWS_WITH(a.at(2, 0), "Tensor: index 2 out of range on axis 0 of shape [2, 3]");
}

TEST_CASE("RandomStream draws are pure functions of key and index") {
    const RandomStream s(42, cnnlite::Purpose::init, 1, 0);
    const RandomStream same(42, cnnlite::Purpose::init, 1, 0);
    const RandomStream other(42, cnnlite::Purpose::init, 2, 0);
    CHECK(s.bits(7) == same.bits(7));
    CHECK(s.bits(7) != other.bits(7));
    // Reading draws out of order gives the same values: no hidden state advances.
    const auto later = s.bits(1000);
    CHECK(s.bits(3) == same.bits(3));
    CHECK(later == same.bits(1000));
    // SplitMix64 seeded with 0 starts 0xE220A8397B1DCDAF (Vigna's reference implementation).
    CHECK(cnnlite::detail::mix64(cnnlite::detail::golden_gamma) == 0xE220A8397B1DCDAFULL);
}

TEST_CASE("version() matches the version macros") {
    CHECK(std::string(cnnlite::version()) ==
          std::to_string(CNNLITE_VERSION_MAJOR) + "." + std::to_string(CNNLITE_VERSION_MINOR) + "." +
              std::to_string(CNNLITE_VERSION_PATCH));
}

// What one thread computes from denormals: a product whose exact result is denormal (0 under
// FTZ) and a denormal read as an operand (0 under DAZ). volatile keeps the compiler from
// folding the arithmetic at compile time.
struct DenormalProbe {
    float product = 0;     // 1e-30 * 1e-10
    float passthrough = 0;  // (denormal 1e-40) * 1
    bool flushing = false;
};

DenormalProbe probe_this_thread() {
    volatile float a = 1e-30f, b = 1e-10f, tiny = 1e-40f, one = 1.0f;
    return {a * b, tiny * one, cnnlite::flushing_denormals()};
}

// The probe on every thread of the OpenMP team (one entry without OpenMP).
std::vector<DenormalProbe> probe_team() {
    std::vector<DenormalProbe> probes(static_cast<std::size_t>(cnnlite::num_threads()));
#ifdef _OPENMP
#pragma omp parallel num_threads(static_cast<int>(probes.size()))
    probes[static_cast<std::size_t>(omp_get_thread_num())] = probe_this_thread();
#else
    probes[0] = probe_this_thread();
#endif
    return probes;
}

TEST_CASE("FlushDenormals flushes on the caller and on every OpenMP thread, and restores each") {
    const int threads_before = cnnlite::num_threads();
    cnnlite::set_num_threads(2);
    const float smallest_normal = std::numeric_limits<float>::min();
    for (const DenormalProbe& p : probe_team()) {  // IEEE gradual underflow to begin with
        CHECK_FALSE(p.flushing);
        CHECK(p.product > 0.0f);
        CHECK(p.product < smallest_normal);
        CHECK(p.passthrough > 0.0f);
    }
    {
        const cnnlite::FlushDenormals flush;
        CHECK(flush.active() == cnnlite::can_flush_denormals());
        if (cnnlite::can_flush_denormals()) {
            CHECK(cnnlite::flushing_denormals());
            const auto team = probe_team();
            REQUIRE(team.size() == (cnnlite::has_openmp() ? 2u : 1u));
            for (const DenormalProbe& p : team) {
                CHECK(p.flushing);
                CHECK(p.product == 0.0f);
                CHECK(p.passthrough == 0.0f);
            }
        }
    }
    for (const DenormalProbe& p : probe_team()) {
        CHECK_FALSE(p.flushing);
        CHECK(p.product > 0.0f);
    }
    {
        const cnnlite::FlushDenormals off(false);  // disabled: changes nothing
        CHECK_FALSE(off.active());
        CHECK(probe_this_thread().product > 0.0f);
    }
    cnnlite::set_num_threads(threads_before);
}

TEST_CASE("FlushDenormals nests and leaves an outer flush on") {
    if (!cnnlite::can_flush_denormals()) return;
    const cnnlite::FlushDenormals outer;
    {
        const cnnlite::FlushDenormals inner;
        CHECK(probe_this_thread().product == 0.0f);
    }
    for (const DenormalProbe& p : probe_team()) {  // the inner guard restored "flushing"
        CHECK(p.flushing);
        CHECK(p.product == 0.0f);
    }
}

namespace {
}  // namespace

TEST_CASE("set_num_threads accepts 1 to four per core, and names the bound otherwise") {
    const int before = cnnlite::num_threads();
    CHECK(cnnlite::max_threads() == 4 * cnnlite::available_cores());
    cnnlite::set_num_threads(cnnlite::max_threads());
    const std::string too_many = error_of([] { cnnlite::set_num_threads(100000); });
    CHECK(contains(too_many, "100000 threads is more than " + std::to_string(cnnlite::max_threads())));
    CHECK(contains(error_of([] { cnnlite::set_num_threads(0); }), "at least one thread"));
    cnnlite::set_num_threads(before);
}

TEST_CASE("CallingThreadCount sets the calling thread's parallel regions alone, and restores them") {
    const int before = cnnlite::num_threads();
    cnnlite::set_num_threads(2);
    const int want = cnnlite::has_openmp() ? 2 : 1;
    auto region_team = [] {
        int team = 0;
#pragma omp parallel
        {
#pragma omp single
            team = cnnlite::team_size();
        }
        return team;
    };
    {
        const cnnlite::CallingThreadCount one(1);
        CHECK(cnnlite::num_threads() == 1);
        CHECK(region_team() == 1);
        // Another thread, here one running its own work at the same time, keeps its count.
        int other = 0;
        std::thread([&] {
            cnnlite::set_num_threads(2);
            other = region_team();
        }).join();
        CHECK(other == want);
        CHECK(region_team() == 1);
    }
    CHECK(cnnlite::num_threads() == want);
    CHECK(region_team() == want);
    try {
        const cnnlite::CallingThreadCount one(1);
        throw std::runtime_error("leaving the scope");
    } catch (const std::runtime_error&) {
    }
    CHECK(region_team() == want);
    CHECK(contains(error_of([] { cnnlite::CallingThreadCount none(0); }), "CallingThreadCount: need at least one thread, got 0"));
    cnnlite::set_num_threads(before);
}

TEST_CASE("FolderLock: one holder per folder, named to the next; released with its holder") {
    namespace fs = std::filesystem;
    const fs::path folder = fs::temp_directory_path() / ("cnnlite_test_lock_" + std::to_string(::getpid()));
    fs::remove_all(folder);
    {
        const cnnlite::FolderLock first(folder.string(), "the first holder");
        CHECK(fs::exists(folder / ".lock"));
        const std::string refused = error_of([&] { cnnlite::FolderLock second(folder.string(), "the second"); });
        CHECK(contains(refused, "folder '" + folder.string() + "' is in use by another run (the first holder)"));
    }
    {
        const cnnlite::FolderLock again(folder.string(), "the second holder");  // released with the first
        std::ifstream in(folder / ".lock");
        std::string line;
        std::getline(in, line);
        CHECK(line == "the second holder");
    }
    CHECK(contains(error_of([&] { cnnlite::check_folder_writable((folder / "missing").string()); }),
                   "cannot write in folder"));
    fs::remove_all(folder);
}

TEST_CASE("number_text: round_trip_text reads back to the same double, NaN as nan") {
    using namespace cnnlite;
    for (double v : {0.0, -0.0, 0.1, 1.0 / 3.0, 0.3, 1e-300, 4.9406564584124654e-324, 1.7976931348623157e308, -2.5}) {
        CAPTURE(v);
        const double back = parse_round_trip_text(round_trip_text(v));
        CHECK(std::memcmp(&back, &v, sizeof v) == 0);  // bit for bit, the sign of zero included
    }
    CHECK(round_trip_text(0.3) == "0.29999999999999999");
    CHECK(round_trip_text(std::numeric_limits<double>::quiet_NaN()) == "nan");
    CHECK(std::isnan(parse_round_trip_text("nan")));
    CHECK_THROWS_AS(parse_round_trip_text("abc"), std::invalid_argument);
}

TEST_CASE("number_text: shortest_round_trip_text uses the fewest digits that read back exactly") {
    using namespace cnnlite;
    CHECK(shortest_round_trip_text(0.1) == "0.1");
    CHECK(shortest_round_trip_text(0.3) == "0.3");
    CHECK(shortest_round_trip_text(1e4) == "1e+04");
    CHECK(shortest_round_trip_text(-2.5) == "-2.5");
    CHECK(shortest_round_trip_text(1.0 / 3.0) == "0.3333333333333333");  // 16 digits suffice
    CHECK(shortest_round_trip_text(0.1 + 0.2) == "0.30000000000000004");  // needs all 17
    CHECK(shortest_round_trip_text(std::numeric_limits<double>::quiet_NaN()) == "nan");
    for (double v : {0.0, -0.0, 1e-300, 4.9406564584124654e-324, 1.7976931348623157e308, 2.0 / 3.0}) {
        CAPTURE(v);
        const double back = parse_round_trip_text(shortest_round_trip_text(v));
        CHECK(std::memcmp(&back, &v, sizeof v) == 0);
    }
}

}  // namespace test_core

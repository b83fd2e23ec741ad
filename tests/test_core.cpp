// Core plumbing: Tensor construction and views, shape errors, counter-based random streams.
#include <doctest/doctest.h>

#include <cstdint>
#include <string>

#include "cnnlite/core/error.hpp"
#include "cnnlite/core/random.hpp"
#include "cnnlite/core/tensor.hpp"
#include "cnnlite/core/version.hpp"

namespace test_core {

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

}  // namespace test_core

// Small helpers shared by the tutorial programs: printing tensors the way the chapters show
// them, and a check that ends the program with a message when a claim of the text fails, so
// that the test suite notices (each program is a CTest test).
#pragma once

#include <cnnlite/core/error.hpp>
#include <cnnlite/core/tensor.hpp>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <string>

namespace tutorial {

/// "[a, b, c]" with `decimals` digits after the point.
template <class T>
std::string values(const cnnlite::Tensor<T>& t, int decimals = 2) {
    std::string out = "[";
    char buffer[64];
    for (std::int64_t i = 0; i < t.numel(); ++i) {
        std::snprintf(buffer, sizeof buffer, "%s%.*f", i ? ", " : "", decimals, static_cast<double>(t[i]));
        out += buffer;
    }
    return out + "]";
}

/// Prints a rank-2 view (rows x cols) of `t`, one row per line, each line indented.
template <class T>
void print_matrix(const cnnlite::Tensor<T>& t, std::int64_t rows, std::int64_t cols, int decimals = 0,
                  int width = 4) {
    for (std::int64_t r = 0; r < rows; ++r) {
        std::printf("   ");
        for (std::int64_t c = 0; c < cols; ++c)
            std::printf(" %*.*f", width, decimals, static_cast<double>(t[r * cols + c]));
        std::printf("\n");
    }
}

/// Throws (and so fails the program) unless `a` and `b` agree element by element within `tol`.
template <class A, class B>
void expect_close(const char* what, const cnnlite::Tensor<A>& a, const cnnlite::Tensor<B>& b, double tol = 1e-6) {
    cnnlite::check(a.numel() == b.numel(), what, ": ", a.numel(), " vs ", b.numel(), " elements");
    for (std::int64_t i = 0; i < a.numel(); ++i)
        cnnlite::check(std::fabs(static_cast<double>(a[i]) - static_cast<double>(b[i])) <= tol, what, ": element ",
                       i, " is ", a[i], ", expected ", b[i]);
}

}  // namespace tutorial

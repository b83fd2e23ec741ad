// A program outside the cnnlite tree, built by CI against an installed cnnlite (find_package,
// pkg-config) and as a Meson subproject: proves that the umbrella header and every dependency
// it needs reach a consumer. Exits 1 if the numbers are wrong.
#include <cnnlite/cnnlite.hpp>

#include <iostream>

int main() {
    using cnnlite::Tensor;
    using cnnlite::Variable;
    Variable<float> a(Tensor<float>::from({2, 2}, {1, 2, 3, 4}), /*requires_grad=*/true);
    Variable<float> b(Tensor<float>::from({2, 2}, {5, 6, 7, 8}));
    Variable<float> loss = cnnlite::sum(cnnlite::matmul(a, b));
    loss.backward();

    // a b = [[19, 22], [43, 50]], sum 134; d sum(a b) / da = ones b^T, so da(0, 0) = 5 + 6.
    const float value = loss.value()[0];
    const float grad = a.grad()(0, 0);
    std::cout << "cnnlite " << cnnlite::version() << " (OpenMP " << (cnnlite::has_openmp() ? "on" : "off")
              << "): sum(a b) = " << value << ", d/da00 = " << grad << "\n";
    return value == 134.0f && grad == 11.0f ? 0 : 1;
}

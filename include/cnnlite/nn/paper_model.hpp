// The network of the Fashion-MNIST study that cnnlite reproduces (its Figure 4): one 2x2
// convolution with 64 filters, two pooling stages with dropout, a 256-unit dense layer and a
// softmax over 10 classes — 805,962 parameters.
#pragma once

#include "cnnlite/nn/conv2d.hpp"
#include "cnnlite/nn/dense.hpp"
#include "cnnlite/nn/dropout.hpp"
#include "cnnlite/nn/flatten.hpp"
#include "cnnlite/nn/max_pool2d.hpp"
#include "cnnlite/nn/sequential.hpp"

namespace cnnlite {

/// The paper's CNN for 1x28x28 inputs, Keras initialisation from `seed`.
template <class T = float>
Sequential<T> fashion_mnist_cnn(std::uint64_t seed = 0, InitScheme scheme = InitScheme::keras) {
    Sequential<T> model(Shape{1, 28, 28}, seed, scheme);
    model.add(Conv2D<T>(64, 2).padding("same").activation("relu"));
    model.add(MaxPool2D<T>(2, 2));
    model.add(Dropout<T>(0.3));
    model.add(MaxPool2D<T>(2, 2));
    model.add(Dropout<T>(0.3));
    model.add(Flatten<T>());
    model.add(Dense<T>(256).activation("relu"));
    model.add(Dropout<T>(0.5));
    model.add(Dense<T>(10).activation("softmax"));
    return model;
}

}  // namespace cnnlite

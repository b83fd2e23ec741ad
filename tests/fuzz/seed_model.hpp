// The tiny network of the model and checkpoint seeds (make_seeds.cpp) and of the checkpoint
// reads in fuzz_safetensors.cpp: every layer type with parameters, 47 weights in all.
#pragma once

#include "cnnlite/nn/conv2d.hpp"
#include "cnnlite/nn/dense.hpp"
#include "cnnlite/nn/flatten.hpp"
#include "cnnlite/nn/max_pool2d.hpp"
#include "cnnlite/nn/sequential.hpp"

namespace fuzz {

inline cnnlite::Sequential<float> seed_model() {
    cnnlite::Sequential<float> model(cnnlite::Shape{1, 6, 6}, /*seed=*/1);
    model.add(cnnlite::Conv2D<float>(2, 3).activation("relu"));
    model.add(cnnlite::MaxPool2D<float>(2, 2));
    model.add(cnnlite::Flatten<float>());
    model.add(cnnlite::Dense<float>(3).activation("softmax"));
    return model;
}

}  // namespace fuzz

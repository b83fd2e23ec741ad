// Sequential: a stack of layers run one after the other, named like Keras (conv2d, dense,
// dense_1, ... with counters per model), built as layers are added. It is a Model whose graph
// is a chain, so everything that takes a Model (fit, evaluate, model files, explanations)
// takes it.
#pragma once

#include <memory>
#include <string>
#include <type_traits>
#include <utility>

#include "cnnlite/nn/model.hpp"

namespace cnnlite {

/// A stack of layers run in order, named like Keras, built as they are added: the chain-shaped Model.
template <class T = float>
class Sequential : public Model<T> {
public:
    /// A model for per-sample inputs of `input_shape` (e.g. {1, 28, 28}); weights drawn from
    /// `seed` with the given initialisation scheme.
    explicit Sequential(Shape input_shape, std::uint64_t seed = 0, InitScheme scheme = InitScheme::keras)
        : Model<T>(input_shape, seed, scheme) {}

    /// Adds a copy of `layer`, names it (unless named) and builds it; returns the added layer.
    template <class L, class = std::enable_if_t<std::is_base_of<Layer<T>, L>::value>>
    L& add(const L& layer) {
        auto owned = std::make_unique<L>(layer);
        L& ref = *owned;
        add(std::unique_ptr<Layer<T>>(std::move(owned)));
        return ref;
    }

    /// Adds `layer` (unbuilt) after the last one, names it (unless named) and builds it.
    Layer<T>& add(std::unique_ptr<Layer<T>> layer) {
        check(layer != nullptr, "Sequential::add: null layer");
        const std::string previous = this->size() == 0 ? std::string(model_input_name()) : this->layer(this->size() - 1).name();
        return this->connect(std::move(layer), {previous});
    }
};

}  // namespace cnnlite

// Opt-in faster builds: the float and double instantiations that a training program spends most
// of its compile time on (every layer, the models, the optimisers and callbacks, fit, evaluate,
// checkpoints, model files and summary) declared `extern`, so that a translation unit including
// this header does not compile them again. Exactly one translation unit of the program defines
// them:
//
//     // cnnlite_instantiations.cpp
//     #define CNNLITE_INSTANTIATE
//     #include <cnnlite/extern_templates.hpp>
//
// Without this header nothing changes: the library stays header-only. examples/quickstart is
// built both ways (quickstart and quickstart_precompiled); the README's "Compile time" has the
// figures.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "cnnlite/data/dataset.hpp"
#include "cnnlite/io/model_file.hpp"
#include "cnnlite/nn.hpp"
#include "cnnlite/optim.hpp"
#include "cnnlite/train.hpp"

#ifdef CNNLITE_INSTANTIATE
#define CNNLITE_EXTERN_TEMPLATE template
#else
#define CNNLITE_EXTERN_TEMPLATE extern template
#endif

// One element type's instantiations; a class's explicit instantiation covers all its members.
#define CNNLITE_EXTERN_TEMPLATES_FOR(T)                                                                          \
    CNNLITE_EXTERN_TEMPLATE class Model<T>;                                                                      \
    CNNLITE_EXTERN_TEMPLATE class Sequential<T>;                                                                 \
    CNNLITE_EXTERN_TEMPLATE class ActivationLayer<T>;                                                            \
    CNNLITE_EXTERN_TEMPLATE class Add<T>;                                                                        \
    CNNLITE_EXTERN_TEMPLATE class AvgPool2D<T>;                                                                  \
    CNNLITE_EXTERN_TEMPLATE class BatchNormalization<T>;                                                         \
    CNNLITE_EXTERN_TEMPLATE class Concatenate<T>;                                                                \
    CNNLITE_EXTERN_TEMPLATE class Conv2D<T>;                                                                     \
    CNNLITE_EXTERN_TEMPLATE class Dense<T>;                                                                      \
    CNNLITE_EXTERN_TEMPLATE class Dropout<T>;                                                                    \
    CNNLITE_EXTERN_TEMPLATE class ELU<T>;                                                                        \
    CNNLITE_EXTERN_TEMPLATE class Flatten<T>;                                                                    \
    CNNLITE_EXTERN_TEMPLATE class GlobalAveragePooling2D<T>;                                                     \
    CNNLITE_EXTERN_TEMPLATE class GlobalMaxPooling2D<T>;                                                         \
    CNNLITE_EXTERN_TEMPLATE class LeakyReLU<T>;                                                                  \
    CNNLITE_EXTERN_TEMPLATE class MaxPool2D<T>;                                                                  \
    CNNLITE_EXTERN_TEMPLATE class ReLU<T>;                                                                       \
    CNNLITE_EXTERN_TEMPLATE class Softmax<T>;                                                                    \
    CNNLITE_EXTERN_TEMPLATE class SpatialDropout2D<T>;                                                           \
    CNNLITE_EXTERN_TEMPLATE class Adam<T>;                                                                       \
    CNNLITE_EXTERN_TEMPLATE class AdamW<T>;                                                                      \
    CNNLITE_EXTERN_TEMPLATE class SGD<T>;                                                                        \
    CNNLITE_EXTERN_TEMPLATE class ExponentialMovingAverage<T>;                                                   \
    CNNLITE_EXTERN_TEMPLATE class KeepBest<T>;                                                                   \
    CNNLITE_EXTERN_TEMPLATE class EarlyStopping<T>;                                                              \
    CNNLITE_EXTERN_TEMPLATE class CsvLogger<T>;                                                                  \
    CNNLITE_EXTERN_TEMPLATE History fit<T>(Model<T>&, Optimizer<T>&, const Dataset&, const Dataset*,             \
                                           const FitOptions&, const std::vector<Callback<T>*>&, History);        \
    CNNLITE_EXTERN_TEMPLATE History resume_fit<T>(Model<T>&, Optimizer<T>&, const Dataset&, const Dataset*,      \
                                                  const FitOptions&, const TrainingState&,                       \
                                                  const std::vector<Callback<T>*>&);                             \
    CNNLITE_EXTERN_TEMPLATE Evaluation evaluate<T>(const Model<T>&, const Dataset&, const EvaluateOptions&);     \
    CNNLITE_EXTERN_TEMPLATE Evaluation evaluate<T>(const Model<T>&, const Dataset&, std::int64_t);               \
    CNNLITE_EXTERN_TEMPLATE void save_checkpoint<T>(const std::string&, const Model<T>&, const Optimizer<T>&,     \
                                                    const TrainingState&, const KeepBest<T>*,                    \
                                                    const EarlyStopping<T>*);                                    \
    CNNLITE_EXTERN_TEMPLATE TrainingState load_checkpoint<T>(const std::string&, const Model<T>&, Optimizer<T>&, \
                                                             detail::Exactly<KeepBest<T>>*,                      \
                                                             detail::Exactly<EarlyStopping<T>>*);                \
    CNNLITE_EXTERN_TEMPLATE void save_model<T>(const Model<T>&, const std::string&,                              \
                                               const std::map<std::string, std::string>&);                       \
    CNNLITE_EXTERN_TEMPLATE Model<T> load_model<T>(const std::string&);                                          \
    CNNLITE_EXTERN_TEMPLATE void load_weights<T>(const Model<T>&, const std::string&, const WeightMatching&);    \
    CNNLITE_EXTERN_TEMPLATE std::string summary<T>(const Model<T>&, const std::string&);

/// \cond EXTERN_TEMPLATES (declarations of instantiations, not API of their own)
namespace cnnlite {
CNNLITE_EXTERN_TEMPLATES_FOR(float)
CNNLITE_EXTERN_TEMPLATES_FOR(double)
}  // namespace cnnlite
/// \endcond

#undef CNNLITE_EXTERN_TEMPLATES_FOR
#undef CNNLITE_EXTERN_TEMPLATE

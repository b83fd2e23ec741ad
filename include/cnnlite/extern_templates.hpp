// Opt-in faster builds: the float instantiations that a training program spends most of its
// compile time on (fit, evaluate, model files, Adam, Model, Sequential) declared `extern`, so that a
// translation unit including this header does not compile them again. Exactly one translation
// unit of the program defines them:
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
#include "cnnlite/nn/sequential.hpp"
#include "cnnlite/nn/summary.hpp"
#include "cnnlite/optim/adam.hpp"
#include "cnnlite/train/evaluate.hpp"
#include "cnnlite/train/fit.hpp"

#ifdef CNNLITE_INSTANTIATE
#define CNNLITE_EXTERN_TEMPLATE template
#else
#define CNNLITE_EXTERN_TEMPLATE extern template
#endif

/// \cond EXTERN_TEMPLATES (declarations of instantiations, not API of their own)
namespace cnnlite {

CNNLITE_EXTERN_TEMPLATE class Model<float>;
CNNLITE_EXTERN_TEMPLATE class Sequential<float>;
CNNLITE_EXTERN_TEMPLATE class Adam<float>;
CNNLITE_EXTERN_TEMPLATE History fit<float>(Model<float>&, Optimizer<float>&, const Dataset&, const Dataset*,
                                           const FitOptions&, const std::vector<Callback<float>*>&, History);
CNNLITE_EXTERN_TEMPLATE Evaluation evaluate<float>(const Model<float>&, const Dataset&, std::int64_t);
CNNLITE_EXTERN_TEMPLATE void save_model<float>(const Model<float>&, const std::string&,
                                               const std::map<std::string, std::string>&);
CNNLITE_EXTERN_TEMPLATE Model<float> load_model<float>(const std::string&);
CNNLITE_EXTERN_TEMPLATE void load_weights<float>(const Model<float>&, const std::string&, const WeightMatching&);
CNNLITE_EXTERN_TEMPLATE std::string summary<float>(const Model<float>&, const std::string&);

}  // namespace cnnlite
/// \endcond

#undef CNNLITE_EXTERN_TEMPLATE

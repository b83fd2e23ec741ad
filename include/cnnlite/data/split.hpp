// The paper's hold-out split: validation = the FIRST n_val samples of the training file,
// training = the rest (optionally only its first `limit` samples, for quick runs). Both parts
// are views of the loaded images, so splitting copies no pixels.
#pragma once

#include <cstdint>

#include "cnnlite/core/error.hpp"
#include "cnnlite/data/dataset.hpp"

namespace cnnlite {

/// `limit` value meaning "train on all samples left after the validation set".
inline constexpr std::int64_t no_limit = -1;

/// The two parts of a hold-out split.
struct TrainValidationSplit {
    Dataset train;       ///< samples [n_val, n_val + limit) of the source
    Dataset validation;  ///< samples [0, n_val) of the source
};

/// Splits off the first `n_val` samples as validation; training gets the next `limit`
/// samples (all the rest with no_limit). Global indices stay those of the source.
inline TrainValidationSplit split_train_validation(const Dataset& source, std::int64_t n_val,
                                                   std::int64_t limit = no_limit) {
    check(n_val >= 0, "split_train_validation: negative validation size ", n_val);
    check(n_val < source.size(), "split_train_validation: a validation set of ", n_val,
          " samples leaves no training samples in a data set of ", source.size());
    const std::int64_t rest = source.size() - n_val;
    check(limit == no_limit || limit >= 1, "split_train_validation: limit ", limit,
          " must be at least 1 (or no_limit for all ", rest, " remaining samples)");
    check(limit <= rest, "split_train_validation: limit ", limit, " exceeds the ", rest,
          " training samples left after the first ", n_val, " of ", source.size(), " for validation");
    TrainValidationSplit split;
    split.validation = source.slice(0, n_val);
    split.train = source.slice(n_val, limit == no_limit ? rest : limit);
    return split;
}

}  // namespace cnnlite

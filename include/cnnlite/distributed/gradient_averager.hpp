// GradientAverager: turns each rank's gradients into the gradient of the whole global batch.
// Rank r, which computed the mean loss over its n_r samples, contributes (n_r / N) * g_r, so
// the sum over the ranks is the gradient of the mean loss over all N samples, as one process
// would compute it. Gradients travel in buckets: consecutive parameters, taken in the order
// backward produces them (last layer first), packed into persistent flat buffers of about
// `bucket_bytes`, one allreduce per bucket. The buffers are allocated once, so a steady-state
// step allocates nothing here.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "cnnlite/autograd/variable.hpp"
#include "cnnlite/distributed/allreduce.hpp"
#include "cnnlite/distributed/communicator.hpp"

namespace cnnlite::distributed {

/// How gradients are reduced.
struct GradientOptions {
    std::int64_t bucket_bytes = std::int64_t(4) << 20;      ///< target size of one allreduce (bytes)
    ReduceAlgorithm algorithm = ReduceAlgorithm::ring;     ///< see allreduce.hpp
};

/// Weighted sum of the ranks' gradients of a fixed parameter list, bucket by bucket.
template <class T>
class GradientAverager {
public:
    /// For `params` (the same list, in the same order, on every rank).
    GradientAverager(const Communicator& comm, std::vector<Variable<T>> params, GradientOptions options = {})
        : comm_(comm), params_(std::move(params)), options_(options) {
        check(options_.bucket_bytes >= static_cast<std::int64_t>(sizeof(T)),
              "GradientAverager: bucket size must be at least one element, got ", options_.bucket_bytes, " bytes");
        const std::int64_t bucket_elements = options_.bucket_bytes / static_cast<std::int64_t>(sizeof(T));
        // Backward finishes the last layers first: bucket from the end of the list.
        for (std::size_t k = params_.size(); k-- > 0;) {
            const std::int64_t n = params_[k].value().numel();
            if (buckets_.empty() || (buckets_.back().elements > 0 && buckets_.back().elements + n > bucket_elements))
                buckets_.emplace_back();
            buckets_.back().params.push_back(k);
            buckets_.back().elements += n;
        }
        for (Bucket& b : buckets_) b.buffer.resize(static_cast<std::size_t>(b.elements));
        flags_.resize(params_.size());
    }

    /// Replaces every parameter's gradient on every rank by sum_r weight_r * grad_r, where
    /// `weight` is this rank's share (its samples / the global batch). `scalars` (e.g. loss
    /// sum, correct count) are summed over the ranks in the same call, in double. A parameter
    /// without a gradient counts as zero; it gets one when any rank had one. Collective.
    void average(double weight, std::vector<double>& scalars) {
        const auto start = std::chrono::steady_clock::now();
        if (comm_.size() == 1) {  // nothing to reduce: skip the copies (weight is 1 unless told)
            if (weight != 1.0)
                for (Variable<T>& p : params_)
                    if (p.has_grad()) p.grad().array() *= static_cast<T>(weight);
            last_seconds_ = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
            return;
        }
        const std::size_t count = params_.size();
        flags_.resize(count + scalars.size());
        for (std::size_t k = 0; k < count; ++k) flags_[k] = params_[k].has_grad() ? 1.0 : 0.0;
        std::copy(scalars.begin(), scalars.end(), flags_.begin() + static_cast<std::ptrdiff_t>(count));
        allreduce_sum(comm_, flags_.data(), static_cast<std::int64_t>(flags_.size()), options_.algorithm, scratch_double_);
        std::copy(flags_.begin() + static_cast<std::ptrdiff_t>(count), flags_.end(), scalars.begin());

        const T w = static_cast<T>(weight);
        for (Bucket& b : buckets_) {
            T* out = b.buffer.data();
            for (std::size_t k : b.params) {
                const Variable<T>& p = params_[k];
                const std::int64_t n = p.value().numel();
                if (p.has_grad()) {
                    const T* g = p.grad().data();
                    for (std::int64_t i = 0; i < n; ++i) out[i] = g[i] * w;
                } else {
                    std::fill(out, out + n, T(0));
                }
                out += n;
            }
            allreduce_sum(comm_, b.buffer.data(), b.elements, options_.algorithm, scratch_);
            const T* in = b.buffer.data();
            for (std::size_t k : b.params) {
                Variable<T>& p = params_[k];
                const std::int64_t n = p.value().numel();
                if (flags_[k] > 0) {
                    if (!p.has_grad()) p.grad() = Tensor<T>::uninitialized(p.value().shape());
                    std::copy(in, in + n, p.grad().data());
                }
                in += n;
            }
        }
        last_seconds_ = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    }

    /// Number of buckets (allreduce calls per step, besides the small one for the scalars).
    std::size_t num_buckets() const { return buckets_.size(); }
    /// Elements of bucket `b`.
    std::int64_t bucket_elements(std::size_t b) const { return buckets_.at(b).elements; }
    /// Wall time of the last average() (packing, reductions, unpacking), seconds.
    double last_seconds() const { return last_seconds_; }

private:
    struct Bucket {
        std::vector<std::size_t> params;  // indices into params_, in packing order
        std::int64_t elements = 0;
        std::vector<T> buffer;
    };

    Communicator comm_;
    std::vector<Variable<T>> params_;
    GradientOptions options_;
    std::vector<Bucket> buckets_;
    std::vector<double> flags_;  // [has-gradient count per parameter..., scalars...]
    std::vector<T> scratch_;
    std::vector<double> scratch_double_;
    double last_seconds_ = 0;
};

}  // namespace cnnlite::distributed

// Whether operations record the graph. NoGrad switches recording off for the current thread,
// so inference and the forward passes of explanation methods do not pay for graph building.
#pragma once

namespace cnnlite {

namespace detail {
inline bool& grad_enabled_flag() {
    thread_local bool enabled = true;
    return enabled;
}
}  // namespace detail

/// True unless a NoGrad guard is alive on this thread.
inline bool grad_enabled() { return detail::grad_enabled_flag(); }

/// RAII guard: while alive, operations on this thread record no graph.
class NoGrad {
public:
    NoGrad() : previous_(detail::grad_enabled_flag()) { detail::grad_enabled_flag() = false; }
    ~NoGrad() { detail::grad_enabled_flag() = previous_; }
    NoGrad(const NoGrad&) = delete;
    NoGrad& operator=(const NoGrad&) = delete;

private:
    bool previous_;
};

}  // namespace cnnlite

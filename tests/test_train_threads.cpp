// Training gives the same bits at any thread count (train_threads_cases.hpp), so the thread
// count is a setting of speed alone: a run may change it as it goes (core/thread_governor.hpp)
// or resume with another and still reproduce its weights.
#include <doctest/doctest.h>

#include "train_threads_cases.hpp"

TEST_CASE("training the paper's network gives the same weights and losses at 1, 2 and 3 threads") {
    train_threads_cases::check_paper_network();
}

TEST_CASE("training a residual network with the modern recipe gives the same weights at 1, 2 and 3 threads") {
    train_threads_cases::check_residual_network();
}

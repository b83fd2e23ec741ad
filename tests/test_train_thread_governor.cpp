// The thread governor's policy, fed made-up step times: on a quiet machine it keeps the team
// and spends few steps on one thread; with a core taken it switches to one thread; it follows
// the load when it comes and goes; with one thread it has nothing to choose. And fit() with a
// governor that switches all the time gives the weights of a fixed thread count.
#include <doctest/doctest.h>

#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "cnnlite/core/threading.hpp"
#include "cnnlite/data/fashion_mnist.hpp"
#include "cnnlite/nn/paper_model.hpp"
#include "cnnlite/optim/adam.hpp"
#include "cnnlite/train/fit.hpp"
#include "cnnlite/core/thread_governor.hpp"
#include "source_dir.hpp"

namespace test_train_thread_governor {

using namespace cnnlite;

// Runs `steps` steps whose time is `team_seconds` with the team and `one_seconds` with one
// thread; returns the steps run on one thread.
std::int64_t run(ThreadGovernor& g, std::int64_t steps, double team_seconds, double one_seconds) {
    std::int64_t one = 0;
    for (std::int64_t i = 0; i < steps; ++i) {
        const int threads = g.next_threads();
        REQUIRE((threads == 1 || threads == g.team()));
        one += threads == 1 ? 1 : 0;
        g.record(threads == 1 ? one_seconds : team_seconds);
    }
    return one;
}

TEST_CASE("thread governor: a quiet machine keeps the team after one probe of three one-thread steps") {
    ThreadGovernor g(2);
    // 0.1 s steps, one thread 1.9x slower: 2,000 steps are 200 s of training.
    const std::int64_t one = run(g, 2000, 0.1, 0.19);
    CHECK(g.next_threads() == 2);
    CHECK(g.probes() == 1);
    CHECK(g.probes_won_by_one_thread() == 0);
    CHECK(one == 3);
    CHECK(g.steps_one_thread() + g.steps_team() == 2000);
    // Steps that vary by less than the slowdown threshold start no probe.
    for (int i = 0; i < 500; ++i) g.record(i % 2 ? 0.13 : 0.09);
    CHECK(g.probes() == 1);
}

TEST_CASE("thread governor: with a core taken, one thread wins and keeps winning") {
    ThreadGovernor g(2);
    const std::int64_t one = run(g, 2000, 0.17, 0.1);  // the team waits for its descheduled member
    CHECK(g.next_threads() == 1);
    CHECK(g.probes_won_by_one_thread() == g.probes());
    // Probes after 5, 10, 20, 40 and 80 s of one-thread steps: 7 probes in 200 s.
    CHECK(g.probes() >= 5);
    CHECK(g.probes() <= 8);
    CHECK(one >= 2000 - 2 - 3 * 8);  // all but the warm-up and the team's probe steps
}

TEST_CASE("thread governor: follows the load when it comes and goes") {
    ThreadGovernor g(4);
    run(g, 500, 0.1, 0.3);  // quiet
    REQUIRE(g.next_threads() == 4);
    // Another process starts: the team's steps slow down 2x; a probe follows within the next
    // five steps (the slowdown test), and one thread wins.
    std::int64_t steps_to_switch = 0;
    while (g.next_threads() != 1 && steps_to_switch < 100) {
        g.record(g.next_threads() == 1 ? 0.15 : 0.2);
        ++steps_to_switch;
    }
    CHECK(g.next_threads() == 1);
    CHECK(steps_to_switch <= 5 + 3 + 3);
    // It stops: the next probe (within the first interval, 5 s of 0.3 s steps) returns to the team.
    run(g, 30, 0.1, 0.3);
    CHECK(g.next_threads() == 4);
}

TEST_CASE("thread governor: a new team size starts with a warm-up and a probe, the counts kept") {
    ThreadGovernor g(2);
    run(g, 100, 0.17, 0.1);  // one thread wins
    REQUIRE(g.next_threads() == 1);
    const std::int64_t probes = g.probes(), one = g.steps_one_thread(), team = g.steps_team();
    g.restart(3);
    CHECK(g.team() == 3);
    CHECK(g.next_threads() == 3);  // warm-up
    CHECK(run(g, 2 + 3 + 3, 0.1, 0.2) == 3);  // warm-up, then the probe's halves
    CHECK(g.next_threads() == 3);  // the new team won
    CHECK(g.probes() == probes + 1);
    CHECK(g.steps_one_thread() == one + 3);
    CHECK(g.steps_team() == team + 5);
    g.restart(1);
    CHECK(g.next_threads() == 1);
    CHECK_THROWS_AS(g.restart(0), Error);
}

TEST_CASE("thread governor: one thread has nothing to choose; settings are checked") {
    ThreadGovernor g(1);
    CHECK(run(g, 50, 0.1, 0.1) == 50);
    CHECK(g.probes() == 0);
    CHECK_THROWS_AS(ThreadGovernor(0), Error);
    ThreadGovernorOptions bad;
    bad.probe_steps = 0;
    CHECK_THROWS_AS(ThreadGovernor(2, bad), Error);
    bad = ThreadGovernorOptions{};
    bad.max_interval = 1;
    CHECK_THROWS_AS(ThreadGovernor(2, bad), Error);
    bad = ThreadGovernorOptions{};
    bad.slowdown = 1;
    CHECK_THROWS_AS(ThreadGovernor(2, bad), Error);
}

std::vector<std::uint32_t> weight_bits(const Model<float>& model) {
    std::vector<std::uint32_t> out;
    for (const auto& v : model.trainable_variables())
        for (std::int64_t i = 0; i < v.value().numel(); ++i) {
            std::uint32_t b = 0;
            std::memcpy(&b, &v.value().data()[i], sizeof b);
            out.push_back(b);
        }
    return out;
}

TEST_CASE("fit with a governor that switches thread counts every few steps gives the weights of a fixed count") {
    const FashionMnist data = load_fashion_mnist(test_support::source_dir().string() + "/data/fixtures");
    const int before = num_threads();
    set_num_threads(2);
    const int team = num_threads();  // 1 in a build without OpenMP
    auto train = [&](bool adapt) {
        auto model = fashion_mnist_cnn<float>(1);
        Adam<float> adam(model.trainable_variables());
        FitOptions o;
        o.epochs = 2;
        o.verbosity = Verbosity::silent;
        o.adapt_threads = adapt;
        o.thread_governor.warmup_steps = 0;
        o.thread_governor.probe_steps = 1;
        // One thread always wins, and probes follow every step: team, one, one, team, one, one, ...
        o.thread_governor.one_thread_margin = 1e9;
        o.thread_governor.first_interval = 0;
        o.thread_governor.max_interval = 0;
        const History h = fit(model, adam, data.train, &data.test, o);
        CHECK(num_threads() == team);  // fit restores the team
        return std::make_pair(weight_bits(model), h);
    };
    const auto [fixed, fixed_history] = train(false);
    const auto [switching, switching_history] = train(true);
    CHECK(fixed_history.epochs.back().one_thread_share == 0);
    if (team > 1) {  // without OpenMP there is one thread and nothing to switch
        CHECK(switching_history.epochs.back().one_thread_share > 0.5);
        CHECK(switching_history.epochs.back().one_thread_share < 0.9);
    }
    CHECK(switching_history.epochs.back().val_loss == fixed_history.epochs.back().val_loss);
    CHECK(switching == fixed);
    set_num_threads(before);
}

}  // namespace test_train_thread_governor

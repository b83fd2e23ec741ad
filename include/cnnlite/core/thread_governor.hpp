// The thread count of repeated work (training steps, predictions) on a machine that other
// processes share. With every core busy but one, a team of threads runs slower than one thread:
// each parallel region waits for the member whose core the other process holds
// (benchmarks/README.md, "A busy machine"). The governor times a few steps with the full team
// and a few with one thread (a probe) when the work starts, and runs the rest with the faster.
// While the team runs, it watches the team's step times and probes again when they slow down by
// 40% (another process has started); while one thread runs, it probes again after 5 s of steps,
// then less often as long as one thread keeps winning (the other process may have ended). So a
// quiet machine pays for one probe, three steps on one thread. Every kernel gives the same bits
// at any thread count (kernels/parallel.hpp, tests/test_train_threads.cpp), so the choice
// changes the speed of the work, never its results. fit() governs its training steps with it
// (FitOptions::adapt_threads) and InferenceModel its predictions (InferenceOptions).
// The governor only decides; it is fed step times and never reads a clock, so that its policy
// can be tested with made-up times (tests/test_train_thread_governor.cpp).
#pragma once

#include <algorithm>
#include <cstdint>
#include <vector>

#include "cnnlite/core/error.hpp"

namespace cnnlite {

/// The settings of a ThreadGovernor; the defaults are fit()'s and InferenceModel's.
struct ThreadGovernorOptions {
    int warmup_steps = 2;         ///< first steps run with the team and not timed (they size buffers)
    int probe_steps = 3;          ///< steps timed with each count in a probe; their median counts
    double first_interval = 5.0;  ///< seconds of one-thread steps before the next probe, after one thread first won
    double max_interval = 80.0;   ///< the interval doubles while one thread keeps winning, up to this
    double one_thread_margin = 0.9;  ///< one thread wins when its median step time is below this fraction of the team's
    double slowdown = 1.4;  ///< the team's last steps this many times slower than at its probe: probe now
};

/// Chooses between a team of `threads` threads and one thread for each step of repeated work, by
/// timing both (see the top of this header). Call next_threads() before a step and record() after
/// it.
class ThreadGovernor {
public:
    /// A governor for a team of `threads` (>= 1; with 1 there is nothing to choose).
    explicit ThreadGovernor(int threads, ThreadGovernorOptions options = {}) : team_(threads), options_(options) {
        check(threads >= 1, "ThreadGovernor: need at least one thread, got ", threads);
        check(options.warmup_steps >= 0 && options.probe_steps >= 1, "ThreadGovernor: warm-up steps ",
              options.warmup_steps, " and probe steps ", options.probe_steps, " must be >= 0 and >= 1");
        check(options.first_interval >= 0 && options.max_interval >= options.first_interval,
              "ThreadGovernor: intervals must satisfy 0 <= first ", options.first_interval, " <= max ",
              options.max_interval);
        check(options.one_thread_margin > 0 && options.slowdown > 1, "ThreadGovernor: margin ",
              options.one_thread_margin, " must be positive and slowdown ", options.slowdown, " above 1");
        interval_ = options.first_interval;
        phase_ = options.warmup_steps > 0 ? Phase::warmup : Phase::probe_team;
        // Sized once, so that a step never allocates (tests/test_train_allocation.cpp).
        team_times_.reserve(static_cast<std::size_t>(options.probe_steps));
        one_times_.reserve(static_cast<std::size_t>(options.probe_steps));
        scratch_.reserve(std::max<std::size_t>(static_cast<std::size_t>(options.probe_steps), recent_.size()));
    }

    /// The thread count for the next step: the team while warming up and in the first half of a
    /// probe, one thread in its second half, then the probe's winner.
    int next_threads() const {
        if (team_ == 1) return 1;
        if (phase_ == Phase::probe_one) return 1;
        if (phase_ == Phase::run) return choice_;
        return team_;  // warm-up, probe_team
    }

    /// Records the wall time of the step just run with next_threads()'s count.
    void record(double seconds) {
        const int used = next_threads();
        (used == 1 ? steps_one_ : steps_team_) += 1;
        if (team_ == 1) return;
        switch (phase_) {
            case Phase::warmup:
                if (++warmup_done_ >= options_.warmup_steps) start_probe();
                break;
            case Phase::probe_team:
                team_times_.push_back(seconds);
                if (static_cast<int>(team_times_.size()) == options_.probe_steps) phase_ = Phase::probe_one;
                break;
            case Phase::probe_one:
                one_times_.push_back(seconds);
                if (static_cast<int>(one_times_.size()) == options_.probe_steps) decide();
                break;
            case Phase::run:
                since_probe_ += seconds;
                if (choice_ == team_) {
                    recent_[recent_count_++ % recent_.size()] = seconds;
                    if (recent_count_ >= recent_.size() && median(recent_) > options_.slowdown * team_reference_) {
                        interval_ = options_.first_interval;  // the load changed: react, then look again soon
                        start_probe();
                        break;
                    }
                }
                if (choice_ == 1 && since_probe_ >= interval_) start_probe();
                break;
        }
    }

    /// Governs a team of `threads` (>= 1) from now on, as a new governor would (warm-up, then a
    /// probe), keeping the counts of steps and probes.
    void restart(int threads) {
        check(threads >= 1, "ThreadGovernor: need at least one thread, got ", threads);
        team_ = threads;
        choice_ = 0;
        warmup_done_ = 0;
        interval_ = options_.first_interval;
        since_probe_ = 0;
        recent_count_ = 0;
        team_times_.clear();
        one_times_.clear();
        phase_ = options_.warmup_steps > 0 ? Phase::warmup : Phase::probe_team;
    }

    /// The team's size.
    int team() const { return team_; }
    /// Steps run so far with one thread (probes included).
    std::int64_t steps_one_thread() const { return steps_one_; }
    /// Steps run so far with the team (probes and warm-up included).
    std::int64_t steps_team() const { return steps_team_; }
    /// Probes decided so far.
    std::int64_t probes() const { return probes_; }
    /// Probes that chose one thread.
    std::int64_t probes_won_by_one_thread() const { return one_wins_; }

private:
    enum class Phase { warmup, probe_team, probe_one, run };

    // The median (the upper one of an even count), in a scratch copy.
    double median(const std::vector<double>& v) {
        scratch_.assign(v.begin(), v.end());
        std::nth_element(scratch_.begin(), scratch_.begin() + static_cast<std::ptrdiff_t>(scratch_.size() / 2),
                         scratch_.end());
        return scratch_[scratch_.size() / 2];
    }

    void start_probe() {
        team_times_.clear();
        one_times_.clear();
        phase_ = Phase::probe_team;
    }

    void decide() {
        const double team = median(team_times_), one = median(one_times_);
        const int winner = one < options_.one_thread_margin * team ? 1 : team_;
        ++probes_;
        if (winner == 1) ++one_wins_;
        // The same answer again: look less often; a new one: look again soon.
        interval_ = winner == choice_ ? std::min(2 * interval_, options_.max_interval) : options_.first_interval;
        choice_ = winner;
        team_reference_ = team;
        since_probe_ = 0;
        recent_count_ = 0;
        phase_ = Phase::run;
    }

    int team_;
    ThreadGovernorOptions options_;
    Phase phase_ = Phase::warmup;
    int choice_ = 0;  // no choice before the first probe
    int warmup_done_ = 0;
    double interval_ = 0, since_probe_ = 0, team_reference_ = 0;
    std::vector<double> team_times_, one_times_, scratch_;
    std::vector<double> recent_ = std::vector<double>(5);
    std::size_t recent_count_ = 0;
    std::int64_t steps_one_ = 0, steps_team_ = 0, probes_ = 0, one_wins_ = 0;
};

}  // namespace cnnlite

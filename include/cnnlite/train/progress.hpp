// Progress of a training epoch: a live bar on a terminal (step n/N, elapsed, ETA, running loss
// and accuracy, images/s), one plain line per epoch when the output is not a terminal.
#pragma once

#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <string>

namespace cnnlite {

/// How much fit() prints.
enum class Verbosity {
    silent,  ///< nothing
    auto_,   ///< a live bar on a terminal, a line per epoch otherwise
    lines,   ///< a line per epoch, never a live bar
};

namespace detail {
inline std::string format_duration(double seconds) {
    if (!std::isfinite(seconds) || seconds < 0) seconds = 0;
    const long s = static_cast<long>(seconds + 0.5);
    char buffer[32];
    if (s >= 3600) std::snprintf(buffer, sizeof buffer, "%ld:%02ld:%02ld", s / 3600, (s / 60) % 60, s % 60);
    else std::snprintf(buffer, sizeof buffer, "%02ld:%02ld", s / 60, s % 60);
    return buffer;
}
}  // namespace detail

/// The progress display of fit(): a live bar on a terminal, one line per epoch otherwise, nothing when silent.
class ProgressBar {
public:
    /// Writes to `out` as `verbosity` says.
    ProgressBar(Verbosity verbosity, std::FILE* out = stdout)
        : out_(out), live_(verbosity == Verbosity::auto_ && isatty(fileno(out))), enabled_(verbosity != Verbosity::silent) {}

    /// Starts epoch `epoch` of `epochs`, with `steps` steps.
    void start_epoch(std::int64_t epoch, std::int64_t epochs, std::int64_t steps) {
        epoch_ = epoch, epochs_ = epochs, steps_ = steps;
        start_ = std::chrono::steady_clock::now();
        last_draw_ = start_ - std::chrono::seconds(1);
    }

    /// After each step: running mean loss and accuracy, images so far in this epoch.
    void update(std::int64_t step, double loss, double accuracy, std::int64_t images) {
        if (!live_ || !enabled_) return;
        const auto now = std::chrono::steady_clock::now();
        if (step < steps_ && now - last_draw_ < std::chrono::milliseconds(100)) return;  // ~10 redraws/s
        last_draw_ = now;
        const double elapsed = std::chrono::duration<double>(now - start_).count();
        const double eta = step > 0 ? elapsed * static_cast<double>(steps_ - step) / static_cast<double>(step) : 0;
        const int width = 24;
        const int filled = steps_ ? static_cast<int>(width * step / steps_) : width;
        std::string bar(static_cast<std::size_t>(filled), '=');
        if (filled < width) bar += '>' + std::string(static_cast<std::size_t>(width - filled - 1), '.');
        std::fprintf(out_, "\rEpoch %lld/%lld %lld/%lld [%s] %s<%s loss %.4f acc %.4f %.0f img/s ",
                     static_cast<long long>(epoch_), static_cast<long long>(epochs_), static_cast<long long>(step),
                     static_cast<long long>(steps_), bar.c_str(), detail::format_duration(elapsed).c_str(),
                     detail::format_duration(eta).c_str(), loss, accuracy,
                     elapsed > 0 ? static_cast<double>(images) / elapsed : 0.0);
        std::fflush(out_);
    }

    /// The epoch's summary line (replaces the live bar).
    void end_epoch(const std::string& summary) {
        if (!enabled_) return;
        if (live_) std::fprintf(out_, "\r\033[K");
        std::fprintf(out_, "%s\n", summary.c_str());
        std::fflush(out_);
    }

private:
    std::FILE* out_;
    bool live_;
    bool enabled_;
    std::int64_t epoch_ = 0, epochs_ = 0, steps_ = 0;
    std::chrono::steady_clock::time_point start_, last_draw_;
};

}  // namespace cnnlite

// Counter-based random numbers: every draw is a pure function of (seed, purpose, a, b, index),
// computed by hashing rather than by advancing a shared state. Results therefore do not
// depend on how many threads (or processes) share the work, nor on the order they run in.
#pragma once

#include <cmath>
#include <cstdint>

namespace cnnlite {

/// What a random stream is used for; part of its key so that streams never collide.
enum class Purpose : std::uint64_t {
    init = 1,      ///< weight initialisation (a = layer index, b = tensor index)
    shuffle = 2,   ///< per-epoch shuffling (a = epoch)
    dropout = 3,   ///< dropout masks (a = layer index, b = training step)
    data = 4,      ///< data augmentation, sampling of examples
    user = 100,    ///< free for user code
    augmentation = 5,  ///< per-sample augmentation (a = epoch, b = global sample index)
};

namespace detail {

/// SplitMix64's output function (Steele, Lea, Flood 2014): a bijective 64-bit mixer.
constexpr std::uint64_t mix64(std::uint64_t z) {
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}
constexpr std::uint64_t golden_gamma = 0x9E3779B97F4A7C15ULL;

}  // namespace detail

/// A random stream keyed by (seed, purpose, a, b). `bits(i)` is the i-th 64-bit draw: the
/// value SplitMix64 would produce at position i of a sequence seeded with the stream's key.
class RandomStream {
public:
    /// The stream keyed by (seed, purpose, a, b); different keys give independent streams.
    constexpr RandomStream(std::uint64_t seed, Purpose purpose, std::uint64_t a = 0, std::uint64_t b = 0)
        : key_(derive(seed, static_cast<std::uint64_t>(purpose), a, b)) {}

    /// The 64-bit key derived from (seed, purpose, a, b).
    constexpr std::uint64_t key() const { return key_; }

    /// The `index`-th 64-bit draw (a pure function of the key and the index).
    constexpr std::uint64_t bits(std::uint64_t index) const {
        return detail::mix64(key_ + (index + 1) * detail::golden_gamma);
    }
    /// Uniform in [0, 1) with 24 random bits (every float in the grid is exactly representable).
    float uniform_float(std::uint64_t index) const {
        return static_cast<float>(bits(index) >> 40) * (1.0f / 16777216.0f);
    }
    /// Uniform in [0, 1) with 53 random bits.
    double uniform(std::uint64_t index) const {
        return static_cast<double>(bits(index) >> 11) * (1.0 / 9007199254740992.0);
    }
    /// Standard normal draw number `index` (Box-Muller over two derived uniforms).
    double normal(std::uint64_t index) const {
        const double u1 = (static_cast<double>(bits(2 * index) >> 11) + 0.5) * (1.0 / 9007199254740992.0);
        const double u2 = uniform(2 * index + 1);
        return std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586476925 * u2);
    }
    /// Uniform integer in [0, n) without modulo bias worth noting (Lemire's multiply-shift).
    std::uint64_t below(std::uint64_t index, std::uint64_t n) const {
        return static_cast<std::uint64_t>((static_cast<unsigned __int128>(bits(index)) * n) >> 64);
    }

private:
    static constexpr std::uint64_t derive(std::uint64_t seed, std::uint64_t purpose, std::uint64_t a,
                                          std::uint64_t b) {
        std::uint64_t k = detail::mix64(seed + detail::golden_gamma);
        k = detail::mix64(k ^ (purpose * 0xD1B54A32D192ED03ULL));
        k = detail::mix64(k ^ (a + 0x8CB92BA72F3D8DD7ULL));
        k = detail::mix64(k ^ (b * 0xABC98388FB8FAC03ULL + 0x5851F42D4C957F2DULL));
        return k;
    }

    std::uint64_t key_;
};

}  // namespace cnnlite

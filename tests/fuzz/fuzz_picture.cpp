// Fuzz target: reading a user's picture (viz/image_read.hpp: PNG through libpng, JPEG through
// libjpeg, every other format refused) and bringing it to the network's input
// (viz/mnist_style.hpp), the path `fashion_mnist predict` takes. Every input must either decode
// or throw cnnlite::Error. What decodes must respect the limits and decode the same way twice,
// and its MNIST-style input must be a 28 x 28 grey picture whose brightest pixel is 255 or 0.
#include <algorithm>
#include <cstdint>

#include "cnnlite/viz/image_read.hpp"
#include "cnnlite/viz/mnist_style.hpp"
#include "fuzz_support.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    // Small limits keep each execution fast; the checks are the same at any limit.
    cnnlite::viz::ImageReadLimits limits;
    limits.max_pixels = 1 << 20;
    limits.max_jpeg_scans = 50;
    cnnlite::viz::Image picture;
    try {
        picture = cnnlite::viz::decode_image(data, size, "fuzz input", limits);
    } catch (const cnnlite::Error&) {
        return 0;
    }
    if (picture.empty()) fuzz::violated("a decoded picture has no pixels");
    if (static_cast<std::uint64_t>(picture.width()) * static_cast<std::uint64_t>(picture.height()) > limits.max_pixels)
        fuzz::violated("a decoded picture exceeds the pixel limit");
    const cnnlite::viz::Image again = cnnlite::viz::decode_image(data, size, "fuzz input", limits);
    if (again.width() != picture.width() || again.height() != picture.height() ||
        !std::equal(picture.data(), picture.data() + picture.size(), again.data()))
        fuzz::violated("decoding the same bytes twice gave different pictures");

    const cnnlite::viz::MnistStyleInput input = cnnlite::viz::to_mnist_style(picture);
    if (input.image.width() != 28 || input.image.height() != 28 || input.image.channels() != 1)
        fuzz::violated("the MNIST-style input is not 28 x 28 grey");
    const std::uint8_t brightest = *std::max_element(input.image.data(), input.image.data() + input.image.size());
    if (brightest != 255 && brightest != 0) fuzz::violated("the MNIST-style input is not stretched to 0..255");
    return 0;
}

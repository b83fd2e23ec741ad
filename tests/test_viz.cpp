// Tests of cnnlite/viz: colour maps and overlays against matplotlib's own numbers, PNG round
// trips, text, grids, SVG charts and the HTML report.
#include <doctest/doctest.h>

#include <sys/stat.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "cnnlite/viz/bar_chart.hpp"
#include "cnnlite/viz/colormap.hpp"
#include "cnnlite/viz/detail/base64.hpp"
#include "cnnlite/viz/grid.hpp"
#include "cnnlite/viz/heatmap_chart.hpp"
#include "cnnlite/viz/histogram_chart.hpp"
#include "cnnlite/viz/image.hpp"
#include "cnnlite/viz/image_io.hpp"
#include "cnnlite/viz/image_read.hpp"
#include "cnnlite/viz/mnist_style.hpp"
#include "cnnlite/viz/line_chart.hpp"
#include "cnnlite/viz/overlay.hpp"
#include "cnnlite/viz/report.hpp"
#include "cnnlite/viz/scatter_chart.hpp"
#include "cnnlite/viz/svg.hpp"
#include "cnnlite/viz/text.hpp"
#include "picture_bytes.hpp"
#include "error_message.hpp"
#include "source_dir.hpp"

namespace doctest {
template <>
struct StringMaker<cnnlite::viz::Rgb> {
    static String convert(const cnnlite::viz::Rgb& c) {
        return ("(" + std::to_string(c.r) + ", " + std::to_string(c.g) + ", " + std::to_string(c.b) + ")").c_str();
    }
};
}  // namespace doctest

namespace test_viz {

using test_support::error_of;
using test_support::contains;

namespace fs = std::filesystem;
using namespace cnnlite;
using namespace cnnlite::viz;

namespace {

/// The lines of tests/fixtures/viz/matplotlib_reference.txt, split into tokens, by first token.
const std::multimap<std::string, std::vector<std::string>>& reference() {
    static const auto table = [] {
        std::multimap<std::string, std::vector<std::string>> lines;
        const std::string path = test_support::source_dir().string() + "/tests/fixtures/viz/matplotlib_reference.txt";
        std::ifstream in(path);
        REQUIRE_MESSAGE(in, "missing fixture " << path);
        std::string line;
        while (std::getline(in, line)) {
            if (line.empty() || line[0] == '#') continue;
            std::istringstream words(line);
            std::vector<std::string> tokens;
            for (std::string t; words >> t;) tokens.push_back(t);
            lines.emplace(tokens[0], std::vector<std::string>(tokens.begin() + 1, tokens.end()));
        }
        return lines;
    }();
    return table;
}

double number(const std::string& s) { return std::strtod(s.c_str(), nullptr); }

/// A fresh scratch folder under the system temp directory, removed again at the end of the test.
struct Scratch {
    explicit Scratch(const std::string& name)
        : path(fs::temp_directory_path() / ("cnnlite_test_viz_" + name + "_" + std::to_string(std::random_device{}()))) {
        fs::create_directories(path);
    }
    ~Scratch() {
        std::error_code ignored;
        fs::remove_all(path, ignored);
    }
    Scratch(const Scratch&) = delete;
    Scratch& operator=(const Scratch&) = delete;
    fs::path path;
};

}  // namespace

TEST_CASE("colour maps: lookup tables equal matplotlib's, entry by entry") {
    int checked = 0;
    for (const auto& line : reference()) {
        const std::string& kind = line.first;
        const std::vector<std::string>& t = line.second;
        if (kind != "lut") continue;
        const Colormap& map = Colormap::by_name(t[0]);
        const auto& e = map.entry(std::stoi(t[1]));
        for (int k = 0; k < 3; ++k) CHECK(e[static_cast<std::size_t>(k)] == number(t[2 + k]));
        ++checked;
    }
    CHECK(checked == 3 * 256 + 3 * 7);  // jet, gray, Blues completely; spot entries of the listed maps
}

TEST_CASE("colour maps: bytes and float queries equal matplotlib's") {
    int checked = 0;
    for (const auto& line : reference()) {
        const std::string& kind = line.first;
        const std::vector<std::string>& t = line.second;
        if (kind == "bytes") {
            const Rgb c = Colormap::by_name(t[0]).color(std::stoi(t[1]));
            CHECK(Rgb{static_cast<std::uint8_t>(std::stoi(t[2])), static_cast<std::uint8_t>(std::stoi(t[3])),
                      static_cast<std::uint8_t>(std::stoi(t[4]))} == c);
            ++checked;
        } else if (kind == "query") {
            const Rgb c = Colormap::by_name(t[0])(number(t[1]));
            INFO(t[0] << " at " << t[1]);
            CHECK(int(c.r) == std::stoi(t[2]));
            CHECK(int(c.g) == std::stoi(t[3]));
            CHECK(int(c.b) == std::stoi(t[4]));
            ++checked;
        }
    }
    CHECK(checked == 6 * (4 + 8));
    // Hand-checked anchors: magma starts near black, jet ends dark red, gray is the identity.
    CHECK(Colormap::magma().color(0) == Rgb{0, 0, 3});
    CHECK(Colormap::jet().color(255) == Rgb{127, 0, 0});
    CHECK(Colormap::gray().color(200) == Rgb{200, 200, 200});
    CHECK(Colormap::index_of(std::nan("")) == -1);
    CHECK(Colormap::magma()(std::nan("")) == colors::white);
    CHECK_THROWS_AS(Colormap::by_name("hot"), Error);
    CHECK_THROWS_AS(Colormap::magma().color(256), Error);
}

TEST_CASE("overlay: equals matplotlib's Agg composite of imshow(gray) + imshow(heat, alpha)") {
    const auto& ref = reference();
    int cases = 0;
    for (auto it = ref.find("overlay_meta"); it != ref.end() && it->first == "overlay_meta"; ++it) {
        const auto& meta = it->second;
        const std::string name = meta[0];
        const int h = std::stoi(meta[1]), w = std::stoi(meta[2]);
        const auto row = [&](const char* kind) {
            for (auto r = ref.find(kind); r != ref.end() && r->first == kind; ++r)
                if (r->second[0] == name) return std::vector<std::string>(r->second.begin() + 1, r->second.end());
            FAIL("fixture lacks ", kind, " for ", name);
            return std::vector<std::string>();
        };
        std::vector<float> grey, heat;
        for (const auto& v : row("overlay_grey")) grey.push_back(static_cast<float>(number(v)));
        for (const auto& v : row("overlay_heat")) heat.push_back(static_cast<float>(number(v)));
        const auto expected = row("overlay_rgb");
        REQUIRE(expected.size() == static_cast<std::size_t>(h * w * 3));
        OverlayOptions options;
        options.colormap = &Colormap::by_name(meta[4]);
        options.alpha = number(meta[3]);
        const Image out = overlay(Tensor<float>::from({h, w}, grey), Tensor<float>::from({h, w}, heat), options);
        REQUIRE(out.width() == w);
        REQUIRE(out.height() == h);
        int mismatches = 0;
        for (std::size_t i = 0; i < expected.size(); ++i) mismatches += out.data()[i] != std::stoi(expected[i]);
        INFO("case " << name);
        CHECK(mismatches == 0);
        ++cases;
    }
    CHECK(cases == 4);
}

namespace {

std::string slurp(const fs::path& path) {
    std::ifstream in(path, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

/// Every start tag closed by a matching end tag, in order (a fallback when python3 is absent).
bool tags_balanced(const std::string& xml) {
    std::vector<std::string> open;
    for (std::size_t i = xml.find('<'); i != std::string::npos; i = xml.find('<', i + 1)) {
        const std::size_t end = xml.find('>', i);
        if (end == std::string::npos) return false;
        const std::string tag = xml.substr(i + 1, end - i - 1);
        if (tag.empty() || tag[0] == '?' || tag[0] == '!') continue;
        const std::string name = tag.substr(tag[0] == '/' ? 1 : 0, tag.find_first_of(" /\n", 1) - (tag[0] == '/'));
        if (tag[0] == '/') {
            if (open.empty() || open.back() != name) return false;
            open.pop_back();
        } else if (tag.back() != '/') {
            open.push_back(name);
        }
    }
    return open.empty();
}

bool python_available() {
    static const bool available = std::system("python3 -c pass > /dev/null 2>&1") == 0;
    return available;
}

/// Writes the SVG to `dir/name.svg`, checks its tags balance and returns its path.
std::string write_checked(const std::string& svg, const fs::path& dir, const std::string& name) {
    const fs::path path = dir / (name + ".svg");
    write_svg(path.string(), svg);
    INFO("SVG " << path);
    CHECK(tags_balanced(svg));
    return path.string();
}

/// Parses the files with python's XML parser, in one interpreter (when there is a python3).
void check_xml_with_python(const std::vector<std::string>& paths) {
    if (!python_available()) return;
    std::string command = "python3 -c \"import xml.dom.minidom,sys; [xml.dom.minidom.parse(p) for p in sys.argv[1:]]\"";
    for (const auto& p : paths) command += " '" + p + "'";
    CHECK(std::system(command.c_str()) == 0);
}

std::size_t count(const std::string& text, const std::string& what) {
    std::size_t n = 0;
    for (std::size_t i = text.find(what); i != std::string::npos; i = text.find(what, i + 1)) ++n;
    return n;
}

const std::vector<std::string> class_names = {"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                                              "Sandal",      "Shirt",   "Sneaker",  "Bag",   "Ankle boot"};

Image random_image(int w, int h, int channels, unsigned seed) {
    std::mt19937 rng(seed);
    Image image(w, h, channels);
    for (std::size_t i = 0; i < image.size(); ++i) image.data()[i] = static_cast<std::uint8_t>(rng() & 255);
    return image;
}

}  // namespace

TEST_CASE("overlay: hand-computed Agg blends") {
    // 127/255 of the way from 100 to 200, truncated by Agg's integer division: 149.
    const Image base = Image(1, 1, Rgb{100, 100, 100}), top = Image(1, 1, Rgb{200, 0, 255});
    CHECK(blend(base, top, 0.5).pixel(0, 0) == Rgb{149, 50, 177});
    CHECK(blend(base, top, 1.0).pixel(0, 0) == Rgb{200, 0, 255});  // opaque: copied
    CHECK(blend(base, top, 0.0).pixel(0, 0) == Rgb{100, 100, 100});
    // A black and a white pixel under magma's first (0, 0, 3) and last (251, 252, 191) colour.
    const Image out = overlay(Tensor<float>::from({1, 2}, {0.f, 1.f}), Tensor<float>::from({1, 2}, {0.f, 1.f}));
    CHECK(out.pixel(0, 0) == Rgb{0, 0, 1});
    CHECK(out.pixel(1, 0) == Rgb{253, 253, 223});
    // NaN in the map leaves the image visible; a fixed heat range saturates.
    OverlayOptions fixed;
    fixed.heat_min = 0;
    fixed.heat_max = 10;
    const Image nan_out = overlay(Tensor<float>::from({1, 2}, {0.f, 1.f}),
                                  Tensor<float>::from({1, 2}, {std::nanf(""), 20.f}), fixed);
    CHECK(nan_out.pixel(0, 0) == Rgb{0, 0, 0});
    CHECK(nan_out.pixel(1, 0) == Rgb{253, 253, 223});
    // A uint8 image gives the same tile as the same values in float (imshow autoscales both).
    const std::vector<float> heat = {0.1f, 0.9f, 0.4f, 0.0f};
    const Image from_bytes = overlay(Tensor<std::uint8_t>::from({2, 2}, {0, 50, 200, 255}), Tensor<float>::from({2, 2}, heat));
    const Image from_floats = overlay(Tensor<float>::from({2, 2}, {0.f, 50.f, 200.f, 255.f}), Tensor<float>::from({2, 2}, heat));
    CHECK(std::equal(from_bytes.data(), from_bytes.data() + from_bytes.size(), from_floats.data()));
    CHECK_THROWS_AS(overlay(Tensor<float>({28, 28}), Tensor<float>({7, 7})), Error);
    CHECK_THROWS_AS(blend(base, top, 1.5), Error);
    CHECK_THROWS_AS(overlay(Tensor<float>({2, 28, 28}), Tensor<float>({28, 28})), Error);
}

TEST_CASE("image: conversions, paste and resizing") {
    Image rgb(2, 1, 3);
    rgb.set_pixel(0, 0, {255, 0, 0});
    rgb.set_pixel(1, 0, {10, 20, 30});
    const Image grey = to_grey(rgb);
    CHECK(grey.channels() == 1);
    CHECK(int(grey.at(0, 0)) == 76);  // round(0.299 * 255)
    CHECK(int(grey.at(1, 0)) == 18);  // (2990 + 11740 + 3420 + 500) / 1000
    CHECK(to_rgb(grey).pixel(1, 0) == Rgb{18, 18, 18});
    CHECK_THROWS_AS(rgb.at(2, 0), Error);
    CHECK_THROWS_AS(Image(4, 4, 2), Error);

    // Half-pixel bilinear: [0, 100] to width 4 samples at -0.25, 0.25, 0.75, 1.25 (clamped).
    Image row(2, 1, 1);
    row.at(1, 0) = 100;
    const Image wide = resize_bilinear(row, 4, 1);
    CHECK(std::vector<int>{wide.at(0, 0), wide.at(1, 0), wide.at(2, 0), wide.at(3, 0)} ==
          std::vector<int>{0, 25, 75, 100});
    const Tensor<float> maps = resize_bilinear(Tensor<float>::from({2, 1, 2}, {0.f, 100.f, 10.f, 10.f}), 1, 4);
    CHECK(maps.shape() == Shape{2, 1, 4});
    CHECK(maps.to_vector() == std::vector<float>{0, 25, 75, 100, 10, 10, 10, 10});

    const Image blocks = upscale(row, 3);
    CHECK(blocks.width() == 6);
    CHECK(blocks.height() == 3);
    CHECK(int(blocks.at(2, 2)) == 0);
    CHECK(int(blocks.at(3, 0)) == 100);

    Image square(4, 4, 1);  // 2 x 2 blocks of 0, 40, 80, 120 -> their means
    for (int y = 0; y < 4; ++y)
        for (int x = 0; x < 4; ++x) square.at(x, y) = static_cast<std::uint8_t>(40 * (x / 2 + 2 * (y / 2)) + (x + y) % 2);
    const Image small = resize_area(square, 2, 2);
    CHECK(std::vector<int>{small.at(0, 0), small.at(1, 0), small.at(0, 1), small.at(1, 1)} ==
          std::vector<int>{1, 41, 81, 121});  // each block holds two +1s: mean +0.5, rounded up

    Image canvas(3, 3, colors::white);
    paste(canvas, row, 2, 1);  // clipped: only the first pixel lands
    CHECK(canvas.pixel(2, 1) == Rgb{0, 0, 0});
    CHECK(canvas.pixel(1, 1) == colors::white);

    const Image from_float = grey_image(Tensor<float>::from({1, 1, 1, 3}, {0.f, 0.5f, 2.f}));
    CHECK(std::vector<int>{from_float.at(0, 0), from_float.at(1, 0), from_float.at(2, 0)} ==
          std::vector<int>{0, 128, 255});
    const Image from_bytes = grey_image(Tensor<std::uint8_t>::from({1, 2}, {7, 255}));
    CHECK(std::vector<int>{from_bytes.at(0, 0), from_bytes.at(1, 0)} == std::vector<int>{7, 255});
    const Tensor<float> back = to_tensor(from_float);
    CHECK(back.shape() == Shape{1, 1, 3});
    CHECK(back[2] == doctest::Approx(1.0));
}

TEST_CASE("PNG: write and read back, grey and RGB; clear errors for bad files") {
    const Scratch scratch("png");
    const fs::path& dir = scratch.path;
    for (int channels : {1, 3}) {
        const Image image = random_image(37, 19, channels, 7u + static_cast<unsigned>(channels));
        const std::string path = (dir / ("c" + std::to_string(channels) + ".png")).string();
        write_png(path, image);
        const Image back = read_image(path);
        REQUIRE(back.width() == 37);
        REQUIRE(back.height() == 19);
        REQUIRE(back.channels() == channels);
        CHECK(std::equal(image.data(), image.data() + image.size(), back.data()));
    }
    for (const auto& entry : fs::directory_iterator(dir))  // atomic writes leave no temporaries
        CHECK(entry.path().extension() == ".png");

    // Transparent pixels are shown over white, as a viewer shows them.
    const unsigned char rgba[] = {200, 0, 0, 0, 200, 0, 0, 255, 0, 0, 0, 128};
    std::vector<std::uint8_t> bytes;
    stbi_write_png_to_func(
        [](void* ctx, void* data, int size) {
            auto* out = static_cast<std::vector<std::uint8_t>*>(ctx);
            out->insert(out->end(), static_cast<std::uint8_t*>(data), static_cast<std::uint8_t*>(data) + size);
        },
        &bytes, 3, 1, 4, rgba, 12);
    const Image composited = decode_image(bytes.data(), bytes.size());
    CHECK(composited.channels() == 3);
    CHECK(composited.pixel(0, 0) == colors::white);
    CHECK(composited.pixel(1, 0) == Rgb{200, 0, 0});
    CHECK(composited.pixel(2, 0) == Rgb{127, 127, 127});  // (255 * 127 + 127) / 255

    const std::string missing = (dir / "missing.png").string();
    try {
        read_image(missing);
        FAIL("read_image accepted a missing file");
    } catch (const Error& e) {
        CHECK(std::string(e.what()).find(missing) != std::string::npos);
    }
    const std::string junk = (dir / "junk.png").string();
    std::ofstream(junk) << "not an image at all";
    try {
        read_image(junk);
        FAIL("read_image accepted junk");
    } catch (const Error& e) {
        CHECK(std::string(e.what()).find(junk) != std::string::npos);
    }
    std::ofstream((dir / "empty.png").string()).close();
    CHECK_THROWS_AS(read_image((dir / "empty.png").string()), Error);
    CHECK_THROWS_AS(write_png((dir / "no" / "such" / "dir.png").string(), random_image(2, 2, 3, 1)), Error);
    CHECK_THROWS_AS(encode_png(Image()), Error);
}



TEST_CASE("pictures: PNG and JPEG decode, grey and colour, baseline and progressive") {
    for (int channels : {1, 3})
        for (bool progressive : {false, true}) {
            CAPTURE(channels);
            CAPTURE(progressive);
            const Image original = test_support::disc_picture(45, 31, channels);
            const auto jpeg = test_support::encode_jpeg(original, progressive);
            CHECK(sniff_image_format(jpeg.data(), jpeg.size()) == ImageFormat::jpeg);
            const Image back = decode_image(jpeg.data(), jpeg.size(), "disc.jpg");
            REQUIRE(back.width() == 45);
            REQUIRE(back.height() == 31);
            REQUIRE(back.channels() == channels);
            double error = 0;  // JPEG is lossy: close, not equal
            for (std::size_t i = 0; i < back.size(); ++i) error += std::abs(back.data()[i] - original.data()[i]);
            CHECK(error / static_cast<double>(back.size()) < 4.0);
        }
    const Image wide = test_support::disc_picture(3, 2, 3);
    const auto png = test_support::encode_png(wide);
    CHECK(sniff_image_format(png.data(), png.size()) == ImageFormat::png);
    const Image back = decode_image(png.data(), png.size());
    CHECK(std::equal(wide.data(), wide.data() + wide.size(), back.data()));
}

TEST_CASE("pictures: other formats, huge claims and damaged files are refused, naming the file") {
    using test_support::Bytes;
    const Image disc = test_support::disc_picture(40, 30, 3);
    const Bytes png = test_support::encode_png(disc), jpeg = test_support::encode_jpeg(disc);

    // Formats that are not PNG or JPEG, by name; BMP included (its 54 bytes may claim any size).
    const Bytes bmp = test_support::bmp_claiming(26000, 26000);
    CHECK(contains(error_of([&] { decode_image(bmp.data(), bmp.size(), "bomb.bmp"); }), "'bomb.bmp' is a BMP picture"));
    const std::string gif = "GIF89a\x01\x00\x01\x00";
    CHECK(contains(error_of([&] { decode_image(reinterpret_cast<const std::uint8_t*>(gif.data()), gif.size(), "a.gif"); }),
                   "a GIF picture"));
    const std::string text = "just text";
    CHECK(contains(error_of([&] { decode_image(reinterpret_cast<const std::uint8_t*>(text.data()), text.size(), "t.png"); }),
                   "not a PNG or JPEG picture"));

    // Headers claiming 30000 x 30000 pixels: refused from the header, before any pixel is decoded.
    for (const auto& named : {std::pair<std::string, Bytes>{"big.png", test_support::png_claiming(png, 30000, 30000)},
                                      {"big.jpg", test_support::jpeg_claiming(jpeg, 30000, 30000)},
                                      {"wide.png", test_support::png_claiming(png, 900000, 50)}}) {
        const std::string& name = named.first;
        const auto& bytes = named.second;
        CAPTURE(name);
        REQUIRE(!bytes.empty());
        const std::string message = error_of([&] { decode_image(bytes.data(), bytes.size(), name); });
        CHECK(contains(message, "'" + name + "'"));
        CHECK(contains(message, "more than the limit of 40000000 pixels"));
    }
    ImageReadLimits small;
    small.max_pixels = 1000;
    CHECK(contains(error_of([&] { decode_image(png.data(), png.size(), "p.png", small); }), "40x30 pixels"));
    small.max_file_bytes = 100;
    CHECK(contains(error_of([&] { decode_image(png.data(), png.size(), "p.png", small); }), "more than the limit of 100 bytes"));

    // Truncated files are errors, never a picture with the missing pixels filled in. Every
    // prefix of both files is tried; only a PNG cut inside its last chunk (IEND, 12 bytes, after
    // all pixel data and its checksum) may still decode, and then to the whole picture.
    for (const auto& named : {std::pair<std::string, Bytes>{"cut.png", png}, {"cut.jpg", jpeg}}) {
        const std::string& name = named.first;
        const auto& bytes = named.second;
        CAPTURE(name);
        const Image whole = decode_image(bytes.data(), bytes.size());
        const std::size_t complete_from = name == "cut.png" ? bytes.size() - 12 : bytes.size();
        for (std::size_t n = 1; n < bytes.size(); ++n) {
            Image part;
            const std::string message = error_of([&] { part = decode_image(bytes.data(), n, name); });
            if (!message.empty()) {
                CHECK(contains(message, "'" + name + "'"));
                continue;
            }
            if (n < complete_from) FAIL_CHECK("a prefix of ", n, " of ", bytes.size(), " bytes decoded");
            CHECK(std::equal(whole.data(), whole.data() + whole.size(), part.data()));
        }
    }
    const Bytes half = test_support::cut(jpeg, 0.5);
    CHECK(contains(error_of([&] { decode_image(half.data(), half.size(), "half.jpg"); }), "not a complete JPEG"));

    // A progressive JPEG with more scans than allowed.
    const Bytes progressive = test_support::encode_jpeg(disc, true);
    ImageReadLimits few_scans;
    few_scans.max_jpeg_scans = 2;
    CHECK(contains(error_of([&] { decode_image(progressive.data(), progressive.size(), "p.jpg", few_scans); }),
                   "more than 2 progressive scans"));
}

TEST_CASE("pictures: only regular files are read, and only up to the size limit") {
    const Scratch scratch("picture_files");
    const std::string fifo = (scratch.path / "pipe.png").string();
    REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
    CHECK(contains(error_of([&] { read_image(fifo); }), "not a regular file"));  // without blocking
    CHECK(contains(error_of([&] { read_image("/dev/zero"); }), "'/dev/zero': not a regular file"));
    const std::string big = (scratch.path / "big.jpg").string();
    {
        std::ofstream out(big, std::ios::binary);
        out.seekp((std::int64_t(64) << 20) + 1);
        out.put('x');
    }
    CHECK(contains(error_of([&] { read_image(big); }), "more than the limit of 67108864 bytes"));
}

TEST_CASE("to_mnist_style: grey, light object on black, centred and fitted, at bounded cost") {
    // A light disc on a dark background: kept as it is, centred, its brightest pixel at 255.
    const MnistStyleInput dark = to_mnist_style(test_support::disc_picture(90, 60, 3));
    CHECK_FALSE(dark.inverted);
    REQUIRE(dark.image.width() == 28);
    REQUIRE(dark.image.height() == 28);
    REQUIRE(dark.image.channels() == 1);
    CHECK(*std::max_element(dark.image.data(), dark.image.data() + dark.image.size()) == 255);
    CHECK(dark.image.at(0, 0) == 0);
    CHECK(dark.image.at(14, 14) == 255);

    // The same scene with a light background is inverted first and gives the same input.
    Image light = test_support::disc_picture(90, 60, 1);
    for (std::size_t i = 0; i < light.size(); ++i) light.data()[i] = static_cast<std::uint8_t>(255 - light.data()[i]);
    const MnistStyleInput inverted = to_mnist_style(light);
    CHECK(inverted.inverted);
    CHECK(inverted.image.at(14, 14) == 255);

    // A strip one pixel high and 200,000 wide: fitted as a 28 x 1 line, not squared (a square of
    // its width would need 40 GB).
    Image strip(200000, 1, 1);
    for (int x = 0; x < strip.width(); ++x) strip.at(x, 0) = static_cast<std::uint8_t>(x % 3 == 0 ? 250 : 5);
    const MnistStyleInput line = to_mnist_style(strip);
    CHECK(line.image.width() == 28);
    int lit_rows = 0;
    for (int y = 0; y < 28; ++y) lit_rows += line.image.at(10, y) > 0;
    CHECK(lit_rows == 1);

    CHECK(contains(error_of([] { to_mnist_style(Image()); }), "empty picture"));
}

TEST_CASE("text: drawn inside its measured box; widths grow with the string") {
    const TextStyle style{16, colors::black, false, Align::left};
    const std::string text = "T-shirt/top (Ankle boot)";
    const TextSize size = measure_text(text, style);
    Image image(400, 60, colors::white);
    draw_text(image, 20, 10, text, style);
    int inked = 0, outside = 0;
    for (int y = 0; y < image.height(); ++y)
        for (int x = 0; x < image.width(); ++x) {
            if (image.pixel(x, y) == colors::white) continue;
            ++inked;
            // Antialiasing and overhanging glyphs may ink one pixel beyond the advance box.
            const bool out = x < 19 || x > 21 + size.width || y < 9 || y > 11 + size.height;
            if (out) MESSAGE("ink outside the box at " << x << ", " << y);
            outside += out;
        }
    CHECK(inked > 200);
    CHECK(outside == 0);
    CHECK(size.height >= 16);
    CHECK(size.width > 150);
    CHECK(size.width < 250);

    const Font& font = Font::regular();
    CHECK(font.width("ab", 14) < font.width("abc", 14));
    CHECK(font.width("Ankle boot", 14) < font.width("Ankle boot (Sandal)", 14));
    CHECK(font.width("Shirt", 28) == doctest::Approx(2 * font.width("Shirt", 14)));
    CHECK(Font::bold().width("Shirt", 14) > font.width("Shirt", 14));
    CHECK(measure_text("a\nb", style).height == 2 * measure_text("a", style).height);
    CHECK(wrap_text("T-shirt/top (Ankle boot)", 100, style) == "T-shirt/top\n(Ankle boot)");

    // Centred text in red: ink on both sides of the anchor, and reddish.
    Image centred(200, 40, colors::white);
    draw_text(centred, 100, 5, "Sneaker", {20, colors::red, true, Align::center});
    int left = 0, right = 0, reddest = 255;
    for (int y = 0; y < 40; ++y)
        for (int x = 0; x < 200; ++x) {
            const Rgb p = centred.pixel(x, y);
            if (p == colors::white) continue;
            (x < 100 ? left : right)++;
            CHECK(p.r == 255);
            reddest = std::min<int>(reddest, p.g);
        }
    CHECK(left > 50);
    CHECK(right > 50);
    CHECK(reddest < 40);

    try {
        Font missing("/usr/share/fonts/truetype/dejavu/NoSuchFont.ttf");
        FAIL("a missing font loaded");
    } catch (const Error& e) {
        const std::string message = e.what();
        CHECK(message.find("NoSuchFont.ttf") != std::string::npos);
        CHECK(message.find("fonts-dejavu-core") != std::string::npos);
    }
    const Scratch scratch("font");
    std::ofstream((scratch.path / "x.ttf").string()) << "not a font";
    CHECK_THROWS_AS(Font((scratch.path / "x.ttf").string()), Error);
}

TEST_CASE("grid: size from tiles, gaps and titles; tiles land where the layout says") {
    std::vector<GridTile> tiles;
    for (int i = 0; i < 50; ++i) {
        Image tile(28, 28, 1);
        tile.at(0, 0) = 200;  // marks the top-left corner
        tiles.push_back({tile, "Bag (Bag)", i % 7 ? colors::green : colors::red});
    }
    GridOptions options;  // 10 columns, scale 4, gap 10, margin 16, no figure title
    const Image grid = make_grid(tiles, options);
    const int title_h = measure_text("Bag (Bag)", {options.title_size}).height;
    const int cell_h = title_h + 2 + 112;
    CHECK(grid.width() == 2 * 16 + 10 * 112 + 9 * 10);
    CHECK(grid.height() == 2 * 16 + 5 * cell_h + 4 * 10);
    // Tile 11 (row 1, column 1): its marked corner, enlarged to a 4 x 4 block.
    const int x = 16 + 122, y = 16 + cell_h + 10 + title_h + 2;
    CHECK(grid.pixel(x, y) == Rgb{200, 200, 200});
    CHECK(grid.pixel(x + 3, y + 3) == Rgb{200, 200, 200});
    CHECK(grid.pixel(x + 4, y) == Rgb{0, 0, 0});
    CHECK(grid.pixel(x - 1, y) == colors::white);
    // Tile 0's title is red, tile 1's green.
    const auto has = [&](int x0, Rgb want) {
        for (int yy = 16; yy < 16 + title_h; ++yy)
            for (int xx = x0; xx < x0 + 112; ++xx)
                if (grid.pixel(xx, yy) == want) return true;
        return false;
    };
    CHECK(has(16, colors::red));
    CHECK_FALSE(has(16, colors::green));
    CHECK(has(16 + 122, colors::green));

    // A figure title and row labels make the figure taller and wider.
    options.title = "Grad-CAM per class";
    options.row_labels = std::vector<std::string>(5, "Ankle boot");
    const Image titled = make_grid(tiles, options);
    CHECK(titled.height() > grid.height());
    CHECK(titled.width() > grid.width());
    options.column_labels = std::vector<std::string>(10, "Grad-CAM++");
    CHECK(make_grid(tiles, options).height() > titled.height());
    options.column_labels.pop_back();
    CHECK_THROWS_AS(make_grid(tiles, options), Error);
    options.column_labels.clear();

    tiles[3].image = Image(14, 14, 1);
    CHECK_THROWS_AS(make_grid(tiles), Error);
    CHECK_THROWS_AS(make_grid({}), Error);
    tiles[3].image = Image(28, 28, 1);
    options.row_labels = {"one"};
    CHECK_THROWS_AS(make_grid(tiles, options), Error);
}

TEST_CASE("SVG charts: well-formed, naming their series and classes, rejecting bad input") {
    const Scratch scratch("svg");
    const fs::path& dir = scratch.path;
    std::mt19937 rng(3);
    std::vector<std::string> written;

    const viz::detail::Ticks ticks = viz::detail::nice_ticks(0, 7000);
    CHECK(ticks.step == 2000);
    CHECK(ticks.values == std::vector<double>{0, 2000, 4000, 6000, 8000});
    CHECK(viz::detail::nice_ticks(1, 2).values == std::vector<double>{1, 1.2, 1.4, 1.6, 1.8, 2});
    CHECK(viz::detail::nice_ticks(1, 2, 6, true).values == std::vector<double>{1, 2});  // two epochs: no 1.5
    CHECK(viz::detail::nice_ticks(1, 50, 6, true).step == 10);
    const viz::detail::Ticks within = viz::detail::ticks_within(-0.33, 0.71);
    CHECK(within.lo == -0.33);
    CHECK(within.values == std::vector<double>{-0.2, 0.0, 0.2, 0.4, 0.6});
    CHECK(within.label(-0.2) == "\u22120.2");  // matplotlib's minus sign

    BarChart bars;
    bars.title = "Class frequency";
    bars.categories = class_names;
    std::vector<double> train_counts, test_counts;
    for (int i = 0; i < 10; ++i) {
        train_counts.push_back(5990 + i);  // values off the tick labels, so each appears once per bar
        test_counts.push_back(1010 + i);
    }
    bars.series = {{"train", train_counts, {}}, {"test & more", test_counts, {}}};
    for (bool stacked : {false, true}) {
        bars.stacked = stacked;
        const std::string svg = to_svg(bars);
        written.push_back(write_checked(svg, dir, stacked ? "stacked" : "grouped"));
        for (const auto& name : class_names) CHECK(svg.find(">" + name + "<") != std::string::npos);
        CHECK(svg.find("test &amp; more") != std::string::npos);
        for (int i = 0; i < 10; ++i) {
            CHECK(count(svg, ">" + std::to_string(5990 + i) + "<") == 1);
            CHECK(count(svg, ">" + std::to_string(1010 + i) + "<") == 1);
            CHECK(count(svg, ">" + std::to_string(7000 + 2 * i) + "<") == (stacked ? 1 : 0));  // totals
        }
    }
    bars.series[1].values.pop_back();
    CHECK_THROWS_AS(to_svg(bars), Error);

    LineChart curves;
    curves.title = "Loss";
    std::vector<double> epochs, train, val;
    for (int e = 1; e <= 50; ++e) {
        epochs.push_back(e);
        train.push_back(0.6 / e + 0.2);
        val.push_back(e == 20 ? std::nan("") : 0.5 / e + 0.25);
    }
    curves.series = {{"train", epochs, train, {}, false, false}, {"validation", epochs, val, {}, true, true}};
    curves.markers = {{39, "best epoch 39"}};
    const std::string line_svg = to_svg(curves);
    written.push_back(write_checked(line_svg, dir, "line"));
    CHECK(line_svg.find(">validation<") != std::string::npos);
    CHECK(line_svg.find(">best epoch 39<") != std::string::npos);
    CHECK(count(line_svg, "<polyline") == 3);  // the NaN splits validation in two
    const std::string both = svg_side_by_side({line_svg, line_svg}, 20);
    written.push_back(write_checked(both, dir, "side_by_side"));
    CHECK(viz::detail::svg_size(both).first == doctest::Approx(2 * curves.width + 20));
    curves.series[0].y.pop_back();
    CHECK_THROWS_AS(to_svg(curves), Error);

    HistogramChart hist;
    hist.title = "Pixel ratio";
    for (int c = 0; c < 10; ++c) {
        std::normal_distribution<double> d(0.3 + 0.03 * c, 0.05);
        HistogramSeries s{class_names[static_cast<std::size_t>(c)], {}, {}};
        for (int i = 0; i < 600; ++i) s.values.push_back(d(rng));
        hist.series.push_back(s);
    }
    const std::string hist_svg = to_svg(hist);
    written.push_back(write_checked(hist_svg, dir, "histogram"));
    for (const auto& name : class_names) CHECK(hist_svg.find(">" + name + "<") != std::string::npos);
    CHECK(histogram_counts({0, 0.1, 0.5, 0.99, 1.0, 1.5, std::nan(""), -0.1}, 2, 0, 1) ==
          std::vector<std::size_t>{2, 3});
    // numpy's answers: its edges 0.30000000000000004 and 0.6000000000000001 put 0.3 and 0.6 one bin low.
    CHECK(histogram_counts({0.3, 0.6}, 10, 0, 1) == std::vector<std::size_t>{0, 0, 1, 0, 0, 1, 0, 0, 0, 0});
    std::vector<double> tenths;
    for (int i = 0; i <= 10; ++i) tenths.push_back(0.1 * i);
    CHECK(histogram_counts(tenths, 10, 0, 1) == std::vector<std::size_t>{1, 1, 1, 1, 1, 1, 1, 1, 1, 2});
    CHECK_THROWS_AS(histogram_counts({1}, 0, 0, 1), Error);

    HeatmapChart matrix;
    matrix.title = "Confusion matrix";
    matrix.row_labels = matrix.column_labels = class_names;
    for (int r = 0; r < 10; ++r) {
        std::vector<double> row(10, 3);
        row[static_cast<std::size_t>(r)] = 973;
        matrix.values.push_back(row);
    }
    const std::string heat_svg = to_svg(matrix);
    written.push_back(write_checked(heat_svg, dir, "heatmap"));
    CHECK(count(heat_svg, ">973<") == 10);
    CHECK(count(heat_svg, ">3<") == 90);
    CHECK(count(heat_svg, ">Ankle boot<") == 2);  // row and column label
    matrix.row_labels.pop_back();
    CHECK_THROWS_AS(to_svg(matrix), Error);

    ScatterChart scatter;
    scatter.title = "UMAP";
    scatter.class_names = class_names;
    std::normal_distribution<double> nd(0, 1);
    for (int i = 0; i < 60000; ++i) {
        scatter.x.push_back(nd(rng) + (i % 10) * 3);
        scatter.y.push_back(nd(rng) - (i % 10) * 2);
        scatter.labels.push_back(i % 10);
    }
    const std::string scatter_svg = to_svg(scatter);
    written.push_back(write_checked(scatter_svg, dir, "scatter"));
    for (const auto& name : class_names) CHECK(scatter_svg.find(">" + name + "<") != std::string::npos);
    CHECK(count(scatter_svg, "data:image/png;base64,") == 1);
    CHECK(scatter_svg.size() < 1000 * 1000);  // 60,000 points as <circle> would be ~4 MB
    scatter.labels[5] = 10;
    CHECK_THROWS_AS(to_svg(scatter), Error);

    CHECK(written.size() == 7);
    check_xml_with_python(written);
}

TEST_CASE("report: self-contained, escaped, written atomically") {
    CHECK(viz::detail::base64_encode("", 0).empty());
    for (const auto& [plain, encoded] : std::vector<std::pair<std::string, std::string>>{
             {"f", "Zg=="}, {"fo", "Zm8="}, {"foo", "Zm9v"}, {"foob", "Zm9vYg=="}, {"foobar", "Zm9vYmFy"}})
        CHECK(viz::detail::base64_encode(plain.data(), plain.size()) == encoded);

    const Scratch scratch("report");
    const fs::path& dir = scratch.path;
    Report report("Results <b>bold</b> & \"quoted\"");
    report.section("Data & EDA").paragraph("x < y && 'z'");
    report.table({"Stats <1>", {"class", "count", "mean"}, {{"T-shirt/top", 6000, 0.4237123}, {"Coat & co", 5, 1e-7}}});
    report.figure(random_image(8, 8, 3, 1), "A <random> image");
    BarChart bars;
    bars.categories = {"a", "b"};
    bars.series = {{"s", {1, 2}, {}}};
    report.figure_svg("<?xml version=\"1.0\"?>\n" + to_svg(bars), "Bars");
    report.settings("Settings", {{"--epochs", "50"}, {"note", "<none>"}});
    const std::string html = report.html();
    CHECK(html.find("<!DOCTYPE html>") == 0);
    CHECK(count(html, "<img src=\"data:image/png;base64,iVBORw0KGgo") == 1);  // PNG signature in base64
    CHECK(html.find("Results &lt;b&gt;bold&lt;/b&gt; &amp; &quot;quoted&quot;") != std::string::npos);
    CHECK(html.find("x &lt; y &amp;&amp; &#39;z&#39;") != std::string::npos);
    CHECK(html.find("Coat &amp; co") != std::string::npos);
    CHECK(html.find("<td class=\"num\">0.4237</td>") != std::string::npos);
    CHECK(html.find("<td class=\"num\">6000</td>") != std::string::npos);
    CHECK(html.find("1.000e-07") != std::string::npos);
    CHECK(html.find("&lt;none&gt;") != std::string::npos);
    CHECK(html.find("<?xml") == std::string::npos);
    CHECK(count(html, "<svg") == 1);
    CHECK(html.find("<b>") == std::string::npos);
    CHECK(html.find("src=\"http") == std::string::npos);  // nothing external

    const std::string path = (dir / "report.html").string();
    report.write(path);
    CHECK(slurp(path) == html);
    CHECK(std::distance(fs::directory_iterator(dir), fs::directory_iterator()) == 1);

    CHECK_THROWS_AS(report.table({"bad", {"a", "b"}, {{"only one"}}}), Error);
    CHECK_THROWS_AS(report.figure_png({1, 2, 3, 4, 5, 6, 7, 8, 9}, "not a png"), Error);
    CHECK_THROWS_AS(report.figure_svg("<html></html>", "not svg"), Error);
    CHECK_THROWS_AS(report.figure_file((dir / "missing.png").string(), "missing"), Error);
    CHECK_THROWS_AS(report.write((dir / "no" / "such" / "report.html").string()), Error);
}

}  // namespace test_viz

// Tests of data loading: the IDX reader against the committed fixture and hostile files, the
// Fashion-MNIST loader and its search path, splits, epoch permutations and batching.
#include <doctest/doctest.h>

#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <numeric>
#include <set>
#include <string>
#include <vector>

#include "cnnlite/data/batching.hpp"
#include "cnnlite/data/dataset.hpp"
#include "cnnlite/data/fashion_mnist.hpp"
#include "cnnlite/data/idx.hpp"
#include "cnnlite/data/locate.hpp"
#include "cnnlite/data/split.hpp"
#include "error_message.hpp"
#include "source_dir.hpp"

namespace test_data {

using test_support::error_of;
using test_support::contains;

namespace fs = std::filesystem;
using cnnlite::Dataset;
using Bytes = std::vector<unsigned char>;

namespace {

const fs::path fixture_folder = test_support::source_dir() / "data" / "fixtures";

/// A fresh, empty folder under the system temp folder, removed again at scope exit.
struct TempDir {
    fs::path path;
    explicit TempDir(const std::string& name)
        : path(fs::temp_directory_path() / ("cnnlite-test-data-" + name + "-" + std::to_string(::getpid()))) {
        fs::remove_all(path);
        fs::create_directories(path);
    }
    ~TempDir() {
        std::error_code ec;
        fs::remove_all(path, ec);
    }
};

/// Sets an environment variable for the scope and restores the previous state afterwards.
struct ScopedEnv {
    std::string name;
    bool had = false;
    std::string old;
    ScopedEnv(const std::string& variable, const char* value) : name(variable) {
        if (const char* previous = std::getenv(name.c_str())) {
            had = true;
            old = previous;
        }
        if (value) ::setenv(name.c_str(), value, 1);
        else ::unsetenv(name.c_str());
    }
    ~ScopedEnv() {
        if (had) ::setenv(name.c_str(), old.c_str(), 1);
        else ::unsetenv(name.c_str());
    }
};

void write_file(const fs::path& path, const Bytes& bytes) {
    std::ofstream out(path, std::ios::binary);
    out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
    REQUIRE(out.good());
}

/// An IDX file's bytes: big-endian magic and dimensions, then `data`.
Bytes idx_bytes(std::uint32_t magic, const std::vector<std::uint32_t>& dims, const Bytes& data) {
    Bytes out;
    auto put = [&out](std::uint32_t v) {
        for (int shift = 24; shift >= 0; shift -= 8) out.push_back(static_cast<unsigned char>(v >> shift));
    };
    put(magic);
    for (std::uint32_t d : dims) put(d);
    out.insert(out.end(), data.begin(), data.end());
    return out;
}

/// `plain` compressed as one gzip member (zlib, window bits 15 + 16 for the gzip wrapper).
Bytes gzip(const Bytes& plain) {
    z_stream z{};
    REQUIRE(deflateInit2(&z, 9, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) == Z_OK);
    Bytes out(deflateBound(&z, static_cast<uLong>(plain.size())) + 64);
    z.next_in = const_cast<Bytes::value_type*>(plain.data());
    z.avail_in = static_cast<uInt>(plain.size());
    z.next_out = out.data();
    z.avail_out = static_cast<uInt>(out.size());
    REQUIRE(deflate(&z, Z_FINISH) == Z_STREAM_END);
    out.resize(z.total_out);
    deflateEnd(&z);
    return out;
}

/// The decompressed content of a gzip file.
Bytes gunzip_file(const fs::path& path) {
    gzFile in = gzopen(path.c_str(), "rb");
    REQUIRE(in != nullptr);
    Bytes out;
    unsigned char chunk[1 << 16];
    int n = 0;
    while ((n = gzread(in, chunk, sizeof chunk)) > 0) out.insert(out.end(), chunk, chunk + n);
    gzclose(in);
    REQUIRE(n == 0);
    return out;
}



std::uint64_t pool_requests() {
    const cnnlite::BufferPoolStats stats = cnnlite::buffer_pool_stats();
    return stats.hits + stats.misses;
}

}  // namespace

// Expected values below were computed independently of cnnlite, with Python's gzip module:
//   python3 -c "import gzip,collections; d=gzip.open('data/fixtures/train-images-idx3-ubyte.gz').read()[16:];
//     l=gzip.open('data/fixtures/train-labels-idx1-ubyte.gz').read()[8:];
//     print(sum(d[:784]), sum(1 for x in d[:784] if x), sum(d), d[14*28+14], d[5*784+13*28+8],
//           list(d[14*28:15*28]), [collections.Counter(l)[c] for c in range(10)], list(l[:10]))"
// and the same for the t10k files.
TEST_CASE("the fixture loads with known counts, labels and pixels") {
    const cnnlite::FashionMnist data = cnnlite::load_fashion_mnist(fixture_folder);
    const Dataset& train = data.train;
    const Dataset& test = data.test;

    CHECK(data.files.folder == fixture_folder);
    CHECK(data.files.train_images == fixture_folder / "train-images-idx3-ubyte.gz");
    REQUIRE(train.size() == 2000);
    REQUIRE(test.size() == 1000);
    CHECK(train.images().shape() == cnnlite::Shape{2000, 1, 28, 28});
    CHECK(train.pixels().shape() == cnnlite::Shape{2000, 1, 28, 28});
    CHECK(test.images().shape() == cnnlite::Shape{1000, 1, 28, 28});
    CHECK(train.sample_shape() == cnnlite::Shape{1, 28, 28});
    CHECK(train.has_pixels());

    CHECK(train.class_counts() == std::vector<std::int64_t>{194, 216, 202, 195, 186, 200, 194, 215, 198, 200});
    CHECK(test.class_counts() == std::vector<std::int64_t>{107, 105, 111, 93, 115, 87, 97, 95, 95, 95});
    CHECK(std::vector<int>(train.labels().begin(), train.labels().begin() + 10) ==
          std::vector<int>{9, 0, 0, 3, 0, 2, 7, 2, 5, 5});
    CHECK(train.labels().back() == 8);
    CHECK(std::vector<int>(test.labels().begin(), test.labels().begin() + 10) ==
          std::vector<int>{9, 2, 1, 1, 6, 1, 4, 6, 5, 7});

    const auto& px = train.pixels();
    CHECK(int(px(0, 0, 14, 14)) == 217);
    CHECK(int(px(5, 0, 13, 8)) == 144);
    CHECK(int(px(0, 0, 5, 10)) == 0);
    CHECK(int(px(1999, 0, 27, 27)) == 0);
    CHECK(int(test.pixels()(999, 0, 14, 14)) == 200);
    CHECK(int(test.pixels()(0, 0, 14, 14)) == 110);
    const std::vector<int> row14 = {0,   0,   1,   4,   6,   7,   2,   0,   0,   0,   0,   0,   237, 226,
                                    217, 223, 222, 219, 222, 221, 216, 223, 229, 215, 218, 255, 77,  0};
    for (int x = 0; x < 28; ++x) CHECK(int(px(0, 0, 14, x)) == row14[static_cast<std::size_t>(x)]);

    std::int64_t sum0 = 0, nonzero0 = 0;
    for (int i = 0; i < 784; ++i) {
        sum0 += px[i];
        nonzero0 += px[i] > 0;
    }
    CHECK(sum0 == 76247);
    CHECK(nonzero0 == 433);
    CHECK(std::accumulate(px.begin(), px.end(), std::int64_t(0)) == 113529887);

    // Network inputs are pixel / 255: check against the known sum and exact end points.
    const auto& im = train.images();
    double float_sum0 = 0;
    for (int i = 0; i < 784; ++i) float_sum0 += im[i];
    CHECK(float_sum0 == doctest::Approx(76247.0 / 255.0).epsilon(1e-6));
    CHECK(im(0, 0, 14, 25) == 1.0f);
    CHECK(im(0, 0, 0, 0) == 0.0f);
    CHECK(im(0, 0, 14, 14) == 217.0f / 255.0f);
    CHECK(*std::max_element(im.begin(), im.end()) == 1.0f);

    CHECK(train.class_names() == std::vector<std::string>{"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                                                          "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"});
    CHECK(train.num_classes() == 10);
    CHECK(train.global_index(0) == 0);
    CHECK(train.global_index(1999) == 1999);
}

TEST_CASE("the real data set, when installed, has 60,000 + 10,000 images, 6,000 + 1,000 per class") {
    const fs::path folder = cnnlite::debian_fashion_mnist_folder;
    if (!fs::is_directory(folder)) {
        MESSAGE("skipped: " << folder.string() << " not found (apt-get install dataset-fashion-mnist)");
        return;
    }
    const cnnlite::FashionMnist data = cnnlite::load_fashion_mnist(folder);
    REQUIRE(data.train.size() == 60000);
    REQUIRE(data.test.size() == 10000);
    CHECK(data.train.class_counts() == std::vector<std::int64_t>(10, 6000));
    CHECK(data.test.class_counts() == std::vector<std::int64_t>(10, 1000));

    // The committed fixture is exactly the head of the real files (what make_fixtures.py promises).
    const cnnlite::FashionMnist fixture = cnnlite::load_fashion_mnist(fixture_folder);
    CHECK(std::memcmp(fixture.train.pixels().data(), data.train.pixels().data(), 2000 * 784) == 0);
    CHECK(std::memcmp(fixture.test.pixels().data(), data.test.pixels().data(), 1000 * 784) == 0);
    CHECK(std::equal(fixture.train.labels().begin(), fixture.train.labels().end(), data.train.labels().begin()));
    CHECK(std::equal(fixture.test.labels().begin(), fixture.test.labels().end(), data.test.labels().begin()));
}

TEST_CASE("plain (uncompressed) IDX files read the same as gzip ones") {
    TempDir dir("plain");
    for (const char* stem : {"train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte",
                             "t10k-labels-idx1-ubyte"})
        write_file(dir.path / stem, gunzip_file(fixture_folder / (std::string(stem) + ".gz")));
    const cnnlite::FashionMnist plain = cnnlite::load_fashion_mnist(dir.path);
    const cnnlite::FashionMnist packed = cnnlite::load_fashion_mnist(fixture_folder);
    CHECK(plain.files.train_images == dir.path / "train-images-idx3-ubyte");
    REQUIRE(plain.train.size() == packed.train.size());
    CHECK(std::equal(plain.train.pixels().begin(), plain.train.pixels().end(), packed.train.pixels().begin()));
    CHECK(plain.test.labels() == packed.test.labels());
}

TEST_CASE("hostile IDX files are rejected with a message naming the file and the problem") {
    TempDir dir("hostile");
    Bytes four_pixels(4 * 2 * 2, 7);  // data of four 2x2 images
    const Bytes images4 = idx_bytes(0x803, {4, 2, 2}, four_pixels);
    const Bytes labels3 = idx_bytes(0x801, {3}, {0, 1, 2});
    Bytes gz_images4 = gzip(images4);
    Bytes bad_crc = gz_images4;
    bad_crc[bad_crc.size() - 6] ^= 0xFF;  // inside the CRC-32 of the gzip trailer
    Bytes garbage = {0x1f, 0x8b};
    for (int i = 0; i < 200; ++i) garbage.push_back(static_cast<unsigned char>((i * 73 + 11) & 0xFF));
    Bytes garbage_after = gz_images4;
    garbage_after.insert(garbage_after.end(), {'j', 'u', 'n', 'k'});
    Bytes with_trailing = images4;
    with_trailing.insert(with_trailing.end(), {1, 2, 3});

    enum class Reader { images, labels, pair_with_labels3 };
    struct Case {
        const char* name;
        Bytes bytes;
        Reader reader;
        const char* expected;
    };
    const std::vector<Case> cases = {
        {"empty", {}, Reader::images, "empty file"},
        {"short_header", Bytes(images4.begin(), images4.begin() + 10), Reader::images, "truncated header"},
        {"magic_only", Bytes(images4.begin(), images4.begin() + 4), Reader::images, "truncated header"},
        {"truncated_data", Bytes(images4.begin(), images4.end() - 1), Reader::images, "truncated data"},
        {"truncated_data.gz", gzip(Bytes(images4.begin(), images4.end() - 5)), Reader::images, "truncated data"},
        {"cut_stream.gz", Bytes(gz_images4.begin(), gz_images4.begin() + gz_images4.size() / 2), Reader::images,
         "corrupt or truncated gzip data"},
        {"cut_trailer.gz", Bytes(gz_images4.begin(), gz_images4.end() - 4), Reader::images,
         "corrupt or truncated gzip data"},
        {"bad_crc.gz", bad_crc, Reader::images, "corrupt or truncated gzip data"},
        {"garbage.gz", garbage, Reader::images, "corrupt or truncated gzip data"},
        {"garbage_after.gz", garbage_after, Reader::images, "trailing bytes after the end of the gzip stream"},
        {"wrong_magic", idx_bytes(0x12345678, {4, 2, 2}, four_pixels), Reader::images, "not an IDX file"},
        {"float_type", idx_bytes(0x0D03, {4, 2, 2}, four_pixels), Reader::images, "element type 0x0D"},
        {"labels_as_images", labels3, Reader::images, "says rank 1, expected rank 3"},
        {"images_as_labels", images4, Reader::labels, "says rank 3, expected rank 1"},
        {"label_out_of_range", idx_bytes(0x801, {3}, {0, 10, 2}), Reader::labels, "label 10 at index 1"},
        {"huge_count", idx_bytes(0x803, {1000000000, 28, 28}, four_pixels), Reader::images, "more than the limit"},
        {"huge_count.gz", gzip(idx_bytes(0x803, {1000000000, 28, 28}, four_pixels)), Reader::images,
         "more than the limit"},
        {"lying_count", idx_bytes(0x803, {100000, 28, 28}, four_pixels), Reader::images, "truncated data"},
        {"lying_count.gz", gzip(idx_bytes(0x803, {100000, 28, 28}, four_pixels)), Reader::images,
         "more than a gzip file of"},
        {"trailing", with_trailing, Reader::images, "trailing data"},
        {"trailing.gz", gzip(with_trailing), Reader::images, "trailing data"},
        {"no_pixels", idx_bytes(0x803, {4, 0, 2}, {}), Reader::images, "have no pixels"},
        {"count_mismatch", images4, Reader::pair_with_labels3, "do not hold the same number of samples"},
    };
    const fs::path labels_file = dir.path / "labels3";
    write_file(labels_file, labels3);

    for (const Case& c : cases) {
        const fs::path file = dir.path / c.name;
        write_file(file, c.bytes);
        const std::uint64_t requests_before = pool_requests();
        const std::string message = error_of([&] {
            switch (c.reader) {
                case Reader::images: cnnlite::read_idx_images(file); break;
                case Reader::labels: cnnlite::read_idx_labels(file, 10); break;
                case Reader::pair_with_labels3:
                    cnnlite::load_idx_dataset(file, labels_file, cnnlite::fashion_mnist_class_names());
                    break;
            }
        });
        INFO("case ", std::string(c.name), ": ", message);
        CHECK(contains(message, file.string()));
        CHECK(contains(message, c.expected));
        // A header that lies about its size is caught before any storage is requested.
        if (contains(c.name, "huge") || contains(c.name, "lying")) CHECK(pool_requests() == requests_before);
    }

    // The good files of the table do load.
    const fs::path good = dir.path / "good.gz";
    write_file(good, gz_images4);
    CHECK(cnnlite::read_idx_images(good).shape() == cnnlite::Shape{4, 2, 2});
    // The gzip format allows concatenated members (as `cat a.gz b.gz` makes); they read as one.
    Bytes two_members = gzip(Bytes(images4.begin(), images4.begin() + 20));
    const Bytes second = gzip(Bytes(images4.begin() + 20, images4.end()));
    two_members.insert(two_members.end(), second.begin(), second.end());
    write_file(dir.path / "two_members.gz", two_members);
    CHECK(cnnlite::read_idx_images(dir.path / "two_members.gz").to_vector() == std::vector<std::uint8_t>(16, 7));
    CHECK(cnnlite::read_idx_labels(labels_file, 3) == std::vector<int>{0, 1, 2});
    CHECK(contains(error_of([&] { cnnlite::read_idx_labels(labels_file, 2); }), "label 2 at index 2"));
    CHECK(contains(error_of([&] { cnnlite::read_idx_images(good, 15); }), "more than the limit of 15 bytes"));

    // Not a file at all.
    CHECK(contains(error_of([&] { cnnlite::read_idx_images(dir.path / "missing"); }), "does not exist"));
    CHECK(contains(error_of([&] { cnnlite::read_idx_images(dir.path); }), "not a regular file"));

    // Fashion-MNIST wants 28x28 images.
    TempDir wrong_size("wrong-size");
    const Bytes labels2 = gzip(idx_bytes(0x801, {2}, {3, 4}));
    const Bytes images2 = gzip(idx_bytes(0x803, {2, 32, 32}, Bytes(2 * 32 * 32, 1)));
    write_file(wrong_size.path / "train-images-idx3-ubyte.gz", images2);
    write_file(wrong_size.path / "t10k-images-idx3-ubyte.gz", images2);
    write_file(wrong_size.path / "train-labels-idx1-ubyte.gz", labels2);
    write_file(wrong_size.path / "t10k-labels-idx1-ubyte.gz", labels2);
    const std::string message = error_of([&] { cnnlite::load_fashion_mnist(wrong_size.path); });
    CHECK(contains(message, "train-images-idx3-ubyte.gz"));
    CHECK(contains(message, "32x32"));
}

TEST_CASE("the data set is searched in the documented order") {
    TempDir env_dir("env");
    for (const char* name : {"train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", "t10k-images-idx3-ubyte.gz",
                             "t10k-labels-idx1-ubyte.gz"})
        fs::copy_file(fixture_folder / name, env_dir.path / name);
    TempDir empty_dir("empty");

    SUBCASE("CNNLITE_DATA comes first, then ./data/fashion-mnist, then the Debian folder") {
        ScopedEnv env("CNNLITE_DATA", env_dir.path.c_str());
        const auto places = cnnlite::fashion_mnist_search_path();
        REQUIRE(places.size() == 3);
        CHECK(places[0].folder == env_dir.path);
        CHECK(places[1].folder == fs::path("data") / "fashion-mnist");
        CHECK(places[2].folder == fs::path("/usr/share/datasets/fashion-mnist"));
        CHECK(cnnlite::locate_fashion_mnist().folder == env_dir.path);
        CHECK(cnnlite::load_fashion_mnist().train.size() == 2000);
    }
    SUBCASE("without CNNLITE_DATA (or with it empty) only the two fixed places remain") {
        ScopedEnv env("CNNLITE_DATA", "");
        const auto places = cnnlite::fashion_mnist_search_path();
        REQUIRE(places.size() == 2);
        CHECK(places[1].folder == fs::path(cnnlite::debian_fashion_mnist_folder));
    }
    SUBCASE("an explicit folder is the only place searched") {
        ScopedEnv env("CNNLITE_DATA", env_dir.path.c_str());
        CHECK(cnnlite::locate_fashion_mnist(env_dir.path).folder == env_dir.path);
        const std::string message = error_of([&] { cnnlite::locate_fashion_mnist(empty_dir.path); });
        CHECK(contains(message, empty_dir.path.string()));
        CHECK(contains(message, "the folder given explicitly"));
        CHECK(contains(message, "missing train-images-idx3-ubyte[.gz], train-labels-idx1-ubyte[.gz]"));
        CHECK_FALSE(contains(message, env_dir.path.string()));  // no silent fallback
    }
    SUBCASE("when no place has the files, the error lists every place and how to install") {
        const fs::path partial = empty_dir.path / "partial";
        fs::create_directories(partial);
        for (const char* name : {"train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", "t10k-images-idx3-ubyte.gz"})
            fs::copy_file(fixture_folder / name, partial / name);
        const fs::path not_a_folder = partial / "train-images-idx3-ubyte.gz";
        const std::vector<cnnlite::DataLocation> places = {
            {empty_dir.path / "nowhere", "first place"}, {partial, "second place"}, {not_a_folder, "third place"}};
        const std::string message = error_of([&] { cnnlite::find_fashion_mnist_files(places); });
        CHECK(contains(message, (empty_dir.path / "nowhere").string() + " (first place): no such folder"));
        CHECK(contains(message, partial.string() + " (second place): missing t10k-labels-idx1-ubyte[.gz]"));
        CHECK(contains(message, not_a_folder.string() + " (third place): not a folder"));
        CHECK(contains(message, "apt-get install dataset-fashion-mnist"));
    }
}

TEST_CASE("splits: validation is the head of the training file, training the rest, as views") {
    const Dataset full = cnnlite::load_fashion_mnist(fixture_folder).train;
    const cnnlite::TrainValidationSplit split = cnnlite::split_train_validation(full, 500, 1200);
    CHECK(split.validation.size() == 500);
    CHECK(split.train.size() == 1200);
    CHECK(split.validation.first_index() == 0);
    CHECK(split.train.first_index() == 500);
    CHECK(split.train.global_index(1199) == 1699);
    const Dataset nested = split.train.slice(100, 10);  // a slice of a slice keeps file positions
    CHECK(nested.first_index() == 600);
    CHECK(nested.global_index(9) == 609);
    CHECK(nested.labels()[0] == full.labels()[600]);
    CHECK(nested.images().data() == full.images().data() + 600 * 784);
    CHECK(split.train.images().shares_storage_with(full.images()));
    CHECK(split.train.pixels().shares_storage_with(full.pixels()));
    CHECK(split.train.images().data() == full.images().data() + 500 * 784);
    CHECK(split.train.labels()[0] == full.labels()[500]);
    CHECK(split.validation.labels()[499] == full.labels()[499]);
    CHECK(split.train.class_names() == full.class_names());

    const cnnlite::TrainValidationSplit all_rest = cnnlite::split_train_validation(full, 500);
    CHECK(all_rest.train.size() == 1500);
    CHECK(cnnlite::split_train_validation(full, 0).validation.empty());

    CHECK(contains(error_of([&] { cnnlite::split_train_validation(full, 2500); }),
                   "a validation set of 2500 samples leaves no training samples in a data set of 2000"));
    CHECK(contains(error_of([&] { cnnlite::split_train_validation(full, 2000); }), "leaves no training samples"));
    CHECK(contains(error_of([&] { cnnlite::split_train_validation(full, -1); }), "negative validation size -1"));
    CHECK(contains(error_of([&] { cnnlite::split_train_validation(full, 500, 0); }), "limit 0 must be at least 1"));
    CHECK(contains(error_of([&] { cnnlite::split_train_validation(full, 500, 1501); }),
                   "limit 1501 exceeds the 1500 training samples"));
    CHECK(contains(error_of([&] { full.slice(1990, 11); }), "out of range"));
}

TEST_CASE("Dataset validates what it is built from") {
    const auto images = cnnlite::Tensor<float>::zeros({3, 1, 2, 2});
    const std::vector<std::string> names = {"a", "b"};
    CHECK(Dataset::from_images(images, {0, 1, 1}, names).class_counts() == std::vector<std::int64_t>{1, 2});
    CHECK_FALSE(Dataset::from_images(images, {0, 1, 1}, names).has_pixels());
    CHECK(contains(error_of([&] { Dataset::from_images(images, {0, 1}, names); }), "2 labels for 3 images"));
    CHECK(contains(error_of([&] { Dataset::from_images(images, {0, 2, 1}, names); }),
                   "label 2 of sample 1 is outside the class range 0..1"));
    CHECK(contains(error_of([&] { Dataset::from_images(images.reshape({3, 4}), {0, 1, 1}, names); }),
                   "must have shape [N, C, H, W]"));
    const auto pixels = cnnlite::Tensor<std::uint8_t>::from({1, 1, 1, 3}, {0, 51, 255});
    const Dataset bytes = Dataset::from_pixels(pixels, {1}, names);
    CHECK(bytes.images()[0] == 0.0f);
    CHECK(bytes.images()[1] == 0.2f);  // 51 / 255 rounds to the float nearest 0.2
    CHECK(bytes.images()[2] == 1.0f);
}

TEST_CASE("IDX files are read only as far as the caller needs, within a memory budget") {
    TempDir dir("prefix");
    // Gzip'd files whose headers claim 1,000,000 images but that hold only the first 300.
    Bytes pixels(300 * 784), labels(300);
    for (std::size_t i = 0; i < pixels.size(); ++i) pixels[i] = static_cast<unsigned char>(i * 7 % 251);
    for (std::size_t i = 0; i < labels.size(); ++i) labels[i] = static_cast<unsigned char>(i % 10);
    const fs::path images = dir.path / "train-images-idx3-ubyte.gz", label_file = dir.path / "train-labels-idx1-ubyte.gz";
    write_file(images, gzip(idx_bytes(0x803, {1000000, 28, 28}, pixels)));
    write_file(label_file, gzip(idx_bytes(0x801, {1000000}, labels)));

    CHECK(cnnlite::read_idx_u8_shape(images, 3) == cnnlite::Shape{1000000, 28, 28});
    const auto first = cnnlite::read_idx_images(images, cnnlite::idx_default_max_bytes, 250);
    CHECK(first.shape() == cnnlite::Shape{250, 28, 28});
    CHECK(std::equal(first.begin(), first.end(), pixels.begin()));
    cnnlite::IdxDatasetLimits limits;
    limits.max_items = 250;
    const Dataset part = cnnlite::load_idx_dataset(images, label_file, cnnlite::fashion_mnist_class_names(), limits);
    CHECK(part.size() == 250);
    CHECK(part.labels()[249] == 9);

    // Everything the header claims: refused from the header with the memory named, nothing read.
    const std::string message =
        error_of([&] { cnnlite::load_idx_dataset(images, label_file, cnnlite::fashion_mnist_class_names()); });
    CHECK(contains(message, images.string()));
    CHECK(contains(message, "1000000 images of 28x28 need 3920 MB in memory"));
    CHECK(contains(message, "more than the budget of 1073.74 MB"));
    // A prefix longer than the data that is there is still truncated data.
    CHECK(contains(error_of([&] { cnnlite::read_idx_images(images, cnnlite::idx_default_max_bytes, 301); }),
                   "truncated data"));
}

TEST_CASE("a Fashion-MNIST part without images is refused by name, and parts can be skipped") {
    TempDir dir("empty_part");
    for (const auto& entry : fs::directory_iterator(fixture_folder)) fs::copy_file(entry.path(), dir.path / entry.path().filename());
    write_file(dir.path / "t10k-images-idx3-ubyte.gz", gzip(idx_bytes(0x803, {0, 28, 28}, {})));
    write_file(dir.path / "t10k-labels-idx1-ubyte.gz", gzip(idx_bytes(0x801, {0}, {})));
    const std::string message = error_of([&] { cnnlite::load_fashion_mnist(dir.path); });
    CHECK(contains(message, "t10k-images-idx3-ubyte.gz' holds no images, so the test set is empty"));

    cnnlite::FashionMnistLimits train_only;
    train_only.test_images = 0;
    const cnnlite::FashionMnist data = cnnlite::load_fashion_mnist(dir.path, train_only);
    CHECK(data.train.size() == 2000);
    CHECK(data.test.empty());
}

TEST_CASE("content fingerprints tell data sets apart by pixels, labels, order and position") {
    const Dataset full = cnnlite::load_fashion_mnist(fixture_folder).train;
    const std::uint64_t base = cnnlite::content_fingerprint(full.slice(0, 500));
    CHECK(cnnlite::content_fingerprint(full.slice(0, 500)) == base);       // repeatable
    CHECK(cnnlite::content_fingerprint(full.slice(1, 500)) != base);       // other samples
    CHECK(cnnlite::content_fingerprint(full.slice(0, 499)) != base);       // fewer
    auto pixels = cnnlite::Tensor<std::uint8_t>::from(full.pixels().rows(0, 500).shape(), full.pixels().data(), 500 * 784);
    std::vector<int> labels(full.labels().begin(), full.labels().begin() + 500);
    const Dataset same = Dataset::from_pixels(pixels, labels, full.class_names());
    CHECK(cnnlite::content_fingerprint(same) == base);
    pixels.data()[123] ^= 1;  // one pixel, one bit
    CHECK(cnnlite::content_fingerprint(Dataset::from_pixels(pixels, labels, full.class_names())) != base);
    pixels.data()[123] ^= 1;
    labels[7] = (labels[7] + 1) % 10;
    CHECK(cnnlite::content_fingerprint(Dataset::from_pixels(pixels, labels, full.class_names())) != base);
}

TEST_CASE("epoch permutations are a pure function of (seed, epoch)") {
    const auto order = cnnlite::epoch_permutation(1000, 42, 3);
    std::vector<std::int64_t> sorted = order;
    std::sort(sorted.begin(), sorted.end());
    std::vector<std::int64_t> identity(1000);
    std::iota(identity.begin(), identity.end(), 0);
    CHECK(sorted == identity);
    CHECK(order != identity);
    CHECK(cnnlite::epoch_permutation(1000, 42, 3) == order);
    CHECK(cnnlite::epoch_permutation(1000, 42, 4) != order);
    CHECK(cnnlite::epoch_permutation(1000, 43, 3) != order);
    CHECK(cnnlite::epoch_permutation(0, 1, 1).empty());
    CHECK(cnnlite::epoch_permutation(1, 1, 1) == std::vector<std::int64_t>{0});

    // The documented recipe, spelled out for n = 3, so that other tools can reproduce the order.
    const cnnlite::RandomStream stream(7, cnnlite::Purpose::shuffle, 5);
    std::vector<std::int64_t> by_hand = {0, 1, 2};
    std::swap(by_hand[2], by_hand[stream.below(2, 3)]);
    std::swap(by_hand[1], by_hand[stream.below(1, 2)]);
    CHECK(cnnlite::epoch_permutation(3, 7, 5) == by_hand);

    // Fisher-Yates reaches all 24 orders of 4 items about equally often (a Sattolo-style
    // off-by-one would reach only the 6 cyclic ones). Expected 250 each; bounds are ~6 sigma.
    std::map<std::vector<std::int64_t>, int> seen;
    for (std::uint64_t epoch = 0; epoch < 6000; ++epoch) ++seen[cnnlite::epoch_permutation(4, 9, epoch)];
    CHECK(seen.size() == 24);
    for (const auto& entry : seen) {
        CHECK(entry.second > 160);
        CHECK(entry.second < 340);
    }
}

TEST_CASE("batches cover every sample once per epoch, with labels, global indices and reused storage") {
    const Dataset full = cnnlite::load_fashion_mnist(fixture_folder).train;
    const Dataset train = cnnlite::split_train_validation(full, 500).train;  // global indices 500..1999
    cnnlite::BatchOptions options;
    options.batch_size = 64;
    options.seed = 11;
    cnnlite::Batcher batcher(train, options);
    CHECK(batcher.num_batches() == 24);  // 23 full batches of 64 and one of 1500 - 23 * 64 = 28

    cnnlite::Batch batch;
    std::vector<std::int64_t> first_epoch;
    const float* storage = nullptr;
    std::uint64_t requests_after_first = 0;
    std::int64_t batches = 0;
    while (batcher.next(batch)) {
        if (batches == 0) {
            storage = batch.storage.data();
            requests_after_first = pool_requests();
        }
        CHECK(batch.images.data() == storage);  // the same storage every time
        const std::int64_t expected = batches == 23 ? 28 : 64;
        REQUIRE(batch.size() == expected);
        CHECK(batch.images.shape() == cnnlite::Shape{expected, 1, 28, 28});
        for (std::int64_t k = 0; k < batch.size(); ++k) {
            const std::int64_t global = batch.indices[static_cast<std::size_t>(k)];
            REQUIRE(global >= 500);
            REQUIRE(global < 2000);
            CHECK(batch.labels[static_cast<std::size_t>(k)] == full.labels()[static_cast<std::size_t>(global)]);
            CHECK(std::memcmp(batch.images.data() + k * 784, full.images().data() + global * 784,
                              784 * sizeof(float)) == 0);
            first_epoch.push_back(global);
        }
        ++batches;
    }
    CHECK(batches == 24);
    CHECK(pool_requests() == requests_after_first);  // no allocation after the first batch
    std::vector<std::int64_t> sorted = first_epoch;
    std::sort(sorted.begin(), sorted.end());
    std::vector<std::int64_t> expected_indices(1500);
    std::iota(expected_indices.begin(), expected_indices.end(), 500);
    CHECK(sorted == expected_indices);  // each sample exactly once
    CHECK(!std::is_sorted(first_epoch.begin(), first_epoch.end()));

    // Epoch order follows epoch_permutation; a new epoch differs, replaying one repeats it.
    const auto order0 = cnnlite::epoch_permutation(1500, 11, 0);
    for (std::size_t i = 0; i < 1500; ++i) REQUIRE(first_epoch[i] == 500 + order0[i]);
    batcher.start_epoch(1);
    CHECK(batcher.order() != order0);
    batcher.start_epoch(0);
    CHECK(batcher.order() == order0);
    REQUIRE(batcher.next(batch));
    CHECK(std::vector<std::int64_t>(batch.indices.begin(), batch.indices.end()) ==
          std::vector<std::int64_t>(first_epoch.begin(), first_epoch.begin() + 64));
    CHECK(batch.images.data() == storage);

    // A caller that keeps an earlier batch's images keeps its data: the next gather uses new storage.
    const cnnlite::Tensor<float> kept = batch.images;
    const std::vector<float> kept_values = kept.to_vector();
    REQUIRE(batcher.next(batch));
    CHECK(!batch.images.shares_storage_with(kept));
    CHECK(kept.to_vector() == kept_values);

    SUBCASE("drop_last skips the partial batch") {
        options.drop_last = true;
        cnnlite::Batcher dropping(train, options);
        CHECK(dropping.num_batches() == 23);
        std::set<std::int64_t> distinct;
        while (dropping.next(batch)) {
            CHECK(batch.size() == 64);
            distinct.insert(batch.indices.begin(), batch.indices.end());
        }
        CHECK(distinct.size() == 23 * 64);
    }
    SUBCASE("without shuffling batches follow the data set's order") {
        options.shuffle = false;
        options.batch_size = 1000;
        cnnlite::Batcher ordered(train, options);
        REQUIRE(ordered.next(batch));
        CHECK(batch.indices.front() == 500);
        CHECK(batch.indices.back() == 1499);
        REQUIRE(ordered.next(batch));
        CHECK(batch.size() == 500);
        CHECK(batch.indices.back() == 1999);
        CHECK_FALSE(ordered.next(batch));
    }
    SUBCASE("misuse is reported") {
        options.batch_size = 0;
        CHECK(contains(error_of([&] { cnnlite::Batcher bad(train, options); }), "batch size 0 must be at least 1"));
        CHECK(contains(error_of([&] { batcher.fill(24, batch); }), "batch 24 out of range; the epoch has 24"));
        const std::vector<std::int64_t> positions = {0, 1500};
        CHECK(contains(error_of([&] { cnnlite::gather_batch(train, positions, batch); }),
                       "position 1500 (batch entry 1) out of range for 1500 samples"));
        CHECK(contains(error_of([&] { cnnlite::gather_batch(Dataset(), positions, batch); }), "data set is empty"));
    }
}

}  // namespace test_data

// Tests of file I/O: atomic writes, CSV, safetensors and .npy — bit-exact round trips, hostile
// files built byte by byte, simulated write failures, and interop with numpy/torch in Python.
#include <doctest/doctest.h>

#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <limits>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "cnnlite/core/files.hpp"
#include "cnnlite/io/csv.hpp"
#include "cnnlite/io/npy.hpp"
#include "cnnlite/io/safetensors.hpp"
#include "error_message.hpp"
#include "source_dir.hpp"

namespace test_io {

using test_support::error_of;

using namespace cnnlite;
namespace fs = std::filesystem;

namespace {

/// A fresh folder under the system temp folder, removed with everything in it.
struct TempDir {
    std::string path;
    TempDir() {
        std::string pattern = (fs::temp_directory_path() / "cnnlite-io-XXXXXX").string();
        REQUIRE(::mkdtemp(&pattern[0]) != nullptr);
        path = pattern;
    }
    ~TempDir() {
        std::error_code ec;
        fs::permissions(path, fs::perms::owner_all, fs::perm_options::add, ec);
        fs::remove_all(path, ec);
    }
    std::string file(const std::string& name) const { return path + "/" + name; }
    /// Names in the folder (hidden temp files included), sorted.
    std::vector<std::string> listing() const {
        std::vector<std::string> names;
        for (const auto& e : fs::directory_iterator(path)) names.push_back(e.path().filename().string());
        std::sort(names.begin(), names.end());
        return names;
    }
};

std::string read_all(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    REQUIRE(in.good());
    std::ostringstream s;
    s << in.rdbuf();
    return s.str();
}

void write_raw(const std::string& path, const std::string& bytes) {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    REQUIRE(out.good());
}


template <class T>
bool same_bits(const Tensor<T>& a, const Tensor<T>& b) {
    return a.shape() == b.shape() && (a.numel() == 0 || std::memcmp(a.data(), b.data(), a.bytes()) == 0);
}

/// Values that a careless writer or reader would damage: signed zero, denormals, extremes.
template <class T>
std::vector<T> awkward_values() {
    using L = std::numeric_limits<T>;
    return {T(0),        -T(0),        L::denorm_min(), -L::denorm_min(), L::min(),    L::max(),
            L::lowest(), L::epsilon(), T(1) / T(3),     T(-2.5),          T(1e30),     T(-1e-30),
            T(123456.789), T(3.14159265358979)};
}

/// A tensor of `shape` filled with the awkward values, cycling, offset by `seed`.
template <class T>
Tensor<T> awkward_tensor(const Shape& shape, std::size_t seed) {
    const std::vector<T> values = awkward_values<T>();
    Tensor<T> t(shape);
    for (std::int64_t i = 0; i < t.numel(); ++i) t[i] = values[(static_cast<std::size_t>(i) + seed) % values.size()];
    return t;
}

const std::vector<Shape> kShapes = {Shape{}, Shape{5}, Shape{2, 3}, Shape{2, 3, 4}, Shape{2, 1, 3, 2}, Shape{3, 0, 2}};

std::string le64(std::uint64_t n) {
    std::string s(8, '\0');
    for (int i = 0; i < 8; ++i) s[static_cast<std::size_t>(i)] = static_cast<char>(n >> (8 * i));
    return s;
}

/// A safetensors file from a header text and data bytes, as a hostile tool might write it.
std::string st_file(const std::string& header, const std::string& data) { return le64(header.size()) + header + data; }

template <class T>
std::string raw(std::initializer_list<T> values) {
    std::string s;
    for (T v : values) s.append(reinterpret_cast<const char*>(&v), sizeof v);
    return s;
}

/// The exit status of a shell command (-1 when it did not exit normally).
int run(const std::string& command) {
    const int status = std::system(command.c_str());
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/// A Python interpreter that can import numpy ("" if none): $CNNLITE_PYTHON, python3, then
/// Debian's /usr/bin/python3 (a python3 earlier on PATH may lack Debian's python3-numpy).
const std::string& python_with_numpy() {
    static const std::string found = [] {
        std::vector<std::string> candidates;
        if (const char* env = std::getenv("CNNLITE_PYTHON")) candidates.push_back(env);
        candidates.push_back("python3");
        candidates.push_back("/usr/bin/python3");
        for (const auto& python : candidates)
            if (run("'" + python + "' -c 'import numpy' >/dev/null 2>&1") == 0) return python;
        return std::string();
    }();
    return found;
}

std::string script(const std::string& name) { return test_support::source_dir().string() + "/tests/python/" + name; }

/// Caps the size of files this process writes, so that a write fails with EFBIG mid-file.
struct FileSizeLimit {
    rlimit old{};
    void (*old_handler)(int) = nullptr;
    explicit FileSizeLimit(rlim_t bytes) {
        REQUIRE(::getrlimit(RLIMIT_FSIZE, &old) == 0);
        old_handler = ::signal(SIGXFSZ, SIG_IGN);  // else the kernel kills the process
        rlimit lower = old;
        lower.rlim_cur = bytes;
        REQUIRE(::setrlimit(RLIMIT_FSIZE, &lower) == 0);
    }
    ~FileSizeLimit() {
        ::setrlimit(RLIMIT_FSIZE, &old);
        ::signal(SIGXFSZ, old_handler);
    }
};

}  // namespace

// ---------------------------------------------------------------------------------------------
// Atomic files

TEST_CASE("atomic_file: writes, replaces and leaves no temp file") {
    TempDir dir;
    const std::string path = dir.file("out.bin");
    write_file_atomically(path, std::string("first"));
    CHECK(read_all(path) == "first");
    write_file_atomically(path, std::string("second, longer"));
    CHECK(read_all(path) == "second, longer");
    write_file_atomically(path, std::string());
    CHECK(read_all(path).empty());
    CHECK(dir.listing() == std::vector<std::string>{"out.bin"});
}

TEST_CASE("atomic_file: the target keeps its old content until commit") {
    TempDir dir;
    const std::string path = dir.file("model.bin");
    write_file_atomically(path, std::string("old"));
    {
        AtomicFileWriter writer(path);
        writer.write(std::string("new "));
        writer.write("content", 7);
        CHECK(read_all(path) == "old");
        CHECK(dir.listing().size() == 2);  // the target and the hidden temp file
        CHECK(fs::path(writer.temp_path()).parent_path() == fs::path(dir.path));
        writer.commit();
        CHECK(writer.temp_path().empty());
        CHECK_THROWS_AS(writer.write(std::string("x")), Error);
    }
    CHECK(read_all(path) == "new content");
    CHECK(dir.listing() == std::vector<std::string>{"model.bin"});
}

TEST_CASE("atomic_file: a writer destroyed without commit leaves the target untouched") {
    TempDir dir;
    const std::string path = dir.file("keep.txt");
    write_file_atomically(path, std::string("precious"));
    {
        AtomicFileWriter writer(path);
        writer.write(std::string("half a fi"));
    }
    CHECK(read_all(path) == "precious");
    CHECK(dir.listing() == std::vector<std::string>{"keep.txt"});
    {
        AtomicFileWriter never_existed(dir.file("fresh.txt"));
        never_existed.write(std::string("x"));
        never_existed.abort();
        never_existed.abort();  // twice is harmless
    }
    CHECK(dir.listing() == std::vector<std::string>{"keep.txt"});
}

TEST_CASE("atomic_file: failures name the path and the system's reason") {
    TempDir dir;
    SUBCASE("missing folder") {
        const std::string path = dir.file("no/such/folder/out.bin");
        const std::string message = error_of([&] { write_file_atomically(path, std::string("x")); });
        CHECK(message.find(path) != std::string::npos);
        CHECK(message.find("No such file or directory") != std::string::npos);
        CHECK(dir.listing().empty());
    }
    SUBCASE("rename fails late: the target is a folder") {
        const std::string path = dir.file("taken");
        create_directories(path + "/inside");
        const std::string message = error_of([&] { write_file_atomically(path, std::string("data")); });
        CHECK(message.find(path) != std::string::npos);
        CHECK(message.find("rename") != std::string::npos);
        CHECK(dir.listing() == std::vector<std::string>{"taken"});  // temp file removed
        CHECK(fs::is_directory(path + "/inside"));
    }
    SUBCASE("the disk fills mid-write (file size limit)") {
        const std::string path = dir.file("big.bin");
        write_file_atomically(path, std::string("old content"));
        const std::string big(1 << 20, 'z');
        std::string message;
        {
            FileSizeLimit limit(4096);
            message = error_of([&] { write_file_atomically(path, big); });
        }
        CHECK(message.find(path) != std::string::npos);
        CHECK(message.find("File too large") != std::string::npos);
        CHECK(read_all(path) == "old content");
        CHECK(dir.listing() == std::vector<std::string>{"big.bin"});
    }
    SUBCASE("read-only folder") {
        if (::geteuid() == 0) {
            MESSAGE("skipped: root ignores folder permissions");
            return;
        }
        const std::string folder = dir.file("ro");
        create_directories(folder);
        fs::permissions(folder, fs::perms::owner_read | fs::perms::owner_exec);
        const std::string message = error_of([&] { write_file_atomically(folder + "/x.bin", std::string("x")); });
        CHECK(message.find("Permission denied") != std::string::npos);
    }
}

TEST_CASE("atomic_file: create_parent_directories") {
    TempDir dir;
    const std::string path = dir.file("a/b/c/out.csv");
    create_parent_directories(path);
    CHECK(fs::is_directory(dir.file("a/b/c")));
    create_parent_directories(path);  // already there: fine
    create_parent_directories("bare-name.csv");  // no folder part: nothing to do
    write_file_atomically(dir.file("plain"), std::string("file"));
    const std::string message = error_of([&] { create_parent_directories(dir.file("plain/sub/x.csv")); });
    CHECK(message.find(dir.file("plain/sub")) != std::string::npos);
}

// ---------------------------------------------------------------------------------------------
// CSV

TEST_CASE("csv: exact text with RFC 4180 quoting and shortest round-trip numbers") {
    TempDir dir;
    const std::string path = dir.file("table.csv");
    write_csv(path, {"name", "count", "value"},
              {{"plain", 1, 0.1},
               {"a,b", -7, 1.0 / 3},
               {"say \"hi\"", std::numeric_limits<std::int64_t>::max(), -0.0},
               {"two\nlines", 0u, 1e-300},
               {"", std::numeric_limits<std::uint64_t>::max(), 0.1f},
               {"T-shirt/top", std::int64_t{-1}, 0.9123456789012345}});
    CHECK(read_all(path) ==
          "name,count,value\n"
          "plain,1,0.1\n"
          "\"a,b\",-7,0.3333333333333333\n"
          "\"say \"\"hi\"\"\",9223372036854775807,-0\n"
          "\"two\nlines\",0,1e-300\n"
          ",18446744073709551615,0.1\n"
          "T-shirt/top,-1,0.9123456789012345\n");
    const auto rows = read_csv(path);
    REQUIRE(rows.size() == 7);
    CHECK(rows[2][0] == "a,b");
    CHECK(rows[3][0] == "say \"hi\"");
    CHECK(rows[4][0] == "two\nlines");
    CHECK(rows[5][0].empty());
    CHECK(dir.listing() == std::vector<std::string>{"table.csv"});
}

TEST_CASE("csv: numbers read back bit-exact") {
    TempDir dir;
    const std::string path = dir.file("numbers.csv");
    std::mt19937_64 rng(42);
    std::vector<double> doubles;
    std::vector<float> floats;
    while (doubles.size() < 500) {
        const std::uint64_t bits = rng();
        double d;
        std::memcpy(&d, &bits, 8);
        float f;
        const auto bits32 = static_cast<std::uint32_t>(bits >> 11);
        std::memcpy(&f, &bits32, 4);
        if (std::isfinite(d) && std::isfinite(f)) {
            doubles.push_back(d);
            floats.push_back(f);
        }
    }
    for (double d : awkward_values<double>()) doubles.push_back(d), floats.push_back(0.f);
    {
        CsvWriter writer(path, {"d", "f"});
        for (std::size_t i = 0; i < doubles.size(); ++i) writer.add_row({doubles[i], floats[i]});
        CHECK(writer.rows() == doubles.size());
        writer.close();
    }
    const auto rows = read_csv(path);
    REQUIRE(rows.size() == doubles.size() + 1);
    for (std::size_t i = 0; i < doubles.size(); ++i) {
        const double d = std::strtod(rows[i + 1][0].c_str(), nullptr);
        const float f = std::strtof(rows[i + 1][1].c_str(), nullptr);
        CHECK(std::memcmp(&d, &doubles[i], 8) == 0);
        CHECK(std::memcmp(&f, &floats[i], 4) == 0);
    }
}

TEST_CASE("csv: writer errors and abandoned writers") {
    TempDir dir;
    const std::string path = dir.file("bad.csv");
    {
        CsvWriter writer(path, {"a", "b", "c"});
        writer.add_row({1, 2, 3});
        const std::string message = error_of([&] { writer.add_row({"x", 2.5}); });
        CHECK(message.find(path) != std::string::npos);
        CHECK(message.find("row 2 has 2 cells but the header has 3 columns") != std::string::npos);
    }  // never closed
    CHECK(dir.listing().empty());
    CHECK(error_of([&] { CsvWriter w(path, {}); }).find("no columns") != std::string::npos);
    CHECK(error_of([&] { read_csv(dir.file("missing.csv")); }).find("missing.csv") != std::string::npos);
}

TEST_CASE("csv: parser accepts CRLF and empty fields, rejects malformed quoting") {
    using Rows = std::vector<std::vector<std::string>>;
    CHECK(parse_csv("a,b\r\nc,d\r\n", "t") == Rows{{"a", "b"}, {"c", "d"}});
    CHECK(parse_csv("a,\n,\n", "t") == Rows{{"a", ""}, {"", ""}});
    CHECK(parse_csv("x", "t") == Rows{{"x"}});
    CHECK(parse_csv("", "t").empty());
    CHECK(parse_csv("\"a\r\nb\",\"\"\"\"\n", "t") == Rows{{"a\r\nb", "\""}});
    CHECK(error_of([] { parse_csv("x\n\"abc", "source.csv"); })
              .find("source.csv: quoted field opened on line 2 is never closed") != std::string::npos);
    CHECK(error_of([] { parse_csv("\"a\"b\n", "s"); }).find("unexpected character 'b' after a closing quote") !=
          std::string::npos);
    CHECK(error_of([] { parse_csv("ab\"c\n", "s"); }).find("line 1: quote inside an unquoted field") !=
          std::string::npos);
    CHECK(error_of([] { parse_csv("a\rb", "s"); }).find("carriage return without line feed") != std::string::npos);
}

// ---------------------------------------------------------------------------------------------
// safetensors

TEST_CASE("safetensors: round trip is bit-exact for F32, F64 and I64 of every rank") {
    TempDir dir;
    const std::string path = dir.file("all.safetensors");
    SafetensorsWriter writer;
    std::vector<Tensor<float>> floats;
    std::vector<Tensor<double>> doubles;
    for (std::size_t i = 0; i < kShapes.size(); ++i) {
        floats.push_back(awkward_tensor<float>(kShapes[i], i));
        doubles.push_back(awkward_tensor<double>(kShapes[i], i + 3));
        writer.add("f32.rank" + std::to_string(i), floats.back());
        writer.add("f64.rank" + std::to_string(i), doubles.back());
    }
    const auto ints = Tensor<std::int64_t>::from(
        Shape{4}, {0, -1, std::numeric_limits<std::int64_t>::min(), std::numeric_limits<std::int64_t>::max()});
    writer.add("step", ints);
    writer.set_metadata("format", "cnnlite");
    writer.set_metadata("architecture", R"({"layers": ["conv2d", "dense"], "quote": "\""})");
    writer.set_metadata("unicode", "T-shirt/top \xC3\xA9\xE2\x9C\x93");
    writer.set_metadata("empty", "");
    writer.save(path);
    CHECK(dir.listing() == std::vector<std::string>{"all.safetensors"});
    CHECK(read_all(path) == writer.serialize());

    const SafetensorsFile file = load_safetensors(path);
    CHECK(file.entries().size() == 2 * kShapes.size() + 1);
    CHECK(file.metadata().size() == 4);
    CHECK(file.require_metadata("architecture") == R"({"layers": ["conv2d", "dense"], "quote": "\""})");
    CHECK(file.require_metadata("unicode") == "T-shirt/top \xC3\xA9\xE2\x9C\x93");
    for (std::size_t i = 0; i < kShapes.size(); ++i) {
        CHECK(same_bits(file.tensor<float>("f32.rank" + std::to_string(i)), floats[i]));
        CHECK(same_bits(file.tensor<double>("f64.rank" + std::to_string(i)), doubles[i]));
        CHECK(file.entry("f32.rank" + std::to_string(i)).dtype == SafetensorsDtype::F32);
    }
    CHECK(same_bits(file.tensor<std::int64_t>("step"), ints));
    // The same bytes parsed from memory give the same tensors.
    const SafetensorsFile again = SafetensorsFile::parse(read_all(path), "copy");
    CHECK(same_bits(again.tensor<double>("f64.rank3"), doubles[3]));
}

TEST_CASE("safetensors: output is deterministic, sorted, contiguous and padded like the reference") {
    const auto a = Tensor<float>::from(Shape{2}, {1.0f, -2.0f});
    const auto b = Tensor<double>::from(Shape{1}, {0.5});
    SafetensorsWriter one, two;
    one.add("b", b).add("a", a).set_metadata("k", "v");
    two.set_metadata("k", "v").add("a", a).add("b", b);
    CHECK(one.serialize() == two.serialize());
    // Written out by hand: the length, the JSON padded with spaces to a multiple of 8, the data.
    const std::string header =
        R"({"__metadata__":{"k":"v"},"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
        R"("b":{"dtype":"F64","shape":[1],"data_offsets":[8,16]}})";
    std::string padded = header + std::string((8 - header.size() % 8) % 8, ' ');
    CHECK(padded.size() % 8 == 0);
    CHECK(one.serialize() == le64(padded.size()) + padded + raw<float>({1.0f, -2.0f}) + raw<double>({0.5}));
    // No metadata: no __metadata__ key, as the reference writer does.
    SafetensorsWriter bare;
    bare.add("a", a);
    CHECK(bare.serialize().find("__metadata__") == std::string::npos);
}

TEST_CASE("safetensors: reading converts between float types, refuses what does not fit") {
    SafetensorsWriter writer;
    writer.add("f", Tensor<float>::from(Shape{3}, {0.1f, -0.0f, std::numeric_limits<float>::denorm_min()}));
    writer.add("d", Tensor<double>::from(Shape{2}, {0.1, -3.5}));
    writer.add("huge", Tensor<double>::from(Shape{2}, {1.0, 1e300}));
    writer.add("i", Tensor<std::int64_t>::from(Shape{1}, {7}));
    const SafetensorsFile file = SafetensorsFile::parse(writer.serialize(), "mem");
    const Tensor<double> f_as_double = file.tensor<double>("f");
    CHECK(f_as_double[0] == static_cast<double>(0.1f));
    CHECK(std::signbit(f_as_double[1]));
    CHECK(f_as_double[2] == static_cast<double>(std::numeric_limits<float>::denorm_min()));
    const Tensor<float> d_as_float = file.tensor<float>("d");
    CHECK(d_as_float[0] == 0.1f);
    CHECK(d_as_float[1] == -3.5f);
    std::string message = error_of([&] { file.tensor<float>("huge"); });
    CHECK(message.find("safetensors data 'mem': tensor 'huge' element 1") != std::string::npos);
    CHECK(message.find("does not fit in float") != std::string::npos);
    message = error_of([&] { file.tensor<float>("i"); });
    CHECK(message.find("tensor 'i' has dtype I64") != std::string::npos);
    message = error_of([&] { file.tensor<std::int64_t>("f"); });
    CHECK(message.find("tensor 'f' has dtype F32") != std::string::npos);
}

TEST_CASE("safetensors: require and check_tensors name the file, tensor and shapes") {
    TempDir dir;
    const std::string path = dir.file("model.safetensors");
    save_safetensors(path, {{"conv2d.weight", Tensor<float>(Shape{64, 1, 2, 2})}, {"conv2d.bias", Tensor<float>(Shape{64})}},
                     {{"format", "cnnlite"}});
    const SafetensorsFile file = load_safetensors(path);
    CHECK(file.require<float>("conv2d.bias", Shape{64}).shape() == Shape{64});
    CHECK(file.require<double>("conv2d.weight", Shape{64, 1, 2, 2}).numel() == 256);
    const std::string prefix = "safetensors file '" + path + "': ";
    CHECK(error_of([&] { file.require("conv2d.weight", Shape{64, 1, 3, 3}); }) ==
          prefix + "tensor 'conv2d.weight' has shape [64, 1, 2, 2], expected [64, 1, 3, 3]");
    CHECK(error_of([&] { file.require("dense.weight", Shape{256, 3136}); }) ==
          prefix + "missing tensor 'dense.weight' (expected shape [256, 3136])");
    CHECK(error_of([&] { file.tensor<float>("nope"); }) ==
          prefix + "no tensor 'nope' (it holds 2 tensors: 'conv2d.bias', 'conv2d.weight')");
    CHECK(error_of([&] { file.require_metadata("format_version"); }) ==
          prefix + "__metadata__ has no key 'format_version'");
    file.check_tensors({{"conv2d.weight", Shape{64, 1, 2, 2}}, {"conv2d.bias", Shape{64}}});
    file.check_tensors({{"conv2d.bias", Shape{64}}}, /*allow_unexpected=*/true);
    CHECK(error_of([&] { file.check_tensors({{"conv2d.bias", Shape{32}}, {"dense.bias", Shape{10}}}); }) ==
          prefix +
              "tensor 'conv2d.bias' has shape [64], expected [32]; missing tensor 'dense.bias' (expected shape [10]); "
              "unexpected tensor 'conv2d.weight'");
}

TEST_CASE("safetensors: writer rejects bad names and undefined tensors") {
    SafetensorsWriter writer;
    writer.add("a", Tensor<float>(Shape{1}));
    CHECK(error_of([&] { writer.add("a", Tensor<float>(Shape{1})); }).find("'a' added twice") != std::string::npos);
    CHECK(error_of([&] { writer.add("", Tensor<float>(Shape{1})); }).find("empty tensor name") != std::string::npos);
    CHECK(error_of([&] { writer.add("__metadata__", Tensor<float>(Shape{1})); }).find("reserved") != std::string::npos);
    CHECK(error_of([&] { writer.add("u", Tensor<float>()); }).find("'u' is undefined") != std::string::npos);
    CHECK(error_of([&] { writer.add("bad\xFF", Tensor<float>(Shape{1})); }).find("not valid UTF-8") != std::string::npos);
    CHECK(error_of([&] { writer.set_metadata("k", "\xC3"); }).find("metadata value of 'k'") != std::string::npos);
    TempDir dir;
    const std::string path = dir.file("missing/x.safetensors");
    CHECK(error_of([&] { writer.save(path); }).find(path) != std::string::npos);
}

TEST_CASE("safetensors: every corrupted file is rejected with a message naming file and fault") {
    const std::string f2 = raw<float>({1.0f, 2.0f});  // 8 bytes
    auto entry = [](const std::string& name, const std::string& dtype, const std::string& shape, int begin, int end) {
        return "\"" + name + "\":{\"dtype\":\"" + dtype + "\",\"shape\":" + shape + ",\"data_offsets\":[" +
               std::to_string(begin) + "," + std::to_string(end) + "]}";
    };
    const std::string a_ok = entry("a", "F32", "[2]", 0, 8);
    const std::string valid = st_file("{" + a_ok + "}", f2);
    struct Case {
        const char* what;
        std::string bytes;
        std::vector<std::string> expect;
    };
    const std::vector<Case> cases = {
        {"empty file", "", {"0 bytes is too short for the 8-byte header length"}},
        {"5 bytes", "\x01\x02\x03\x04\x05", {"5 bytes is too short"}},
        {"header length beyond the file", le64(1000) + "{}", {"header length 1000 runs past the end of the file (2 bytes"}},
        {"truncated inside the header", valid.substr(0, 8 + 10), {"runs past the end of the file"}},
        {"header length huge", le64(std::uint64_t(1) << 63) + "{}",
         {"header length 9223372036854775808 exceeds the limit of 100000000 bytes"}},
        {"data truncated", st_file("{" + a_ok + "}", f2.substr(0, 4)),
         {"tensor 'a': data_offsets [0, 8] run past the end of the data area (4 bytes)"}},
        {"not JSON", st_file("{\"a\": ", ""), {"the header is not valid JSON"}},
        {"garbage", st_file("hello, world", ""), {"the header is not valid JSON", "line 1"}},
        {"empty header", st_file("", ""), {"the header is not valid JSON"}},
        {"text after the object", st_file("{} x", ""), {"the header is not valid JSON"}},
        {"invalid UTF-8", st_file("{\"__metadata__\":{\"k\":\"\xC3\x28\"}}", ""), {"the header is not valid JSON"}},
        {"JSON array", st_file("[1,2]", ""), {"the header is an array, not a JSON object"}},
        {"JSON string", st_file("\"x\"", ""), {"the header is a string, not a JSON object"}},
        {"entry not an object", st_file("{\"a\":3}", ""), {"tensor 'a': the entry is the number 3, not an object"}},
        {"unknown dtype", st_file("{" + entry("a", "F16", "[4]", 0, 8) + "}", f2),
         {"tensor 'a': unsupported dtype 'F16' (supported: F32, F64, I64)"}},
        {"dtype not a string", st_file(R"({"a":{"dtype":32,"shape":[2],"data_offsets":[0,8]}})", f2),
         {"tensor 'a': dtype is the number 32, not a string"}},
        {"missing dtype", st_file(R"({"a":{"shape":[2],"data_offsets":[0,8]}})", f2), {"tensor 'a': missing field 'dtype'"}},
        {"missing data_offsets", st_file(R"({"a":{"dtype":"F32","shape":[2]}})", f2),
         {"tensor 'a': missing field 'data_offsets'"}},
        {"unknown field", st_file(R"({"a":{"dtype":"F32","shape":[2],"offsets":[0,8]}})", f2),
         {"tensor 'a': unknown field 'offsets'"}},
        {"shape not an array", st_file("{" + entry("a", "F32", "2", 0, 8) + "}", f2),
         {"tensor 'a': shape is the number 2, not an array"}},
        {"shape an object", st_file("{" + entry("a", "F32", "{}", 0, 8) + "}", f2),
         {"tensor 'a': shape is an object, not an array"}},
        {"negative extent", st_file("{" + entry("a", "F32", "[-2,-1]", 0, 8) + "}", f2),
         {"tensor 'a': shape holds the negative number -2"}},
        {"fractional extent", st_file("{" + entry("a", "F32", "[2.5]", 0, 8) + "}", f2),
         {"tensor 'a': shape holds the number 2.5, not a non-negative integer"}},
        {"nested shape", st_file("{" + entry("a", "F32", "[[[2]]]", 0, 8) + "}", f2), {"tensor 'a': shape holds an array"}},
        {"shape overflows", st_file("{" + entry("a", "F32", "[4294967296,4294967296,4]", 0, 0) + "}", ""),
         {"tensor 'a': shape [4294967296, 4294967296, 4] of F32 has too many elements"}},
        {"extent beyond int64", st_file("{" + entry("a", "F32", "[18446744073709551615]", 0, 0) + "}", ""),
         {"tensor 'a': shape extent 18446744073709551615 is too large"}},
        {"rank 9", st_file("{" + entry("a", "F32", "[1,1,1,1,1,1,1,1,2]", 0, 8) + "}", f2),
         {"tensor 'a': shape has more than 8 dimensions"}},
        {"one offset", st_file(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0]}})", f2),
         {"tensor 'a': data_offsets needs exactly two numbers [begin, end], got 1"}},
        {"three offsets", st_file(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8,8]}})", f2),
         {"tensor 'a': data_offsets needs exactly two numbers [begin, end], got more"}},
        {"offsets reversed", st_file("{" + entry("a", "F32", "[2]", 8, 0) + "}", f2),
         {"tensor 'a': data_offsets [8, 0] are reversed"}},
        {"offsets out of bounds", st_file("{" + entry("a", "F32", "[250]", 0, 1000) + "}", f2),
         {"tensor 'a': data_offsets [0, 1000] run past the end of the data area (8 bytes)"}},
        {"offsets overlap", st_file("{" + a_ok + "," + entry("b", "F32", "[2]", 4, 12) + "}", f2 + raw<float>({3.0f})),
         {"tensor 'b' (data_offsets [4, 12]) overlaps tensor 'a' (which ends at 8)"}},
        {"offsets with a gap", st_file("{" + a_ok + "," + entry("b", "F32", "[2]", 12, 20) + "}", f2 + f2 + raw<float>({0.f})),
         {"tensor 'b' (data_offsets [12, 20]) leaves a gap of 4 bytes after offset 8"}},
        {"first tensor not at 0", st_file("{" + entry("a", "F32", "[2]", 4, 12) + "}", f2 + raw<float>({0.f})),
         {"tensor 'a' (data_offsets [4, 12]) leaves a gap of 4 bytes after offset 0"}},
        {"trailing data", st_file("{" + a_ok + "}", f2 + "xyzw"),
         {"the data area holds 12 bytes but the tensors cover only 8 (4 bytes of trailing data)"}},
        {"byte size mismatch", st_file("{" + entry("a", "F32", "[3]", 0, 8) + "}", f2),
         {"tensor 'a': data_offsets [0, 8] hold 8 bytes but shape [3] of F32 needs 12"}},
        {"byte size mismatch F64", st_file("{" + entry("a", "F64", "[2]", 0, 8) + "}", f2),
         {"tensor 'a': data_offsets [0, 8] hold 8 bytes but shape [2] of F64 needs 16"}},
        {"duplicate tensor", st_file("{" + a_ok + "," + a_ok + "}", f2), {"duplicate tensor name 'a'"}},
        {"duplicate field", st_file(R"({"a":{"dtype":"F32","dtype":"F32","shape":[2],"data_offsets":[0,8]}})", f2),
         {"tensor 'a': duplicate field 'dtype'"}},
        {"duplicate metadata key", st_file(R"({"__metadata__":{"k":"1","k":"2"}})", ""), {"__metadata__: duplicate key 'k'"}},
        {"duplicate __metadata__", st_file(R"({"__metadata__":{},"__metadata__":{}})", ""), {"duplicate key '__metadata__'"}},
        {"non-string metadata", st_file(R"({"__metadata__":{"k":1}})", ""),
         {"__metadata__: the value of 'k' is the number 1, not a string"}},
        {"null metadata value", st_file(R"({"__metadata__":{"k":null}})", ""), {"the value of 'k' is null, not a string"}},
        {"metadata not an object", st_file(R"({"__metadata__":"x"})", ""), {"__metadata__ is a string, not an object"}},
        {"NaN", st_file("{" + a_ok + "}", raw<float>({1.0f, std::nanf("")})), {"tensor 'a' element 1", "is NaN"}},
        {"+Inf in F64", st_file("{" + entry("b", "F64", "[1]", 0, 8) + "}", raw<double>({HUGE_VAL})),
         {"tensor 'b' element 0", "is +Inf"}},
        {"-Inf", st_file("{" + a_ok + "}", raw<float>({-HUGE_VALF, 0.f})), {"tensor 'a' element 0", "is -Inf"}},
    };
    TempDir dir;
    int index = 0;
    for (const Case& c : cases) {
        CAPTURE(c.what);
        const std::string path = dir.file("case" + std::to_string(index++) + ".safetensors");
        write_raw(path, c.bytes);
        const std::string message = error_of([&] { load_safetensors(path); });
        CAPTURE(message);
        CHECK(message.find("safetensors file '" + path + "': ") == 0);
        for (const std::string& part : c.expect) CHECK(message.find(part) != std::string::npos);
        // From memory: the same verdict, naming the given source.
        const std::string in_memory = error_of([&] { SafetensorsFile::parse(c.bytes, "buffer"); });
        CHECK(in_memory.find("safetensors data 'buffer': ") == 0);
        CHECK(in_memory.substr(in_memory.find("': ")) == message.substr(message.find("': ")));
    }
}

TEST_CASE("safetensors: valid edge cases load") {
    SUBCASE("empty header object, no tensors") {
        const SafetensorsFile file = SafetensorsFile::parse(st_file("{}      ", ""), "empty");
        CHECK(file.entries().empty());
        CHECK(file.metadata().empty());
    }
    SUBCASE("zero-size tensors share an offset; tensors out of name order") {
        const std::string header =
            R"({"z":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
            R"("e":{"dtype":"F64","shape":[0,3],"data_offsets":[8,8]},)"
            R"("a":{"dtype":"F32","shape":[1],"data_offsets":[8,12]},)"
            R"("e2":{"dtype":"F32","shape":[5,0],"data_offsets":[8,8]}})";
        const SafetensorsFile file = SafetensorsFile::parse(st_file(header, raw<float>({1.f, 2.f, 3.f})), "mem");
        CHECK(file.tensor<float>("a")[0] == 3.f);
        CHECK(file.tensor<float>("z")[1] == 2.f);
        CHECK(file.tensor<double>("e").shape() == Shape{0, 3});
        CHECK(file.tensor<float>("e2").numel() == 0);
    }
    SUBCASE("NaN and Inf load when allowed") {
        SafetensorsReadOptions options;
        options.allow_non_finite = true;
        const std::string bytes = st_file(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})",
                                          raw<float>({std::nanf(""), -HUGE_VALF}));
        const Tensor<float> a = SafetensorsFile::parse(bytes, "mem", options).tensor<float>("a");
        CHECK(std::isnan(a[0]));
        CHECK(std::isinf(a[1]));
    }
    SUBCASE("a smaller header limit is honoured") {
        SafetensorsReadOptions options;
        options.max_header_bytes = 4;
        CHECK(error_of([&] { SafetensorsFile::parse(st_file("{}      ", ""), "mem", options); })
                  .find("header length 8 exceeds the limit of 4 bytes") != std::string::npos);
    }
    SUBCASE("missing file and folder") {
        TempDir dir;
        const std::string missing = dir.file("none.safetensors");
        CHECK(error_of([&] { load_safetensors(missing); }) ==
              "safetensors file '" + missing + "': cannot open: No such file or directory");
        CHECK(error_of([&] { load_safetensors(dir.path); }).find("not a regular file") != std::string::npos);
    }
}

TEST_CASE("safetensors: truncations and random byte damage give errors, never crashes") {
    SafetensorsWriter writer;
    writer.add("conv.weight", awkward_tensor<float>(Shape{2, 1, 2, 2}, 0));
    writer.add("conv.bias", awkward_tensor<double>(Shape{2}, 1));
    writer.add("step", Tensor<std::int64_t>::from(Shape{}, {3}));
    writer.set_metadata("format", "cnnlite");
    const std::string good = writer.serialize();
    for (std::size_t n = 0; n < good.size(); ++n) {
        CAPTURE(n);
        CHECK_THROWS_AS(SafetensorsFile::parse(good.substr(0, n), "cut"), Error);
    }
    std::mt19937 rng(7);
    int loaded = 0, rejected = 0;
    for (int round = 0; round < 3000; ++round) {
        std::string bytes = good;
        const int flips = 1 + static_cast<int>(rng() % 3);
        for (int k = 0; k < flips; ++k) {
            // Mostly the length and the header, where the parsing happens.
            const std::size_t limit = rng() % 4 ? std::min<std::size_t>(bytes.size(), 8 + 200) : bytes.size();
            bytes[rng() % limit] = static_cast<char>(rng() % 4 ? rng() & 0xff : "{}[],:\"0-9 "[rng() % 11]);
        }
        try {
            const SafetensorsFile file = SafetensorsFile::parse(bytes, "fuzz");
            for (const auto& [name, e] : file.entries()) {
                if (e.dtype == SafetensorsDtype::I64) (void)file.tensor<std::int64_t>(name);
                else (void)file.tensor<double>(name);
            }
            ++loaded;
        } catch (const Error&) {
            ++rejected;
        }
    }
    CHECK(loaded + rejected == 3000);
    CHECK(rejected > 1000);
}

// ---------------------------------------------------------------------------------------------
// .npy

namespace {

/// An .npy file from a header dict text and data bytes, padded the way numpy pads.
std::string npy_file(const std::string& dict, const std::string& data, int major = 1) {
    std::string header = dict;
    const std::size_t prefix = major == 1 ? 10 : 12;
    header.append((64 - (prefix + header.size() + 1) % 64) % 64, ' ');
    header += '\n';
    std::string out = "\x93NUMPY";
    out += static_cast<char>(major);
    out += '\0';
    for (std::size_t i = 0; i < prefix - 8; ++i) out += static_cast<char>(header.size() >> (8 * i));
    return out + header + data;
}

}  // namespace

TEST_CASE("npy: exact bytes of a small float32 file") {
    TempDir dir;
    const std::string path = dir.file("a.npy");
    save_npy(path, Tensor<float>::from(Shape{2, 3}, {1, 2, 3, 4, 5, -0.0f}));
    const std::string bytes = read_all(path);
    const std::string dict = "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }";
    // 10 bytes of prefix + the dict (59) + spaces + '\n' = 128, so the data starts 64-byte aligned.
    REQUIRE(bytes.size() == 128 + 24);
    CHECK(bytes.substr(0, 8) == std::string("\x93NUMPY\x01\x00", 8));
    CHECK(static_cast<unsigned char>(bytes[8]) + 256 * static_cast<unsigned char>(bytes[9]) == 118);
    CHECK(bytes.substr(10, dict.size()) == dict);
    CHECK(bytes[127] == '\n');
    CHECK(bytes.substr(10 + dict.size(), 127 - 10 - dict.size()) == std::string(127 - 10 - dict.size(), ' '));
    CHECK(bytes.substr(128) == raw<float>({1, 2, 3, 4, 5, -0.0f}));
    CHECK(dir.listing() == std::vector<std::string>{"a.npy"});
    save_npy(path, Tensor<double>::from(Shape{3}, {1, 2, 3}));
    CHECK(read_all(path).find("{'descr': '<f8', 'fortran_order': False, 'shape': (3,), }") == 10);
    save_npy(path, Tensor<double>::from(Shape{}, {1}));
    CHECK(read_all(path).find("'shape': (), }") != std::string::npos);
}

TEST_CASE("npy: round trip is bit-exact for float and double of every rank") {
    TempDir dir;
    for (std::size_t i = 0; i < kShapes.size(); ++i) {
        CAPTURE(kShapes[i].str());
        const std::string path = dir.file("t" + std::to_string(i) + ".npy");
        const Tensor<float> f = awkward_tensor<float>(kShapes[i], i);
        save_npy(path, f);
        CHECK(same_bits(load_npy<float>(path), f));
        const Tensor<double> as_double = load_npy<double>(path);
        for (std::int64_t k = 0; k < f.numel(); ++k) CHECK(as_double[k] == static_cast<double>(f[k]));
        const Tensor<double> d = awkward_tensor<double>(kShapes[i], i + 1);
        save_npy(path, d);
        CHECK(same_bits(load_npy<double>(path), d));
    }
    // The pipeline's Grad-CAM maps.
    const std::string cams = dir.file("cams.npy");
    save_npy(cams, awkward_tensor<float>(Shape{7, 28, 28}, 2));
    CHECK(same_bits(load_npy(cams), awkward_tensor<float>(Shape{7, 28, 28}, 2)));
    save_npy(cams, Tensor<double>::from(Shape{1}, {1e300}));
    CHECK(error_of([&] { load_npy<float>(cams); }).find("element 0 = 1e+300 does not fit in float") != std::string::npos);
    CHECK(error_of([&] { save_npy(dir.file("no/x.npy"), Tensor<float>(Shape{1})); }).find("no/x.npy") != std::string::npos);
    CHECK(error_of([&] { save_npy(cams, Tensor<float>()); }).find("undefined") != std::string::npos);
}

TEST_CASE("npy: version 2.0 and numpy's growth padding read fine") {
    TempDir dir;
    const std::string path = dir.file("v2.npy");
    write_raw(path, npy_file("{'descr': '<f8', 'fortran_order': False, 'shape': (2,), }", raw<double>({1.5, -2}), 2));
    CHECK(same_bits(load_npy<double>(path), Tensor<double>::from(Shape{2}, {1.5, -2})));
    write_raw(path, npy_file("{\"shape\": (1, 1),\"fortran_order\":False ,'descr':'<f4'}", raw<float>({9})));
    CHECK(load_npy(path)[0] == 9.f);
}

TEST_CASE("npy: a zero extent among huge ones loads as an empty tensor, whatever the other extents") {
    // Found by fuzz_npy: the product 1 * 1007 * 1701011709551615 * ... overflowed (undefined
    // behaviour) before it reached the zero.
    TempDir dir;
    const std::string path = dir.file("empty.npy");
    write_raw(path, npy_file("{'descr': '<f4', 'fortran_order': False, "
                             "'shape': (01,1007,00001701011709551615,005024,425,0,5040242914), }",
                             ""));
    const Tensor<float> t = load_npy<float>(path);
    CHECK(t.numel() == 0);
    CHECK(t.shape() == Shape{1, 1007, 1701011709551615, 5024, 425, 0, 5040242914});
    // With a nonzero data byte the same shape is refused by its size, not read past the end.
    write_raw(path, npy_file("{'descr': '<f4', 'fortran_order': False, 'shape': (3037000500, 0, 3037000500), }",
                             "\x01"));
    CHECK(error_of([&] { load_npy<float>(path); }).find("holds 1 data bytes but shape (3037000500, 0, 3037000500)") !=
          std::string::npos);
}

TEST_CASE("npy: every corrupted file is rejected with a message naming file and fault") {
    const std::string dict = "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }";
    const std::string f2 = raw<float>({1, 2});
    const std::string valid = npy_file(dict, f2);
    auto with_dict = [&](const std::string& d) { return npy_file(d, f2); };
    struct Case {
        const char* what;
        std::string bytes;
        std::string expect;
    };
    std::string bad_magic = valid;
    bad_magic[5] = 'X';
    std::string version3 = valid;
    version3[6] = 3;
    std::string long_header = valid;
    long_header[8] = '\x00';
    long_header[9] = '\x10';
    const std::vector<Case> cases = {
        {"empty", "", "0 bytes is too short for an .npy header"},
        {"short", valid.substr(0, 9), "9 bytes is too short"},
        {"bad magic", bad_magic, "not an .npy file (the magic string \\x93NUMPY is missing)"},
        {"version 3.0", version3, "format version 3.0 is not supported (1.0 and 2.0 are)"},
        {"header length beyond the file", long_header, "header length 4096 runs past the end of the file"},
        {"truncated header", valid.substr(0, 40), "runs past the end of the file"},
        {"not a dict", with_dict("hello"), "the header dict expects '{'"},
        {"unterminated string", with_dict("{'descr: 1}"), "the header dict has an unterminated string"},
        {"missing shape", with_dict("{'descr': '<f4', 'fortran_order': False}"), "lacks the key 'shape'"},
        {"unknown key", with_dict("{'descr': '<f4', 'extra': 1}"), "has the unknown key 'extra'"},
        {"duplicate key", with_dict("{'descr': '<f4', 'descr': '<f4'}"), "has the key 'descr' twice"},
        {"text after the dict", with_dict(dict + " x"), "has text after the closing '}'"},
        {"missing comma", with_dict("{'descr': '<f4' 'fortran_order': False}"), "expects ',' or '}'"},
        {"bool not a bool", with_dict("{'descr': '<f4', 'fortran_order': 0, 'shape': (2,)}"), "expects True or False"},
        {"big-endian", npy_file("{'descr': '>f4', 'fortran_order': False, 'shape': (2,), }", f2),
         "big-endian data ('>f4') is not supported"},
        {"int32", npy_file("{'descr': '<i4', 'fortran_order': False, 'shape': (2,), }", f2),
         "unsupported descr '<i4' (supported: '<f4' float32, '<f8' float64)"},
        {"Fortran order", npy_file("{'descr': '<f4', 'fortran_order': True, 'shape': (2,), }", f2),
         "Fortran-order data is not supported"},
        {"negative extent", npy_file("{'descr': '<f4', 'fortran_order': False, 'shape': (-2,), }", f2),
         "has a negative shape extent"},
        {"shape not a tuple", npy_file("{'descr': '<f4', 'fortran_order': False, 'shape': [2], }", f2), "expects '('"},
        {"1-tuple without comma", npy_file("{'descr': '<f4', 'fortran_order': False, 'shape': (2), }", f2),
         "a 1-tuple is written '(n,)'"},
        {"extents without comma", npy_file("{'descr': '<f4', 'fortran_order': False, 'shape': (1 2), }", f2),
         "expects ',' between shape extents"},
        {"rank 9", npy_file("{'descr': '<f4', 'fortran_order': False, 'shape': (1,1,1,1,1,1,1,1,2), }", f2),
         "more than 8 shape extents"},
        {"extent too large", npy_file("{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999999999,), }", f2),
         "a shape extent too large"},
        {"overflowing shape",
         npy_file("{'descr': '<f8', 'fortran_order': False, 'shape': (4294967296, 4294967296), }", f2),
         "shape (4294967296, 4294967296) has too many elements"},
        {"data too short", npy_file(dict, f2.substr(0, 4)), "holds 4 data bytes but shape (2,) of '<f4' needs 8"},
        {"data too long", npy_file(dict, f2 + "x"), "holds 9 data bytes but shape (2,) of '<f4' needs 8"},
    };
    TempDir dir;
    int index = 0;
    for (const Case& c : cases) {
        CAPTURE(c.what);
        const std::string path = dir.file("case" + std::to_string(index++) + ".npy");
        write_raw(path, c.bytes);
        const std::string message = error_of([&] { load_npy<float>(path); });
        CAPTURE(message);
        CHECK(message.find("npy file '" + path + "': ") == 0);
        CHECK(message.find(c.expect) != std::string::npos);
    }
    // Random damage: an error or a load, never a crash.
    std::mt19937 rng(11);
    const std::string path = dir.file("fuzz.npy");
    int rejected = 0;
    for (int round = 0; round < 300; ++round) {
        std::string bytes = valid;
        bytes[rng() % 70] = static_cast<char>(rng() % 2 ? rng() & 0xff : "{}(),:' 0123456789"[rng() % 18]);
        write_raw(path, bytes);
        try {
            (void)load_npy<double>(path);
        } catch (const Error&) {
            ++rejected;
        }
    }
    CHECK(rejected > 100);
}

// ---------------------------------------------------------------------------------------------
// Python interop: what cnnlite writes, numpy reads; what numpy writes, cnnlite reads. (The same for
// safetensors files and the `safetensors` package, which Debian does not have, is checked by
// tests/python/test_safetensors_parity.py in the pinned peer environment: `bash .ci/run peers`.)

namespace {

/// {"dtype", "shape", "values"} of a tensor, as the Python helpers take it.
template <class T>
nlohmann::json tensor_json(const Tensor<T>& t, const std::string& dtype) {
    nlohmann::json values = nlohmann::json::array();
    for (const T& v : t) values.push_back(v);
    return {{"dtype", dtype}, {"shape", t.shape().to_vector()}, {"values", values}};
}

void write_json(const std::string& path, const nlohmann::json& j) { write_file_atomically(path, j.dump(1)); }

}  // namespace

TEST_CASE("python: npy interop with numpy") {
    const std::string& python = python_with_numpy();
    if (python.empty()) {
        MESSAGE("skipped: no python3 with numpy (Debian: python3-numpy)");
        return;
    }
    TempDir dir;
    const std::string tool = "'" + python + "' '" + script("npy_check.py") + "' ";
    // One Python run checks every file and one writes every file: start-up costs ~0.5 s.
    std::string check_args, write_args;
    std::vector<Tensor<float>> floats;
    std::vector<Tensor<double>> doubles;
    for (std::size_t i = 0; i < kShapes.size(); ++i) {
        const std::string stem = dir.file(std::to_string(i));
        floats.push_back(awkward_tensor<float>(kShapes[i], i));
        doubles.push_back(awkward_tensor<double>(kShapes[i], i + 2));
        save_npy(stem + "f.npy", floats.back());
        save_npy(stem + "d.npy", doubles.back());
        write_json(stem + "f.json", tensor_json(floats.back(), "<f4"));
        write_json(stem + "d.json", tensor_json(doubles.back(), "<f8"));
        check_args += " '" + stem + "f.npy' '" + stem + "f.json' '" + stem + "d.npy' '" + stem + "d.json'";
        write_args += " '" + stem + "py_f.npy' '" + stem + "f.json' '" + stem + "py_d.npy' '" + stem + "d.json'";
    }
    CHECK(run(tool + "check" + check_args) == 0);
    // numpy.save writes, cnnlite reads.
    REQUIRE(run(tool + "write" + write_args) == 0);
    for (std::size_t i = 0; i < kShapes.size(); ++i) {
        CAPTURE(kShapes[i].str());
        CHECK(same_bits(load_npy<float>(dir.file(std::to_string(i) + "py_f.npy")), floats[i]));
        CHECK(same_bits(load_npy<double>(dir.file(std::to_string(i) + "py_d.npy")), doubles[i]));
    }
    // The checker says no to a wrong dtype.
    CHECK(run(tool + "check '" + dir.file("3d.npy") + "' '" + dir.file("3f.json") + "' 2>/dev/null") == 1);
}

}  // namespace test_io

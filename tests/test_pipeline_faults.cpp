// examples/fashion_mnist used carelessly and with hostile input, as a user meets it: empty data
// files, absurd option values, FIFOs and picture bombs, data files that claim far more than they
// hold, two runs into one folder, a run started over another and interrupted, a model from
// elsewhere, a folder that cannot be written. Every case ends in a clear message and a non-zero
// exit status (or does the right thing), never a crash, hang, wrong answer or gigabytes of
// memory. Inputs that could demand memory are run under an address-space limit of 1 GiB (the
// whole `all` stage on the fixture needs 600 MB of address space), except under AddressSanitizer.
#include <doctest/doctest.h>

#include <sys/stat.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>
#include <zlib.h>

#include "cnnlite/core/files.hpp"
#include "cnnlite/data/idx.hpp"
#include "cnnlite/io/model_file.hpp"
#include "cnnlite/nn/paper_model.hpp"
#include "picture_bytes.hpp"
#include "program_runner.hpp"
#include "source_dir.hpp"

namespace test_pipeline_faults {

namespace fs = std::filesystem;
using test_support::contains;
using test_support::read_text;
using test_support::RunResult;
using test_support::TempDir;

namespace {

const fs::path fixture_data = test_support::source_dir() / "data" / "fixtures";
constexpr std::uint64_t one_gib = std::uint64_t(1) << 30;

/// Options of a short training run on the fixture.
std::vector<std::string> quick(std::vector<std::string> args, const fs::path& out, int epochs = 1) {
    for (const std::string& a : {std::string("--data"), fixture_data.string(), std::string("--val"), std::string("200"),
                                 std::string("--limit"), std::string("600"), std::string("--epochs"),
                                 std::to_string(epochs), std::string("--out"), out.string(), std::string("--quiet")})
        args.push_back(a);
    return args;
}

/// Runs the program under the 1 GiB address-space limit (none under ASan) and a time limit.
RunResult run_limited(const std::vector<std::string>& args, const fs::path& scratch, double seconds = 300) {
    test_support::RunLimits limits;
    limits.address_space_bytes = test_support::address_sanitizer() ? 0 : one_gib;
    limits.seconds = seconds;
    return test_support::run_program(args, scratch, limits);
}

RunResult run(const std::vector<std::string>& args, const fs::path& scratch) {
    return test_support::run_program(args, scratch);
}

/// A clean refusal: exit status 1 (no signal, no hang) and `part` in the message.
void check_refused(const RunResult& r, const std::string& part) {
    INFO("stdout:\n", r.out, "\nstderr:\n", r.err);
    CHECK_FALSE(r.timed_out);
    CHECK(r.signal == 0);
    CHECK(r.status == 1);
    CHECK(contains(r.err, "fashion_mnist: error"));
    CHECK_MESSAGE(contains(r.err, part), part);
}

void write_bytes(const fs::path& path, const std::string& bytes) { std::ofstream(path, std::ios::binary) << bytes; }

std::string be32(std::uint32_t v) {
    return {static_cast<char>(v >> 24), static_cast<char>(v >> 16), static_cast<char>(v >> 8), static_cast<char>(v)};
}

std::string gzip(const std::string& plain) {
    z_stream s{};
    REQUIRE(deflateInit2(&s, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) == Z_OK);
    std::string out(deflateBound(&s, static_cast<uLong>(plain.size())) + 64, '\0');
    s.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(plain.data()));
    s.avail_in = static_cast<uInt>(plain.size());
    s.next_out = reinterpret_cast<Bytef*>(&out[0]);
    s.avail_out = static_cast<uInt>(out.size());
    REQUIRE(deflate(&s, Z_FINISH) == Z_STREAM_END);
    out.resize(s.total_out);
    deflateEnd(&s);
    return out;
}

/// A copy of the fixture data in `folder`.
void copy_fixture(const fs::path& folder) {
    fs::create_directories(folder);
    for (const auto& entry : fs::directory_iterator(fixture_data))
        fs::copy_file(entry.path(), folder / entry.path().filename(), fs::copy_options::overwrite_existing);
}

/// An untrained paper model file, enough to exercise predict.
fs::path untrained_model(const fs::path& folder) {
    const fs::path path = folder / "untrained.safetensors";
    cnnlite::save_model(cnnlite::fashion_mnist_cnn<float>(0), path.string());
    return path;
}

}  // namespace

TEST_CASE("an IDX pair holding no images is refused by name, not divided by") {
    TempDir tmp;
    const fs::path data = tmp.path / "data";
    copy_fixture(data);
    write_bytes(data / "train-images-idx3-ubyte.gz", gzip(be32(0x803) + be32(0) + be32(28) + be32(28)));
    write_bytes(data / "train-labels-idx1-ubyte.gz", gzip(be32(0x801) + be32(0)));
    for (const char* stage : {"eda", "all", "train"}) {
        CAPTURE(stage);
        const RunResult r = run({stage, "--data", data.string(), "--out", (tmp.path / "out").string(), "--quiet"}, tmp.path);
        check_refused(r, "train-images-idx3-ubyte.gz' holds no images, so the training set is empty");
    }
}

TEST_CASE("numbers that do not fit their option are refused with the range, never clamped or wrapped") {
    TempDir tmp;
    const std::string out = (tmp.path / "out").string();
    const struct {
        std::vector<std::string> args;
        std::string message;
    } cases[] = {
        {{"--seed", "18446744073709551616"}, "--seed: '18446744073709551616' is not a whole number in 0..18446744073709551615"},
        {{"--seed", "-1"}, "--seed: '-1' is not a whole number in 0..18446744073709551615"},
        {{"--seed", "100000000000000000000000"}, "is not a whole number in 0..18446744073709551615"},
        {{"--seed", "+5"}, "--seed: '+5' is not a whole number"},
        {{"--epochs", "99999999999999999999"}, "--epochs: '99999999999999999999' is not a whole number in 1..100000"},
        {{"--epochs", "0"}, "--epochs: 0 is outside 1..100000"},
        {{"--epochs", "abc"}, "--epochs: 'abc' is not a whole number in 1..100000"},
        {{"--epochs", "2.5"}, "--epochs: '2.5' is not a whole number"},
        {{"--batch-size", "0"}, "--batch-size: 0 is outside 1..65536"},
        {{"--val", "-3"}, "--val: -3 is outside 1..2147483647"},
        {{"--limit", "4294967296"}, "--limit: 4294967296 is outside 1..2147483647"},
        {{"--threads", "100000"}, "--threads: 100000 is outside 1.."},
        {{"--threads", "1000"}, "four per core"},
    };
    for (const auto& c : cases) {
        // An empty data folder: a program that accepted the value would stop there, not train.
        std::vector<std::string> args = {"train", "--out", out, "--data", tmp.path.string()};
        args.insert(args.end(), c.args.begin(), c.args.end());
        CAPTURE(c.args[0] + " " + c.args[1]);
        const RunResult r = test_support::run_program(args, tmp.path, {0, 60});
        CHECK(r.status != 0);
        CHECK(r.signal == 0);
        CHECK_MESSAGE(contains(r.err, c.message), r.err);
    }
    CHECK_FALSE(fs::exists(tmp.path / "out"));  // refused before anything was written
}

TEST_CASE("predict refuses FIFOs, devices and oversized files without blocking or reading them") {
    TempDir tmp;
    const fs::path model = untrained_model(tmp.path);
    const fs::path fifo = tmp.path / "pipe.jpg";
    REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
    const std::string out = (tmp.path / "out").string();
    RunResult r = run_limited({"predict", fifo.string(), "--model", model.string(), "--out", out}, tmp.path, 60);
    check_refused(r, "picture '" + fifo.string() + "': not a regular file");
    r = run_limited({"predict", "/dev/zero", "--model", model.string(), "--out", out}, tmp.path, 60);
    check_refused(r, "picture '/dev/zero': not a regular file");
    const fs::path big = tmp.path / "huge.png";
    {
        std::ofstream file(big, std::ios::binary);
        file.seekp(std::int64_t(200) << 20);  // a sparse 200 MB file
        file.put('x');
    }
    r = run_limited({"predict", big.string(), "--model", model.string(), "--out", out}, tmp.path, 60);
    check_refused(r, "huge.png' is 209715201 bytes, more than the limit of 67108864 bytes");
}

TEST_CASE("pictures that claim huge sizes are refused before decoding; a very wide strip is classified") {
    TempDir tmp;
    const fs::path model = untrained_model(tmp.path);
    const std::string out = (tmp.path / "out").string();
    const cnnlite::viz::Image disc = test_support::disc_picture(40, 30, 3);
    const struct {
        const char* name;
        test_support::Bytes bytes;
        const char* message;
    } bombs[] = {
        {"bomb.bmp", test_support::bmp_claiming(26000, 26000), "bomb.bmp' is a BMP picture; only PNG and JPEG"},
        {"bomb.jpg", test_support::jpeg_claiming(test_support::encode_jpeg(disc), 30000, 30000),
         "30000x30000 pixels, more than the limit of 40000000 pixels"},
        {"bomb.png", test_support::png_claiming(test_support::encode_png(disc), 30000, 30000),
         "30000x30000 pixels, more than the limit of 40000000 pixels"},
    };
    for (const auto& bomb : bombs) {
        CAPTURE(bomb.name);
        const fs::path file = tmp.path / bomb.name;
        write_bytes(file, test_support::as_string(bomb.bytes));
        const auto start = std::chrono::steady_clock::now();
        const RunResult r = run_limited({"predict", file.string(), "--model", model.string(), "--out", out}, tmp.path, 60);
        check_refused(r, bomb.message);
        CHECK(std::chrono::steady_clock::now() - start < std::chrono::seconds(20));
    }
    // One pixel high, 900,000 wide (under the pixel limit and libpng's width limit): read and
    // classified; before, the picture was squared into 900,000 x 900,000 pixels.
    cnnlite::viz::Image strip(900000, 1, 1);
    for (int x = 0; x < strip.width(); ++x) strip.at(x, 0) = static_cast<std::uint8_t>(x % 4 == 0 ? 240 : 10);
    const fs::path file = tmp.path / "strip.png";
    cnnlite::viz::write_png(file.string(), strip);
    const RunResult r = run_limited({"predict", file.string(), "--model", model.string(), "--out", out}, tmp.path, 60);
    INFO(r.err);
    CHECK(r.status == 0);
    CHECK(contains(r.out, file.string() + ": "));
}

TEST_CASE("truncated pictures are errors naming the file, not predictions from grey") {
    TempDir tmp;
    const fs::path model = untrained_model(tmp.path);
    const cnnlite::viz::Image disc = test_support::disc_picture(64, 64, 3);
    for (const auto& named : {std::pair<std::string, test_support::Bytes>{"cut.png", test_support::encode_png(disc)},
                                      {"cut.jpg", test_support::encode_jpeg(disc)},
                                      {"cut_progressive.jpg", test_support::encode_jpeg(disc, true)}}) {
        const std::string& name = named.first;
        const auto& whole = named.second;
        CAPTURE(name);
        const fs::path file = tmp.path / name;
        write_bytes(file, test_support::as_string(test_support::cut(whole, 0.7)));
        const RunResult r = run({"predict", file.string(), "--model", model.string(), "--out", (tmp.path / "out").string()},
                                tmp.path);
        check_refused(r, "'" + file.string() + "' is not a complete");
        CHECK_FALSE(contains(r.out, "%"));  // no probabilities printed
    }
}

TEST_CASE("data files that claim far more than is used are read only as far as needed, or refused by size") {
    TempDir tmp;
    const fs::path data = tmp.path / "data";
    copy_fixture(data);
    // The fixture's 2,000 training images behind headers that claim 1,000,000.
    const std::string images = test_support::read_text(data / "train-images-idx3-ubyte.gz");
    std::string plain, labels;
    {
        const cnnlite::Tensor<std::uint8_t> pixels = cnnlite::read_idx_images(data / "train-images-idx3-ubyte.gz");
        const cnnlite::Tensor<std::uint8_t> raw = cnnlite::read_idx_u8(data / "train-labels-idx1-ubyte.gz", 1);
        plain = be32(0x803) + be32(1000000) + be32(28) + be32(28) +
                std::string(reinterpret_cast<const char*>(pixels.data()), static_cast<std::size_t>(pixels.numel()));
        labels = be32(0x801) + be32(1000000) +
                 std::string(reinterpret_cast<const char*>(raw.data()), static_cast<std::size_t>(raw.numel()));
    }
    write_bytes(data / "train-images-idx3-ubyte.gz", gzip(plain));
    write_bytes(data / "train-labels-idx1-ubyte.gz", gzip(labels));

    // train with --limit reads the 200 + 640 images it uses.
    RunResult r = run_limited({"train", "--data", data.string(), "--val", "200", "--limit", "640", "--epochs", "1", "--out",
                               (tmp.path / "train").string(), "--quiet"},
                              tmp.path);
    INFO(r.err);
    CHECK(r.status == 0);
    // eda reads every training image: refused from the header with the memory named.
    r = run_limited({"eda", "--data", data.string(), "--out", (tmp.path / "eda").string(), "--quiet"}, tmp.path);
    check_refused(r, "1000000 images of 28x28 need 3920 MB in memory (bytes and floats), more than the budget");
}

TEST_CASE("every input path stays within a memory budget: model, checkpoint and JSON files") {
    TempDir tmp;
    const fs::path out = tmp.path / "out";
    RunResult r = run(quick({"train"}, out), tmp.path);
    REQUIRE_MESSAGE(r.status == 0, r.err);

    // A model file whose architecture claims a Dense layer of 999,999,999 units (3 TB of weights).
    const std::string model = read_text(out / "model.safetensors");
    const std::string units = "\\\"units\\\":\\\"256\\\"";  // \"units\":\"256\" inside the JSON header
    const auto at = model.find(units);
    REQUIRE(at != std::string::npos);
    std::string patched = model;
    patched.replace(at, units.size(), "\\\"units\\\":\\\"999999999\\\"");
    std::uint64_t header = 0;  // the header's length (8 bytes, little-endian) grows by 6
    for (int i = 7; i >= 0; --i) header = (header << 8) | static_cast<unsigned char>(model[static_cast<std::size_t>(i)]);
    header += 6;
    for (int i = 0; i < 8; ++i) patched[static_cast<std::size_t>(i)] = static_cast<char>(header >> (8 * i));
    const fs::path bomb = tmp.path / "bomb.safetensors";
    write_bytes(bomb, patched);
    r = run_limited({"evaluate", "--data", fixture_data.string(), "--model", bomb.string(), "--out", out.string()},
                    tmp.path);
    check_refused(r, "bomb.safetensors");
    check_refused(r, "more than the");

    // A metrics.json of 20 MiB.
    {
        std::ofstream big(out / "metrics.json");
        big << "{\"pad\": \"" << std::string(20 << 20, 'x') << "\"}";
    }
    r = run_limited({"evaluate", "--data", fixture_data.string(), "--out", out.string()}, tmp.path);
    check_refused(r, "metrics.json' is 20971531 bytes, more than the limit of 16777216 bytes");
    fs::remove(out / "metrics.json");

    // A checkpoint that is not one.
    fs::copy_file(bomb, out / "checkpoint.safetensors", fs::copy_options::overwrite_existing);
    r = run_limited(quick({"train", "--resume"}, out, 2), tmp.path);
    check_refused(r, "checkpoint.safetensors");
}

TEST_CASE("two runs into one folder at the same time: the second is refused, naming the first") {
    TempDir tmp;
    const fs::path out = tmp.path / "out";
    const fs::path first_scratch = tmp.path / "first";
    fs::create_directories(first_scratch);
    const pid_t first = test_support::start_program(quick({"train"}, out, 200), first_scratch);
    // Wait until the first run holds the folder.
    for (int i = 0; i < 2000 && !contains(read_text(out / ".lock"), "process"); ++i)
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
    const RunResult second = run(quick({"train", "--overwrite"}, out), tmp.path);
    ::kill(first, SIGKILL);
    test_support::finish_program(first, first_scratch);
    check_refused(second, "folder '" + out.string() + "' is in use by another run (process " + std::to_string(first));
}

TEST_CASE("a new run does not start over another one without --overwrite, and --overwrite clears it") {
    TempDir tmp;
    const fs::path out = tmp.path / "out";
    RunResult r = run(quick({"train"}, out), tmp.path);
    REQUIRE_MESSAGE(r.status == 0, r.err);
    r = run({"evaluate", "--data", fixture_data.string(), "--out", out.string(), "--quiet"}, tmp.path);
    REQUIRE_MESSAGE(r.status == 0, r.err);
    const std::string first_run = nlohmann::json::parse(read_text(out / "run.json"))["run_id"];
    CHECK(nlohmann::json::parse(read_text(out / "metrics.json"))["run_id"] == first_run);

    r = run(quick({"train"}, out), tmp.path);
    check_refused(r, "already holds run " + first_run + ", 1 epoch(s) trained: continue it with --resume, replace it "
                                                        "with --overwrite");
    r = run(quick({"all"}, out), tmp.path);
    check_refused(r, "already holds run " + first_run);
    r = run(quick({"train", "--resume", "--overwrite"}, out), tmp.path);
    check_refused(r, "--resume and --overwrite contradict each other");

    // --overwrite: the old run's files are gone before the new run starts; interrupted after its
    // first epoch, the folder holds the new run only and evaluate files results under it.
    const fs::path scratch = tmp.path / "interrupted";
    fs::create_directories(scratch);
    const pid_t pid = test_support::start_program(quick({"train", "--overwrite"}, out, 500), scratch);
    const auto new_checkpoint = [&] {  // the first run's files go first, then the new run saves
        const std::string run = read_text(out / "run.json");
        return !run.empty() && !contains(run, first_run) && fs::exists(out / "checkpoint.safetensors");
    };
    for (int i = 0; i < 6000 && !new_checkpoint(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(5));
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    ::kill(pid, SIGINT);
    const RunResult interrupted = test_support::finish_program(pid, scratch, 60);
    INFO(interrupted.err);
    CHECK(interrupted.status == 130);
    CHECK(contains(interrupted.err, "interrupted. Run "));
    CHECK(contains(interrupted.err, "are saved in " + (out / "checkpoint.safetensors").string()));
    CHECK(contains(interrupted.err, "Continue with:\n  fashion_mnist train"));
    CHECK(contains(interrupted.err, "--resume"));
    const std::string second_run = nlohmann::json::parse(read_text(out / "run.json"))["run_id"];
    CHECK(second_run != first_run);
    CHECK_FALSE(fs::exists(out / "metrics.json"));  // the first run's results went with it
    r = run({"evaluate", "--data", fixture_data.string(), "--out", out.string(), "--quiet"}, tmp.path);
    REQUIRE_MESSAGE(r.status == 0, r.err);
    CHECK(nlohmann::json::parse(read_text(out / "metrics.json"))["run_id"] == second_run);
}

TEST_CASE("--resume with nothing left to train keeps the test results; on other data it is refused") {
    TempDir tmp;
    const fs::path out = tmp.path / "out";
    RunResult r = run(quick({"train"}, out, 2), tmp.path);
    REQUIRE_MESSAGE(r.status == 0, r.err);
    r = run({"evaluate", "--data", fixture_data.string(), "--out", out.string(), "--quiet"}, tmp.path);
    REQUIRE_MESSAGE(r.status == 0, r.err);
    r = run(quick({"train", "--resume"}, out, 2), tmp.path);
    REQUIRE_MESSAGE(r.status == 0, r.err);
    const nlohmann::json metrics = nlohmann::json::parse(read_text(out / "metrics.json"));
    CHECK(metrics.contains("test_accuracy"));
    CHECK(metrics["epochs_run"] == 2);

    // The same counts of images, one pixel different: another data set.
    const fs::path other = tmp.path / "other";
    copy_fixture(other);
    {
        const auto pixels = cnnlite::read_idx_images(other / "train-images-idx3-ubyte.gz");
        std::string plain = be32(0x803) + be32(static_cast<std::uint32_t>(pixels.dim(0))) + be32(28) + be32(28) +
                            std::string(reinterpret_cast<const char*>(pixels.data()), static_cast<std::size_t>(pixels.numel()));
        plain[16 + 784 * 300 + 400] ^= 0x40;
        write_bytes(other / "train-images-idx3-ubyte.gz", gzip(plain));
    }
    std::vector<std::string> args = quick({"train", "--resume"}, out, 3);
    args[3] = other.string();  // the value of --data
    r = run(args, tmp.path);
    check_refused(r, "--resume: the checkpoint was trained on other data");
}

TEST_CASE("evaluate and explain of a model from another run write under OUT/evaluations/<name>/") {
    TempDir tmp;
    const fs::path out = tmp.path / "out", elsewhere = tmp.path / "elsewhere";
    REQUIRE(run(quick({"train"}, out), tmp.path).status == 0);
    REQUIRE(run(quick({"train", "--seed", "3"}, elsewhere), tmp.path).status == 0);
    REQUIRE(run({"evaluate", "--data", fixture_data.string(), "--out", out.string(), "--quiet"}, tmp.path).status == 0);
    const std::string own = read_text(out / "metrics.json");

    const fs::path foreign = tmp.path / "other model.safetensors";
    fs::copy_file(elsewhere / "model.safetensors", foreign);
    RunResult r = run({"evaluate", "--data", fixture_data.string(), "--out", out.string(), "--model", foreign.string()},
                      tmp.path);
    INFO(r.out, r.err);
    REQUIRE(r.status == 0);
    CHECK(contains(r.out, "its results go to " + (out / "evaluations" / "other model").string()));
    CHECK(read_text(out / "metrics.json") == own);  // untouched
    const nlohmann::json theirs = nlohmann::json::parse(read_text(out / "evaluations" / "other model" / "metrics.json"));
    CHECK(theirs["evaluated_model"] == fs::absolute(foreign).string());
    CHECK(theirs.contains("test_accuracy"));
    CHECK(fs::exists(out / "evaluations" / "other model" / "figures" / "confusion_matrix.svg"));

    // In a folder without a run of its own, evaluate writes metrics.json there, as always.
    const fs::path fresh = tmp.path / "fresh";
    r = run({"evaluate", "--data", fixture_data.string(), "--out", fresh.string(), "--model", foreign.string(), "--quiet"},
            tmp.path);
    REQUIRE_MESSAGE(r.status == 0, r.err);
    CHECK(nlohmann::json::parse(read_text(fresh / "metrics.json")).contains("test_accuracy"));
}

TEST_CASE("an output folder that cannot be written is refused before any training") {
    TempDir tmp;
    const fs::path out = tmp.path / "out";
    fs::create_directories(out);
    // Root ignores permission bits; an immutable folder (chattr +i) stops root too.
    const bool immutable = std::system(("chattr +i '" + out.string() + "' 2>/dev/null").c_str()) == 0;
    if (!immutable) fs::permissions(out, fs::perms::owner_read | fs::perms::owner_exec);
    const bool writable = ::access(out.c_str(), W_OK) == 0 && !immutable;
    if (writable) {
        MESSAGE("skipped: cannot make a folder read-only here (root without chattr)");
    } else {
        const auto start = std::chrono::steady_clock::now();
        const RunResult r = run(quick({"train"}, out, 50), tmp.path);
        check_refused(r, "cannot write in folder '" + out.string() + "'");
        CHECK(std::chrono::steady_clock::now() - start < std::chrono::seconds(10));
        CHECK_FALSE(contains(r.out + r.err, "Epoch 1"));
    }
    if (immutable) CHECK(std::system(("chattr -i '" + out.string() + "'").c_str()) == 0);
    fs::permissions(out, fs::perms::owner_all);
}

}  // namespace test_pipeline_faults

// Finding the Fashion-MNIST files on disk. Places are tried in a fixed, documented order and,
// when none has the files, the error lists each place with what was missing and how to get
// the data, so that the first run on a new machine tells the user exactly what to do.
#pragma once

#include <array>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <system_error>
#include <vector>

#include "cnnlite/core/error.hpp"

namespace cnnlite {

/// A folder where the data set may be, and why it is searched ("CNNLITE_DATA", ...).
struct DataLocation {
    std::filesystem::path folder;  ///< where to look
    std::string origin;            ///< why this place is searched, for messages
};

/// The four IDX files of the data set, all in `folder` (each gzip or uncompressed).
struct FashionMnistFiles {
    std::filesystem::path folder;        ///< the folder that holds all four
    std::filesystem::path train_images;  ///< train-images-idx3-ubyte[.gz]
    std::filesystem::path train_labels;  ///< train-labels-idx1-ubyte[.gz]
    std::filesystem::path test_images;   ///< t10k-images-idx3-ubyte[.gz]
    std::filesystem::path test_labels;   ///< t10k-labels-idx1-ubyte[.gz]
};

/// Folder of Debian's package dataset-fashion-mnist.
inline const char* const debian_fashion_mnist_folder = "/usr/share/datasets/fashion-mnist";

/// Places searched, in order: `explicit_folder` alone when given (no fallback: a folder the
/// user names must hold the data); otherwise $CNNLITE_DATA when set and non-empty, then the
/// folder data/fashion-mnist under the working directory, then Debian's package folder.
inline std::vector<DataLocation> fashion_mnist_search_path(const std::filesystem::path& explicit_folder = {}) {
    if (!explicit_folder.empty()) return {{explicit_folder, "the folder given explicitly"}};
    std::vector<DataLocation> places;
    const char* env = std::getenv("CNNLITE_DATA");
    if (env && *env) places.push_back({env, "environment variable CNNLITE_DATA"});
    places.push_back({std::filesystem::path("data") / "fashion-mnist", "data/fashion-mnist under the working directory"});
    places.push_back({debian_fashion_mnist_folder, "Debian package dataset-fashion-mnist"});
    return places;
}

namespace detail {

/// The gzip file `<stem>.gz` or else the plain `<stem>` in `folder`; empty when neither exists.
inline std::filesystem::path find_idx_file(const std::filesystem::path& folder, const std::string& stem) {
    std::error_code ec;
    for (const std::string& name : {stem + ".gz", stem}) {
        const std::filesystem::path candidate = folder / name;
        if (std::filesystem::is_regular_file(candidate, ec)) return candidate;
    }
    return {};
}

}  // namespace detail

/// The first place in `places` that holds all four files. Otherwise throws a cnnlite::Error
/// listing every place with what it lacks, and how to install the data set.
inline FashionMnistFiles find_fashion_mnist_files(const std::vector<DataLocation>& places) {
    static const std::array<const char*, 4> stems = {"train-images-idx3-ubyte", "train-labels-idx1-ubyte",
                                                     "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"};
    std::string report;
    for (const DataLocation& place : places) {
        report += "\n  " + place.folder.string() + " (" + place.origin + "): ";
        std::error_code ec;
        if (!std::filesystem::is_directory(place.folder, ec)) {
            report += std::filesystem::exists(place.folder, ec) ? "not a folder" : "no such folder";
            continue;
        }
        std::array<std::filesystem::path, 4> found;
        std::string missing;
        for (std::size_t i = 0; i < stems.size(); ++i) {
            found[i] = detail::find_idx_file(place.folder, stems[i]);
            if (found[i].empty()) missing += std::string(missing.empty() ? "" : ", ") + stems[i] + "[.gz]";
        }
        if (missing.empty()) return {place.folder, found[0], found[1], found[2], found[3]};
        report += "missing " + missing;
    }
    fail("Fashion-MNIST not found. Looked for train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz, "
         "t10k-images-idx3-ubyte.gz and t10k-labels-idx1-ubyte.gz (or the same names without .gz) in:",
         report.empty() ? std::string("\n  (no places)") : report,
         "\nInstall the data set with `apt-get install dataset-fashion-mnist` (Debian/Ubuntu; files go to ",
         debian_fashion_mnist_folder, "), or put the four files in a folder and pass it explicitly or set "
         "CNNLITE_DATA to it.");
}

/// Finds the data set: in `explicit_folder` when given, else along fashion_mnist_search_path().
inline FashionMnistFiles locate_fashion_mnist(const std::filesystem::path& explicit_folder = {}) {
    return find_fashion_mnist_files(fashion_mnist_search_path(explicit_folder));
}

}  // namespace cnnlite

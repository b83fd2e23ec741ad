// Test support: the repository root, for the files tests and benchmarks read (fixtures, the
// data set's sample, scripts). Found at run time, not compiled in: a path in the compile
// command would make every clone's test files different objects, so that a compiler cache
// could never serve a second clone.
//
// Taken from $CNNLITE_SOURCE_DIR when set, else from the file cnnlite_source_dir.txt that the
// CMake and the Meson build write next to the executables (tests/, benchmarks/).
#pragma once

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>
#include <system_error>

namespace test_support {

/// The repository root; throws std::runtime_error naming what was looked for when it cannot be
/// found or does not hold include/cnnlite/cnnlite.hpp.
inline const std::filesystem::path& source_dir() {
    namespace fs = std::filesystem;
    static const fs::path root = [] {
        fs::path found;
        std::string where;
        if (const char* env = std::getenv("CNNLITE_SOURCE_DIR"); env && *env) {
            found = env;
            where = "$CNNLITE_SOURCE_DIR";
        } else {
            std::error_code ec;
            const fs::path record = fs::read_symlink("/proc/self/exe", ec).parent_path() / "cnnlite_source_dir.txt";
            std::ifstream in(record);
            std::string line;
            if (ec || !in || !std::getline(in, line) || line.empty())
                throw std::runtime_error("the repository root is unknown: " + record.string() +
                                         " is missing or empty (written by the build); set CNNLITE_SOURCE_DIR");
            found = line;
            where = record.string();
        }
        std::error_code ec;
        if (!fs::exists(found / "include" / "cnnlite" / "cnnlite.hpp", ec))
            throw std::runtime_error("the repository root '" + found.string() + "' from " + where +
                                     " has no include/cnnlite/cnnlite.hpp");
        return found;
    }();
    return root;
}

}  // namespace test_support

// Stage `summary`: the network of --arch (the paper's Figure 4 by default) as a Keras-style
// table, printed and saved as OUT/model_summary.txt for the report.
#include <cstdio>

#include "cnnlite/core/files.hpp"
#include "cnnlite/nn/summary.hpp"

#include "pipeline.hpp"

namespace fm {

void run_summary(const Settings& s) {
    const double start = now_seconds();
    const Paths paths(s);
    const cnnlite::Model<float> model = architecture(s.arch_or_default()).build(s.seed);
    const std::string table = cnnlite::summary(model);
    if (!s.quiet) {
        std::printf("%s", table.c_str());
        std::fflush(stdout);
    }
    ensure_dir(paths.out);
    cnnlite::write_file_atomically(paths.model_summary().string(), table);
    say(s, "summary", "model summary -> " + paths.model_summary().string());
    record_stage(s, "summary", now_seconds() - start, {{"parameters", model.parameter_count()}});
}

}  // namespace fm

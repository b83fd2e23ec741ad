// fashion_mnist: the paper "Fashion-MNIST Image Classification using CNN and Grad-CAM" (Kim,
// Li, Bak, 2023) rebuilt step by step, with every table as CSV/JSON, every figure as PNG/SVG
// and one HTML report under the output folder.
//
//   fashion_mnist                      everything with the paper's recipe (= `all`)
//   fashion_mnist train --epochs 1     one stage, options after the subcommand
//   fashion_mnist predict shirt.jpg    classify your own pictures
//   fashion_mnist export --to m.onnx   the trained model for onnxruntime
//
// Each stage is one source file; program.cpp holds the command line, MPI and error handling.
#include "pipeline.hpp"

namespace {

/// The paper, in its order. Under mpirun every rank trains; the other stages run on rank 0.
void reproduce_the_paper(const fm::Settings& s) {
    const bool first_rank = s.rank == 0;
    // 1. Exploratory data analysis: images per class, the non-background pixel ratio of every
    //    image (quartiles, histograms, ANOVA of training against test set), UMAP.
    if (first_rank) fm::run_eda(s);
    // 2. The network of its Figure 4: Conv2D(64, 2x2) -> 2 x (MaxPool + Dropout) -> Dense(256)
    //    -> Dropout -> Dense(10, softmax).
    if (first_rank) fm::run_summary(s);
    // 3. Training: Adam, batch 64, 50 epochs, keeping the weights of the lowest validation loss.
    fm::run_train(s);
    // 4. Evaluation of the kept weights on the 10,000 test images.
    if (first_rank) fm::run_evaluate(s);
    // 5. Grad-CAM of the convolution, and the other explanation methods compared with it.
    if (first_rank) fm::run_explain(s);
}

}  // namespace

int main(int argc, char** argv) {
    return fm::run_program(argc, argv,
                           {{"all", reproduce_the_paper},
                            {"eda", fm::run_eda},
                            {"summary", fm::run_summary},
                            {"train", fm::run_train},
                            {"evaluate", fm::run_evaluate},
                            {"explain", fm::run_explain},
                            {"predict", fm::run_predict},
                            {"export", fm::run_export}});
}

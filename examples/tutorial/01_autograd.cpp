// Tutorial chapter 1 (docs/tutorial/01-tensors-and-autograd.md): tensors, the recorded graph,
// reverse topological order, gradient hooks, NoGrad and a finite-difference gradcheck.
#include <cnnlite/autograd/gradcheck.hpp>
#include <cnnlite/autograd/variable.hpp>
#include <cnnlite/ops/elementwise.hpp>
#include <cnnlite/ops/reduction.hpp>

#include <cstdio>
#include <map>
#include <string>
#include <vector>

#include "tutorial.hpp"

using namespace cnnlite;
using tutorial::values;

// The order in which backward() visits the graph below `out`: a post-order depth-first search
// (every node after its inputs) read backwards, as Variable::backward does it.
// [snippet:order]
std::vector<const detail::Node<double>*> backward_order(const Variable<double>& out) {
    std::vector<const detail::Node<double>*> post_order, seen;
    auto visit = [&](auto&& self, const detail::Node<double>* node) -> void {
        for (const auto* s : seen)
            if (s == node) return;
        seen.push_back(node);
        for (int i = 0; i < node->num_inputs; ++i) self(self, node->input(i));
        post_order.push_back(node);  // after all of its inputs
    };
    visit(visit, out.node());
    return {post_order.rbegin(), post_order.rend()};  // outputs first, leaves last
}
// [end]

int main() try {
    std::printf("== tensors\n");
    // [snippet:tensor]
    Tensor<float> t = Tensor<float>::from({2, 3}, {1, 2, 3, 4, 5, 6});
    Tensor<float> view = t.reshape({3, 2});  // the same storage seen as 3 x 2
    view(2, 1) = 60;                         // so this writes t's last element
    Tensor<float> copy = t.clone();          // a deep copy: its own storage
    copy[0] = -1;
    std::printf("t %s = %s\n", t.shape().str().c_str(), values(t, 0).c_str());
    std::printf("view %s shares t's storage: %s; copy does: %s\n", view.shape().str().c_str(),
                view.shares_storage_with(t) ? "yes" : "no", copy.shares_storage_with(t) ? "yes" : "no");
    // [end]
    check(t[5] == 60 && t[0] == 1, "a reshape must be a view");

    std::printf("\n== the recorded graph\n");
    // [snippet:graph]
    Variable<double> x(Tensor<double>::from({3}, {1, 2, 3}), /*requires_grad=*/true);
    Variable<double> w(Tensor<double>::from({3}, {0.5, -1, 2}), /*requires_grad=*/true);
    Variable<double> h = x * x;   // h is used twice below
    Variable<double> y1 = h * w;
    Variable<double> y2 = h + w;
    Variable<double> loss = sum(y1 + y2);
    // [end]
    const std::map<const detail::Node<double>*, std::string> names{
        {x.node(), "x"}, {w.node(), "w"}, {h.node(), "h"}, {y1.node(), "y1"}, {y2.node(), "y2"}, {loss.node(), "loss"}};
    std::printf("h = %s, loss = %.1f\n", values(h.value(), 1).c_str(), loss.value()[0]);
    std::printf("backward visits:");
    for (const auto* node : backward_order(loss)) {
        auto it = names.find(node);
        std::printf(" %s(%s)", it != names.end() ? it->second.c_str() : "y1+y2", node->op);
    }
    std::printf("\n");

    std::printf("\n== backward, with a hook on h\n");
    // [snippet:hook]
    h.register_hook([](Tensor<double>& g) { std::printf("hook on h sees dloss/dh = %s\n", values(g, 1).c_str()); });
    loss.backward();
    std::printf("dloss/dx = %s\n", values(x.grad(), 1).c_str());
    std::printf("dloss/dw = %s\n", values(w.grad(), 1).c_str());
    // [end]
    // By hand: dloss/dh = w + 1, dloss/dx = (w + 1) * 2x, dloss/dw = h + 1.
    tutorial::expect_close("dloss/dx", x.grad(), Tensor<double>::from({3}, {3, 0, 18}));
    tutorial::expect_close("dloss/dw", w.grad(), Tensor<double>::from({3}, {2, 5, 10}));

    std::printf("\n== a hook may change the gradient\n");
    // [snippet:hook_edit]
    Variable<double> a(Tensor<double>::from({2}, {1, -3}), true);
    Variable<double> b = a * a;
    b.register_hook([](Tensor<double>& g) { g.array() = g.array().min(0.5); });  // clip at 0.5
    sum(b).backward();
    std::printf("da = %s (unclipped it would be 2a = [2.0, -6.0])\n", values(a.grad(), 1).c_str());
    // [end]
    tutorial::expect_close("clipped gradient", a.grad(), Tensor<double>::from({2}, {1, -3}));

    std::printf("\n== leaves accumulate, NoGrad records nothing\n");
    // [snippet:accumulate]
    sum(x * w).backward();  // a second backward adds w to x's gradient
    std::printf("dloss/dx after a second backward = %s\n", values(x.grad(), 1).c_str());
    // [end]
    tutorial::expect_close("accumulated gradient", x.grad(), Tensor<double>::from({3}, {3 + 0.5, 0 - 1, 18 + 2}));
    // [snippet:nograd]
    x.zero_grad();
    {
        NoGrad no_grad;  // inference: no graph, no memory kept for backward
        Variable<double> z = x * w;
        std::printf("under NoGrad: z requires grad? %s, z is a leaf? %s\n", z.requires_grad() ? "yes" : "no",
                    z.is_leaf() ? "yes" : "no");
    }
    // [end]
    check(!x.has_grad(), "zero_grad must drop the gradient");

    std::printf("\n== gradcheck\n");
    // [snippet:gradcheck]
    const GradcheckResult r = gradcheck(
        [](const std::vector<Variable<double>>& in) { return sum((in[0] * in[0]) * in[1] + in[0] * in[1]); },
        {Tensor<double>::from({3}, {1, 2, 3}), Tensor<double>::from({3}, {0.5, -1, 2})});
    std::printf("gradcheck: %s (largest difference below 1e-6: %s)\n", r.ok ? "ok" : r.message.c_str(),
                r.max_abs_error < 1e-6 ? "yes" : "no");
    // [end]
    check(r.ok, "gradcheck failed: ", r.message);
    return 0;
} catch (const std::exception& e) {
    std::fprintf(stderr, "01_autograd: %s\n", e.what());
    return 1;
}

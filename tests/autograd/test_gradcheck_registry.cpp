// test_gradcheck_registry.cpp: the checks the op registry drives (registry.h; its cases are in
// registry.cpp, which the CUDA tests run on a GPU too).
#include <doctest/doctest.h>

#include <cmath>
#include <set>

#include "autograd/gradcheck.h"
#include "autograd/op_list.h"
#include "registry.h"

namespace gv::test {

using ag::Var;
using V = std::vector<Var>;

namespace {

// A view with the same values as t but non-contiguous memory (every other element of a wider buffer).
Tensor noncontiguous(const Tensor& t) {
  if (t.dim() == 0) return t;
  Shape wide = t.shape();
  wide.back() *= 2;
  Tensor buf = Tensor::full(wide, 1234.5, t.dtype());
  Tensor v = buf.slice(-1, 0, wide.back(), 2);
  v.copy_(t);
  return v;
}

std::vector<Var> make_inputs(const OpCase& c, bool contiguous) {
  std::vector<Var> vs;
  for (size_t i = 0; i < c.inputs.size(); ++i) {
    Tensor t = sample_input(c.inputs[i], i + 31 * std::hash<std::string>{}(c.op + c.label));
    vs.emplace_back(contiguous ? t : noncontiguous(t), c.inputs[i].grad);
  }
  return vs;
}

}  // namespace

}  // namespace gv::test

using namespace gv;
using namespace gv::test;

TEST_CASE("registry: every differentiable op has a gradient-check case") {
  std::set<std::string> have;
  for (const OpCase& c : registry()) have.insert(c.op);
  std::set<std::string> listed;
#define GV_NAME(name) listed.insert(#name);
  GV_DIFFERENTIABLE_OPS(GV_NAME)
#undef GV_NAME
  for (const std::string& op : listed) {
    INFO("op without a registry case: ", op);
    CHECK(have.count(op) == 1);
  }
  for (const std::string& op : have) {
    INFO("registry case for an op missing from autograd/op_list.h: ", op);
    CHECK(listed.count(op) == 1);
  }
}

TEST_CASE("registry: float64 gradients match central differences (contiguous inputs)") {
  for (const OpCase& c : registry()) {
    auto res = ag::gradcheck(c.fn, make_inputs(c, true));
    INFO(c.op, " [", c.label, "]: ", res.message);
    CHECK(res.ok);
  }
}

TEST_CASE("registry: float64 gradients match central differences (non-contiguous inputs)") {
  for (const OpCase& c : registry()) {
    auto ins = make_inputs(c, false);
    bool any_view = false;
    for (const Var& v : ins) any_view = any_view || !v.data().is_contiguous();
    auto res = ag::gradcheck(c.fn, ins);
    INFO(c.op, " [", c.label, "]: ", res.message);
    CHECK(any_view);
    CHECK(res.ok);
  }
}

TEST_CASE("registry: forward on non-contiguous inputs equals forward on contiguous inputs") {
  for (const OpCase& c : registry()) {
    Tensor a = c.fn(make_inputs(c, true)).data().contiguous();
    Tensor b = c.fn(make_inputs(c, false)).data().contiguous();
    INFO(c.op, " [", c.label, "]");
    REQUIRE(a.shape() == b.shape());
    auto va = a.to_vector<double>(), vb = b.to_vector<double>();
    double worst = 0;
    for (size_t i = 0; i < va.size(); ++i) worst = std::max(worst, std::fabs(va[i] - vb[i]) / (1 + std::fabs(va[i])));
    CHECK(worst <= 1e-12);
  }
}

TEST_CASE("gradcheck catches a wrong backward rule") {
  // square's value with the derivative of exp: a check that cannot fail would pass this
  auto wrong = [](const std::vector<ag::Var>& x) {
    Tensor xd = x[0].data(), y = gv::square(xd);
    return ag::record(y, "wrong_square", {x[0]}, [xd](const Tensor& g) -> std::vector<Tensor> {
      return {gv::mul(g, gv::exp(xd))};
    });
  };
  std::vector<ag::Var> in{ag::Var(sample_input({{3}, -1, 1}, 7), true)};
  auto res = ag::gradcheck(wrong, in);
  CHECK_FALSE(res.ok);
  CHECK(res.message.find("input 0") != std::string::npos);
}

// registry.cpp: the op registry of registry.h (its cases and their sample inputs). Shared by
// test_autograd (the float64 gradient checks) and test_cuda (every case forward and backward on a
// GPU against the CPU): constants a case makes are made on its inputs' device.
#include "registry.h"

#include <cmath>

namespace gv::test {

using ag::Var;
using V = std::vector<Var>;

Tensor sample_input(const InputSpec& spec, uint64_t salt) {
  Tensor t = Tensor::empty(spec.shape, DType::f64);
  double* p = t.data<double>();
  uint64_t s = 0x9E3779B97F4A7C15ull * (salt + 1);
  for (int64_t i = 0; i < t.numel(); ++i) {
    s = s * 6364136223846793005ull + 1442695040888963407ull;
    double u = double(s >> 11) / double(1ull << 53);  // [0, 1)
    if (spec.away_from_zero) {
      double mag = 0.05 + 0.95 * std::fmod(u * 7.0, 1.0);
      p[i] = (u < 0.5 ? -1 : 1) * (spec.lo < 0 ? mag * std::max(-spec.lo, spec.hi) : mag);
    } else {
      p[i] = spec.lo + (spec.hi - spec.lo) * u;
    }
  }
  return t;
}

namespace {

InputSpec in(Shape s, double lo = -1, double hi = 1) { return {std::move(s), lo, hi}; }
InputSpec kinked(Shape s) { return {std::move(s), -1, 1, true}; }

// A fixed pattern of 0/1 as a condition tensor (float64).
Tensor pattern(const Shape& s) {
  Tensor c = Tensor::empty(s, DType::f64);
  for (int64_t i = 0; i < c.numel(); ++i) c.data<double>()[i] = (i * 7 % 3) == 0;
  return c;
}

std::vector<OpCase> build() {
  std::vector<OpCase> r;
  auto add = [&](std::string op, std::string label, std::vector<InputSpec> ins,
                 std::function<Var(const V&)> fn) { r.push_back({std::move(op), std::move(label), std::move(ins), std::move(fn)}); };

  // element-wise unary
  add("neg", "3x4", {in({3, 4})}, [](const V& x) { return ag::neg(x[0]); });
  add("exp", "3x4", {in({3, 4})}, [](const V& x) { return ag::exp(x[0]); });
  add("log", "positive", {in({3, 4}, 0.2, 2)}, [](const V& x) { return ag::log(x[0]); });
  add("log1p", "above -1", {in({3, 4}, -0.5, 2)}, [](const V& x) { return ag::log1p(x[0]); });
  add("sqrt", "positive", {in({3, 4}, 0.2, 2)}, [](const V& x) { return ag::sqrt(x[0]); });
  add("square", "3x4", {in({3, 4})}, [](const V& x) { return ag::square(x[0]); });
  add("abs", "away from 0", {kinked({3, 4})}, [](const V& x) { return ag::abs(x[0]); });
  add("tanh", "3x4", {in({3, 4}, -2, 2)}, [](const V& x) { return ag::tanh(x[0]); });
  add("sigmoid", "3x4", {in({3, 4}, -4, 4)}, [](const V& x) { return ag::sigmoid(x[0]); });
  add("softplus", "3x4", {in({3, 4}, -4, 4)}, [](const V& x) { return ag::softplus(x[0]); });
  add("elu", "3x4", {in({3, 4}, -3, 3)}, [](const V& x) { return ag::elu(x[0]); });
  add("relu", "away from 0", {kinked({3, 4})}, [](const V& x) { return ag::relu(x[0]); });
  add("leaky_relu", "slope 0.1", {kinked({3, 4})}, [](const V& x) { return ag::leaky_relu(x[0], 0.1); });
  add("clamp", "[-0.5, 0.5]", {in({4, 5}, -1, 1)}, [](const V& x) { return ag::clamp(x[0], -0.5, 0.5); });

  // element-wise binary, same shapes and broadcast shapes
  add("add", "broadcast", {in({3, 1, 4}), in({2, 4})}, [](const V& x) { return x[0] + x[1]; });
  add("add", "scalar", {in({2, 3})}, [](const V& x) { return x[0] + 2.5; });
  add("sub", "broadcast", {in({2, 4}), in({3, 1, 4})}, [](const V& x) { return x[0] - x[1]; });
  add("sub", "scalar minus", {in({2, 3})}, [](const V& x) { return 1.0 - x[0]; });
  add("mul", "broadcast", {in({3, 1, 4}), in({2, 4})}, [](const V& x) { return x[0] * x[1]; });
  add("mul", "same input twice", {in({2, 3})}, [](const V& x) { return x[0] * x[0]; });
  add("div", "broadcast", {in({3, 4}), in({4}, 0.5, 2)}, [](const V& x) { return x[0] / x[1]; });
  add("pow", "tensor exponent", {in({3, 4}, 0.5, 2), in({3, 4}, -1, 2)}, [](const V& x) { return ag::pow(x[0], x[1]); });
  add("pow", "scalar exponent", {in({3, 4}, 0.5, 2)}, [](const V& x) { return ag::pow(x[0], 1.5); });
  add("maximum", "broadcast", {in({3, 4}), in({4})}, [](const V& x) { return ag::maximum(x[0], x[1]); });
  add("minimum", "broadcast", {in({3, 4}), in({3, 1})}, [](const V& x) { return ag::minimum(x[0], x[1]); });
  add("where", "broadcast", {in({3, 4}), in({4})},
      [](const V& x) { return ag::where(pattern({3, 4}).to(x[0].data().device()), x[0], x[1]); });

  // reductions
  add("sum", "all", {in({3, 4})}, [](const V& x) { return ag::sum(x[0]); });
  add("sum", "axis 1 keepdim", {in({2, 3, 4})}, [](const V& x) { return ag::sum(x[0], {1}, true); });
  add("sum", "axes 0,2", {in({2, 3, 4})}, [](const V& x) { return ag::sum(x[0], {0, -1}); });
  add("mean", "all", {in({3, 4})}, [](const V& x) { return ag::mean(x[0]); });
  add("mean", "axis 0", {in({3, 4})}, [](const V& x) { return ag::mean(x[0], {0}); });
  add("max", "axis 1", {in({3, 5})}, [](const V& x) { return ag::max(x[0], {1}); });
  add("max", "all keepdim", {in({3, 5})}, [](const V& x) { return ag::max(x[0], {}, true); });
  add("logsumexp", "axis 1", {in({3, 5}, -3, 3)}, [](const V& x) { return ag::logsumexp(x[0], {1}); });
  add("logsumexp", "axes 0,1", {in({2, 3, 4}, -3, 3)}, [](const V& x) { return ag::logsumexp(x[0], {0, 1}, true); });
  add("softmax", "last axis", {in({3, 5}, -3, 3)}, [](const V& x) { return ag::softmax(x[0], -1); });
  add("softmax", "axis 0", {in({3, 5}, -3, 3)}, [](const V& x) { return ag::softmax(x[0], 0); });
  add("log_softmax", "last axis", {in({3, 5}, -3, 3)}, [](const V& x) { return ag::log_softmax(x[0], -1); });
  add("gate", "channels of an image batch", {in({2, 6, 3, 2}, -3, 3)}, [](const V& x) { return ag::gate(x[0], 1); });
  add("gate", "last axis of a strided view", {in({4, 3}, -3, 3)},
      [](const V& x) { return ag::gate(ag::transpose(x[0], 0, 1), -1); });

  // matrix products
  add("linear", "2-D with bias", {in({3, 4}), in({5, 4}), in({5})},
      [](const V& x) { return ag::linear(x[0], x[1], x[2]); });
  add("linear", "3-D without bias", {in({2, 3, 4}), in({5, 4})}, [](const V& x) { return ag::linear(x[0], x[1], V::value_type()); });
  add("matmul", "2-D", {in({3, 4}), in({4, 5})}, [](const V& x) { return ag::matmul(x[0], x[1]); });
  add("matmul", "batch folded", {in({2, 3, 4}), in({4, 5})}, [](const V& x) { return ag::matmul(x[0], x[1]); });
  add("matmul", "batch broadcast", {in({2, 1, 3, 4}), in({3, 4, 2})}, [](const V& x) { return ag::matmul(x[0], x[1]); });
  add("matmul", "vector @ matrix", {in({4}), in({4, 3})}, [](const V& x) { return ag::matmul(x[0], x[1]); });
  add("matmul", "matrix @ vector", {in({3, 4}), in({4})}, [](const V& x) { return ag::matmul(x[0], x[1]); });
  add("matmul", "vector @ vector", {in({4}), in({4})}, [](const V& x) { return ag::matmul(x[0], x[1]); });

  // convolutions
  add("conv2d", "stride 2 pad 1 bias", {in({2, 3, 6, 5}), in({4, 3, 3, 3}), in({4})},
      [](const V& x) { return ag::conv2d(x[0], x[1], x[2], Conv2dParams::make(2, 1)); });
  add("conv2d", "dilation 2 no bias", {in({1, 2, 7, 7}), in({3, 2, 3, 2})},
      [](const V& x) { return ag::conv2d(x[0], x[1], Var(), Conv2dParams::make(1, 1, 2)); });
  // the dead taps of the weight are random here: finite differences see no change there, so the
  // check also asserts their zero gradient
  add("masked_conv2d", "3x3 type B (5 taps) pad 1 bias", {in({2, 3, 5, 6}), in({4, 3, 3, 3}), in({4})},
      [](const V& x) { return ag::masked_conv2d(x[0], x[1], x[2], Conv2dParams::make(1, 1), 5); });
  add("masked_conv2d", "5x3 type A (7 taps) stride 2 no bias", {in({1, 2, 7, 6}), in({3, 2, 5, 3})},
      [](const V& x) { return ag::masked_conv2d(x[0], x[1], Var(), {2, 2, 2, 1, 1, 1}, 7); });
  add("conv_transpose2d", "k4 s2 p1 bias", {in({2, 3, 4, 4}), in({3, 2, 4, 4}), in({2})},
      [](const V& x) { return ag::conv_transpose2d(x[0], x[1], x[2], Conv2dParams::make(2, 1)); });
  add("conv_transpose2d", "k3 s2 output_padding 1", {in({1, 2, 3, 3}), in({2, 2, 3, 3})},
      [](const V& x) { return ag::conv_transpose2d(x[0], x[1], Var(), Conv2dParams::make(2, 1), 1, 1); });

  // shape ops (made non-linear by a square so the projection sees a curved function)
  add("reshape", "3x4 -> 2x6", {in({3, 4})}, [](const V& x) { return ag::square(ag::reshape(x[0], {2, -1})); });
  add("permute", "2,0,1", {in({2, 3, 4})}, [](const V& x) { return ag::square(ag::permute(x[0], {2, 0, 1})); });
  add("transpose", "0,1", {in({3, 4})}, [](const V& x) { return ag::matmul(ag::transpose(x[0], 0, 1), x[0]); });
  add("slice", "step 2", {in({5, 4})}, [](const V& x) { return ag::square(ag::slice(x[0], 0, 1, 5, 2)); });
  add("select", "axis 1", {in({3, 4})}, [](const V& x) { return ag::square(ag::select(x[0], 1, -1)); });
  add("expand", "3x1 -> 2x3x4", {in({3, 1})}, [](const V& x) { return ag::square(ag::expand(x[0], {2, 3, 4})); });
  add("unsqueeze", "axis 1", {in({3, 4})}, [](const V& x) { return ag::square(ag::unsqueeze(x[0], 1)); });
  add("squeeze", "axis 0", {in({1, 4})}, [](const V& x) { return ag::square(ag::squeeze(x[0], 0)); });
  add("flatten", "1..2", {in({2, 3, 4})}, [](const V& x) { return ag::square(ag::flatten(x[0], 1)); });
  add("contiguous", "of a transpose", {in({3, 4})}, [](const V& x) { return ag::square(ag::contiguous(ag::transpose(x[0], 0, 1))); });
  add("concat", "three along axis 1", {in({2, 1}), in({2, 3}), in({2, 2})},
      [](const V& x) { return ag::square(ag::concat({x[0], x[1], x[2]}, 1)); });
  add("split", "sizes 1,3", {in({2, 4})}, [](const V& x) {
    auto p = ag::split(x[0], {1, 3}, 1);
    return ag::concat({ag::exp(p[0]), ag::square(p[1])}, 1);
  });
  add("chunk", "5 into 2", {in({5, 2})}, [](const V& x) {
    auto p = ag::chunk(x[0], 2, 0);
    return ag::concat({ag::square(p[1]), ag::exp(p[0])}, 0);
  });
  add("gather", "axis 1 with repeats", {in({3, 4})}, [](const V& x) {
    Tensor idx = Tensor::from_vector<int64_t>({0, 3, 3, 1, 2, 2, 0, 0, 1}, {3, 3}).to(x[0].data().device());
    return ag::square(ag::gather(x[0], 1, idx));
  });
  return r;
}

}  // namespace

const std::vector<OpCase>& registry() {
  static const std::vector<OpCase> r = build();
  return r;
}

}  // namespace gv::test

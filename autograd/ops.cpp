// ops.cpp: each differentiable op's forward followed right below by its backward rule.
// Conventions: `g` is the output's gradient; a rule returns one gradient per input, in order.
// Rules of broadcasting ops reduce with sum_to back to each input's shape.
#include "autograd/ops.h"

#include <numeric>

namespace gv::ag {

using TV = std::vector<Tensor>;

// ---- element-wise unary: y = f(x), dx = g * f'(x, y), the derivative living in engine/functors.h
static Var unary_op(UnaryOp op, const Var& x, double a = 0, double b = 0) {
  Tensor y = gv::unary(op, x.data(), a, b);
  Tensor xd = x.data();
  return record(y, unary_op_name(op), {x}, [op, xd, y, a, b](const Tensor& g) -> TV {
    return {gv::unary_backward(op, xd, y, g, a, b)};
  });
}
Var neg(const Var& x) { return unary_op(UnaryOp::neg, x); }
Var exp(const Var& x) { return unary_op(UnaryOp::exp, x); }
Var log(const Var& x) { return unary_op(UnaryOp::log, x); }
Var log1p(const Var& x) { return unary_op(UnaryOp::log1p, x); }
Var sqrt(const Var& x) { return unary_op(UnaryOp::sqrt, x); }
Var square(const Var& x) { return unary_op(UnaryOp::square, x); }
Var abs(const Var& x) { return unary_op(UnaryOp::abs, x); }
Var tanh(const Var& x) { return unary_op(UnaryOp::tanh, x); }
Var sigmoid(const Var& x) { return unary_op(UnaryOp::sigmoid, x); }
Var softplus(const Var& x) { return unary_op(UnaryOp::softplus, x); }
Var relu(const Var& x) { return unary_op(UnaryOp::relu, x); }
Var elu(const Var& x) { return unary_op(UnaryOp::elu, x); }
Var leaky_relu(const Var& x, double slope) { return unary_op(UnaryOp::leaky_relu, x, slope); }
Var clamp(const Var& x, double lo, double hi) {
  GV_CHECK(lo <= hi, ValueError, "clamp: lower bound {} is above upper bound {}", lo, hi);
  return unary_op(UnaryOp::clamp, x, lo, hi);
}

// ---- element-wise binary ------------------------------------------------------------------------
static Var konst(const Var& like, double v) { return Var(Tensor::scalar(v, like.dtype(), like.data().device())); }

// d(a + b) = g, g
Var add(const Var& a, const Var& b) {
  Shape sa = a.shape(), sb = b.shape();
  bool na = a.requires_grad(), nb = b.requires_grad();
  return record(gv::add(a.data(), b.data()), "add", {a, b}, [sa, sb, na, nb](const Tensor& g) -> TV {
    return {na ? sum_to(g, sa) : Tensor(), nb ? sum_to(g, sb) : Tensor()};
  });
}
// d(a - b) = g, -g
Var sub(const Var& a, const Var& b) {
  Shape sa = a.shape(), sb = b.shape();
  bool na = a.requires_grad(), nb = b.requires_grad();
  return record(gv::sub(a.data(), b.data()), "sub", {a, b}, [sa, sb, na, nb](const Tensor& g) -> TV {
    return {na ? sum_to(g, sa) : Tensor(), nb ? sum_to(gv::neg(g), sb) : Tensor()};
  });
}
// d(a * b) = g b, g a
Var mul(const Var& a, const Var& b) {
  Tensor ad = a.data(), bd = b.data();
  bool na = a.requires_grad(), nb = b.requires_grad();
  return record(gv::mul(ad, bd), "mul", {a, b}, [ad, bd, na, nb](const Tensor& g) -> TV {
    return {na ? sum_to(gv::mul(g, bd), ad.shape()) : Tensor(), nb ? sum_to(gv::mul(g, ad), bd.shape()) : Tensor()};
  });
}
// d(a / b) = g / b, -g a / b^2 = -g y / b
Var div(const Var& a, const Var& b) {
  Tensor ad = a.data(), bd = b.data(), y = gv::div(ad, bd);
  bool nb = b.requires_grad();
  return record(y, "div", {a, b}, [ad, bd, y, nb](const Tensor& g) -> TV {
    return {sum_to(gv::div(g, bd), ad.shape()), nb ? sum_to(gv::neg(gv::div(gv::mul(g, y), bd)), bd.shape()) : Tensor()};
  });
}
// d(a ^ b) = g b a^(b-1), g y log(a)
Var pow(const Var& a, const Var& b) {
  Tensor ad = a.data(), bd = b.data(), y = gv::pow(ad, bd);
  bool na = a.requires_grad(), nb = b.requires_grad();
  return record(y, "pow", {a, b}, [ad, bd, y, na, nb](const Tensor& g) -> TV {
    Tensor ga, gb;
    if (na) ga = sum_to(gv::mul(g, gv::mul(bd, gv::pow(ad, gv::sub(bd, 1.0)))), ad.shape());
    if (nb) gb = sum_to(gv::mul(g, gv::mul(y, gv::log(ad))), bd.shape());
    return {ga, gb};
  });
}
// d max(a, b): g where a > b, g/2 where a == b; likewise for b
static Var extremum(const Var& a, const Var& b, bool is_max) {
  Tensor ad = a.data(), bd = b.data();
  Tensor y = is_max ? gv::maximum(ad, bd) : gv::minimum(ad, bd);
  return record(y, is_max ? "maximum" : "minimum", {a, b}, [ad, bd, is_max](const Tensor& g) -> TV {
    Tensor wins = is_max ? gv::gt(ad, bd) : gv::lt(ad, bd);
    Tensor wa = gv::add(wins, gv::mul(gv::eq(ad, bd), 0.5));  // a's share of the gradient
    return {sum_to(gv::mul(g, wa), ad.shape()), sum_to(gv::mul(g, gv::sub(Tensor::scalar(1, wa.dtype(), wa.device()), wa)), bd.shape())};
  });
}
Var maximum(const Var& a, const Var& b) { return extremum(a, b, true); }
Var minimum(const Var& a, const Var& b) { return extremum(a, b, false); }
// d where(c, a, b) = g where c, g where not c
Var where(const Tensor& cond, const Var& a, const Var& b) {
  Shape sa = a.shape(), sb = b.shape();
  bool na = a.requires_grad(), nb = b.requires_grad();
  return record(gv::where(cond, a.data(), b.data()), "where", {a, b}, [cond, sa, sb, na, nb](const Tensor& g) -> TV {
    Tensor zero = Tensor::scalar(0, g.dtype(), g.device());
    return {na ? sum_to(gv::where(cond, g, zero), sa) : Tensor(), nb ? sum_to(gv::where(cond, zero, g), sb) : Tensor()};
  });
}
Var add(const Var& a, double b) { return add(a, konst(a, b)); }
Var sub(const Var& a, double b) { return sub(a, konst(a, b)); }
Var mul(const Var& a, double b) { return mul(a, konst(a, b)); }
Var div(const Var& a, double b) { return div(a, konst(a, b)); }
Var pow(const Var& a, double b) { return pow(a, konst(a, b)); }
Var rsub(double a, const Var& b) { return sub(konst(b, a), b); }

// ---- reductions ---------------------------------------------------------------------------------
// The shape with the given axes (all when empty) removed: a keepdim result without them.
static Shape drop_axes(const Shape& s, const Axes& axes) {
  if (axes.empty()) return {};
  std::vector<bool> gone(s.size(), false);
  for (int64_t a : axes) gone[a < 0 ? a + (int64_t)s.size() : a] = true;
  Shape r;
  for (size_t d = 0; d < s.size(); ++d)
    if (!gone[d]) r.push_back(s[d]);
  return r;
}

// The output gradient reshaped to keep the reduced axes (size 1), ready to broadcast against x.
static Tensor keep_axes(const Tensor& g, const Shape& xshape, const Axes& axes, bool keepdim) {
  if (keepdim) return g;
  Shape s = xshape;
  if (axes.empty()) std::fill(s.begin(), s.end(), 1);
  for (int64_t a : axes) s[a < 0 ? a + (int64_t)s.size() : a] = 1;
  return g.reshape(s);
}

// d sum = g broadcast back over the reduced axes
Var sum(const Var& x, const Axes& axes, bool keepdim) {
  Shape xs = x.shape();
  return record(gv::sum(x.data(), axes, keepdim), "sum", {x}, [xs, axes, keepdim](const Tensor& g) -> TV {
    return {keep_axes(g, xs, axes, keepdim).expand(xs)};
  });
}
// d mean = g / n broadcast back
Var mean(const Var& x, const Axes& axes, bool keepdim) {
  Shape xs = x.shape();
  Tensor y = gv::mean(x.data(), axes, keepdim);
  double n = double(x.numel()) / double(std::max<int64_t>(y.numel(), 1));
  return record(y, "mean", {x}, [xs, axes, keepdim, n](const Tensor& g) -> TV {
    return {gv::div(keep_axes(g, xs, axes, keepdim), n).expand(xs)};
  });
}
// d max = g shared evenly among the elements equal to the max
Var max(const Var& x, const Axes& axes, bool keepdim) {
  Tensor xd = x.data(), yk = gv::max(xd, axes, true);
  Tensor y = keepdim ? yk : yk.reshape(drop_axes(yk.shape(), axes));
  return record(y, "max", {x}, [xd, yk, axes, keepdim](const Tensor& g) -> TV {
    Tensor hit = gv::eq(xd, yk);
    Tensor share = gv::div(hit, gv::sum(hit, axes, true));
    return {gv::mul(share, keep_axes(g, xd.shape(), axes, keepdim))};
  });
}
// d logsumexp = g * exp(x - y) = g * softmax(x)
Var logsumexp(const Var& x, const Axes& axes, bool keepdim) {
  Tensor xd = x.data(), yk = gv::logsumexp(xd, axes, true);
  Tensor y = keepdim ? yk : yk.reshape(drop_axes(yk.shape(), axes));
  return record(y, "logsumexp", {x}, [xd, yk, axes, keepdim](const Tensor& g) -> TV {
    return {gv::mul(gv::exp(gv::sub(xd, yk)), keep_axes(g, xd.shape(), axes, keepdim))};
  });
}
// d softmax: dx = y * (g - sum(g * y))
Var softmax(const Var& x, int64_t axis) {
  Tensor y = gv::softmax(x.data(), axis);
  return record(y, "softmax", {x}, [y, axis](const Tensor& g) -> TV {
    return {gv::mul(y, gv::sub(g, gv::sum(gv::mul(g, y), {axis}, true)))};
  });
}
// y = tanh(x_a) * sigmoid(x_b) over the halves of `axis`; dx = both partials in one pass (GateF)
Var gate(const Var& x, int64_t axis) {
  Tensor xd = x.data();
  return record(gv::gate(xd, axis), "gate", {x}, [xd, axis](const Tensor& g) -> TV {
    return {gv::gate_backward(xd, g, axis)};
  });
}

// d log_softmax: dx = g - softmax(x) * sum(g)
Var log_softmax(const Var& x, int64_t axis) {
  Tensor y = gv::log_softmax(x.data(), axis);
  return record(y, "log_softmax", {x}, [y, axis](const Tensor& g) -> TV {
    return {gv::sub(g, gv::mul(gv::exp(y), gv::sum(g, {axis}, true)))};
  });
}

// ---- linear algebra and convolution -------------------------------------------------------------
// d (a @ b) = g @ b^T, a^T @ g (summed over broadcast batch axes); 1-D operands via (un)squeeze
Var matmul(const Var& a, const Var& b) {
  if (a.dim() == 1 || b.dim() == 1) {
    Var r = matmul(a.dim() == 1 ? unsqueeze(a, 0) : a, b.dim() == 1 ? unsqueeze(b, 1) : b);
    if (b.dim() == 1) r = squeeze(r, -1);
    return a.dim() == 1 ? squeeze(r, b.dim() == 1 ? -1 : -2) : r;
  }
  Tensor ad = a.data(), bd = b.data();
  bool na = a.requires_grad(), nb = b.requires_grad();
  return record(gv::matmul(ad, bd), "matmul", {a, b}, [ad, bd, na, nb](const Tensor& g) -> TV {
    Tensor ga, gb;
    if (na) ga = sum_to(gv::matmul(g, bd.transpose(-1, -2)), ad.shape());
    if (nb) gb = sum_to(gv::matmul(ad.transpose(-1, -2), g), bd.shape());
    return {ga, gb};
  });
}

Var linear(const Var& x, const Var& w, const Var& b) {
  Tensor xd = x.data(), wd = w.data();
  bool nx = x.requires_grad(), nw = w.requires_grad();
  std::vector<Var> ins{x, w};
  if (b.defined()) ins.push_back(b);
  Tensor y = gv::linear(xd, wd, b.defined() ? b.data() : Tensor());
  return record(y, "linear", ins, [xd, wd, nx, nw, has_bias = b.defined()](const Tensor& g) -> TV {
    const int64_t out = wd.size(0), in = wd.size(1);
    Tensor g2 = g.contiguous().view({-1, out});  // (n, out)
    TV r{nx ? gv::matmul(g2, wd).view(xd.shape()) : Tensor(),
         nw ? gv::matmul(g2.transpose(0, 1), xd.contiguous().view({-1, in})) : Tensor()};
    if (has_bias) r.push_back(gv::sum(g2, {0}));
    return r;
  });
}

// x (N,C,H,W), w (O,C,kh,kw), bias (O): dx = conv2d_backward_input, dw = conv2d_backward_weight,
// dbias = g summed over N, H, W; a masked convolution passes its live taps to all three
namespace {
Var conv2d_op(const char* name, const Var& x, const Var& w, const Var& bias, const Conv2dParams& p, int64_t taps) {
  Tensor xd = x.data(), wd = w.data();
  bool nx = x.requires_grad(), nw = w.requires_grad();
  std::vector<Var> ins{x, w};
  if (bias.defined()) ins.push_back(bias);
  Tensor y = gv::conv2d(xd, wd, bias.defined() ? bias.data() : Tensor(), p, taps);
  return record(y, name, ins, [xd, wd, nx, nw, p, taps, has_bias = bias.defined()](const Tensor& g) -> TV {
    TV r{nx ? conv2d_backward_input(g, wd, xd.shape(), p, taps) : Tensor(),
         nw ? conv2d_backward_weight(xd, g, wd.shape(), p, taps) : Tensor()};
    if (has_bias) r.push_back(gv::sum(g, {0, 2, 3}));
    return r;
  });
}
}  // namespace
Var conv2d(const Var& x, const Var& w, const Var& bias, const Conv2dParams& p) {
  return conv2d_op("conv2d", x, w, bias, p, kAllTaps);
}
Var masked_conv2d(const Var& x, const Var& w, const Var& bias, const Conv2dParams& p, int64_t taps) {
  return conv2d_op("masked_conv2d", x, w, bias, p, taps);
}

// conv_transpose2d is the adjoint of conv2d with weight w (C,O,kh,kw) read as (O'=C, C'=O):
// dx = conv2d(g, w), dw = conv2d_backward_weight(g, x), dbias = g summed over N, H, W
Var conv_transpose2d(const Var& x, const Var& w, const Var& bias, const Conv2dParams& p, int64_t oph, int64_t opw) {
  Tensor xd = x.data(), wd = w.data();
  bool nx = x.requires_grad(), nw = w.requires_grad();
  std::vector<Var> ins{x, w};
  if (bias.defined()) ins.push_back(bias);
  Tensor y = gv::conv_transpose2d(xd, wd, bias.defined() ? bias.data() : Tensor(), p, oph, opw);
  return record(y, "conv_transpose2d", ins, [xd, wd, nx, nw, p, has_bias = bias.defined()](const Tensor& g) -> TV {
    TV r{nx ? gv::conv2d(g, wd, Tensor(), p) : Tensor(), nw ? conv2d_backward_weight(g, xd, wd.shape(), p) : Tensor()};
    if (has_bias) r.push_back(gv::sum(g, {0, 2, 3}));
    return r;
  });
}

// ---- shape --------------------------------------------------------------------------------------
// Views: the gradient is the output gradient viewed back in the input's shape.
Var reshape(const Var& x, const Shape& shape) {
  Shape xs = x.shape();
  return record(x.data().reshape(shape), "reshape", {x}, [xs](const Tensor& g) -> TV { return {g.reshape(xs)}; });
}
Var flatten(const Var& x, int64_t start, int64_t end) {
  Shape xs = x.shape();
  return record(x.data().flatten(start, end), "flatten", {x}, [xs](const Tensor& g) -> TV { return {g.reshape(xs)}; });
}
Var permute(const Var& x, const std::vector<int64_t>& dims) {
  std::vector<int64_t> inv(dims.size());
  Tensor y = x.data().permute(dims);
  for (size_t i = 0; i < dims.size(); ++i) inv[x.data().norm_axis(dims[i], "permute")] = (int64_t)i;
  return record(y, "permute", {x}, [inv](const Tensor& g) -> TV { return {g.permute(inv)}; });
}
Var transpose(const Var& x, int64_t a, int64_t b) {
  return record(x.data().transpose(a, b), "transpose", {x}, [a, b](const Tensor& g) -> TV { return {g.transpose(a, b)}; });
}
Var unsqueeze(const Var& x, int64_t axis) {
  Shape xs = x.shape();
  return record(x.data().unsqueeze(axis), "unsqueeze", {x}, [xs](const Tensor& g) -> TV { return {g.reshape(xs)}; });
}
Var squeeze(const Var& x, int64_t axis) {
  Shape xs = x.shape();
  return record(x.data().squeeze(axis), "squeeze", {x}, [xs](const Tensor& g) -> TV { return {g.reshape(xs)}; });
}
Var contiguous(const Var& x) {
  return record(x.data().contiguous(), "contiguous", {x}, [](const Tensor& g) -> TV { return {g}; });
}
// d expand = g summed over the broadcast axes
Var expand(const Var& x, const Shape& shape) {
  Shape xs = x.shape();
  return record(x.data().expand(shape), "expand", {x}, [xs](const Tensor& g) -> TV { return {sum_to(g, xs)}; });
}
// d slice = zeros with g placed in the sliced region
Var slice(const Var& x, int64_t axis, int64_t start, int64_t end, int64_t step) {
  Shape xs = x.shape();
  return record(x.data().slice(axis, start, end, step), "slice", {x}, [=](const Tensor& g) -> TV {
    Tensor gx = Tensor::zeros(xs, g.dtype(), g.device());
    gx.slice(axis, start, end, step).copy_(g);
    return {gx};
  });
}
Var select(const Var& x, int64_t axis, int64_t index) {
  Shape xs = x.shape();
  return record(x.data().select(axis, index), "select", {x}, [=](const Tensor& g) -> TV {
    Tensor gx = Tensor::zeros(xs, g.dtype(), g.device());
    gx.select(axis, index).copy_(g);
    return {gx};
  });
}
// d concat = the output gradient split back into the inputs' pieces
Var concat(const std::vector<Var>& xs, int64_t axis) {
  std::vector<Tensor> ts;
  std::vector<int64_t> sizes;
  for (const Var& v : xs) ts.push_back(v.data());
  Tensor y = gv::concat(ts, axis);
  int64_t ax = y.norm_axis(axis, "concat");
  for (const Var& v : xs) sizes.push_back(v.shape()[ax]);
  return record(y, "concat", xs, [sizes, ax](const Tensor& g) -> TV { return gv::split(g, sizes, ax); });
}
std::vector<Var> split(const Var& x, const std::vector<int64_t>& sizes, int64_t axis) {
  int64_t ax = x.data().norm_axis(axis, "split");
  gv::split(x.data(), sizes, ax);  // validates the sizes
  std::vector<Var> out;
  int64_t off = 0;
  for (int64_t s : sizes) {
    out.push_back(slice(x, ax, off, off + s));
    off += s;
  }
  return out;
}
std::vector<Var> chunk(const Var& x, int64_t n, int64_t axis) {
  std::vector<int64_t> sizes;
  for (const Tensor& t : gv::chunk(x.data(), n, axis)) sizes.push_back(t.size(axis));
  return split(x, sizes, axis);
}
// d gather = the output gradient scattered (added) back to where each element came from
Var gather(const Var& x, int64_t axis, const Tensor& index) {
  Shape xs = x.shape();
  return record(gv::gather(x.data(), axis, index), "gather", {x}, [xs, axis, index](const Tensor& g) -> TV {
    return {scatter_add(xs, axis, index, g)};
  });
}

}  // namespace gv::ag

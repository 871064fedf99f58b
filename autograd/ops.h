// ops.h: differentiable ops on Vars. Each forward calls the engine op; its backward, defined right
// under it in ops.cpp, maps the output gradient to the inputs' gradients with engine ops.
// Composite functions (losses, layers) are built from these and need no backward of their own.
// The list of differentiable ops is autograd/op_list.h.
#pragma once
#include "autograd/var.h"
#include "engine/ops.h"

namespace gv::ag {

// ---- element-wise ----------------------------------------------------------------------------
Var neg(const Var& x);
Var exp(const Var& x);
Var log(const Var& x);
Var log1p(const Var& x);
Var sqrt(const Var& x);
Var square(const Var& x);
Var abs(const Var& x);
Var tanh(const Var& x);
Var sigmoid(const Var& x);
Var softplus(const Var& x);
Var relu(const Var& x);
Var elu(const Var& x);  // x for x > 0, e^x - 1 below
Var leaky_relu(const Var& x, double slope);
Var clamp(const Var& x, double lo, double hi);

Var add(const Var& a, const Var& b);  // binary ops broadcast numpy-style
Var sub(const Var& a, const Var& b);
Var mul(const Var& a, const Var& b);
Var div(const Var& a, const Var& b);
Var pow(const Var& a, const Var& b);
Var maximum(const Var& a, const Var& b);  // ties split the gradient evenly
Var minimum(const Var& a, const Var& b);
Var where(const Tensor& cond, const Var& a, const Var& b);
Var add(const Var& a, double b);
Var sub(const Var& a, double b);
Var mul(const Var& a, double b);
Var div(const Var& a, double b);
Var pow(const Var& a, double b);
Var rsub(double a, const Var& b);  // a - b

inline Var operator+(const Var& a, const Var& b) { return add(a, b); }
inline Var operator-(const Var& a, const Var& b) { return sub(a, b); }
inline Var operator*(const Var& a, const Var& b) { return mul(a, b); }
inline Var operator/(const Var& a, const Var& b) { return div(a, b); }
inline Var operator-(const Var& a) { return neg(a); }
inline Var operator+(const Var& a, double b) { return add(a, b); }
inline Var operator-(const Var& a, double b) { return sub(a, b); }
inline Var operator*(const Var& a, double b) { return mul(a, b); }
inline Var operator/(const Var& a, double b) { return div(a, b); }
inline Var operator+(double a, const Var& b) { return add(b, a); }
inline Var operator-(double a, const Var& b) { return rsub(a, b); }
inline Var operator*(double a, const Var& b) { return mul(b, a); }

// ---- reductions ------------------------------------------------------------------------------
Var sum(const Var& x, const Axes& axes = {}, bool keepdim = false);
Var mean(const Var& x, const Axes& axes = {}, bool keepdim = false);
Var max(const Var& x, const Axes& axes = {}, bool keepdim = false);  // ties split evenly
Var logsumexp(const Var& x, const Axes& axes = {}, bool keepdim = false);
Var softmax(const Var& x, int64_t axis);
Var log_softmax(const Var& x, int64_t axis);
// The gated unit tanh(a) * sigmoid(b) of the two halves [a, b] of x along axis (PixelCNN, WaveNet).
Var gate(const Var& x, int64_t axis = 1);

// ---- linear algebra and convolution ----------------------------------------------------------
Var matmul(const Var& a, const Var& b);
// x (..., in) @ w^T + b, w (out, in), b (out) or undefined: a linear layer in one op. Backward:
// dx = g @ w, dw = g^T @ x (straight into w's layout), db = g summed over the leading axes.
Var linear(const Var& x, const Var& w, const Var& b);
Var conv2d(const Var& x, const Var& w, const Var& bias, const Conv2dParams& p);  // bias may be undefined
// conv2d over the first `taps` kernel taps in raster order only (PixelCNN's masks, gv::conv2d):
// the dead taps are neither read nor computed, and their gradient is zero.
Var masked_conv2d(const Var& x, const Var& w, const Var& bias, const Conv2dParams& p, int64_t taps);
Var conv_transpose2d(const Var& x, const Var& w, const Var& bias, const Conv2dParams& p,
                     int64_t out_pad_h = 0, int64_t out_pad_w = 0);

// ---- shape ---------------------------------------------------------------------------------
Var reshape(const Var& x, const Shape& shape);
Var permute(const Var& x, const std::vector<int64_t>& dims);
Var transpose(const Var& x, int64_t a, int64_t b);
Var slice(const Var& x, int64_t axis, int64_t start, int64_t end, int64_t step = 1);
Var select(const Var& x, int64_t axis, int64_t index);
Var expand(const Var& x, const Shape& shape);
Var unsqueeze(const Var& x, int64_t axis);
Var squeeze(const Var& x, int64_t axis);
Var flatten(const Var& x, int64_t start = 0, int64_t end = -1);
Var contiguous(const Var& x);
Var concat(const std::vector<Var>& xs, int64_t axis);
std::vector<Var> split(const Var& x, const std::vector<int64_t>& sizes, int64_t axis);
std::vector<Var> chunk(const Var& x, int64_t n, int64_t axis);
Var gather(const Var& x, int64_t axis, const Tensor& index);

}  // namespace gv::ag

// ops.h: the engine's op set. Each op is declared once here; its front end hands its kernels to
// the operands' device through engine/backend.h (CPU kernels in engine/cpu/, CUDA in
// engine/cuda/). Ops take any strides, broadcast numpy-style where it says so, and return fresh
// contiguous tensors unless they are views.
// Shapes in comments: (N,C,H,W) images, (O,C,kh,kw) conv weights.
#pragma once
#include <vector>

#include "engine/functors.h"
#include "engine/tensor.h"

namespace gv {

// ---- element-wise ----------------------------------------------------------------------------
Tensor unary(UnaryOp op, const Tensor& x, double a = 0, double b = 0);
// gout * df(x, y) in one pass: the backward of unary op, with y = unary(op, x).
Tensor unary_backward(UnaryOp op, const Tensor& x, const Tensor& y, const Tensor& gout,
                      double a = 0, double b = 0);
Tensor binary(BinaryOp op, const Tensor& a, const Tensor& b);  // broadcasts
Tensor where(const Tensor& cond, const Tensor& a, const Tensor& b);  // cond != 0 ? a : b
// The gated unit: x (..., 2C, ...) along `axis` -> tanh(x[first C]) * sigmoid(x[last C]), the
// halves read in place; gate_backward gives the gradient with respect to x (x's shape) in one pass.
Tensor gate(const Tensor& x, int64_t axis);
Tensor gate_backward(const Tensor& x, const Tensor& gout, int64_t axis);

#define GV_DECLARE_UNARY(name, F) Tensor name(const Tensor& x);
GV_UNARY_OPS_NOARG(GV_DECLARE_UNARY)
#undef GV_DECLARE_UNARY
Tensor leaky_relu(const Tensor& x, double slope);
Tensor clamp(const Tensor& x, double lo, double hi);

#define GV_DECLARE_BINARY(name, F)                 \
  Tensor name(const Tensor& a, const Tensor& b);   \
  Tensor name(const Tensor& a, double b);
GV_BINARY_OPS(GV_DECLARE_BINARY)
#undef GV_DECLARE_BINARY

inline Tensor operator+(const Tensor& a, const Tensor& b) { return add(a, b); }
inline Tensor operator-(const Tensor& a, const Tensor& b) { return sub(a, b); }
inline Tensor operator*(const Tensor& a, const Tensor& b) { return mul(a, b); }
inline Tensor operator/(const Tensor& a, const Tensor& b) { return div(a, b); }
inline Tensor operator-(const Tensor& a) { return neg(a); }
inline Tensor operator+(const Tensor& a, double b) { return add(a, b); }
inline Tensor operator-(const Tensor& a, double b) { return sub(a, b); }
inline Tensor operator*(const Tensor& a, double b) { return mul(a, b); }
inline Tensor operator/(const Tensor& a, double b) { return div(a, b); }
inline Tensor operator*(double a, const Tensor& b) { return mul(b, a); }

// ---- reductions (axes may be negative; empty axes = all axes) ---------------------------------
using Axes = std::vector<int64_t>;
Tensor sum(const Tensor& x, const Axes& axes = {}, bool keepdim = false);
Tensor mean(const Tensor& x, const Axes& axes = {}, bool keepdim = false);
Tensor max(const Tensor& x, const Axes& axes = {}, bool keepdim = false);
Tensor logsumexp(const Tensor& x, const Axes& axes = {}, bool keepdim = false);
Tensor softmax(const Tensor& x, int64_t axis);
Tensor log_softmax(const Tensor& x, int64_t axis);
Tensor argmax(const Tensor& x, int64_t axis, bool keepdim = false);  // int64
// Sum a broadcast result back to `shape` (the backward of broadcasting).
Tensor sum_to(const Tensor& x, const Shape& shape);

// ---- linear algebra --------------------------------------------------------------------------
// a (..., n, k) @ b (..., k, m) -> (..., n, m); batch axes broadcast; 1-D operands as in numpy.
Tensor matmul(const Tensor& a, const Tensor& b);
// The affine map of a linear layer: x (..., in) @ w^T + b with w (out, in) and b (out) (b may be
// undefined) -> (..., out). One GEMM that reads w transposed (no copy) and adds the bias through
// the GEMM's beta (the rows start as b), instead of a matmul and a broadcast add.
Tensor linear(const Tensor& x, const Tensor& w, const Tensor& b);

// ---- convolution -----------------------------------------------------------------------------
struct Conv2dParams {
  int64_t stride_h = 1, stride_w = 1, pad_h = 0, pad_w = 0, dil_h = 1, dil_w = 1;
  static Conv2dParams make(int64_t stride, int64_t pad, int64_t dil = 1) {
    return {stride, stride, pad, pad, dil, dil};
  }
};
// x (N,C,H,W), w (O,C,kh,kw), bias (O) or undefined -> (N,O,Ho,Wo)
// taps: with 1 <= taps < kh*kw, a masked convolution (PixelCNN's): only the first `taps` kernel
// taps in raster order (t = ki*kw + kj) take part, as if the others were zero. They are not read and
// not computed: the GEMM's depth is C*taps. kAllTaps (the default) is an ordinary convolution.
constexpr int64_t kAllTaps = -1;
Tensor conv2d(const Tensor& x, const Tensor& w, const Tensor& bias, const Conv2dParams& p,
              int64_t taps = kAllTaps);
// gradient of conv2d with respect to x: gout (N,O,Ho,Wo), w (O,C,kh,kw) -> (N,C,H,W)
Tensor conv2d_backward_input(const Tensor& gout, const Tensor& w, const Shape& x_shape,
                             const Conv2dParams& p, int64_t taps = kAllTaps);
// gradient with respect to w: x (N,C,H,W), gout (N,O,Ho,Wo) -> (O,C,kh,kw), zero at dead taps
Tensor conv2d_backward_weight(const Tensor& x, const Tensor& gout, const Shape& w_shape,
                              const Conv2dParams& p, int64_t taps = kAllTaps);
// Transposed convolution (PyTorch's convention): x (N,C,H,W), w (C,O,kh,kw), bias (O) ->
// (N,O,Ho,Wo) with Ho = (H-1)*stride - 2*pad + dil*(kh-1) + output_padding + 1.
Tensor conv_transpose2d(const Tensor& x, const Tensor& w, const Tensor& bias,
                        const Conv2dParams& p, int64_t out_pad_h = 0, int64_t out_pad_w = 0);
int64_t conv_out_size(int64_t in, int64_t k, int64_t stride, int64_t pad, int64_t dil);

// ---- joining, splitting, indexing -------------------------------------------------------------
Tensor concat(const std::vector<Tensor>& xs, int64_t axis);
std::vector<Tensor> split(const Tensor& x, const std::vector<int64_t>& sizes, int64_t axis);  // views
std::vector<Tensor> chunk(const Tensor& x, int64_t n, int64_t axis);                          // views
// out[i][j] = x[index[i][j]][j] along `axis` (torch.gather): index is int64, same rank as x.
Tensor gather(const Tensor& x, int64_t axis, const Tensor& index);
// The adjoint of gather: zeros of `shape`, then out[index[i][j]][j] += src[i][j].
Tensor scatter_add(const Shape& shape, int64_t axis, const Tensor& index, const Tensor& src);
Tensor one_hot(const Tensor& index, int64_t num_classes, DType dtype = DType::f32);

}  // namespace gv

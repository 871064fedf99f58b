// conv.cpp: the front ends of the 2-D convolutions (conv2d, its two gradients, conv_transpose2d):
// they check the operands and the geometry, allocate the output on the operands' device, and hand
// contiguous buffers to that device's backend (engine/backend.h). The CPU kernels (im2col + one
// GEMM + col2im) are engine/cpu/conv.cpp.
#include "engine/backend.h"
#include "engine/ops.h"

namespace gv {

int64_t conv_out_size(int64_t in, int64_t k, int64_t stride, int64_t pad, int64_t dil) {
  GV_CHECK(stride >= 1, ValueError, "conv_out_size: stride must be >= 1, got {}", stride);
  int64_t span = in + 2 * pad - dil * (k - 1) - 1;  // floor division: a negative span gives <= 0
  return (span >= 0 ? span / stride : -((-span + stride - 1) / stride)) + 1;
}


namespace {

// ---- argument checks --------------------------------------------------------------------------
void check_tensor(const Tensor& t, const char* op, const char* what) {
  GV_CHECK(t.defined(), ValueError, "{}: {} is an undefined tensor", op, what);
  GV_CHECK(is_floating(t.dtype()), DTypeError, "{}: needs float32 or float64 tensors, {} is {}", op,
           what, t.str());
}

void check_same_dtype(const Tensor& a, const Tensor& b, const char* op, const char* an,
                      const char* bn) {
  GV_CHECK(a.dtype() == b.dtype(), DTypeError, "{}: {} is {} but {} is {}", op, an, a.str(), bn,
           b.str());
  GV_CHECK(a.device() == b.device(), DeviceError, "{}: {} is on {} but {} is on {}", op, an, a.device().str(), bn,
           b.device().str());
}

void check_rank4(const Shape& s, const char* op, const char* what, const char* layout) {
  GV_CHECK(s.size() == 4, ShapeError, "{}: {} must be 4-D {}, got shape {}", op, what, layout,
           shape_str(s));
}

void check_params(const Conv2dParams& p, const char* op) {
  GV_CHECK(p.stride_h >= 1 && p.stride_w >= 1, ValueError, "{}: stride must be >= 1, got ({}, {})",
           op, p.stride_h, p.stride_w);
  GV_CHECK(p.dil_h >= 1 && p.dil_w >= 1, ValueError, "{}: dilation must be >= 1, got ({}, {})", op,
           p.dil_h, p.dil_w);
  GV_CHECK(p.pad_h >= 0 && p.pad_w >= 0, ValueError, "{}: padding must be >= 0, got ({}, {})", op,
           p.pad_h, p.pad_w);
}

// The geometry of conv2d on x_shape (N,C,H,W) with w_shape (O,C,kh,kw); checks that they fit.
ConvGeom conv_geom(const Shape& x, const Shape& w, const Conv2dParams& p, const char* op) {
  check_rank4(x, op, "input", "(N,C,H,W)");
  check_rank4(w, op, "weight", "(O,C,kh,kw)");
  check_params(p, op);
  GV_CHECK(x[1] == w[1], ShapeError, "{}: input {} has {} channels but weight {} expects {}", op,
           shape_str(x), x[1], shape_str(w), w[1]);
  GV_CHECK(w[2] >= 1 && w[3] >= 1, ShapeError, "{}: weight {} has an empty kernel", op,
           shape_str(w));
  ConvGeom g{x[1], x[2], x[3], w[2], w[3], 0, 0, p, w[2] * w[3]};
  g.Ho = conv_out_size(g.H, g.kh, p.stride_h, p.pad_h, p.dil_h);
  g.Wo = conv_out_size(g.W, g.kw, p.stride_w, p.pad_w, p.dil_w);
  GV_CHECK(
      g.Ho >= 1 && g.Wo >= 1, ShapeError,
      "{}: input {} is too small for weight {} with stride ({}, {}), padding ({}, {}), dilation "
      "({}, {}): the output would be {}x{}",
      op, shape_str(x), shape_str(w), p.stride_h, p.stride_w, p.pad_h, p.pad_w, p.dil_h, p.dil_w,
      g.Ho, g.Wo);
  return g;
}

void check_bias(const Tensor& bias, int64_t O, const Tensor& w, const char* op) {
  GV_CHECK(bias.dim() == 1 && bias.size(0) == O, ShapeError,
           "{}: bias {} does not match weight {} (expects [{}])", op, shape_str(bias.shape()),
           shape_str(w.shape()), O);
}

// gout must be (N,O,Ho,Wo) for the conv2d of x_shape with w_shape.
void check_gout(const Shape& gout, const Shape& x, const Shape& w, const ConvGeom& g, const char* op) {
  check_rank4(gout, op, "gout", "(N,O,Ho,Wo)");
  Shape want{x[0], w[0], g.Ho, g.Wo};
  GV_CHECK(gout == want, ShapeError,
           "{}: gout {} does not match the output {} of conv2d of input {} with weight {}", op,
           shape_str(gout), shape_str(want), shape_str(x), shape_str(w));
}

// ---- masked convolutions: the live taps ------------------------------------------------------
// The taps a masked convolution keeps (kAllTaps: every one), checked against the kernel (kh, kw).
// On the CPU the backend computes the live taps only (g.taps); another backend gets the whole
// kernel with the dead taps zeroed, and its weight gradient is zeroed there afterwards: the same
// sums with exact zeros added.
int64_t live_taps(int64_t taps, const Shape& w, const char* op) {
  const int64_t all = w[2] * w[3];
  if (taps == kAllTaps) return all;
  GV_CHECK(taps >= 1 && taps <= all, ValueError,
           "{}: taps must be in [1, {}] (the {}x{} kernel of weight {}) or kAllTaps, got {}", op, all, w[2], w[3],
           shape_str(w), taps);
  return taps;
}
// The taps the backend of t's device computes: the live ones on the CPU, the whole kernel elsewhere.
int64_t backend_taps(int64_t taps, const ConvGeom& g, const Tensor& t) {
  return t.device().is_cpu() ? taps : g.kh * g.kw;
}
// w (O,C,kh,kw) as the backend reads it, with g.taps set by backend_taps: (O, C*g.taps), the live
// taps of each (o, c) in order; or the whole kernel with its dead taps (from `taps` on) zero.
Tensor backend_weight(const Tensor& w, int64_t taps, const ConvGeom& g) {
  const int64_t O = w.size(0), C = w.size(1), all = g.kh * g.kw;
  if (taps == all) return w.contiguous();
  if (g.taps == taps) return w.reshape({O, C, all}).slice(2, 0, taps).contiguous();
  Tensor z = w.clone();
  z.view({O, C, all}).slice(2, taps, all).fill_(0);
  return z;
}

}  // namespace

// ---- the ops ----------------------------------------------------------------------------------
Tensor conv2d(const Tensor& x, const Tensor& w, const Tensor& bias, const Conv2dParams& p, int64_t taps) {
  const char* op = "conv2d";
  check_tensor(x, op, "input");
  check_tensor(w, op, "weight");
  check_same_dtype(x, w, op, "input", "weight");
  ConvGeom g = conv_geom(x.shape(), w.shape(), p, op);
  taps = live_taps(taps, w.shape(), op);
  g.taps = backend_taps(taps, g, x);
  const int64_t N = x.size(0), O = w.size(0);
  if (bias.defined()) {
    check_tensor(bias, op, "bias");
    check_same_dtype(x, bias, op, "input", "bias");
    check_bias(bias, O, w, op);
  }
  Tensor xc = x.contiguous(), wc = backend_weight(w, taps, g), bc = bias.defined() ? bias.contiguous() : bias;
  Tensor out = Tensor::empty({N, O, g.Ho, g.Wo}, x.dtype(), x.device());
  backend_for(x.device(), op)
      .conv_forward(x.dtype(), g, N, O, xc.raw_data(), wc.raw_data(), bc.defined() ? bc.raw_data() : nullptr,
                    out.raw_data());
  return out;
}

Tensor conv2d_backward_input(const Tensor& gout, const Tensor& w, const Shape& x_shape,
                             const Conv2dParams& p, int64_t taps) {
  const char* op = "conv2d_backward_input";
  check_tensor(gout, op, "gout");
  check_tensor(w, op, "weight");
  check_same_dtype(gout, w, op, "gout", "weight");
  ConvGeom g = conv_geom(x_shape, w.shape(), p, op);
  check_gout(gout.shape(), x_shape, w.shape(), g, op);
  taps = live_taps(taps, w.shape(), op);
  g.taps = backend_taps(taps, g, gout);
  Tensor gc = gout.contiguous(), wc = backend_weight(w, taps, g);
  Tensor gx = Tensor::empty(x_shape, gout.dtype(), gout.device());
  backend_for(gout.device(), op)
      .conv_backward_input(gout.dtype(), g, x_shape[0], w.size(0), gc.raw_data(), wc.raw_data(), nullptr,
                           gx.raw_data());
  return gx;
}

Tensor conv2d_backward_weight(const Tensor& x, const Tensor& gout, const Shape& w_shape,
                              const Conv2dParams& p, int64_t taps) {
  const char* op = "conv2d_backward_weight";
  check_tensor(x, op, "input");
  check_tensor(gout, op, "gout");
  check_same_dtype(x, gout, op, "input", "gout");
  ConvGeom g = conv_geom(x.shape(), w_shape, p, op);
  check_gout(gout.shape(), x.shape(), w_shape, g, op);
  taps = live_taps(taps, w_shape, op);
  g.taps = backend_taps(taps, g, x);
  const int64_t O = w_shape[0], C = w_shape[1], all = g.kh * g.kw;
  Tensor xc = x.contiguous(), gc = gout.contiguous();
  Tensor gw = Tensor::empty(g.taps == all ? w_shape : Shape{O, C, g.taps}, x.dtype(), x.device());
  backend_for(x.device(), op)
      .conv_backward_weight(x.dtype(), g, x.size(0), O, xc.raw_data(), gc.raw_data(), gw.raw_data());
  if (taps == all) return gw;
  if (g.taps == all) {  // the whole kernel's gradient: its dead taps are zero by definition
    gw.view({O, C, all}).slice(2, taps, all).fill_(0);
    return gw;
  }
  Tensor full = Tensor::zeros(w_shape, x.dtype(), x.device());  // the dead taps' gradient is zero
  full.view({O, C, all}).slice(2, 0, taps).copy_(gw);
  return full;
}

// x (N,C,H,W), w (C,O,kh,kw), bias (O) or undefined -> (N,O,Ho,Wo). In im2col terms the output
// (O,Ho,Wo) is the image and x's (H,W) grid is the set of kernel positions; w viewed as (C,
// O*kh*kw) plays the conv2d weight (O,K) with C in the role of conv2d's output channels.
Tensor conv_transpose2d(const Tensor& x, const Tensor& w, const Tensor& bias, const Conv2dParams& p,
                        int64_t out_pad_h, int64_t out_pad_w) {
  const char* op = "conv_transpose2d";
  check_tensor(x, op, "input");
  check_tensor(w, op, "weight");
  check_same_dtype(x, w, op, "input", "weight");
  check_rank4(x.shape(), op, "input", "(N,C,H,W)");
  check_rank4(w.shape(), op, "weight", "(C,O,kh,kw)");
  check_params(p, op);
  GV_CHECK(x.size(1) == w.size(0), ShapeError,
           "{}: input {} has {} channels but weight {} expects {}", op, shape_str(x.shape()),
           x.size(1), shape_str(w.shape()), w.size(0));
  GV_CHECK(w.size(2) >= 1 && w.size(3) >= 1, ShapeError, "{}: weight {} has an empty kernel", op,
           shape_str(w.shape()));
  GV_CHECK(out_pad_h >= 0 && out_pad_w >= 0 && (out_pad_h < p.stride_h || out_pad_h < p.dil_h) &&
               (out_pad_w < p.stride_w || out_pad_w < p.dil_w),
           ValueError,
           "{}: output padding ({}, {}) must be >= 0 and smaller than either stride ({}, {}) or "
           "dilation ({}, {})",
           op, out_pad_h, out_pad_w, p.stride_h, p.stride_w, p.dil_h, p.dil_w);
  const int64_t N = x.size(0), C = x.size(1), O = w.size(1), kh = w.size(2), kw = w.size(3);
  const int64_t Ho =
      (x.size(2) - 1) * p.stride_h - 2 * p.pad_h + p.dil_h * (kh - 1) + out_pad_h + 1;
  const int64_t Wo =
      (x.size(3) - 1) * p.stride_w - 2 * p.pad_w + p.dil_w * (kw - 1) + out_pad_w + 1;
  GV_CHECK(
      Ho >= 1 && Wo >= 1, ShapeError,
      "{}: input {} with weight {}, stride ({}, {}), padding ({}, {}) gives an empty output {}x{}",
      op, shape_str(x.shape()), shape_str(w.shape()), p.stride_h, p.stride_w, p.pad_h, p.pad_w, Ho,
      Wo);
  if (bias.defined()) {
    check_tensor(bias, op, "bias");
    check_same_dtype(x, bias, op, "input", "bias");
    check_bias(bias, O, w, op);
  }
  const ConvGeom g{O, Ho, Wo, kh, kw, x.size(2), x.size(3), p, kh * kw};
  Tensor xc = x.contiguous(), wc = w.contiguous(), bc = bias.defined() ? bias.contiguous() : bias;
  Tensor out = Tensor::empty({N, O, Ho, Wo}, x.dtype(), x.device());
  backend_for(x.device(), op)
      .conv_backward_input(x.dtype(), g, N, C, xc.raw_data(), wc.raw_data(), bc.defined() ? bc.raw_data() : nullptr,
                           out.raw_data());
  return out;
}

}  // namespace gv

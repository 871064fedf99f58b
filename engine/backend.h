// backend.h: the seam between the ops and their kernels.
//
//   front end (engine/*.cpp, once per op)      checks the inputs, computes the output shape,
//                                              allocates the output on the inputs' device
//        |  TensorRef (engine/strided.h): pointer, dtype, shape, strides; plain data
//   Backend (this file)                        one virtual call per kernel family
//        |
//   CpuBackend (engine/cpu/cpu_backend.cpp)    OpenMP loops, run-time ISA choice
//   CudaBackend (engine/backend.cpp -> cuda/)  CUDA kernels; what is not there yet refuses with
//                                              a DeviceError naming the op
//
// A new op gets a front end and, if no existing kernel family computes it, a method here that
// every backend implements. A new backend implements this interface and is returned by
// backend_for. Every op of engine/ops.h, Tensor's copies, fills and transfers (Tensor::to), and
// the random draws go through it (docs/engine.md). Two constructors build on the host and then
// transfer: arange (exact integers, index vectors of a batch at most) and randperm (Fisher-Yates
// is one serial chain of swaps, and its users, the data loaders, index host memory).
#pragma once
#include "engine/device.h"
#include "engine/functors.h"
#include "engine/kernel_args.h"
#include "engine/update_rules.h"
#include "engine/ops.h"
#include "engine/strided.h"
#include "engine/tensor.h"

namespace gv {

// t as a kernel sees it; with `shape`, seen through a numpy broadcast to that shape (stride 0 on
// broadcast and new leading axes).
TensorRef tensor_ref(const Tensor& t);
TensorRef tensor_ref(const Tensor& t, const Shape& shape);

// One 2-D convolution seen from the im2col side (engine/cpu/conv.cpp): the image (C, H, W), the
// kernel (kh, kw), the grid of kernel positions (Ho, Wo), and the stride, padding and dilation.
// For conv2d the image is the input; for conv_transpose2d it is the output.
// taps: the kernel taps that exist, the first `taps` in raster order (all kh*kw for an ordinary
// convolution; fewer for PixelCNN's masked ones, whose dead taps are never computed). The weight
// is then (O, C*taps). Only the CPU backend takes taps < kh*kw (engine/conv.cpp).
struct ConvGeom {
  int64_t C, H, W, kh, kw, Ho, Wo;
  Conv2dParams p;
  int64_t taps;
  int64_t K() const { return C * taps; }
  int64_t L() const { return Ho * Wo; }
  int64_t HW() const { return H * W; }
  // the same numbers without Conv2dParams, as the CUDA backend takes them (engine/kernel_args.h)
  ConvShape plain() const {
    return {C, H, W, kh, kw, Ho, Wo, p.stride_h, p.stride_w, p.pad_h, p.pad_w, p.dil_h, p.dil_w};
  }
};

class Backend {
 public:
  virtual ~Backend() = default;
  virtual const char* name() const = 0;

  // nbytes between this device's memory and contiguous host memory. to_host returns once the
  // bytes are on the host (after the kernels before it, whose recorded errors it raises);
  // from_host is ordered before the kernels after it. The CPU backend copies.
  virtual void to_host(void* host_dst, const void* src, size_t nbytes) = 0;
  virtual void from_host(void* dst, const void* host_src, size_t nbytes) = 0;

  // Element-wise: every operand has out's shape (inputs may have stride-0 axes), out is fresh.
  // out = F(x; a, b)
  virtual void unary(UnaryOp op, const TensorRef& out, const TensorRef& x, double a, double b) = 0;
  // gx = gout * dF(x, y; a, b), with y = F(x)
  virtual void unary_backward(UnaryOp op, const TensorRef& gx, const TensorRef& x, const TensorRef& y,
                              const TensorRef& gout, double a, double b) = 0;
  // out = F(a, b)
  virtual void binary(BinaryOp op, const TensorRef& out, const TensorRef& a, const TensorRef& b) = 0;
  // out = cond != 0 ? a : b
  virtual void where(const TensorRef& out, const TensorRef& cond, const TensorRef& a, const TensorRef& b) = 0;
  // The gate (GateF): out = tanh(a) * sigmoid(b); its backward ga, gb = the gradients through a
  // and b of gout (float only; a and b are usually the two halves of one tensor, ga and gb the two
  // halves of its gradient)
  virtual void gate(const TensorRef& out, const TensorRef& a, const TensorRef& b) = 0;
  virtual void gate_backward(const TensorRef& ga, const TensorRef& gb, const TensorRef& a, const TensorRef& b,
                             const TensorRef& gout) = 0;

  // out (x's rank, the reduced axes of size 1) = the reduction of x over the axes marked in
  // reduced[0..x.ndim): sums accumulate in double; max and argmax let NaN win; argmax takes the
  // first maximum (the index counts within the reduced block, row-major).
  virtual void reduce(ReduceOp op, const TensorRef& out, const TensorRef& x, const bool* reduced) = 0;

  // Moving values. dst = src converted to dst's dtype (src has dst's shape, stride 0 where
  // broadcast; they do not overlap); dst = value.
  virtual void copy(const TensorRef& dst, const TensorRef& src) = 0;
  virtual void fill(const TensorRef& dst, double value) = 0;
  // out (contiguous, index's shape) = x at index[p] along the axis; an out-of-range index value is
  // an IndexError naming its position.
  virtual void gather(const TensorRef& out, const TensorRef& x, const TensorRef& index, int axis) = 0;
  // out (zeros of x's shape) += src at index[p] along the axis, in index order.
  virtual void scatter_add(const TensorRef& out, const TensorRef& index, const TensorRef& src, int axis) = 0;
  // out (contiguous zeros, index's shape + (classes)): out[p][index[p]] = 1.
  virtual void one_hot(const TensorRef& out, const TensorRef& index, int64_t classes) = 0;

  // Random fills of a contiguous float out, engine/random.cpp's contract: element i from the
  // Philox blocks start, start + 1, ... under `seed`. bernoulli: 1 where u <= p[i] (p already
  // checked to lie in [0, 1]).
  virtual void random_uniform(const TensorRef& out, uint64_t seed, uint64_t start, double lo, double hi) = 0;
  virtual void random_normal(const TensorRef& out, uint64_t seed, uint64_t start, double mean, double std) = 0;
  virtual void random_bernoulli(const TensorRef& out, const TensorRef& p, uint64_t seed, uint64_t start) = 0;

  // The one GEMM (float32 or float64).
  virtual void gemm(const GemmArgs& g) = 0;

  // Convolutions over contiguous (N, C, H, W) images, weights (O, C*kh*kw): out (N, O, Ho, Wo)
  // = conv(x) + bias (bias may be null); gx (N, C, H, W) = the adjoint of conv applied to gout,
  // plus init[c] per channel (init may be null); gw (O, C*kh*kw) = the weight gradient.
  virtual void conv_forward(DType dt, const ConvGeom& g, int64_t N, int64_t O, const void* x, const void* w,
                            const void* bias, void* out) = 0;
  virtual void conv_backward_input(DType dt, const ConvGeom& g, int64_t N, int64_t O, const void* gout,
                                   const void* w, const void* init, void* gx) = 0;
  virtual void conv_backward_weight(DType dt, const ConvGeom& g, int64_t N, int64_t O, const void* x,
                                    const void* gout, void* gw) = 0;

  // One optimizer step of one parameter, fused (engine/update_rules.h).
  virtual void optimizer_update(const UpdateArgs& a) = 0;
};

Backend& cpu_backend();
// The backend of `device`; a DeviceError naming `op` when the build or the machine has none.
Backend& backend_for(Device device, const char* op);

}  // namespace gv

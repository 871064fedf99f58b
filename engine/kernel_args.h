// kernel_args.h: the plain argument structs of the backend seam that are not TensorRefs (the GEMM's,
// the reduction's op), shared by engine/backend.h and engine/cuda/cuda_backend.h. No Tensor, no
// CUDA header: both the host compiler and nvcc read it.
#pragma once
#include <cstdint>

#include "engine/dtype.h"

namespace gv {

// C (M, N) = alpha op(A) op(B) + beta C (engine/gemm.h's contract): A and B through row and column
// element strides, C row-major with leading dimension ldc; beta == 0 never reads C.
struct GemmArgs {
  const char* op;  // the op that asks, for messages
  DType dtype;
  int64_t M, N, K;
  double alpha, beta;
  const void* a;
  int64_t rsa, csa;
  const void* b;
  int64_t rsb, csb;
  void* c;
  int64_t ldc;
};

enum class ReduceOp { sum, max, argmax };  // argmax writes int64 indices

// One 2-D convolution as the CUDA backend and its kernels see it, in plain numbers (engine/backend.h's
// ConvGeom without Conv2dParams): the image (C, H, W), the kernel (kh, kw), the grid of kernel
// positions (Ho, Wo), the strides, the padding and the dilation.
struct ConvShape {
  int64_t C, H, W, kh, kw, Ho, Wo, sh, sw, ph, pw, dh, dw;
};

}  // namespace gv

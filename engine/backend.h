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
// backend_for. The element-wise family is behind the seam now; reductions, matmul and
// convolutions, indexing and copies still dispatch inside their op files (docs/engine.md).
#pragma once
#include "engine/device.h"
#include "engine/functors.h"
#include "engine/strided.h"
#include "engine/tensor.h"

namespace gv {

// t as a kernel sees it; with `shape`, seen through a numpy broadcast to that shape (stride 0 on
// broadcast and new leading axes).
TensorRef tensor_ref(const Tensor& t);
TensorRef tensor_ref(const Tensor& t, const Shape& shape);

class Backend {
 public:
  virtual ~Backend() = default;
  virtual const char* name() const = 0;

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
};

Backend& cpu_backend();
// The backend of `device`; a DeviceError naming `op` when the build or the machine has none.
Backend& backend_for(Device device, const char* op);

}  // namespace gv

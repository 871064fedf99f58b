// backend.cpp: TensorRef from a Tensor, backend_for, and the CUDA backend's adapter over the
// plain C++ API of engine/cuda/cuda_backend.h (which throws DeviceError when CUDA is absent).
#include "engine/backend.h"

#include <memory>
#include <vector>

#include "engine/cuda/cuda_backend.h"
#include "engine/error.h"

namespace gv {

TensorRef tensor_ref(const Tensor& t) { return tensor_ref(t, t.shape()); }

TensorRef tensor_ref(const Tensor& t, const Shape& shape) {
  GV_CHECK((int64_t)shape.size() <= kMaxDims, ShapeError, "{} has more than {} axes", shape_str(shape), kMaxDims);
  GV_CHECK(t.dim() <= (int64_t)shape.size(), ShapeError, "tensor_ref: {} does not broadcast to {}",
           shape_str(t.shape()), shape_str(shape));
  TensorRef r;
  r.data = t.raw_data();
  r.dtype = t.dtype();
  r.ndim = (int)shape.size();
  const int64_t off = (int64_t)shape.size() - t.dim();
  for (int d = 0; d < r.ndim; ++d) {
    r.shape[d] = shape[d];
    const int64_t td = d - off;
    r.strides[d] = td < 0 || t.shape()[td] == 1 ? 0 : t.strides()[td];
  }
  return r;
}

namespace {

// The CUDA backend: the unary kernel of engine/cuda/unary_kernels.cu today; the rest of the
// interface comes with the CUDA issue and refuses until then.
class CudaBackend final : public Backend {
 public:
  explicit CudaBackend(int device) : device_(device) {}
  const char* name() const override { return "cuda"; }
  void unary(UnaryOp op, const TensorRef& out, const TensorRef& x, double a, double b) override {
    GV_CHECK(ref_is_contiguous(x) && ref_is_contiguous(out), DeviceError,
             "{}: strided operands are not implemented on cuda yet (make them contiguous first)", unary_op_name(op));
    GV_CHECK(is_floating(x.dtype), DTypeError, "{}: needs a float tensor on cuda, got {}", unary_op_name(op),
             dtype_name(x.dtype));
    cuda::unary(op, x.dtype, x.data, out.data, ref_numel(x), a, b, device_);
  }
  void unary_backward(UnaryOp op, const TensorRef&, const TensorRef&, const TensorRef&, const TensorRef&, double,
                      double) override {
    GV_THROW(DeviceError, "{} backward: not implemented on cuda yet", unary_op_name(op));
  }
  void binary(BinaryOp op, const TensorRef&, const TensorRef&, const TensorRef&) override {
    GV_THROW(DeviceError, "{}: not implemented on cuda yet", binary_op_name(op));
  }
  void where(const TensorRef&, const TensorRef&, const TensorRef&, const TensorRef&) override {
    GV_THROW(DeviceError, "where: not implemented on cuda yet");
  }
  void gate(const TensorRef&, const TensorRef&, const TensorRef&) override {
    GV_THROW(DeviceError, "gate: not implemented on cuda yet");
  }
  void gate_backward(const TensorRef&, const TensorRef&, const TensorRef&, const TensorRef&,
                     const TensorRef&) override {
    GV_THROW(DeviceError, "gate backward: not implemented on cuda yet");
  }
  void reduce(ReduceOp op, const TensorRef&, const TensorRef&, const bool*) override {
    GV_THROW(DeviceError, "{}: not implemented on cuda yet",
             op == ReduceOp::sum ? "sum" : op == ReduceOp::max ? "max" : "argmax");
  }
  // whole contiguous copies of one dtype, as the engine has supported on CUDA so far
  void copy(const TensorRef& dst, const TensorRef& src) override {
    GV_CHECK(dst.dtype == src.dtype && ref_is_contiguous(dst) && ref_is_contiguous(src), DeviceError,
             "copy_: on cuda only whole contiguous copies of one dtype are supported yet ({} <- {})",
             dtype_name(dst.dtype), dtype_name(src.dtype));
    if (dst.data != src.data)
      cuda::copy_on_device(dst.data, src.data, size_t(ref_numel(dst)) * dtype_size(dst.dtype), device_);
  }
  void fill(const TensorRef&, double) override { GV_THROW(DeviceError, "fill_: no cuda kernel yet"); }
  void gather(const TensorRef&, const TensorRef&, const TensorRef&, int) override {
    GV_THROW(DeviceError, "gather: not implemented on cuda yet");
  }
  void scatter_add(const TensorRef&, const TensorRef&, const TensorRef&, int) override {
    GV_THROW(DeviceError, "scatter_add: not implemented on cuda yet");
  }
  void one_hot(const TensorRef&, const TensorRef&, int64_t) override {
    GV_THROW(DeviceError, "one_hot: not implemented on cuda yet");
  }
  // the draws are made by the CPU backend and copied for now (engine/random.cpp)
  void random_uniform(const TensorRef&, uint64_t, uint64_t, double, double) override {
    GV_THROW(DeviceError, "uniform: no cuda Philox kernel yet");
  }
  void random_normal(const TensorRef&, uint64_t, uint64_t, double, double) override {
    GV_THROW(DeviceError, "normal: no cuda Philox kernel yet");
  }
  void random_bernoulli(const TensorRef&, const TensorRef&, uint64_t, uint64_t) override {
    GV_THROW(DeviceError, "bernoulli: no cuda Philox kernel yet");
  }
  void gemm(const GemmArgs& g) override { GV_THROW(DeviceError, "{}: not implemented on cuda yet", g.op); }
  void conv_forward(DType, const ConvGeom&, int64_t, int64_t, const void*, const void*, const void*, void*) override {
    GV_THROW(DeviceError, "conv2d: not implemented on cuda yet");
  }
  void conv_backward_input(DType, const ConvGeom&, int64_t, int64_t, const void*, const void*, const void*,
                           void*) override {
    GV_THROW(DeviceError, "conv2d_backward_input / conv_transpose2d: not implemented on cuda yet");
  }
  void conv_backward_weight(DType, const ConvGeom&, int64_t, int64_t, const void*, const void*, void*) override {
    GV_THROW(DeviceError, "conv2d_backward_weight: not implemented on cuda yet");
  }

 private:
  int device_;
};

}  // namespace

Backend& backend_for(Device device, const char* op) {
  if (device.is_cpu()) return cpu_backend();
  GV_CHECK(cuda_available(), DeviceError, "{}: tensor on {} but {}", op, device.str(),
           cuda_compiled() ? "no CUDA device can be used here" : "this build has no CUDA backend");
  GV_CHECK(device.index >= 0 && device.index < 16, DeviceError, "{}: no device {}", op, device.str());
  static const std::vector<std::unique_ptr<CudaBackend>> all = [] {  // made once, thread-safely
    std::vector<std::unique_ptr<CudaBackend>> v;
    for (int i = 0; i < 16; ++i) v.push_back(std::make_unique<CudaBackend>(i));
    return v;
  }();
  return *all[device.index];
}

}  // namespace gv

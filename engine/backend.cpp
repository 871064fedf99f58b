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

// The CUDA backend: each method hands its plain arguments to engine/cuda/cuda_backend.h, whose
// kernels run the bodies of engine/cuda/kernels.h (the CPU tests run those bodies too).
class CudaBackend final : public Backend {
 public:
  explicit CudaBackend(int device) : d_(device) {}
  const char* name() const override { return "cuda"; }
  void to_host(void* host_dst, const void* src, size_t nbytes) override { cuda::copy_to_host(host_dst, src, nbytes, d_); }
  void from_host(void* dst, const void* host_src, size_t nbytes) override {
    cuda::copy_to_device(dst, host_src, nbytes, d_);
  }
  void unary(UnaryOp op, const TensorRef& out, const TensorRef& x, double a, double b) override {
    cuda::unary(op, out, x, a, b, d_);
  }
  void unary_backward(UnaryOp op, const TensorRef& gx, const TensorRef& x, const TensorRef& y, const TensorRef& gout,
                      double a, double b) override {
    cuda::unary_backward(op, gx, x, y, gout, a, b, d_);
  }
  void binary(BinaryOp op, const TensorRef& out, const TensorRef& a, const TensorRef& b) override {
    cuda::binary(op, out, a, b, d_);
  }
  void where(const TensorRef& out, const TensorRef& cond, const TensorRef& a, const TensorRef& b) override {
    cuda::where(out, cond, a, b, d_);
  }
  void gate(const TensorRef& out, const TensorRef& a, const TensorRef& b) override { cuda::gate(out, a, b, d_); }
  void gate_backward(const TensorRef& ga, const TensorRef& gb, const TensorRef& a, const TensorRef& b,
                     const TensorRef& gout) override {
    cuda::gate_backward(ga, gb, a, b, gout, d_);
  }
  void reduce(ReduceOp op, const TensorRef& out, const TensorRef& x, const bool* reduced) override {
    cuda::reduce(op, out, x, reduced, d_);
  }
  void copy(const TensorRef& dst, const TensorRef& src) override { cuda::copy(dst, src, d_); }
  void fill(const TensorRef& dst, double value) override { cuda::fill(dst, value, d_); }
  void gather(const TensorRef& out, const TensorRef& x, const TensorRef& index, int axis) override {
    cuda::gather(out, x, index, axis, d_);
  }
  void scatter_add(const TensorRef& out, const TensorRef& index, const TensorRef& src, int axis) override {
    cuda::scatter_add(out, index, src, axis, d_);
  }
  void one_hot(const TensorRef& out, const TensorRef& index, int64_t classes) override {
    cuda::one_hot(out, index, classes, d_);
  }
  void random_uniform(const TensorRef& out, uint64_t seed, uint64_t start, double lo, double hi) override {
    cuda::random_uniform(out, seed, start, lo, hi, d_);
  }
  void random_normal(const TensorRef& out, uint64_t seed, uint64_t start, double mean, double std) override {
    cuda::random_normal(out, seed, start, mean, std, d_);
  }
  void random_bernoulli(const TensorRef& out, const TensorRef& p, uint64_t seed, uint64_t start) override {
    cuda::random_bernoulli(out, p, seed, start, d_);
  }
  void gemm(const GemmArgs& g) override { cuda::gemm(g, d_); }
  void conv_forward(DType dt, const ConvGeom& g, int64_t N, int64_t O, const void* x, const void* w, const void* bias,
                    void* out) override {
    cuda::conv_forward(dt, g.plain(), N, O, x, w, bias, out, d_);
  }
  void conv_backward_input(DType dt, const ConvGeom& g, int64_t N, int64_t O, const void* gout, const void* w,
                           const void* init, void* gx) override {
    cuda::conv_backward_input(dt, g.plain(), N, O, gout, w, init, gx, d_);
  }
  void conv_backward_weight(DType dt, const ConvGeom& g, int64_t N, int64_t O, const void* x, const void* gout,
                            void* gw) override {
    cuda::conv_backward_weight(dt, g.plain(), N, O, x, gout, gw, d_);
  }
  void optimizer_update(const UpdateArgs& a) override { cuda::optimizer_update(a, d_); }

 private:
  int d_;
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

// cuda_absent.cpp: the CUDA backend of a build without CUDA (-Dcuda=disabled or no nvcc).
// Asking for a CUDA tensor then fails with a DeviceError that says how to get one.
#include "engine/cuda/cuda_backend.h"
#include "engine/cuda/cuda_info.h"
#include "engine/error.h"

namespace gv::cuda {

#define GV_NO_CUDA(what) \
  GV_THROW(DeviceError, "{}: this build of genvae has no CUDA backend (reconfigure with -Dcuda=enabled)", what)

bool compiled() { return false; }
int device_count() { return 0; }
void* alloc(size_t, int) { GV_NO_CUDA("cuda alloc"); }
void free(void*, int) noexcept {}
CacheStats cache_stats(int) { return {}; }
void cache_release(int) {}
void copy_to_device(void*, const void*, size_t, int) { GV_NO_CUDA("copy to cuda"); }
void copy_to_host(void*, const void*, size_t, int) { GV_NO_CUDA("copy from cuda"); }
void copy_on_device(void*, const void*, size_t, int) { GV_NO_CUDA("copy on cuda"); }
void synchronize(int) { GV_NO_CUDA("cuda synchronize"); }
std::string cublas_library() { GV_NO_CUDA("cuBLAS"); }
void allow_nondeterministic(bool) {}
bool nondeterministic_allowed() { return false; }
void unary(UnaryOp op, const TensorRef&, const TensorRef&, double, double, int) { GV_NO_CUDA(unary_op_name(op)); }
void unary_backward(UnaryOp op, const TensorRef&, const TensorRef&, const TensorRef&, const TensorRef&, double, double,
                    int) {
  GV_NO_CUDA(unary_op_name(op));
}
void binary(BinaryOp op, const TensorRef&, const TensorRef&, const TensorRef&, int) { GV_NO_CUDA(binary_op_name(op)); }
void where(const TensorRef&, const TensorRef&, const TensorRef&, const TensorRef&, int) { GV_NO_CUDA("where"); }
void gate(const TensorRef&, const TensorRef&, const TensorRef&, int) { GV_NO_CUDA("gate"); }
void gate_backward(const TensorRef&, const TensorRef&, const TensorRef&, const TensorRef&, const TensorRef&, int) {
  GV_NO_CUDA("gate backward");
}
void reduce(ReduceOp, const TensorRef&, const TensorRef&, const bool*, int) { GV_NO_CUDA("reduce"); }
void copy(const TensorRef&, const TensorRef&, int) { GV_NO_CUDA("copy_"); }
void fill(const TensorRef&, double, int) { GV_NO_CUDA("fill_"); }
void gather(const TensorRef&, const TensorRef&, const TensorRef&, int, int) { GV_NO_CUDA("gather"); }
void scatter_add(const TensorRef&, const TensorRef&, const TensorRef&, int, int) { GV_NO_CUDA("scatter_add"); }
void one_hot(const TensorRef&, const TensorRef&, int64_t, int) { GV_NO_CUDA("one_hot"); }
void random_uniform(const TensorRef&, uint64_t, uint64_t, double, double, int) { GV_NO_CUDA("uniform"); }
void random_normal(const TensorRef&, uint64_t, uint64_t, double, double, int) { GV_NO_CUDA("normal"); }
void random_bernoulli(const TensorRef&, const TensorRef&, uint64_t, uint64_t, int) { GV_NO_CUDA("bernoulli"); }
void gemm(const GemmArgs& g, int) { GV_NO_CUDA(g.op); }
void conv_forward(DType, const ConvShape&, int64_t, int64_t, const void*, const void*, const void*, void*, int) {
  GV_NO_CUDA("conv2d");
}
void conv_backward_input(DType, const ConvShape&, int64_t, int64_t, const void*, const void*, const void*, void*, int) {
  GV_NO_CUDA("conv2d_backward_input");
}
void conv_backward_weight(DType, const ConvShape&, int64_t, int64_t, const void*, const void*, void*, int) {
  GV_NO_CUDA("conv2d_backward_weight");
}
void optimizer_update(const UpdateArgs&, int) { GV_NO_CUDA("optimizer step"); }
void set_conv_impl(ConvImpl) {}
ConvImpl conv_impl() { return ConvImpl::im2col; }
size_t cudnn_cached_algorithms() { return 0; }
std::string describe_devices() {
  return "this build of genvae has no CUDA backend (reconfigure with -Dcuda=enabled)";
}

}  // namespace gv::cuda

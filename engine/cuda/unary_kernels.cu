// unary_kernels.cu: element-wise unary ops on CUDA. One grid-stride kernel, instantiated for each
// functor of engine/functors.h (the same structs the CPU loops use, so both backends compute the
// same math) and for float32 / float64.
#include <cuda_runtime_api.h>

#include <algorithm>
#include <atomic>
#include <string>

#include "engine/cuda/cuda_backend.h"
#include "engine/cuda/cuda_check.h"

namespace gv::cuda {

namespace {

constexpr int kThreads = 256;
constexpr int kBlocksPerSM = 16;  // enough resident blocks to hide latency; the loop covers the rest

// y[i] = F(x[i]); x and y may be the same array (each element is read before it is written).
template <class F, class T>
__global__ void unary_kernel(const T* x, T* y, int64_t n, T a, T b) {
  const int64_t stride = int64_t(blockDim.x) * gridDim.x;
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride)
    y[i] = F::template f<T>(x[i], a, b);
}

// Multiprocessor count per device, asked of the runtime once.
int sm_count(int device) {
  static std::atomic<int> cache[64] = {};
  const bool cached = device >= 0 && device < 64;
  if (cached) {
    if (int c = cache[device].load(std::memory_order_relaxed); c > 0) return c;
  }
  int c = 0;
  GV_CUDA_CHECK(cudaDeviceGetAttribute(&c, cudaDevAttrMultiProcessorCount, device),
                "asking cuda:" + std::to_string(device) + " for its multiprocessor count");
  c = std::max(c, 1);
  if (cached) cache[device].store(c, std::memory_order_relaxed);
  return c;
}

template <class F, class T>
void launch(const char* name, const void* x, void* y, int64_t n, double a, double b, int device) {
  const int64_t want = (n + kThreads - 1) / kThreads;
  const int blocks = int(std::min<int64_t>(want, int64_t(sm_count(device)) * kBlocksPerSM));
  unary_kernel<F, T><<<blocks, kThreads>>>(static_cast<const T*>(x), static_cast<T*>(y), n, T(a),
                                            T(b));
  GV_CUDA_CHECK(cudaGetLastError(), std::string("launching the ") + name + " kernel (" +
                                        std::to_string(n) + " elements, " + std::to_string(blocks) +
                                        " blocks of " + std::to_string(kThreads) + ") on cuda:" +
                                        std::to_string(device));
}

template <class T>
void unary_typed(UnaryOp op, const void* x, void* y, int64_t n, double a, double b, int device) {
  switch (op) {
#define GV_CASE(name, F) \
  case UnaryOp::name: return launch<F, T>(#name, x, y, n, a, b, device);
    GV_UNARY_OPS(GV_CASE)
#undef GV_CASE
  }
  detail::throw_device_error("cuda unary: unknown op code " + std::to_string(int(op)), __FILE__,
                             __LINE__);
}

}  // namespace

void unary(UnaryOp op, DType dtype, const void* x, void* y, int64_t n, double a, double b,
           int device) {
  if (dtype != DType::f32 && dtype != DType::f64)
    detail::throw_dtype_error(std::string(unary_op_name(op)) + " on cuda: needs float32 or float64, got " +
                                  dtype_name(dtype),
                              __FILE__, __LINE__);
  if (n <= 0) return;
  GV_CUDA_CHECK(cudaSetDevice(device), "selecting cuda:" + std::to_string(device) + " for the " +
                                           unary_op_name(op) + " kernel");
  if (dtype == DType::f32) unary_typed<float>(op, x, y, n, a, b, device);
  else unary_typed<double>(op, x, y, n, a, b, device);
}

}  // namespace gv::cuda

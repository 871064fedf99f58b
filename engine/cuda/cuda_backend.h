// cuda_backend.h: the CUDA backend as the rest of the engine sees it. Plain C++ (no CUDA headers),
// so engine/*.cpp can call it whether or not CUDA is compiled in. Implemented in cuda/*.cu when the
// build has CUDA, else by cuda/cuda_absent.cpp, whose functions throw DeviceError.
// Pointers are device pointers unless named host_*; sizes are in bytes unless named n (elements).
//
// The kernels' per-thread bodies are engine/cuda/kernels.h (run on the CPU by the tests); the
// functions below launch them on the legacy default stream of `device`, so every kernel, copy and
// cuBLAS call is ordered after the ones before it and no call here waits for the GPU, except the
// copies to the host and synchronize, which also raise the errors kernels have recorded
// (kernels.h ErrorWord: a bad gather index, say).
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

#include "engine/dtype.h"
#include "engine/functors.h"
#include "engine/kernel_args.h"
#include "engine/strided.h"
#include "engine/update_rules.h"

namespace gv::cuda {

bool compiled();      // the build has the CUDA backend
int device_count();   // 0 when no GPU can be used (any error from the driver counts as none)

// Memory: a caching allocator per device (freed blocks are kept by size and handed out again;
// on an out-of-memory error the cache is returned to the driver and the allocation tried again).
void* alloc(size_t nbytes, int device);
void free(void* p, int device) noexcept;
struct CacheStats {
  size_t cached_bytes = 0, in_use_bytes = 0;
  int64_t hits = 0, misses = 0;
};
CacheStats cache_stats(int device);
void cache_release(int device);  // returns every cached block to the driver

void copy_to_device(void* dst, const void* host_src, size_t nbytes, int device);
void copy_to_host(void* host_dst, const void* src, size_t nbytes, int device);
void copy_on_device(void* dst, const void* src, size_t nbytes, int device);
void synchronize(int device);

// Determinism (docs/engine.md): by default cuBLAS runs without atomics and without TF32, so
// products are the same bits run after run; allow_nondeterministic(true) lets it use TF32 tensor
// cores (faster, about 10 bits of mantissa in the products).
void allow_nondeterministic(bool on);
bool nondeterministic_allowed();

// The kernels, one per method of engine/backend.h's Backend (the same contracts).
void unary(UnaryOp op, const TensorRef& out, const TensorRef& x, double a, double b, int device);
void unary_backward(UnaryOp op, const TensorRef& gx, const TensorRef& x, const TensorRef& y, const TensorRef& gout,
                    double a, double b, int device);
void binary(BinaryOp op, const TensorRef& out, const TensorRef& a, const TensorRef& b, int device);
void where(const TensorRef& out, const TensorRef& cond, const TensorRef& a, const TensorRef& b, int device);
void gate(const TensorRef& out, const TensorRef& a, const TensorRef& b, int device);
void gate_backward(const TensorRef& ga, const TensorRef& gb, const TensorRef& a, const TensorRef& b,
                   const TensorRef& gout, int device);
void reduce(ReduceOp op, const TensorRef& out, const TensorRef& x, const bool* reduced, int device);
void copy(const TensorRef& dst, const TensorRef& src, int device);
void fill(const TensorRef& dst, double value, int device);
void gather(const TensorRef& out, const TensorRef& x, const TensorRef& index, int axis, int device);
void scatter_add(const TensorRef& out, const TensorRef& index, const TensorRef& src, int axis, int device);
void one_hot(const TensorRef& out, const TensorRef& index, int64_t classes, int device);
void random_uniform(const TensorRef& out, uint64_t seed, uint64_t start, double lo, double hi, int device);
void random_normal(const TensorRef& out, uint64_t seed, uint64_t start, double mean, double std, int device);
void random_bernoulli(const TensorRef& out, const TensorRef& p, uint64_t seed, uint64_t start, int device);
void gemm(const GemmArgs& g, int device);
// cuBLAS is opened (dlopen) on the first product, not linked, so a CPU-only process never maps it;
// this opens it now and returns the file it came from (DeviceError naming the paths tried).
std::string cublas_library();

// Convolutions over engine/kernel_args.h's ConvShape.
void conv_forward(DType dt, const ConvShape& g, int64_t N, int64_t O, const void* x, const void* w, const void* bias,
                  void* out, int device);
void conv_backward_input(DType dt, const ConvShape& g, int64_t N, int64_t O, const void* gout, const void* w,
                         const void* init, void* gx, int device);
void conv_backward_weight(DType dt, const ConvShape& g, int64_t N, int64_t O, const void* x, const void* gout,
                          void* gw, int device);
// Which convolution the backend runs: ours (im2col/col2im around cuBLAS, the default) or cuDNN's,
// with its algorithm and workspace chosen once per shape (engine/cuda/cudnn_conv.cu). The first
// use reads GENVAE_CUDA_CONV=im2col|cudnn; set_conv_impl overrides it.
enum class ConvImpl { im2col, cudnn };
void set_conv_impl(ConvImpl impl);
ConvImpl conv_impl();
size_t cudnn_cached_algorithms();  // entries in cuDNN's per-shape algorithm cache

// One fused kernel per parameter: engine/update_rules.h's rule for each element.
void optimizer_update(const UpdateArgs& a, int device);

}  // namespace gv::cuda

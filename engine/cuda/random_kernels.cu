// random_kernels.cu: the Philox fills on CUDA, one thread per Philox block, following
// engine/random.cpp's contract with engine/philox.h's arithmetic. This file is compiled with
// -fmad=false (engine/meson.build): with no fused multiply-add, every operation of the Box-Muller
// transform rounds as the CPU's does, so a seed gives the same bits on both.
#include "engine/cuda/launch.h"

namespace gv::cuda {
namespace {

template <kern::Draw D, class T>
__global__ void random_kernel(kern::DrawArgs<T> r) {
  kern::random_body<D, T>(kern::Grid{blockIdx.x, threadIdx.x, blockDim.x, gridDim.x}, r);
}

template <kern::Draw D>
void run(const char* what, const TensorRef& out, const void* p, uint64_t seed, uint64_t start, double a, double b,
         int device) {
  const int64_t n = ref_numel(out);
  if (n == 0) return;
  if (!ref_is_contiguous(out))
    detail::throw_device_error(std::string(what) + " on cuda: the output must be contiguous", __FILE__, __LINE__);
  detail::set_device(device, what);
  const kern::Launch l = kern::launch_for((n + 3) / 4, detail::sm_count(device));
  detail::dispatch_float(out.dtype, what, [&]<class T>() {
    random_kernel<D, T><<<unsigned(l.blocks), unsigned(l.threads)>>>(
        kern::DrawArgs<T>{out.ptr<T>(), static_cast<const T*>(p), n, seed, start, a, b,
                          D == kern::Draw::bernoulli ? detail::error_word(device) : nullptr});
  });
  detail::check_launch(what, l, device);
}

}  // namespace

void random_uniform(const TensorRef& out, uint64_t seed, uint64_t start, double lo, double hi, int device) {
  run<kern::Draw::uniform>("uniform", out, nullptr, seed, start, lo, hi, device);
}
void random_normal(const TensorRef& out, uint64_t seed, uint64_t start, double mean, double std, int device) {
  run<kern::Draw::normal>("normal", out, nullptr, seed, start, mean, std, device);
}
void random_bernoulli(const TensorRef& out, const TensorRef& p, uint64_t seed, uint64_t start, int device) {
  run<kern::Draw::bernoulli>("bernoulli", out, p.data, seed, start, 0, 0, device);
}

}  // namespace gv::cuda

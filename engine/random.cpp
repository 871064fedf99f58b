// random.cpp: the draws of random.h on the CPU, all built on Philox 4x32-10 blocks.
//
// Which random word feeds which element (the contract a CUDA kernel must reproduce later):
//   a draw of n elements reserves ceil(n/4) blocks, start = g.advance(ceil(n/4)), and
//   - uniform:   element i uses word i%4 of block start + i/4,
//   - bernoulli: the same word as uniform, compared with p[i],
//   - normal:    elements 2j, 2j+1 share words (2*(j%2), 2*(j%2)+1) of block start + j/2
//                (Box-Muller: the even element takes the cosine, the odd one the sine),
//   - randperm:  Fisher-Yates step k uses the 64-bit word pair (2*(k%2), 2*(k%2)+1) of block
//                start + k/2, so it reserves ceil((n-1)/2) blocks.
// So every value is a pure function of (seed, counter, element index). The front ends below
// reserve the blocks and hand the fill to the backend (engine/backend.h; the CPU's kernels are
// engine/cpu/random.cpp, which split the blocks across threads: the same result at any thread
// count). Until the CUDA backend has its Philox kernel, CUDA draws are made by the CPU backend and
// copied with .to(device): the same numbers by construction.
#include "engine/random.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "engine/backend.h"
#include "engine/cpu/loops.h"

namespace gv {

std::array<uint32_t, 4> Generator::block(uint64_t ctr) const {
  uint32_t c[4];
  philox_words(seed_, ctr, c);
  return {c[0], c[1], c[2], c[3]};
}

namespace {

int64_t blocks_for(int64_t n) { return (n + 3) / 4; }  // ceil(n / 4)

// floor(a * b / 2^64): maps a uniform 64-bit a to [0, b) (Lemire), from four 32x32 products.
uint64_t mulhi64(uint64_t a, uint64_t b) {
  uint64_t a_lo = uint32_t(a), a_hi = a >> 32, b_lo = uint32_t(b), b_hi = b >> 32;
  uint64_t ll = a_lo * b_lo, hl = a_hi * b_lo, lh = a_lo * b_hi, hh = a_hi * b_hi;
  uint64_t mid = (ll >> 32) + uint32_t(hl) + uint32_t(lh);  // the carry into the high word
  return hh + (hl >> 32) + (lh >> 32) + (mid >> 32);
}

void check_draw_args(const char* op, DType dtype, Device device) {
  GV_CHECK(is_floating(dtype), DTypeError, "{}: needs a float32 or float64 dtype, got {}", op,
           dtype_name(dtype));
  GV_CHECK(device.is_cpu() || cuda_available(), DeviceError,
           "{}: device {} asked for, but CUDA is not available", op, device.str());
}

}  // namespace

Tensor uniform(const Shape& shape, Generator& g, double lo, double hi, DType dtype, Device device) {
  check_draw_args("uniform", dtype, device);
  GV_CHECK(std::isfinite(lo) && std::isfinite(hi) && std::isfinite(hi - lo), ValueError,
           "uniform: lo and hi must be finite, got lo = {} and hi = {}", lo, hi);
  GV_CHECK(hi >= lo, ValueError, "uniform: needs lo <= hi, got lo = {} and hi = {}", lo, hi);
  Tensor out = Tensor::empty(shape, dtype, device);  // checks the shape before the generator moves
  const uint64_t start = g.advance(blocks_for(out.numel()));
  if (out.numel() > 0) backend_for(device, "uniform").random_uniform(tensor_ref(out), g.seed(), start, lo, hi);
  return out;
}

Tensor normal(const Shape& shape, Generator& g, double mean, double std, DType dtype, Device device) {
  check_draw_args("normal", dtype, device);
  GV_CHECK(std::isfinite(mean) && std::isfinite(std), ValueError,
           "normal: mean and std must be finite, got mean = {} and std = {}", mean, std);
  GV_CHECK(std >= 0, ValueError, "normal: needs std >= 0, got std = {}", std);
  Tensor out = Tensor::empty(shape, dtype, device);
  const uint64_t start = g.advance(blocks_for(out.numel()));
  if (out.numel() > 0) backend_for(device, "normal").random_normal(tensor_ref(out), g.seed(), start, mean, std);
  return out;
}

Tensor bernoulli(const Tensor& p, Generator& g) {
  GV_CHECK(p.defined(), ValueError, "bernoulli: p is undefined");
  GV_CHECK(is_floating(p.dtype()), DTypeError, "bernoulli: p must be float32 or float64, got {}",
           dtype_name(p.dtype()));
  const Device device = p.device();
  Tensor pc = p.contiguous();
  // On the CPU p is checked before the generator moves: a refused p consumes no random numbers.
  // On a GPU the kernel checks it and the error comes at the next wait (no copy to the host).
  if (device.is_cpu()) cpu::dispatch_float(p.dtype(), "bernoulli", [&]<class T>() {
    const T* pp = pc.data<T>();
    for (int64_t i = 0; i < pc.numel(); ++i)  // !(0 <= p <= 1) also catches NaN
      GV_CHECK(pp[i] >= T(0) && pp[i] <= T(1), ValueError,
               "bernoulli: p must lie in [0, 1], got p = {} at flat index {} of shape {}", pp[i], i,
               shape_str(p.shape()));
  });
  Tensor out = Tensor::empty(p.shape(), p.dtype(), device);
  const uint64_t start = g.advance(blocks_for(pc.numel()));
  if (out.numel() > 0)
    backend_for(device, "bernoulli").random_bernoulli(tensor_ref(out), tensor_ref(pc), g.seed(), start);
  return out;
}

Tensor randperm(int64_t n, Generator& g) {
  GV_CHECK(n >= 0, ValueError, "randperm: needs n >= 0, got {}", n);
  Tensor out = Tensor::empty({n}, DType::i64);
  int64_t* o = out.data<int64_t>();
  std::iota(o, o + n, int64_t(0));
  const int64_t steps = std::max<int64_t>(n - 1, 0);
  const uint64_t start = g.advance((steps + 1) / 2);  // two 64-bit draws per block
  std::array<uint32_t, 4> w{};
  for (int64_t k = 0; k < steps; ++k) {
    if (k % 2 == 0) w = g.block(start + (uint64_t)(k / 2));
    uint64_t r = w[2 * (k % 2)] | (uint64_t)w[2 * (k % 2) + 1] << 32;
    // Fisher-Yates: swap slot i = n-1-k with a uniform j in [0, i]
    int64_t i = n - 1 - k;
    int64_t j = (int64_t)mulhi64(r, (uint64_t)i + 1);
    std::swap(o[i], o[j]);
  }
  return out;
}

}  // namespace gv

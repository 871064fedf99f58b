// random.cpp: the CPU backend's random fills (engine/backend.h), following engine/random.h's
// contract (which Philox word feeds which element: see engine/random.cpp). Every value is a pure
// function of (seed, counter, element index), so the blocks are split across OpenMP threads and
// the result is the same at any thread count.
#include "engine/cpu/random_kernels.h"

#include <algorithm>
#include <cmath>

#include "engine/cpu/loops.h"
#include "engine/random.h"

namespace gv::cpu {
namespace {

constexpr int64_t kBlockCost = 32;  // rough cost of one Philox block, for parallel_for's grain

int64_t blocks_for(int64_t n) { return (n + 3) / 4; }  // ceil(n / 4)

// f(i0, m, words) for every block of a draw of n elements: the block's elements are i0..i0+m-1
// (m <= 4, only the last block is short) and `words` are its 4 Philox words.
template <class F>
void for_each_block(const Generator& g, uint64_t start, int64_t n, int64_t cost, F&& f) {
  parallel_for(blocks_for(n), cost, [&](int64_t b, int64_t e) {
    for (int64_t blk = b; blk < e; ++blk) {
      int64_t i0 = 4 * blk;
      f(i0, std::min<int64_t>(4, n - i0), g.block(start + (uint64_t)blk));
    }
  });
}

// Round v to T, staying inside [lo, hi] (rounding double -> float may step just outside).
template <class T>
T to_range(double v, double lo, double hi) {
  T t = T(std::clamp(v, lo, hi));
  if ((double)t > hi) t = std::nextafter(t, T(lo));
  if ((double)t < lo) t = std::nextafter(t, T(hi));
  return t;
}

}  // namespace

void random_uniform(const TensorRef& out, uint64_t seed, uint64_t start, double lo, double hi) {
  const Generator g(seed);
  const int64_t n = ref_numel(out);
  dispatch_float(out.dtype, "uniform", [&]<class T>() {
    T* o = out.ptr<T>();
    for_each_block(g, start, n, kBlockCost, [&](int64_t i0, int64_t m, const auto& w) {
      // x = lo + (hi - lo) u, u in (0, 1]
      for (int64_t k = 0; k < m; ++k) o[i0 + k] = to_range<T>(lo + (hi - lo) * Philox::to_unit(w[k]), lo, hi);
    });
  });
}

void random_normal(const TensorRef& out, uint64_t seed, uint64_t start, double mean, double std) {
  const Generator g(seed);
  const int64_t n = ref_numel(out);
  dispatch_float(out.dtype, "normal", [&]<class T>() {
    T* o = out.ptr<T>();
    for_each_block(g, start, n, 2 * kBlockCost, [&](int64_t i0, int64_t m, const auto& w) {
      for (int64_t k = 0; k < m; k += 2) {  // words k, k+1 -> elements i0+k, i0+k+1
        double z0, z1;
        box_muller(w[k], w[k + 1], z0, z1);  // engine/philox.h: the same bits as the GPU's
        o[i0 + k] = T(mean + std * z0);  // x = mean + std z
        if (k + 1 < m) o[i0 + k + 1] = T(mean + std * z1);
      }
    });
  });
}

void random_bernoulli(const TensorRef& out, const TensorRef& p, uint64_t seed, uint64_t start) {
  const Generator g(seed);
  const int64_t n = ref_numel(out);
  dispatch_float(out.dtype, "bernoulli", [&]<class T>() {
    const T* pp = p.ptr<T>();
    T* o = out.ptr<T>();
    for_each_block(g, start, n, kBlockCost, [&](int64_t i0, int64_t m, const auto& w) {
      // 1 when u <= p with u in (0, 1]: p = 0 never fires, p = 1 always does
      for (int64_t k = 0; k < m; ++k) o[i0 + k] = Philox::to_unit(w[k]) <= (double)pp[i0 + k] ? T(1) : T(0);
    });
  });
}

}  // namespace gv::cpu

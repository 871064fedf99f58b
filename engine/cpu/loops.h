// loops.h: the CPU's strided iteration and dtype dispatch, shared by every CPU kernel.
// strided_for walks an N-d index space for K operands, each with its own element strides
// (0 on broadcast axes), merging axes that are contiguous for all operands (engine/strided.h) and
// handing the kernel runs along the innermost axis. Large loops split into contiguous ranges of the linear
// index across OpenMP threads; each element is computed by exactly one thread, so results do
// not depend on the thread count.
#pragma once
#include <omp.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <vector>

#include "engine/dtype.h"
#include "engine/error.h"
#include "engine/runtime.h"
#include "engine/strided.h"
#include "engine/tensor.h"

namespace gv::cpu {

constexpr int64_t kParallelGrain = 1 << 15;  // elements below which a loop stays on one thread

// Call f(begin, end) over [0, n) split across threads when n * cost is large enough.
template <class F>
void parallel_for(int64_t n, int64_t cost_per_item, F&& f) {
  if (n <= 0) return;
  // The loop bodies pick their instruction set (isa_call); read GENVAE_ISA here, where a bad value
  // can still reach the caller as an error, not inside the parallel region (std::terminate).
  (void)active_isa();
  int nt = omp_get_max_threads();
  if (nt <= 1 || n * cost_per_item < kParallelGrain || omp_in_parallel()) {
    f(int64_t(0), n);
    return;
  }
#pragma omp parallel num_threads(nt)
  {
    int t = omp_get_thread_num(), T = omp_get_num_threads();
    int64_t b = n * t / T, e = n * (t + 1) / T;
    if (b < e) f(b, e);
  }
}

// f(offs, n, inner): for i in [0, n): operand k's element is at offs[k] + i * inner[k]. The index
// math is engine/strided.h's, which the CUDA kernels share.
template <size_t K, class F>
void strided_for(const StridedSpace<int(K)>& s, F&& f) {
  if (s.empty) return;
  std::array<int64_t, K> inner{};
  if (s.nd == 0) {
    std::array<int64_t, K> zero{};
    f(zero, int64_t(1), inner);
    return;
  }
  const int nd = s.nd;
  for (size_t k = 0; k < K; ++k) inner[k] = s.strides[k][nd - 1];
  const int64_t len = s.shape[nd - 1];
  parallel_for(s.numel, 1, [&](int64_t b, int64_t e) {
    int64_t idx[kMaxDims] = {0}, first[K];
    offsets_of<int(K)>(s, b, first, idx);
    std::array<int64_t, K> base{};  // offset of the outer axes (all but the last)
    for (size_t k = 0; k < K; ++k) base[k] = first[k] - idx[nd - 1] * inner[k];
    int64_t pos = b;
    while (pos < e) {
      int64_t i0 = idx[nd - 1], n = std::min(len - i0, e - pos);
      std::array<int64_t, K> offs;
      for (size_t k = 0; k < K; ++k) offs[k] = base[k] + i0 * inner[k];
      f(offs, n, inner);
      pos += n;
      idx[nd - 1] = 0;
      // carry into the outer axes
      for (int d = nd - 2; d >= 0; --d) {
        for (size_t k = 0; k < K; ++k) base[k] += s.strides[k][d];
        if (++idx[d] < s.shape[d]) break;
        for (size_t k = 0; k < K; ++k) base[k] -= s.strides[k][d] * s.shape[d];
        idx[d] = 0;
      }
    }
  });
}

template <size_t K, class F>
void strided_for(const Shape& shape, const std::array<Shape, K>& strides, F&& f) {
  const int64_t* sp[K];
  for (size_t k = 0; k < K; ++k) sp[k] = strides[k].data();
  const StridedSpace<int(K)> s = make_space<int(K)>((int)shape.size(), shape.data(), sp);
  GV_CHECK(!s.too_many_axes, ShapeError, "strided loop: at most {} axes after merging, got shape {}", kMaxDims,
           shape_str(shape));
  strided_for<K>(s, std::forward<F>(f));
}

// The same over TensorRefs of one shape (the first operand's).
template <size_t K, class F>
void strided_for(const std::array<const TensorRef*, K>& ops, F&& f) {
  const int64_t* sp[K];
  for (size_t k = 0; k < K; ++k) sp[k] = ops[k]->strides;
  const StridedSpace<int(K)> s = make_space<int(K)>(ops[0]->ndim, ops[0]->shape, sp);
  GV_CHECK(!s.too_many_axes, ShapeError, "strided loop: at most {} axes after merging", kMaxDims);
  strided_for<K>(s, std::forward<F>(f));
}

// Call f.template operator()<T>() for the float dtypes (f32, f64).
template <class F>
decltype(auto) dispatch_float(DType dt, const char* op, F&& f) {
  switch (dt) {
    case DType::f32: return f.template operator()<float>();
    case DType::f64: return f.template operator()<double>();
    default: GV_THROW(DTypeError, "{}: needs a float32 or float64 tensor, got {}", op, dtype_name(dt));
  }
}
// The same for every dtype.
template <class F>
decltype(auto) dispatch_all(DType dt, const char* op, F&& f) {
  switch (dt) {
    case DType::f32: return f.template operator()<float>();
    case DType::f64: return f.template operator()<double>();
    case DType::i64: return f.template operator()<int64_t>();
  }
  GV_THROW(DTypeError, "{}: unknown dtype", op);
}

}  // namespace gv::cpu

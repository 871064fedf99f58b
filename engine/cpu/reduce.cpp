// reduce.cpp: the CPU backend's reductions over any set of axes (sum, max, argmax), on TensorRefs;
// called by CpuBackend (engine/cpu/cpu_backend.cpp). Float sums accumulate in double, each output
// in a fixed order, so results do not depend on the thread count.
#include <algorithm>
#include <cmath>
#include <limits>

#include "engine/cpu/isa_call.h"
#include "engine/cpu/loops.h"
#include "engine/cpu/reduce_kernels.h"

namespace gv {
namespace {

struct ReducePlan {
  Shape kept_shape, kept_x;  // kept axes: sizes and x's strides
  Shape red_shape, red_x;    // reduced axes: sizes and x's strides
  int64_t red_numel = 1;
};

// The kept and reduced axes of x (reduced[d] marks the reduced ones).
ReducePlan plan(const TensorRef& x, const bool* reduced) {
  ReducePlan p;
  for (int d = 0; d < x.ndim; ++d) {
    if (reduced[d]) {
      p.red_shape.push_back(x.shape[d]);
      p.red_x.push_back(x.strides[d]);
      p.red_numel *= x.shape[d];
    } else {
      p.kept_shape.push_back(x.shape[d]);
      p.kept_x.push_back(x.strides[d]);
    }
  }
  return p;
}

// For each output element o (row-major over the kept axes): out[o] = fin(fold over the reduced
// elements of x of acc = step(acc, v, j)), j the linear index within the reduced block.
template <class T, class Acc, class O, class Step, class Fin>
void reduce_loop(const TensorRef& x, const ReducePlan& p, O* out, Acc init, Step step, Fin fin) {
  const T* px = x.ptr<T>();
  const int64_t nout = shape_numel(p.kept_shape);
  Shape kept_strides = contiguous_strides(p.kept_shape);
  // the reduced axes walked by the inner loop; size-1 axes add nothing. Checked here, outside the
  // parallel region, where an exception can still reach the caller.
  Shape rs, rx;
  for (size_t d = 0; d < p.red_shape.size(); ++d)
    if (p.red_shape[d] != 1) { rs.push_back(p.red_shape[d]); rx.push_back(p.red_x[d]); }
  if (rs.empty()) { rs = {1}; rx = {0}; }
  const int nd = (int)rs.size();
  GV_CHECK(nd <= 16, ShapeError, "reduce: at most 16 reduced axes of size > 1, got {}", nd);
  cpu::parallel_for(nout, std::max<int64_t>(p.red_numel, 1), [&](int64_t b, int64_t e) {
    for (int64_t o = b; o < e; ++o) {
      int64_t base = 0, r = o;
      for (size_t d = 0; d < p.kept_shape.size(); ++d) {
        base += (r / kept_strides[d]) * p.kept_x[d];
        r %= kept_strides[d];
      }
      Acc acc = init;
      int64_t j = 0;
      // the inner walk runs serially: we are already inside one thread's share of the outputs
      int64_t idx[16] = {0};
      int64_t off = base;
      for (int64_t k = 0; k < p.red_numel; ++k) {
        acc = step(acc, px[off], j++);
        for (int d = nd - 1; d >= 0; --d) {
          off += rx[d];
          if (++idx[d] < rs[d]) break;
          off -= rx[d] * rs[d];
          idx[d] = 0;
        }
      }
      out[o] = fin(acc);
    }
  });
}

template <class T> using acc_t = std::conditional_t<std::is_floating_point_v<T>, double, int64_t>;

// Sums of a contiguous float tensor whose axes, after merging neighbours that are both reduced or
// both kept, read as (K, R), (R, K), (R, K, R) or (K, R, K) (R reduced, K kept): the bias
// gradients of linear and conv layers and every per-example or full sum. These loops run along
// contiguous memory (vectorized), where the general loop walks one element at a time. The order
// of the double-precision accumulation is fixed (it does not depend on the thread count).
template <class T>
bool sum_contiguous(const TensorRef& x, const bool* on, T* out) {
  if (!ref_is_contiguous(x) || ref_numel(x) == 0) return false;
  std::vector<int64_t> sizes;
  std::vector<bool> reduced;
  for (int d = 0; d < x.ndim; ++d) {
    if (x.shape[d] == 1) continue;
    if (!reduced.empty() && reduced.back() == on[d]) sizes.back() *= x.shape[d];
    else sizes.push_back(x.shape[d]), reduced.push_back(on[d]);
  }
  // pad to the form (A, R, K, S, ...) with A, K kept and R, S reduced: (k0, r, k1, s)
  int64_t k0 = 1, r = 1, k1 = 1, s = 1;
  size_t i = 0;
  if (i < sizes.size() && !reduced[i]) k0 = sizes[i++];
  if (i < sizes.size() && reduced[i]) r = sizes[i++];
  if (i < sizes.size() && !reduced[i]) k1 = sizes[i++];
  if (i < sizes.size() && reduced[i]) s = sizes[i++];
  if (i != sizes.size() || (k0 > 1 && k1 > 1 && s > 1)) return false;  // (K, R, K, R): not one of ours
  const T* px = x.ptr<T>();
  if (k1 == 1) {
    // (K, R): out[a] = sum of the contiguous run a (r * s elements)
    const int64_t n = r * s;
    cpu::parallel_for(k0, n, [&](int64_t b, int64_t e) {
      cpu::isa_call([&] {
        for (int64_t a = b; a < e; ++a) {
          const T* row = px + a * n;
          double acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
          int64_t j = 0;
          for (; j + 8 <= n; j += 8)
            for (int u = 0; u < 8; ++u) acc[u] += double(row[j + u]);
          double tail = 0;
          for (; j < n; ++j) tail += double(row[j]);
          out[a] = T(((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7])) + tail);
        }
      });
    });
    return true;
  }
  // (A, R, K, S) with A = 1 or S = 1: out[a, k] = sum over r, s of x[a, r, k, s]
  cpu::parallel_for(k0 * k1, r * s, [&](int64_t b, int64_t e) {
    cpu::isa_call([&] {
      std::vector<double> acc;
      for (int64_t a = b / k1; a * k1 < e; ++a) {
        const int64_t lo = std::max(b, a * k1) - a * k1, hi = std::min(e, (a + 1) * k1) - a * k1;
        acc.assign(size_t(hi - lo), 0.0);
        const T* base = px + a * r * k1 * s;
        for (int64_t ri = 0; ri < r; ++ri) {
          const T* row = base + ri * k1 * s;
          if (s == 1)
            for (int64_t k = lo; k < hi; ++k) acc[k - lo] += double(row[k]);
          else
            for (int64_t k = lo; k < hi; ++k) {
              const T* run = row + k * s;
              double t = 0;
              for (int64_t j = 0; j < s; ++j) t += double(run[j]);
              acc[k - lo] += t;
            }
        }
        for (int64_t k = lo; k < hi; ++k) out[a * k1 + k] = T(acc[k - lo]);
      }
    });
  });
  return true;
}

}  // namespace

namespace cpu {

void reduce(ReduceOp op, const TensorRef& out, const TensorRef& x, const bool* reduced) {
  const ReducePlan p = plan(x, reduced);
  switch (op) {
    case ReduceOp::sum:
      if (is_floating(x.dtype) &&
          dispatch_float(x.dtype, "sum", [&]<class T>() { return sum_contiguous<T>(x, reduced, out.ptr<T>()); }))
        return;
      dispatch_all(x.dtype, "sum", [&]<class T>() {
        using A = acc_t<T>;
        reduce_loop<T, A>(x, p, out.ptr<T>(), A(0), [](A a, T v, int64_t) { return a + A(v); },
                          [](A a) { return T(a); });
      });
      return;
    case ReduceOp::max:
      dispatch_all(x.dtype, "max", [&]<class T>() {
        T lowest = std::numeric_limits<T>::has_infinity ? -std::numeric_limits<T>::infinity()
                                                        : std::numeric_limits<T>::lowest();
        // NaN wins: once seen it stays
        reduce_loop<T, T>(x, p, out.ptr<T>(), lowest,
                          [](T a, T v, int64_t) {
                            if (a != a) return a;
                            return (v > a || v != v) ? v : a;
                          },
                          [](T a) { return a; });
      });
      return;
    case ReduceOp::argmax:
      dispatch_all(x.dtype, "argmax", [&]<class T>() {
        struct A {
          T v;
          int64_t i;
        };
        reduce_loop<T, A>(x, p, out.ptr<int64_t>(), A{T(0), -1},
                          [](A a, T v, int64_t j) {
                            // first max on ties; NaN wins as in max(): the first NaN is the answer
                            if (a.i >= 0 && a.v != a.v) return a;
                            return (a.i < 0 || v > a.v || v != v) ? A{v, j} : a;
                          },
                          [](A a) { return a.i; });
      });
      return;
  }
}

}  // namespace cpu
}  // namespace gv

// reduce.cpp: reductions over any set of axes (sum, mean, max, argmax), and the ones composed
// from them (logsumexp, softmax, log_softmax, sum_to). Float sums accumulate in double.
#include <algorithm>
#include <cmath>
#include <limits>

#include "engine/cpu/isa_call.h"
#include "engine/cpu/loops.h"
#include "engine/ops.h"

namespace gv {
namespace {

// Sorted, unique, non-negative axes; empty means all axes.
std::vector<int64_t> norm_axes(const Tensor& x, const Axes& axes, const char* op) {
  std::vector<bool> on(x.dim(), axes.empty());
  for (int64_t a : axes) {
    int64_t d = x.norm_axis(a, op);
    GV_CHECK(!on[d], IndexError, "{}: axis {} given twice in {}", op, a, shape_str(axes));
    on[d] = true;
  }
  std::vector<int64_t> r;
  for (int64_t d = 0; d < x.dim(); ++d)
    if (on[d]) r.push_back(d);
  return r;
}

struct ReducePlan {
  Shape out_shape;           // with or without the reduced axes, as keepdim says
  Shape kept_shape, kept_x;  // kept axes: sizes and x's strides
  Shape red_shape, red_x;    // reduced axes: sizes and x's strides
  int64_t red_numel = 1;
};

ReducePlan plan(const Tensor& x, const std::vector<int64_t>& red, bool keepdim) {
  ReducePlan p;
  std::vector<bool> on(x.dim(), false);
  for (int64_t d : red) on[d] = true;
  for (int64_t d = 0; d < x.dim(); ++d) {
    if (on[d]) {
      p.red_shape.push_back(x.shape()[d]);
      p.red_x.push_back(x.strides()[d]);
      p.red_numel *= x.shape()[d];
      if (keepdim) p.out_shape.push_back(1);
    } else {
      p.kept_shape.push_back(x.shape()[d]);
      p.kept_x.push_back(x.strides()[d]);
      p.out_shape.push_back(x.shape()[d]);
    }
  }
  return p;
}

// For each output element o (row-major over the kept axes): out[o] = fin(fold over the reduced
// elements of x of acc = step(acc, v, j)), j the linear index within the reduced block.
template <class T, class Acc, class O, class Step, class Fin>
void reduce_loop(const Tensor& x, const ReducePlan& p, O* out, Acc init, Step step, Fin fin) {
  const T* px = x.data<T>();
  const int64_t nout = shape_numel(p.kept_shape);
  Shape kept_strides = contiguous_strides(p.kept_shape);
  // the reduced axes walked by the inner loop; size-1 axes add nothing. Checked here, outside the
  // parallel region, where an exception can still reach the caller.
  Shape rs, rx;
  for (size_t d = 0; d < p.red_shape.size(); ++d)
    if (p.red_shape[d] != 1) { rs.push_back(p.red_shape[d]); rx.push_back(p.red_x[d]); }
  if (rs.empty()) { rs = {1}; rx = {0}; }
  const int nd = (int)rs.size();
  GV_CHECK(nd <= 16, ShapeError, "reduce: at most 16 reduced axes of size > 1, got {} (shape {})", nd,
           shape_str(x.shape()));
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
bool sum_contiguous(const Tensor& x, const std::vector<int64_t>& red, T* out) {
  if (!x.is_contiguous() || x.numel() == 0) return false;
  std::vector<bool> on(x.dim(), false);
  for (int64_t d : red) on[d] = true;
  std::vector<int64_t> sizes;
  std::vector<bool> reduced;
  for (int64_t d = 0; d < x.dim(); ++d) {
    if (x.shape()[d] == 1) continue;
    if (!reduced.empty() && reduced.back() == on[d]) sizes.back() *= x.shape()[d];
    else sizes.push_back(x.shape()[d]), reduced.push_back(on[d]);
  }
  // pad to the form (A, R, K, S, ...) with A, K kept and R, S reduced: (k0, r, k1, s)
  int64_t k0 = 1, r = 1, k1 = 1, s = 1;
  size_t i = 0;
  if (i < sizes.size() && !reduced[i]) k0 = sizes[i++];
  if (i < sizes.size() && reduced[i]) r = sizes[i++];
  if (i < sizes.size() && !reduced[i]) k1 = sizes[i++];
  if (i < sizes.size() && reduced[i]) s = sizes[i++];
  if (i != sizes.size() || (k0 > 1 && k1 > 1 && s > 1)) return false;  // (K, R, K, R): not one of ours
  const T* px = x.data<T>();
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

Tensor sum(const Tensor& x, const Axes& axes, bool keepdim) {
  GV_CHECK(x.device().is_cpu(), DeviceError, "sum: not implemented on {} yet", x.device().str());
  std::vector<int64_t> red = norm_axes(x, axes, "sum");
  ReducePlan p = plan(x, red, keepdim);
  Tensor out = Tensor::empty(p.out_shape, x.dtype());
  if (is_floating(x.dtype())) {
    bool done = cpu::dispatch_float(x.dtype(), "sum", [&]<class T>() { return sum_contiguous<T>(x, red, out.data<T>()); });
    if (done) return out;
  }
  cpu::dispatch_all(x.dtype(), "sum", [&]<class T>() {
    using A = acc_t<T>;
    reduce_loop<T, A>(x, p, out.data<T>(), A(0), [](A a, T v, int64_t) { return a + A(v); },
                      [](A a) { return T(a); });
  });
  return out;
}

Tensor mean(const Tensor& x, const Axes& axes, bool keepdim) {
  GV_CHECK(is_floating(x.dtype()), DTypeError, "mean: needs a float tensor, got {}", x.str());
  ReducePlan p = plan(x, norm_axes(x, axes, "mean"), keepdim);
  GV_CHECK(p.red_numel > 0, ShapeError, "mean: reducing an empty axis of shape {}", shape_str(x.shape()));
  return div(sum(x, axes, keepdim), double(p.red_numel));
}

Tensor max(const Tensor& x, const Axes& axes, bool keepdim) {
  GV_CHECK(x.device().is_cpu(), DeviceError, "max: not implemented on {} yet", x.device().str());
  ReducePlan p = plan(x, norm_axes(x, axes, "max"), keepdim);
  GV_CHECK(p.red_numel > 0, ShapeError, "max: reducing an empty axis of shape {}", shape_str(x.shape()));
  Tensor out = Tensor::empty(p.out_shape, x.dtype());
  cpu::dispatch_all(x.dtype(), "max", [&]<class T>() {
    T lowest = std::numeric_limits<T>::has_infinity ? -std::numeric_limits<T>::infinity()
                                                    : std::numeric_limits<T>::lowest();
    // NaN wins: once seen it stays
    reduce_loop<T, T>(x, p, out.data<T>(), lowest,
                      [](T a, T v, int64_t) {
                        if (a != a) return a;
                        return (v > a || v != v) ? v : a;
                      },
                      [](T a) { return a; });
  });
  return out;
}

Tensor argmax(const Tensor& x, int64_t axis, bool keepdim) {
  GV_CHECK(x.device().is_cpu(), DeviceError, "argmax: not implemented on {} yet", x.device().str());
  int64_t ax = x.norm_axis(axis, "argmax");
  ReducePlan p = plan(x, {ax}, keepdim);
  GV_CHECK(p.red_numel > 0, ShapeError, "argmax: empty axis {} of shape {}", axis, shape_str(x.shape()));
  Tensor out = Tensor::empty(p.out_shape, DType::i64);
  cpu::dispatch_all(x.dtype(), "argmax", [&]<class T>() {
    struct A { T v; int64_t i; };
    reduce_loop<T, A>(x, p, out.data<int64_t>(), A{T(0), -1},
                      [](A a, T v, int64_t j) {
                        // first max on ties; NaN wins as in max(): the first NaN is the answer
                        if (a.i >= 0 && a.v != a.v) return a;
                        return (a.i < 0 || v > a.v || v != v) ? A{v, j} : a;
                      },
                      [](A a) { return a.i; });
  });
  return out;
}

// log sum exp(x) = m + log sum exp(x - m), m the max (taken as 0 where it is infinite).
Tensor logsumexp(const Tensor& x, const Axes& axes, bool keepdim) {
  GV_CHECK(is_floating(x.dtype()), DTypeError, "logsumexp: needs a float tensor, got {}", x.str());
  Tensor m = max(x, axes, true);
  Tensor mf = where(eq(abs(m), Tensor::scalar(INFINITY, m.dtype())), Tensor::scalar(0, m.dtype()), m);
  Tensor r = add(log(sum(exp(sub(x, mf)), axes, true)), mf);
  if (keepdim) return r;
  ReducePlan p = plan(x, norm_axes(x, axes, "logsumexp"), false);
  return r.reshape(p.out_shape);
}

Tensor log_softmax(const Tensor& x, int64_t axis) {
  return sub(x, logsumexp(x, {axis}, true));
}
Tensor softmax(const Tensor& x, int64_t axis) { return exp(log_softmax(x, axis)); }

Tensor sum_to(const Tensor& x, const Shape& shape) {
  if (x.shape() == shape) return x;
  GV_CHECK((int64_t)shape.size() <= x.dim(), ShapeError, "sum_to: cannot sum shape {} to {}",
           shape_str(x.shape()), shape_str(shape));
  int64_t lead = x.dim() - (int64_t)shape.size();
  Axes axes;
  for (int64_t d = 0; d < x.dim(); ++d) {
    if (d < lead) { axes.push_back(d); continue; }
    int64_t want = shape[d - lead];
    if (want == 1 && x.shape()[d] != 1) axes.push_back(d);
    else GV_CHECK(want == x.shape()[d], ShapeError, "sum_to: cannot sum shape {} to {}",
                  shape_str(x.shape()), shape_str(shape));
  }
  return sum(x, axes, true).reshape(shape);
}

}  // namespace gv

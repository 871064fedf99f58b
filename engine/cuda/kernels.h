// kernels.h: the per-thread bodies of the CUDA backend's kernels, as plain host-device functions
// of the thread's place in the grid (GV_HD: __host__ __device__ under nvcc, inline C++ otherwise).
//
// Each __global__ kernel in engine/cuda/*.cu is one line that builds a Grid from blockIdx,
// threadIdx, blockDim and gridDim and calls a body here. tests/engine/kernel_harness.h runs the
// same bodies on the CPU over the same grid (thread by thread; the shared-memory reductions one
// block at a time, phase by phase, as __syncthreads separates them), so the CPU tests check the
// indexing, bounds, broadcasting and reduction order of the code the GPU runs. The launch shapes
// are chosen here too (launch_for), so the harness runs the grids the GPU gets.
//
// Determinism: no body uses atomics on data. Every output element is written by one thread, sums
// are formed in a fixed order (scatter_add and col2im in the CPU's order; reductions in a fixed
// tree per block), so a kernel's result depends only on its inputs and its launch shape, and the
// launch shape only on the problem's shape.
#pragma once
#include <cmath>
#include <cstdint>
#include <limits>
#include <type_traits>

#include "engine/functors.h"
#include "engine/kernel_args.h"
#include "engine/macros.h"
#include "engine/philox.h"
#include "engine/strided.h"

namespace gv::kern {

// ---- the grid ------------------------------------------------------------------------------------
// A thread's place in a 1-D grid.
struct Grid {
  int64_t block, thread, block_dim, grid_dim;
  GV_HD int64_t first() const { return block * block_dim + thread; }
  GV_HD int64_t stride() const { return block_dim * grid_dim; }
};

struct Launch {
  int64_t blocks, threads;
};
constexpr int64_t kThreads = 256;
constexpr int64_t kBlocksPerSM = 16;  // enough resident blocks to hide latency; loops cover the rest

// A grid-stride launch for n work items on a GPU of `sms` multiprocessors.
inline Launch launch_for(int64_t n, int64_t sms) {
  int64_t want = (n + kThreads - 1) / kThreads;
  int64_t cap = (sms > 0 ? sms : 1) * kBlocksPerSM;
  return {want < 1 ? 1 : (want < cap ? want : cap), kThreads};
}

// ---- errors a kernel finds ----------------------------------------------------------------------
// The first bad index a kernel meets is recorded here (device memory), and the host raises it as
// an IndexError at its next synchronisation (engine/cuda/cuda_backend.cu), as CUDA reports a
// device-side assert: no host round trip in the step itself. The element gets NaN (or 0 for int64).
struct ErrorWord {
  unsigned int code;  // 0: none; else one of the codes below
  int axis;
  int64_t position, value, extent;
};
enum ErrorCode : unsigned int { kErrNone = 0, kErrGather = 1, kErrScatterAdd = 2, kErrOneHot = 3, kErrBernoulli = 4 };

GV_HD void report(ErrorWord* w, unsigned int code, int axis, int64_t position, int64_t value, int64_t extent) {
#ifdef __CUDA_ARCH__
  if (atomicCAS(&w->code, 0u, 0xFFFFFFFFu) != 0u) return;  // an earlier error won
#else
  if (w->code != 0u) return;
#endif
  w->axis = axis;
  w->position = position;
  w->value = value;
  w->extent = extent;
#ifdef __CUDA_ARCH__
  __threadfence();
  atomicExch(&w->code, code);
#else
  w->code = code;
#endif
}

template <class T>
GV_HD T bad_value() {
  if constexpr (std::is_floating_point_v<T>) return std::numeric_limits<T>::quiet_NaN();
  else return T(0);
}

// ---- element-wise: one thread per output element, grid-stride ------------------------------------
// op(offs) for each element of the space; offs[k] is operand k's element offset.
template <int K, class Op>
GV_HD void strided_body(const Grid& g, const StridedSpace<K>& s, const Op& op) {
  if (s.empty) return;
  for (int64_t i = g.first(); i < s.numel; i += g.stride()) {
    int64_t offs[K], idx[kMaxDims];
    offsets_of<K>(s, i, offs, idx);
    op(offs);
  }
}

template <class F, class T>
struct UnaryApply {  // operands: out, x
  T* y;
  const T* x;
  T a, b;
  GV_HD void operator()(const int64_t* o) const { y[o[0]] = F::template f<T>(x[o[1]], a, b); }
};
template <class F, class T>
struct UnaryBackApply {  // operands: gx, x, y, gout
  T* gx;
  const T *x, *y, *g;
  T a, b;
  GV_HD void operator()(const int64_t* o) const { gx[o[0]] = g[o[3]] * F::template df<T>(x[o[1]], y[o[2]], a, b); }
};
template <class F, class T>
struct BinaryApply {  // operands: out, a, b
  T* out;
  const T *a, *b;
  GV_HD void operator()(const int64_t* o) const { out[o[0]] = F::template f<T>(a[o[1]], b[o[2]]); }
};
template <class T, class C>
struct WhereApply {  // operands: out, cond, a, b
  T* out;
  const C* cond;
  const T *a, *b;
  GV_HD void operator()(const int64_t* o) const { out[o[0]] = cond[o[1]] != C(0) ? a[o[2]] : b[o[3]]; }
};
template <class T>
struct GateApply {  // operands: out, a, b
  T* out;
  const T *a, *b;
  GV_HD void operator()(const int64_t* o) const { out[o[0]] = GateF::f<T>(a[o[1]], b[o[2]]); }
};
template <class T>
struct GateBackApply {  // operands: ga, gb, a, b, gout
  T *ga, *gb;
  const T *a, *b, *g;
  GV_HD void operator()(const int64_t* o) const { GateF::df<T>(a[o[2]], b[o[3]], g[o[4]], ga[o[0]], gb[o[1]]); }
};
template <class D, class S>
struct CopyApply {  // operands: dst, src
  D* dst;
  const S* src;
  GV_HD void operator()(const int64_t* o) const { dst[o[0]] = D(src[o[1]]); }
};
template <class T>
struct FillApply {  // operands: dst
  T* dst;
  T v;
  GV_HD void operator()(const int64_t* o) const { dst[o[0]] = v; }
};

// The offset of element i (row-major over shape[0..nd)) of an operand with these strides.
GV_HD int64_t offset_at(int64_t i, int nd, const int64_t* shape, const int64_t* stride) {
  int64_t off = 0;
  for (int d = nd - 1; d >= 0; --d) {
    off += (i % shape[d]) * stride[d];
    i /= shape[d];
  }
  return off;
}

// ---- reductions ---------------------------------------------------------------------------------
// x's axes split into the kept ones (row-major over the contiguous output) and the reduced ones
// (j, the index within the reduced block, row-major over them as the CPU counts it).
struct ReduceGeom {
  int nk = 0, nr = 0;
  int64_t kshape[kMaxDims] = {}, kstride[kMaxDims] = {};
  int64_t rshape[kMaxDims] = {}, rstride[kMaxDims] = {};
  int64_t nout = 1, nred = 1;
  GV_HD int64_t out_base(int64_t o) const { return offset_at(o, nk, kshape, kstride); }
  GV_HD int64_t red_offset(int64_t j) const { return offset_at(j, nr, rshape, rstride); }
};

template <class T> using sum_acc_t = std::conditional_t<std::is_floating_point_v<T>, double, int64_t>;

template <class T>
struct SumR {  // float sums in double, as the CPU's
  using Acc = sum_acc_t<T>;
  using Out = T;
  GV_HD static Acc init() { return Acc(0); }
  GV_HD static Acc step(Acc a, T v, int64_t) { return a + Acc(v); }
  GV_HD static Acc combine(Acc a, Acc b) { return a + b; }
  GV_HD static Out fin(Acc a) { return T(a); }
};
template <class T>
struct MaxR {  // NaN wins
  using Acc = T;
  using Out = T;
  GV_HD static Acc init() {
    if constexpr (std::is_floating_point_v<T>) return -std::numeric_limits<T>::infinity();
    else return std::numeric_limits<T>::lowest();
  }
  GV_HD static Acc step(Acc a, T v, int64_t) { return a != a ? a : ((v > a || v != v) ? v : a); }
  GV_HD static Acc combine(Acc a, Acc b) { return step(a, b, 0); }
  GV_HD static Out fin(Acc a) { return a; }
};
template <class T>
struct ArgmaxR {  // the first maximum; the first NaN wins. Partials cover interleaved j, so
                  // combine decides ties by index.
  struct Acc {
    T v;
    int64_t i;
  };
  using Out = int64_t;
  GV_HD static Acc init() { return Acc{T(0), -1}; }
  GV_HD static Acc step(Acc a, T v, int64_t j) {
    if (a.i >= 0 && a.v != a.v) return a;
    return (a.i < 0 || v > a.v || v != v) ? Acc{v, j} : a;
  }
  GV_HD static Acc combine(Acc a, Acc b) {
    if (a.i < 0) return b;
    if (b.i < 0) return a;
    const bool an = a.v != a.v, bn = b.v != b.v;
    if (an || bn) return an && bn ? (a.i < b.i ? a : b) : (an ? a : b);
    if (a.v != b.v) return a.v > b.v ? a : b;
    return a.i < b.i ? a : b;
  }
  GV_HD static Out fin(Acc a) { return a.i; }
};

// The serial form, for few reduced elements per output: one thread folds one output, in j order
// (the CPU's order, so the same bits as the CPU's general loop).
template <class R, class T>
GV_HD void reduce_serial_body(const Grid& g, const ReduceGeom& r, const T* x, typename R::Out* out) {
  for (int64_t o = g.first(); o < r.nout; o += g.stride()) {
    const int64_t base = r.out_base(o);
    typename R::Acc a = R::init();
    for (int64_t j = 0; j < r.nred; ++j) a = R::step(a, x[base + r.red_offset(j)], j);
    out[o] = R::fin(a);
  }
}

// The block form: one block per output (grid-stride over outputs). Phase 1: thread t folds
// j = t, t + block_dim, ... into sh[t]; phase 2: the tree, sh[t] = combine(sh[t], sh[t + s]) for
// s = block_dim/2, ..., 1, a barrier after each step; then thread 0 stores sh[0].
template <class R, class T>
GV_HD typename R::Acc reduce_partial(const ReduceGeom& r, const T* x, int64_t o, int64_t t, int64_t block_dim) {
  const int64_t base = r.out_base(o);
  typename R::Acc a = R::init();
  for (int64_t j = t; j < r.nred; j += block_dim) a = R::step(a, x[base + r.red_offset(j)], j);
  return a;
}
template <class R>
GV_HD void reduce_tree_step(typename R::Acc* sh, int64_t t, int64_t s) {
  if (t < s) sh[t] = R::combine(sh[t], sh[t + s]);
}
// The block form pays when each output has many elements to reduce.
constexpr int64_t kSerialReduceMax = 64;
// Threads per block of the block form: a power of two (the tree needs it), at most kThreads.
inline int64_t reduce_block_threads(int64_t nred) {
  int64_t t = 32;
  while (t < kThreads && t < nred) t *= 2;
  return t;
}

// ---- gather, scatter_add, one_hot ---------------------------------------------------------------
struct IndexGeom {  // the index tensor's shape and the operands' strides along it
  int nd = 0;
  int64_t shape[kMaxDims] = {};
  int64_t istride[kMaxDims] = {};  // index
  int64_t xstride[kMaxDims] = {};  // gather: x; scatter_add: out
  int64_t sstride[kMaxDims] = {};  // scatter_add: src
  int axis = 0;
  int64_t extent = 0;  // x's (or out's) size along the axis
  int64_t numel = 1;
};

// out[p] = x[c with c[axis] = index[c]] for p the row-major position of c in index's shape.
template <class T>
GV_HD void gather_body(const Grid& g, const IndexGeom& ig, const T* x, const int64_t* index, T* out, ErrorWord* err) {
  for (int64_t p = g.first(); p < ig.numel; p += g.stride()) {
    int64_t q = p, ioff = 0, xoff = 0;
    for (int d = ig.nd - 1; d >= 0; --d) {
      const int64_t c = q % ig.shape[d];
      q /= ig.shape[d];
      ioff += c * ig.istride[d];
      if (d != ig.axis) xoff += c * ig.xstride[d];
    }
    const int64_t v = index[ioff];
    if (v < 0 || v >= ig.extent) {
      report(err, kErrGather, ig.axis, p, v, ig.extent);
      out[p] = bad_value<T>();
      continue;
    }
    out[p] = x[xoff + v * ig.xstride[ig.axis]];
  }
}

// One thread per line of index along the axis (every other coordinate fixed): it adds that
// line's src values into out in index order. Lines write disjoint parts of out (they differ off
// the axis), and each element of out gets its terms in the CPU's order: the same bits.
template <class T>
GV_HD void scatter_add_body(const Grid& g, const IndexGeom& ig, const int64_t* index, const T* src, T* out,
                            ErrorWord* err) {
  const int64_t len = ig.shape[ig.axis];
  if (len == 0) return;
  const int64_t lines = ig.numel / len;
  int64_t step = 1;  // p's step along the axis
  for (int d = ig.nd - 1; d > ig.axis; --d) step *= ig.shape[d];
  for (int64_t line = g.first(); line < lines; line += g.stride()) {
    int64_t q = line, ioff = 0, ooff = 0, soff = 0, pos = 0, mult = 1;  // pos: p of the line's first element
    for (int d = ig.nd - 1; d >= 0; --d) {
      if (d == ig.axis) {
        mult *= ig.shape[d];
        continue;
      }
      const int64_t c = q % ig.shape[d];
      q /= ig.shape[d];
      ioff += c * ig.istride[d];
      ooff += c * ig.xstride[d];
      soff += c * ig.sstride[d];
      pos += c * mult;
      mult *= ig.shape[d];
    }
    for (int64_t j = 0; j < len; ++j) {
      const int64_t v = index[ioff + j * ig.istride[ig.axis]];
      if (v < 0 || v >= ig.extent) {
        report(err, kErrScatterAdd, ig.axis, pos + j * step, v, ig.extent);
        continue;
      }
      out[ooff + v * ig.xstride[ig.axis]] += src[soff + j * ig.sstride[ig.axis]];
    }
  }
}

// out (zeros, index's shape + (classes)): out[p][index[p]] = 1.
template <class T>
GV_HD void one_hot_body(const Grid& g, const IndexGeom& ig, const int64_t* index, int64_t classes, T* out,
                        ErrorWord* err) {
  for (int64_t p = g.first(); p < ig.numel; p += g.stride()) {
    const int64_t v = index[offset_at(p, ig.nd, ig.shape, ig.istride)];
    if (v < 0 || v >= classes) {
      report(err, kErrOneHot, -1, p, v, classes);
      continue;
    }
    out[p * classes + v] = T(1);
  }
}

// ---- random: one thread per Philox block (engine/random.cpp's contract; the words and the
// Box-Muller transform are engine/philox.h's, which the CPU's kernels use too) -------------------
// The float nearest to v, kept inside [lo, hi] (rounding double -> float can step just outside).
template <class T>
GV_HD T to_range(double v, double lo, double hi) {
  v = v < lo ? lo : (v > hi ? hi : v);
  T t = T(v);
  if constexpr (std::is_same_v<T, float>) {
    if (double(t) > hi) t = std::nextafter(t, float(lo));
    if (double(t) < lo) t = std::nextafter(t, float(hi));
  }
  return t;
}

enum class Draw { uniform, normal, bernoulli };
template <class T>
struct DrawArgs {
  T* out;
  const T* p;  // bernoulli's probabilities
  int64_t n;
  uint64_t seed, start;
  double a, b;  // uniform: lo, hi; normal: mean, std
  ErrorWord* err = nullptr;  // bernoulli: where a p outside [0, 1] is recorded
};

// Block blk of the draw fills elements 4 blk .. 4 blk + 3.
template <Draw D, class T>
GV_HD void random_body(const Grid& g, const DrawArgs<T>& r) {
  const int64_t nblocks = (r.n + 3) / 4;
  for (int64_t blk = g.first(); blk < nblocks; blk += g.stride()) {
    uint32_t w[4];
    philox_words(r.seed, r.start + uint64_t(blk), w);
    const int64_t i0 = 4 * blk, m = r.n - i0 < 4 ? r.n - i0 : 4;
    if constexpr (D == Draw::uniform) {
      for (int64_t k = 0; k < m; ++k) r.out[i0 + k] = to_range<T>(r.a + (r.b - r.a) * Philox::to_unit(w[k]), r.a, r.b);
    } else if constexpr (D == Draw::normal) {
      for (int64_t k = 0; k < m; k += 2) {
        double z0, z1;
        box_muller(w[k], w[k + 1], z0, z1);
        r.out[i0 + k] = T(r.a + r.b * z0);
        if (k + 1 < m) r.out[i0 + k + 1] = T(r.a + r.b * z1);
      }
    } else {
      for (int64_t k = 0; k < m; ++k) {
        const double pk = double(r.p[i0 + k]);
        if (!(pk >= 0.0 && pk <= 1.0)) {  // NaN too: on a GPU the range is checked here, not on the host
          if (r.err) report(r.err, kErrBernoulli, -1, i0 + k, 0, 0);
          r.out[i0 + k] = bad_value<T>();
          continue;
        }
        r.out[i0 + k] = Philox::to_unit(w[k]) <= pk ? T(1) : T(0);
      }
    }
  }
}

// ---- convolution: im2col, col2im and the reorders around the GEMM (engine/cpu/conv.cpp's layout) --
// A chunk of m images (m, C, H, W); col (K, m*L) with K = (c, ki, kj), column (n, l), l = (oh, ow).
struct ConvArgs : ConvShape {
  int64_t m;  // images in the chunk
  GV_HD int64_t L() const { return Ho * Wo; }
};

// col[(k m + n) L + l] = x[n][c][oh sh - ph + ki dh][ow sw - pw + kj dw], 0 in the padding.
template <class T>
GV_HD void im2col_body(const Grid& g, const ConvArgs& a, const T* x, T* col) {
  const int64_t L = a.L(), total = a.C * a.kh * a.kw * a.m * L;
  for (int64_t e = g.first(); e < total; e += g.stride()) {
    const int64_t l = e % L, n = (e / L) % a.m, k = e / (L * a.m);
    const int64_t kj = k % a.kw, ki = (k / a.kw) % a.kh, c = k / (a.kw * a.kh);
    const int64_t h = (l / a.Wo) * a.sh - a.ph + ki * a.dh, w = (l % a.Wo) * a.sw - a.pw + kj * a.dw;
    col[e] = (h >= 0 && h < a.H && w >= 0 && w < a.W) ? x[((n * a.C + c) * a.H + h) * a.W + w] : T(0);
  }
}

// img[n][c][h][w] = init[c] (or 0) + the col entries that im2col took from (h, w), in (ki, kj)
// order: the CPU's order, so the same bits. One thread per image element: no atomics.
template <class T>
GV_HD void col2im_body(const Grid& g, const ConvArgs& a, const T* col, const T* init, T* img) {
  const int64_t L = a.L(), total = a.m * a.C * a.H * a.W;
  for (int64_t e = g.first(); e < total; e += g.stride()) {
    const int64_t w = e % a.W, h = (e / a.W) % a.H, c = (e / (a.W * a.H)) % a.C, n = e / (a.W * a.H * a.C);
    T acc = init ? init[c] : T(0);
    for (int64_t ki = 0; ki < a.kh; ++ki) {
      const int64_t hp = h + a.ph - ki * a.dh;
      if (hp < 0 || hp % a.sh != 0 || hp / a.sh >= a.Ho) continue;
      for (int64_t kj = 0; kj < a.kw; ++kj) {
        const int64_t wp = w + a.pw - kj * a.dw;
        if (wp < 0 || wp % a.sw != 0 || wp / a.sw >= a.Wo) continue;
        const int64_t k = (c * a.kh + ki) * a.kw + kj;
        acc += col[(k * a.m + n) * L + (hp / a.sh) * a.Wo + wp / a.sw];
      }
    }
    img[e] = acc;
  }
}

// y (O, m L) -> out (m, O, L) + bias[o]
template <class T>
GV_HD void unpack_rows_body(const Grid& g, const T* y, int64_t m, int64_t O, int64_t L, const T* bias, T* out) {
  const int64_t total = m * O * L;
  for (int64_t e = g.first(); e < total; e += g.stride()) {
    const int64_t l = e % L, o = (e / L) % O, n = e / (L * O);
    out[e] = y[(o * m + n) * L + l] + (bias ? bias[o] : T(0));
  }
}
// gout (m, O, L) -> G (O, m L)
template <class T>
GV_HD void pack_rows_body(const Grid& g, const T* gout, int64_t m, int64_t O, int64_t L, T* G) {
  const int64_t total = m * O * L;
  for (int64_t e = g.first(); e < total; e += g.stride()) {
    const int64_t l = e % L, n = (e / L) % m, o = e / (L * m);
    G[e] = gout[(n * O + o) * L + l];
  }
}

}  // namespace gv::kern

// ---- plans: from TensorRefs to the bodies' arguments (host code, shared by the CUDA launchers and
// the CPU harness, so the harness checks the plans too) ------------------------------------------
namespace gv::kern {

// The index space of K operands of ops[0]'s shape (make_space merges what it can).
template <int K>
inline StridedSpace<K> space_of(const TensorRef* const* ops) {
  const int64_t* st[K];
  for (int k = 0; k < K; ++k) st[k] = ops[k]->strides;
  return make_space<K>(ops[0]->ndim, ops[0]->shape, st);
}

// x's kept and reduced axes (size-1 axes dropped); nr or nk may be 0.
inline ReduceGeom reduce_geom(const TensorRef& x, const bool* reduced) {
  ReduceGeom r;
  for (int d = 0; d < x.ndim; ++d) {
    if (x.shape[d] == 1) continue;
    if (reduced[d]) {
      r.rshape[r.nr] = x.shape[d];
      r.rstride[r.nr++] = x.strides[d];
      r.nred *= x.shape[d];
    } else {
      r.kshape[r.nk] = x.shape[d];
      r.kstride[r.nk++] = x.strides[d];
      r.nout *= x.shape[d];
    }
  }
  for (int d = 0; d < x.ndim; ++d)
    if (x.shape[d] == 0) (reduced[d] ? r.nred : r.nout) = 0;
  return r;
}

// index's shape with its strides, and `other`'s (x for gather, out for scatter_add) and src's.
inline IndexGeom index_geom(const TensorRef& index, const TensorRef* other, const TensorRef* src, int axis,
                            int64_t extent) {
  IndexGeom ig;
  ig.nd = index.ndim;
  ig.axis = axis;
  ig.extent = extent;
  for (int d = 0; d < index.ndim; ++d) {
    ig.shape[d] = index.shape[d];
    ig.istride[d] = index.strides[d];
    ig.xstride[d] = other ? other->strides[d] : 0;
    ig.sstride[d] = src ? src->strides[d] : 0;
    ig.numel *= index.shape[d];
  }
  return ig;
}

}  // namespace gv::kern

namespace gv::kern {

// How a reduction is launched: the serial form (one thread per output) for few elements per
// output, else the block form (one block of reduce_block_threads per output, grid-stride).
struct ReduceLaunch {
  bool serial;
  Launch launch;
};
inline ReduceLaunch reduce_launch(int64_t nout, int64_t nred, int64_t sms) {
  if (nred <= kSerialReduceMax) return {true, launch_for(nout, sms)};
  const int64_t cap = (sms > 0 ? sms : 1) * kBlocksPerSM;
  return {false, {nout < cap ? (nout < 1 ? 1 : nout) : cap, reduce_block_threads(nred)}};
}

}  // namespace gv::kern

namespace gv::kern {

// How cuBLAS (column-major) reads the (rows x cols) matrix X with X[i, j] at i * ri + j * rj
// (element strides): as it lies (ld = rj) when ri == 1, transposed by flag (ld = ri) when rj == 1,
// else packed first into a column-major (rows x cols) copy (ld = rows). cuBLAS needs ld >= the
// stored matrix's row count; a size-1 axis's stride is never read.
struct BlasOperand {
  bool packed, trans;
  int64_t ld;
};
inline BlasOperand blas_operand(int64_t rows, int64_t cols, int64_t ri, int64_t rj) {
  const int64_t r1 = rows > 1 ? rows : 1, c1 = cols > 1 ? cols : 1;
  if ((ri == 1 || rows == 1) && (cols == 1 || rj >= r1)) return {false, false, cols == 1 ? r1 : rj};
  if ((rj == 1 || cols == 1) && (rows == 1 || ri >= c1)) return {false, true, rows == 1 ? c1 : ri};
  return {true, false, r1};
}

}  // namespace gv::kern


// gemm_kernels.cpp: the GEMM micro-kernels. This one file is compiled three times (see
// engine/meson.build), with GV_ISA_AVX512, GV_ISA_AVX2 or GV_ISA_GENERIC defined and the matching
// -m flags, into the namespaces gemm_avx512, gemm_avx2 and gemm_generic; gemm.cpp picks one at run
// time. Everything here but the exported descriptors has internal linkage and no standard-library
// template is used: a weak inline function compiled with AVX-512 flags must never be the copy that
// the linker keeps for the rest of the program, which may run on a CPU without AVX-512.
//
// A tile is an MR x NR block of C held in registers: NV vectors of W lanes per row (NR = NV*W).
// Per k it loads one packed row of B (NV vectors), broadcasts MR values of A and issues MR*NV
// fused multiply-adds. Every lane is its own chain of k-ordered fmas from zero, so an element's
// bits do not depend on where it sits in the tile or which rows share the product.
#include <cstdint>

#include "engine/cpu/gemm_kernel.h"
#include "engine/gemm.h"

#if defined(GV_ISA_AVX512) || defined(GV_ISA_AVX2)
#include <immintrin.h>
#endif

#if defined(GV_ISA_AVX512)
#define GV_GEMM_NS gemm_avx512
#elif defined(GV_ISA_AVX2)
#define GV_GEMM_NS gemm_avx2
#elif defined(GV_ISA_GENERIC)
#define GV_GEMM_NS gemm_generic
#else
#error "compile gemm_kernels.cpp with one of GV_ISA_AVX512, GV_ISA_AVX2, GV_ISA_GENERIC"
#endif

namespace gv::cpu::GV_GEMM_NS {
namespace {

// ---- the vector operations of each instruction set ----------------------------------------------
#if defined(GV_ISA_AVX512)
struct F32 {
  using T = float;
  using V = __m512;
  static constexpr int W = 16;
  static V zero() { return _mm512_setzero_ps(); }
  static V load(const T* p) { return _mm512_load_ps(p); }
  static V loadu(const T* p) { return _mm512_loadu_ps(p); }
  static void storeu(T* p, V v) { _mm512_storeu_ps(p, v); }
  static void store(T* p, V v) { _mm512_store_ps(p, v); }
  static V set1(T x) { return _mm512_set1_ps(x); }
  static V fma(V a, V b, V c) { return _mm512_fmadd_ps(a, b, c); }
  static V mul(V a, V b) { return _mm512_mul_ps(a, b); }
  static T sfma(T a, T b, T c) { return __builtin_fmaf(a, b, c); }
};
struct F64 {
  using T = double;
  using V = __m512d;
  static constexpr int W = 8;
  static V zero() { return _mm512_setzero_pd(); }
  static V load(const T* p) { return _mm512_load_pd(p); }
  static V loadu(const T* p) { return _mm512_loadu_pd(p); }
  static void storeu(T* p, V v) { _mm512_storeu_pd(p, v); }
  static void store(T* p, V v) { _mm512_store_pd(p, v); }
  static V set1(T x) { return _mm512_set1_pd(x); }
  static V fma(V a, V b, V c) { return _mm512_fmadd_pd(a, b, c); }
  static V mul(V a, V b) { return _mm512_mul_pd(a, b); }
  static T sfma(T a, T b, T c) { return __builtin_fma(a, b, c); }
};
// 14 rows x 2 vectors: 28 accumulators + 2 of B + 1 broadcast of the 32 zmm registers.
constexpr int kMR = 14, kNV = 2;
constexpr int64_t kMcRows = 14 * 24, kNcCols = 1024;
#elif defined(GV_ISA_AVX2)
struct F32 {
  using T = float;
  using V = __m256;
  static constexpr int W = 8;
  static V zero() { return _mm256_setzero_ps(); }
  static V load(const T* p) { return _mm256_load_ps(p); }
  static V loadu(const T* p) { return _mm256_loadu_ps(p); }
  static void storeu(T* p, V v) { _mm256_storeu_ps(p, v); }
  static void store(T* p, V v) { _mm256_store_ps(p, v); }
  static V set1(T x) { return _mm256_set1_ps(x); }
  static V fma(V a, V b, V c) { return _mm256_fmadd_ps(a, b, c); }
  static V mul(V a, V b) { return _mm256_mul_ps(a, b); }
  static T sfma(T a, T b, T c) { return __builtin_fmaf(a, b, c); }
};
struct F64 {
  using T = double;
  using V = __m256d;
  static constexpr int W = 4;
  static V zero() { return _mm256_setzero_pd(); }
  static V load(const T* p) { return _mm256_load_pd(p); }
  static V loadu(const T* p) { return _mm256_loadu_pd(p); }
  static void storeu(T* p, V v) { _mm256_storeu_pd(p, v); }
  static void store(T* p, V v) { _mm256_store_pd(p, v); }
  static V set1(T x) { return _mm256_set1_pd(x); }
  static V fma(V a, V b, V c) { return _mm256_fmadd_pd(a, b, c); }
  static V mul(V a, V b) { return _mm256_mul_pd(a, b); }
  static T sfma(T a, T b, T c) { return __builtin_fma(a, b, c); }
};
// 6 rows x 2 vectors: 12 accumulators + 2 of B + 1 broadcast of the 16 ymm registers.
constexpr int kMR = 6, kNV = 2;
constexpr int64_t kMcRows = 6 * 32, kNcCols = 512;
#else
// Plain C++ with separate multiply and add (this file is built with -ffp-contract=off, so the
// compiler fuses nothing): the path for CPUs without AVX2 and FMA.
template <class T_>
struct Scalar {
  using T = T_;
  using V = T_;
  static constexpr int W = 1;
  static V zero() { return T(0); }
  static V load(const T* p) { return *p; }
  static V loadu(const T* p) { return *p; }
  static void storeu(T* p, V v) { *p = v; }
  static void store(T* p, V v) { *p = v; }
  static V set1(T x) { return x; }
  static V fma(V a, V b, V c) { return a * b + c; }
  static V mul(V a, V b) { return a * b; }
  static T sfma(T a, T b, T c) { return a * b + c; }
};
using F32 = Scalar<float>;
using F64 = Scalar<double>;
constexpr int kMR = 4, kNV = 8;
constexpr int64_t kMcRows = 4 * 64, kNcCols = 256;
#endif

// ---- the micro-kernel ---------------------------------------------------------------------------
// R rows (R <= MR) of a tile whose packed A panel has MR rows: a partial tile at the bottom edge
// of C computes only the rows it needs. Each lane is its own chain, so R changes no bits.
template <class S, int MR, int NV, int R>
void tile_rows(int64_t kc, const typename S::T* a, const typename S::T* b, typename S::T* c, int64_t ldc,
               typename S::T alpha, typename S::T beta, int m, int n) {
  using T = typename S::T;
  using V = typename S::V;
  constexpr int W = S::W, NR = NV * W;
  V acc[R][NV];
#pragma GCC unroll 16
  for (int i = 0; i < R; ++i)
#pragma GCC unroll 8
    for (int j = 0; j < NV; ++j) acc[i][j] = S::zero();
  for (int64_t k = 0; k < kc; ++k) {
    V bv[NV];
#pragma GCC unroll 8
    for (int j = 0; j < NV; ++j) bv[j] = S::load(b + j * W);
#pragma GCC unroll 16
    for (int i = 0; i < R; ++i) {
      const V av = S::set1(a[i]);
#pragma GCC unroll 8
      for (int j = 0; j < NV; ++j) acc[i][j] = S::fma(av, bv[j], acc[i][j]);
    }
    a += MR;
    b += NR;
  }
  if (m == R && n == NR) {  // whole rows: straight into C
    const V va = S::set1(alpha);
    if (beta == T(0)) {
#pragma GCC unroll 16
      for (int i = 0; i < R; ++i)
#pragma GCC unroll 8
        for (int j = 0; j < NV; ++j) S::storeu(c + i * ldc + j * W, S::mul(va, acc[i][j]));
    } else {
      const V vb = S::set1(beta);
#pragma GCC unroll 16
      for (int i = 0; i < R; ++i)
#pragma GCC unroll 8
        for (int j = 0; j < NV; ++j) {
          T* p = c + i * ldc + j * W;
          S::storeu(p, S::fma(va, acc[i][j], S::mul(vb, S::loadu(p))));
        }
    }
    return;
  }
  // An edge: the same arithmetic, one element at a time, on the valid corner only.
  alignas(64) T t[R * NR];
#pragma GCC unroll 16
  for (int i = 0; i < R; ++i)
#pragma GCC unroll 8
    for (int j = 0; j < NV; ++j) S::store(t + i * NR + j * W, acc[i][j]);
  for (int i = 0; i < m; ++i) {
    T* row = c + i * ldc;
    const T* ti = t + i * NR;
    if (beta == T(0))
      for (int j = 0; j < n; ++j) row[j] = alpha * ti[j];
    else
      for (int j = 0; j < n; ++j) row[j] = S::sfma(alpha, ti[j], beta * row[j]);
  }
}

// A whole tile, or the bottom edge with the fewest rows (rounded up to even) that cover it.
template <class S, int MR, int NV>
void tile(int64_t kc, const typename S::T* a, const typename S::T* b, typename S::T* c, int64_t ldc,
          typename S::T alpha, typename S::T beta, int m, int n) {
  if constexpr (MR > 8) {
    if (m <= 2) return tile_rows<S, MR, NV, 2>(kc, a, b, c, ldc, alpha, beta, m, n);
    if (m <= 4) return tile_rows<S, MR, NV, 4>(kc, a, b, c, ldc, alpha, beta, m, n);
    if (m <= 6) return tile_rows<S, MR, NV, 6>(kc, a, b, c, ldc, alpha, beta, m, n);
    if (m <= 8) return tile_rows<S, MR, NV, 8>(kc, a, b, c, ldc, alpha, beta, m, n);
    if (m <= 10) return tile_rows<S, MR, NV, 10>(kc, a, b, c, ldc, alpha, beta, m, n);
    if (m <= 12) return tile_rows<S, MR, NV, 12>(kc, a, b, c, ldc, alpha, beta, m, n);
  } else if constexpr (MR > 2) {
    if (m <= 2) return tile_rows<S, MR, NV, 2>(kc, a, b, c, ldc, alpha, beta, m, n);
    if (m <= 4 && MR > 4) return tile_rows<S, MR, NV, 4>(kc, a, b, c, ldc, alpha, beta, m, n);
  }
  tile_rows<S, MR, NV, MR>(kc, a, b, c, ldc, alpha, beta, m, n);
}

// ---- the transposing copy of packing ------------------------------------------------------------
template <class T>
void transpose_scalar(const T* src, int64_t ld, int rows, int64_t k0, int64_t len, T* dst, int64_t ldd) {
  for (int64_t k = k0; k < len; ++k)
    for (int i = 0; i < rows; ++i) dst[k * ldd + i] = src[i * ld + k];
}

template <class T>
void transpose_copy(const T* src, int64_t ld, int rows, int64_t len, T* dst, int64_t ldd) {
  transpose_scalar(src, ld, rows, 0, len, dst, ldd);
}

#if defined(GV_ISA_AVX512) || defined(GV_ISA_AVX2)
// r[i][k] -> o[k][i] for i, k < 8: the unpack / shuffle / lane-permute transpose in registers.
inline void transpose8(const __m256 r[8], __m256 o[8]) {
  __m256 t[8], u[8];
  for (int i = 0; i < 8; i += 2) {
    t[i] = _mm256_unpacklo_ps(r[i], r[i + 1]);      // rows i, i+1 at k = 0, 1 | 4, 5
    t[i + 1] = _mm256_unpackhi_ps(r[i], r[i + 1]);  // k = 2, 3 | 6, 7
  }
  for (int h = 0; h < 8; h += 4) {                  // rows h..h+3
    u[h] = _mm256_shuffle_ps(t[h], t[h + 2], _MM_SHUFFLE(1, 0, 1, 0));      // k = 0 | 4
    u[h + 1] = _mm256_shuffle_ps(t[h], t[h + 2], _MM_SHUFFLE(3, 2, 3, 2));  // k = 1 | 5
    u[h + 2] = _mm256_shuffle_ps(t[h + 1], t[h + 3], _MM_SHUFFLE(1, 0, 1, 0));  // k = 2 | 6
    u[h + 3] = _mm256_shuffle_ps(t[h + 1], t[h + 3], _MM_SHUFFLE(3, 2, 3, 2));  // k = 3 | 7
  }
  for (int k = 0; k < 4; ++k) {
    o[k] = _mm256_permute2f128_ps(u[k], u[k + 4], 0x20);
    o[k + 4] = _mm256_permute2f128_ps(u[k], u[k + 4], 0x31);
  }
}

// dst[k*ldd + i] = src[i*ld + k] for i, k < 8.
inline void transpose8x8(const float* src, int64_t ld, float* dst, int64_t ldd) {
  __m256 r[8], o[8];
  for (int i = 0; i < 8; ++i) r[i] = _mm256_loadu_ps(src + i * ld);
  transpose8(r, o);
  for (int k = 0; k < 8; ++k) _mm256_storeu_ps(dst + k * ldd, o[k]);
}

// Rows in groups of 8 (the last group overlaps the one before when rows is not a multiple of 8;
// the rows in both get the same values twice), k in blocks of 8, the rest one value at a time.
template <>
void transpose_copy<float>(const float* src, int64_t ld, int rows, int64_t len, float* dst, int64_t ldd) {
  if (rows < 8) return transpose_scalar(src, ld, rows, 0, len, dst, ldd);
  const int64_t k8 = len / 8 * 8;
  for (int i0 = 0; i0 < rows; i0 += 8) {
    const int i = i0 + 8 <= rows ? i0 : rows - 8;
    for (int64_t k = 0; k < k8; k += 8) transpose8x8(src + i * ld + k, ld, dst + k * ldd + i, ldd);
  }
  transpose_scalar(src, ld, rows, k8, len, dst, ldd);
}
#endif

// ---- the gather of im2col ---------------------------------------------------------------------------
template <class T>
void gather_copy(const T* src, const int32_t* tab, int64_t n, T* dst) {
  for (int64_t l = 0; l < n; ++l) dst[l] = src[tab[l]];
}
#if defined(GV_ISA_AVX512)
template <>
void gather_copy<float>(const float* src, const int32_t* tab, int64_t n, float* dst) {
  int64_t l = 0;
  for (; l + 16 <= n; l += 16)
    _mm512_storeu_ps(dst + l, _mm512_mask_i32gather_ps(_mm512_setzero_ps(), __mmask16(0xffff),
                                                       _mm512_loadu_si512(tab + l), src, 4));
  for (; l < n; ++l) dst[l] = src[tab[l]];
}
#elif defined(GV_ISA_AVX2)
template <>
void gather_copy<float>(const float* src, const int32_t* tab, int64_t n, float* dst) {
  int64_t l = 0;
  for (; l + 8 <= n; l += 8)
    _mm256_storeu_ps(dst + l, _mm256_mask_i32gather_ps(_mm256_setzero_ps(), src,
                                                       _mm256_loadu_si256((const __m256i*)(tab + l)),
                                                       _mm256_castsi256_ps(_mm256_set1_epi32(-1)), 4));
  for (; l < n; ++l) dst[l] = src[tab[l]];
}
#endif

// ---- the row copies of im2col ----------------------------------------------------------------------
template <class T>
void copy_rows(const T* src, int64_t lds, int64_t rows, int64_t n, T* dst) {
  for (int64_t r = 0; r < rows; ++r, src += lds, dst += n)
    for (int64_t j = 0; j < n; ++j) dst[j] = src[j];
}
#if defined(GV_ISA_AVX512)
template <>
void copy_rows<float>(const float* src, int64_t lds, int64_t rows, int64_t n, float* dst) {
  const int64_t full = n / 16 * 16;
  const __mmask16 tail = __mmask16((1u << (n - full)) - 1);  // masked lanes are neither read nor written
  for (int64_t r = 0; r < rows; ++r, src += lds, dst += n) {
    for (int64_t j = 0; j < full; j += 16) _mm512_storeu_ps(dst + j, _mm512_loadu_ps(src + j));
    if (tail) _mm512_mask_storeu_ps(dst + full, tail, _mm512_maskz_loadu_ps(tail, src + full));
  }
}
#elif defined(GV_ISA_AVX2)
template <>
void copy_rows<float>(const float* src, int64_t lds, int64_t rows, int64_t n, float* dst) {
  const int64_t full = n / 8 * 8;
  alignas(32) int32_t lanes[8];
  for (int j = 0; j < 8; ++j) lanes[j] = j < n - full ? -1 : 0;
  const __m256i tail = _mm256_load_si256((const __m256i*)lanes);  // vmaskmov: masked lanes never fault
  for (int64_t r = 0; r < rows; ++r, src += lds, dst += n) {
    for (int64_t j = 0; j < full; j += 8) _mm256_storeu_ps(dst + j, _mm256_loadu_ps(src + j));
    if (n > full) _mm256_maskstore_ps(dst + full, tail, _mm256_maskload_ps(src + full, tail));
  }
}
#endif

// ---- packing an operand given by offset tables --------------------------------------------------
// Panels of NR columns for columns [0, nc): panel p at dst + p*kc*NR, with
// dst[p*kc*NR + k*NR + j] = base[row[k] + col[p*NR + j]] and zeros past nc: B's panels straight
// out of a padded image (im2col's values) or out of a reordered tensor, with no copy of the whole
// operand first. It moves values only, so every path gives the same bits.
template <class T, int NR>
void pack_indexed_scalar(const T* base, const int32_t* row, int64_t kc, const int32_t* col, int64_t nc, T* dst) {
  for (int64_t j0 = 0; j0 < nc; j0 += NR, dst += kc * NR) {
    const int n = nc - j0 < NR ? int(nc - j0) : NR;
    for (int64_t k = 0; k < kc; ++k) {
      const T* p = base + row[k];
      T* d = dst + k * NR;
      for (int j = 0; j < n; ++j) d[j] = p[col[j0 + j]];
      for (int j = n; j < NR; ++j) d[j] = T(0);
    }
  }
}
template <class T>
void pack_indexed(const T* base, const int32_t* row, int64_t kc, const int32_t* col, int64_t nc, T* dst) {
  pack_indexed_scalar<T, kNV * (sizeof(T) == 4 ? F32::W : F64::W)>(base, row, kc, col, nc, dst);
}

template <class T>
void pack_indexed_t(const T* base, const int32_t* row, int64_t kc, const int32_t* col, int64_t nc, T* dst) {
  pack_indexed_scalar<T, kNV * (sizeof(T) == 4 ? F32::W : F64::W)>(base, row, kc, col, nc, dst);
}

#if defined(GV_ISA_AVX512) || defined(GV_ISA_AVX2)
// One vector's worth of a panel's columns: the lanes fall into runs of consecutive offsets (whole
// output rows of a stride-1 convolution, an image's positions in a reordered tensor). Up to
// kMaxRuns runs are read with masked loads, each at its own base (a masked-off lane is neither
// read nor faulted); more runs than that (stride 2) take a gather.
constexpr int kMaxRuns = 3;
struct Runs {
  int n = 0;                   // 0: every lane is past nc (zeros); > kMaxRuns: gather
  uint32_t mask[kMaxRuns] = {};  // the lanes of each run
  int32_t off[kMaxRuns] = {};    // lane i of run r reads p[off[r] + i]
  uint32_t valid = 0;
};
inline Runs find_runs(const int32_t* col, int lanes) {
  Runs g;
  for (int i = 0; i < lanes; ++i) {
    g.valid |= 1u << i;
    const bool start = i == 0 || col[i] != col[i - 1] + 1;
    if (start) ++g.n;
    if (g.n <= kMaxRuns) {
      if (start) g.off[g.n - 1] = col[i] - i;
      g.mask[g.n - 1] |= 1u << i;
    }
  }
  return g;
}

#if defined(GV_ISA_AVX512)
struct Lanes {
  static constexpr int W = 16;
  struct Group {
    __m512i idx;
    Runs r;
  };
  static Group group(const int32_t* col, int lanes) {
    Group g;
    g.r = find_runs(col, lanes);
    alignas(64) int32_t t[16] = {};
    for (int i = 0; i < lanes; ++i) t[i] = col[i];
    g.idx = _mm512_load_si512(t);
    return g;
  }
  static void copy(const Group& g, const float* p, float* d) {
    __m512 x;
    if (g.r.n == 0) {
      x = _mm512_setzero_ps();
    } else if (g.r.n <= kMaxRuns) {
      x = _mm512_maskz_loadu_ps(__mmask16(g.r.mask[0]), p + g.r.off[0]);
      for (int r = 1; r < g.r.n; ++r) x = _mm512_mask_loadu_ps(x, __mmask16(g.r.mask[r]), p + g.r.off[r]);
    } else {
      x = _mm512_mask_i32gather_ps(_mm512_setzero_ps(), __mmask16(g.r.valid), g.idx, p, 4);
    }
    _mm512_storeu_ps(d, x);
  }
};
#else
struct Lanes {
  static constexpr int W = 8;
  struct Group {
    __m256i idx, valid, mask[kMaxRuns];
    Runs r;
  };
  static Group group(const int32_t* col, int lanes) {
    Group g;
    g.r = find_runs(col, lanes);
    alignas(32) int32_t t[8] = {}, ok[8] = {}, m[kMaxRuns][8] = {};
    for (int i = 0; i < lanes; ++i) {
      t[i] = col[i];
      ok[i] = -1;
      for (int r = 0; r < kMaxRuns; ++r) m[r][i] = (g.r.mask[r] >> i) & 1 ? -1 : 0;
    }
    g.idx = _mm256_load_si256((const __m256i*)t);
    g.valid = _mm256_load_si256((const __m256i*)ok);
    for (int r = 0; r < kMaxRuns; ++r) g.mask[r] = _mm256_load_si256((const __m256i*)m[r]);
    return g;
  }
  static void copy(const Group& g, const float* p, float* d) {
    __m256 x;
    if (g.r.n == 0) {
      x = _mm256_setzero_ps();
    } else if (g.r.n <= kMaxRuns) {  // vmaskmov: masked-off lanes read as 0 and never fault
      x = _mm256_maskload_ps(p + g.r.off[0], g.mask[0]);
      for (int r = 1; r < g.r.n; ++r)
        x = _mm256_blendv_ps(x, _mm256_maskload_ps(p + g.r.off[r], g.mask[r]), _mm256_castsi256_ps(g.mask[r]));
    } else {
      x = _mm256_mask_i32gather_ps(_mm256_setzero_ps(), p, g.idx, _mm256_castsi256_ps(g.valid), 4);
    }
    _mm256_storeu_ps(d, x);
  }
};
#endif

// The lane groups of up to kGroups vectors of columns are worked out once; then 8 rows at a time,
// each group's 8 rows in turn, so the reads are 8 sequential streams along the columns (the same
// order as pack_b_n in gemm.cpp, for the same reason).
template <>
void pack_indexed<float>(const float* base, const int32_t* row, int64_t kc, const int32_t* col, int64_t nc,
                         float* dst) {
  constexpr int W = Lanes::W, NR = kNV * W, kGroups = 16 * kNV;
  Lanes::Group grp[kGroups];
  for (int64_t c0 = 0; c0 < nc; c0 += kGroups * W) {
    const int64_t n1 = nc - c0 < kGroups * W ? nc - c0 : kGroups * W;
    const int ng = int((n1 + NR - 1) / NR) * kNV;  // whole panels
    for (int i = 0; i < ng; ++i) {
      const int64_t left = n1 - int64_t(i) * W;
      grp[i] = Lanes::group(col + c0 + i * W, left <= 0 ? 0 : (left > W ? W : int(left)));
    }
    float* d0 = dst + c0 * kc;  // panel c0 / NR
    for (int64_t k0 = 0; k0 < kc; k0 += 8) {
      const int64_t k1 = kc < k0 + 8 ? kc : k0 + 8;
      for (int i = 0; i < ng; ++i) {
        float* d = d0 + (i / kNV) * kc * NR + (i % kNV) * W;
        for (int64_t k = k0; k < k1; ++k) Lanes::copy(grp[i], base + row[k], d + k * NR);
      }
    }
  }
}

// The same panels when the runs lie along row, not col (im2col's matrix transposed: rows are
// output positions, columns taps, as the weight gradient reads it). 8 rows by 8 columns at a
// time: for each of the 8 columns, 8 consecutive rows' values are one or two (masked) 8-lane
// loads (8-lane gathers where the rows make more runs than that: stride 2); a register transpose
// turns them into 8 rows of the panel.
// The masks of a block's (at most two) runs and its gather indices, worked out once per block of 8
// rows and used by every panel.
struct Runs8 {
  Runs r;
  int rows = 0;
  __m256i vidx;
  __m256 vok;
#if defined(GV_ISA_AVX2)
  __m256i m[2];
#endif
  Runs8() = default;
  Runs8(const int32_t* row, int nrows) : r(find_runs(row, nrows)), rows(nrows) {
    alignas(32) int32_t idx[8] = {}, ok[8] = {};
    for (int i = 0; i < nrows; ++i) idx[i] = row[i], ok[i] = -1;
    vidx = _mm256_load_si256((const __m256i*)idx);
    vok = _mm256_castsi256_ps(_mm256_load_si256((const __m256i*)ok));
#if defined(GV_ISA_AVX2)
    alignas(32) int32_t b[2][8];
    for (int i = 0; i < 8; ++i)
      for (int q = 0; q < 2; ++q) b[q][i] = (r.mask[q] >> i) & 1 ? -1 : 0;
    for (int q = 0; q < 2; ++q) m[q] = _mm256_load_si256((const __m256i*)b[q]);
#endif
  }
  __m256 load(const float* p) const {
#if defined(GV_ISA_AVX512)
    __m256 x = _mm256_maskz_loadu_ps(__mmask8(r.mask[0]), p + r.off[0]);
    if (r.n > 1) x = _mm256_mask_loadu_ps(x, __mmask8(r.mask[1]), p + r.off[1]);
#else
    __m256 x = _mm256_maskload_ps(p + r.off[0], m[0]);
    if (r.n > 1) x = _mm256_blendv_ps(x, _mm256_maskload_ps(p + r.off[1], m[1]), _mm256_castsi256_ps(m[1]));
#endif
    return x;
  }
};
template <>
void pack_indexed_t<float>(const float* base, const int32_t* row, int64_t kc, const int32_t* col, int64_t nc,
                           float* dst) {
  constexpr int NR = kNV * F32::W;
  constexpr int kMaxBlocks = int(kGemmKc / 8);  // a whole K block's runs at once (kc is at most kGemmKc)
  Runs8 blocks[kMaxBlocks];
  for (int64_t s0 = 0; s0 < kc; s0 += 8 * kMaxBlocks) {
    const int64_t s1 = kc < s0 + 8 * kMaxBlocks ? kc : s0 + 8 * kMaxBlocks;
    const int nb = int((s1 - s0 + 7) / 8);
    for (int q = 0; q < nb; ++q) {
      const int64_t k0 = s0 + 8 * int64_t(q);
      blocks[q] = Runs8(row + k0, s1 - k0 < 8 ? int(s1 - k0) : 8);
    }
    for (int64_t j0 = 0; j0 < nc; j0 += NR) {
      const int n = nc - j0 < NR ? int(nc - j0) : NR;
      float* panel = dst + j0 / NR * kc * NR;
      for (int q = 0; q < nb; ++q) {
        const Runs8& runs = blocks[q];
        float* d = panel + (s0 + 8 * int64_t(q)) * NR;
        for (int jb = 0; jb < NR; jb += 8) {
          __m256 v[8], o[8];
          for (int jj = 0; jj < 8; ++jj) {
            if (jb + jj >= n) {  // past the last column: col has no entry there
              v[jj] = _mm256_setzero_ps();
              continue;
            }
            const float* p = base + col[j0 + jb + jj];
            if (runs.r.n <= 2) v[jj] = runs.load(p);
            else v[jj] = _mm256_mask_i32gather_ps(_mm256_setzero_ps(), p, runs.vidx, runs.vok, 4);  // stride 2
          }
          transpose8(v, o);
          for (int i = 0; i < runs.rows; ++i) _mm256_storeu_ps(d + i * NR + jb, o[i]);
        }
      }
    }
  }
}
#endif

}  // namespace

extern const GemmKernel<float> kernel_f32 = {kMR, kNV * F32::W, kMcRows, kNcCols, &tile<F32, kMR, kNV>,
                                             &transpose_copy<float>, &gather_copy<float>, &copy_rows<float>,
                                             &pack_indexed<float>, &pack_indexed_t<float>};
extern const GemmKernel<double> kernel_f64 = {kMR, kNV * F64::W, kMcRows, kNcCols, &tile<F64, kMR, kNV>,
                                              &transpose_copy<double>, &gather_copy<double>, &copy_rows<double>,
                                              &pack_indexed<double>, &pack_indexed_t<double>};

}  // namespace gv::cpu::GV_GEMM_NS

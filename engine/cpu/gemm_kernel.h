// gemm_kernel.h: the seam between the GEMM driver (gemm.cpp: blocking, packing, threads) and
// its micro-kernels (gemm_kernels.cpp, compiled once per instruction set). Internal to engine/.
#pragma once
#include <cstdint>

namespace gv::cpu {

// One instruction set's micro-kernel for one dtype, with the block sizes that suit it.
//
// tile(kc, a, b, c, ldc, alpha, beta, m, n): a is a packed panel of mr rows (a[k*mr + i]), b a
// packed panel of nr columns (b[k*nr + j]), both zero-padded. With acc[i][j] = sum over k < kc
// of a[k*mr+i] * b[k*nr+j], accumulated from zero in k order, it writes the valid m x n corner:
//   c[i*ldc + j] = beta == 0 ? alpha * acc : alpha * acc + beta * c   (one fma on FMA paths)
template <class T>
struct GemmKernel {
  int mr, nr;
  int64_t mc;  // rows of A packed at a time (a multiple of mr)
  int64_t nc;  // columns of B packed at a time (a multiple of nr)
  void (*tile)(int64_t kc, const T* a, const T* b, T* c, int64_t ldc, T alpha, T beta, int m, int n);
  // The transposing copy that packing needs when the panel's rows lie along the source's
  // contiguous axis: dst[k*ldd + i] = src[i*ld + k] for i < rows, k < len (vectorized where the
  // instruction set allows; it moves values, so every path gives the same bits).
  void (*transpose)(const T* src, int64_t ld, int rows, int64_t len, T* dst, int64_t ldd);
  // dst[l] = src[tab[l]] for l < n: im2col's copy out of a padded plane for strides above 1
  // (vector gathers where the instruction set has them; GCC does not emit them by itself for
  // generic tuning).
  void (*gather)(const T* src, const int32_t* tab, int64_t n, T* dst);
  // dst[r*n + j] = src[r*lds + j] for r < rows, j < n: im2col's rows at stride 1. Rows are short
  // (7 to 32 values in the workloads), so the vector paths copy each with whole and masked
  // loads and stores, where a memcpy call per row costs more than the copy.
  void (*copy_rows)(const T* src, int64_t lds, int64_t rows, int64_t n, T* dst);
  // Panels of nr columns of an operand given by offset tables (engine/gemm.h, gemm_indexed_b):
  // panel p at dst + p*kc*nr holds base[row[k] + col[p*nr + j]] at [k*nr + j] for k < kc, zero
  // past nc; packed without the operand ever being written out whole. Runs of consecutive
  // offsets are read as (masked) vector loads, the rest gathered.
  void (*pack_indexed)(const T* base, const int32_t* row, int64_t kc, const int32_t* col, int64_t nc, T* dst);
  // The same panels, for tables whose runs of consecutive offsets lie along row instead
  // (IndexedMatrix::runs_along_rows): 8 x 8 blocks loaded along the rows and transposed.
  void (*pack_indexed_t)(const T* base, const int32_t* row, int64_t kc, const int32_t* col, int64_t nc, T* dst);
};

// The kernels of the active instruction set (engine/runtime.h) for T.
template <class T>
const GemmKernel<T>& active_kernel();

#define GV_GEMM_DECLARE(ns)                 \
  namespace ns {                            \
  extern const GemmKernel<float> kernel_f32;  \
  extern const GemmKernel<double> kernel_f64; \
  }
GV_GEMM_DECLARE(gemm_generic)
GV_GEMM_DECLARE(gemm_avx2)
GV_GEMM_DECLARE(gemm_avx512)
#undef GV_GEMM_DECLARE

}  // namespace gv::cpu

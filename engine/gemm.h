// gemm.h: the engine's one GEMM entry point. matmul, batched matmul, linear and every
// convolution call it; nothing else in the tree calls BLAS.
//
//   C (M, N) = alpha * A (M, K) @ B (K, N) + beta * C
//
// A and B are read through element strides (rs: between rows, cs: between columns), so a
// transpose, a strided slice or a broadcast (stride 0) view goes in without a copy. C is
// row-major with leading dimension ldc. beta == 0 never reads C (it may hold garbage).
//
// The default backend is our own (engine/cpu/gemm.cpp): packed panels, cache blocking and a
// micro-kernel for AVX-512, AVX2+FMA or plain C++, picked at run time (engine/isa.h).
// GENVAE_GEMM=openblas (or set_gemm_backend) routes the products to OpenBLAS instead, the
// reference the tests compare with and the alternative the bench measures.
//
// Determinism (our backend): every C[i][j] is the same chain of operations whatever the thread
// count, the shape of the rest of the product (row i never depends on the other rows), and the
// position of (i, j) in a tile. K is cut into blocks of kGemmKc in order; within a block the
// products are accumulated from zero in k order, one fused multiply-add each (plain multiply and
// add on the generic path); then C = alpha * acc + beta * C for the first block and
// C = alpha * acc + C for each later one. The AVX-512 and AVX2 paths therefore give the same
// bits; the generic path rounds the products separately (see docs/engine.md for its bound).
#pragma once
#include <cstdint>

namespace gv {

inline constexpr int64_t kGemmKc = 256;  // the K block: part of the rounding contract above

enum class GemmBackend { own = 0, openblas = 1 };
GemmBackend gemm_backend();  // GENVAE_GEMM (own | openblas) at first use, else own
void set_gemm_backend(GemmBackend b);
const char* gemm_backend_name(GemmBackend b);
const char* openblas_corename();  // which kernels OpenBLAS picked for this CPU ("Prescott", ...)

template <class T>
void gemm(int64_t M, int64_t N, int64_t K, T alpha, const T* A, int64_t rsa, int64_t csa, const T* B, int64_t rsb,
          int64_t csb, T beta, T* C, int64_t ldc);

// B given by two offset tables instead of strides: B(k, j) = base[row[k] + col[j]], where
// row (K) and col (N) hold element offsets (int32; the caller checks that they fit). A
// convolution reads im2col's matrix this way straight out of a zero-bordered copy of its images
// (row: a tap's offset, col: an output position's), and a reordered tensor without a reorder;
// the packing reads each panel from there, so the whole operand is never written out. The same
// arithmetic as gemm() on the materialized B: the same bits.
template <class T>
struct IndexedMatrix {
  const T* base;
  const int32_t* row;
  const int32_t* col;
  bool runs_along_rows = false;  // a hint for speed only: consecutive offsets lie along row, not col
};
template <class T>
void gemm_indexed_b(int64_t M, int64_t N, int64_t K, T alpha, const T* A, int64_t rsa, int64_t csa,
                    const IndexedMatrix<T>& B, T beta, T* C, int64_t ldc);

// The BLAS-style form, row-major: op(A) is A (M, K) with leading dimension lda, or A^T when
// trans_a (A stored (K, M)); B alike.
template <class T>
inline void gemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, T alpha, const T* A, int64_t lda,
                 const T* B, int64_t ldb, T beta, T* C, int64_t ldc) {
  gemm<T>(M, N, K, alpha, A, trans_a ? 1 : lda, trans_a ? lda : 1, B, trans_b ? 1 : ldb, trans_b ? ldb : 1, beta, C,
          ldc);
}

}  // namespace gv

// gemm.cpp: the GEMM driver behind engine/gemm.h. Our backend packs A and B into panels that the
// micro-kernel (gemm_kernels.cpp, one per instruction set) reads in order, blocks the product so
// that the panels stay in cache, and splits C across threads. The OpenBLAS backend is kept as the
// reference and as an alternative (GENVAE_GEMM=openblas).
//
// Blocking, per thread, over its own region of C (M, N):
//   for each block of kernel.nc columns of B:
//     for each block of kGemmKc along K, in order:
//       pack B (kc x nc) into panels of nr columns        (stays in L2)
//       for each block of kernel.mc rows of A:
//         pack A (mc x kc) into panels of mr rows         (in L2; the panel in use sits in L1)
//         for each mr-panel of A, for each nr-panel of B: the micro-kernel on one tile of C
// Threads split C over M or N only (never K), each into whole tiles, and pack their own panels,
// so no thread waits for another and no element's arithmetic depends on the split.
#include <cblas.h>
#include <omp.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>

#include "engine/cpu/gemm_kernel.h"
#include "engine/error.h"
#include "engine/gemm.h"
#include "engine/runtime.h"

namespace gv {

// ---- backend choice -----------------------------------------------------------------------------
namespace {
std::atomic<int> g_backend{-1};

GemmBackend backend_from_env() {
  const char* e = std::getenv("GENVAE_GEMM");
  if (!e || !*e) return GemmBackend::own;
  std::string s(e);
  if (s == "own") return GemmBackend::own;
  if (s == "openblas") return GemmBackend::openblas;
  GV_THROW(ValueError, "GENVAE_GEMM={}: allowed values are own and openblas", s);
}
}  // namespace

GemmBackend gemm_backend() {
  int b = g_backend.load(std::memory_order_relaxed);
  if (b < 0) {
    b = (int)backend_from_env();
    g_backend.store(b, std::memory_order_relaxed);
  }
  return (GemmBackend)b;
}
void set_gemm_backend(GemmBackend b) { g_backend.store((int)b, std::memory_order_relaxed); }
const char* gemm_backend_name(GemmBackend b) { return b == GemmBackend::openblas ? "openblas" : "own"; }
const char* openblas_corename() { return openblas_get_corename(); }

namespace {

template <class T>
const cpu::GemmKernel<T>& kernel_for(Isa isa) {
  if constexpr (std::is_same_v<T, float>) {
    switch (isa) {
      case Isa::avx512: return cpu::gemm_avx512::kernel_f32;
      case Isa::avx2: return cpu::gemm_avx2::kernel_f32;
      default: return cpu::gemm_generic::kernel_f32;
    }
  } else {
    switch (isa) {
      case Isa::avx512: return cpu::gemm_avx512::kernel_f64;
      case Isa::avx2: return cpu::gemm_avx2::kernel_f64;
      default: return cpu::gemm_generic::kernel_f64;
    }
  }
}

}  // namespace

namespace cpu {
template <class T>
const GemmKernel<T>& active_kernel() {
  return kernel_for<T>(active_isa());
}
template const GemmKernel<float>& active_kernel<float>();
template const GemmKernel<double>& active_kernel<double>();
}  // namespace cpu

namespace {

// ---- packing ------------------------------------------------------------------------------------
// A (mc x kc, strides rs, cs) -> panels of MR rows: dst[p*kc*MR + k*MR + i], zero past mc.
template <class T, int MR>
void pack_a_n(const cpu::GemmKernel<T>& kn, const T* A, int64_t rs, int64_t cs, int64_t mc, int64_t kc, T* dst) {
  for (int64_t i0 = 0; i0 < mc; i0 += MR, dst += kc * MR) {
    const int m = (int)std::min<int64_t>(MR, mc - i0);
    const T* src = A + i0 * rs;
    if (m == MR && rs == 1) {  // a transposed A: each k is MR contiguous values
      for (int64_t k = 0; k < kc; ++k) std::memcpy(dst + k * MR, src + k * cs, sizeof(T) * MR);
      continue;
    }
    if (cs == 1 && m == MR) {  // rows contiguous in k: a transposing copy
      kn.transpose(src, rs, MR, kc, dst, MR);
      continue;
    }
    for (int64_t k = 0; k < kc; ++k) {
      for (int i = 0; i < m; ++i) dst[k * MR + i] = src[i * rs + k * cs];
      for (int i = m; i < MR; ++i) dst[k * MR + i] = T(0);
    }
  }
}

// B (kc x nc, strides rs, cs) -> panels of NR columns: dst[p*kc*NR + k*NR + j], zero past nc.
template <class T, int NR>
void pack_b_n(const cpu::GemmKernel<T>& kn, const T* B, int64_t rs, int64_t cs, int64_t kc, int64_t nc, T* dst) {
  const int64_t full = nc / NR, rest = nc - full * NR;
  if (cs == 1) {
    // Rows of B contiguous: 8 rows at a time, each panel's 8 x NR piece in turn, so the reads are
    // 8 sequential streams and the writes 8*NR contiguous values (one row at a time across all
    // panels would write to addresses kc*NR apart, which share one L1 set).
    constexpr int64_t kRows = 8;
    for (int64_t k0 = 0; k0 < kc; k0 += kRows) {
      const int64_t k1 = std::min(kc, k0 + kRows);
      for (int64_t p = 0; p < full; ++p) {
        T* d = dst + p * kc * NR;
        for (int64_t k = k0; k < k1; ++k) std::memcpy(d + k * NR, B + k * rs + p * NR, sizeof(T) * NR);
      }
      if (rest)
        for (int64_t k = k0; k < k1; ++k) {
          T* e = dst + full * kc * NR + k * NR;
          const T* row = B + k * rs + full * NR;
          for (int64_t j = 0; j < rest; ++j) e[j] = row[j];
          for (int64_t j = rest; j < NR; ++j) e[j] = T(0);
        }
    }
    return;
  }
  // columns contiguous (a transposed B) or strided: read each column through
  for (int64_t j0 = 0; j0 < nc; j0 += NR, dst += kc * NR) {
    const int n = (int)std::min<int64_t>(NR, nc - j0);
    const T* src = B + j0 * cs;
    if (rs == 1 && n == NR) {  // a transposed B: a transposing copy
      kn.transpose(src, cs, NR, kc, dst, NR);
      continue;
    }
    for (int j = 0; j < n; ++j) {
      const T* col = src + j * cs;
      for (int64_t k = 0; k < kc; ++k) dst[k * NR + j] = col[k * rs];
    }
    for (int64_t k = 0; k < kc; ++k)
      for (int j = n; j < NR; ++j) dst[k * NR + j] = T(0);
  }
}

// The packers for the kernels' tile sizes (compile-time widths make the copies whole vectors).
template <class T>
void pack_a(const cpu::GemmKernel<T>& kn, const T* A, int64_t rs, int64_t cs, int64_t mc, int64_t kc, T* dst) {
  switch (kn.mr) {
    case 14: return pack_a_n<T, 14>(kn, A, rs, cs, mc, kc, dst);
    case 6: return pack_a_n<T, 6>(kn, A, rs, cs, mc, kc, dst);
    case 4: return pack_a_n<T, 4>(kn, A, rs, cs, mc, kc, dst);
  }
  GV_THROW(Error, "gemm: no packer for {}-row panels", kn.mr);
}
template <class T>
void pack_b(const cpu::GemmKernel<T>& kn, const T* B, int64_t rs, int64_t cs, int64_t kc, int64_t nc, T* dst) {
  switch (kn.nr) {
    case 32: return pack_b_n<T, 32>(kn, B, rs, cs, kc, nc, dst);
    case 16: return pack_b_n<T, 16>(kn, B, rs, cs, kc, nc, dst);
    case 8: return pack_b_n<T, 8>(kn, B, rs, cs, kc, nc, dst);
  }
  GV_THROW(Error, "gemm: no packer for {}-column panels", kn.nr);
}

// Per-thread packing buffers, grown on demand and kept (OpenMP's threads persist).
struct AlignedBuffer {
  struct Free {
    void operator()(void* p) const { std::free(p); }
  };
  std::unique_ptr<void, Free> p;
  size_t bytes = 0;
  void* get(size_t n) {
    if (n > bytes) {
      n = (n + 4095) / 4096 * 4096;
      void* q = std::aligned_alloc(64, n);
      GV_CHECK(q != nullptr, Error, "gemm: cannot allocate {} bytes of packing buffer", n);
      p.reset(q);
      bytes = n;
    }
    return p.get();
  }
};
thread_local AlignedBuffer t_apack, t_bpack;

// The serial product on one region of C.
// pack_b(pc, kc, j, nc, dst) packs B's rows [pc, pc+kc) and columns [j0 + j, j0 + j + nc) into
// panels of nr columns.
template <class T, class PackB>
void gemm_region(const cpu::GemmKernel<T>& kn, int64_t M, int64_t N, int64_t K, T alpha, const T* A, int64_t rsa,
                 int64_t csa, const PackB& pack_b, int64_t j0, T beta, T* C, int64_t ldc) {
  const int mr = kn.mr, nr = kn.nr;
  const int64_t mcb = std::min<int64_t>(kn.mc, (M + mr - 1) / mr * mr);
  const int64_t ncb = std::min<int64_t>(kn.nc, (N + nr - 1) / nr * nr);
  const int64_t kcb = std::min<int64_t>(kGemmKc, K);
  T* ap = static_cast<T*>(t_apack.get(sizeof(T) * mcb * kcb));
  T* bp = static_cast<T*>(t_bpack.get(sizeof(T) * kcb * ncb));
  for (int64_t jc = 0; jc < N; jc += ncb) {
    const int64_t nc = std::min(ncb, N - jc);
    for (int64_t pc = 0; pc < K; pc += kGemmKc) {
      const int64_t kc = std::min(kGemmKc, K - pc);
      const T b_eff = pc == 0 ? beta : T(1);  // later K blocks add to what the first wrote
      pack_b(pc, kc, j0 + jc, nc, bp);
      for (int64_t ic = 0; ic < M; ic += mcb) {
        const int64_t mc = std::min(mcb, M - ic);
        pack_a(kn, A + ic * rsa + pc * csa, rsa, csa, mc, kc, ap);
        for (int64_t ir = 0; ir < mc; ir += mr) {
          const int m = (int)std::min<int64_t>(mr, mc - ir);
          const T* a = ap + ir * kc;
          for (int64_t jr = 0; jr < nc; jr += nr) {
            const int n = (int)std::min<int64_t>(nr, nc - jr);
            kn.tile(kc, a, bp + jr * kc, C + (ic + ir) * ldc + jc + jr, ldc, alpha, b_eff, m, n);
          }
        }
      }
    }
  }
}

// C = beta * C (the whole product when K or alpha is zero: A and B are not read, as in BLAS).
template <class T>
void scale_c(int64_t M, int64_t N, T beta, T* C, int64_t ldc) {
  for (int64_t i = 0; i < M; ++i) {
    T* row = C + i * ldc;
    if (beta == T(0))
      std::fill(row, row + N, T(0));
    else if (beta != T(1))
      for (int64_t j = 0; j < N; ++j) row[j] *= beta;
  }
}

constexpr double kMinParallelFlops = 2e5;  // below this one thread is faster than two

template <class T, class PackB>
void gemm_own(int64_t M, int64_t N, int64_t K, T alpha, const T* A, int64_t rsa, int64_t csa, const PackB& pack_b,
              T beta, T* C, int64_t ldc) {
  const cpu::GemmKernel<T>& kn = cpu::active_kernel<T>();
  const int64_t mt = (M + kn.mr - 1) / kn.mr, nt_ = (N + kn.nr - 1) / kn.nr;  // tiles along M, N
  int nt = omp_in_parallel() ? 1 : omp_get_max_threads();
  if (2.0 * double(M) * double(N) * double(K) < kMinParallelFlops) nt = 1;
  // Split the axis with more tiles into nt runs of whole tiles.
  const bool by_rows = mt >= nt_;
  nt = (int)std::min<int64_t>(nt, by_rows ? mt : nt_);
  if (nt <= 1) {
    gemm_region<T>(kn, M, N, K, alpha, A, rsa, csa, pack_b, 0, beta, C, ldc);
    return;
  }
#pragma omp parallel num_threads(nt)
  {
    const int t = omp_get_thread_num(), T_ = omp_get_num_threads();
    const int64_t tiles = by_rows ? mt : nt_, step = by_rows ? kn.mr : kn.nr, len = by_rows ? M : N;
    const int64_t lo = std::min(len, tiles * t / T_ * step), hi = std::min(len, tiles * (t + 1) / T_ * step);
    if (hi > lo) {
      if (by_rows)
        gemm_region<T>(kn, hi - lo, N, K, alpha, A + lo * rsa, rsa, csa, pack_b, 0, beta, C + lo * ldc, ldc);
      else
        gemm_region<T>(kn, M, hi - lo, K, alpha, A, rsa, csa, pack_b, lo, beta, C + lo, ldc);
    }
  }
}

// B read through its strides (a dense, transposed, sliced or broadcast view).
template <class T>
struct PackStrided {
  const cpu::GemmKernel<T>& kn;
  const T* B;
  int64_t rsb, csb;
  void operator()(int64_t pc, int64_t kc, int64_t j, int64_t nc, T* dst) const {
    pack_b(kn, B + pc * rsb + j * csb, rsb, csb, kc, nc, dst);
  }
};

// B given by offset tables (engine/gemm.h).
template <class T>
struct PackIndexed {
  const cpu::GemmKernel<T>& kn;
  IndexedMatrix<T> B;
  void operator()(int64_t pc, int64_t kc, int64_t j, int64_t nc, T* dst) const {
    (B.runs_along_rows ? kn.pack_indexed_t : kn.pack_indexed)(B.base, B.row + pc, kc, B.col + j, nc, dst);
  }
};

// ---- the OpenBLAS backend -----------------------------------------------------------------------
// How BLAS reads a (rows, cols) operand with strides (rs, cs): row-major with leading dimension
// ld, transposed or not; false when neither fits (then the operand is copied).
bool blas_layout(int64_t rows, int64_t cols, int64_t rs, int64_t cs, CBLAS_TRANSPOSE& tr, int64_t& ld) {
  if ((cs == 1 || cols == 1) && (rs >= std::max<int64_t>(cols, 1) || rows == 1)) {
    tr = CblasNoTrans;
    ld = std::max<int64_t>({rs, cols, 1});
    return true;
  }
  if ((rs == 1 || rows == 1) && (cs >= std::max<int64_t>(rows, 1) || cols == 1)) {
    tr = CblasTrans;
    ld = std::max<int64_t>({cs, rows, 1});
    return true;
  }
  return false;
}

template <class T>
void blas_call(CBLAS_TRANSPOSE ta, CBLAS_TRANSPOSE tb, int64_t M, int64_t N, int64_t K, T alpha, const T* A,
               int64_t lda, const T* B, int64_t ldb, T beta, T* C, int64_t ldc) {
  if constexpr (std::is_same_v<T, float>)
    cblas_sgemm(CblasRowMajor, ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
  else
    cblas_dgemm(CblasRowMajor, ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

template <class T>
void gemm_openblas(int64_t M, int64_t N, int64_t K, T alpha, const T* A, int64_t rsa, int64_t csa, const T* B,
                   int64_t rsb, int64_t csb, T beta, T* C, int64_t ldc) {
  GV_CHECK(M <= INT32_MAX && N <= INT32_MAX && K <= INT32_MAX, ShapeError,
           "gemm: ({}, {}) @ ({}, {}) is too large for OpenBLAS's 32-bit sizes", M, K, K, N);
  std::unique_ptr<T[]> acopy, bcopy;
  CBLAS_TRANSPOSE ta, tb;
  int64_t lda, ldb;
  if (!blas_layout(M, K, rsa, csa, ta, lda)) {
    acopy.reset(new T[M * K]);
    for (int64_t i = 0; i < M; ++i)
      for (int64_t k = 0; k < K; ++k) acopy[i * K + k] = A[i * rsa + k * csa];
    A = acopy.get(), ta = CblasNoTrans, lda = std::max<int64_t>(K, 1);
  }
  if (!blas_layout(K, N, rsb, csb, tb, ldb)) {
    bcopy.reset(new T[K * N]);
    for (int64_t k = 0; k < K; ++k)
      for (int64_t j = 0; j < N; ++j) bcopy[k * N + j] = B[k * rsb + j * csb];
    B = bcopy.get(), tb = CblasNoTrans, ldb = std::max<int64_t>(N, 1);
  }
  blas_call<T>(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, std::max<int64_t>(ldc, 1));
}

// Checks the sizes; true (with C scaled by beta) when there is no product to compute.
template <class T>
bool trivial_product(int64_t M, int64_t N, int64_t K, T alpha, T beta, T* C, int64_t ldc) {
  GV_CHECK(M >= 0 && N >= 0 && K >= 0, ShapeError, "gemm: negative size ({}, {}) @ ({}, {})", M, K, K, N);
  GV_CHECK(ldc >= N || M <= 1, ShapeError, "gemm: ldc {} is smaller than the {} columns of C", ldc, N);
  if (M == 0 || N == 0) return true;
  if (K == 0 || alpha == T(0)) {
    scale_c(M, N, beta, C, ldc);
    return true;
  }
  return false;
}

}  // namespace

template <class T>
void gemm(int64_t M, int64_t N, int64_t K, T alpha, const T* A, int64_t rsa, int64_t csa, const T* B, int64_t rsb,
          int64_t csb, T beta, T* C, int64_t ldc) {
  if (trivial_product(M, N, K, alpha, beta, C, ldc)) return;
  if (gemm_backend() == GemmBackend::openblas)
    gemm_openblas<T>(M, N, K, alpha, A, rsa, csa, B, rsb, csb, beta, C, ldc);
  else
    gemm_own<T>(M, N, K, alpha, A, rsa, csa, PackStrided<T>{cpu::active_kernel<T>(), B, rsb, csb}, beta, C, ldc);
}

template <class T>
void gemm_indexed_b(int64_t M, int64_t N, int64_t K, T alpha, const T* A, int64_t rsa, int64_t csa,
                    const IndexedMatrix<T>& B, T beta, T* C, int64_t ldc) {
  if (trivial_product(M, N, K, alpha, beta, C, ldc)) return;
  if (gemm_backend() == GemmBackend::openblas) {  // the reference: B written out, then BLAS
    std::unique_ptr<T[]> dense(new T[size_t(K * N)]);
    for (int64_t k = 0; k < K; ++k)
      for (int64_t j = 0; j < N; ++j) dense[size_t(k * N + j)] = B.base[B.row[k] + B.col[j]];
    gemm_openblas<T>(M, N, K, alpha, A, rsa, csa, dense.get(), N, 1, beta, C, ldc);
    return;
  }
  gemm_own<T>(M, N, K, alpha, A, rsa, csa, PackIndexed<T>{cpu::active_kernel<T>(), B}, beta, C, ldc);
}

template void gemm<float>(int64_t, int64_t, int64_t, float, const float*, int64_t, int64_t, const float*, int64_t,
                          int64_t, float, float*, int64_t);
template void gemm<double>(int64_t, int64_t, int64_t, double, const double*, int64_t, int64_t, const double*,
                           int64_t, int64_t, double, double*, int64_t);
template void gemm_indexed_b<float>(int64_t, int64_t, int64_t, float, const float*, int64_t, int64_t,
                                    const IndexedMatrix<float>&, float, float*, int64_t);
template void gemm_indexed_b<double>(int64_t, int64_t, int64_t, double, const double*, int64_t, int64_t,
                                     const IndexedMatrix<double>&, double, double*, int64_t);

}  // namespace gv

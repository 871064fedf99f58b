// matmul.cpp: matrix products through OpenBLAS. Transposed views go to BLAS as a transpose
// flag instead of a copy; batch axes broadcast numpy-style; a batch of matrices times one matrix
// becomes a single GEMM when the batch folds into rows.
#include <cblas.h>

#include <omp.h>

#include <algorithm>

#include "engine/cpu/loops.h"
#include "engine/ops.h"

namespace gv {

constexpr double kSplitGemmFlops = 4e9;  // see gemm_blocks
template <class T>
void gemm_blocks(CBLAS_TRANSPOSE ta, CBLAS_TRANSPOSE tb, int64_t n, int64_t m, int64_t k, const T* a, int64_t lda,
                 const T* b, int64_t ldb, T beta, T* c, int64_t ldc);

namespace {

// How BLAS should read a (rows, cols) matrix with element strides (s0, s1): row-major with
// leading dimension ld, transposed or not. Returns false if neither layout fits.
struct BlasMat {
  CBLAS_TRANSPOSE trans;
  int64_t ld;
};
bool blas_layout(int64_t rows, int64_t cols, int64_t s0, int64_t s1, BlasMat& m) {
  if ((s1 == 1 || cols == 1) && (s0 >= std::max<int64_t>(cols, 1) || rows == 1)) {
    m = {CblasNoTrans, std::max<int64_t>({s0, cols, 1})};
    return true;
  }
  if ((s0 == 1 || rows == 1) && (s1 >= std::max<int64_t>(rows, 1) || cols == 1)) {
    m = {CblasTrans, std::max<int64_t>({s1, rows, 1})};
    return true;
  }
  return false;
}

template <class T>
void gemm_serial(CBLAS_TRANSPOSE ta, CBLAS_TRANSPOSE tb, int64_t n, int64_t m, int64_t k, const T* a, int64_t lda,
                 const T* b, int64_t ldb, T beta, T* c, int64_t ldc) {
  if constexpr (std::is_same_v<T, float>)
    cblas_sgemm(CblasRowMajor, ta, tb, n, m, k, 1.0f, a, lda, b, ldb, beta, c, ldc);
  else
    cblas_dgemm(CblasRowMajor, ta, tb, n, m, k, 1.0, a, lda, b, ldb, beta, c, ldc);
}

}  // namespace

// c (n, m) = a @ b + beta c. Below kSplitGemmFlops, the threads each run one single-threaded GEMM
// on their own block of c's rows or columns (whichever axis is longer), instead of BLAS's own
// threading, whose threads hand packed panels to each other through spin-and-yield waits: on the
// small products of an MLP step those waits cost more than the arithmetic they share.
template <class T>
void gemm_blocks(CBLAS_TRANSPOSE ta, CBLAS_TRANSPOSE tb, int64_t n, int64_t m, int64_t k, const T* a, int64_t lda,
                 const T* b, int64_t ldb, T beta, T* c, int64_t ldc) {
  const int nt = omp_get_max_threads();
  const double flops = 2.0 * double(n) * double(m) * double(k);
  if (nt <= 1 || omp_in_parallel() || flops > kSplitGemmFlops || flops < 2e5 || std::max(n, m) < 32 * nt) {
    gemm_serial<T>(ta, tb, n, m, k, a, lda, b, ldb, beta, c, ldc);
    return;
  }
  const bool by_rows = n >= m;
  const int64_t len = by_rows ? n : m;
#pragma omp parallel num_threads(nt)
  {
    const int t = omp_get_thread_num(), T_ = omp_get_num_threads();
    // block edges on multiples of 16 (whole SIMD panels)
    auto edge = [&](int i) { return i == T_ ? len : (len * i / T_) / 16 * 16; };
    const int64_t lo = edge(t), hi = edge(t + 1);
    if (hi > lo) {
      if (by_rows)
        gemm_serial<T>(ta, tb, hi - lo, m, k, ta == CblasNoTrans ? a + lo * lda : a + lo, lda, b, ldb, beta,
                       c + lo * ldc, ldc);
      else
        gemm_serial<T>(ta, tb, n, hi - lo, k, a, lda, tb == CblasNoTrans ? b + lo : b + lo * ldb, ldb, beta, c + lo,
                       ldc);
    }
  }
}
template void gemm_blocks<float>(CBLAS_TRANSPOSE, CBLAS_TRANSPOSE, int64_t, int64_t, int64_t, const float*, int64_t,
                                 const float*, int64_t, float, float*, int64_t);
template void gemm_blocks<double>(CBLAS_TRANSPOSE, CBLAS_TRANSPOSE, int64_t, int64_t, int64_t, const double*, int64_t,
                                  const double*, int64_t, double, double*, int64_t);

namespace {

template <class T>
void gemm(CBLAS_TRANSPOSE ta, CBLAS_TRANSPOSE tb, int64_t n, int64_t m, int64_t k, const T* a,
          int64_t lda, const T* b, int64_t ldb, T* c, int64_t ldc) {
  gemm_blocks<T>(ta, tb, n, m, k, a, lda, b, ldb, T(0), c, ldc);
}

// c (n, m) = a (n, k) @ b (k, m) for 2-D views; copies an operand only if BLAS cannot read it.
template <class T>
void matmul2d(Tensor a, Tensor b, T* c) {
  int64_t n = a.size(0), k = a.size(1), m = b.size(1);
  BlasMat la, lb;
  if (!blas_layout(n, k, a.strides()[0], a.strides()[1], la)) {
    a = a.contiguous();
    blas_layout(n, k, a.strides()[0], a.strides()[1], la);
  }
  if (!blas_layout(k, m, b.strides()[0], b.strides()[1], lb)) {
    b = b.contiguous();
    blas_layout(k, m, b.strides()[0], b.strides()[1], lb);
  }
  gemm<T>(la.trans, lb.trans, n, m, k, a.data<T>(), la.ld, b.data<T>(), lb.ld, c, std::max<int64_t>(m, 1));
}

}  // namespace

Tensor matmul(const Tensor& a0, const Tensor& b0) {
  GV_CHECK(a0.defined() && b0.defined(), ValueError, "matmul: undefined tensor");
  GV_CHECK(a0.dim() >= 1 && b0.dim() >= 1, ShapeError, "matmul: needs tensors of at least 1 axis, got {} and {}",
           shape_str(a0.shape()), shape_str(b0.shape()));
  GV_CHECK(a0.dtype() == b0.dtype(), DTypeError, "matmul: dtypes differ ({} {} and {} {})",
           dtype_name(a0.dtype()), shape_str(a0.shape()), dtype_name(b0.dtype()), shape_str(b0.shape()));
  GV_CHECK(a0.device().is_cpu() && b0.device().is_cpu(), DeviceError, "matmul: not implemented on {} yet",
           a0.device().is_cpu() ? b0.device().str() : a0.device().str());
  // numpy rules for 1-D operands: a vector on the left is a row, on the right a column
  Tensor a = a0.dim() == 1 ? a0.unsqueeze(0) : a0;
  Tensor b = b0.dim() == 1 ? b0.unsqueeze(1) : b0;
  int64_t n = a.size(-2), k = a.size(-1), k2 = b.size(-2), m = b.size(-1);
  GV_CHECK(k == k2, ShapeError, "matmul: shapes {} and {} cannot be multiplied ({} columns against {} rows)",
           shape_str(a0.shape()), shape_str(b0.shape()), k, k2);
  Shape ba(a.shape().begin(), a.shape().end() - 2), bb(b.shape().begin(), b.shape().end() - 2);
  Shape batch;
  try {
    batch = broadcast_shapes(ba, bb, "matmul");
  } catch (const ShapeError&) {  // name the operands, not just their batch axes
    GV_THROW(ShapeError, "matmul: shapes {} and {} cannot be multiplied (batch axes {} and {} do not broadcast)",
             shape_str(a0.shape()), shape_str(b0.shape()), shape_str(ba), shape_str(bb));
  }
  Shape out_shape = batch;
  out_shape.push_back(n);
  out_shape.push_back(m);
  Tensor out = Tensor::empty(out_shape, a.dtype());

  cpu::dispatch_float(a.dtype(), "matmul", [&]<class T>() {
    T* pc = out.data<T>();
    if (k == 0) { out.fill_(0); return; }
    if (out.numel() == 0) return;
    int64_t nb = shape_numel(batch);
    // a batch of a's times one b: fold the batch into the rows of a single GEMM when a allows
    if (bb.empty() && !ba.empty()) {
      Tensor flat;
      try { flat = a.view({-1, k}); } catch (const ShapeError&) {}
      if (flat.defined()) { matmul2d<T>(flat, b, pc); return; }
    }
    Shape sa = batch, sb = batch;
    sa.insert(sa.end(), {n, k});
    sb.insert(sb.end(), {k, m});
    Tensor ae = a.expand(sa), be = b.expand(sb);
    const int64_t nd = (int64_t)batch.size();
    for (int64_t i = 0; i < nb; ++i) {
      int64_t oa = ae.offset(), ob = be.offset(), r = i;
      for (int64_t d = nd - 1; d >= 0; --d) {
        int64_t j = r % batch[d];
        r /= batch[d];
        oa += j * ae.strides()[d];
        ob += j * be.strides()[d];
      }
      matmul2d<T>(ae.as_strided({n, k}, {ae.strides()[nd], ae.strides()[nd + 1]}, oa),
                  be.as_strided({k, m}, {be.strides()[nd], be.strides()[nd + 1]}, ob), pc + i * n * m);
    }
  });
  if (a0.dim() == 1) out = out.squeeze(-2);
  if (b0.dim() == 1) out = out.squeeze(-1);
  return out;
}

Tensor linear(const Tensor& x0, const Tensor& w, const Tensor& b) {
  GV_CHECK(x0.defined() && w.defined(), ValueError, "linear: undefined tensor");
  GV_CHECK(x0.dim() >= 1 && w.dim() == 2, ShapeError, "linear: expects x (..., in) and w (out, in), got {} and {}",
           shape_str(x0.shape()), shape_str(w.shape()));
  const int64_t in = w.size(1), out = w.size(0);
  GV_CHECK(x0.size(-1) == in, ShapeError, "linear: x {} does not end in w's {} inputs (w {})", shape_str(x0.shape()),
           in, shape_str(w.shape()));
  GV_CHECK(x0.dtype() == w.dtype(), DTypeError, "linear: dtypes differ (x {} {}, w {} {})", dtype_name(x0.dtype()),
           shape_str(x0.shape()), dtype_name(w.dtype()), shape_str(w.shape()));
  GV_CHECK(x0.device().is_cpu() && w.device().is_cpu(), DeviceError, "linear: not implemented on {} yet",
           x0.device().is_cpu() ? w.device().str() : x0.device().str());
  if (b.defined()) {
    GV_CHECK(b.dim() == 1 && b.size(0) == out, ShapeError, "linear: bias must be ({}) for w {}, got {}", out,
             shape_str(w.shape()), shape_str(b.shape()));
    GV_CHECK(b.dtype() == w.dtype() && b.device().is_cpu(), DTypeError, "linear: bias is {} but w is {}", b.str(),
             w.str());
  }
  Shape out_shape = x0.shape();
  out_shape.back() = out;
  Tensor y = Tensor::empty(out_shape, x0.dtype());
  const int64_t n = x0.numel() / std::max<int64_t>(in, 1);
  if (y.numel() == 0) return y;
  Tensor x = x0.contiguous(), wc = w.contiguous();
  cpu::dispatch_float(x.dtype(), "linear", [&]<class T>() {
    T* py = y.data<T>();
    bool with_bias = b.defined();
    if (with_bias) {
      Tensor bc = b.contiguous();
      const T* pb = bc.data<T>();
      cpu::parallel_for(n, out, [&](int64_t r0, int64_t r1) {
        for (int64_t r = r0; r < r1; ++r) std::copy(pb, pb + out, py + r * out);
      });
    }
    if (in == 0) {
      if (!with_bias) std::fill(py, py + n * out, T(0));
      return;
    }
    const T beta = with_bias ? T(1) : T(0);
    gemm_blocks<T>(CblasNoTrans, CblasTrans, n, out, in, x.data<T>(), in, wc.data<T>(), in, beta, py, out);
  });
  return y;
}

}  // namespace gv

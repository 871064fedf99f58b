// matmul.cpp: matrix products through the engine's GEMM (engine/gemm.h). Transposed, strided
// and broadcast views go in through their strides, without a copy; batch axes broadcast
// numpy-style; a batch of matrices times one matrix becomes a single GEMM when the batch folds
// into rows (which changes no bits: a row of a product never depends on the other rows).
#include <algorithm>

#include "engine/cpu/loops.h"
#include "engine/gemm.h"
#include "engine/ops.h"

namespace gv {

namespace {

// c (n, m) = a (n, k) @ b (k, m) for 2-D views of any strides: the GEMM reads them in place.
template <class T>
void matmul2d(const Tensor& a, const Tensor& b, T* c) {
  const int64_t n = a.size(0), k = a.size(1), m = b.size(1);
  gemm<T>(n, m, k, T(1), a.data<T>(), a.strides()[0], a.strides()[1], b.data<T>(), b.strides()[0], b.strides()[1],
          T(0), c, std::max<int64_t>(m, 1));
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
  Tensor x = x0.contiguous();
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
    // y (n, out) = x (n, in) @ w^T + beta y: w^T read through w's strides
    gemm<T>(n, out, in, T(1), x.data<T>(), in, 1, w.data<T>(), w.strides()[1], w.strides()[0], beta, py, out);
  });
  return y;
}

}  // namespace gv

// matmul.cpp: the front ends of matmul and linear: checks, shapes, the output on the operands'
// device, and the products through the backend's one GEMM (engine/backend.h; on the CPU,
// engine/gemm.h). Transposed, strided
// and broadcast views go in through their strides, without a copy; batch axes broadcast
// numpy-style; a batch of matrices times one matrix becomes a single GEMM when the batch folds
// into rows (which changes no bits: a row of a product never depends on the other rows).
#include <algorithm>

#include "engine/backend.h"
#include "engine/ops.h"

namespace gv {

namespace {

// c (n, m) = a (n, k) @ b (k, m) for 2-D views of any strides: the GEMM reads them in place.
void matmul2d(Backend& be, const Tensor& a, const Tensor& b, void* c) {
  const int64_t n = a.size(0), k = a.size(1), m = b.size(1);
  be.gemm(GemmArgs{"matmul", a.dtype(), n, m, k, 1.0, 0.0, a.raw_data(), a.strides()[0], a.strides()[1],
                   b.raw_data(), b.strides()[0], b.strides()[1], c, std::max<int64_t>(m, 1)});
}

}  // namespace

Tensor matmul(const Tensor& a0, const Tensor& b0) {
  GV_CHECK(a0.defined() && b0.defined(), ValueError, "matmul: undefined tensor");
  GV_CHECK(a0.dim() >= 1 && b0.dim() >= 1, ShapeError, "matmul: needs tensors of at least 1 axis, got {} and {}",
           shape_str(a0.shape()), shape_str(b0.shape()));
  GV_CHECK(a0.dtype() == b0.dtype(), DTypeError, "matmul: dtypes differ ({} {} and {} {})",
           dtype_name(a0.dtype()), shape_str(a0.shape()), dtype_name(b0.dtype()), shape_str(b0.shape()));
  GV_CHECK(a0.device() == b0.device(), DeviceError, "matmul: operands on different devices ({} and {})",
           a0.device().str(), b0.device().str());
  GV_CHECK(is_floating(a0.dtype()), DTypeError, "matmul: needs float32 or float64 tensors, got {}", a0.str());
  Backend& be = backend_for(a0.device(), "matmul");
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
  Tensor out = Tensor::empty(out_shape, a.dtype(), a.device());
  if (out.numel() == 0) return out;
  if (k == 0) {
    out.fill_(0);
  } else {
    const int64_t nb = shape_numel(batch), esize = (int64_t)dtype_size(a.dtype());
    char* pc = static_cast<char*>(out.raw_data());
    Tensor flat;  // a batch of a's times one b: fold the batch into the rows of one GEMM when a allows
    if (bb.empty() && !ba.empty()) {
      try { flat = a.view({-1, k}); } catch (const ShapeError&) {}
    }
    if (flat.defined()) {
      matmul2d(be, flat, b, pc);
    } else {
      Shape sa = batch, sb = batch;
      sa.insert(sa.end(), {n, k});
      sb.insert(sb.end(), {k, m});
      Tensor ae = a.expand(sa), be_ = b.expand(sb);
      const int64_t nd = (int64_t)batch.size();
      for (int64_t i = 0; i < nb; ++i) {
        int64_t oa = ae.offset(), ob = be_.offset(), r = i;
        for (int64_t d = nd - 1; d >= 0; --d) {
          int64_t j = r % batch[d];
          r /= batch[d];
          oa += j * ae.strides()[d];
          ob += j * be_.strides()[d];
        }
        matmul2d(be, ae.as_strided({n, k}, {ae.strides()[nd], ae.strides()[nd + 1]}, oa),
                 be_.as_strided({k, m}, {be_.strides()[nd], be_.strides()[nd + 1]}, ob), pc + i * n * m * esize);
      }
    }
  }
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
  GV_CHECK(x0.device() == w.device(), DeviceError, "linear: x on {} but w on {}", x0.device().str(), w.device().str());
  GV_CHECK(is_floating(x0.dtype()), DTypeError, "linear: needs float32 or float64 tensors, got {}", x0.str());
  if (b.defined()) {
    GV_CHECK(b.dim() == 1 && b.size(0) == out, ShapeError, "linear: bias must be ({}) for w {}, got {}", out,
             shape_str(w.shape()), shape_str(b.shape()));
    GV_CHECK(b.dtype() == w.dtype() && b.device() == w.device(), DTypeError, "linear: bias is {} but w is {}",
             b.str(), w.str());
  }
  Backend& be = backend_for(x0.device(), "linear");
  Shape out_shape = x0.shape();
  out_shape.back() = out;
  Tensor y = Tensor::empty(out_shape, x0.dtype(), x0.device());
  const int64_t n = x0.numel() / std::max<int64_t>(in, 1);
  if (y.numel() == 0) return y;
  if (b.defined()) y.copy_(b);  // every row starts as the bias; the GEMM adds to it (beta = 1)
  if (in == 0) {
    if (!b.defined()) y.fill_(0);
    return y;
  }
  const Tensor x = x0.contiguous();
  // y (n, out) = x (n, in) @ w^T + beta y: w^T read through w's strides
  be.gemm(GemmArgs{"linear", x.dtype(), n, out, in, 1.0, b.defined() ? 1.0 : 0.0, x.raw_data(), in, 1, w.raw_data(),
                   w.strides()[1], w.strides()[0], y.raw_data(), out});
  return y;
}

}  // namespace gv

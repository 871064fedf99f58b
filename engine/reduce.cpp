// reduce.cpp: the front ends of the reductions over any set of axes (sum, mean, max, argmax):
// they check the axes, allocate the output (keepdim form) on x's device and hand TensorRefs to
// that device's backend (engine/backend.h); and the ops composed from them (logsumexp, softmax,
// log_softmax, sum_to).
#include <cmath>
#include <vector>

#include "engine/backend.h"
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

// The output's shape with the reduced axes kept as size 1, and as the op returns it.
struct OutShapes {
  Shape keep, out;
  int64_t red_numel = 1;
};
OutShapes out_shapes(const Tensor& x, const std::vector<int64_t>& red, bool keepdim) {
  OutShapes s;
  std::vector<bool> on(x.dim(), false);
  for (int64_t d : red) on[d] = true;
  for (int64_t d = 0; d < x.dim(); ++d) {
    s.keep.push_back(on[d] ? 1 : x.shape()[d]);
    if (on[d]) s.red_numel *= x.shape()[d];
    if (!on[d] || keepdim) s.out.push_back(on[d] ? 1 : x.shape()[d]);
  }
  return s;
}

Tensor reduce_op(ReduceOp op, const char* name, const Tensor& x, const std::vector<int64_t>& red, bool keepdim,
                 DType out_dtype) {
  const OutShapes s = out_shapes(x, red, keepdim);
  Tensor out = Tensor::empty(s.keep, out_dtype, x.device());
  bool reduced[kMaxDims] = {};
  GV_CHECK(x.dim() <= kMaxDims, ShapeError, "{}: at most {} axes, got shape {}", name, kMaxDims, shape_str(x.shape()));
  for (int64_t d : red) reduced[d] = true;
  if (out.numel() > 0) backend_for(x.device(), name).reduce(op, tensor_ref(out), tensor_ref(x), reduced);
  return keepdim ? out : out.view(s.out);
}

}  // namespace

Tensor sum(const Tensor& x, const Axes& axes, bool keepdim) {
  GV_CHECK(x.defined(), ValueError, "sum: undefined tensor");
  return reduce_op(ReduceOp::sum, "sum", x, norm_axes(x, axes, "sum"), keepdim, x.dtype());
}

Tensor mean(const Tensor& x, const Axes& axes, bool keepdim) {
  GV_CHECK(is_floating(x.dtype()), DTypeError, "mean: needs a float tensor, got {}", x.str());
  const int64_t n = out_shapes(x, norm_axes(x, axes, "mean"), keepdim).red_numel;
  GV_CHECK(n > 0, ShapeError, "mean: reducing an empty axis of shape {}", shape_str(x.shape()));
  return div(sum(x, axes, keepdim), double(n));
}

Tensor max(const Tensor& x, const Axes& axes, bool keepdim) {
  GV_CHECK(x.defined(), ValueError, "max: undefined tensor");
  const std::vector<int64_t> red = norm_axes(x, axes, "max");
  GV_CHECK(out_shapes(x, red, keepdim).red_numel > 0, ShapeError, "max: reducing an empty axis of shape {}",
           shape_str(x.shape()));
  return reduce_op(ReduceOp::max, "max", x, red, keepdim, x.dtype());
}

Tensor argmax(const Tensor& x, int64_t axis, bool keepdim) {
  GV_CHECK(x.defined(), ValueError, "argmax: undefined tensor");
  const int64_t ax = x.norm_axis(axis, "argmax");
  GV_CHECK(x.shape()[ax] > 0, ShapeError, "argmax: empty axis {} of shape {}", axis, shape_str(x.shape()));
  return reduce_op(ReduceOp::argmax, "argmax", x, {ax}, keepdim, DType::i64);
}

// log sum exp(x) = m + log sum exp(x - m), m the max (taken as 0 where it is infinite).
Tensor logsumexp(const Tensor& x, const Axes& axes, bool keepdim) {
  GV_CHECK(is_floating(x.dtype()), DTypeError, "logsumexp: needs a float tensor, got {}", x.str());
  Tensor m = max(x, axes, true);
  Tensor mf = where(eq(abs(m), Tensor::scalar(INFINITY, m.dtype())), Tensor::scalar(0, m.dtype()), m);
  Tensor r = add(log(sum(exp(sub(x, mf)), axes, true)), mf);
  if (keepdim) return r;
  return r.reshape(out_shapes(x, norm_axes(x, axes, "logsumexp"), false).out);
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

// elementwise.cpp: the front ends of the element-wise ops (unary, its backward, binary, where):
// they check the operands, broadcast the shapes, allocate the output on the operands' device and
// hand TensorRefs to that device's backend (engine/backend.h). The kernels are in
// engine/cpu/cpu_backend.cpp; the math is the functors of engine/functors.h.
#include "engine/backend.h"
#include "engine/ops.h"

namespace gv {

const char* unary_op_name(UnaryOp op) {
  switch (op) {
#define GV_NAME(name, F) case UnaryOp::name: return #name;
    GV_UNARY_OPS(GV_NAME)
#undef GV_NAME
  }
  return "?";
}
const char* binary_op_name(BinaryOp op) {
  switch (op) {
#define GV_NAME(name, F) case BinaryOp::name: return #name;
    GV_BINARY_OPS(GV_NAME)
#undef GV_NAME
  }
  return "?";
}

namespace {

void check_same(const Tensor& a, const Tensor& b, const char* op) {
  GV_CHECK(a.defined() && b.defined(), ValueError, "{}: undefined tensor", op);
  GV_CHECK(a.dtype() == b.dtype(), DTypeError, "{}: dtypes differ ({} and {}, shapes {} and {})", op,
           dtype_name(a.dtype()), dtype_name(b.dtype()), shape_str(a.shape()), shape_str(b.shape()));
  GV_CHECK(a.device() == b.device(), DeviceError, "{}: tensors on different devices ({} and {})", op,
           a.device().str(), b.device().str());
}

// Integer division by zero and negative integer powers have no int64 answer: refuse them
// rather than trap (x / 0) or return garbage.
void check_int_operand(BinaryOp op, const Tensor& b) {
  Tensor bc = (b.device().is_cpu() ? b : b.to(Device::cpu())).contiguous();  // read on the host (int64 div and pow only)
  const int64_t* p = bc.data<int64_t>();
  for (int64_t i = 0; i < bc.numel(); ++i) {
    GV_CHECK(!(op == BinaryOp::div && p[i] == 0), ValueError, "div: integer division by zero (divisor element {} of shape {})",
             i, shape_str(b.shape()));
    GV_CHECK(!(op == BinaryOp::pow && p[i] < 0), ValueError, "pow: negative integer exponent {} (element {} of shape {})",
             p[i], i, shape_str(b.shape()));
  }
}

}  // namespace

Tensor unary(UnaryOp op, const Tensor& x, double a, double b) {
  const char* name = unary_op_name(op);
  GV_CHECK(x.defined(), ValueError, "{}: undefined tensor", name);
  Tensor y = Tensor::empty(x.shape(), x.dtype(), x.device());
  // the CUDA backend's unary kernel reads contiguous input only, until its strided kernels come
  const Tensor xin = x.device().is_cpu() ? x : x.contiguous();
  if (y.numel() > 0) backend_for(x.device(), name).unary(op, tensor_ref(y), tensor_ref(xin), a, b);
  return y;
}

Tensor unary_backward(UnaryOp op, const Tensor& x, const Tensor& y, const Tensor& gout, double a,
                      double b) {
  const char* name = unary_op_name(op);
  check_same(x, gout, name);
  check_same(x, y, name);
  GV_CHECK(x.shape() == y.shape() && x.shape() == gout.shape(), ShapeError,
           "{} backward: shapes differ (x {}, y {}, gout {})", name, shape_str(x.shape()),
           shape_str(y.shape()), shape_str(gout.shape()));
  Tensor gx = Tensor::empty(x.shape(), x.dtype(), x.device());
  if (gx.numel() > 0)
    backend_for(x.device(), name)
        .unary_backward(op, tensor_ref(gx), tensor_ref(x), tensor_ref(y), tensor_ref(gout), a, b);
  return gx;
}

namespace {
int64_t gate_axis(const Tensor& x, int64_t axis, const char* op) {
  GV_CHECK(x.defined(), ValueError, "{}: undefined tensor", op);
  GV_CHECK(is_floating(x.dtype()), DTypeError, "{}: needs a float tensor, got {}", op, x.str());
  const int64_t ax = x.norm_axis(axis, op);
  GV_CHECK(x.size(ax) % 2 == 0, ShapeError, "{}: axis {} of {} must have an even size (two halves)", op, axis,
           shape_str(x.shape()));
  return ax;
}
}  // namespace

Tensor gate(const Tensor& x, int64_t axis) {
  const int64_t ax = gate_axis(x, axis, "gate"), C = x.size(ax) / 2;
  Shape s = x.shape();
  s[size_t(ax)] = C;
  Tensor y = Tensor::empty(s, x.dtype(), x.device());
  if (y.numel() > 0)
    backend_for(x.device(), "gate").gate(tensor_ref(y), tensor_ref(x.slice(ax, 0, C)), tensor_ref(x.slice(ax, C, 2 * C)));
  return y;
}

Tensor gate_backward(const Tensor& x, const Tensor& gout, int64_t axis) {
  const int64_t ax = gate_axis(x, axis, "gate backward"), C = x.size(ax) / 2;
  check_same(x, gout, "gate backward");
  Shape s = x.shape();
  s[size_t(ax)] = C;
  GV_CHECK(gout.shape() == s, ShapeError, "gate backward: gout {} does not match the output {} of x {}",
           shape_str(gout.shape()), shape_str(s), shape_str(x.shape()));
  Tensor gx = Tensor::empty(x.shape(), x.dtype(), x.device());
  if (gx.numel() > 0)
    backend_for(x.device(), "gate")
        .gate_backward(tensor_ref(gx.slice(ax, 0, C)), tensor_ref(gx.slice(ax, C, 2 * C)), tensor_ref(x.slice(ax, 0, C)),
                       tensor_ref(x.slice(ax, C, 2 * C)), tensor_ref(gout));
  return gx;
}

Tensor binary(BinaryOp op, const Tensor& a, const Tensor& b) {
  const char* name = binary_op_name(op);
  check_same(a, b, name);
  Shape shape = broadcast_shapes(a.shape(), b.shape(), name);
  if (a.dtype() == DType::i64 && a.device().is_cpu() && (op == BinaryOp::div || op == BinaryOp::pow))
    check_int_operand(op, b);
  Tensor out = Tensor::empty(shape, a.dtype(), a.device());
  if (out.numel() > 0)
    backend_for(a.device(), name).binary(op, tensor_ref(out), tensor_ref(a, shape), tensor_ref(b, shape));
  return out;
}

Tensor where(const Tensor& cond, const Tensor& a, const Tensor& b) {
  check_same(a, b, "where");
  GV_CHECK(cond.defined(), ValueError, "where: undefined condition");
  GV_CHECK(cond.device() == a.device(), DeviceError, "where: condition on {} but values on {}", cond.device().str(),
           a.device().str());
  Shape shape = broadcast_shapes(broadcast_shapes(cond.shape(), a.shape(), "where"), b.shape(), "where");
  Tensor out = Tensor::empty(shape, a.dtype(), a.device());
  if (out.numel() > 0)
    backend_for(a.device(), "where")
        .where(tensor_ref(out), tensor_ref(cond, shape), tensor_ref(a, shape), tensor_ref(b, shape));
  return out;
}

// ---- named wrappers ---------------------------------------------------------------------------
#define GV_DEFINE_UNARY(name, F) \
  Tensor name(const Tensor& x) { return unary(UnaryOp::name, x); }
GV_UNARY_OPS_NOARG(GV_DEFINE_UNARY)
#undef GV_DEFINE_UNARY
Tensor leaky_relu(const Tensor& x, double slope) { return unary(UnaryOp::leaky_relu, x, slope); }
Tensor clamp(const Tensor& x, double lo, double hi) {
  GV_CHECK(lo <= hi, ValueError, "clamp: lower bound {} is above upper bound {}", lo, hi);
  return unary(UnaryOp::clamp, x, lo, hi);
}

#define GV_DEFINE_BINARY(name, F)                                                   \
  Tensor name(const Tensor& a, const Tensor& b) { return binary(BinaryOp::name, a, b); } \
  Tensor name(const Tensor& a, double b) {                                            \
    return binary(BinaryOp::name, a, Tensor::scalar(b, a.dtype(), a.device()));       \
  }
GV_BINARY_OPS(GV_DEFINE_BINARY)
#undef GV_DEFINE_BINARY

}  // namespace gv

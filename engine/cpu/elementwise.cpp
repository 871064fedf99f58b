// elementwise.cpp: unary and binary element-wise ops and where(), on any strides and broadcast
// shapes. The math is the functors of engine/functors.h; this file only walks memory.
#include <array>

#include "engine/cpu/isa_call.h"
#include "engine/cpu/loops.h"
#include "engine/cuda/cuda_backend.h"
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

template <class F>
void call_unary(UnaryOp op, F&& f) {
  switch (op) {
#define GV_CASE(name, Fn) case UnaryOp::name: f.template operator()<Fn>(); break;
    GV_UNARY_OPS(GV_CASE)
#undef GV_CASE
  }
}
template <class F>
void call_binary(BinaryOp op, F&& f) {
  switch (op) {
#define GV_CASE(name, Fn) case BinaryOp::name: f.template operator()<Fn>(); break;
    GV_BINARY_OPS(GV_CASE)
#undef GV_CASE
  }
}

void check_same(const Tensor& a, const Tensor& b, const char* op) {
  GV_CHECK(a.defined() && b.defined(), ValueError, "{}: undefined tensor", op);
  GV_CHECK(a.dtype() == b.dtype(), DTypeError, "{}: dtypes differ ({} and {}, shapes {} and {})", op,
           dtype_name(a.dtype()), dtype_name(b.dtype()), shape_str(a.shape()), shape_str(b.shape()));
  GV_CHECK(a.device() == b.device(), DeviceError, "{}: tensors on different devices ({} and {})", op,
           a.device().str(), b.device().str());
}

void check_cpu(const Tensor& t, const char* op) {
  GV_CHECK(t.device().is_cpu(), DeviceError, "{}: not implemented on {} yet (tensor {})", op,
           t.device().str(), t.str());
}

// Integer division by zero and negative integer powers have no int64 answer: refuse them
// rather than trap (x / 0) or return garbage.
void check_int_operand(BinaryOp op, const Tensor& b) {
  Tensor bc = b.contiguous();
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
  if (x.device().is_cuda()) {
    GV_CHECK(is_floating(x.dtype()), DTypeError, "{}: needs a float tensor, got {}", name, x.str());
    Tensor xc = x.contiguous();
    Tensor y = Tensor::empty(x.shape(), x.dtype(), x.device());
    cuda::unary(op, x.dtype(), xc.raw_data(), y.raw_data(), x.numel(), a, b, x.device().index);
    return y;
  }
  Tensor y = Tensor::empty(x.shape(), x.dtype());
  cpu::dispatch_float(x.dtype(), name, [&]<class T>() {
    const T* px = x.data<T>();
    T* py = y.data<T>();
    const T ta = T(a), tb = T(b);
    call_unary(op, [&]<class F>() {
      cpu::strided_for<2>(x.shape(), {y.strides(), x.strides()}, [&](auto o, int64_t n, auto in) {
        T* d = py + o[0];
        const T* s = px + o[1];
        if (in[1] == 1)
          cpu::isa_call([&] {
            for (int64_t i = 0; i < n; ++i) d[i] = F::template f<T>(s[i], ta, tb);
          });
        else
          for (int64_t i = 0; i < n; ++i) d[i] = F::template f<T>(s[i * in[1]], ta, tb);
      });
    });
  });
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
  check_cpu(x, name);
  Tensor gx = Tensor::empty(x.shape(), x.dtype());
  cpu::dispatch_float(x.dtype(), name, [&]<class T>() {
    const T *px = x.data<T>(), *py = y.data<T>(), *pg = gout.data<T>();
    T* pd = gx.data<T>();
    const T ta = T(a), tb = T(b);
    call_unary(op, [&]<class F>() {
      cpu::strided_for<4>(x.shape(), {gx.strides(), x.strides(), y.strides(), gout.strides()},
                          [&](auto o, int64_t n, auto in) {
                            if (in[1] == 1 && in[2] == 1 && in[3] == 1) {
                              T* d = pd + o[0];
                              const T *xs = px + o[1], *ys = py + o[2], *gs = pg + o[3];
                              cpu::isa_call([&] {
                                for (int64_t i = 0; i < n; ++i) d[i] = gs[i] * F::template df<T>(xs[i], ys[i], ta, tb);
                              });
                              return;
                            }
                            for (int64_t i = 0; i < n; ++i)
                              pd[o[0] + i] = pg[o[3] + i * in[3]] *
                                             F::template df<T>(px[o[1] + i * in[1]], py[o[2] + i * in[2]], ta, tb);
                          });
    });
  });
  return gx;
}

Tensor binary(BinaryOp op, const Tensor& a, const Tensor& b) {
  const char* name = binary_op_name(op);
  check_same(a, b, name);
  check_cpu(a, name);
  Shape shape = broadcast_shapes(a.shape(), b.shape(), name);
  if (a.dtype() == DType::i64 && (op == BinaryOp::div || op == BinaryOp::pow)) check_int_operand(op, b);
  Tensor out = Tensor::empty(shape, a.dtype());
  Shape sa = cpu::broadcast_strides(a, shape), sb = cpu::broadcast_strides(b, shape);
  cpu::dispatch_all(a.dtype(), name, [&]<class T>() {
    const T *pa = a.data<T>(), *pb = b.data<T>();
    T* po = out.data<T>();
    call_binary(op, [&]<class F>() {
      cpu::strided_for<3>(shape, {out.strides(), sa, sb}, [&](auto o, int64_t n, auto in) {
        T* d = po + o[0];
        const T *x = pa + o[1], *y = pb + o[2];
        if (in[1] == 1 && in[2] == 1)
          cpu::isa_call([&] {
            for (int64_t i = 0; i < n; ++i) d[i] = F::template f<T>(x[i], y[i]);
          });
        else if (in[1] == 1 && in[2] == 0)
          cpu::isa_call([&] {
            const T y0 = y[0];
            for (int64_t i = 0; i < n; ++i) d[i] = F::template f<T>(x[i], y0);
          });
        else
          for (int64_t i = 0; i < n; ++i) d[i] = F::template f<T>(x[i * in[1]], y[i * in[2]]);
      });
    });
  });
  return out;
}

Tensor where(const Tensor& cond, const Tensor& a, const Tensor& b) {
  check_same(a, b, "where");
  GV_CHECK(cond.defined(), ValueError, "where: undefined condition");
  check_cpu(a, "where");
  check_cpu(cond, "where");
  Shape shape = broadcast_shapes(broadcast_shapes(cond.shape(), a.shape(), "where"), b.shape(), "where");
  Tensor out = Tensor::empty(shape, a.dtype());
  Shape sc = cpu::broadcast_strides(cond, shape), sa = cpu::broadcast_strides(a, shape),
        sb = cpu::broadcast_strides(b, shape);
  cpu::dispatch_all(a.dtype(), "where", [&]<class T>() {
    cpu::dispatch_all(cond.dtype(), "where", [&]<class C>() {
      const C* pc = cond.data<C>();
      const T *pa = a.data<T>(), *pb = b.data<T>();
      T* po = out.data<T>();
      cpu::strided_for<4>(shape, {out.strides(), sc, sa, sb}, [&](auto o, int64_t n, auto in) {
        for (int64_t i = 0; i < n; ++i)
          po[o[0] + i] = pc[o[1] + i * in[1]] != C(0) ? pa[o[2] + i * in[2]] : pb[o[3] + i * in[3]];
      });
    });
  });
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

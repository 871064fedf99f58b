// functors.h: the scalar math of every element-wise op, written once for both backends.
// Each unary functor has f(x) and, where the op is differentiable, df(x, y) = dy/dx given the
// input x and the output y = f(x) (whichever is cheaper to use). The CPU loops in cpu/ and the
// CUDA kernels in cuda/ instantiate the same structs, so host tests exercise the GPU's math.
// Params a, b carry per-op constants (leaky_relu's slope, clamp's bounds).
#pragma once
#include <cmath>
#include <cstdint>
#include <type_traits>

#include "engine/fastmath.h"
#include "engine/macros.h"

namespace gv {


// The unary ops without parameters; X(name, Functor).
#define GV_UNARY_OPS_NOARG(X)          \
  X(neg, NegF)                         \
  X(exp, ExpF)                         \
  X(log, LogF)                         \
  X(log1p, Log1pF)                     \
  X(sqrt, SqrtF)                       \
  X(square, SquareF)                   \
  X(abs, AbsF)                         \
  X(tanh, TanhF)                       \
  X(sigmoid, SigmoidF)                 \
  X(softplus, SoftplusF)               \
  X(relu, ReluF)                       \
  X(elu, EluF)

// All unary ops: those plus the ones that take parameters.
#define GV_UNARY_OPS(X)                \
  GV_UNARY_OPS_NOARG(X)                \
  X(leaky_relu, LeakyReluF)            \
  X(clamp, ClampF)

enum class UnaryOp : uint8_t {
#define GV_ENUM_ENTRY(name, F) name,
  GV_UNARY_OPS(GV_ENUM_ENTRY)
#undef GV_ENUM_ENTRY
};

const char* unary_op_name(UnaryOp op);

// The transcendental functions the functors call. float32 on the host goes to engine/fastmath.h
// (branch-free, so the CPU loops vectorize; within 2 ulp); CUDA device code keeps the CUDA math
// library's functions; float64 stays on std::.
namespace fn {
using std::sqrt;
using std::fabs;
GV_HD double exp(double x) { return std::exp(x); }
GV_HD double log(double x) { return std::log(x); }
GV_HD double log1p(double x) { return std::log1p(x); }
GV_HD double tanh(double x) { return std::tanh(x); }
#ifdef __CUDA_ARCH__
GV_HD float exp(float x) { return std::exp(x); }
GV_HD float log(float x) { return std::log(x); }
GV_HD float log1p(float x) { return std::log1p(x); }
GV_HD float tanh(float x) { return std::tanh(x); }
#else
GV_HD float exp(float x) { return fast_expf(x); }
GV_HD float log(float x) { return fast_logf(x); }
GV_HD float log1p(float x) { return fast_log1pf(x); }
GV_HD float tanh(float x) { return fast_tanhf(x); }
#endif
// c ? a : b with both computed. On the host a blend of the bits: GCC (under its default
// -ftrapping-math) may turn a floating ?: into a branch that it then will not if-convert, which
// keeps the whole loop scalar.
template <class T>
GV_HD T select(bool c, T a, T b) {
#ifdef __CUDA_ARCH__
  return c ? a : b;
#else
  return fm_detail::pick(c, a, b);
#endif
}
}  // namespace fn

struct NegF {
  template <class T> GV_HD static T f(T x, T, T) { return -x; }
  template <class T> GV_HD static T df(T, T, T, T) { return T(-1); }
};
struct ExpF {
  template <class T> GV_HD static T f(T x, T, T) { return fn::exp(x); }
  template <class T> GV_HD static T df(T, T y, T, T) { return y; }  // d exp = exp
};
struct LogF {
  template <class T> GV_HD static T f(T x, T, T) { return fn::log(x); }
  template <class T> GV_HD static T df(T x, T, T, T) { return T(1) / x; }
};
struct Log1pF {
  template <class T> GV_HD static T f(T x, T, T) { return fn::log1p(x); }
  template <class T> GV_HD static T df(T x, T, T, T) { return T(1) / (T(1) + x); }
};
struct SqrtF {
  template <class T> GV_HD static T f(T x, T, T) { return fn::sqrt(x); }
  template <class T> GV_HD static T df(T, T y, T, T) { return T(0.5) / y; }
};
struct SquareF {
  template <class T> GV_HD static T f(T x, T, T) { return x * x; }
  template <class T> GV_HD static T df(T x, T, T, T) { return T(2) * x; }
};
struct AbsF {  // kink at 0: derivative taken as 0 there
  template <class T> GV_HD static T f(T x, T, T) { return x < T(0) ? -x : x; }
  template <class T> GV_HD static T df(T x, T, T, T) { return T((x > T(0)) - (x < T(0))); }
};
struct TanhF {
  template <class T> GV_HD static T f(T x, T, T) { return fn::tanh(x); }
  template <class T> GV_HD static T df(T, T y, T, T) { return T(1) - y * y; }
};
struct SigmoidF {  // 1 / (1 + e^-x) for x >= 0, e^x / (1 + e^x) below: e = e^-|x| never overflows
  template <class T> GV_HD static T f(T x, T, T) {
    const T e = fn::exp(-fn::fabs(x));  // selects, not branches: the CPU loops vectorize
    return fn::select(x >= T(0), T(1), e) / (T(1) + e);
  }
  template <class T> GV_HD static T df(T, T y, T, T) { return y * (T(1) - y); }
};
struct SoftplusF {  // log(1 + e^x) = max(x, 0) + log1p(e^-|x|)
  template <class T> GV_HD static T f(T x, T, T) {
    return fn::select(x > T(0), x, T(0)) + fn::log1p(fn::exp(-fn::fabs(x)));
  }
  template <class T> GV_HD static T df(T x, T, T, T) { return SigmoidF::f<T>(x, T(0), T(0)); }
};
struct ReluF {  // kink at 0: derivative 0 there
  template <class T> GV_HD static T f(T x, T, T) { return x > T(0) ? x : T(0); }
  template <class T> GV_HD static T df(T x, T, T, T) { return fn::select(x > T(0), T(1), T(0)); }
};
struct EluF {  // x for x > 0, e^x - 1 below (PixelCNN++'s concat-ELU); e^min(x, 0) never overflows
  template <class T> GV_HD static T f(T x, T, T) {
    return fn::select(x > T(0), x, fn::exp(fn::select(x > T(0), T(0), x)) - T(1));
  }
  template <class T> GV_HD static T df(T x, T y, T, T) { return fn::select(x > T(0), T(1), y + T(1)); }
};
struct LeakyReluF {  // a = negative slope
  template <class T> GV_HD static T f(T x, T a, T) { return fn::select(x > T(0), x, a * x); }
  template <class T> GV_HD static T df(T x, T, T a, T) { return fn::select(x > T(0), T(1), a); }
};
struct ClampF {  // a = lower bound, b = upper bound; gradient flows strictly inside [a, b]
  template <class T> GV_HD static T f(T x, T a, T b) { return x < a ? a : (x > b ? b : x); }
  template <class T> GV_HD static T df(T x, T, T a, T b) { return fn::select((x >= a) & (x <= b), T(1), T(0)); }
};

// Binary element-wise ops (the output has the inputs' dtype; comparisons give 1 or 0).
#define GV_BINARY_OPS(X) \
  X(add, AddF)           \
  X(sub, SubF)           \
  X(mul, MulF)           \
  X(div, DivF)           \
  X(pow, PowF)           \
  X(maximum, MaxF)       \
  X(minimum, MinF)       \
  X(eq, EqF)             \
  X(ne, NeF)             \
  X(lt, LtF)             \
  X(le, LeF)             \
  X(gt, GtF)             \
  X(ge, GeF)

enum class BinaryOp : uint8_t {
#define GV_ENUM_ENTRY(name, F) name,
  GV_BINARY_OPS(GV_ENUM_ENTRY)
#undef GV_ENUM_ENTRY
};

const char* binary_op_name(BinaryOp op);

struct AddF { template <class T> GV_HD static T f(T a, T b) { return a + b; } };
struct SubF { template <class T> GV_HD static T f(T a, T b) { return a - b; } };
struct MulF { template <class T> GV_HD static T f(T a, T b) { return a * b; } };
struct DivF {  // integer a / -1 is computed as -a so INT64_MIN / -1 wraps instead of trapping
  template <class T> GV_HD static T f(T a, T b) {
    if constexpr (std::is_integral_v<T>) return b == T(-1) ? T(0ull - (unsigned long long)a) : a / b;
    else return a / b;
  }
};
struct PowF {
  template <class T> GV_HD static T f(T a, T b) {
    if constexpr (std::is_integral_v<T>) {  // integer power, b >= 0
      T r = 1;
      for (T e = b; e > 0; --e) r *= a;
      return r;
    } else {
      return std::pow(a, b);
    }
  }
};
struct MaxF { template <class T> GV_HD static T f(T a, T b) { return a >= b ? a : b; } };
struct MinF { template <class T> GV_HD static T f(T a, T b) { return a <= b ? a : b; } };
struct EqF { template <class T> GV_HD static T f(T a, T b) { return T(a == b); } };
struct NeF { template <class T> GV_HD static T f(T a, T b) { return T(a != b); } };
struct LtF { template <class T> GV_HD static T f(T a, T b) { return T(a < b); } };
struct LeF { template <class T> GV_HD static T f(T a, T b) { return T(a <= b); } };
struct GtF { template <class T> GV_HD static T f(T a, T b) { return T(a > b); } };
struct GeF { template <class T> GV_HD static T f(T a, T b) { return T(a >= b); } };

// The gated unit of PixelCNN and WaveNet, tanh(a) * sigmoid(b), and its two partial derivatives
// times the output's gradient g, in one pass (engine/ops.h gate): the halves never become tensors.
struct GateF {
  template <class T> GV_HD static T f(T a, T b) { return TanhF::f<T>(a, T(0), T(0)) * SigmoidF::f<T>(b, T(0), T(0)); }
  template <class T> GV_HD static void df(T a, T b, T g, T& ga, T& gb) {
    const T t = TanhF::f<T>(a, T(0), T(0)), s = SigmoidF::f<T>(b, T(0), T(0));
    ga = g * s * (T(1) - t * t);
    gb = g * t * s * (T(1) - s);
  }
};

}  // namespace gv

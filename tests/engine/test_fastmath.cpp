// test_fastmath.cpp: engine/fastmath.h against the double-precision std:: functions: the error in
// ulp over a strided sweep of every float bit pattern plus every float in windows around the
// delicate points, the special values (+-0, +-inf, NaN, overflow, underflow, subnormals), and the
// float32 unary ops built on them (exp, log, log1p, tanh, sigmoid, softplus, forward and backward)
// against float64. Two cases are skipped by default: the exhaustive sweep over all 2^32 floats and
// a benchmark of softplus; run them with
//   build/tests/test_engine -tc='fastmath: exhaustive*' --no-skip
//   build/tests/test_engine -tc='fastmath: benchmark*' --no-skip
#include <doctest/doctest.h>

#include <algorithm>
#include <bit>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <limits>
#include <string>
#include <vector>

#include "engine/fastmath.h"
#include "engine/functors.h"
#include "engine/ops.h"
#include "engine/tensor.h"
#include "tests/test_util.h"

using namespace gv;

// This file's helpers and tests in a namespace of their own: the unity build (scripts/test.sh)
// compiles several test files as one, and their helpers must not meet.
namespace file_engine_test_fastmath {

namespace {

constexpr float kInf = std::numeric_limits<float>::infinity();
constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();

// |got - want| in units of the last place of float at want (subnormal spacing 2^-149 below
// 2^-126). Special results must match exactly: NaN for NaN, the same infinity for a want beyond
// the float range (rounded to float first), else the error is huge.
double ulp_error(float got, double want) {
  if (std::isnan(want)) return std::isnan(got) ? 0.0 : 1e30;
  if (std::isnan(got)) return 1e30;
  const float wf = float(want);
  if (std::isinf(wf) || std::isinf(got)) return got == wf ? 0.0 : 1e30;
  int e = want == 0.0 ? -126 : std::ilogb(want);
  e = std::max(e, -126);
  return std::fabs(double(got) - want) / std::ldexp(1.0, e - 23);
}

struct Fn {
  const char* name;
  float (*fast)(float);
  double (*ref)(double);
  double bound;  // the ulp error the header promises
};

std::vector<Fn> functions() {
  return {
      {"exp", fast_expf, [](double x) { return std::exp(x); }, 1.0},
      {"expm1", fast_expm1f, [](double x) { return std::expm1(x); }, 1.5},
      {"log", fast_logf, [](double x) { return std::log(x); }, 1.0},
      {"log1p", fast_log1pf, [](double x) { return std::log1p(x); }, 1.0},
      {"tanh", fast_tanhf, [](double x) { return std::tanh(x); }, 2.0},
  };
}

struct Worst {
  double ulp = 0;
  uint32_t bits = 0;
};

// Worst error of f over the bit patterns b = first, first + step, ... while b <= last.
Worst sweep(const Fn& f, uint64_t first, uint64_t last, uint64_t step) {
  Worst w;
  const int64_t n = int64_t((last - first) / step) + 1;
#pragma omp parallel
  {
    Worst local;
#pragma omp for schedule(static)
    for (int64_t i = 0; i < n; ++i) {
      const uint32_t b = uint32_t(first + uint64_t(i) * step);
      const float x = std::bit_cast<float>(b);
      const double e = ulp_error(f.fast(x), f.ref(double(x)));
      if (e > local.ulp) local = {e, b};
    }
#pragma omp critical
    if (local.ulp > w.ulp) w = local;
  }
  return w;
}

std::string describe(const Fn& f, const Worst& w) {
  const float x = std::bit_cast<float>(w.bits);
  char buf[200];
  std::snprintf(buf, sizeof buf, "%s: max %.3f ulp at x = %a (%.9g): got %a, want %a", f.name, w.ulp,
                double(x), double(x), double(f.fast(x)), f.ref(double(x)));
  return buf;
}

uint32_t bits_of(float x) { return std::bit_cast<uint32_t>(x); }

}  // namespace

TEST_CASE("fastmath: ulp error over a strided sweep of all floats and dense windows") {
  // Windows of consecutive floats around the points where the algorithms switch or cancel.
  std::vector<float> centers = {1.0f, -1.0f, 0x1.6a09e6p-1f, 0x1.6a09e6p+0f, 0.625f, -0.625f,
                                88.72f, -87.3f, -103.9f, 0.3466f, -0.3466f, 16.6f, 1e-30f, -1e-30f,
                                0x1p-126f, 0x1p-140f, -0x1p-30f, 0x1p-30f, 0.5f, -0.5f, 2.0f};
#ifdef GV_SANITIZED
  // A tenth of the sweep, still about 8,000 floats in every binade of either sign, and the windows at
  // the switch points and the subnormals (this case took 115 s of the sanitizer pass). The release
  // pass runs it all, on every ISA.
  const uint32_t stride = 1009, half_window = 1u << 12;
#else
  const uint32_t stride = 101, half_window = 1u << 16;  // 42.5 million floats of every magnitude and sign
#endif
  for (const Fn& f : functions()) {
    Worst w = sweep(f, 0, 0xffffffffu, stride);
    for (float c : centers) {
      const uint64_t b = bits_of(c);
      const Worst wc = sweep(f, b - half_window, b + half_window, 1);
      if (wc.ulp > w.ulp) w = wc;
    }
    const Worst ws = sweep(f, 0, 1u << 17, 1);  // the smallest subnormals
    if (ws.ulp > w.ulp) w = ws;
    MESSAGE(describe(f, w));
    CHECK_MESSAGE(w.ulp <= f.bound, describe(f, w));
  }
}

TEST_CASE("fastmath: exhaustive over all 2^32 floats" * doctest::skip()) {
  for (const Fn& f : functions()) {
    const Worst w = sweep(f, 0, 0xffffffffu, 1);
    MESSAGE(describe(f, w));
    CHECK_MESSAGE(w.ulp <= f.bound, describe(f, w));
  }
}

TEST_CASE("fastmath: special values") {
  auto same = [](float got, float want) {
    return std::isnan(want) ? std::isnan(got) : (got == want && std::signbit(got) == std::signbit(want));
  };
  const float tiny = std::numeric_limits<float>::denorm_min(), fmax = std::numeric_limits<float>::max();
  struct Case {
    const char* fn;
    float (*f)(float);
    float x, want;
  };
  const Case cases[] = {
      {"exp", fast_expf, 0.0f, 1.0f},
      {"exp", fast_expf, -0.0f, 1.0f},
      {"exp", fast_expf, kInf, kInf},
      {"exp", fast_expf, -kInf, 0.0f},
      {"exp", fast_expf, kNaN, kNaN},
      {"exp", fast_expf, -kNaN, kNaN},
      {"exp", fast_expf, 88.8f, kInf},  // overflow
      {"exp", fast_expf, 1000.0f, kInf},
      {"exp", fast_expf, fmax, kInf},
      {"exp", fast_expf, -104.0f, 0.0f},  // underflow
      {"exp", fast_expf, -fmax, 0.0f},
      {"exp", fast_expf, -0x1.9fe368p6f, tiny},  // log(2^-149): the smallest subnormal
      {"expm1", fast_expm1f, 0.0f, 0.0f},
      {"expm1", fast_expm1f, -0.0f, -0.0f},
      {"expm1", fast_expm1f, tiny, tiny},
      {"expm1", fast_expm1f, -tiny, -tiny},
      {"expm1", fast_expm1f, kInf, kInf},
      {"expm1", fast_expm1f, -kInf, -1.0f},
      {"expm1", fast_expm1f, 100.0f, kInf},
      {"expm1", fast_expm1f, -100.0f, -1.0f},
      {"expm1", fast_expm1f, kNaN, kNaN},
      {"log", fast_logf, 1.0f, 0.0f},
      {"log", fast_logf, 0.0f, -kInf},
      {"log", fast_logf, -0.0f, -kInf},
      {"log", fast_logf, -1.0f, kNaN},
      {"log", fast_logf, -tiny, kNaN},
      {"log", fast_logf, -kInf, kNaN},
      {"log", fast_logf, kInf, kInf},
      {"log", fast_logf, kNaN, kNaN},
      {"log", fast_logf, 2.0f, float(std::log(2.0))},
      {"log", fast_logf, tiny, float(std::log(double(tiny)))},
      {"log", fast_logf, fmax, float(std::log(double(fmax)))},
      {"log1p", fast_log1pf, 0.0f, 0.0f},
      {"log1p", fast_log1pf, -0.0f, -0.0f},
      {"log1p", fast_log1pf, tiny, tiny},
      {"log1p", fast_log1pf, -tiny, -tiny},
      {"log1p", fast_log1pf, 1e-30f, 1e-30f},
      {"log1p", fast_log1pf, -1.0f, -kInf},
      {"log1p", fast_log1pf, -1.5f, kNaN},
      {"log1p", fast_log1pf, -kInf, kNaN},
      {"log1p", fast_log1pf, kInf, kInf},
      {"log1p", fast_log1pf, kNaN, kNaN},
      {"log1p", fast_log1pf, fmax, float(std::log(double(fmax)))},
      {"log1p", fast_log1pf, 1.0f, float(std::log(2.0))},
      {"tanh", fast_tanhf, 0.0f, 0.0f},
      {"tanh", fast_tanhf, -0.0f, -0.0f},
      {"tanh", fast_tanhf, tiny, tiny},
      {"tanh", fast_tanhf, -tiny, -tiny},
      {"tanh", fast_tanhf, 20.0f, 1.0f},
      {"tanh", fast_tanhf, -20.0f, -1.0f},
      {"tanh", fast_tanhf, fmax, 1.0f},
      {"tanh", fast_tanhf, kInf, 1.0f},
      {"tanh", fast_tanhf, -kInf, -1.0f},
      {"tanh", fast_tanhf, kNaN, kNaN},
  };
  for (const Case& c : cases) {
    const float got = c.f(c.x);
    CHECK_MESSAGE(same(got, c.want), std::string(c.fn), "(", c.x, ") = ", got, ", want ", c.want);
  }
  // Every subnormal result of exp is the double result rounded, not flushed.
  const Fn exp_fn = functions()[0];
  const Worst w = sweep(exp_fn, bits_of(-87.4f), bits_of(-104.0f), 1);
  CHECK_MESSAGE(w.ulp <= 1.0, describe(exp_fn, w));
}

// The float32 unary ops (the functors on the CPU loops) against float64 applied to the same
// float32 inputs; sigmoid and softplus compose two functions, so they may err a little more.
TEST_CASE("fastmath: float32 unary ops and their backward against float64") {
  // Inputs: a dense grid over [-110, 110], denser near 0, plus special values.
  std::vector<float> xs;
  for (int i = -200000; i <= 200000; ++i) xs.push_back(float(i) * 5.5e-4f);
  for (int i = -2000; i <= 2000; ++i) xs.push_back(std::ldexp(1.0f, i / 20) * (i < 0 ? -1.3f : 1.1f));
  for (float s : {0.0f, -0.0f, kInf, -kInf, kNaN, 1e-30f, -1e-30f, 88.0f, 89.0f, -104.0f, -1.0f})
    xs.push_back(s);
  const int64_t n = int64_t(xs.size());
  Tensor x = Tensor::from_vector(xs, {n});
  REQUIRE(x.dtype() == DType::f32);
  struct Case {
    const char* name;
    UnaryOp op;
    double (*ref)(double);
    double bound;  // ulp
  };
  const Case cases[] = {
      {"exp", UnaryOp::exp, [](double v) { return std::exp(v); }, 1.0},
      {"log", UnaryOp::log, [](double v) { return std::log(v); }, 1.0},
      {"log1p", UnaryOp::log1p, [](double v) { return std::log1p(v); }, 1.0},
      {"tanh", UnaryOp::tanh, [](double v) { return std::tanh(v); }, 2.0},
      {"sigmoid", UnaryOp::sigmoid, [](double v) { return 1.0 / (1.0 + std::exp(-v)); }, 3.0},
      {"softplus", UnaryOp::softplus,
       [](double v) { return std::max(v, 0.0) + std::log1p(std::exp(-std::fabs(v))); }, 3.0},
  };
  for (const Case& c : cases) {
    const std::vector<float> y = unary(c.op, x).to_vector<float>();
    REQUIRE(int64_t(y.size()) == n);
    Worst w;
    for (int64_t i = 0; i < n; ++i) {
      const double e = ulp_error(y[i], c.ref(double(xs[i])));
      if (e > w.ulp) w = {e, bits_of(xs[i])};
    }
    const float wx = std::bit_cast<float>(w.bits);
    const std::string name = c.name;
    INFO(name, ": max ", w.ulp, " ulp at x = ", wx);
    MESSAGE(name, " (float32 tensor): max ", w.ulp, " ulp at x = ", wx);
    CHECK(w.ulp <= c.bound);
  }
  // Backward, gout * df(x, y) with y the float32 forward: against df evaluated in float64 on the
  // same float32 x and y. softplus' df is sigmoid(x) (fast exp); the others are built from y, so
  // only tanh's 1 - y^2 has a rounding (of y^2) that needs an absolute tolerance.
  Tensor g = Tensor::ones({n});
  struct Back {
    UnaryOp op;
    double (*df)(double x, double y);
    double atol, rtol;
  };
  const Back backs[] = {
      {UnaryOp::softplus, [](double v, double) { return 1.0 / (1.0 + std::exp(-v)); }, 1e-37, 4e-7},
      {UnaryOp::sigmoid, [](double, double y) { return y * (1.0 - y); }, 1e-37, 3e-7},
      {UnaryOp::tanh, [](double, double y) { return 1.0 - y * y; }, 1.2e-7, 3e-7},
      {UnaryOp::exp, [](double, double y) { return y; }, 0.0, 0.0},
  };
  for (const Back& b : backs) {
    const Tensor y = unary(b.op, x);
    const std::vector<double> yv = y.to_vector<double>();
    const std::vector<double> got = unary_backward(b.op, x, y, g).to_vector<double>();
    std::vector<double> want(xs.size());
    for (int64_t i = 0; i < n; ++i) want[i] = b.df(double(xs[i]), yv[i]);
    gv::test::expect_close(got, want, b.atol, b.rtol, std::string("backward of ") + unary_op_name(b.op));
  }
}

// Softplus forward on a 100 x 500 float32 tensor through the engine, and the bare loops: glibc's
// logf1p/expf per element versus SoftplusF (fast_log1pf/fast_expf, vectorized).
TEST_CASE("fastmath: benchmark softplus" * doctest::skip()) {
  using clk = std::chrono::steady_clock;
  const int64_t rows = 100, cols = 500, n = rows * cols;
  std::vector<double> v = gv::test::lcg(n, 7, -6.0, 6.0);
  Tensor x = Tensor::from_vector(v, {rows, cols}).to(DType::f32);
  auto time_ns = [&](auto&& body) {
    for (int i = 0; i < 20; ++i) body();
    double best = 1e30;
    for (int rep = 0; rep < 5; ++rep) {
      const int iters = 200;
      auto t0 = clk::now();
      for (int i = 0; i < iters; ++i) body();
      const double ns = std::chrono::duration<double, std::nano>(clk::now() - t0).count();
      best = std::min(best, ns / (double(iters) * double(n)));
    }
    return best;
  };
  volatile float sink = 0;
  const double engine_sp = time_ns([&] { sink = sink + softplus(x).data<float>()[0]; });
  const double engine_sg = time_ns([&] { sink = sink + sigmoid(x).data<float>()[0]; });
  Tensor y = softplus(x), g = Tensor::ones({rows, cols});
  const double engine_bw = time_ns([&] { sink = sink + unary_backward(UnaryOp::softplus, x, y, g).data<float>()[0]; });
  std::vector<float> xf(v.begin(), v.end()), out(n);
  const double libm = time_ns([&] {
    for (int64_t i = 0; i < n; ++i) {
      const float a = xf[i];
      out[i] = (a > 0.0f ? a : 0.0f) + ::log1pf(::expf(-std::fabs(a)));
    }
    sink = sink + out[n / 2];
  });
  const double fast = time_ns([&] {
    for (int64_t i = 0; i < n; ++i) out[i] = SoftplusF::f<float>(xf[i], 0.0f, 0.0f);
    sink = sink + out[n / 2];
  });
  MESSAGE("softplus forward, 100x500 float32, ns per element: engine softplus() ", engine_sp,
          ", engine sigmoid() ", engine_sg, ", engine softplus backward ", engine_bw,
          "; bare loop, one thread: glibc log1pf(expf) ", libm, ", fast (SoftplusF) ", fast);
}

}  // namespace file_engine_test_fastmath

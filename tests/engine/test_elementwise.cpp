// test_elementwise.cpp: every unary op against std:: math in float32 and float64 on contiguous,
// transposed and step-sliced inputs; unary_backward against central differences of the forward;
// every binary op (comparisons included) with numpy broadcasting; where(); scalar overloads;
// int64 arithmetic; the errors.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <functional>
#include <limits>
#include <string>
#include <vector>

#include "engine/backend.h"
#include "engine/ops.h"
#include "engine/tensor.h"
#include "tests/test_util.h"

using namespace gv;
using gv::test::error_of;
using gv::test::has;
using gv::test::lcg;
using gv::test::expect_close;

// This file's helpers and tests in a namespace of their own: the unity build (scripts/test.sh)
// compiles several test files as one, and their helpers must not meet.
namespace file_engine_test_elementwise {

namespace {

Tensor ew_rand(const Shape& shape, DType dt, uint64_t seed, double lo, double hi) {
  return Tensor::from_vector(lcg(shape_numel(shape), seed, lo, hi), shape).to(dt);
}

// Values k/2 for integer k in [-6, 6]: exact in every dtype and full of ties.
Tensor ew_halves(const Shape& shape, DType dt, uint64_t seed) {
  std::vector<double> v = lcg(shape_numel(shape), seed, -6.0, 7.0);
  for (double& x : v) x = std::floor(x) / 2.0;
  return Tensor::from_vector(v, shape).to(dt);
}

double tol_rel(DType dt) { return dt == DType::f32 ? 2e-6 : 1e-13; }
double tol_abs(DType dt) { return dt == DType::f32 ? 1e-6 : 1e-14; }

struct UnaryCase {
  const char* name;
  UnaryOp op;
  double a, b;            // op parameters
  double lo, hi;          // input domain
  std::function<double(double)> ref;
  std::function<Tensor(const Tensor&)> named;  // the named wrapper
};

std::vector<UnaryCase> unary_cases() {
  const double slope = 0.1, clo = -0.5, chi = 0.7;
  return {
      {"neg", UnaryOp::neg, 0, 0, -3, 3, [](double x) { return -x; }, [](const Tensor& t) { return neg(t); }},
      {"exp", UnaryOp::exp, 0, 0, -3, 3, [](double x) { return std::exp(x); }, [](const Tensor& t) { return exp(t); }},
      {"log", UnaryOp::log, 0, 0, 0.05, 4, [](double x) { return std::log(x); }, [](const Tensor& t) { return log(t); }},
      {"log1p", UnaryOp::log1p, 0, 0, -0.9, 3, [](double x) { return std::log1p(x); },
       [](const Tensor& t) { return log1p(t); }},
      {"sqrt", UnaryOp::sqrt, 0, 0, 0.01, 4, [](double x) { return std::sqrt(x); },
       [](const Tensor& t) { return sqrt(t); }},
      {"square", UnaryOp::square, 0, 0, -3, 3, [](double x) { return x * x; },
       [](const Tensor& t) { return square(t); }},
      {"abs", UnaryOp::abs, 0, 0, -3, 3, [](double x) { return std::fabs(x); }, [](const Tensor& t) { return abs(t); }},
      {"tanh", UnaryOp::tanh, 0, 0, -3, 3, [](double x) { return std::tanh(x); },
       [](const Tensor& t) { return tanh(t); }},
      {"sigmoid", UnaryOp::sigmoid, 0, 0, -8, 8, [](double x) { return 1.0 / (1.0 + std::exp(-x)); },
       [](const Tensor& t) { return sigmoid(t); }},
      {"softplus", UnaryOp::softplus, 0, 0, -8, 8, [](double x) { return std::log1p(std::exp(x)); },
       [](const Tensor& t) { return softplus(t); }},
      {"relu", UnaryOp::relu, 0, 0, -3, 3, [](double x) { return x > 0 ? x : 0.0; },
       [](const Tensor& t) { return relu(t); }},
      {"elu", UnaryOp::elu, 0, 0, -6, 3, [](double x) { return x > 0 ? x : std::expm1(x); },
       [](const Tensor& t) { return elu(t); }},
      {"leaky_relu", UnaryOp::leaky_relu, slope, 0, -3, 3, [=](double x) { return x > 0 ? x : slope * x; },
       [=](const Tensor& t) { return leaky_relu(t, slope); }},
      {"clamp", UnaryOp::clamp, clo, chi, -2, 2, [=](double x) { return x < clo ? clo : (x > chi ? chi : x); },
       [=](const Tensor& t) { return clamp(t, clo, chi); }},
  };
}

std::vector<double> map_ref(const std::vector<double>& x, const std::function<double(double)>& f) {
  std::vector<double> r(x.size());
  for (size_t i = 0; i < x.size(); ++i) r[i] = f(x[i]);
  return r;
}

// Reference binary ops in double.
double bin_ref(BinaryOp op, double a, double b) {
  switch (op) {
    case BinaryOp::add: return a + b;
    case BinaryOp::sub: return a - b;
    case BinaryOp::mul: return a * b;
    case BinaryOp::div: return a / b;
    case BinaryOp::pow: return std::pow(a, b);
    case BinaryOp::maximum: return a >= b ? a : b;
    case BinaryOp::minimum: return a <= b ? a : b;
    case BinaryOp::eq: return a == b;
    case BinaryOp::ne: return a != b;
    case BinaryOp::lt: return a < b;
    case BinaryOp::le: return a <= b;
    case BinaryOp::gt: return a > b;
    case BinaryOp::ge: return a >= b;
  }
  return NAN;
}

const std::vector<BinaryOp> kAllBinary = {BinaryOp::add, BinaryOp::sub, BinaryOp::mul, BinaryOp::div, BinaryOp::pow,
                                          BinaryOp::maximum, BinaryOp::minimum, BinaryOp::eq, BinaryOp::ne,
                                          BinaryOp::lt, BinaryOp::le, BinaryOp::gt, BinaryOp::ge};

Tensor named_binary(BinaryOp op, const Tensor& a, const Tensor& b) {
  switch (op) {
    case BinaryOp::add: return add(a, b);
    case BinaryOp::sub: return sub(a, b);
    case BinaryOp::mul: return mul(a, b);
    case BinaryOp::div: return div(a, b);
    case BinaryOp::pow: return pow(a, b);
    case BinaryOp::maximum: return maximum(a, b);
    case BinaryOp::minimum: return minimum(a, b);
    case BinaryOp::eq: return eq(a, b);
    case BinaryOp::ne: return ne(a, b);
    case BinaryOp::lt: return lt(a, b);
    case BinaryOp::le: return le(a, b);
    case BinaryOp::gt: return gt(a, b);
    case BinaryOp::ge: return ge(a, b);
  }
  return {};
}

// numpy broadcasting reference: out[idx] = f(a[idx broadcast], b[idx broadcast]).
std::vector<double> broadcast_ref(const std::vector<double>& av, const Shape& as, const std::vector<double>& bv,
                                  const Shape& bs, const Shape& out, const std::function<double(double, double)>& f) {
  int64_t n = shape_numel(out), nd = (int64_t)out.size();
  std::vector<double> r(n);
  std::vector<int64_t> idx(nd);
  auto pick = [&](const std::vector<double>& v, const Shape& s) {
    int64_t off = 0, lead = nd - (int64_t)s.size();
    for (int64_t d = 0; d < (int64_t)s.size(); ++d) off = off * s[d] + (s[d] == 1 ? 0 : idx[lead + d]);
    return v[off];
  };
  for (int64_t p = 0; p < n; ++p) {
    int64_t q = p;
    for (int64_t d = nd - 1; d >= 0; --d) {
      idx[d] = q % out[d];
      q /= out[d];
    }
    r[p] = f(pick(av, as), pick(bv, bs));
  }
  return r;
}

}  // namespace

TEST_CASE("elementwise: unary ops against std:: math, contiguous and strided, f32 and f64") {
  for (const UnaryCase& c : unary_cases()) {
    for (DType dt : {DType::f32, DType::f64}) {
      std::string what = std::string(c.name) + " " + dtype_name(dt);
      CAPTURE(what);
      Tensor base = ew_rand({7, 9}, dt, 11, c.lo, c.hi);
      std::vector<Tensor> inputs = {
          base,                               // contiguous
          base.t(),                           // transposed
          base.slice(1, 1, 9, 3),             // step on the last axis
          base.t().slice(0, 0, 9, 2).slice(1, 1, 6),  // both
          base.select(1, 4),                  // a column (stride 9)
      };
      for (size_t k = 0; k < inputs.size(); ++k) {
        const Tensor& x = inputs[k];
        CAPTURE(k);
        Tensor y = unary(c.op, x, c.a, c.b);
        CHECK(y.shape() == x.shape());
        CHECK(y.dtype() == dt);
        CHECK(y.is_contiguous());
        std::vector<double> want = map_ref(x.to_vector<double>(), c.ref);
        expect_close(y.to_vector<double>(), want, tol_abs(dt), tol_rel(dt), what + " via unary()");
        Tensor yn = c.named(x);
        expect_close(yn.to_vector<double>(), want, tol_abs(dt), tol_rel(dt), what + " via the named op");
      }
      // empty and 0-d
      Tensor e = unary(c.op, Tensor::zeros({0, 3}, dt), c.a, c.b);
      CHECK(e.shape() == Shape{0, 3});
      double x0 = (c.lo + c.hi) / 3;
      Tensor s = unary(c.op, Tensor::scalar(x0, dt), c.a, c.b);
      CHECK(s.dim() == 0);
      double x0t = Tensor::scalar(x0, dt).item();
      expect_close({s.item()}, {c.ref(x0t)}, tol_abs(dt), tol_rel(dt), what + " 0-d");
      // an expanded (stride 0) input
      Tensor ex = Tensor::scalar(x0, dt).expand({2, 3});
      expect_close(unary(c.op, ex, c.a, c.b).to_vector<double>(), std::vector<double>(6, c.ref(x0t)), tol_abs(dt),
                      tol_rel(dt), what + " expanded");
    }
  }
}

TEST_CASE("elementwise: unary ops on a large strided input (threaded loop)") {
  Tensor base = ew_rand({300, 250}, DType::f32, 5, -4, 4);
  Tensor x = base.t().slice(0, 0, 250, 2);  // (125, 300), 37500 elements, strided
  Tensor y = tanh(x);
  expect_close(y.to_vector<double>(), map_ref(x.to_vector<double>(), [](double v) { return std::tanh(v); }), 1e-6,
                  2e-6, "tanh large");
  Tensor g = unary_backward(UnaryOp::tanh, x, y, x);
  std::vector<double> xv = x.to_vector<double>(), gv_ = g.to_vector<double>(), want(xv.size());
  for (size_t i = 0; i < xv.size(); ++i) want[i] = xv[i] * (1 - std::tanh(xv[i]) * std::tanh(xv[i]));
  expect_close(gv_, want, 1e-6, 1e-5, "tanh backward large");
}

TEST_CASE("elementwise: extreme values") {
  for (DType dt : {DType::f32, DType::f64}) {
    CAPTURE(dtype_name(dt));
    Tensor x = Tensor::from_list({-1000, 1000, -100, 100, 0}, {5}, dt);
    std::vector<double> s = sigmoid(x).to_vector<double>();
    for (double v : s) CHECK(std::isfinite(v));
    CHECK(s[0] == 0.0);
    CHECK(s[1] == 1.0);
    CHECK(s[4] == 0.5);
    CHECK(s[2] >= 0.0);
    CHECK(s[2] < 1e-40);
    std::vector<double> sp = softplus(x).to_vector<double>();
    for (double v : sp) CHECK_FALSE(std::isnan(v));
    CHECK(sp[1] == 1000.0);
    CHECK(sp[0] >= 0.0);
    CHECK(sp[0] < 1e-40);
    CHECK(sp[3] == doctest::Approx(100.0));
    CHECK(sp[4] == doctest::Approx(std::log(2.0)));
    // the derivatives at the extremes are finite too
    Tensor ones = Tensor::ones({5}, dt);
    std::vector<double> ds = unary_backward(UnaryOp::sigmoid, x, sigmoid(x), ones).to_vector<double>();
    std::vector<double> dsp = unary_backward(UnaryOp::softplus, x, softplus(x), ones).to_vector<double>();
    for (int i = 0; i < 5; ++i) {
      CHECK(std::isfinite(ds[i]));
      CHECK(std::isfinite(dsp[i]));
    }
    CHECK(dsp[0] == 0.0);
    CHECK(dsp[1] == 1.0);
    CHECK(tanh(x).to_vector<double>()[1] == 1.0);
    CHECK(exp(Tensor::scalar(-1000, dt)).item() == 0.0);
    CHECK(std::isinf(log(Tensor::scalar(0, dt)).item()));
    CHECK(std::isnan(sqrt(Tensor::scalar(-1, dt)).item()));
    CHECK(std::isnan(exp(Tensor::scalar(NAN, dt)).item()));
    CHECK(std::isnan(sigmoid(Tensor::scalar(NAN, dt)).item()));
  }
}

TEST_CASE("elementwise: unary_backward is gout * f'(x) (central differences, f64)") {
  const double h = 1e-6;
  for (const UnaryCase& c : unary_cases()) {
    CAPTURE(c.name);
    // points away from kinks: |x| > 0.05 and away from clamp's bounds
    std::vector<double> xs = lcg(24, 7, c.lo, c.hi);
    for (double& v : xs) {
      if (std::fabs(v) < 0.05) v += 0.1;
      if (c.op == UnaryOp::clamp && (std::fabs(v - c.a) < 0.05 || std::fabs(v - c.b) < 0.05)) v += 0.1;
    }
    Tensor x = Tensor::from_vector(xs, {4, 6});
    Tensor gout = ew_rand({4, 6}, DType::f64, 9, -2, 2);
    Tensor y = unary(c.op, x, c.a, c.b);
    Tensor gx = unary_backward(c.op, x, y, gout, c.a, c.b);
    CHECK(gx.shape() == x.shape());
    std::vector<double> fp = unary(c.op, add(x, h), c.a, c.b).to_vector<double>();
    std::vector<double> fm = unary(c.op, sub(x, h), c.a, c.b).to_vector<double>();
    std::vector<double> g = gout.to_vector<double>(), want(xs.size());
    for (size_t i = 0; i < xs.size(); ++i) want[i] = g[i] * (fp[i] - fm[i]) / (2 * h);
    expect_close(gx.to_vector<double>(), want, 1e-7, 1e-6, std::string(c.name) + " backward");

    // the same through non-contiguous x, y and gout
    Tensor xt = x.t(), yt = y.t(), gt_ = gout.t();
    Tensor gxt = unary_backward(c.op, xt, yt, gt_, c.a, c.b);
    CHECK(gxt.shape() == Shape{6, 4});
    expect_close(gxt.to_vector<double>(), gx.t().to_vector<double>(), 0, 0, std::string(c.name) + " backward strided");

    // float32 backward agrees with float64 backward
    Tensor x32 = x.to(DType::f32), g32 = gout.to(DType::f32);
    Tensor gx32 = unary_backward(c.op, x32, unary(c.op, x32, c.a, c.b), g32, c.a, c.b);
    CHECK(gx32.dtype() == DType::f32);
    expect_close(gx32.to_vector<double>(), gx.to_vector<double>(), 1e-5, 1e-5, std::string(c.name) + " backward f32");
  }
  // kinks: the derivative conventions at 0 and at the clamp bounds
  Tensor z = Tensor::from_list({0.0, -0.5, 0.7}, {3}, DType::f64);
  Tensor one = Tensor::ones({3}, DType::f64);
  CHECK(unary_backward(UnaryOp::abs, z, abs(z), one).to_vector<double>()[0] == 0.0);
  CHECK(unary_backward(UnaryOp::relu, z, relu(z), one).to_vector<double>()[0] == 0.0);
  CHECK(unary_backward(UnaryOp::leaky_relu, z, leaky_relu(z, 0.1), one, 0.1).to_vector<double>()[0] ==
        doctest::Approx(0.1));
  std::vector<double> dc = unary_backward(UnaryOp::clamp, z, clamp(z, -0.5, 0.7), one, -0.5, 0.7).to_vector<double>();
  CHECK(dc == std::vector<double>{1, 1, 1});  // flows on the bounds
  std::vector<double> dco =
      unary_backward(UnaryOp::clamp, Tensor::from_list({-0.6, 0.8}, {2}, DType::f64), Tensor::zeros({2}, DType::f64),
                     Tensor::ones({2}, DType::f64), -0.5, 0.7)
          .to_vector<double>();
  CHECK(dco == std::vector<double>{0, 0});

  // errors
  Tensor a = Tensor::zeros({2, 3}, DType::f64);
  std::string e = error_of<ShapeError>([&] { unary_backward(UnaryOp::exp, a, a, Tensor::zeros({3, 2}, DType::f64)); });
  CHECK(has(e, "exp"));
  CHECK(has(e, "[2, 3]"));
  CHECK(has(e, "[3, 2]"));
  CHECK_THROWS_AS(unary_backward(UnaryOp::exp, a, a, Tensor::zeros({2, 3}, DType::f32)), DTypeError);
  CHECK_THROWS_AS(unary_backward(UnaryOp::exp, a.to(DType::i64), a.to(DType::i64), a.to(DType::i64)), DTypeError);
}

TEST_CASE("elementwise: binary ops with broadcasting, f32 and f64") {
  struct Pair {
    Shape a, b, out;
  };
  std::vector<Pair> pairs = {
      {{2, 3}, {2, 3}, {2, 3}},        {{3, 1, 4}, {2, 4}, {3, 2, 4}}, {{}, {2, 3}, {2, 3}},
      {{2, 3}, {}, {2, 3}},            {{1, 4}, {3, 1}, {3, 4}},       {{1}, {5}, {5}},
      {{5}, {1}, {5}},                 {{2, 1, 3}, {1, 1, 1}, {2, 1, 3}}, {{4, 1}, {4}, {4, 4}},
      {{}, {}, {}},                    {{0, 3}, {3}, {0, 3}},          {{2, 0}, {1, 1}, {2, 0}},
  };
  uint64_t seed = 100;
  for (DType dt : {DType::f32, DType::f64}) {
    for (BinaryOp op : kAllBinary) {
      for (const Pair& p : pairs) {
        std::string what = std::string(binary_op_name(op)) + " " + dtype_name(dt) + " " + shape_str(p.a) + " " +
                           shape_str(p.b);
        CAPTURE(what);
        Tensor a = ew_halves(p.a, dt, ++seed), b = ew_halves(p.b, dt, ++seed);
        if (op == BinaryOp::pow) a = abs(a);  // no complex results
        Tensor out = binary(op, a, b);
        CHECK(out.shape() == p.out);
        CHECK(out.dtype() == dt);
        auto f = [op](double x, double y) { return bin_ref(op, x, y); };
        std::vector<double> want = broadcast_ref(a.to_vector<double>(), p.a, b.to_vector<double>(), p.b, p.out, f);
        expect_close(out.to_vector<double>(), want, tol_abs(dt), tol_rel(dt), what);
        expect_close(named_binary(op, a, b).to_vector<double>(), want, tol_abs(dt), tol_rel(dt), what + " named");
      }
    }
  }
}

TEST_CASE("elementwise: binary ops on non-contiguous operands") {
  for (DType dt : {DType::f32, DType::f64}) {
    Tensor A = ew_rand({6, 8}, dt, 1, 0.5, 2), B = ew_rand({8, 6}, dt, 2, -2, 2);
    std::vector<std::pair<Tensor, Tensor>> ops = {
        {A, B.t()},                                      // transposed right
        {A.slice(1, 0, 8, 2), B.t().slice(1, 1, 8, 2)},  // step slices (6, 4)
        {A.t(), B},                                      // transposed left (8, 6)
        {A.select(0, 2).unsqueeze(1), B.t().slice(0, 0, 6, 3).slice(1, 0, 1).t()},  // (8, 1) with (1, 2)
        {A.t().slice(0, 1, 8, 3), B.select(1, 5).slice(0, 0, 6)},  // (3, 6) with a strided row (6)
    };
    for (BinaryOp op : kAllBinary) {
      for (size_t k = 0; k < ops.size(); ++k) {
        const Tensor &a = ops[k].first, &b = ops[k].second;
        std::string what = std::string(binary_op_name(op)) + " " + dtype_name(dt) + " case " + std::to_string(k);
        CAPTURE(what);
        Tensor out = binary(op, a, b);
        auto f = [op](double x, double y) { return bin_ref(op, x, y); };
        std::vector<double> want =
            broadcast_ref(a.to_vector<double>(), a.shape(), b.to_vector<double>(), b.shape(), out.shape(), f);
        expect_close(out.to_vector<double>(), want, tol_abs(dt), tol_rel(dt), what);
      }
    }
    // a strided column (8, 1) times a strided, expanded row (1, 3)
    Tensor col = A.t().slice(1, 1, 2);  // (8, 1): column 1 of A.t(), i.e. row 1 of A
    Tensor rows = B.slice(0, 0, 8, 3);  // (3, 6), every third row of B
    Tensor out = mul(col, rows.slice(1, 0, 1).t().expand({1, 3}));  // (8, 1) * (1, 3) -> (8, 3)
    CHECK(out.shape() == Shape{8, 3});
    std::vector<double> cv = col.to_vector<double>(), rv = rows.slice(1, 0, 1).to_vector<double>();
    std::vector<double> want(24);
    for (int i = 0; i < 8; ++i)
      for (int j = 0; j < 3; ++j) want[i * 3 + j] = cv[i] * rv[j];
    expect_close(out.to_vector<double>(), want, tol_abs(dt), tol_rel(dt), "column times expanded row");
  }
  // large broadcast add with strided operands (threaded loop)
  Tensor a = ew_rand({257, 300}, DType::f64, 3, -1, 1).t();  // (300, 257)
  Tensor b = ew_rand({257}, DType::f64, 4, -1, 1);
  Tensor out = add(a, b);
  std::vector<double> want = broadcast_ref(a.to_vector<double>(), a.shape(), b.to_vector<double>(), b.shape(),
                                           out.shape(), [](double x, double y) { return x + y; });
  expect_close(out.to_vector<double>(), want, 0, 0, "large add");
}

TEST_CASE("elementwise: int64 arithmetic and comparisons") {
  Tensor a = Tensor::from_vector(std::vector<int64_t>{3, -2, 5, 0, 7, -7}, {2, 3});
  Tensor b = Tensor::from_vector(std::vector<int64_t>{4, 3, 0}, {3});
  CHECK(add(a, b).dtype() == DType::i64);
  CHECK(add(a, b).to_vector<int64_t>() == std::vector<int64_t>{7, 1, 5, 4, 10, -7});
  CHECK(sub(a, b).to_vector<int64_t>() == std::vector<int64_t>{-1, -5, 5, -4, 4, -7});
  CHECK(mul(a, b).to_vector<int64_t>() == std::vector<int64_t>{12, -6, 0, 0, 21, 0});
  CHECK(pow(a, b).to_vector<int64_t>() == std::vector<int64_t>{81, -8, 1, 0, 343, 1});
  CHECK(maximum(a, b).to_vector<int64_t>() == std::vector<int64_t>{4, 3, 5, 4, 7, 0});
  CHECK(minimum(a, b).to_vector<int64_t>() == std::vector<int64_t>{3, -2, 0, 0, 3, -7});
  CHECK(lt(a, b).to_vector<int64_t>() == std::vector<int64_t>{1, 1, 0, 1, 0, 1});
  CHECK(eq(a, Tensor::from_vector(std::vector<int64_t>{0}, {})).to_vector<int64_t>() ==
        std::vector<int64_t>{0, 0, 0, 1, 0, 0});
  Tensor d = Tensor::from_vector(std::vector<int64_t>{7, -7, 9}, {3});
  CHECK(div(d, Tensor::from_vector(std::vector<int64_t>{2, 2, -4}, {3})).to_vector<int64_t>() ==
        std::vector<int64_t>{3, -3, -2});
  // large values stay exact (no trip through float)
  Tensor big = Tensor::from_vector(std::vector<int64_t>{(int64_t)1 << 53, ((int64_t)1 << 53) + 1}, {2});
  CHECK(add(big, Tensor::from_vector(std::vector<int64_t>{1, 1}, {2})).to_vector<int64_t>() ==
        std::vector<int64_t>{((int64_t)1 << 53) + 1, ((int64_t)1 << 53) + 2});
  CHECK(pow(Tensor::from_vector(std::vector<int64_t>{3}, {1}), Tensor::from_vector(std::vector<int64_t>{39}, {1}))
            .to_vector<int64_t>()[0] == 4052555153018976267LL);
  // scalar overloads keep int64
  Tensor s = a + 2.0;
  CHECK(s.dtype() == DType::i64);
  CHECK(s.to_vector<int64_t>() == std::vector<int64_t>{5, 0, 7, 2, 9, -5});
  CHECK((a * 3.0).to_vector<int64_t>() == std::vector<int64_t>{9, -6, 15, 0, 21, -21});
  CHECK(pow(a, 2.0).to_vector<int64_t>() == std::vector<int64_t>{9, 4, 25, 0, 49, 49});
  CHECK(gt(a, 0.0).to_vector<int64_t>() == std::vector<int64_t>{1, 0, 1, 0, 1, 0});
  // unary math is float-only
  std::string e = error_of<DTypeError>([&] { log(a); });
  CHECK(has(e, "log"));
  CHECK(has(e, "int64"));
  CHECK_THROWS_AS(neg(a), DTypeError);
  CHECK_THROWS_AS(relu(a), DTypeError);
}

TEST_CASE("elementwise: where with broadcasting") {
  for (DType dt : {DType::f32, DType::f64, DType::i64}) {
    CAPTURE(dtype_name(dt));
    Tensor cond = Tensor::from_list({1, 0, 1}, {3, 1}, DType::f32);
    Tensor a = Tensor::from_list({1, 2, 3, 4}, {1, 4}, dt);
    Tensor b = Tensor::scalar(-5, dt);
    Tensor w = where(cond, a, b);
    CHECK(w.shape() == Shape{3, 4});
    CHECK(w.dtype() == dt);
    CHECK(w.to_vector<double>() == std::vector<double>{1, 2, 3, 4, -5, -5, -5, -5, 1, 2, 3, 4});
    // an int64 condition, a transposed a and a broadcast b
    Tensor ci = Tensor::from_vector(std::vector<int64_t>{0, 3, 0, -1, 1, 0}, {2, 3});
    Tensor at = Tensor::from_list({10, 20, 30, 40, 50, 60}, {3, 2}, dt).t();  // (2,3): 10 30 50 / 20 40 60
    Tensor bb = Tensor::from_list({7, 8}, {2, 1}, dt);
    CHECK(where(ci, at, bb).to_vector<double>() == std::vector<double>{7, 30, 7, 20, 40, 8});
  }
  // the condition alone decides the broadcast shape
  Tensor w = where(Tensor::from_list({1, 0}, {2, 1, 1}), Tensor::scalar(1.0), Tensor::scalar(0.0));
  CHECK(w.shape() == Shape{2, 1, 1});
  CHECK(w.to_vector<float>() == std::vector<float>{1, 0});
  // NaN condition counts as true (it is != 0)
  CHECK(where(Tensor::scalar(NAN), Tensor::scalar(1.0), Tensor::scalar(2.0)).item() == 1.0);
  std::string e = error_of<ShapeError>([] {
    where(Tensor::zeros({2}), Tensor::zeros({3}), Tensor::zeros({3}));
  });
  CHECK(has(e, "where"));
  CHECK(has(e, "[2]"));
  CHECK(has(e, "[3]"));
  CHECK_THROWS_AS(where(Tensor::zeros({2}), Tensor::zeros({2}), Tensor::zeros({2}, DType::f64)), DTypeError);
}

TEST_CASE("elementwise: scalar overloads and operators") {
  Tensor a = Tensor::from_list({1, -2, 3.5, 0.25}, {2, 2}, DType::f64);
  auto v = [](const Tensor& t) { return t.to_vector<double>(); };
  CHECK(v(a + 2.0) == std::vector<double>{3, 0, 5.5, 2.25});
  CHECK(v(a - 2.0) == std::vector<double>{-1, -4, 1.5, -1.75});
  CHECK(v(a * 2.0) == std::vector<double>{2, -4, 7, 0.5});
  CHECK(v(2.0 * a) == std::vector<double>{2, -4, 7, 0.5});
  CHECK(v(a / 2.0) == std::vector<double>{0.5, -1, 1.75, 0.125});
  CHECK(v(-a) == std::vector<double>{-1, 2, -3.5, -0.25});
  CHECK(v(a + a) == std::vector<double>{2, -4, 7, 0.5});
  CHECK(v(a - a.t()) == std::vector<double>{0, -5.5, 5.5, 0});
  CHECK(v(a * a.t()) == std::vector<double>{1, -7, -7, 0.0625});
  CHECK(v(a / a) == std::vector<double>{1, 1, 1, 1});
  CHECK(v(pow(a, 2.0)) == std::vector<double>{1, 4, 12.25, 0.0625});
  CHECK(v(maximum(a, 0.5)) == std::vector<double>{1, 0.5, 3.5, 0.5});
  CHECK(v(minimum(a, 0.5)) == std::vector<double>{0.5, -2, 0.5, 0.25});
  CHECK(v(eq(a, 3.5)) == std::vector<double>{0, 0, 1, 0});
  CHECK(v(ne(a, 3.5)) == std::vector<double>{1, 1, 0, 1});
  CHECK(v(le(a, 1.0)) == std::vector<double>{1, 1, 0, 1});
  CHECK(v(ge(a, 1.0)) == std::vector<double>{1, 0, 1, 0});
  CHECK(v(lt(a, 1.0)) == std::vector<double>{0, 1, 0, 1});
  CHECK(v(gt(a, 1.0)) == std::vector<double>{0, 0, 1, 0});
  // float32 keeps float32
  Tensor f = a.to(DType::f32);
  CHECK((f + 1.0).dtype() == DType::f32);
  CHECK((f * 0.1).to_vector<float>()[0] == 0.1f);
}

TEST_CASE("elementwise: errors") {
  std::string e = error_of<ShapeError>([] { add(Tensor::zeros({2, 3}), Tensor::zeros({4})); });
  CHECK(has(e, "add: shapes [2, 3] and [4] cannot be broadcast together"));
  e = error_of<ShapeError>([] { mul(Tensor::zeros({3, 1, 4}), Tensor::zeros({2, 3})); });
  CHECK(has(e, "mul: shapes [3, 1, 4] and [2, 3] cannot be broadcast together"));
  e = error_of<ShapeError>([] { ge(Tensor::zeros({0}), Tensor::zeros({2})); });
  CHECK(has(e, "ge:"));
  e = error_of<DTypeError>([] { add(Tensor::zeros({2}), Tensor::zeros({2}, DType::f64)); });
  CHECK(has(e, "add"));
  CHECK(has(e, "float32"));
  CHECK(has(e, "float64"));
  e = error_of<DTypeError>([] { sub(Tensor::zeros({2}, DType::i64), Tensor::zeros({2})); });
  CHECK(has(e, "sub"));
  CHECK(has(e, "int64"));
  e = error_of<DTypeError>([] { log(Tensor::zeros({2}, DType::i64)); });
  CHECK(has(e, "log"));
  CHECK(has(e, "int64"));
  e = error_of<ValueError>([] { clamp(Tensor::zeros({2}), 1.0, -1.0); });
  CHECK(has(e, "clamp"));
  CHECK_THROWS_AS(exp(Tensor()), ValueError);
  CHECK_THROWS_AS(add(Tensor(), Tensor::zeros({1})), ValueError);
  CHECK(std::string(unary_op_name(UnaryOp::softplus)) == "softplus");
  CHECK(std::string(binary_op_name(BinaryOp::ge)) == "ge");
}

TEST_CASE("integer division by zero, negative integer powers and broadcast writes are refused") {
  using namespace gv;
  Tensor a = Tensor::from_vector<int64_t>({7, -7, INT64_MIN}, {3});
  Tensor z = Tensor::from_vector<int64_t>({1, 0, 1}, {3});
  CHECK_THROWS_WITH_AS(div(a, z), doctest::Contains("integer division by zero"), ValueError);
  CHECK_THROWS_WITH_AS(pow(a, Tensor::from_vector<int64_t>({1, -2, 1}, {3})), doctest::Contains("negative integer exponent -2"),
                       ValueError);
  // INT64_MIN / -1 wraps to INT64_MIN (two's complement) instead of trapping
  CHECK(div(a, int64_t(-1) * Tensor::ones({3}, DType::i64)).to_vector<int64_t>() ==
        std::vector<int64_t>{-7, 7, INT64_MIN});
  CHECK(div(a, Tensor::from_vector<int64_t>({2, 2, 1}, {3})).to_vector<int64_t>() == std::vector<int64_t>{3, -3, INT64_MIN});
  Tensor e = Tensor::zeros({3}).expand({2, 3});
  CHECK_THROWS_WITH_AS(e.fill_(1), doctest::Contains("broadcast view"), ValueError);
  CHECK_THROWS_WITH_AS(e.copy_(Tensor::ones({2, 3})), doctest::Contains("axis 0 of shape [2, 3] has stride 0"), ValueError);
}

// ---- every instruction-set path gives the same bits ----------------------------------------------
namespace {
// Bits of a float tensor, with every NaN written as one value (a NaN's payload is not a result).
std::vector<uint64_t> canonical_bits(const Tensor& t) {
  std::vector<uint64_t> out;
  for (double v : t.to_vector<double>()) {
    uint64_t u;
    std::memcpy(&u, &v, sizeof u);
    out.push_back(std::isnan(v) ? 0x7ff8000000000000ull : u);
  }
  return out;
}
}  // namespace

TEST_CASE("element-wise ops, forward and backward, give the same bits on every ISA path") {
  gv::test::RuntimeGuard guard;
  // 3000 floats over [-30, 30] plus the edges; contiguous, so the vectorized loops run
  std::vector<double> v = lcg(3000, 77, -30, 30);
  for (double e : std::initializer_list<double>{0.0, -0.0, 1e-30, -1e-30, 88.0, -88.0, 1e30, -1e30, INFINITY, -INFINITY, NAN}) v.push_back(e);
  for (DType dt : {DType::f32, DType::f64}) {
    CAPTURE(dtype_name(dt));
    const Tensor x = Tensor::from_vector(v, {(int64_t)v.size()}).to(dt);
    const Tensor y = Tensor::from_vector(lcg((int64_t)v.size(), 78, -3, 3), {(int64_t)v.size()}).to(dt);
    const Tensor g = Tensor::from_vector(lcg((int64_t)v.size(), 79, -1, 1), {(int64_t)v.size()}).to(dt);
    std::vector<std::vector<std::vector<uint64_t>>> by_isa;
    for (Isa isa : supported_isas()) {
      set_isa(isa);
      std::vector<std::vector<uint64_t>> r;
#define GV_RUN_UNARY(name, F)                                                                   \
  {                                                                                             \
    const double a = UnaryOp::name == UnaryOp::clamp ? -2.0 : 0.1, b = 2.0;                     \
    const Tensor out = unary(UnaryOp::name, x, a, b);                                           \
    r.push_back(canonical_bits(out));                                                           \
    r.push_back(canonical_bits(unary_backward(UnaryOp::name, x, out, g, a, b)));                \
  }
      GV_UNARY_OPS(GV_RUN_UNARY)
#undef GV_RUN_UNARY
#define GV_RUN_BINARY(name, F)                                                                  \
  r.push_back(canonical_bits(binary(BinaryOp::name, x, y)));                                    \
  r.push_back(canonical_bits(binary(BinaryOp::name, x, Tensor::scalar(1.5, dt))));
      GV_BINARY_OPS(GV_RUN_BINARY)
#undef GV_RUN_BINARY
      by_isa.push_back(r);
    }
    for (size_t p = 1; p < by_isa.size(); ++p)
      for (size_t i = 0; i < by_isa[0].size(); ++i) {
        CAPTURE(p);
        CAPTURE(i);  // the op's index in GV_UNARY_OPS (x2: forward, backward), then GV_BINARY_OPS (x2)
        CHECK(by_isa[0][i] == by_isa[p][i]);
      }
  }
}

// ---- the backend seam (engine/backend.h, engine/strided.h) ----------------------------------------
TEST_CASE("tensor_ref: shape, strides and broadcast strides as a kernel sees them") {
  Tensor t = Tensor::zeros({3, 1, 4});
  TensorRef r = tensor_ref(t);
  CHECK(r.ndim == 3);
  CHECK(r.shape[0] == 3);
  CHECK(r.strides[0] == 4);
  CHECK(r.strides[1] == 0);  // a size-1 axis reads as broadcast
  CHECK(r.strides[2] == 1);
  CHECK(r.data == t.raw_data());
  TensorRef b = tensor_ref(t, {2, 3, 5, 4});
  CHECK(b.ndim == 4);
  CHECK(b.strides[0] == 0);  // a new leading axis
  CHECK(b.strides[1] == 4);
  CHECK(b.strides[2] == 0);
  CHECK(b.shape[2] == 5);
  CHECK(has(error_of<ShapeError>([&] { tensor_ref(t, {4}); }), "does not broadcast"));
}

TEST_CASE("strided space: contiguous axes merge, broadcast and size-1 axes fold, empty stays empty") {
  const int64_t shape[3] = {2, 3, 4};
  const int64_t contiguous[3] = {12, 4, 1}, bcast[3] = {0, 0, 1}, transposed[3] = {1, 2, 6};
  const int64_t* ops[2] = {contiguous, bcast};
  StridedSpace<2> s = make_space<2>(3, shape, ops);
  CHECK(s.nd == 2);  // (2,3) merge for both (the broadcast one has stride 0 there), then 4
  CHECK(s.numel == 24);
  const int64_t* one[1] = {contiguous};
  CHECK(make_space<1>(3, shape, one).nd == 1);
  const int64_t* tr[1] = {transposed};
  StridedSpace<1> t = make_space<1>(3, shape, tr);
  CHECK(t.nd == 3);
  int64_t offs[1], idx[kMaxDims];
  offsets_of<1>(t, 23, offs, idx);  // element (1, 2, 3)
  CHECK(offs[0] == 1 * 1 + 2 * 2 + 3 * 6);
  const int64_t zero_shape[2] = {3, 0};
  CHECK(make_space<1>(2, zero_shape, one).empty);
}

TEST_CASE("backend_for: a device without a backend is refused with the op and the device") {
  CHECK(std::string(backend_for(Device::cpu(), "add").name()) == "cpu");
  if (!cuda_available()) {
    const std::string e = error_of<DeviceError>([] { backend_for(Device::cuda(0), "add"); });
    CHECK(has(e, "add"));
    CHECK(has(e, "cuda:0"));
  }
}

}  // namespace file_engine_test_elementwise

// test_reduce.cpp: sum, mean, max and logsumexp over every subset of axes against naive loops;
// negative axes, keepdim, strided input; double accumulation; NaN and infinity handling;
// softmax / log_softmax; argmax; sum_to; int64; the errors.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdint>
#include <functional>
#include <limits>
#include <string>
#include <vector>

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
namespace file_engine_test_reduce {

namespace {

Tensor rd_rand(const Shape& shape, DType dt, uint64_t seed, double lo = -2, double hi = 2) {
  return Tensor::from_vector(lcg(shape_numel(shape), seed, lo, hi), shape).to(dt);
}

// Naive reduction of row-major values of `shape` over the axes marked in `red`: for each output
// (row-major over the kept axes) fold f over the reduced elements in row-major order.
std::vector<double> reduce_ref(const std::vector<double>& x, const Shape& shape, const std::vector<bool>& red,
                               const std::function<double(const std::vector<double>&)>& f) {
  Shape kept;
  for (size_t d = 0; d < shape.size(); ++d)
    if (!red[d]) kept.push_back(shape[d]);
  int64_t nout = shape_numel(kept);
  std::vector<std::vector<double>> groups(nout);
  int64_t n = shape_numel(shape);
  std::vector<int64_t> idx(shape.size());
  for (int64_t p = 0; p < n; ++p) {
    int64_t r = p;
    for (int64_t d = (int64_t)shape.size() - 1; d >= 0; --d) {
      idx[d] = r % shape[d];
      r /= shape[d];
    }
    int64_t o = 0;
    for (size_t d = 0; d < shape.size(); ++d)
      if (!red[d]) o = o * shape[d] + idx[d];
    groups[o].push_back(x[p]);
  }
  std::vector<double> out(nout);
  for (int64_t o = 0; o < nout; ++o) out[o] = f(groups[o]);
  return out;
}

double ref_sum(const std::vector<double>& v) {
  double s = 0;
  for (double x : v) s += x;
  return s;
}
double ref_mean(const std::vector<double>& v) { return ref_sum(v) / double(v.size()); }
double ref_max(const std::vector<double>& v) {
  double m = -INFINITY;
  for (double x : v) {
    if (std::isnan(x)) return x;
    m = std::max(m, x);
  }
  return m;
}
double ref_lse(const std::vector<double>& v) {
  double m = ref_max(v);
  if (std::isinf(m)) m = 0;
  double s = 0;
  for (double x : v) s += std::exp(x - m);
  return m + std::log(s);
}

// The expected output shape of reducing `shape` over `red`.
Shape reduced_shape(const Shape& shape, const std::vector<bool>& red, bool keepdim) {
  Shape s;
  for (size_t d = 0; d < shape.size(); ++d) {
    if (!red[d]) s.push_back(shape[d]);
    else if (keepdim) s.push_back(1);
  }
  return s;
}

using ReduceFn = Tensor (*)(const Tensor&, const Axes&, bool);

struct ReduceCase {
  const char* name;
  ReduceFn fn;
  double (*ref)(const std::vector<double>&);
  double rtol32, rtol64;
};

const std::vector<ReduceCase> kReduces = {
    {"sum", [](const Tensor& x, const Axes& a, bool k) { return sum(x, a, k); }, ref_sum, 1e-6, 1e-13},
    {"mean", [](const Tensor& x, const Axes& a, bool k) { return mean(x, a, k); }, ref_mean, 1e-6, 1e-13},
    {"max", [](const Tensor& x, const Axes& a, bool k) { return max(x, a, k); }, ref_max, 0, 0},
    {"logsumexp", [](const Tensor& x, const Axes& a, bool k) { return logsumexp(x, a, k); }, ref_lse, 1e-5, 1e-13},
};

}  // namespace

TEST_CASE("reduce: sum, mean, max, logsumexp over every subset of axes") {
  const Shape shape = {3, 4, 5};
  for (DType dt : {DType::f32, DType::f64}) {
    Tensor base = rd_rand({3, 4, 5}, dt, 21);
    // the same logical tensor through strides: a permuted copy permuted back, and a step slice
    Tensor perm = base.permute({2, 0, 1}).contiguous().permute({1, 2, 0});
    REQUIRE_FALSE(perm.is_contiguous());
    Tensor wide = Tensor::zeros({3, 4, 10}, dt);
    wide.slice(2, 1, 10, 2).copy_(base);
    Tensor stepped = wide.slice(2, 1, 10, 2);
    std::vector<std::pair<const char*, Tensor>> inputs = {{"contiguous", base}, {"permuted", perm}, {"stepped", stepped}};
    std::vector<double> xv = base.to_vector<double>();
    for (const ReduceCase& rc : kReduces) {
      for (int mask = 0; mask < 8; ++mask) {
        std::vector<bool> red(3);
        Axes axes, neg_axes;
        for (int d = 0; d < 3; ++d) {
          red[d] = mask == 0 || (mask >> d & 1);  // mask 0: empty axes = all axes
          if (mask >> d & 1) {
            axes.push_back(d);
            neg_axes.push_back(d - 3);
          }
        }
        std::vector<double> want = reduce_ref(xv, shape, red, rc.ref);
        for (bool keepdim : {false, true}) {
          for (auto& [iname, x] : inputs) {
            std::string what = std::string(rc.name) + " " + dtype_name(dt) + " axes " + shape_str(axes) +
                               " keepdim " + std::to_string(keepdim) + " " + iname;
            CAPTURE(what);
            Tensor out = rc.fn(x, axes, keepdim);
            CHECK(out.shape() == reduced_shape(shape, red, keepdim));
            CHECK(out.dtype() == dt);
            double rtol = dt == DType::f32 ? rc.rtol32 : rc.rtol64;
            expect_close(out.to_vector<double>(), want, rtol * 0.1, rtol, what);
            Tensor outn = rc.fn(x, neg_axes, keepdim);  // negative axes: the same result
            CHECK(outn.shape() == out.shape());
            expect_close(outn.to_vector<double>(), out.to_vector<double>(), 0, 0, what + " negative axes");
          }
        }
      }
      // axes given out of order reduce the same
      Tensor a = rc.fn(base, {2, 0}, false), b = rc.fn(base, {0, 2}, false);
      expect_close(a.to_vector<double>(), b.to_vector<double>(), 0, 0, std::string(rc.name) + " axis order");
    }
  }
}

TEST_CASE("reduce: large strided reductions (threaded outer loop)") {
  Tensor x = rd_rand({64, 700}, DType::f64, 3).t();  // (700, 64), column-major
  Tensor s = sum(x, {1});
  std::vector<bool> red = {false, true};
  expect_close(s.to_vector<double>(), reduce_ref(x.to_vector<double>(), x.shape(), red, ref_sum), 1e-12, 1e-12,
                  "sum over rows");
  Tensor m = max(x, {0}, true);
  CHECK(m.shape() == Shape{1, 64});
  expect_close(m.to_vector<double>(), reduce_ref(x.to_vector<double>(), x.shape(), {true, false}, ref_max), 0, 0,
                  "max over columns");
}

TEST_CASE("reduce: float32 sums accumulate in double") {
  Tensor ones = Tensor::ones({1000000});
  CHECK(sum(ones).item() == 1000000.0);
  CHECK(sum(ones.view({1000, 1000}), {1}).to_vector<float>() == std::vector<float>(1000, 1000.f));
  CHECK(mean(ones).item() == 1.0);
  // 0.1f a million times: a float accumulator drifts by ~1%, a double one is exact to float precision
  Tensor tenth = Tensor::full({1000000}, 0.1);
  double want = 1e6 * double(0.1f);
  CHECK(sum(tenth).item() == doctest::Approx(want).epsilon(1e-7));
  CHECK(float(sum(tenth).item()) == float(want));
  // 2^24 + 1 ones: float accumulation would stop at 16777216
  Tensor many = Tensor::ones({(1 << 24) + 2});
  CHECK(sum(many).item() == double((1 << 24) + 2));
}

TEST_CASE("reduce: max and NaN; logsumexp at the extremes") {
  for (DType dt : {DType::f32, DType::f64}) {
    CAPTURE(dtype_name(dt));
    for (int pos = 0; pos < 4; ++pos) {
      std::vector<double> v = {1, 5, -2, 3};
      v[pos] = NAN;
      Tensor x = Tensor::from_vector(v, {4}).to(dt);
      CAPTURE(pos);
      CHECK(std::isnan(max(x).item()));
      CHECK(std::isnan(max(x, {0}, true).item()));
      CHECK(std::isnan(logsumexp(x).item()));
    }
    Tensor m = Tensor::from_list({1, NAN, 2, 3, 4, 5}, {2, 3}, dt);
    std::vector<double> mc = max(m, {0}).to_vector<double>();  // only column 1 sees the NaN
    CHECK(mc[0] == 3);
    CHECK(std::isnan(mc[1]));
    CHECK(mc[2] == 5);
    CHECK(max(Tensor::from_list({-INFINITY, -INFINITY}, {2}, dt)).item() == -INFINITY);

    CHECK(logsumexp(Tensor::from_list({1000, 1000}, {2}, dt)).item() ==
          doctest::Approx(1000 + std::log(2.0)).epsilon(1e-7));
    CHECK(logsumexp(Tensor::from_list({-1000, -1000}, {2}, dt)).item() ==
          doctest::Approx(-1000 + std::log(2.0)).epsilon(1e-7));
    CHECK(logsumexp(Tensor::from_list({-INFINITY, -INFINITY, -INFINITY}, {3}, dt)).item() == -INFINITY);
    CHECK(logsumexp(Tensor::from_list({-INFINITY, 0.5}, {2}, dt)).item() == doctest::Approx(0.5));
    CHECK(logsumexp(Tensor::from_list({INFINITY, 0.5}, {2}, dt)).item() == INFINITY);
    // rows with different scales, one all -inf
    Tensor r = Tensor::from_list({800, 800, 800, -INFINITY, -INFINITY, -INFINITY, 0, 1, 2}, {3, 3}, dt);
    std::vector<double> l = logsumexp(r, {1}).to_vector<double>();
    CHECK(l[0] == doctest::Approx(800 + std::log(3.0)).epsilon(1e-7));
    CHECK(l[1] == -INFINITY);
    CHECK(l[2] == doctest::Approx(std::log(1 + std::exp(1.0) + std::exp(2.0))).epsilon(1e-6));
  }
}

TEST_CASE("reduce: softmax and log_softmax") {
  for (DType dt : {DType::f32, DType::f64}) {
    double tol = dt == DType::f32 ? 1e-6 : 1e-14;
    Tensor x = rd_rand({4, 6}, dt, 5, -3, 3);
    for (int64_t axis : {0, 1, -1, -2}) {
      std::string what = std::string(dtype_name(dt)) + " axis " + std::to_string(axis);
      CAPTURE(what);
      Tensor sm = softmax(x, axis), lsm = log_softmax(x, axis);
      CHECK(sm.shape() == x.shape());
      CHECK(lsm.shape() == x.shape());
      int64_t ax = axis < 0 ? axis + 2 : axis;
      std::vector<bool> red = {ax == 0, ax == 1};
      // sums to 1 along the axis
      expect_close(sum(sm, {axis}).to_vector<double>(), std::vector<double>(ax == 0 ? 6 : 4, 1.0), 4 * tol, 0,
                      what + " sums");
      // against the definition
      std::vector<double> xv = x.to_vector<double>();
      std::vector<double> lse = reduce_ref(xv, x.shape(), red, ref_lse), want(24), lwant(24);
      for (int i = 0; i < 4; ++i)
        for (int j = 0; j < 6; ++j) {
          double l = lse[ax == 0 ? j : i];
          lwant[i * 6 + j] = xv[i * 6 + j] - l;
          want[i * 6 + j] = std::exp(lwant[i * 6 + j]);
        }
      expect_close(sm.to_vector<double>(), want, tol, 10 * tol, what + " softmax");
      expect_close(lsm.to_vector<double>(), lwant, 10 * tol, 10 * tol, what + " log_softmax");
      // a transposed input gives the transposed result
      expect_close(softmax(x.t(), 1 - ax).t().to_vector<double>(), sm.to_vector<double>(), tol, tol,
                      what + " transposed");
    }
    // large logits do not overflow
    Tensor big = Tensor::from_list({1000, 1001, 999, -1000}, {1, 4}, dt);
    std::vector<double> s = softmax(big, -1).to_vector<double>();
    double z = 1 + std::exp(1.0) + std::exp(-1.0);
    double eps = dt == DType::f32 ? 2e-4 : 1e-10;  // float32 spacing at 1000 is 6e-5
    CHECK(s[0] == doctest::Approx(1 / z).epsilon(eps));
    CHECK(s[1] == doctest::Approx(std::exp(1.0) / z).epsilon(eps));
    CHECK(s[2] == doctest::Approx(std::exp(-1.0) / z).epsilon(eps));
    CHECK(s[3] == 0.0);
    CHECK(log_softmax(big, -1).to_vector<double>()[1] == doctest::Approx(1 - std::log(z)).epsilon(eps));
    CHECK(std::isfinite(log_softmax(big, -1).to_vector<double>()[3]));
  }
  CHECK_THROWS_AS(softmax(Tensor::zeros({2, 3}), 2), IndexError);
}

TEST_CASE("reduce: argmax") {
  Tensor x = Tensor::from_list({1, 7, 7, 2,   //
                                9, 0, 9, 9,   //
                                -1, -1, -3, -1},
                               {3, 4}, DType::f64);
  CHECK(argmax(x, 1).dtype() == DType::i64);
  CHECK(argmax(x, 1).to_vector<int64_t>() == std::vector<int64_t>{1, 0, 0});  // first max on ties
  CHECK(argmax(x, -1).to_vector<int64_t>() == std::vector<int64_t>{1, 0, 0});
  CHECK(argmax(x, 0).to_vector<int64_t>() == std::vector<int64_t>{1, 0, 1, 1});
  CHECK(argmax(x, 0, true).shape() == Shape{1, 4});
  CHECK(argmax(x, 1, true).shape() == Shape{3, 1});
  CHECK(argmax(x.t(), 0).to_vector<int64_t>() == std::vector<int64_t>{1, 0, 0});
  CHECK(argmax(x.t(), 1).to_vector<int64_t>() == std::vector<int64_t>{1, 0, 1, 1});
  CHECK(argmax(x.to(DType::f32), 1).to_vector<int64_t>() == std::vector<int64_t>{1, 0, 0});
  CHECK(argmax(x.to(DType::i64), 1).to_vector<int64_t>() == std::vector<int64_t>{1, 0, 0});
  Tensor neg = Tensor::from_list({-INFINITY, -5, -INFINITY}, {3}, DType::f32);
  CHECK(argmax(neg, 0).item() == 1);
  CHECK(argmax(Tensor::from_list({-INFINITY, -INFINITY}, {2}), 0).item() == 0);
  CHECK(argmax(neg, 0).dim() == 0);
  // 3-D, the middle axis, a step-sliced input
  Tensor y = rd_rand({3, 5, 4}, DType::f32, 8);
  Tensor ys = y.slice(1, 0, 5, 2);  // (3, 3, 4)
  std::vector<int64_t> am = argmax(ys, 1).to_vector<int64_t>();
  std::vector<float> yv = ys.to_vector<float>();
  REQUIRE(am.size() == 12);
  for (int i = 0; i < 3; ++i)
    for (int k = 0; k < 4; ++k) {
      int best = 0;
      for (int j = 1; j < 3; ++j)
        if (yv[(i * 3 + j) * 4 + k] > yv[(i * 3 + best) * 4 + k]) best = j;
      CHECK(am[i * 4 + k] == best);
    }
  std::string e = error_of<IndexError>([&] { argmax(x, 2); });
  CHECK(has(e, "argmax"));
  CHECK(has(e, "[3, 4]"));
  CHECK_THROWS_AS(argmax(Tensor::zeros({3, 0}), 1), ShapeError);
}

TEST_CASE("reduce: sum_to") {
  Tensor x = rd_rand({2, 3, 4}, DType::f64, 13);
  std::vector<double> xv = x.to_vector<double>();
  auto X = [&](int i, int j, int k) { return xv[(i * 3 + j) * 4 + k]; };

  Tensor a = sum_to(x, {3, 1});
  CHECK(a.shape() == Shape{3, 1});
  std::vector<double> want(3, 0.0);
  for (int i = 0; i < 2; ++i)
    for (int j = 0; j < 3; ++j)
      for (int k = 0; k < 4; ++k) want[j] += X(i, j, k);
  expect_close(a.to_vector<double>(), want, 1e-13, 1e-13, "sum_to {3, 1}");

  Tensor b = sum_to(x, {1, 4});
  CHECK(b.shape() == Shape{1, 4});
  want.assign(4, 0.0);
  for (int i = 0; i < 2; ++i)
    for (int j = 0; j < 3; ++j)
      for (int k = 0; k < 4; ++k) want[k] += X(i, j, k);
  expect_close(b.to_vector<double>(), want, 1e-13, 1e-13, "sum_to {1, 4}");

  Tensor c = sum_to(x, {2, 1, 4});
  CHECK(c.shape() == Shape{2, 1, 4});
  want.assign(8, 0.0);
  for (int i = 0; i < 2; ++i)
    for (int j = 0; j < 3; ++j)
      for (int k = 0; k < 4; ++k) want[i * 4 + k] += X(i, j, k);
  expect_close(c.to_vector<double>(), want, 1e-13, 1e-13, "sum_to {2, 1, 4}");

  Tensor d = sum_to(x, {4});
  CHECK(d.shape() == Shape{4});
  expect_close(d.to_vector<double>(), b.to_vector<double>(), 1e-13, 1e-13, "sum_to {4}");

  Tensor s = sum_to(x, {});
  CHECK(s.dim() == 0);
  CHECK(s.item() == doctest::Approx(ref_sum(xv)));
  Tensor s1 = sum_to(x, {1, 1, 1});
  CHECK(s1.shape() == Shape{1, 1, 1});
  CHECK(s1.item() == doctest::Approx(ref_sum(xv)));

  Tensor same = sum_to(x, {2, 3, 4});
  CHECK(same.same_storage(x));
  // the backward of a broadcast: sum_to(expand(g)) = g * (broadcast factor)
  Tensor g = rd_rand({3, 1}, DType::f64, 14);
  expect_close(sum_to(g.expand({2, 3, 4}), {3, 1}).to_vector<double>(), mul(g, 8.0).to_vector<double>(), 1e-13,
                  1e-13, "sum_to of an expand");

  std::string e = error_of<ShapeError>([&] { sum_to(x, {3, 2}); });
  CHECK(has(e, "sum_to"));
  CHECK(has(e, "[2, 3, 4]"));
  CHECK(has(e, "[3, 2]"));
  CHECK_THROWS_AS(sum_to(x, {1, 2, 3, 4}), ShapeError);
}

TEST_CASE("reduce: int64") {
  Tensor x = Tensor::from_vector(std::vector<int64_t>{1, 2, 3, 4, 5, (int64_t)1 << 60}, {2, 3});
  Tensor s = sum(x, {1});
  CHECK(s.dtype() == DType::i64);
  CHECK(s.to_vector<int64_t>() == std::vector<int64_t>{6, 9 + ((int64_t)1 << 60)});
  CHECK(sum(x, {0}).to_vector<int64_t>() == std::vector<int64_t>{5, 7, 3 + ((int64_t)1 << 60)});
  CHECK(sum(x).to_vector<int64_t>() == std::vector<int64_t>{15 + ((int64_t)1 << 60)});
  CHECK(max(x, {1}).to_vector<int64_t>() == std::vector<int64_t>{3, (int64_t)1 << 60});
  Tensor neg = Tensor::from_vector(std::vector<int64_t>{std::numeric_limits<int64_t>::min(), -5}, {2});
  CHECK(max(neg).to_vector<int64_t>()[0] == -5);
  CHECK(max(Tensor::from_vector(std::vector<int64_t>{std::numeric_limits<int64_t>::min()}, {1})).to_vector<int64_t>()[0] ==
        std::numeric_limits<int64_t>::min());
  CHECK_THROWS_AS(mean(x), DTypeError);
  CHECK_THROWS_AS(logsumexp(x), DTypeError);
  CHECK_THROWS_AS(softmax(x, 0), DTypeError);
}

TEST_CASE("reduce: empty and 0-d inputs") {
  Tensor z = Tensor::zeros({0, 3});
  CHECK(sum(z).item() == 0.0);
  CHECK(sum(z, {0}).shape() == Shape{3});
  CHECK(sum(z, {0}).to_vector<float>() == std::vector<float>(3, 0.f));
  CHECK(sum(z, {1}).shape() == Shape{0});
  CHECK(sum(z, {1}, true).shape() == Shape{0, 1});
  CHECK(max(z, {1}).shape() == Shape{0});  // nothing reduced over an empty axis: fine
  Tensor s = Tensor::scalar(2.5, DType::f64);
  CHECK(sum(s).item() == 2.5);
  CHECK(sum(s).dim() == 0);
  CHECK(mean(s).item() == 2.5);
  CHECK(max(s).item() == 2.5);
  CHECK(logsumexp(s).item() == doctest::Approx(2.5));
  CHECK(sum(s, {}, true).dim() == 0);
}

TEST_CASE("reduce: errors") {
  Tensor x = Tensor::zeros({3, 4, 5});
  std::string e = error_of<IndexError>([&] { sum(x, {3}); });
  CHECK(has(e, "sum"));
  CHECK(has(e, "axis 3"));
  CHECK(has(e, "[3, 4, 5]"));
  e = error_of<IndexError>([&] { max(x, {-4}); });
  CHECK(has(e, "max"));
  CHECK(has(e, "axis -4"));
  CHECK(has(e, "[3, 4, 5]"));
  e = error_of<IndexError>([&] { sum(x, {1, 1}); });
  CHECK(has(e, "sum"));
  CHECK(has(e, "twice"));
  e = error_of<IndexError>([&] { mean(x, {0, -3}); });  // the same axis twice, spelled two ways
  CHECK(has(e, "mean"));
  CHECK(has(e, "twice"));
  e = error_of<ShapeError>([] { mean(Tensor::zeros({2, 0, 3}), {1}); });
  CHECK(has(e, "mean"));
  CHECK(has(e, "[2, 0, 3]"));
  CHECK_THROWS_AS(mean(Tensor::zeros({0})), ShapeError);
  e = error_of<ShapeError>([] { max(Tensor::zeros({2, 0}), {1}); });
  CHECK(has(e, "max"));
  CHECK(has(e, "[2, 0]"));
  CHECK_THROWS_AS(logsumexp(x, {0, 5}), IndexError);
}

TEST_CASE("reduce: argmax with NaN agrees with max (the first NaN wins)") {
  for (DType dt : {DType::f32, DType::f64}) {
    CAPTURE(dtype_name(dt));
    CHECK(argmax(Tensor::from_list({1, NAN, 3}, {3}, dt), 0).item() == 1);
    CHECK(argmax(Tensor::from_list({NAN, 1, 3}, {3}, dt), 0).item() == 0);
    CHECK(argmax(Tensor::from_list({1, 3, NAN, NAN}, {4}, dt), 0).item() == 2);
    CHECK(argmax(Tensor::from_list({1, 3, 2}, {3}, dt), 0).item() == 1);
    Tensor m = Tensor::from_list({1, 5, NAN, 2, NAN, 0}, {2, 3}, dt);
    CHECK(argmax(m, 1).to_vector<int64_t>() == std::vector<int64_t>{2, 1});
    CHECK(argmax(m, 0).to_vector<int64_t>() == std::vector<int64_t>{1, 1, 0});
  }
}

TEST_CASE("reduce: many axes") {
  // 17 axes, 16 of them of size 1: reducing all of them works
  Shape s(16, 1);
  s.push_back(40000);
  Tensor x = Tensor::ones(s);
  CHECK(sum(x).item() == 40000.0);
  CHECK(sum(x, {}, true).shape() == Shape(17, 1));
  CHECK(max(x, {0, 1, 2, 16}).shape() == Shape(13, 1));
  // 17 reduced axes of size 2 of a strided view (the general loop): a ShapeError reaches the
  // caller (not std::terminate from inside the parallel region)
  Tensor y = Tensor::ones(Shape(17, 2));
  std::string e = error_of<ShapeError>([&] { sum(y.transpose(0, 16)); });
  CHECK(has(e, "16"));
  // a contiguous tensor's axes merge into one run first, so it has no such limit
  CHECK(sum(y).item() == double(1 << 17));
  // fewer reduced axes of the same tensor are fine
  Axes sixteen;
  for (int64_t d = 1; d < 17; ++d) sixteen.push_back(d);
  CHECK(sum(y, sixteen).to_vector<float>() == std::vector<float>{65536.f, 65536.f});
}

TEST_CASE("reduce: the contiguous sum paths agree with the strided loop on every axis pattern") {
  // each pattern of reduced (R) and kept (K) axes after merging: (K,R), (R,K), (R,K,R), (K,R,K),
  // all, none of size > 1; the reference is the same sum over a permuted copy read through a
  // non-contiguous view (the general loop)
  Tensor x = Tensor::from_vector(lcg(3 * 4 * 5 * 6, 3, -50, 50), {3, 4, 5, 6});
  Tensor xs = x.permute({3, 2, 1, 0}).contiguous().permute({3, 2, 1, 0});  // same values, strided
  REQUIRE(!xs.is_contiguous());
  for (Axes axes : {Axes{3}, Axes{2, 3}, Axes{0}, Axes{0, 1}, Axes{0, 3}, Axes{0, 2, 3}, Axes{1}, Axes{1, 2},
                    Axes{}, Axes{0, 1, 2, 3}, Axes{0, 2}, Axes{1, 3}}) {
    CAPTURE(shape_str(axes));
    for (bool keepdim : {false, true}) {
      Tensor a = sum(x, axes, keepdim), b = sum(xs, axes, keepdim);
      REQUIRE(a.shape() == b.shape());
      expect_close(a.to_vector<double>(), b.to_vector<double>(), 1e-12, 1e-12, "float64");
      Tensor af = sum(x.to(DType::f32), axes, keepdim);
      expect_close(af.to(DType::f64).to_vector<double>(), b.to_vector<double>(), 1e-3, 1e-6, "float32");
    }
  }
}

}  // namespace file_engine_test_reduce

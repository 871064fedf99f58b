// test_autograd.cpp: the mechanics of reverse mode: accumulation, seeds, no-grad, detach, long
// graphs, and the errors a user meets.
#include <doctest/doctest.h>

#include <cmath>

#include "autograd/ops.h"

using namespace gv;
using ag::Var;

static Var leaf(std::initializer_list<double> v, Shape s) { return Var(Tensor::from_list(v, s, DType::f64), true); }

TEST_CASE("gradients accumulate over every use of a variable") {
  Var x = leaf({1, 2, 3}, {3});
  Var y = ag::sum(x * x + x * 3.0 + ag::exp(x) * 0.0);  // dy/dx = 2x + 3
  y.backward();
  CHECK(x.grad().to_vector<double>() == std::vector<double>{5, 7, 9});
  SUBCASE("a second backward adds to the gradient; zero_grad clears it") {
    Var y2 = ag::sum(x * 2.0);
    y2.backward();
    CHECK(x.grad().to_vector<double>() == std::vector<double>{7, 9, 11});
    x.zero_grad();
    CHECK_FALSE(x.grad().defined());
  }
}

TEST_CASE("a diamond graph sums both paths into the shared node") {
  Var x = leaf({2}, {1});
  Var h = ag::exp(x);                 // shared intermediate
  Var y = ag::sum(h * h + h * 5.0);   // dy/dx = (2h + 5) h
  y.backward();
  double h0 = std::exp(2.0);
  CHECK(x.grad().item() == doctest::Approx((2 * h0 + 5) * h0).epsilon(1e-12));
}

TEST_CASE("backward with an explicit output gradient") {
  Var x = leaf({1, 2, 3, 4}, {2, 2});
  Var y = x * x;
  y.backward(Tensor::from_list({1, 0, 2, 0}, {2, 2}, DType::f64));
  CHECK(x.grad().to_vector<double>() == std::vector<double>{2, 0, 12, 0});
}

TEST_CASE("inputs that do not require gradients get none") {
  Var x = leaf({1, 2}, {2});
  Var c(Tensor::from_list({3, 4}, {2}, DType::f64), false);
  ag::sum(x * c).backward();
  CHECK(x.grad().to_vector<double>() == std::vector<double>{3, 4});
  CHECK_FALSE(c.grad().defined());
}

TEST_CASE("no-grad scope records nothing; detach cuts the graph") {
  Var x = leaf({1, 2}, {2});
  {
    ag::NoGradGuard ng;
    Var y = x * 2.0;
    CHECK_FALSE(y.requires_grad());
    CHECK_FALSE(ag::grad_enabled());
  }
  CHECK(ag::grad_enabled());
  Var d = (x * 2.0).detach();
  CHECK_FALSE(d.requires_grad());
  CHECK(d.data().to_vector<double>() == std::vector<double>{2, 4});
  Var z = ag::sum(x * d);  // d is a constant now: dz/dx = d
  z.backward();
  CHECK(x.grad().to_vector<double>() == std::vector<double>{2, 4});
}

TEST_CASE("max splits its gradient evenly among ties; maximum splits ties in half") {
  Var x = leaf({1, 3, 3, 2}, {4});
  ag::max(x).backward();
  CHECK(x.grad().to_vector<double>() == std::vector<double>{0, 0.5, 0.5, 0});
  Var a = leaf({1, 2}, {2}), b = leaf({1, 0}, {2});
  ag::sum(ag::maximum(a, b)).backward();
  CHECK(a.grad().to_vector<double>() == std::vector<double>{0.5, 1});
  CHECK(b.grad().to_vector<double>() == std::vector<double>{0.5, 0});
}

TEST_CASE("a chain of 200000 ops runs backward and is freed without recursion") {
  Var x = leaf({0.5}, {1});
  Var y = x;
  const int n = 200000;
  for (int i = 0; i < n; ++i) y = y * 1.0 + 0.0;  // 2 nodes per step: 400000 nodes
  ag::sum(y).backward();
  CHECK(x.grad().item() == doctest::Approx(1.0));
  y = Var();  // destroying the chain must not overflow the stack
  CHECK(x.defined());
}

TEST_CASE("float32 graphs work and give the same gradients as float64 to float32 precision") {
  Tensor v = Tensor::from_list({0.3, -1.2, 2.0, 0.7}, {2, 2}, DType::f64);
  Var x64(v, true), x32(v.to(DType::f32), true);
  auto f = [](const Var& x) { return ag::sum(ag::tanh(ag::matmul(x, x)) * ag::sigmoid(x)); };
  f(x64).backward();
  f(x32).backward();
  auto g64 = x64.grad().to_vector<double>(), g32 = x32.grad().to_vector<double>();
  for (size_t i = 0; i < g64.size(); ++i) CHECK(g32[i] == doctest::Approx(g64[i]).epsilon(1e-5));
}

TEST_CASE("errors name what was wrong") {
  Var x = leaf({1, 2, 3}, {3});
  Var y = x * 2.0;
  CHECK_THROWS_WITH_AS(y.backward(), doctest::Contains("needs an explicit output gradient"), ShapeError);
  CHECK_THROWS_WITH_AS(y.backward(Tensor::ones({2}, DType::f64)), doctest::Contains("does not match"), ShapeError);
  Var c(Tensor::ones({2}, DType::f64), false);
  CHECK_THROWS_WITH_AS(ag::sum(c).backward(), doctest::Contains("does not require a gradient"), ValueError);
  CHECK_THROWS_AS(Var(Tensor::ones({2}, DType::i64), true), DTypeError);
  CHECK_THROWS_WITH_AS(y.requires_grad_(false), doctest::Contains("only leaves"), ValueError);
  Var a = leaf({1, 2, 3, 4, 5, 6}, {2, 3});
  CHECK_THROWS_WITH_AS(ag::matmul(a, a), doctest::Contains("[2, 3] and [2, 3]"), ShapeError);
}

TEST_CASE("backward's leaf hook: each leaf once, after its gradient is complete") {
  // w feeds two products (so its gradient has two parts), b one; c is a leaf that needs no gradient
  Var w(Tensor::from_list({1.5, -2.0}, {2}), true), b(Tensor::from_list({0.5, 0.25}, {2}), true);
  Var c(Tensor::from_list({3.0, 4.0}, {2}));
  Var y = ag::sum(w * c + w * w + b);
  std::vector<std::pair<const void*, std::vector<double>>> seen;
  y.backward(Tensor(), [&](const Var& leaf) { seen.push_back({leaf.impl().get(), leaf.grad().to_vector<double>()}); });
  REQUIRE(seen.size() == 2);
  CHECK(seen[0].first != seen[1].first);
  for (const auto& [who, g] : seen) {
    const Var& v = who == w.impl().get() ? w : b;
    CHECK((who == w.impl().get() || who == b.impl().get()));
    CHECK(g == v.grad().to_vector<double>());  // at the report, the gradient was already final
  }
  CHECK(w.grad().to_vector<double>() == std::vector<double>{3.0 + 3.0, 4.0 - 4.0});  // c + 2w
}

// test_optim.cpp: the optimizers against reference implementations written here with plain loops
// in double (PyTorch's update rules), their state save/load, gradient clipping and the learning-rate
// schedules. Parameters are built directly as NamedVar pairs (no Module needed); gradients are set
// with set_grad from a fixed non-linear function of the current parameter values, so each step's
// gradient depends on the trajectory so far.
#include <doctest/doctest.h>
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <functional>
#include <limits>
#include <string>
#include <vector>

#include "autograd/ops.h"
#include "engine/random.h"
#include "engine/runtime.h"
#include "nn/optim.h"
#include "nn/train_step.h"
#include "tests/test_util.h"

using namespace gv;
using namespace gv::nn;
using ag::Var;
using Vec = std::vector<double>;

// This file's helpers and tests in a namespace of their own: the unity build (scripts/test.sh)
// compiles several test files as one, and their helpers must not meet.
namespace file_nn_test_optim {

namespace {

using gv::test::error_message;
using gv::test::error_of;

// ---- the test problem -----------------------------------------------------------------------------

// Two parameters, "enc.w" (2,3) and "enc.b" (4), with values of both signs.
std::vector<Vec> initial_values() {
  return {{0.5, -1.25, 2.0, -0.1, 0.75, 1.5}, {-0.3, 0.9, -2.2, 0.05}};
}
const std::vector<Shape> kShapes = {{2, 3}, {4}};

// g(p) = c (p - target) + 0.1 p^3, per element, with c and target varying by element and parameter.
Vec grad_of(const Vec& p, size_t which) {
  Vec g(p.size());
  for (size_t k = 0; k < p.size(); ++k) {
    double c = 0.5 + 0.3 * double(k) + double(which), target = 0.2 * double(k) - 0.4;
    g[k] = c * (p[k] - target) + 0.1 * p[k] * p[k] * p[k];
  }
  return g;
}

std::vector<NamedVar> make_params(const std::vector<Vec>& values, DType dt = DType::f64) {
  std::vector<NamedVar> ps;
  const char* names[] = {"enc.w", "enc.b"};
  for (size_t i = 0; i < values.size(); ++i)
    ps.emplace_back(names[i], Var(Tensor::from_vector(values[i], kShapes[i]).to(dt), true));
  return ps;
}

Vec values_of(const Var& v) { return v.data().to_vector<double>(); }

// Sets each parameter's gradient to g(current value), in the parameter's dtype.
void set_grads(const std::vector<NamedVar>& ps) {
  for (size_t i = 0; i < ps.size(); ++i)
    ps[i].second.set_grad(Tensor::from_vector(grad_of(values_of(ps[i].second), i), kShapes[i]).to(ps[i].second.dtype()));
}


bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

// ---- reference optimizers: one element at a time, in double, straight from PyTorch's docs ---------

struct RefSGD {
  double lr, mu, wd;
  bool nesterov;
  std::vector<Vec> v;
  void step(std::vector<Vec>& p, const std::vector<Vec>& g, int t) {
    if (v.empty()) for (const Vec& x : p) v.emplace_back(x.size(), 0.0);
    for (size_t i = 0; i < p.size(); ++i)
      for (size_t k = 0; k < p[i].size(); ++k) {
        double d = g[i][k] + wd * p[i][k];
        if (mu != 0) {
          v[i][k] = t == 1 ? d : mu * v[i][k] + d;  // PyTorch: the buffer starts as the first gradient
          d = nesterov ? d + mu * v[i][k] : v[i][k];
        }
        p[i][k] -= lr * d;
      }
  }
};

struct RefAdam {
  double lr, b1, b2, eps, wd;
  std::vector<Vec> m, v;
  void step(std::vector<Vec>& p, const std::vector<Vec>& g, int t) {
    if (m.empty()) for (const Vec& x : p) m.emplace_back(x.size(), 0.0), v.emplace_back(x.size(), 0.0);
    for (size_t i = 0; i < p.size(); ++i)
      for (size_t k = 0; k < p[i].size(); ++k) {
        double d = g[i][k] + wd * p[i][k];
        m[i][k] = b1 * m[i][k] + (1 - b1) * d;
        v[i][k] = b2 * v[i][k] + (1 - b2) * d * d;
        double mhat = m[i][k] / (1 - std::pow(b1, t)), vhat = v[i][k] / (1 - std::pow(b2, t));
        p[i][k] -= lr * mhat / (std::sqrt(vhat) + eps);
      }
  }
};

struct RefAdamax {
  double lr, b1, b2, eps, wd;
  std::vector<Vec> m, u;
  void step(std::vector<Vec>& p, const std::vector<Vec>& g, int t) {
    if (m.empty()) for (const Vec& x : p) m.emplace_back(x.size(), 0.0), u.emplace_back(x.size(), 0.0);
    for (size_t i = 0; i < p.size(); ++i)
      for (size_t k = 0; k < p[i].size(); ++k) {
        double d = g[i][k] + wd * p[i][k];
        m[i][k] = b1 * m[i][k] + (1 - b1) * d;
        u[i][k] = std::max(b2 * u[i][k], std::abs(d) + eps);
        p[i][k] -= lr / (1 - std::pow(b1, t)) * m[i][k] / u[i][k];
      }
  }
};

// Runs `steps` steps of opt and of the reference from the same start; checks every step's values
// agree to tol (absolute and relative), and reports the first mismatch.
template <class Ref>
void check_trajectory(Optimizer& opt, Ref& ref, int steps, double tol) {
  std::vector<Vec> p = initial_values();
  for (int t = 1; t <= steps; ++t) {
    set_grads(opt.params());
    std::vector<Vec> g;
    for (size_t i = 0; i < p.size(); ++i) g.push_back(grad_of(p[i], i));
    opt.step();
    ref.step(p, g, t);
    CHECK(opt.steps() == t);
    for (size_t i = 0; i < p.size(); ++i) {
      Vec got = values_of(opt.params()[i].second);
      for (size_t k = 0; k < got.size(); ++k)
        if (std::abs(got[k] - p[i][k]) > tol * (1 + std::abs(p[i][k]))) {
          FAIL_CHECK(opt.kind() << " step " << t << ": " << opt.params()[i].first << "[" << k << "] = " << got[k]
                                << ", reference " << p[i][k]);
          return;
        }
    }
  }
}

// Bit-for-bit equality of two tensors' values.
bool same_values(const Tensor& a, const Tensor& b) {
  return a.shape() == b.shape() && a.dtype() == b.dtype() && a.to_vector<double>() == b.to_vector<double>();
}

}  // namespace

// ---- trajectories against the references ----------------------------------------------------------

TEST_CASE("SGD matches the reference over 5 steps: plain, momentum, Nesterov, weight decay") {
  struct Case { double lr, mu, wd; bool nesterov; };
  for (Case c : {Case{0.1, 0, 0, false}, Case{0.1, 0, 0.05, false}, Case{0.05, 0.9, 0, false},
                 Case{0.05, 0.9, 0.01, false}, Case{0.05, 0.8, 0, true}, Case{0.05, 0.9, 0.02, true}}) {
    CAPTURE(c.lr); CAPTURE(c.mu); CAPTURE(c.wd); CAPTURE(c.nesterov);
    SGD opt(make_params(initial_values()), c.lr, c.mu, c.wd, c.nesterov);
    RefSGD ref{c.lr, c.mu, c.wd, c.nesterov, {}};
    check_trajectory(opt, ref, 5, 1e-12);
  }
}

TEST_CASE("Adam matches the reference over 5 steps, with and without weight decay") {
  struct Case { double lr, b1, b2, eps, wd; };
  for (Case c : {Case{1e-3, 0.9, 0.999, 1e-8, 0}, Case{0.05, 0.9, 0.999, 1e-8, 0}, Case{0.1, 0.5, 0.9, 1e-3, 0},
                 Case{0.05, 0.9, 0.999, 1e-8, 0.1}}) {
    CAPTURE(c.lr); CAPTURE(c.b1); CAPTURE(c.b2); CAPTURE(c.eps); CAPTURE(c.wd);
    Adam opt(make_params(initial_values()), c.lr, c.b1, c.b2, c.eps, c.wd);
    RefAdam ref{c.lr, c.b1, c.b2, c.eps, c.wd, {}, {}};
    check_trajectory(opt, ref, 5, 1e-12);
  }
}

TEST_CASE("Adamax matches the reference over 5 steps, with and without weight decay") {
  struct Case { double lr, b1, b2, eps, wd; };
  for (Case c : {Case{2e-3, 0.9, 0.999, 1e-8, 0}, Case{0.1, 0.5, 0.9, 1e-3, 0}, Case{0.05, 0.9, 0.999, 1e-8, 0.1}}) {
    CAPTURE(c.lr); CAPTURE(c.b1); CAPTURE(c.b2); CAPTURE(c.eps); CAPTURE(c.wd);
    Adamax opt(make_params(initial_values()), c.lr, c.b1, c.b2, c.eps, c.wd);
    RefAdamax ref{c.lr, c.b1, c.b2, c.eps, c.wd, {}, {}};
    check_trajectory(opt, ref, 5, 1e-12);
  }
}

TEST_CASE("float32 parameters follow the float64 reference to float precision") {
  Adam adam(make_params(initial_values(), DType::f32), 0.05);
  RefAdam ra{0.05, 0.9, 0.999, 1e-8, 0, {}, {}};
  check_trajectory(adam, ra, 5, 1e-5);
  SGD sgd(make_params(initial_values(), DType::f32), 0.05, 0.9, 0.01, true);
  RefSGD rs{0.05, 0.9, 0.01, true, {}};
  check_trajectory(sgd, rs, 5, 1e-5);
  Adamax adamax(make_params(initial_values(), DType::f32), 0.05);
  RefAdamax rx{0.05, 0.9, 0.999, 1e-8, 0, {}, {}};
  check_trajectory(adamax, rx, 5, 1e-5);
}

TEST_CASE("Adam's bias-corrected first step moves each coordinate by about lr * sign(g)") {
  // mhat = g and vhat = g^2 at step 1, so the move is lr g / (|g| + eps) whatever the scale of g.
  const double lr = 0.01;
  for (DType dt : {DType::f64, DType::f32}) {
    Vec g = {1e-3, -2e-2, 0.5, -7.0, 3e2, -1e3};
    std::vector<NamedVar> ps{{"x", Var(Tensor::zeros({6}, dt), true)}};
    ps[0].second.set_grad(Tensor::from_vector(g, {6}).to(dt));
    Adam opt(ps, lr);
    opt.step();
    Vec x = values_of(ps[0].second);
    for (size_t k = 0; k < g.size(); ++k) CHECK(x[k] == doctest::Approx(-lr * (g[k] > 0 ? 1 : -1)).epsilon(1e-4));
  }
}

// ---- optimizing ---------------------------------------------------------------------------------

TEST_CASE("Adam minimizes the Rosenbrock function to near its optimum (1, 1)") {
  // f(x, y) = (1 - x)^2 + 100 (y - x^2)^2, through autograd
  Var x(Tensor::from_list({-1.5}, {1}, DType::f64), true), y(Tensor::from_list({2.0}, {1}, DType::f64), true);
  Adam opt({{"x", x}, {"y", y}}, 0.02);
  double f = 0;
  for (int it = 0; it < 6000; ++it) {
    opt.zero_grad();
    Var loss = ag::sum(ag::square(ag::rsub(1.0, x)) + ag::square(y - ag::square(x)) * 100.0);
    loss.backward();
    f = loss.item();
    opt.step();
  }
  CHECK(f < 1e-6);
  CHECK(x.item() == doctest::Approx(1.0).epsilon(2e-3));
  CHECK(y.item() == doctest::Approx(1.0).epsilon(4e-3));
}

TEST_CASE("each optimizer minimizes an ill-conditioned float32 quadratic") {
  // f(w) = sum_k c_k (w_k - t_k)^2 with c from 0.1 to 10, through autograd
  const int n = 50;
  Vec c(n), t(n);
  for (int k = 0; k < n; ++k) c[k] = 0.1 * std::pow(100.0, k / double(n - 1)), t[k] = std::sin(double(k));
  Var cv(Tensor::from_vector(c, {n}).to(DType::f32)), tv(Tensor::from_vector(t, {n}).to(DType::f32));
  auto run = [&](auto make) {
    Var w(Tensor::zeros({n}, DType::f32), true);
    auto opt = make(std::vector<NamedVar>{{"w", w}});
    for (int it = 0; it < 3000; ++it) {
      opt.zero_grad();
      ag::sum(cv * ag::square(w - tv)).backward();
      opt.step();
    }
    double worst = 0;
    Vec got = values_of(w);
    for (int k = 0; k < n; ++k) worst = std::max(worst, std::abs(got[k] - t[k]));
    return worst;
  };
  CHECK(run([](auto ps) { return Adam(ps, 0.01); }) < 1e-3);
  CHECK(run([](auto ps) { return Adamax(ps, 0.01); }) < 1e-3);
  CHECK(run([](auto ps) { return SGD(ps, 0.04, 0.5, 0, true); }) < 1e-3);
}

// ---- parameters without gradients, in-place updates, threads -------------------------------------

TEST_CASE("a parameter with no gradient is skipped: its value and state stay as they are") {
  for (int kind = 0; kind < 3; ++kind) {
    auto ps = make_params(initial_values());
    std::unique_ptr<Optimizer> opt;
    if (kind == 0) opt = std::make_unique<SGD>(ps, 0.1, 0.9);
    if (kind == 1) opt = std::make_unique<Adam>(ps, 0.1);
    if (kind == 2) opt = std::make_unique<Adamax>(ps, 0.1);
    CAPTURE(opt->kind());
    set_grads(ps);
    ps[1].second.zero_grad();  // enc.b has no gradient
    opt->step();
    CHECK(opt->steps() == 1);
    CHECK(values_of(ps[1].second) == initial_values()[1]);
    CHECK(values_of(ps[0].second) != initial_values()[0]);
    for (const auto& [name, t] : opt->state()) {
      bool zero = true;
      for (double x : t.to_vector<double>()) zero = zero && x == 0;
      CHECK_MESSAGE(zero == (name.find("enc.b") != std::string::npos), name);
    }
    opt->zero_grad();  // no gradients at all: nothing moves
    Vec w = values_of(ps[0].second);
    opt->step();
    CHECK(values_of(ps[0].second) == w);
    CHECK_FALSE(ps[0].second.grad().defined());
  }
}

TEST_CASE("the update writes the parameter's memory in place: every handle sees it") {
  auto ps = make_params(initial_values());
  Tensor held = ps[0].second.data();
  Adam opt(ps, 0.1);
  set_grads(ps);
  opt.step();
  CHECK(held.same_storage(ps[0].second.data()));
  CHECK(held.to_vector<double>() != initial_values()[0]);
  CHECK(held.to_vector<double>() == values_of(ps[0].second));
}

TEST_CASE("non-contiguous gradients are read correctly") {
  auto ps = make_params(initial_values());
  auto qs = make_params(initial_values());
  set_grads(ps);
  // the same gradient for qs's weight, stored transposed
  Tensor gt = ps[0].second.grad().t().contiguous().t();
  REQUIRE_FALSE(gt.is_contiguous());
  qs[0].second.set_grad(gt);
  qs[1].second.set_grad(ps[1].second.grad());
  Adam a(ps, 0.1), b(qs, 0.1);
  a.step();
  b.step();
  CHECK(same_values(ps[0].second.data(), qs[0].second.data()));
}

TEST_CASE("a large float32 update does not depend on the thread count and matches the reference") {
  // 784 x 500, big enough for parallel_for to split it
  const int64_t n = 784 * 500;
  Vec p0(n), g0(n);
  for (int64_t k = 0; k < n; ++k) p0[k] = std::sin(0.001 * double(k)), g0[k] = std::cos(0.0037 * double(k)) * 0.1;
  auto run = [&](int threads) {
    Var w(Tensor::from_vector(p0, {784, 500}).to(DType::f32), true);
    Adam opt({{"w", w}}, 0.01, 0.9, 0.999, 1e-8, 0.01);
    int prev = omp_get_max_threads();
    omp_set_num_threads(threads);
    for (int t = 0; t < 3; ++t) {
      w.set_grad(Tensor::from_vector(g0, {784, 500}).to(DType::f32));
      opt.step();
    }
    omp_set_num_threads(prev);
    return w.data().to_vector<double>();
  };
  Vec one = run(1), many = run(std::max(2, omp_get_max_threads()));
  CHECK(one == many);
  std::vector<Vec> p{p0}, g{g0};
  RefAdam ref{0.01, 0.9, 0.999, 1e-8, 0.01, {}, {}};
  for (int t = 1; t <= 3; ++t) ref.step(p, g, t);
  double worst = 0;
  for (int64_t k = 0; k < n; ++k) worst = std::max(worst, std::abs(many[k] - p[0][k]));
  CHECK(worst < 1e-6);
}

TEST_CASE("a non-contiguous parameter is refused before any parameter changes") {
  std::vector<NamedVar> ps{{"a", Var(Tensor::from_list({1, 2}, {2}, DType::f64), true)},
                           {"b", Var(Tensor::from_list({1, 2, 3, 4, 5, 6}, {3, 2}, DType::f64).t(), true)}};
  for (auto& [name, v] : ps) v.set_grad(Tensor::ones(v.shape(), DType::f64));
  Adam opt(ps, 0.1);
  std::string msg = error_of<ValueError>([&] { opt.step(); });
  CHECK(contains(msg, "parameter 'b'"));
  CHECK(contains(msg, "not contiguous"));
  CHECK(values_of(ps[0].second) == Vec{1, 2});
  CHECK(opt.steps() == 0);
}

TEST_CASE("a parameter converted to another dtype after construction keeps its state, converted") {
  auto ps = make_params(initial_values());
  Adam opt(ps, 0.05);
  set_grads(ps);
  opt.step();
  const Tensor m64 = opt.state()[0].second;
  for (auto& [name, v] : ps) v.impl()->data = v.data().to(DType::f32);  // as a Module::to(float32) may
  auto st = opt.state();
  CHECK(st[0].second.dtype() == DType::f32);
  CHECK(st[0].second.to_vector<double>() == m64.to(DType::f32).to_vector<double>());
  set_grads(ps);
  opt.step();
  CHECK(opt.state()[0].second.dtype() == DType::f32);
  opt.load_state(st, 1);  // float32 state now matches
  const auto st64 = Adam(make_params(initial_values())).state();
  CHECK_THROWS_AS(opt.load_state(st64, 1), DTypeError);  // float64 state no longer does
}

// ---- state ----------------------------------------------------------------------------------------

TEST_CASE("state() names each slot by parameter and returns copies") {
  auto ps = make_params(initial_values());
  Adam opt(ps, 0.1);
  set_grads(ps);
  opt.step();
  auto st = opt.state();
  std::vector<std::string> names;
  for (const auto& [name, t] : st) names.push_back(name);
  CHECK(names == std::vector<std::string>{"exp_avg.enc.w", "exp_avg.enc.b", "exp_avg_sq.enc.w", "exp_avg_sq.enc.b"});
  CHECK(st[0].second.shape() == Shape{2, 3});
  CHECK(st[0].second.is_contiguous());
  Vec before = st[0].second.to_vector<double>();
  st[0].second.fill_(42);  // a copy: the optimizer's own state is unchanged
  CHECK(opt.state()[0].second.to_vector<double>() == before);
  CHECK(SGD(make_params(initial_values()), 0.1).state().empty());  // no momentum, no state
  CHECK(SGD(make_params(initial_values()), 0.1, 0.9).state()[1].first == "momentum_buffer.enc.b");
  CHECK(Adamax(make_params(initial_values())).state()[3].first == "exp_inf.enc.b");
}

TEST_CASE("save after 3 steps, load into a fresh optimizer on copies, 3 more steps: bit-identical") {
  for (int kind = 0; kind < 3; ++kind) {
    auto make = [kind](std::vector<NamedVar> ps) -> std::unique_ptr<Optimizer> {
      if (kind == 0) return std::make_unique<SGD>(ps, 0.05, 0.9, 0.01, true);
      if (kind == 1) return std::make_unique<Adam>(ps, 0.05, 0.9, 0.999, 1e-8, 0.01);
      return std::make_unique<Adamax>(ps, 0.05, 0.9, 0.999, 1e-8, 0.01);
    };
    auto ps = make_params(initial_values());
    auto a = make(ps);
    CAPTURE(a->kind());
    for (int t = 0; t < 3; ++t) set_grads(ps), a->step();
    // fresh parameters holding copies of the current values, and a fresh optimizer
    std::vector<NamedVar> qs;
    for (const auto& [name, v] : ps) qs.emplace_back(name, Var(v.data().clone(), true));
    auto b = make(qs);
    b->load_state(a->state(), a->steps());
    CHECK(b->steps() == 3);
    for (int t = 0; t < 3; ++t) {
      set_grads(ps), a->step();
      set_grads(qs), b->step();
    }
    for (size_t i = 0; i < ps.size(); ++i) CHECK(same_values(ps[i].second.data(), qs[i].second.data()));
    auto sa = a->state(), sb = b->state();
    for (size_t j = 0; j < sa.size(); ++j) CHECK(same_values(sa[j].second, sb[j].second));
  }
}

TEST_CASE("a fresh optimizer without the loaded state would differ (the round trip test can fail)") {
  auto ps = make_params(initial_values());
  Adam a(ps, 0.05);
  for (int t = 0; t < 3; ++t) set_grads(ps), a.step();
  std::vector<NamedVar> qs;
  for (const auto& [name, v] : ps) qs.emplace_back(name, Var(v.data().clone(), true));
  Adam b(qs, 0.05);
  set_grads(ps), a.step();
  set_grads(qs), b.step();
  CHECK_FALSE(same_values(ps[0].second.data(), qs[0].second.data()));
}

TEST_CASE("load_state rejects a bad state before changing anything") {
  auto ps = make_params(initial_values());
  Adam opt(ps, 0.1);
  for (int t = 0; t < 2; ++t) set_grads(ps), opt.step();
  const auto good = opt.state();
  auto unchanged = [&] {
    CHECK(opt.steps() == 2);
    auto now = opt.state();
    REQUIRE(now.size() == good.size());
    for (size_t j = 0; j < now.size(); ++j) CHECK(same_values(now[j].second, good[j].second));
  };
  // Every bad state below also carries entries that would change the state if applied.
  auto bumped = [&] {
    auto s = good;
    for (auto& [name, t] : s) t = t.clone().fill_(7);
    return s;
  };
  SUBCASE("a missing entry") {
    auto s = bumped();
    s.erase(s.begin() + 3);  // exp_avg_sq.enc.b
    std::string msg = error_of<ValueError>([&] { opt.load_state(s, 9); });
    CHECK(contains(msg, "'exp_avg_sq.enc.b'"));
    CHECK(contains(msg, "missing"));
  }
  SUBCASE("an unknown entry") {
    auto s = bumped();
    s.emplace_back("exp_avg.dec.w", Tensor::zeros({2}, DType::f64));
    std::string msg = error_of<ValueError>([&] { opt.load_state(s, 9); });
    CHECK(contains(msg, "unknown state entry 'exp_avg.dec.w'"));
  }
  SUBCASE("an entry given twice") {
    auto s = bumped();
    s.push_back(s[0]);
    CHECK(contains(error_of<ValueError>([&] { opt.load_state(s, 9); }), "'exp_avg.enc.w' is given twice"));
  }
  SUBCASE("a wrong shape: the message names the parameter, the found and the expected shape") {
    auto s = bumped();
    s[2].second = Tensor::zeros({3, 2}, DType::f64);  // exp_avg_sq.enc.w
    std::string msg = error_of<ShapeError>([&] { opt.load_state(s, 9); });
    CHECK(contains(msg, "'exp_avg_sq.enc.w' for parameter 'enc.w' has shape [3, 2], expected [2, 3]"));
  }
  SUBCASE("a wrong dtype") {
    auto s = bumped();
    s[1].second = s[1].second.to(DType::f32);
    std::string msg = error_of<DTypeError>([&] { opt.load_state(s, 9); });
    CHECK(contains(msg, "'exp_avg.enc.b' for parameter 'enc.b' is float32, expected float64"));
  }
  SUBCASE("a negative step count") {
    CHECK(contains(error_of<ValueError>([&] { opt.load_state(bumped(), -1); }), "step count must be >= 0"));
  }
  SUBCASE("another optimizer's state") {
    CHECK(contains(error_of<ValueError>([&] { opt.load_state(SGD(ps, 0.1, 0.9).state(), 9); }),
                   "unknown state entry 'momentum_buffer.enc.w'"));
  }
  unchanged();
  SUBCASE("loaded tensors are copied, not aliased") {
    auto s = bumped();
    opt.load_state(s, 5);
    CHECK(opt.steps() == 5);
    s[0].second.fill_(-1);
    CHECK(opt.state()[0].second.to_vector<double>() == Vec(6, 7.0));
  }
}

// ---- construction and the learning rate -----------------------------------------------------------

TEST_CASE("optimizers reject bad parameter lists and hyper-parameters") {
  auto ps = make_params(initial_values());
  auto dup = ps;
  dup.emplace_back("enc.w", Var(Tensor::zeros({1}, DType::f64), true));
  CHECK(contains(error_of<ValueError>([&] { Adam a(dup); }), "parameter name 'enc.w' appears twice"));
  auto same = ps;
  same.emplace_back("alias", ps[0].second);
  CHECK(contains(error_of<ValueError>([&] { Adam a(same); }), "'enc.w' and 'alias' are the same Var"));
  auto frozen = ps;
  frozen.emplace_back("stats.mean", Var(Tensor::zeros({3}, DType::f64), false));
  CHECK(contains(error_of<ValueError>([&] { SGD s(frozen, 0.1); }), "'stats.mean' does not require a gradient"));
  CHECK(contains(error_of<ValueError>([&] { SGD s({}, 0.1); }), "empty parameter list"));
  CHECK(contains(error_of<ValueError>([&] { SGD s(ps, -0.1); }), "learning rate"));
  CHECK(contains(error_of<ValueError>([&] { SGD s(ps, 0.1, -0.5); }), "momentum"));
  CHECK(contains(error_of<ValueError>([&] { SGD s(ps, 0.1, 0, 0, true); }), "Nesterov"));
  CHECK(contains(error_of<ValueError>([&] { SGD s(ps, 0.1, 0, -1); }), "weight_decay"));
  CHECK(contains(error_of<ValueError>([&] { Adam a(ps, 0.1, 1.0); }), "beta1"));
  CHECK(contains(error_of<ValueError>([&] { Adam a(ps, 0.1, 0.9, -0.1); }), "beta2"));
  CHECK(contains(error_of<ValueError>([&] { Adam a(ps, 0.1, 0.9, 0.999, -1e-8); }), "eps"));
  CHECK(contains(error_of<ValueError>([&] { Adamax a(ps, 0.1, 0.9, std::nan("")); }), "beta2"));
  CHECK(error_message([&] { Adam a(ps, 0.1, 0, 0, 0, 0); }) == "(no error)");  // the edges are allowed
}

TEST_CASE("set_lr takes finite values >= 0 and the next step uses it") {
  auto ps = make_params(initial_values());
  SGD opt(ps, 0.1);
  for (double bad : {-1e-3, std::nan(""), std::numeric_limits<double>::infinity()}) {
    CAPTURE(bad);
    CHECK(contains(error_of<ValueError>([&] { opt.set_lr(bad); }), "learning rate must be finite and >= 0"));
    CHECK(opt.lr() == 0.1);
  }
  opt.set_lr(0);
  set_grads(ps);
  opt.step();
  CHECK(values_of(ps[0].second) == initial_values()[0]);  // lr 0: no move
  opt.set_lr(0.5);
  opt.step();
  Vec g = grad_of(initial_values()[0], 0);
  CHECK(values_of(ps[0].second)[0] == doctest::Approx(initial_values()[0][0] - 0.5 * g[0]).epsilon(1e-14));
}

// ---- gradient clipping ----------------------------------------------------------------------------

TEST_CASE("clip_grad_norm returns the global norm and scales the gradients to max_norm") {
  std::vector<NamedVar> ps{{"a", Var(Tensor::zeros({2}, DType::f64), true)},
                           {"b", Var(Tensor::zeros({1}, DType::f32), true)},
                           {"c", Var(Tensor::zeros({3}, DType::f64), true)}};  // c has no gradient
  ps[0].second.set_grad(Tensor::from_list({3, 4}, {2}, DType::f64));
  ps[1].second.set_grad(Tensor::from_list({12}, {1}, DType::f32));
  SUBCASE("below max_norm: unchanged") {
    CHECK(clip_grad_norm(ps, 13.5) == doctest::Approx(13).epsilon(1e-15));
    CHECK(ps[0].second.grad().to_vector<double>() == Vec{3, 4});
  }
  SUBCASE("above: scaled by max_norm / (norm + 1e-6), in place") {
    Tensor held = ps[0].second.grad();
    const void* mem = held.raw_data();
    held = Tensor();  // drop our handle, so the gradient's memory is its own
    CHECK(clip_grad_norm(ps, 6.5) == doctest::Approx(13).epsilon(1e-15));
    const double s = 6.5 / (13 + 1e-6);
    CHECK(ps[0].second.grad().raw_data() == mem);
    CHECK(ps[0].second.grad().to_vector<double>() == Vec{3 * s, 4 * s});
    CHECK(ps[1].second.grad().item() == doctest::Approx(12 * s).epsilon(1e-7));
    CHECK_FALSE(ps[2].second.grad().defined());
    CHECK(clip_grad_norm(ps, 100) == doctest::Approx(6.5).epsilon(1e-6));  // the new norm
  }
  CHECK(contains(error_of<ValueError>([&] { clip_grad_norm(ps, -1); }), "max_norm"));
}

TEST_CASE("clip_grad_norm scales a gradient shared by two parameters once for each") {
  // autograd gives both inputs of an add the same gradient tensor
  Var a(Tensor::from_list({1, 2}, {2}, DType::f64), true), b(Tensor::from_list({3, 4}, {2}, DType::f64), true);
  ag::sum((a + b) * Var(Tensor::from_list({3, 4}, {2}, DType::f64))).backward();
  CHECK(a.grad().to_vector<double>() == Vec{3, 4});
  CHECK(b.grad().to_vector<double>() == Vec{3, 4});
  double norm = clip_grad_norm({{"a", a}, {"b", b}}, 1.0);
  CHECK(norm == doctest::Approx(std::sqrt(50.0)).epsilon(1e-15));
  const double s = 1.0 / (std::sqrt(50.0) + 1e-6);
  CHECK(a.grad().to_vector<double>() == Vec{3 * s, 4 * s});
  CHECK(b.grad().to_vector<double>() == Vec{3 * s, 4 * s});
}

TEST_CASE("clip_grad_norm with error_if_nonfinite names the parameter and changes nothing") {
  for (double bad : {std::nan(""), std::numeric_limits<double>::infinity()}) {
    CAPTURE(bad);
    std::vector<NamedVar> ps{{"enc.w", Var(Tensor::zeros({2}, DType::f64), true)},
                             {"dec.b", Var(Tensor::zeros({3}, DType::f32), true)},
                             {"dec.w", Var(Tensor::zeros({1}, DType::f64), true)}};
    ps[0].second.set_grad(Tensor::from_list({30, 40}, {2}, DType::f64));
    ps[1].second.set_grad(Tensor::from_list({1, bad, 2}, {3}, DType::f32));
    ps[2].second.set_grad(Tensor::from_list({bad}, {1}, DType::f64));
    std::string msg = error_of<ValueError>([&] { clip_grad_norm(ps, 1.0, true); });
    CHECK(contains(msg, "the gradient of 'dec.b' is not finite"));
    CHECK(ps[0].second.grad().to_vector<double>() == Vec{30, 40});
    // without the flag: the norm comes back non-finite
    CHECK_FALSE(std::isfinite(clip_grad_norm(ps, 1.0)));
  }
}

TEST_CASE("clip_grad_norm and Adam give the same bits on every ISA path, and the norm is accurate") {
  // 100003 float32 values: six 16384-value chunks of the norm's partial sums and a ragged tail,
  // so every vector loop's remainder runs too.
  Generator gen(123);
  const Tensor g = normal({100003}, gen, 0.0, 1.0).to(DType::f32);
  long double ref = 0;  // the squares of floats are exact in double; only the sums round
  for (float v : g.to_vector<float>()) ref += (long double)v * v;
  const Isa saved = active_isa();
  std::vector<double> norms;
  std::vector<std::vector<float>> after;
  for (Isa isa : supported_isas()) {
    CAPTURE(isa_name(isa));
    set_isa(isa);
    std::vector<NamedVar> ps{{"w", Var(Tensor::zeros({100003}, DType::f32), true)}};
    ps[0].second.set_grad(g.clone());
    norms.push_back(clip_grad_norm(ps, 1e30));
    Adam opt(ps, 1e-3);
    for (int k = 0; k < 3; ++k) {
      ps[0].second.set_grad(mul(g, 1.0 + k));
      opt.step();
    }
    after.push_back(ps[0].second.data().to_vector<float>());
  }
  set_isa(saved);
  for (size_t i = 1; i < norms.size(); ++i) {
    CHECK(norms[i] == norms[0]);  // bitwise: a fixed order of sums, no fused multiply-add
    CHECK(after[i] == after[0]);
  }
  // Per 16384-value chunk, 32 running sums of 512 nonnegative terms each, a tree of 5, then the
  // 7 chunk sums: the relative error of the sum of squares is at most (512 + 12) u = 5.8e-14, so
  // the norm's (half that, plus the square root's half ulp) stays under 1e-13.
  CHECK(std::fabs(norms[0] - std::sqrt((double)ref)) <= 1e-13 * std::sqrt((double)ref));
}

// ---- learning-rate schedules ----------------------------------------------------------------------

TEST_CASE("learning-rate schedules: values at chosen steps") {
  CHECK(ConstantLR(0.3).lr(0) == 0.3);
  CHECK(ConstantLR(0.3).lr(100000) == 0.3);
  StepLR st(0.1, 10, 0.5);
  CHECK(st.lr(0) == doctest::Approx(0.1));
  CHECK(st.lr(9) == doctest::Approx(0.1));
  CHECK(st.lr(10) == doctest::Approx(0.05));
  CHECK(st.lr(29) == doctest::Approx(0.025));
  CHECK(st.lr(30) == doctest::Approx(0.0125));
  ExponentialLR ex(0.1, 0.5, 4);
  CHECK(ex.lr(0) == doctest::Approx(0.1));
  CHECK(ex.lr(2) == doctest::Approx(0.1 * std::sqrt(0.5)).epsilon(1e-14));
  CHECK(ex.lr(8) == doctest::Approx(0.025).epsilon(1e-14));
  CHECK(ExponentialLR(1.0, 0.9).lr(3) == doctest::Approx(0.729).epsilon(1e-14));
  WarmupLR wu(std::make_shared<StepLR>(1.0, 10, 0.1), 4);
  CHECK(wu.lr(0) == 0);
  CHECK(wu.lr(1) == doctest::Approx(0.25));
  CHECK(wu.lr(3) == doctest::Approx(0.75));
  CHECK(wu.lr(4) == doctest::Approx(1.0));
  CHECK(wu.lr(12) == doctest::Approx(0.1));  // the inner schedule counts from step 0
  CHECK(WarmupLR(std::make_shared<ConstantLR>(0.5), 0).lr(0) == 0.5);
  // driving an optimizer
  auto ps = make_params(initial_values());
  SGD opt(ps, 1.0);
  for (int t = 0; t < 12; ++t) {
    opt.set_lr(st.lr(opt.steps()));
    set_grads(ps);
    opt.step();
  }
  CHECK(opt.lr() == doctest::Approx(0.05));
}

TEST_CASE("learning-rate schedules validate their arguments") {
  auto inf = std::numeric_limits<double>::infinity();
  CHECK(contains(error_of<ValueError>([] { ConstantLR c(-1); }), "ConstantLR"));
  CHECK(contains(error_of<ValueError>([] { StepLR s(0.1, 0, 0.5); }), "step_size must be >= 1"));
  CHECK(contains(error_of<ValueError>([] { StepLR s(0.1, 10, 0); }), "gamma"));
  CHECK(contains(error_of<ValueError>([&] { StepLR s(inf, 10, 0.5); }), "base"));
  CHECK(contains(error_of<ValueError>([] { ExponentialLR e(0.1, -0.5); }), "gamma"));
  CHECK(contains(error_of<ValueError>([] { ExponentialLR e(0.1, 0.5, 0); }), "decay_steps"));
  CHECK(contains(error_of<ValueError>([] { WarmupLR w(nullptr, 5); }), "inner schedule is null"));
  CHECK(contains(error_of<ValueError>([] { WarmupLR w(std::make_shared<ConstantLR>(0.1), -1); }), "warmup_steps"));
  CHECK(contains(error_of<ValueError>([] { StepLR(0.1, 10, 0.5).lr(-1); }), "step must be >= 0"));
}

// ---- benchmark (skipped by default; run with --no-skip -tc='*benchmark*') -------------------------

TEST_CASE("benchmark: one Adam step on a 784x500 float32 parameter" * doctest::skip()) {
  Var w(Tensor::full({784, 500}, 0.1), true);
  w.set_grad(Tensor::full({784, 500}, 0.01));
  Adam opt({{"w", w}}, 1e-3);
  for (int i = 0; i < 20; ++i) opt.step();  // warm up
  std::vector<double> us;
  for (int i = 0; i < 500; ++i) {
    auto t0 = std::chrono::steady_clock::now();
    opt.step();
    us.push_back(std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count());
  }
  std::sort(us.begin(), us.end());
  std::printf("Adam step, 784x500 float32, %d threads: median %.1f us (p10 %.1f, p90 %.1f) over %zu steps\n",
              omp_get_max_threads(), us[us.size() / 2], us[us.size() / 10], us[us.size() * 9 / 10], us.size());
}

TEST_CASE("train_step: one update, refusing a non-finite loss or gradient before anything changes") {
  ag::Var w(Tensor::from_vector(std::vector<double>{1.0, -2.0}, {2}), true);
  nn::SGD opt({{"w", w}}, 0.1);
  // loss = sum(w^2): gradient 2w, norm 2|w| = 2 sqrt(5)
  nn::StepResult r = nn::train_step(opt, [&] { return ag::sum(ag::square(w)); });
  CHECK(r.loss == 5.0);
  CHECK(r.grad_norm == doctest::Approx(2 * std::sqrt(5.0)).epsilon(1e-15));  // float64: a few ulps
  CHECK(w.data().to_vector<double>() == std::vector<double>{1.0 - 0.2, -2.0 + 0.4});
  // clipped to norm 1: the step is lr * g / (|g| + 1e-6), as PyTorch's clip_grad_norm_
  const std::vector<double> before = w.data().to_vector<double>();
  r = nn::train_step(opt, [&] { return ag::sum(ag::square(w)); }, 1.0);
  const double n = 2 * std::sqrt(before[0] * before[0] + before[1] * before[1]);
  CHECK(r.grad_norm == doctest::Approx(n).epsilon(1e-15));
  CHECK(w.data().to_vector<double>()[0] == doctest::Approx(before[0] - 0.1 * 2 * before[0] / (n + 1e-6)).epsilon(1e-15));
  // a NaN loss: refused, nothing changed
  const std::vector<double> now = w.data().to_vector<double>();
  CHECK_THROWS_WITH_AS(nn::train_step(opt, [&] { return ag::sum(ag::square(w)) * std::nan(""); }),
                       doctest::Contains("the loss is NaN"), NonFiniteError);
  CHECK(w.data().to_vector<double>() == now);
  // a finite loss whose gradient overflows: refused before the update
  CHECK_THROWS_WITH_AS(nn::train_step(opt, [&] { return ag::sum(w) * 1e308; }),
                       doctest::Contains("the gradient norm is"), NonFiniteError);
  CHECK(w.data().to_vector<double>() == now);
  CHECK_THROWS_AS(nn::train_step(opt, [&] { return w; }), ValueError);  // not a scalar
}

}  // namespace file_nn_test_optim

// test_likelihood.cpp: the likelihood families of vae/likelihood.h against formulas written out
// here with plain doubles: Bernoulli against x l - softplus(l) and log sigmoid; the Gaussians
// against their closed forms (and the fixed one as the L2 loss); the 256-way categorical and the
// discretized logistic mixture as normalized distributions over the 256 values, against
// log_softmax and a direct CDF difference, edge bins and the mid-bin fallback included; float64
// gradient checks of every log_prob; sample statistics against mean() (and, for the discrete
// families, sample frequencies against exp(log_prob)); the errors for shapes, values and names.
#include <doctest/doctest.h>

#include "tests/test_util.h"

#include <algorithm>
#include <array>
#include <map>
#include <cmath>
#include <numbers>
#include <string>
#include <vector>

#include "autograd/gradcheck.h"
#include "vae/likelihood.h"

using namespace gv;
using namespace gv::vae;
using ag::Var;

// This file's helpers and tests in a namespace of their own: the unity build (scripts/test.sh)
// compiles several test files as one, and their helpers must not meet.
namespace file_vae_test_likelihood {

namespace {

// ---- helpers ----------------------------------------------------------------------------------
using gv::test::error_message;
bool contains(const std::string& s, const std::string& part) { return gv::test::has(s, part); }

double sigmoid(double t) { return 1 / (1 + std::exp(-t)); }
double softplus(double t) { return std::max(t, 0.0) + std::log1p(std::exp(-std::fabs(t))); }

Tensor rand64(const Shape& s, double lo, double hi, uint64_t seed) {
  Generator g(seed);
  return uniform(s, g, lo, hi, DType::f64);
}
// Uniformly random 8-bit values j in [0, 255].
std::vector<int64_t> rand_levels(int64_t n, uint64_t seed) {
  std::vector<double> u = rand64({n}, 0, 256, seed).to_vector<double>();
  std::vector<int64_t> j(n);
  for (int64_t i = 0; i < n; ++i) j[i] = std::min<int64_t>(255, (int64_t)u[i]);
  return j;
}
// A batch of n copies of one example's params (1, ...) -> (n, ...), contiguous.
Tensor repeat_batch(const Tensor& one, int64_t n) {
  Shape s = one.shape();
  s[0] = n;
  return one.expand(s).contiguous();
}
std::vector<double> values(const Var& v) { return v.data().to_vector<double>(); }

// Element [b, c, rest] of a (B, N, R) row-major buffer (rest flattened).
struct Idx3 {
  int64_t N, R;
  int64_t operator()(int64_t b, int64_t c, int64_t r) const { return (b * N + c) * R + r; }
};

// ---- Bernoulli ----------------------------------------------------------------------------------
TEST_CASE("bernoulli: log_prob is x l - softplus(l), and log sigmoid(l) / log sigmoid(-l) for x in {0,1}") {
  auto p = bernoulli();
  CHECK(p->name() == "bernoulli");
  CHECK(p->params_per_channel() == 1);
  const Shape s = {3, 2, 2, 2};  // B = 3
  std::vector<double> l = rand64(s, -6, 6, 1).to_vector<double>();
  l[0] = 40, l[1] = -40;  // saturated logits stay finite
  std::vector<double> frac = rand64(s, 0, 1, 2).to_vector<double>(), bin(frac.size());
  for (size_t i = 0; i < frac.size(); ++i) bin[i] = frac[i] < 0.5 ? 0 : 1;
  Var logits(Tensor::from_vector(l, s));

  // the direct formula, for x in [0, 1] (data given as float32: converted to params' dtype)
  std::vector<double> got = values(p->log_prob(Tensor::from_vector(frac, s).to(DType::f32), logits));
  std::vector<double> got_bin = values(p->log_prob(Tensor::from_vector(bin, s), logits));
  REQUIRE(got.size() == 3);
  for (int64_t b = 0; b < 3; ++b) {
    double want = 0, want_bin = 0;
    for (int64_t i = b * 8; i < (b + 1) * 8; ++i) {
      double xf = double(float(frac[i]));
      want += xf * l[i] - softplus(l[i]);
      // x = 1: log sigmoid(l); x = 0: log(1 - sigmoid(l)) = log sigmoid(-l)
      want_bin += bin[i] == 1 ? std::log(sigmoid(l[i])) : std::log(sigmoid(-l[i]));
    }
    CHECK(got[b] == doctest::Approx(want).epsilon(1e-12));
    CHECK(got_bin[b] == doctest::Approx(want_bin).epsilon(1e-9));
    CHECK(std::isfinite(got_bin[b]));
  }
}

// ---- Gaussian, fixed sigma ------------------------------------------------------------------------
TEST_CASE("gaussian: fixed-sigma log_prob is the true Gaussian log density, (B, D) vectors too") {
  const double sigma = 0.7;
  auto p = gaussian_fixed(sigma);
  CHECK(p->name() == "gaussian");
  for (Shape s : {Shape{2, 5}, Shape{2, 3, 2, 2}}) {
    std::vector<double> x = rand64(s, -2, 2, 3).to_vector<double>(), mu = rand64(s, -2, 2, 4).to_vector<double>();
    std::vector<double> got = values(p->log_prob(Tensor::from_vector(x, s), Var(Tensor::from_vector(mu, s))));
    const int64_t D = (int64_t)x.size() / 2;
    for (int64_t b = 0; b < 2; ++b) {
      double want = 0;
      for (int64_t i = b * D; i < (b + 1) * D; ++i)
        want += -0.5 * std::pow((x[i] - mu[i]) / sigma, 2) - std::log(sigma * std::sqrt(2 * std::numbers::pi));
      CHECK(got[b] == doctest::Approx(want).epsilon(1e-12));
    }
  }
}

TEST_CASE("gaussian: maximizing the fixed-sigma log likelihood over mu is minimizing the L2 loss") {
  const double sigma = 0.5;
  auto p = gaussian_fixed(sigma);
  const Shape s = {2, 1, 3, 3};
  Tensor x = rand64(s, -1, 1, 5);
  Var mu(rand64(s, -1, 1, 6), true);
  Var lp = p->log_prob(x, mu);
  ag::sum(lp).backward();
  // d log p / d mu = (x - mu) / sigma^2: gradient ascent on log p is gradient descent on ||x - mu||^2
  std::vector<double> xv = x.to_vector<double>(), mv = mu.data().to_vector<double>(), gv = mu.grad().to_vector<double>();
  for (size_t i = 0; i < xv.size(); ++i) CHECK(gv[i] == doctest::Approx((xv[i] - mv[i]) / (sigma * sigma)).epsilon(1e-12));
  // differences in log p are differences in the L2 loss over 2 sigma^2
  Tensor mu2 = rand64(s, -1, 1, 7);
  std::vector<double> lp1 = values(lp), lp2 = values(p->log_prob(x, Var(mu2))), m2 = mu2.to_vector<double>();
  for (int64_t b = 0; b < 2; ++b) {
    double l2_1 = 0, l2_2 = 0;
    for (int64_t i = b * 9; i < (b + 1) * 9; ++i) l2_1 += std::pow(xv[i] - mv[i], 2), l2_2 += std::pow(xv[i] - m2[i], 2);
    CHECK(lp1[b] - lp2[b] == doctest::Approx(-(l2_1 - l2_2) / (2 * sigma * sigma)).epsilon(1e-12));
  }
}

// ---- Gaussian, learned variance -------------------------------------------------------------------
TEST_CASE("gaussian-learned: closed form with [mean planes, log-variance planes], log variance clamped") {
  const double lo = -4, hi = 4;
  auto p = gaussian_learned(lo, hi);
  CHECK(p->name() == "gaussian-learned");
  CHECK(p->params_per_channel() == 2);
  const int64_t B = 2, C = 2, R = 3;  // x (2, 2, 3, 1), params (2, 4, 3, 1)
  std::vector<double> x = rand64({B, C, R, 1}, -2, 2, 8).to_vector<double>();
  std::vector<double> par = rand64({B, 2 * C, R, 1}, -3, 3, 9).to_vector<double>();
  Idx3 P{2 * C, R}, X{C, R};
  par[P(0, C + 0, 0)] = 7;    // clamped to hi
  par[P(1, C + 1, 2)] = -11;  // clamped to lo
  Var params(Tensor::from_vector(par, {B, 2 * C, R, 1}), true);
  Var lp = p->log_prob(Tensor::from_vector(x, {B, C, R, 1}), params);
  std::vector<double> got = values(lp);
  for (int64_t b = 0; b < B; ++b) {
    double want = 0;
    for (int64_t c = 0; c < C; ++c)
      for (int64_t r = 0; r < R; ++r) {
        double mu = par[P(b, c, r)], v = std::clamp(par[P(b, C + c, r)], lo, hi), d = x[X(b, c, r)] - mu;
        want += -0.5 * (d * d * std::exp(-v) + v + std::log(2 * std::numbers::pi));
      }
    CHECK(got[b] == doctest::Approx(want).epsilon(1e-12));
  }
  // the gradient flows through the log variance inside [lo, hi] and stops where it is clamped
  ag::sum(lp).backward();
  std::vector<double> g = params.grad().to_vector<double>();
  CHECK(g[P(0, C + 0, 0)] == 0);
  CHECK(g[P(1, C + 1, 2)] == 0);
  CHECK(g[P(0, C + 1, 1)] != 0);
}

// ---- 256-way categorical ----------------------------------------------------------------------------
TEST_CASE("categorical256: the 256 probabilities of one subpixel sum to 1 and are log_softmax at round(255 x)") {
  auto p = categorical256();
  CHECK(p->name() == "categorical256");
  CHECK(p->params_per_channel() == 256);
  Tensor one = rand64({1, 256, 1, 1}, -4, 4, 10);
  std::vector<double> x(256);
  for (int k = 0; k < 256; ++k) x[k] = k / 255.0 + (k % 2 ? 1e-4 : -1e-4);  // off-grid by a little: rounds to k
  std::vector<double> lp = values(p->log_prob(Tensor::from_vector(x, {256, 1, 1, 1}), Var(repeat_batch(one, 256))));
  std::vector<double> ref = values(ag::log_softmax(Var(one), 1));
  double total = 0;
  for (int k = 0; k < 256; ++k) {
    total += std::exp(lp[k]);
    CHECK(lp[k] == doctest::Approx(ref[k]).epsilon(1e-12));
  }
  CHECK(total == doctest::Approx(1).epsilon(1e-12));
}

TEST_CASE("categorical256: plane j*C + c holds logit j of channel c") {
  const int64_t B = 2, C = 3, R = 2;
  Tensor params = rand64({B, 256 * C, 1, R}, -3, 3, 11);
  std::vector<double> l = params.to_vector<double>();
  std::vector<int64_t> j = rand_levels(B * C * R, 12);
  std::vector<double> x(j.size());
  for (size_t i = 0; i < j.size(); ++i) x[i] = j[i] / 255.0;
  std::vector<double> got = values(categorical256()->log_prob(Tensor::from_vector(x, {B, C, 1, R}), Var(params)));
  Idx3 P{256 * C, R}, X{C, R};
  for (int64_t b = 0; b < B; ++b) {
    double want = 0;
    for (int64_t c = 0; c < C; ++c)
      for (int64_t r = 0; r < R; ++r) {
        double m = -1e300, s = 0;
        for (int64_t k = 0; k < 256; ++k) m = std::max(m, l[P(b, k * C + c, r)]);
        for (int64_t k = 0; k < 256; ++k) s += std::exp(l[P(b, k * C + c, r)] - m);
        want += l[P(b, j[X(b, c, r)] * C + c, r)] - (m + std::log(s));
      }
    CHECK(got[b] == doctest::Approx(want).epsilon(1e-12));
  }
}

// ---- discretized logistic mixture -------------------------------------------------------------------
// One subpixel's params for K components: logits, means, log scales -> (1, 3K, 1, 1)
Tensor mixture_params(const std::vector<double>& logit, const std::vector<double>& mu, const std::vector<double>& log_s) {
  std::vector<double> v = logit;
  v.insert(v.end(), mu.begin(), mu.end());
  v.insert(v.end(), log_s.begin(), log_s.end());
  return Tensor::from_vector(v, {1, (int64_t)v.size(), 1, 1});
}
// All 256 grid values -1 + 2j/255 as a batch (256, 1, 1, 1)
Tensor all_levels(DType dtype = DType::f64) {
  std::vector<double> x(256);
  for (int j = 0; j < 256; ++j) x[j] = -1 + 2 * j / 255.0;
  return Tensor::from_vector(x, {256, 1, 1, 1}).to(dtype);
}
// p(x) of one logistic component as a plain CDF difference over x's bin (edges take the tails),
// taken on the tail side of mu (1 - sigma(t) = sigma(-t)) so that it does not cancel.
double logistic_bin(double x, double mu, double log_s) {
  double s = std::exp(std::max(log_s, -7.0)), hi = (x + 1 / 255.0 - mu) / s, lo = (x - 1 / 255.0 - mu) / s;
  if (x > 0.999) hi = INFINITY;
  if (x < -0.999) lo = -INFINITY;
  return x <= mu ? sigmoid(hi) - sigmoid(lo) : sigmoid(-lo) - sigmoid(-hi);
}

TEST_CASE("logistic-mixture: the 256 probabilities of one subpixel sum to 1, extreme means and scales included") {
  struct Setting {
    const char* what;
    std::vector<double> logit, mu, log_s;
  };
  const double edge = -1 + 3 / 255.0;  // a bin edge
  std::vector<Setting> settings = {
      {"one centred component", {0}, {0}, {-3}},
      {"three components", {0.3, -1, 2}, {-0.5, 0.1, 0.7}, {-2, -4, -1}},
      {"tiny scales (clamped at -7)", {0, 1}, {0.2, -0.6}, {-7, -30}},
      {"mean on a bin edge, tiny scale", {0}, {edge}, {-7}},
      {"means at and beyond the edges", {1, 0, -1, 0}, {-1, 1, -5, 4}, {-5, -5, -2, -1}},
      {"huge scales", {0, 0}, {0.3, -0.9}, {4, 8}},
      {"peaked weights", {30, -30}, {0.1, 0.9}, {-6, -1}},
  };
  for (const Setting& st : settings) {
    CAPTURE(st.what);
    auto p = discretized_logistic_mixture((int64_t)st.mu.size());
    Tensor one = mixture_params(st.logit, st.mu, st.log_s);
    std::vector<double> lp = values(p->log_prob(all_levels(), Var(repeat_batch(one, 256))));
    double total = 0;
    for (double v : lp) {
      REQUIRE(std::isfinite(v));
      total += std::exp(v);
    }
    // float64 keeps exact bin differences down to 1e-10, so it is a distribution far within 1e-5
    CHECK(std::fabs(total - 1) < 1e-9);
    // float32 uses PixelCNN++'s fallback threshold 1e-5: still a distribution to within 1e-4
    std::vector<double> lp32 = values(p->log_prob(all_levels(DType::f32), Var(repeat_batch(one, 256).to(DType::f32))));
    double total32 = 0;
    for (double v : lp32) total32 += std::exp(v);
    CHECK(std::fabs(total32 - 1) < 1e-4);
  }
}

TEST_CASE("logistic-mixture: log_prob equals a direct CDF-difference computation; layout (B, 3K, C, ...)") {
  const int64_t B = 2, C = 3, R = 2, K = 3;  // x (2, 3, 2, 1), params (2, 27, 2, 1)
  // planes [K*C logits, K*C means, K*C log scales]: plane j*C + c is parameter j of channel c.
  // Scales wide enough that every bin holds more than 1e-10 (no mid-bin fallback; tested below).
  Tensor params = concat({rand64({B, K * C, R, 1}, -2, 2, 13), rand64({B, K * C, R, 1}, -0.7, 0.7, 14),
                          rand64({B, K * C, R, 1}, -2.2, -0.5, 15)},
                         1);
  std::vector<double> par = params.to_vector<double>();
  Idx3 P{3 * K * C, R}, X{C, R};
  std::vector<int64_t> j = rand_levels(B * C * R, 16);
  j[0] = 0, j[1] = 255;  // both edge bins
  std::vector<double> x(j.size());
  for (size_t i = 0; i < j.size(); ++i) x[i] = -1 + 2 * j[i] / 255.0;
  auto p = discretized_logistic_mixture(K);
  std::vector<double> got = values(p->log_prob(Tensor::from_vector(x, {B, C, R, 1}), Var(params)));
  for (int64_t b = 0; b < B; ++b) {
    double want = 0;
    for (int64_t c = 0; c < C; ++c)
      for (int64_t r = 0; r < R; ++r) {
        double z = 0, prob = 0;
        for (int64_t k = 0; k < K; ++k) z += std::exp(par[P(b, k * C + c, r)]);
        for (int64_t k = 0; k < K; ++k)
          prob += std::exp(par[P(b, k * C + c, r)]) / z *
                  logistic_bin(x[X(b, c, r)], par[P(b, (K + k) * C + c, r)], par[P(b, (2 * K + k) * C + c, r)]);
        want += std::log(prob);
      }
    CHECK(got[b] == doctest::Approx(want).epsilon(1e-9));
  }
}

TEST_CASE("logistic-mixture: edge bins take the tails, far bins fall back to the density at the centre") {
  auto p = discretized_logistic_mixture(1);
  auto lp1 = [&](double x, double mu, double log_s) {
    return values(p->log_prob(Tensor::from_vector(std::vector<double>{x}, {1, 1, 1, 1}), Var(mixture_params({0}, {mu}, {log_s}))))[0];
  };
  // x = -1 owns (-inf, -1 + 1/255]; x = 1 owns [1 - 1/255, inf); the logistic is symmetric
  const double s = std::exp(-3);
  CHECK(lp1(-1, -0.9, -3) == doctest::Approx(std::log(sigmoid((-1 + 1 / 255.0 + 0.9) / s))).epsilon(1e-12));
  CHECK(lp1(1, 0.9, -3) == doctest::Approx(std::log(sigmoid((-1 + 1 / 255.0 + 0.9) / s))).epsilon(1e-12));
  // far in the tail, where sigma would round to 0 or 1: log sigma(t) = t - softplus(t) stays exact
  const double t = (-1 + 1 / 255.0 - 0.95) / std::exp(-6);  // about -780
  CHECK(lp1(-1, 0.95, -6) == doctest::Approx(t - softplus(t)).epsilon(1e-12));
  CHECK(lp1(1, -0.95, -6) == doctest::Approx(t - softplus(t)).epsilon(1e-12));
  // an interior bin whose probability underflows: log(pdf at the centre * 2/255)
  const double xm = -0.5 + 2 / 255.0, mu = 0.9, ls = -5, m = (xm - mu) / std::exp(ls);
  CHECK(lp1(xm, mu, ls) == doctest::Approx(m - ls - 2 * softplus(m) + std::log(2 / 255.0)).epsilon(1e-12));
  // log scales below -7 count as -7
  CHECK(lp1(0.2, 0.2 + 1.5 / 255, -30) == lp1(0.2, 0.2 + 1.5 / 255, -7));
  CHECK(lp1(0.2, 0.2 + 1.5 / 255, -6) != lp1(0.2, 0.2 + 1.5 / 255, -7));
}

// ---- the RGB-coupled mixture ---------------------------------------------------------------------------
// One pixel's params for K components of the coupled family: (1, 10K, 1, 1), planes [logits | means
// (k*3 + c) | log scales | coefficients (k*3 + pair)], pair 0 = (G, R), 1 = (B, R), 2 = (B, G).
struct RGBParams {
  std::vector<double> logit, mu, log_s, coef;  // K, 3K, 3K, 3K
  Tensor tensor() const {
    std::vector<double> v = logit;
    for (const auto* part : {&mu, &log_s, &coef}) v.insert(v.end(), part->begin(), part->end());
    return Tensor::from_vector(v, {1, (int64_t)v.size(), 1, 1});
  }
};
RGBParams random_rgb(int64_t K, uint64_t seed, double ls_lo = -3.5, double ls_hi = -1) {
  auto vec = [](const Tensor& t) { return t.to_vector<double>(); };
  return {vec(rand64({K}, -1.5, 1.5, seed)), vec(rand64({3 * K}, -0.9, 0.9, seed + 1)),
          vec(rand64({3 * K}, ls_lo, ls_hi, seed + 2)), vec(rand64({3 * K}, -2, 2, seed + 3))};
}
double grid(int64_t j) { return -1 + 2 * j / 255.0; }
// p(r, g, b) for every (g, b) at one red value r: exp(log_prob) of a batch of 65536 colours.
std::vector<double> probs_at_red(const Likelihood& p, const Tensor& one, int64_t r) {
  ag::NoGradGuard no_grad;
  std::vector<double> x(3 * 65536);
  for (int64_t i = 0; i < 65536; ++i) x[3 * i] = grid(r), x[3 * i + 1] = grid(i / 256), x[3 * i + 2] = grid(i % 256);
  std::vector<double> lp = values(p.log_prob(Tensor::from_vector(x, {65536, 3, 1, 1}), Var(repeat_batch(one, 65536))));
  for (double& v : lp) {
    REQUIRE(std::isfinite(v));
    v = std::exp(v);
  }
  return lp;
}

// 2 x 256 calls of log_prob on 65536 colours (about 20 s): skipped in the ordinary runs of test_vae
// (and so in the ISA and sanitizer passes); meson's test 'vae-enumeration' runs it in the release build.
TEST_CASE("logistic-mixture-rgb: one pixel's probabilities sum to 1 over all 256^3 colours (float64)" * doctest::skip()) {
  auto p = discretized_logistic_mixture_rgb(2);
  for (int set = 0; set < 2; ++set) {
    CAPTURE(set);
    // the second set has scales down to the -7 clamp (mass in few bins, the mid-bin fallback used)
    RGBParams prm = set == 1 ? random_rgb(2, 100 + 10 * set, -9, -4) : random_rgb(2, 100 + 10 * set);
    const Tensor one = prm.tensor();
    double total = 0;
    for (int64_t r = 0; r < 256; ++r)
      for (double v : probs_at_red(*p, one, r)) total += v;
    // float64 keeps exact bin differences down to 1e-10 per channel factor (fallback below), and
    // the sum runs over 16.7M terms: 1e-8 is far inside what a wrong coupling or bin would cost
    CHECK(std::fabs(total - 1) < 1e-8);
  }
}

TEST_CASE("logistic-mixture-rgb: R does not depend on G or B, nor G on B (the R -> G -> B order)") {
  auto p = discretized_logistic_mixture_rgb(2);
  RGBParams a = random_rgb(2, 200);
  RGBParams b = a;  // G's and B's means, scales and coefficients changed; R's and the weights kept
  for (int64_t k = 0; k < 2; ++k) {
    for (int64_t c : {1, 2}) b.mu[k * 3 + c] += 0.3, b.log_s[k * 3 + c] -= 0.5;
    for (int64_t q : {0, 1, 2}) b.coef[k * 3 + q] = -b.coef[k * 3 + q] + 0.2;
  }
  RGBParams c = a;  // only B's changed
  for (int64_t k = 0; k < 2; ++k) c.mu[k * 3 + 2] -= 0.4, c.coef[k * 3 + 1] += 1, c.coef[k * 3 + 2] -= 1;
  for (int64_t r : {37, 255}) {  // an interior value and an edge (each costs 3 x 65536 colours)
    CAPTURE(r);
    std::vector<double> pa = probs_at_red(*p, a.tensor(), r), pb = probs_at_red(*p, b.tensor(), r),
                        pc = probs_at_red(*p, c.tensor(), r);
    // the marginal of R, summed over all (G, B), is the plain mixture of the R factors
    double ma = 0, mb = 0, z = 0, direct = 0;
    for (int64_t i = 0; i < 65536; ++i) ma += pa[i], mb += pb[i];
    for (int64_t k = 0; k < 2; ++k) z += std::exp(a.logit[k]);
    for (int64_t k = 0; k < 2; ++k) direct += std::exp(a.logit[k]) / z * logistic_bin(grid(r), a.mu[k * 3], a.log_s[k * 3]);
    CHECK(ma == doctest::Approx(direct).epsilon(1e-9));
    CHECK(mb == doctest::Approx(ma).epsilon(1e-9));
    // the marginal of (R, G), summed over B, does not see B's parameters
    for (int64_t g : {0, 90, 200, 255}) {
      double sa = 0, sc = 0;
      for (int64_t bl = 0; bl < 256; ++bl) sa += pa[g * 256 + bl], sc += pc[g * 256 + bl];
      CAPTURE(g);
      CHECK(sc == doctest::Approx(sa).epsilon(1e-9));
    }
    // while the joint does (the test can fail)
    CHECK(std::fabs(pc[90 * 256 + 100] - pa[90 * 256 + 100]) > 1e-3 * pa[90 * 256 + 100]);
  }
}

TEST_CASE("logistic-mixture-rgb: log_prob equals a direct computation of the coupled mixture, edge colours included") {
  const int64_t K = 2;
  auto p = discretized_logistic_mixture_rgb(K);
  std::vector<std::array<int64_t, 3>> colours = {{0, 255, 17}, {255, 0, 255}, {128, 64, 200}, {3, 3, 3}};
  std::vector<Tensor> xs, ps;
  std::vector<RGBParams> prms;
  for (size_t i = 0; i < colours.size(); ++i) {
    prms.push_back(random_rgb(K, 300 + 10 * i));
    ps.push_back(prms.back().tensor());
    std::vector<double> x = {grid(colours[i][0]), grid(colours[i][1]), grid(colours[i][2])};
    xs.push_back(Tensor::from_vector(x, {1, 3, 1, 1}));
  }
  std::vector<double> got = values(p->log_prob(concat(xs, 0), Var(concat(ps, 0))));
  for (size_t i = 0; i < colours.size(); ++i) {
    const RGBParams& q = prms[i];
    const double r = grid(colours[i][0]), g = grid(colours[i][1]), b = grid(colours[i][2]);
    double z = 0, prob = 0;
    for (int64_t k = 0; k < K; ++k) z += std::exp(q.logit[k]);
    for (int64_t k = 0; k < K; ++k) {
      const double mg = q.mu[k * 3 + 1] + std::tanh(q.coef[k * 3 + 0]) * r;
      const double mb = q.mu[k * 3 + 2] + std::tanh(q.coef[k * 3 + 1]) * r + std::tanh(q.coef[k * 3 + 2]) * g;
      prob += std::exp(q.logit[k]) / z * logistic_bin(r, q.mu[k * 3], q.log_s[k * 3]) *
              logistic_bin(g, mg, q.log_s[k * 3 + 1]) * logistic_bin(b, mb, q.log_s[k * 3 + 2]);
    }
    CAPTURE(i);
    CHECK(got[i] == doctest::Approx(std::log(prob)).epsilon(1e-9));
  }
}

TEST_CASE("logistic-mixture-rgb: sample frequencies of whole colours match exp(log_prob)") {
  // narrow components (scales near one bin) so that the mass sits in a few dozen colours
  auto p = discretized_logistic_mixture_rgb(2);
  RGBParams q = random_rgb(2, 400, -5.5, -5);
  const Tensor one = q.tensor();
  const int64_t n = 40000;
  Generator gen(401);
  std::vector<double> draws = p->sample(repeat_batch(one, n), gen).to_vector<double>();
  std::map<std::array<int64_t, 3>, int64_t> count;
  for (int64_t i = 0; i < n; ++i) {
    std::array<int64_t, 3> c{};
    for (int64_t ch = 0; ch < 3; ++ch) {
      const double v = draws[3 * i + ch], j = std::round((v + 1) * 127.5);
      REQUIRE(std::fabs(grid((int64_t)j) - v) < 1e-12);  // on the 8-bit grid
      c[ch] = (int64_t)j;
    }
    ++count[c];
  }
  std::vector<double> x;
  for (const auto& [c, k] : count)
    for (int64_t ch = 0; ch < 3; ++ch) x.push_back(grid(c[ch]));
  const int64_t m = (int64_t)count.size();
  std::vector<double> lp = values(p->log_prob(Tensor::from_vector(x, {m, 3, 1, 1}), Var(repeat_batch(one, m))));
  double covered = 0;
  int64_t i = 0;
  for (const auto& [c, k] : count) {
    const double q1 = std::exp(lp[i++]), f = double(k) / n;
    covered += q1;
    INFO("colour " << c[0] << "," << c[1] << "," << c[2] << ": frequency " << f << ", probability " << q1);
    CHECK(std::fabs(f - q1) < 5 * std::sqrt(q1 * (1 - q1) / n) + 5.0 / n);
  }
  CHECK(covered > 0.99);  // the colours drawn hold nearly all the mass: nothing likely is never drawn
  CHECK(m < 2000);
}

// ---- gradients --------------------------------------------------------------------------------------
void check_gradient(const Likelihood& p, const Tensor& x, const Tensor& params) {
  auto r = ag::gradcheck([&](const std::vector<Var>& in) { return p.log_prob(x, in[0]); },
                         {Var(params.clone(), true)});
  INFO(p.name() << ": " << r.message);
  CHECK(r.ok);
}

TEST_CASE("likelihoods: float64 gradient checks of log_prob with respect to params, every family") {
  const Shape s = {2, 2, 2, 1};
  Tensor binary = gt(rand64(s, 0, 1, 20), 0.5);
  check_gradient(*bernoulli(), binary, rand64(s, -3, 3, 21));
  check_gradient(*gaussian_fixed(0.8), rand64({2, 3}, -1, 1, 22), rand64({2, 3}, -1, 1, 23));
  // log variances well inside [min, max]: away from the clamp's kinks
  check_gradient(*gaussian_learned(-5, 5), rand64(s, -1, 1, 24), rand64({2, 4, 2, 1}, -2, 2, 25));

  std::vector<int64_t> j = rand_levels(8, 26);
  std::vector<double> x01(8), xpm(8);
  for (int i = 0; i < 8; ++i) x01[i] = j[i] / 255.0, xpm[i] = -1 + 2 * j[i] / 255.0;
  xpm[0] = -1, xpm[7] = 1;  // the edge bins
  check_gradient(*categorical256(), Tensor::from_vector(x01, s), rand64({2, 512, 2, 1}, -2, 2, 27));

  // mixture: logits, means in (-0.8, 0.8), log scales in (-3, -0.5) (above the -7 clamp)
  const int64_t K = 3;
  Tensor mix = concat({rand64({2, K * 2, 2, 1}, -1, 1, 28), rand64({2, K * 2, 2, 1}, -0.8, 0.8, 29),
                       rand64({2, K * 2, 2, 1}, -3, -0.5, 30)},
                      1);
  check_gradient(*discretized_logistic_mixture(K), Tensor::from_vector(xpm, s), mix);
  // coupled: (2, 3, 2, 1) colours (edges included) and 10K planes of params, scales above the clamp
  std::vector<int64_t> jr = rand_levels(12, 31);
  std::vector<double> xr(12);
  for (int i = 0; i < 12; ++i) xr[i] = -1 + 2 * jr[i] / 255.0;
  xr[0] = -1, xr[11] = 1;
  Tensor rgb = concat({rand64({2, K, 2, 1}, -1, 1, 32), rand64({2, 3 * K, 2, 1}, -0.8, 0.8, 33),
                       rand64({2, 3 * K, 2, 1}, -3, -0.5, 34), rand64({2, 3 * K, 2, 1}, -1.5, 1.5, 35)},
                      1);
  check_gradient(*discretized_logistic_mixture_rgb(K), Tensor::from_vector(xr, {2, 3, 2, 1}), rgb);
}

// ---- samples and means ------------------------------------------------------------------------------
TEST_CASE("likelihoods: mean() is each family's closed form, data-shaped") {
  const Shape s = {2, 3};
  std::vector<double> l = rand64(s, -3, 3, 31).to_vector<double>();
  std::vector<double> m = bernoulli()->mean(Tensor::from_vector(l, s)).to_vector<double>();
  for (size_t i = 0; i < l.size(); ++i) CHECK(m[i] == doctest::Approx(sigmoid(l[i])).epsilon(1e-12));
  CHECK(gaussian_fixed(2.0)->mean(Tensor::from_vector(l, s)).to_vector<double>() == l);
  Tensor gl = rand64({2, 6}, -3, 3, 32);
  std::vector<double> glv = gl.to_vector<double>(), gm = gaussian_learned()->mean(gl).to_vector<double>();
  REQUIRE(gm.size() == 6);
  for (int64_t b = 0; b < 2; ++b)
    for (int64_t c = 0; c < 3; ++c) CHECK(gm[b * 3 + c] == glv[b * 6 + c]);  // the mean planes come first

  // categorical: sum_k softmax(l)_k k/255 per channel, channel c's logits at planes k*C + c
  const int64_t C = 2;
  Tensor cat = rand64({1, 256 * C, 1, 1}, -3, 3, 33);
  std::vector<double> cl = cat.to_vector<double>(), cm = categorical256()->mean(cat).to_vector<double>();
  REQUIRE(cm.size() == (size_t)C);
  for (int64_t c = 0; c < C; ++c) {
    double z = 0, e = 0;
    for (int64_t k = 0; k < 256; ++k) z += std::exp(cl[k * C + c]), e += std::exp(cl[k * C + c]) * k / 255.0;
    CHECK(cm[c] == doctest::Approx(e / z).epsilon(1e-12));
  }
  // mixture: sum_k pi_k mu_k clamped to [-1, 1]
  Tensor mix = concat({Tensor::from_vector(std::vector<double>{0.5, -1, 2, 0}, {1, 4, 1, 1}),
                       Tensor::from_vector(std::vector<double>{0.3, 2.5, -0.4, 3}, {1, 4, 1, 1}),
                       Tensor::zeros({1, 4, 1, 1}, DType::f64)},
                      1);  // K = 2, C = 2: channel 0 has means 0.3, -0.4; channel 1 has 2.5, 3
  std::vector<double> mm = discretized_logistic_mixture(2)->mean(mix).to_vector<double>();
  REQUIRE(mm.size() == 2);
  CHECK(mm[0] == doctest::Approx((std::exp(0.5) * 0.3 + std::exp(2.0) * -0.4) / (std::exp(0.5) + std::exp(2.0))).epsilon(1e-12));
  CHECK(mm[1] == 1);
}

// Per element of one example, the mean and standard error over a batch of n draws (n, ...).
struct Moments {
  std::vector<double> mean, se, sd;
};
Moments moments(const Tensor& draws) {
  const int64_t n = draws.size(0), d = draws.numel() / n;
  std::vector<double> v = draws.to_vector<double>();
  Moments m{std::vector<double>(d), std::vector<double>(d), std::vector<double>(d)};
  for (int64_t i = 0; i < d; ++i) {
    double s = 0, s2 = 0;
    for (int64_t b = 0; b < n; ++b) s += v[b * d + i], s2 += v[b * d + i] * v[b * d + i];
    m.mean[i] = s / n;
    m.sd[i] = std::sqrt(std::max(s2 / n - m.mean[i] * m.mean[i], 0.0));
    m.se[i] = m.sd[i] / std::sqrt(double(n)) + 1e-12;
  }
  return m;
}

// The average of n draws matches mean() of the same params within 5 standard errors.
Moments check_sample_mean(const Likelihood& p, const Tensor& one, int64_t n, uint64_t seed) {
  Generator g(seed);
  Tensor draws = p.sample(repeat_batch(one, n), g);
  Tensor mu = p.mean(one);
  Shape ds = one.shape();
  ds[1] /= p.params_per_channel();
  CHECK(mu.shape() == ds);
  ds[0] = n;
  CHECK(draws.shape() == ds);
  Moments m = moments(draws);
  std::vector<double> want = mu.to_vector<double>();
  for (size_t i = 0; i < want.size(); ++i) {
    INFO(p.name() << " element " << i << ": sample mean " << m.mean[i] << ", mean() " << want[i]);
    CHECK(std::fabs(m.mean[i] - want[i]) < 5 * m.se[i]);
  }
  return m;
}

TEST_CASE("likelihoods: the average of many samples matches mean(), and draws lie in the support") {
  const int64_t n = 20000;
  SUBCASE("bernoulli") {
    Tensor one = Tensor::from_vector(std::vector<double>{-2, -0.5, 0.5, 2}, {1, 1, 2, 2});
    check_sample_mean(*bernoulli(), one, n, 40);
    Generator g(41);
    for (double v : bernoulli()->sample(repeat_batch(one, 100), g).to_vector<double>()) CHECK((v == 0 || v == 1));
  }
  SUBCASE("gaussian, fixed sigma") {
    Moments m = check_sample_mean(*gaussian_fixed(0.5), rand64({1, 4}, -1, 1, 42), n, 43);
    for (double sd : m.sd) CHECK(sd == doctest::Approx(0.5).epsilon(0.03));
  }
  SUBCASE("gaussian, learned variance") {
    Tensor one = Tensor::from_vector(std::vector<double>{0.5, -1, std::log(0.25), std::log(4.0)}, {1, 4});
    Moments m = check_sample_mean(*gaussian_learned(), one, n, 44);
    CHECK(m.sd[0] == doctest::Approx(0.5).epsilon(0.03));
    CHECK(m.sd[1] == doctest::Approx(2).epsilon(0.03));
  }
  SUBCASE("categorical256") {
    check_sample_mean(*categorical256(), rand64({1, 256 * 2, 1, 1}, -2, 2, 45), n / 4, 46);  // 256 draws each
  }
  SUBCASE("logistic mixture") {
    Tensor one = concat({rand64({1, 2 * 3, 1, 1}, -1, 1, 47), rand64({1, 2 * 3, 1, 1}, -0.5, 0.5, 48),
                         rand64({1, 2 * 3, 1, 1}, -4, -2.5, 49)},
                        1);
    check_sample_mean(*discretized_logistic_mixture(2), one, n, 50);
  }
}

// Sample frequencies of the 256 values against exp(log_prob): the sampler draws from the very
// distribution that log_prob scores (quantization and edge bins included).
void check_frequencies(const Likelihood& p, const Tensor& one, const Tensor& levels, int64_t n, uint64_t seed) {
  Generator g(seed);
  std::vector<double> draws = p.sample(repeat_batch(one, n), g).to_vector<double>();
  std::vector<double> lv = levels.to_vector<double>(), prob = values(p.log_prob(levels, Var(repeat_batch(one, 256))));
  std::vector<double> count(256, 0);
  for (double v : draws) {
    auto it = std::find_if(lv.begin(), lv.end(), [&](double l) { return std::fabs(l - v) < 1e-9; });
    REQUIRE(it != lv.end());  // every draw is one of the 256 values
    count[it - lv.begin()] += 1;
  }
  for (int j = 0; j < 256; ++j) {
    double q = std::exp(prob[j]), f = count[j] / n;
    INFO(p.name() << " value " << j << ": frequency " << f << ", probability " << q);
    CHECK(std::fabs(f - q) < 5 * std::sqrt(q * (1 - q) / n) + 5.0 / n);
  }
}

TEST_CASE("categorical256 and logistic-mixture: sample frequencies match exp(log_prob), edge bins included") {
  std::vector<double> x01(256);
  for (int j = 0; j < 256; ++j) x01[j] = j / 255.0;
  check_frequencies(*categorical256(), rand64({1, 256, 1, 1}, -1, 1, 60), Tensor::from_vector(x01, {256, 1, 1, 1}), 30000, 61);
  // a wide component near the top edge (x = 1 takes its upper tail) and a narrow one inside
  check_frequencies(*discretized_logistic_mixture(2), mixture_params({0, 0.5}, {0.85, -0.3}, {-2.5, -4}), all_levels(), 100000, 62);
}

// ---- errors ---------------------------------------------------------------------------------------
TEST_CASE("likelihoods: mismatched shapes, out-of-range data and unknown names raise clear errors") {
  Tensor x = Tensor::zeros({2, 1, 4, 4}, DType::f64);
  std::string e = error_message([&] { bernoulli()->log_prob(x, Var(Tensor::zeros({2, 2, 4, 4}, DType::f64))); });
  CHECK(contains(e, "bernoulli"));
  CHECK(contains(e, "[2, 1, 4, 4]"));
  CHECK(contains(e, "[2, 2, 4, 4]"));
  CHECK_THROWS_AS(bernoulli()->log_prob(x, Var(Tensor::zeros({3, 1, 4, 4}, DType::f64))), ShapeError);
  CHECK_THROWS_AS(gaussian_fixed()->log_prob(x, Var(Tensor::zeros({2, 1, 4, 3}, DType::f64))), ShapeError);

  e = error_message([&] { gaussian_learned()->log_prob(x, Var(Tensor::zeros({2, 3, 4, 4}, DType::f64))); });
  CHECK(contains(e, "gaussian-learned"));
  CHECK(contains(e, "[2, 3, 4, 4]"));
  CHECK(contains(e, "[2, 2, 4, 4]"));  // what it should be
  CHECK_THROWS_AS(categorical256()->log_prob(x, Var(Tensor::zeros({2, 255, 4, 4}, DType::f64))), ShapeError);

  Generator g(0);
  e = error_message([&] { discretized_logistic_mixture(5)->sample(Tensor::zeros({2, 14, 1, 1}), g); });
  CHECK(contains(e, "logistic-mixture"));
  CHECK(contains(e, "[2, 14, 1, 1]"));
  CHECK_THROWS_AS(categorical256()->mean(Tensor::zeros({2, 300, 1, 1})), ShapeError);

  // data outside the family's support
  Tensor bad = Tensor::full({1, 1, 1, 1}, 1.5, DType::f64);
  e = error_message([&] { categorical256()->log_prob(bad, Var(Tensor::zeros({1, 256, 1, 1}, DType::f64))); });
  CHECK(contains(e, "categorical256"));
  CHECK(contains(e, "1.5"));
  Tensor bad2 = Tensor::full({1, 1, 1, 1}, 3.0, DType::f64);
  e = error_message([&] { discretized_logistic_mixture(1)->log_prob(bad2, Var(Tensor::zeros({1, 3, 1, 1}, DType::f64))); });
  CHECK(contains(e, "logistic-mixture"));
  CHECK(contains(e, "[-1, 1]"));

  e = error_message([&] { discretized_logistic_mixture_rgb(2)->log_prob(Tensor::zeros({1, 3, 2, 2}, DType::f64), Var(Tensor::zeros({1, 18, 2, 2}, DType::f64))); });
  CHECK(contains(e, "logistic-mixture-rgb"));
  CHECK(contains(e, "[1, 20, 2, 2]"));  // what it should be
  e = error_message([&] { discretized_logistic_mixture_rgb(2)->sample(Tensor::zeros({1, 19, 1, 1}), g); });
  CHECK(contains(e, "19 planes"));

  e = error_message([] { make_likelihood("poisson"); });
  CHECK(contains(e, "poisson"));
  for (const char* name : {"bernoulli", "gaussian", "gaussian-learned", "categorical256", "logistic-mixture"})
    CHECK(contains(e, name));
  CHECK_THROWS_AS(make_likelihood("gaussian", -1.0), ValueError);
  CHECK_THROWS_AS(make_likelihood("logistic-mixture", 1.0, 0), ValueError);
}

TEST_CASE("make_likelihood: each name gives the family of that name and its parameter planes per channel") {
  CHECK(make_likelihood("bernoulli")->params_per_channel() == 1);
  CHECK(make_likelihood("gaussian", 0.3)->params_per_channel() == 1);
  CHECK(make_likelihood("gaussian-learned")->params_per_channel() == 2);
  CHECK(make_likelihood("categorical256")->params_per_channel() == 256);
  CHECK(make_likelihood("logistic-mixture", 1.0, 4)->params_per_channel() == 12);
  CHECK(make_likelihood("logistic-mixture-rgb", 1.0, 4)->param_planes(3) == 40);
  CHECK(make_likelihood("logistic-mixture", 1.0, 4)->param_planes(3) == 36);
  for (const char* name : {"bernoulli", "gaussian", "gaussian-learned", "categorical256", "logistic-mixture",
                           "logistic-mixture-rgb"})
    CHECK(make_likelihood(name)->name() == name);
  // sigma reaches the fixed Gaussian: log N(0; 0, sigma^2) = -log(sigma sqrt(2 pi))
  Var lp = make_likelihood("gaussian", 0.3)->log_prob(Tensor::zeros({1, 1}, DType::f64), Var(Tensor::zeros({1, 1}, DType::f64)));
  CHECK(lp.item() == doctest::Approx(-std::log(0.3 * std::sqrt(2 * std::numbers::pi))));
}

}  // namespace

}  // namespace file_vae_test_likelihood

// test_regularizer.cpp: the Gaussian posterior and the regularizers R(q) of eq. (7). The KL closed
// form against a Monte-Carlo estimate of E_q[log q(z|x) - log p(z)]; KL = 0 iff q = p; float64
// gradient checks of the KL, of the reparameterized sample and of MMD; MMD against a direct double
// loop, near 0 for z from the prior and clearly positive for a shifted q; the free-bits floor; the
// warm-up schedule; construction by name and the errors.
#include <doctest/doctest.h>

#include "tests/test_util.h"

#include <cmath>
#include <string>
#include <vector>

#include "autograd/gradcheck.h"
#include "vae/regularizer.h"

using namespace gv;
using namespace gv::vae;
using ag::Var;

// This file's helpers and tests in a namespace of their own: the unity build (scripts/test.sh)
// compiles several test files as one, and their helpers must not meet.
namespace file_vae_test_regularizer {

namespace {

using gv::test::error_message;
bool contains(const std::string& s, const std::string& part) { return gv::test::has(s, part); }

Var f64(std::initializer_list<double> v, const Shape& s, bool requires_grad = true) {
  return Var(Tensor::from_list(v, s, DType::f64), requires_grad);
}
Var randn(const Shape& s, uint64_t seed, double mean = 0, double std = 1, bool requires_grad = true) {
  Generator g(seed);
  return Var(gv::normal(s, g, mean, std, DType::f64), requires_grad);
}

// The direct formula 0.5 (mu^2 + exp(lv) - 1 - lv) for one element.
double kl_ref(double mu, double lv) { return 0.5 * (mu * mu + std::exp(lv) - 1 - lv); }

// A fixed posterior used by several tests: B = 2, Z = 3.
const std::vector<double> kMu = {0.5, -1.2, 0.0, 2.0, 0.3, -0.7};
const std::vector<double> kLogvar = {0.4, -1.0, 1.5, 0.0, -2.0, 0.8};

}  // namespace

// ---- the Gaussian posterior and its KL -----------------------------------------------------------

TEST_CASE("KL closed form equals a Monte-Carlo estimate of E_q[log q(z|x) - log p(z)]") {
  // z drawn by reparameterize itself, so a wrong scale exp(logvar) instead of exp(logvar/2) fails too.
  const int64_t N = 200000, B = 2, Z = 3;
  Var mu(Tensor::from_vector(kMu, {1, B, Z}).expand({N, B, Z}));
  Var lv(Tensor::from_vector(kLogvar, {1, B, Z}).expand({N, B, Z}));
  Generator g(2017);
  std::vector<double> z = reparameterize(mu, lv, g).z.data().to_vector<double>();  // (N, B, Z)
  const double kPi = 3.14159265358979323846;
  for (int64_t e = 0; e < B * Z; ++e) {
    const double m = kMu[e], l = kLogvar[e];
    // integrand log N(z; m, e^l) - log N(z; 0, 1), summed and squared over the N draws
    double s1 = 0, s2 = 0;
    for (int64_t n = 0; n < N; ++n) {
      double zi = z[n * B * Z + e];
      double logq = -0.5 * std::log(2 * kPi) - 0.5 * l - 0.5 * (zi - m) * (zi - m) / std::exp(l);
      double logp = -0.5 * std::log(2 * kPi) - 0.5 * zi * zi;
      s1 += logq - logp;
      s2 += (logq - logp) * (logq - logp);
    }
    const double mc = s1 / N, sd = std::sqrt(std::max(s2 / N - mc * mc, 0.0)), se = sd / std::sqrt(double(N));
    const double closed = kl_standard_normal(f64({m}, {1}), f64({l}, {1})).item();
    INFO("element ", e, ": closed form ", closed, ", Monte Carlo ", mc, " +- ", se, " (standard error)");
    CHECK(closed == doctest::Approx(kl_ref(m, l)).epsilon(1e-14));
    // 5 standard errors: a false failure has probability ~6e-7 per element
    CHECK(std::fabs(mc - closed) <= 5 * se);
    CHECK(se < 0.01);  // the estimate is informative: the largest sd here is about 2.5
  }
}

TEST_CASE("KL(q || N(0, I)) is zero exactly when mu = 0 and logvar = 0, positive otherwise") {
  const Shape s = {2, 3};
  Var zero(Tensor::zeros(s, DType::f64));
  std::vector<double> k0 = kl_standard_normal(zero, zero).data().to_vector<double>();
  for (double v : k0) CHECK(v == 0.0);
  Generator g(1);
  CHECK(kl()->value(reparameterize(zero, zero, g), g).item() == 0.0);
  // move one element of mu or of logvar by +-0.1: exactly that element's KL turns positive
  for (int which = 0; which < 2; ++which)
    for (double delta : {-0.1, 0.1})
      for (int64_t e = 0; e < 6; ++e) {
        Tensor mu = Tensor::zeros(s, DType::f64), lv = Tensor::zeros(s, DType::f64);
        (which == 0 ? mu : lv).data<double>()[e] = delta;
        std::vector<double> k = kl_standard_normal(Var(mu), Var(lv)).data().to_vector<double>();
        for (int64_t i = 0; i < 6; ++i) {
          INFO((which == 0 ? "mu" : "logvar"), "[", e, "] = ", delta, ", element ", i);
          if (i == e)
            CHECK(k[i] > 0);
          else
            CHECK(k[i] == 0.0);
        }
      }
  // known values: mu = 1 costs 1/2 nat; logvar = log 2 costs (1 - log 2)/2
  CHECK(kl_standard_normal(f64({1}, {1}), f64({0}, {1})).item() == doctest::Approx(0.5).epsilon(1e-15));
  CHECK(kl_standard_normal(f64({0}, {1}), f64({std::log(2.0)}, {1})).item() ==
        doctest::Approx(0.5 * (1 - std::log(2.0))).epsilon(1e-14));
}

TEST_CASE("kl regularizer sums over the latent dimensions and averages over the batch") {
  Var mu(Tensor::from_vector(kMu, {2, 3})), lv(Tensor::from_vector(kLogvar, {2, 3}));
  Generator g(3);
  EncoderPosterior q = reparameterize(mu, lv, g);
  double expect = 0;
  for (int e = 0; e < 6; ++e) expect += kl_ref(kMu[e], kLogvar[e]);
  expect /= 2;  // B = 2
  Var r = kl()->value(q, g);
  CHECK(r.dim() == 0);
  CHECK(r.item() == doctest::Approx(expect).epsilon(1e-14));
  CHECK(kl()->name() == "kl");
}

TEST_CASE("gradient checks in float64: KL, the reparameterized sample, MMD") {
  SUBCASE("kl_standard_normal w.r.t. mu and logvar") {
    Var mu = randn({3, 4}, 11), lv = randn({3, 4}, 12, 0, 0.7);
    auto r = ag::gradcheck([](const std::vector<Var>& in) { return kl_standard_normal(in[0], in[1]); }, {mu, lv});
    INFO(r.message);
    CHECK(r.ok);
  }
  SUBCASE("kl regularizer (a scalar) w.r.t. mu and logvar") {
    Var mu = randn({3, 4}, 13), lv = randn({3, 4}, 14, 0, 0.7);
    auto r = ag::gradcheck(
        [](const std::vector<Var>& in) {
          Generator g(0);
          return kl()->value(EncoderPosterior{in[0], in[1], in[0]}, g);
        },
        {mu, lv});
    INFO(r.message);
    CHECK(r.ok);
  }
  SUBCASE("z = mu + exp(logvar/2) eps w.r.t. mu and logvar, eps fixed by reseeding") {
    Var mu = randn({3, 4}, 15), lv = randn({3, 4}, 16, 0, 0.7);
    auto r = ag::gradcheck(
        [](const std::vector<Var>& in) {
          Generator g(99);  // the same eps in every evaluation
          return reparameterize(in[0], in[1], g).z;
        },
        {mu, lv});
    INFO(r.message);
    CHECK(r.ok);
    // and the gradient is the right one, not just a consistent one: dz/dmu = 1, dz/dlogvar = (z - mu)/2
    Generator g(99);
    EncoderPosterior q = reparameterize(mu, lv, g);
    ag::sum(q.z).backward();
    std::vector<double> gm = mu.grad().to_vector<double>(), gl = lv.grad().to_vector<double>();
    std::vector<double> z = q.z.data().to_vector<double>(), m = mu.data().to_vector<double>();
    for (size_t i = 0; i < gm.size(); ++i) {
      CHECK(gm[i] == 1.0);
      CHECK(gl[i] == doctest::Approx(0.5 * (z[i] - m[i])).epsilon(1e-12));
    }
  }
  SUBCASE("MMD w.r.t. z, prior draws fixed by reseeding") {
    Var z = randn({6, 3}, 17, 0.4, 1.3);
    Var none(Tensor::zeros({6, 3}, DType::f64));
    for (double sigma : {0.0, 0.8}) {
      auto r = ag::gradcheck(
          [&](const std::vector<Var>& in) {
            Generator g(5);
            return mmd(sigma)->value(EncoderPosterior{none, none, in[0]}, g);
          },
          {z});
      INFO("sigma ", sigma, ": ", r.message);
      CHECK(r.ok);
    }
  }
}

// ---- MMD ---------------------------------------------------------------------------------------

TEST_CASE("MMD equals the unbiased estimate computed by a direct double loop") {
  const int64_t n = 7, Z = 3;
  Var z = randn({n, Z}, 21, 0.3, 1.1, false);
  Var none(Tensor::zeros({n, Z}, DType::f64));
  for (double sigma : {0.0, 0.5, 2.0}) {
    Generator g(77);
    double got = mmd(sigma)->value(EncoderPosterior{none, none, z}, g).item();
    // the prior draws: one normal((n, Z)) call from the generator, in z's dtype
    Generator g2(77);
    std::vector<double> y = gv::normal({n, Z}, g2, 0, 1, DType::f64).to_vector<double>();
    std::vector<double> x = z.data().to_vector<double>();
    const double two_s2 = sigma > 0 ? 2 * sigma * sigma : double(Z);
    auto k = [&](const std::vector<double>& a, int64_t i, const std::vector<double>& b, int64_t j) {
      double d2 = 0;
      for (int64_t c = 0; c < Z; ++c) d2 += (a[i * Z + c] - b[j * Z + c]) * (a[i * Z + c] - b[j * Z + c]);
      return std::exp(-d2 / two_s2);
    };
    double kxx = 0, kyy = 0, kxy = 0;
    for (int64_t i = 0; i < n; ++i)
      for (int64_t j = 0; j < n; ++j) {
        if (i != j) kxx += k(x, i, x, j), kyy += k(y, i, y, j);
        kxy += k(x, i, y, j);
      }
    const double ref = kxx / (n * (n - 1)) + kyy / (n * (n - 1)) - 2 * kxy / (n * n);
    INFO("sigma ", sigma);
    CHECK(got == doctest::Approx(ref).epsilon(1e-12));
  }
}

TEST_CASE("MMD is near zero for z from the prior and clearly positive for a shifted q") {
  // n = 200, Z = 4, 2 sigma^2 = Z = 4. The population MMD^2 of q = N(1.5, I) against N(0, I) is
  // 2 (1/4) - 2 (1/4) exp(-4 * 1.5^2 / 8) = 0.338 (Gaussian integrals of the kernel), of N(0, I)
  // against itself 0. Over 300 repetitions the estimate's standard deviation was 0.0023 for the
  // prior and 0.022 for the shifted q: the bounds below are ~9 and 5 standard deviations wide.
  const int64_t n = 200, Z = 4;
  Var none(Tensor::zeros({n, Z}, DType::f64));
  for (uint64_t seed : {1u, 2u, 3u}) {
    Generator g(seed * 1000);
    Var from_prior = randn({n, Z}, seed, 0, 1, false);
    Var shifted = randn({n, Z}, seed, 1.5, 1, false);
    double m0 = mmd()->value(EncoderPosterior{none, none, from_prior}, g).item();
    double m1 = mmd()->value(EncoderPosterior{none, none, shifted}, g).item();
    INFO("seed ", seed, ": MMD^2 from the prior ", m0, ", shifted ", m1);
    CHECK(std::fabs(m0) < 0.02);
    CHECK(m1 > 0.2);
    CHECK(std::fabs(m1 - 0.338) < 0.11);
  }
  CHECK(mmd()->name() == "mmd");
}

// ---- free bits, none, the warm-up --------------------------------------------------------------

TEST_CASE("free bits: sum_j max(lambda, mean over the batch of KL_j), no gradient below the floor") {
  // B = 2, Z = 3: the batch-mean KL per dimension is 0.5 (mu = +-1), 0.005 (mu = +-0.1), 2 (mu = +-2)
  Var mu = f64({1, 0.1, 2, -1, -0.1, -2}, {2, 3}), lv = f64({0, 0, 0, 0, 0, 0}, {2, 3});
  Generator g(0);
  EncoderPosterior q{mu, lv, mu};
  const double lambda = 0.25;
  Var r = kl_free_bits(lambda)->value(q, g);
  CHECK(r.item() == doctest::Approx(0.5 + lambda + 2.0).epsilon(1e-14));
  r.backward();
  // dR/dmu_bj = mu_bj / B above the floor, 0 below it (dimension 1 sits on the floor)
  std::vector<double> gm = mu.grad().to_vector<double>();
  std::vector<double> expect = {0.5, 0, 1, -0.5, 0, -1};
  for (size_t i = 0; i < 6; ++i) CHECK(gm[i] == doctest::Approx(expect[i]).epsilon(1e-14));
  // lambda = 0 is the plain KL; lambda above every dimension's KL is the constant Z lambda
  CHECK(kl_free_bits(0)->value(q, g).item() == doctest::Approx(kl()->value(q, g).item()).epsilon(1e-14));
  CHECK(kl_free_bits(3)->value(q, g).item() == doctest::Approx(9.0).epsilon(1e-14));
  CHECK(kl_free_bits(1)->name() == "free-bits");
}

TEST_CASE("no regularizer: a zero scalar Var in the posterior's dtype") {
  Var mu = randn({4, 2}, 1), lv = randn({4, 2}, 2);
  Generator g(0);
  Var r = no_regularizer()->value(reparameterize(mu, lv, g), g);
  CHECK(r.defined());
  CHECK(r.dim() == 0);
  CHECK(r.dtype() == DType::f64);
  CHECK(r.item() == 0.0);
  CHECK(no_regularizer()->name() == "none");
}

TEST_CASE("regularizer weight: linear warm-up from 0 to the weight") {
  CHECK(regularizer_weight(2.0, 100, 0) == 0.0);
  CHECK(regularizer_weight(2.0, 100, 25) == doctest::Approx(0.5));
  CHECK(regularizer_weight(2.0, 100, 50) == doctest::Approx(1.0));
  CHECK(regularizer_weight(2.0, 100, 100) == 2.0);
  CHECK(regularizer_weight(2.0, 100, 1000) == 2.0);
  CHECK(regularizer_weight(0.5, 0, 0) == 0.5);   // no warm-up
  CHECK(regularizer_weight(0.5, -3, 7) == 0.5);
  CHECK(contains(error_message([] { regularizer_weight(1, 10, -1); }), "step must be >= 0"));
}

TEST_CASE("make_regularizer by name, and the errors") {
  CHECK(make_regularizer("none")->name() == "none");
  CHECK(make_regularizer("kl")->name() == "kl");
  CHECK(make_regularizer("free-bits", 0.5)->name() == "free-bits");
  CHECK(make_regularizer("mmd", 1.0)->name() == "mmd");
  std::string msg = error_message([] { make_regularizer("wasserstein"); });
  INFO(msg);
  CHECK(contains(msg, "'wasserstein'"));
  for (const char* n : {"none", "kl", "free-bits", "mmd"}) CHECK(contains(msg, n));
  CHECK(contains(error_message([] { kl_free_bits(-1); }), "lambda"));
  // MMD's unbiased estimate needs two samples
  Var one = randn({1, 3}, 1);
  Generator g(0);
  CHECK(contains(error_message([&] { mmd()->value(EncoderPosterior{one, one, one}, g); }), "at least 2"));
  // shapes
  Var a = randn({2, 3}, 1), b = randn({3, 2}, 2);
  CHECK(contains(error_message([&] { reparameterize(a, b, g); }), "differ in shape"));
  CHECK(contains(error_message([&] { kl()->value(EncoderPosterior{a, b, a}, g); }), "(B, Z)"));
}

}  // namespace file_vae_test_regularizer

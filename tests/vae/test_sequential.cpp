// test_sequential.cpp: the sequential VAE and infusion training (vae/sequential.h): gradients in
// float64, the gate's extremes, separate weights per step, the detached chain, infusion's sampler
// without data, and Proposition 5 against a closed form.
#include <doctest/doctest.h>

#include <cmath>

#include "autograd/gradcheck.h"
#include "engine/ops.h"
#include "nn/optim.h"
#include "nn/train_step.h"
#include "vae/sequential.h"

using namespace gv;
using namespace gv::vae;
using ag::Var;

// This file's helpers and tests in a namespace of their own: the unity build (scripts/test.sh)
// compiles several test files as one, and their helpers must not meet.
namespace file_vae_test_sequential {

namespace {

SequentialConfig tiny(const std::string& kind = "sequential", const std::string& gate = "scalar") {
  SequentialConfig c;
  c.kind = kind;
  c.gate = gate;
  c.data_shape = {1, 4, 4};
  c.steps = 2;
  c.latent = 2;
  c.channels1 = 2;
  c.channels2 = 3;
  return c;
}

Tensor images(int64_t B, uint64_t seed, DType dt = DType::f64) {
  Generator g(seed);
  return uniform({B, 1, 4, 4}, g, 0, 1, dt);
}

Var param(SequentialVAE& m, const std::string& name) {
  for (auto& [n, v] : m.named_parameters())
    if (n == name) return v;
  FAIL("no parameter ", name);
  return {};
}

void fill(const Var& v, double value) {
  Tensor w = v.data();  // a handle on the parameter's storage
  w.fill_(value);
}

bool same_bits(const Tensor& a, const Tensor& b) {
  if (a.shape() != b.shape()) return false;
  Tensor x = a.contiguous(), y = b.contiguous();
  for (int64_t i = 0; i < x.numel(); ++i)
    if (x.data<double>()[i] != y.data<double>()[i]) return false;
  return true;
}

}  // namespace

TEST_CASE("gradient check through a 2-step sequential VAE and infusion (float64)") {
  struct Case {
    std::string kind, gate;
    bool detach, skips;
  };
  // every gate, both settings of detach and of the skip, and infusion, in three cases (gradient
  // checks are the slow part of this suite under the sanitizers)
  for (const Case& cs : {Case{"sequential", "scalar", true, true}, Case{"sequential", "map", false, true},
                         Case{"infusion", "scalar", true, false}}) {
    SequentialConfig c = tiny(cs.kind, cs.gate);
    c.detach_prev = cs.detach;
    c.skips = cs.skips;
    Generator gi(5);
    SequentialVAE m(c, gi);
    m.to(DType::f64);
    Tensor x = images(3, 6);
    m.set_data_statistics(x);
    auto p = gaussian_fixed(0.3);
    // With x_(t-1) detached, the training gradient is by design not the gradient of the summed
    // loss (a change in step 0 moves step 1's input, which backward ignores). What it is: each
    // step's term differentiated with respect to that step's own weights, the earlier steps'
    // output held fixed. So check step t's term against step t's parameters; without detach,
    // the whole loss against every parameter.
    for (int64_t t = cs.detach ? 0 : -1; t < (cs.detach ? 2 : 0); ++t) {
      auto f = [&](const std::vector<Var>&) {
        Generator g(7);  // the same eps and infusion masks in every evaluation
        SequentialTerms terms = sequential_objective(m, x, *p, *kl(), 0.7, g);
        if (t < 0) return terms.loss;
        const auto& s = terms.steps[size_t(t)];
        return s.regularizer.defined() ? -(s.reconstruction - s.regularizer * 0.7) : -s.reconstruction;
      };
      std::vector<Var> inputs = t < 0 ? m.parameters() : m.step(t).parameters();
      auto res = ag::gradcheck(f, inputs);
      INFO(cs.kind, " gate ", cs.gate, " detach ", cs.detach, " step ", t, ": ", res.message);
      CHECK(res.ok);
    }
  }
}

TEST_CASE("the gate at its extremes gives exactly the previous output or exactly the new one") {
  for (const std::string gate : {"scalar", "map"}) {
    Generator gi(11);
    SequentialVAE m(tiny("sequential", gate), gi);
    m.to(DType::f64);
    Tensor x = images(2, 12);
    ag::NoGradGuard ng;
    Var z0(normal({2, 2}, gi, 0, 1, DType::f64)), z1(normal({2, 2}, gi, 0, 1, DType::f64));
    Var prev = m.step(0).decode(z0, Var()).x;
    auto set_logit = [&](double v) {
      if (gate == "scalar") {
        fill(param(m, "step1.gate"), v);
      } else {  // the map's logit is bias + weight * u: weight 0 makes it the bias everywhere
        fill(param(m, "step1.gate_map.weight"), 0);
        fill(param(m, "step1.gate_map.bias"), v);
      }
    };
    set_logit(-1000);  // r = 0: the previous output, bit for bit
    SequentialStep::Out closed = m.step(1).decode(z1, prev);
    CHECK(same_bits(closed.x.data(), prev.data()));
    set_logit(1000);  // r = 1: the new image x^_1, bit for bit
    SequentialStep::Out open = m.step(1).decode(z1, prev);
    CHECK(same_bits(open.x.data(), open.proposal.data()));
    CHECK(same_bits(open.proposal.data(), closed.proposal.data()));  // x^_1 does not read the gate
    CHECK_FALSE(same_bits(open.x.data(), prev.data()));
  }
}

TEST_CASE("each step has its own weights: changing step 1 leaves step 0's output unchanged") {
  Generator gi(21);
  SequentialVAE m(tiny(), gi);
  m.to(DType::f64);
  Tensor x = images(3, 22);
  auto run = [&] {
    Generator g(23);
    return reconstruction_chain(m, x, g);
  };
  std::vector<Tensor> before = run();
  for (auto& [n, v] : m.named_parameters())
    if (n.rfind("step1.", 0) == 0) {
      Tensor w = v.data();  // a handle on the parameter's storage
      w.copy_(v.data() + 0.25);
    }
  std::vector<Tensor> after = run();
  CHECK(same_bits(before[0], after[0]));
  CHECK_FALSE(same_bits(before[1], after[1]));
  // and no parameter is shared between steps
  int64_t n0 = 0, n1 = 0;
  for (auto& [n, v] : m.named_parameters()) (n.rfind("step0.", 0) == 0 ? n0 : n1) += v.numel();
  CHECK(n0 + n1 == m.parameter_count());
  CHECK(n1 > n0);  // step 1 also has the down path of x_0 and the gate
}

TEST_CASE("a detached x_(t-1) keeps step 1's loss from reaching step 0; detach_prev = false lets it") {
  for (bool detach : {true, false}) {
    SequentialConfig c = tiny();
    c.detach_prev = detach;
    Generator gi(31);
    SequentialVAE m(c, gi);
    m.to(DType::f64);
    Tensor x = images(3, 32);
    Generator g(33);
    SequentialTerms t = sequential_objective(m, x, *gaussian_fixed(0.3), *kl(), 1.0, g);
    m.zero_grad();
    (-t.steps[1].reconstruction).backward();
    double g0 = 0;
    for (auto& [n, v] : m.named_parameters())
      if (n.rfind("step0.", 0) == 0 && v.grad().defined()) g0 += gv::sum(gv::abs(v.grad())).item();
    INFO("detach ", detach);
    if (detach) CHECK(g0 == 0);
    else CHECK(g0 > 0);
  }
}

TEST_CASE("the objective is the sum over steps of the per-step objectives") {
  Generator gi(41);
  SequentialVAE m(tiny(), gi);
  m.to(DType::f64);
  Tensor x = images(4, 42);
  Generator g(43);
  const double w = 0.6;
  SequentialTerms t = sequential_objective(m, x, *gaussian_fixed(0.3), *kl(), w, g);
  REQUIRE(t.steps.size() == 2);
  double sum = 0;
  for (const auto& s : t.steps) sum += -(s.reconstruction.item() - w * s.regularizer.item());
  CHECK(t.loss.item() == doctest::Approx(sum).epsilon(1e-14));  // float64, the same two additions
  CHECK(t.steps[0].gate_mean == 0);
  CHECK(t.steps[1].gate_mean == doctest::Approx(0.5).epsilon(1e-15));  // sigmoid(0), the initial scalar gate
  // infusion: (t+1)/T weights, no regularizer
  Generator gj(44);
  SequentialVAE inf(tiny("infusion"), gj);
  inf.to(DType::f64);
  inf.set_data_statistics(x);
  Generator g2(45);
  SequentialTerms ti = sequential_objective(inf, x, *gaussian_fixed(0.3), *kl(), w, g2);
  double wsum = -(0.5 * ti.steps[0].reconstruction.item() + 1.0 * ti.steps[1].reconstruction.item());
  CHECK(ti.loss.item() == doctest::Approx(wsum).epsilon(1e-14));
  CHECK_FALSE(ti.steps[0].regularizer.defined());
}

TEST_CASE("infusion: alpha = 1 gives the data, and the sampler (alpha = 0) never reads the data") {
  Generator g(51);
  Tensor x = images(3, 52), prev = images(3, 53);
  CHECK(same_bits(SequentialVAE::infuse(x, prev, 1.0, g), x));
  CHECK(same_bits(SequentialVAE::infuse(Tensor(), prev, 0.0, g), prev));  // x undefined: never read
  Tensor mix = SequentialVAE::infuse(x, prev, 0.5, g);
  int64_t from_x = 0;
  for (int64_t i = 0; i < mix.numel(); ++i) {
    const double v = mix.data<double>()[i];
    CHECK((v == x.data<double>()[i] || v == prev.data<double>()[i]));
    from_x += v == x.data<double>()[i];
  }
  CHECK(from_x > 0);
  CHECK(from_x < mix.numel());

  // A model whose alpha is 0 at every step: the training chain run on NaN images is the sampler.
  SequentialConfig c = tiny("infusion");
  c.alpha0 = 0;
  c.alpha_step = 0;
  Generator gi(54);
  SequentialVAE m(c, gi);
  m.to(DType::f64);
  m.set_data_statistics(x);
  Tensor nan = Tensor::full({3, 1, 4, 4}, std::nan(""), DType::f64);
  Generator ga(55), gb(55);
  std::vector<Tensor> chain = reconstruction_chain(m, nan, ga);
  std::vector<Tensor> samples = sample_chain(m, 3, gb);
  REQUIRE(chain.size() == samples.size());
  for (size_t t = 0; t < chain.size(); ++t) {
    CHECK_FALSE(first_non_finite(chain[t]).has_value());
    CHECK(same_bits(chain[t], samples[t]));
  }
  // the starting noise stays in [0, 1]
  Tensor noise = m.infusion_noise(50, ga);
  CHECK(gv::max(noise).item() <= 1.0);
  CHECK(-gv::max(-noise).item() >= 0.0);
}

TEST_CASE("Proposition 5 on linear-Gaussian encoders: the per-step posterior variance matches its closed form") {
  // x ~ N(0, I_2); step t encodes q_t(z_t|x) = N(a_t . x, s_t^2). The posterior q(x | z(0..t)) is
  // then Gaussian with covariance P_t = (I + sum_{s<=t} a_s a_s^T / s_s^2)^-1 whatever z is, so
  // E_z Var = trace(P_t), which can only shrink as rows are added (Proposition 5, exactly).
  const int64_t N = 20000;
  Generator g(61);
  Tensor x = normal({N, 2}, g, 0, 1, DType::f64);
  const double a[3][2] = {{1, 0}, {0, 2}, {1, 1}}, s[3] = {1, 1, 0.5};
  std::vector<EncodedData> steps;
  for (int t = 0; t < 3; ++t) {
    Tensor mu = Tensor::empty({N, 1}, DType::f64), lv = Tensor::full({N, 1}, std::log(s[t] * s[t]), DType::f64);
    for (int64_t i = 0; i < N; ++i)
      mu.data<double>()[i] = a[t][0] * x.data<double>()[2 * i] + a[t][1] * x.data<double>()[2 * i + 1];
    steps.push_back({mu, lv});
  }
  // closed form: precision 2x2, trace of its inverse
  const double exact[3] = {1.0 / 2 + 1.0, 1.0 / 2 + 1.0 / 5, 15.0 / 38};
  std::vector<StepPosterior> est = step_posterior_variance(steps, x, 200, g);
  REQUIRE(est.size() == 3);
  for (int t = 0; t < 3; ++t) {
    INFO("step ", t, ": estimate ", est[t].variance, " +- ", est[t].variance_se, ", exact ", exact[t], ", ESS ",
         est[t].ess);
    // The data set is 20000 draws, not N(0, I) itself: its own variance per axis is off by about
    // sqrt(2 / N) = 1% (measured: 1.1% at step 0), and with ESS in the thousands the estimator's
    // own error is smaller (standard errors ~ 0.1%). 3% covers that; a wrong variance formula or
    // a mismatched concatenation of steps is off by 20% or more.
    CHECK(std::abs(est[t].variance - exact[t]) < 0.03 * exact[t]);
    CHECK(est[t].ess > 1000);
    if (t > 0) CHECK(est[t].variance < est[t - 1].variance);
  }
}

TEST_CASE("sequential VAE: the chains' shapes, and a few training steps lower the loss") {
  Generator gi(71);
  SequentialConfig c = tiny();
  c.steps = 3;
  SequentialVAE m(c, gi);
  Tensor x = images(8, 72, DType::f32);
  Generator g(73);
  std::vector<Tensor> s = sample_chain(m, 5, g);
  REQUIRE(s.size() == 3);
  for (const Tensor& t : s) CHECK(t.shape() == Shape{5, 1, 4, 4});
  std::vector<Tensor> r = reconstruction_chain(m, x, g, true);
  REQUIRE(r.size() == 3);
  CHECK(m.is_training());  // the chains restore the mode
  nn::Adam opt(m.named_parameters(), 1e-2);
  auto p = gaussian_fixed(0.3);
  double first = 0, last = 0;
  for (int i = 0; i < 60; ++i) {
    auto res = nn::train_step(opt, [&] { return sequential_objective(m, x, *p, *kl(), 1.0, g).loss; });
    if (i == 0) first = res.loss;
    last = res.loss;
  }
  CHECK(last < first);
}

TEST_CASE("sequential VAE: bad configurations and inputs are refused with the value named") {
  Generator g(81);
  auto bad = [&](auto edit) {
    SequentialConfig c = tiny();
    edit(c);
    SequentialVAE m(c, g);
  };
  CHECK_THROWS_AS(bad([](SequentialConfig& c) { c.kind = "ladder"; }), ValueError);
  CHECK_THROWS_WITH_AS(bad([](SequentialConfig& c) { c.gate = "soft"; }), doctest::Contains("scalar, map"),
                       ValueError);
  CHECK_THROWS_WITH_AS(bad([](SequentialConfig& c) { c.data_shape = {1, 6, 6}; }), doctest::Contains("6x6"),
                       ShapeError);
  CHECK_THROWS_AS(bad([](SequentialConfig& c) { c.steps = 0; }), ValueError);
  CHECK_THROWS_AS(bad([](SequentialConfig& c) { c.alpha0 = 1.5; }), ValueError);
  SequentialVAE m(tiny(), g);
  CHECK_THROWS_WITH_AS(sequential_objective(m, Tensor::zeros({2, 1, 8, 8}), *gaussian_fixed(), *kl(), 1, g),
                       doctest::Contains("(B, 1, 4, 4)"), ShapeError);
  CHECK_THROWS_WITH_AS(sequential_objective(m, Tensor::zeros({2, 1, 4, 4}), *gaussian_learned(), *kl(), 1, g),
                       doctest::Contains("gaussian"), ValueError);
  CHECK_THROWS_AS(m.step(2), IndexError);
  SequentialVAE inf(tiny("infusion"), g);
  CHECK_THROWS_WITH_AS(encode_steps(inf, Tensor::zeros({2, 1, 4, 4}), 2), doctest::Contains("infusion"),
                       ValueError);
  CHECK(kl_warmup_weight(0) == 0);
  CHECK(kl_warmup_weight(10000) == doctest::Approx(1 - std::exp(-1.0)).epsilon(1e-15));
}

TEST_CASE("laplacian_variance: zero for flat images, lower after a blur, refuses tiny images") {
  CHECK(laplacian_variance(Tensor::full({2, 3, 5, 5}, 0.4, DType::f64)) == 0);
  // a checkerboard: the Laplacian is +-4 at every interior pixel, variance 16 (values 0 and 1)
  Tensor board = Tensor::empty({1, 1, 6, 6}, DType::f64);
  for (int64_t i = 0; i < 36; ++i) board.data<double>()[i] = double(((i / 6) + (i % 6)) % 2);
  CHECK(laplacian_variance(board) == doctest::Approx(16).epsilon(1e-12));
  // a 3x3 box blur of random images lowers it
  Tensor x = images(4, 91);
  Tensor blurred = Tensor::empty({4, 1, 4, 4}, DType::f64);
  for (int64_t n = 0; n < 4; ++n)
    for (int64_t i = 0; i < 4; ++i)
      for (int64_t j = 0; j < 4; ++j) {
        double s = 0, k = 0;
        for (int64_t di = -1; di <= 1; ++di)
          for (int64_t dj = -1; dj <= 1; ++dj)
            if (i + di >= 0 && i + di < 4 && j + dj >= 0 && j + dj < 4) s += x.data<double>()[n * 16 + (i + di) * 4 + j + dj], ++k;
        blurred.data<double>()[n * 16 + i * 4 + j] = s / k;
      }
  CHECK(laplacian_variance(blurred) < 0.5 * laplacian_variance(x));
  CHECK_THROWS_AS(laplacian_variance(Tensor::zeros({1, 1, 2, 5})), ShapeError);
}

TEST_CASE("infusion's noise statistics: the per-pixel mean and standard deviation of the images") {
  Generator gi(95);
  SequentialVAE m(tiny("infusion"), gi);
  m.to(DType::f64);
  Tensor x = images(2500, 96);  // more than one block of 1024
  m.set_data_statistics(x);
  const Tensor mean = gv::mean(x, {0}), sd = gv::sqrt(gv::mean(gv::square(x - mean), {0}));
  for (const auto& [name, t] : m.named_buffers()) {
    const Tensor& want = name == "data_mean" ? mean : sd;
    // E[x^2] - m^2 against E[(x - m)^2], both in float64 over values in [0, 1]: they agree to
    // rounding, ~1e-16 per term summed over 2500 terms; 1e-12 is ample and far below any error
    CHECK(gv::max(gv::abs(t - want)).item() < 1e-12);
  }
  CHECK(m.named_buffers().size() == 2);
}

}  // namespace file_vae_test_sequential

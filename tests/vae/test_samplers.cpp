// test_samplers.cpp: ancestral sampling z ~ p(z), x ~ p(x|z) and the Markov chain of Proposition 2,
// z ~ q(z|x), x ~ p(x|z): shapes, the exact draws for a seed (and different ones for another seed),
// which chain states are kept, samples in each likelihood's support, and the errors.
#include <doctest/doctest.h>

#include "tests/test_util.h"

#include <cmath>
#include <string>
#include <vector>

#include "vae/samplers.h"
#include "tests/vae/vae_test_util.h"

using namespace gv;
using namespace gv::vae;
using ag::Var;

// This file's helpers and tests in a namespace of their own: the unity build (scripts/test.sh)
// compiles several test files as one, and their helpers must not meet.
namespace file_vae_test_samplers {

namespace {

using gv::test::error_message;
bool contains(const std::string& s, const std::string& part) { return gv::test::has(s, part); }

VAE tiny_mlp(int64_t k, uint64_t seed, Shape data_shape = {1, 4, 4}, int64_t latent = 3) {
  return gv::test::tiny_vae({.data_shape = data_shape, .latent = latent, .p = gv::test::family_with_k(k), .seed = seed, .dtype = DType::f64});
}

bool equal(const Tensor& a, const Tensor& b) {
  return a.shape() == b.shape() && gv::max(gv::abs(a - b)).item() == 0.0;
}

// Every value of x lies on the grid lo + j * step, j = 0..levels-1.
bool on_grid(const Tensor& x, double lo, double step, int64_t levels) {
  for (double v : x.to_vector<double>()) {
    double j = (v - lo) / step;
    if (std::fabs(j - std::round(j)) > 1e-9 || j < -1e-9 || j > double(levels - 1) + 1e-9) return false;
  }
  return true;
}

Tensor binary(const Shape& s, uint64_t seed) {
  Generator g(seed);
  return gv::bernoulli(Tensor::full(s, 0.5, DType::f64), g);
}

}  // namespace

// ---- ancestral sampling --------------------------------------------------------------------------

TEST_CASE("ancestral sampling: shapes, z ~ N(0, I) from the generator, x in {0, 1} for Bernoulli") {
  VAE m = tiny_mlp(1, 1);
  auto p = bernoulli();
  Generator g(5);
  Samples s = sample_ancestral(m, 6, g);
  CHECK(s.x.shape() == Shape{6, 1, 4, 4});
  CHECK(s.mean.shape() == Shape{6, 1, 4, 4});
  CHECK(s.z.shape() == Shape{6, 3});
  CHECK(s.x.dtype() == DType::f64);
  CHECK(ag::grad_enabled());  // the no-grad guard is released
  // z is the generator's first normal draw; the mean is the family's mean of decode(z)
  Generator g2(5);
  CHECK(equal(s.z, gv::normal({6, 3}, g2, 0, 1, DType::f64)));
  CHECK(equal(s.mean, p->mean(m.factorized().params(Var(s.z)).data())));
  CHECK(on_grid(s.x, 0, 1, 2));
  for (double v : s.mean.to_vector<double>()) CHECK((v > 0 && v < 1));
  // same seed, same samples; another seed, other samples
  Generator g3(5), g4(6);
  Samples again = sample_ancestral(m, 6, g3), other = sample_ancestral(m, 6, g4);
  CHECK(equal(again.x, s.x));
  CHECK(equal(again.z, s.z));
  CHECK_FALSE(equal(other.z, s.z));
  // use_mean: x is the mean
  Generator g5(5);
  Samples means = sample_ancestral(m, 6, g5, true);
  CHECK(equal(means.x, s.mean));
}

TEST_CASE("ancestral samples lie in each likelihood's support") {
  SUBCASE("categorical256: values j/255") {
    VAE m = tiny_mlp(256, 2);
    Generator g(1);
    Samples s = sample_ancestral(m, 4, g);
    CHECK(s.x.shape() == Shape{4, 1, 4, 4});
    CHECK(on_grid(s.x, 0, 1.0 / 255, 256));
  }
  SUBCASE("logistic mixture: values -1 + 2j/255") {
    VAE m = tiny_mlp(15, 3, {2, 4, 4});  // 5 components x 3 parameters, 2 channels
    Generator g(1);
    Samples s = sample_ancestral(m, 4, g);
    CHECK(s.x.shape() == Shape{4, 2, 4, 4});
    CHECK(on_grid(s.x, -1, 2.0 / 255, 256));
  }
  SUBCASE("learned-variance Gaussian: real and finite, x differs from the mean") {
    VAE m = tiny_mlp(2, 4);
    Generator g(1);
    Samples s = sample_ancestral(m, 4, g);
    CHECK(s.x.shape() == Shape{4, 1, 4, 4});
    for (double v : s.x.to_vector<double>()) CHECK(std::isfinite(v));
    CHECK_FALSE(equal(s.x, s.mean));
  }
}

// ---- the Markov chain of Proposition 2 -------------------------------------------------------------

TEST_CASE("Markov chain: the kept steps are evenly spaced and end with the last") {
  CHECK(markov_chain_kept_steps(10, 3) == std::vector<int64_t>{3, 6, 10});
  CHECK(markov_chain_kept_steps(5, 5) == std::vector<int64_t>{1, 2, 3, 4, 5});
  CHECK(markov_chain_kept_steps(7, 1) == std::vector<int64_t>{7});
  CHECK(markov_chain_kept_steps(100, 4) == std::vector<int64_t>{25, 50, 75, 100});
  CHECK(contains(error_message([] { markov_chain_kept_steps(3, 4); }), "1 <= keep <= steps"));
  CHECK(contains(error_message([] { markov_chain_kept_steps(3, 0); }), "1 <= keep <= steps"));
  CHECK(contains(error_message([] { markov_chain_kept_steps(0, 1); }), "1 <= keep <= steps"));
}

TEST_CASE("Markov chain: one step is z ~ q(z|x0) by reparameterization, then x ~ p(x|z)") {
  VAE m = tiny_mlp(1, 7);
  auto p = bernoulli();
  Tensor x0 = binary({3, 1, 4, 4}, 8);
  Generator g(9);
  std::vector<Samples> chain = sample_markov_chain(m, x0, 1, 1, g);
  REQUIRE(chain.size() == 1);
  // the same transition by hand, drawing from a generator with the same seed in the same order
  Generator h(9);
  auto [mu, lv] = m.encode(Var(x0));
  Tensor z = reparameterize(mu, lv, h).z.data();
  Tensor params = m.factorized().params(Var(z)).data();
  Tensor x1 = p->sample(params, h);
  CHECK(equal(chain[0].z, z));
  CHECK(equal(chain[0].x, x1));
  CHECK(equal(chain[0].mean, p->mean(params)));
}

TEST_CASE("Markov chain: shapes, determinism, kept states, support") {
  VAE m = tiny_mlp(1, 11);
  auto p = bernoulli();
  Tensor x0 = binary({4, 1, 4, 4}, 12);
  Generator ga(13), gb(13), gc(14);
  std::vector<Samples> all = sample_markov_chain(m, x0, 6, 6, ga);
  std::vector<Samples> some = sample_markov_chain(m, x0, 6, 2, gb);
  std::vector<Samples> other = sample_markov_chain(m, x0, 6, 6, gc);
  REQUIRE(all.size() == 6);
  REQUIRE(some.size() == 2);
  for (const Samples& s : all) {
    CHECK(s.x.shape() == Shape{4, 1, 4, 4});
    CHECK(s.mean.shape() == Shape{4, 1, 4, 4});
    CHECK(s.z.shape() == Shape{4, 3});
    CHECK(on_grid(s.x, 0, 1, 2));
  }
  // keep = 2 of 6 keeps steps 3 and 6 of the same chain
  CHECK(equal(some[0].x, all[2].x));
  CHECK(equal(some[0].z, all[2].z));
  CHECK(equal(some[1].x, all[5].x));
  CHECK(equal(some[1].z, all[5].z));
  // the chain moves, and another seed gives another chain
  CHECK_FALSE(equal(all[0].z, all[1].z));
  CHECK_FALSE(equal(all[5].z, other[5].z));
  CHECK(ag::grad_enabled());
}

TEST_CASE("Markov chain with use_mean feeds the mean forward; float32 x0 is converted") {
  VAE m = tiny_mlp(1, 15);
  auto p = bernoulli();
  Tensor x0 = binary({2, 1, 4, 4}, 16);
  Generator g(17);
  std::vector<Samples> chain = sample_markov_chain(m, x0.to(DType::f32), 3, 3, g, true);
  REQUIRE(chain.size() == 3);
  for (const Samples& s : chain) {
    CHECK(equal(s.x, s.mean));
    CHECK(s.x.dtype() == DType::f64);
  }
  // step 2 starts from step 1's mean
  Generator h(17);
  auto [mu1, lv1] = m.encode(Var(x0));
  reparameterize(mu1, lv1, h);  // step 1's draw
  auto [mu2, lv2] = m.encode(Var(chain[0].mean));
  Tensor z2 = reparameterize(mu2, lv2, h).z.data();
  CHECK(equal(chain[1].z, z2));
}

TEST_CASE("sampler errors") {
  VAE m = tiny_mlp(1, 18);
  auto p = bernoulli();
  Generator g(0);
  CHECK(contains(error_message([&] { sample_ancestral(m, 0, g); }), "positive"));
  CHECK(contains(error_message([&] { sample_markov_chain(m, binary({2, 1, 3, 3}, 1), 2, 1, g); }),
                 "(B, 1, 4, 4)"));
  CHECK(contains(error_message([&] { sample_markov_chain(m, binary({2, 1, 4, 4}, 1), 2, 3, g); }),
                 "keep"));
}

}  // namespace file_vae_test_samplers

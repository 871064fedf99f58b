// test_model_objective.cpp: the VAE module (shapes of the mlp and conv variants on MNIST-like and
// CIFAR-like data, the W1 and W2 parameter counts, the configuration errors) and the objective of
// eq. (7) (its terms, lambda = 0 as the unregularized VAE, a float64 gradient check through a tiny
// model's parameters, and a training smoke test in which Adam raises the ELBO).
#include <doctest/doctest.h>

#include "tests/test_util.h"
#include "tests/vae/vae_test_util.h"

#include <cmath>
#include <filesystem>
#include <string>
#include <vector>

#include "autograd/gradcheck.h"
#include "nn/data/idx.h"
#include "nn/optim.h"
#include "vae/objective.h"

using namespace gv;
using namespace gv::vae;
using ag::Var;

// This file's helpers and tests in a namespace of their own: the unity build (scripts/test.sh)
// compiles several test files as one, and their helpers must not meet.
namespace file_vae_test_model_objective {

namespace {

using gv::test::error_message;
bool contains(const std::string& s, const std::string& part) { return gv::test::has(s, part); }

// A small MLP VAE; float64 when asked (gradient checks, exact comparisons).
VAE tiny_mlp(const Shape& data_shape, int64_t latent, int64_t hidden, int64_t k, uint64_t seed,
             DType dt = DType::f64, int64_t layers = 1) {
  return gv::test::tiny_vae({.data_shape = data_shape, .latent = latent, .hidden = hidden, .hidden_layers = layers,
                             .p = gv::test::family_with_k(k), .seed = seed, .dtype = dt});
}

// Binary data {0, 1} of a shape, each pixel on with probability 1/2.
Tensor binary_data(const Shape& s, uint64_t seed, DType dt = DType::f64) {
  Generator g(seed);
  return gv::bernoulli(Tensor::full(s, 0.5, dt), g);
}

const Var* find_param(const std::vector<nn::NamedVar>& ps, const std::string& name) {
  for (const auto& [n, v] : ps)
    if (n == name) return &v;
  return nullptr;
}

}  // namespace

// ---- the model ---------------------------------------------------------------------------------

TEST_CASE("VAE shapes: mlp and conv, on (1, 28, 28) and (3, 32, 32) data, with k = 1 and k = 2") {
  for (std::string arch : {"mlp", "conv"})
    for (Shape ds : {Shape{1, 28, 28}, Shape{3, 32, 32}})
      for (int64_t k : {1, 2}) {
        ModelConfig c;
        c.arch = arch;
        c.data_shape = ds;
        c.latent = 3;
        c.hidden = 16;
        Generator g(1);
        VAE m(c, gv::test::family_with_k(k), g);
        const int64_t B = 2;
        Tensor x = binary_data({B, ds[0], ds[1], ds[2]}, 2, DType::f32);
        auto [mu, logvar] = m.encode(Var(x));
        INFO(arch, " data ", shape_str(ds), " k ", k);
        CHECK(mu.shape() == Shape{B, 3});
        CHECK(logvar.shape() == Shape{B, 3});
        Var params = m.factorized().params(mu);
        CHECK(params.shape() == Shape{B, k * ds[0], ds[1], ds[2]});
        CHECK(m.dtype() == DType::f32);
        for (const auto& [name, p] : m.named_parameters())
          CHECK((name.rfind("encoder.", 0) == 0 || name.rfind("decoder.", 0) == 0));
      }
  // vector data (D) works for the mlp: params (B, k*D)
  VAE v = tiny_mlp({6}, 2, 4, 2, 3);
  auto [mu, lv] = v.encode(Var(binary_data({5, 6}, 4)));
  CHECK(v.factorized().params(mu).shape() == Shape{5, 12});
}

TEST_CASE("W1's MLP has 784-500-500-(2x20) / 20-500-500-784 and the hand-counted parameters") {
  ModelConfig c;  // the defaults are W1
  Generator g(0);
  VAE m(c, bernoulli(), g);
  const int64_t expect = 784 * 500 + 500 + 500 * 500 + 500 + 500 * 40 + 40 +  // encoder
                         20 * 500 + 500 + 500 * 500 + 500 + 500 * 784 + 784;  // decoder
  CHECK(m.parameter_count() == expect);
  auto ps = m.named_parameters();
  // Sequential indices: encoder 0 Flatten, 1 Linear, 2 Softplus, 3 Linear, 4 Softplus, 5 Linear
  const Var* w1 = find_param(ps, "encoder.1.weight");
  const Var* w3 = find_param(ps, "encoder.5.weight");
  const Var* d5 = find_param(ps, "decoder.4.weight");
  REQUIRE(w1);
  REQUIRE(w3);
  REQUIRE(d5);
  CHECK(w1->shape() == Shape{500, 784});
  CHECK(w3->shape() == Shape{40, 500});
  CHECK(d5->shape() == Shape{784, 500});
}

TEST_CASE("W2's conv VAE (z = 2) has the hand-counted parameters") {
  ModelConfig c;
  c.arch = "conv";
  c.latent = 2;
  Generator g(0);
  VAE m(c, bernoulli(), g);
  const int64_t expect = 64 * 1 * 16 + 64 + 128 * 64 * 16 + 128 +  // two convolutions
                         6272 * 1024 + 1024 + 1024 * 4 + 4 +       // two linears, encoder
                         2 * 1024 + 1024 + 1024 * 6272 + 6272 +    // two linears, decoder
                         128 * 64 * 16 + 64 + 64 * 1 * 16 + 1;     // two transposed convolutions
  CHECK(m.parameter_count() == expect);
}

TEST_CASE("mu and logvar are the first and second halves of the encoder's output") {
  // with no hidden layer the encoder is Flatten + Linear(D, 2Z): mu = x W[:Z]^T + b[:Z]
  VAE m = tiny_mlp({1, 2, 2}, 3, 8, 1, 5, DType::f64, 0);
  auto ps = m.named_parameters();
  const Var* w = find_param(ps, "encoder.1.weight");
  const Var* b = find_param(ps, "encoder.1.bias");
  REQUIRE(w);
  REQUIRE(b);
  Tensor x = binary_data({2, 1, 2, 2}, 6);
  auto [mu, logvar] = m.encode(Var(x));
  Tensor h = gv::matmul(x.reshape({2, 4}), w->data().t()) + b->data();  // (2, 6)
  std::vector<double> hv = h.to_vector<double>(), mv = mu.data().to_vector<double>(),
                      lv = logvar.data().to_vector<double>();
  for (int i = 0; i < 2; ++i)
    for (int j = 0; j < 3; ++j) {
      CHECK(mv[i * 3 + j] == doctest::Approx(hv[i * 6 + j]).epsilon(1e-14));
      CHECK(lv[i * 3 + j] == doctest::Approx(hv[i * 6 + 3 + j]).epsilon(1e-14));
    }
}

TEST_CASE("VAE configuration and input errors name the problem") {
  auto build = [](ModelConfig c) {
    Generator g(0);
    VAE m(c, bernoulli(), g);
  };
  ModelConfig conv;
  conv.arch = "conv";
  conv.latent = 2;
  for (Shape ds : {Shape{1, 30, 28}, Shape{3, 32, 18}, Shape{1, 2, 2}}) {
    conv.data_shape = ds;
    std::string msg = error_message([&] { build(conv); });
    INFO(msg);
    CHECK(contains(msg, "divisible by 4"));
  }
  conv.data_shape = {784};
  CHECK(contains(error_message([&] { build(conv); }), "(C, H, W)"));
  ModelConfig c;
  c.arch = "resnet";
  std::string msg = error_message([&] { build(c); });
  CHECK((contains(msg, "'resnet'") && contains(msg, "mlp") && contains(msg, "conv")));
  c = ModelConfig{};
  c.activation = "swish";
  msg = error_message([&] { build(c); });
  CHECK((contains(msg, "'swish'") && contains(msg, "softplus") && contains(msg, "tanh")));
  c = ModelConfig{};
  c.latent = 0;
  CHECK(contains(error_message([&] { build(c); }), "latent"));

  VAE m = tiny_mlp({1, 2, 3}, 2, 4, 1, 1);
  CHECK(contains(error_message([&] { m.encode(Var(Tensor::zeros({4, 1, 3, 2}, DType::f64))); }), "(B, 1, 2, 3)"));
  CHECK(contains(error_message([&] { m.factorized().params(Var(Tensor::zeros({4, 3}, DType::f64))); }), "(B, 2)"));
}

// ---- the objective, eq. (7) ----------------------------------------------------------------------

TEST_CASE("objective: loss = -(reconstruction - weight * regularizer), each term as defined") {
  VAE m = tiny_mlp({1, 3, 3}, 2, 6, 1, 7);
  Tensor x = binary_data({5, 1, 3, 3}, 8);
  auto p = bernoulli();
  for (auto r : {kl(), mmd(), kl_free_bits(0.1), no_regularizer()}) {
    const double w = 0.7;
    Generator g(9);
    ObjectiveTerms t = objective(m, x, *r, w, g);
    INFO("regularizer ", r->name());
    CHECK(t.weight == w);
    CHECK(t.loss.dim() == 0);
    CHECK(t.loss.item() == -(t.reconstruction.item() - w * t.regularizer.item()));  // exactly, in float64
    // reconstruction: the batch mean of log p(x | decode(z)) at the returned sample z
    double recon = gv::mean(p->log_prob(x, m.factorized().params(t.q.z)).data()).item();
    CHECK(t.reconstruction.item() == doctest::Approx(recon).epsilon(1e-14));
    // the sample is the reparameterized draw from the encoder's q, with the generator's first eps
    auto [mu, lv] = m.encode(Var(x));
    Generator g2(9);
    Tensor z = reparameterize(mu, lv, g2).z.data();
    CHECK(gv::max(gv::abs(z - t.q.z.data())).item() == 0.0);
    if (r->name() == "kl") CHECK(t.regularizer.item() == doctest::Approx(kl()->value(t.q, g2).item()).epsilon(1e-14));
  }
  // float32 data is converted to the model's dtype
  Generator g(9);
  ObjectiveTerms t32 = objective(m, x.to(DType::f32), *kl(), 1, g);
  CHECK(t32.loss.dtype() == DType::f64);
}

TEST_CASE("objective with the KL at weight 0 is the unregularized objective, value and gradients") {
  VAE m = tiny_mlp({1, 3, 3}, 2, 6, 1, 10);
  Tensor x = binary_data({4, 1, 3, 3}, 11);
  auto p = bernoulli();
  Generator g1(12), g2(12);
  ObjectiveTerms a = objective(m, x, *kl(), 0.0, g1);
  CHECK(a.regularizer.item() > 0);  // the KL is there, only weighted by 0
  a.loss.backward();
  std::vector<Tensor> ga;
  for (const Var& v : m.parameters()) ga.push_back(v.grad().clone());
  m.zero_grad();
  ObjectiveTerms b = objective(m, x, *no_regularizer(), 1.0, g2);
  b.loss.backward();
  CHECK(a.loss.item() == b.loss.item());
  CHECK(a.loss.item() == -a.reconstruction.item());
  auto ps = m.parameters();
  for (size_t i = 0; i < ps.size(); ++i) CHECK(gv::max(gv::abs(ps[i].grad() - ga[i])).item() == 0.0);
}

TEST_CASE("gradient check of the whole objective w.r.t. a tiny model's parameters (float64)") {
  struct Case {
    std::shared_ptr<Likelihood> p;
    std::shared_ptr<Regularizer> r;
    double w;
  };
  for (const Case& cs : {Case{bernoulli(), kl(), 0.8}, Case{gaussian_learned(), mmd(0.7), 2.0},
                         Case{gaussian_fixed(0.5), kl(), 1.0}}) {
    const int64_t k = cs.p->params_per_channel();
    VAE m = gv::test::tiny_vae({.data_shape = {1, 2, 3}, .latent = 2, .hidden = 5, .hidden_layers = 1, .p = cs.p,
                                .seed = uint64_t(20 + k), .dtype = DType::f64});
    Tensor x = cs.p->name() == "bernoulli" ? binary_data({4, 1, 2, 3}, 21) : [] {
      Generator g(22);
      return gv::normal({4, 1, 2, 3}, g, 0.3, 1, DType::f64);
    }();
    auto f = [&](const std::vector<Var>&) {
      Generator g(23);  // the same eps and prior draws in every evaluation
      return objective(m, x, *cs.r, cs.w, g).loss;
    };
    auto res = ag::gradcheck(f, m.parameters());
    INFO(cs.p->name(), " + ", cs.r->name(), ": ", res.message);
    CHECK(res.ok);
  }
}

// ---- training ------------------------------------------------------------------------------------

namespace {

// -ELBO per example on x, with a fixed sample of z (no graph).
double negative_elbo(VAE& m, const Tensor& x, const Likelihood& p) {
  ag::NoGradGuard ng;
  Generator g(4242);
  return objective(m, x, *kl(), 1.0, g).loss.item();
}

// Adam (lr 1e-3) on the ELBO over batches of 50, cycling through x in order; returns the -ELBO on
// x (per example, nats) before and after.
std::pair<double, double> train_elbo(VAE& m, const Tensor& x, int64_t steps) {
  auto p = bernoulli();
  auto r = kl();
  const double before = negative_elbo(m, x, *p);
  nn::Adam opt(m.named_parameters(), 1e-3);
  Generator g(99);
  const int64_t n = x.size(0), batch = 50;
  for (int64_t s = 0; s < steps; ++s) {
    int64_t start = (s * batch) % n;
    Tensor xb = x.slice(0, start, std::min(start + batch, n));
    opt.zero_grad();
    ObjectiveTerms t = objective(m, xb, *r, 1.0, g);
    t.loss.backward();
    opt.step();
  }
  return {before, negative_elbo(m, x, *p)};
}

}  // namespace

TEST_CASE("training smoke test: Adam on the ELBO of synthetic binary patterns") {
  // 400 patterns of 8x8 pixels: 8 random prototypes, each pixel flipped with probability 0.05.
  // A perfect model would reach about 64 H(0.05) + log 8 = 14.8 nats; at the start -ELBO is about
  // 64 log 2 = 44 nats.
  const int64_t N = 400, D = 64;
  Generator g(31);
  std::vector<float> proto = gv::bernoulli(Tensor::full({8, D}, 0.5), g).to_vector<float>();
  std::vector<float> flip = uniform({N, D}, g).to_vector<float>();
  std::vector<float> data(N * D);
  for (int64_t i = 0; i < N; ++i)
    for (int64_t j = 0; j < D; ++j) {
      float v = proto[(i % 8) * D + j];
      data[i * D + j] = flip[i * D + j] < 0.05f ? 1 - v : v;
    }
  Tensor x = Tensor::from_vector(data, {N, 1, 8, 8});
  VAE m = tiny_mlp({1, 8, 8}, 4, 64, 1, 32, DType::f32);
  auto [before, after] = train_elbo(m, x, 300);
  MESSAGE("synthetic patterns: -ELBO " << before << " -> " << after << " nats after 300 steps");
  CHECK(before > 40);
  CHECK(after < before - 15);  // observed 46.3 -> 23.9
}

TEST_CASE("training smoke test: Adam on the ELBO of 1000 binarized MNIST digits (when the data exists)") {
  const std::string dir = data::default_mnist_dir();
  if (!std::filesystem::exists(dir + "/train-images-idx3-ubyte") &&
      !std::filesystem::exists(dir + "/train-images-idx3-ubyte.gz")) {
    MESSAGE("SKIP: no MNIST in " << dir);
    return;
  }
  data::MnistSplit mn = data::load_mnist(dir, true, 1000);
  Tensor x = gv::gt(mn.images, 0.5).to(DType::f32);  // binarized at 1/2: (1000, 1, 28, 28)
  VAE m = tiny_mlp({1, 28, 28}, 10, 128, 1, 33, DType::f32);
  auto [before, after] = train_elbo(m, x, 300);
  MESSAGE("MNIST: -ELBO " << before << " -> " << after << " nats after 300 steps");
  CHECK(before > 500);  // about 784 log 2 = 543 at initialization
  CHECK(after < before - 200);  // observed 567.8 -> 148.8
}

TEST_CASE("the decoder seam keeps the checkpoint names of the MLP and conv VAEs (old checkpoints load)") {
  // the names every checkpoint written before vae::Decoder holds ("model." + these)
  const std::vector<std::string> mlp = {"encoder.1.weight", "encoder.1.bias", "encoder.3.weight", "encoder.3.bias",
                                        "encoder.5.weight", "encoder.5.bias", "decoder.0.weight", "decoder.0.bias",
                                        "decoder.2.weight", "decoder.2.bias", "decoder.4.weight", "decoder.4.bias"};
  const std::vector<std::string> conv = {
      "encoder.0.weight", "encoder.0.bias", "encoder.2.weight", "encoder.2.bias", "encoder.5.weight",
      "encoder.5.bias",   "encoder.7.weight", "encoder.7.bias", "decoder.0.weight", "decoder.0.bias",
      "decoder.2.weight", "decoder.2.bias",   "decoder.5.weight", "decoder.5.bias", "decoder.7.weight",
      "decoder.7.bias"};
  for (const auto& [arch, want] : {std::pair{std::string("mlp"), mlp}, std::pair{std::string("conv"), conv}}) {
    ModelConfig c;
    c.arch = arch;
    c.latent = 2;
    Generator g(0);
    VAE m(c, bernoulli(), g);
    std::vector<std::string> names;
    for (const auto& [n, v] : m.named_parameters()) names.push_back(n);
    std::vector<std::string> sorted_want = want;
    std::sort(names.begin(), names.end());
    std::sort(sorted_want.begin(), sorted_want.end());
    CAPTURE(arch);
    CHECK(names == sorted_want);
  }
}

}  // namespace file_vae_test_model_objective

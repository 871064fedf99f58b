// test_determinism.cpp: the engine's determinism promise (docs/engine.md) on a whole W1 training
// step: the same bits at 1, 2 and 3 threads, on both FMA paths (AVX2 and AVX-512), at batch 1, 5,
// 6 and 100; and each example's forward results the same whichever batch it is evaluated in.
#include <doctest/doctest.h>
#include <omp.h>

#include <cstring>
#include <string>
#include <vector>

#include "engine/ops.h"
#include "engine/random.h"
#include "engine/runtime.h"
#include "nn/optim.h"
#include "vae/likelihood.h"
#include "vae/model.h"
#include "vae/objective.h"
#include "vae/regularizer.h"
#include "tests/test_util.h"

using namespace gv;

// This file's helpers and tests in a namespace of their own: the unity build (scripts/test.sh)
// compiles several test files as one, and their helpers must not meet.
namespace file_vae_test_determinism {

namespace {

vae::VAE w1_model() {
  vae::ModelConfig c;  // the defaults are W1: 784-500-500-(2x20) and back, softplus
  Generator g(7);
  return vae::VAE(c, vae::bernoulli(), g);
}

Tensor binary_batch(int64_t batch) {
  Generator g(100 + batch);
  return bernoulli(uniform({batch, 1, 28, 28}, g), g);
}

// The loss and every parameter after one W1 training step (ELBO, Adam), as raw bytes.
std::vector<std::string> one_step(int64_t batch) {
  vae::VAE model = w1_model();
  nn::Adam opt(model.named_parameters(), 1e-3, 0.9, 0.999, 1e-8);
  auto lik = vae::bernoulli();
  auto reg = vae::kl();
  Generator g(3);
  const Tensor x = binary_batch(batch);
  opt.zero_grad();
  ag::Var loss = vae::objective(model, x, *reg, 1.0, g).loss;
  loss.backward();
  opt.step();
  std::vector<std::string> out;
  auto bytes = [&](const Tensor& t) {
    const Tensor c = t.contiguous();
    out.emplace_back(static_cast<const char*>(c.raw_data()), size_t(c.numel()) * dtype_size(c.dtype()));
  };
  bytes(loss.data());
  for (const auto& [name, v] : model.named_parameters()) bytes(v.data());
  return out;
}

}  // namespace

TEST_CASE("a W1 training step: the same bits at 1, 2 and 3 threads and on both FMA paths, batch 1, 5, 6, 100") {
  gv::test::RuntimeGuard guard;
#ifdef GV_SANITIZED
  // batch 100 runs the same code as batch 6, at 5-20x the cost under the sanitizers (this case took
  // 92 s of their pass); the release pass runs it.
  const std::vector<int64_t> batches = {1, 5, 6};
#else
  const std::vector<int64_t> batches = {1, 5, 6, 100};
#endif
  for (int64_t batch : batches) {
    CAPTURE(batch);
    std::vector<std::vector<std::string>> fma_paths;
    for (Isa isa : supported_isas()) {
      CAPTURE(isa_name(isa));
      set_isa(isa);
      omp_set_num_threads(1);
      const auto one = one_step(batch);
      omp_set_num_threads(2);
      const auto two = one_step(batch);
      omp_set_num_threads(3);
      const auto three = one_step(batch);
      REQUIRE(one.size() == two.size());
      for (size_t i = 0; i < one.size(); ++i) {
        CAPTURE(i);  // 0: the loss, then the parameters in named_parameters() order
        CHECK(one[i] == two[i]);
        CHECK(one[i] == three[i]);
      }
      if (isa != Isa::generic) fma_paths.push_back(one);
    }
    for (size_t p = 1; p < fma_paths.size(); ++p)
      for (size_t i = 0; i < fma_paths[0].size(); ++i) {
        CAPTURE(i);
        CHECK(fma_paths[0][i] == fma_paths[p][i]);
      }
  }
}

TEST_CASE("W1 forward: each example's encoding, decoding and log-likelihood do not depend on its batch") {
  gv::test::RuntimeGuard guard;
  vae::VAE model = w1_model();
  auto lik = vae::bernoulli();
  const Tensor x = binary_batch(100);
  Generator g(9);
  const Tensor z = normal({100, 20}, g);
  for (Isa isa : supported_isas()) {
    CAPTURE(isa_name(isa));
    set_isa(isa);
    auto [mu, logvar] = model.encode(ag::Var(x));
    const ag::Var params = model.factorized().params(ag::Var(z));
    const Tensor ll = lik->log_prob(x, params).data();
    for (int64_t batch : {1, 5, 6})
      for (int64_t start : {int64_t(0), int64_t(47), 100 - batch}) {
        CAPTURE(batch);
        CAPTURE(start);
        const Tensor xs = x.slice(0, start, start + batch), zs = z.slice(0, start, start + batch);
        auto [mu_s, logvar_s] = model.encode(ag::Var(xs));
        const ag::Var params_s = model.factorized().params(ag::Var(zs));
        CHECK(mu_s.data().to_vector<float>() == mu.data().slice(0, start, start + batch).to_vector<float>());
        CHECK(logvar_s.data().to_vector<float>() == logvar.data().slice(0, start, start + batch).to_vector<float>());
        CHECK(params_s.data().to_vector<float>() == params.data().slice(0, start, start + batch).to_vector<float>());
        CHECK(lik->log_prob(xs, params_s).data().to_vector<float>() ==
              ll.slice(0, start, start + batch).to_vector<float>());
      }
  }
}

}  // namespace file_vae_test_determinism

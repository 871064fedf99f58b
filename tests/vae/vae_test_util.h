// vae_test_util.h: the tiny MLP VAE the vae tests build, one definition with named settings.
#pragma once
#include <memory>
#include <string>

#include "vae/model.h"

namespace gv::test {

struct TinyVae {
  Shape data_shape = {1, 2, 2};
  int64_t latent = 2, hidden = 8, hidden_layers = 1;
  std::shared_ptr<vae::Likelihood> p = nullptr;  // the decoder's likelihood family (null: bernoulli)
  std::string activation = "softplus";
  uint64_t seed = 1;                      // of the initial weights
  DType dtype = DType::f32;               // f64 for gradient checks and exact comparisons
};

// A family whose decoder emits k parameters per data channel: 1 bernoulli, 2 gaussian-learned,
// 256 categorical256, 3K a logistic mixture of K components.
inline std::shared_ptr<vae::Likelihood> family_with_k(int64_t k) {
  if (k == 1) return vae::bernoulli();
  if (k == 2) return vae::gaussian_learned();
  if (k == 256) return vae::categorical256();
  GV_CHECK(k % 3 == 0, ValueError, "family_with_k: no family with {} parameters per channel", k);
  return vae::discretized_logistic_mixture(k / 3);
}

inline vae::VAE tiny_vae(const TinyVae& t) {
  vae::ModelConfig c;
  c.arch = "mlp";
  c.data_shape = t.data_shape;
  c.latent = t.latent;
  c.hidden = t.hidden;
  c.hidden_layers = t.hidden_layers;
  c.activation = t.activation;
  Generator g(t.seed);
  vae::VAE m(c, t.p ? t.p : vae::bernoulli(), g);
  if (t.dtype != DType::f32) m.to(t.dtype);
  return m;
}

}  // namespace gv::test

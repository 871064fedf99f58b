// vae_test_util.h: the tiny MLP VAE the vae tests build, one definition with named settings.
#pragma once
#include <string>

#include "vae/model.h"

namespace gv::test {

struct TinyVae {
  Shape data_shape = {1, 2, 2};
  int64_t latent = 2, hidden = 8, hidden_layers = 1;
  int64_t k = 1;                          // decoder parameters per data channel (the likelihood's)
  std::string activation = "softplus";
  uint64_t seed = 1;                      // of the initial weights
  DType dtype = DType::f32;               // f64 for gradient checks and exact comparisons
};

inline vae::VAE tiny_vae(const TinyVae& t) {
  vae::ModelConfig c;
  c.arch = "mlp";
  c.data_shape = t.data_shape;
  c.latent = t.latent;
  c.hidden = t.hidden;
  c.hidden_layers = t.hidden_layers;
  c.activation = t.activation;
  c.params_per_channel = t.k;
  Generator g(t.seed);
  vae::VAE m(c, g);
  if (t.dtype != DType::f32) m.to(t.dtype);
  return m;
}

}  // namespace gv::test

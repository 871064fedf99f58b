// model.h: the VAE as a module: an encoder x -> (mu, logvar) of q(z|x) and a decoder z -> the
// parameters of p(x|z) for a chosen likelihood family. MLP and convolutional variants.
//   "mlp":  encoder flatten, hidden_layers x (Linear(hidden) + activation), Linear -> 2Z;
//           decoder hidden_layers x (Linear(hidden) + activation), Linear -> k*C*H*W, reshaped to
//           (B, k*C, H, W). The defaults are benchmark W1 (784-500-500-(2x20), softplus).
//   "conv": benchmark W2's network for any (C, H, W) with H, W divisible by 4: conv 4x4 s2 p1 C->64,
//           leaky ReLU 0.1, conv 4x4 s2 p1 64->128, leaky ReLU 0.1, flatten, linear -> 1024, leaky
//           ReLU 0.1, linear -> 2Z; decoder linear Z -> 1024, ReLU, linear -> 128*(H/4)*(W/4), ReLU,
//           reshape, transposed conv 4x4 s2 p1 128->64, ReLU, transposed conv 4x4 s2 p1 64->k*C.
// The decoder's last layer has no output nonlinearity: its output is the unconstrained parameters
// that the likelihood family interprets (Bernoulli: logits; Gaussian: the mean; ...). W2 ends in a
// sigmoid and scores it with squared error; here gaussian_fixed reads the raw output as the mean,
// so the mean is not squashed into [0, 1]. For [0, 1] data, bernoulli() gives means sigmoid(output)
// instead. Squared error summed over pixels is gaussian_fixed(sigma = 1/sqrt(2)) up to a constant
// (the paper's N(g(z), I/2), eq. 9).
// Parameters are float32 as built; to(DType::f64) converts them (gradient checks).
#pragma once
#include <memory>
#include <string>

#include "nn/layers.h"
#include "vae/likelihood.h"
#include "vae/regularizer.h"

namespace gv::vae {

struct ModelConfig {
  std::string arch = "mlp";       // "mlp" or "conv"
  Shape data_shape = {1, 28, 28};  // (C, H, W)
  int64_t latent = 20;
  int64_t hidden = 500;            // mlp: units per hidden layer
  int64_t hidden_layers = 2;       // mlp: hidden layers in encoder and decoder each
  std::string activation = "softplus";  // mlp: "softplus", "relu", "leaky_relu", "tanh"
  int64_t params_per_channel = 1;  // from the likelihood (decoder output channels per data channel)
};

class VAE : public nn::Module {
 public:
  VAE(const ModelConfig& cfg, Generator& g);
  const ModelConfig& config() const { return cfg_; }
  DType dtype() const;  // the dtype of the parameters (after any to())
  // x (B, C, H, W) -> mu, logvar (B, Z): the encoder's (B, 2Z) output split as [mu, logvar]
  std::pair<ag::Var, ag::Var> encode(const ag::Var& x);
  // z (B, Z) -> likelihood params (B, k*C, H, W)
  ag::Var decode(const ag::Var& z);

 private:
  ModelConfig cfg_;
  std::shared_ptr<nn::Layer> encoder_;  // x -> (B, 2Z): [mu, logvar]
  std::shared_ptr<nn::Layer> decoder_;  // z -> params
};

inline constexpr double kLog2Pi = 1.8378770664093454836;  // log(2 pi), for Gaussian log densities

// Evaluation mode and no graph for one scope; the model's previous mode comes back on exit,
// exceptions included. The estimators measure a model this way.
class EvalScope {
 public:
  explicit EvalScope(VAE& model) : model_(model), was_training_(model.is_training()) { model_.eval(); }
  ~EvalScope() { model_.train(was_training_); }
  EvalScope(const EvalScope&) = delete;
  EvalScope& operator=(const EvalScope&) = delete;

 private:
  VAE& model_;
  bool was_training_;
  ag::NoGradGuard no_grad_;
};

}  // namespace gv::vae

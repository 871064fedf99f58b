// model.h: the VAE as a module: an encoder x -> (mu, logvar) of q(z|x) and a decoder z -> the
// parameters of p(x|z) for a chosen likelihood family. MLP and convolutional variants.
//   "mlp":  encoder flatten, hidden_layers x (Linear(hidden) + activation), Linear -> 2Z;
//           decoder hidden_layers x (Linear(hidden) + activation), Linear -> k*C*H*W, reshaped to
//           (B, k*C, H, W). The defaults are benchmark W1 (784-500-500-(2x20), softplus).
//   "conv": benchmark W2's network for any (C, H, W) with H, W divisible by 4: conv 4x4 s2 p1 C->64,
//           leaky ReLU 0.1, conv 4x4 s2 p1 64->128, leaky ReLU 0.1, flatten, linear -> 1024, leaky
//           ReLU 0.1, linear -> 2Z; decoder linear Z -> 1024, ReLU, linear -> 128*(H/4)*(W/4), ReLU,
//           reshape, transposed conv 4x4 s2 p1 128->64, ReLU, transposed conv 4x4 s2 p1 64->k*C.
//   "conv3": the encoder of the paper's CIFAR-10 PixelVAE for any (C, H, W) with H, W divisible by 8:
//           conv 4x4 s2 p1 at 64, 128 and 256 channels, each with leaky ReLU 0.1, flatten, linear ->
//           512, leaky ReLU 0.1, linear -> 2Z; its factorized decoder mirrors it (linear Z -> 512,
//           ReLU, linear -> 256*(H/8)*(W/8), ReLU, transposed convs 4x4 s2 p1 256->128->64->planes).
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

#include "nn/average.h"
#include "nn/layers.h"
#include "vae/decoder.h"
#include "vae/encoder_posterior.h"
#include "vae/likelihood.h"

namespace gv::vae {

struct ModelConfig {
  std::string arch = "mlp";       // "mlp", "conv" or "conv3"
  Shape data_shape = {1, 28, 28};  // (C, H, W)
  int64_t latent = 20;
  int64_t hidden = 500;            // mlp: units per hidden layer
  int64_t hidden_layers = 2;       // mlp: hidden layers in encoder and decoder each
  std::string activation = "softplus";  // mlp: "softplus", "relu", "leaky_relu", "tanh"
  // the decoder: "factorized" (the network above, then the likelihood) or "pixelcnn" (a gated
  // PixelCNN conditioned on z, Bernoulli only: the PixelVAE of Section 4; pixelcnn.h)
  // or "pixelcnn++" (pixelcnnpp.h: any family, e.g. logistic-mixture-rgb on CIFAR-10, Fig. 6)
  std::string decoder = "factorized";
  int64_t pixel_layers = 12, pixel_channels = 32, pixel_kernel = 3, pixel_first_kernel = 7;
  // pixelcnn++: pixel_channels is its filters F; blocks per resolution, resolutions, dropout
  int64_t pixel_blocks = 1, pixel_resolutions = 3;
  double pixel_dropout = 0;
  // A floor on the encoder's standard deviation: logvar = log(floor^2 + exp(raw)), smooth (0: none)
  double sigma_floor = 0;
  // Polyak averaging of the weights with this decay (nn/average.h; 0: none): the child "average"
  double average_decay = 0;
};

// What the objective, the estimators, the samplers and the programs need of a model: a Gaussian
// encoder q(z|x) over a latent code of `latent()` dimensions, and a decoder p(x|z) that owns its
// likelihood. Later models (the PixelVAE, the sequential VAE) plug in here.
class Model : public nn::Module {
 public:
  virtual int64_t latent() const = 0;
  virtual const Shape& data_shape() const = 0;  // (C, H, W)
  // x (B, C, H, W) -> mu, logvar (B, Z)
  virtual std::pair<ag::Var, ag::Var> encode(const ag::Var& x) = 0;
  virtual Decoder& decoder() = 0;
  // The moving average of the weights that evaluation and sampling use, when the model keeps one.
  virtual nn::WeightAverage* average() { return nullptr; }
};

// The VAE of model.h's header comment: an MLP or convolutional encoder, and a FactorizedDecoder
// (the network above, then the likelihood p) or, with decoder "pixelcnn", a PixelCNNDecoder.
class VAE : public Model {
 public:
  VAE(const ModelConfig& cfg, std::shared_ptr<Likelihood> p, Generator& g);
  const ModelConfig& config() const { return cfg_; }
  int64_t latent() const override { return cfg_.latent; }
  const Shape& data_shape() const override { return cfg_.data_shape; }
  // x (B, C, H, W) -> mu, logvar (B, Z): the encoder's (B, 2Z) output split as [mu, logvar]
  std::pair<ag::Var, ag::Var> encode(const ag::Var& x) override;
  Decoder& decoder() override { return *decoder_; }
  nn::WeightAverage* average() override { return average_.get(); }
  // The factorized decoder and its network's output (the family's parameters); ValueError for a
  // PixelCNN decoder.
  FactorizedDecoder& factorized();

 private:
  ModelConfig cfg_;
  std::shared_ptr<nn::Layer> encoder_;  // x -> (B, 2Z): [mu, logvar]
  std::shared_ptr<Decoder> decoder_;    // p(x|z)
  std::shared_ptr<nn::WeightAverage> average_;  // null without averaging
};

inline constexpr double kLog2Pi = 1.8378770664093454836;  // log(2 pi), for Gaussian log densities

// Evaluation mode and no graph for one scope; the model's previous mode comes back on exit,
// exceptions included. The estimators measure a model this way.
class EvalScope {
 public:
  explicit EvalScope(nn::Module& model) : model_(model), was_training_(model.is_training()) { model_.eval(); }
  ~EvalScope() { model_.train(was_training_); }
  EvalScope(const EvalScope&) = delete;
  EvalScope& operator=(const EvalScope&) = delete;

 private:
  nn::Module& model_;
  bool was_training_;
  ag::NoGradGuard no_grad_;
};

}  // namespace gv::vae

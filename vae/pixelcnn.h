// pixelcnn.h: the gated PixelCNN of van den Oord et al. (2016), "Conditional image generation with
// PixelCNN decoders", conditioned on a latent code z, and the decoder p(x|z) built on it (the
// PixelVAE's decoder of the paper's Section 4, Fig. 5).
//
// Two stacks per layer, so that the receptive field has no blind spot:
//   vertical   v(i, j) sees rows i-p..i, columns j-p..j+p (through the layers below, a cone that
//              widens upwards); it reaches the horizontal stack only shifted down one row;
//   horizontal h(i, j) sees row i left of j (mask A, the first layer) or up to j (mask B, later
//              layers), plus v(i-1, j) through a 1x1 link.
// Each stack is one rectangular convolution holding exactly the taps a mask would keep, shifted
// into place by its padding and a crop: (p+1) x k for the vertical stack, 1 x (p+1) for the
// horizontal, p = k / 2. So no tap is multiplied by a zero: the mask's zeros are never computed.
// Units are tanh(f) * sigmoid(g) over the 2C channels [f, g]; a per-layer, per-channel term
// W z is added to both halves (separately for each stack); the horizontal stack is residual after
// the first layer. The head is ReLU, 1x1 conv C -> C, ReLU, 1x1 conv C -> data channels: the
// Bernoulli logits of binary images. Output (i, j) depends on x only at pixels before (i, j) in
// raster order (tests/vae/test_pixelcnn.cpp checks it by gradients, for every pair of pixels).
#pragma once
#include <functional>
#include <memory>
#include <vector>

#include "nn/layers.h"
#include "vae/decoder.h"

namespace gv::vae {

struct PixelCNNConfig {
  int64_t channels = 32;      // C, per stack
  int64_t layers = 12;        // gated layers; the first has mask A
  int64_t kernel = 3;         // the later layers' kernel k (odd)
  int64_t first_kernel = 7;   // the first layer's (odd)
  int64_t latent = 0;         // Z of the conditioning code (0: unconditioned)
  int64_t data_channels = 1;  // channels of x, and of the logits
};

class GatedPixelCNN : public nn::Module {
 public:
  GatedPixelCNN(const PixelCNNConfig& c, Generator& g);
  const PixelCNNConfig& config() const { return cfg_; }
  // x (B, C_data, H, W), z (B, Z) (undefined when latent is 0) -> logits (B, C_data, H, W)
  ag::Var forward(const ag::Var& x, const ag::Var& z);
  // Incremental evaluation in raster order (the cache of Ramachandran et al. 2017, "Fast
  // generation for convolutional autoregressive models"): the same logits as forward(), but each
  // layer's vertical stack is computed once per row (when the row above is complete), its
  // horizontal stack once per pixel, and the z terms once per call, so the whole image costs about
  // one forward pass instead of H*W of them. For each pixel in raster order, pixel(i, j, logits)
  // gets the logits (B, C_data) of x[:, :, i, j] and returns the value (B, C_data) that the later
  // pixels will see: a draw when sampling, the known pixel when checking against forward().
  // Returns x (B, C_data, H, W). No gradients.
  using PixelFn = std::function<Tensor(int64_t i, int64_t j, const Tensor& logits)>;
  Tensor generate(const Tensor& z, int64_t batch, int64_t H, int64_t W, const PixelFn& pixel);

 private:
  struct Layer {
    std::shared_ptr<nn::Conv2d> vertical, horizontal, v_to_h, residual;  // residual: null on the first
    std::shared_ptr<nn::Linear> cond_v, cond_h;                         // null without a latent code
    int64_t p = 0;
    bool first = false;
  };
  PixelCNNConfig cfg_;
  std::vector<Layer> layers_;
  std::shared_ptr<nn::Conv2d> head1_, head2_;
};

// p(x|z) = prod over pixels in raster order of Bernoulli(x_ij | sigmoid(logit_ij(x_<ij, z))).
class PixelCNNDecoder : public Decoder {
 public:
  PixelCNNDecoder(const PixelCNNConfig& c, Generator& g);
  std::string name() const override { return "gated PixelCNN (bernoulli)"; }
  ag::Var log_prob(const Tensor& x, const ag::Var& z) override;
  // Pixel by pixel in raster order, the whole batch of chains at once, through the incremental
  // evaluation GatedPixelCNN::generate.
  Tensor sample(const Tensor& z, Generator& g) override;
  // The reference: H*W whole-image forward passes, one per pixel ("naive recomputation"). The same
  // draws from g as sample(), and the same images up to the rounding of the logits (bitwise in
  // the tests' float64 cases); genvae-bench --sampling times both. pixels >= 0 stops after that
  // many pixels in raster order (the rest stay 0): every pass costs the same, so a benchmark may
  // time a few and scale.
  Tensor sample_naive(const Tensor& z, Generator& g, int64_t pixels = -1);
  bool has_mean() const override { return false; }  // no closed form: the pixels are dependent
  Tensor mean(const Tensor& z) override;             // ValueError
  const Likelihood& likelihood() const override { return *p_; }
  GatedPixelCNN& network() { return *net_; }

  // The data shape the decoder samples: set by its owner (the model), (C, H, W).
  void set_image_size(int64_t h, int64_t w) { h_ = h, w_ = w; }

 private:
  int64_t batch_of(const Tensor& z) const;  // B of z (B, Z); ShapeError naming the decoder otherwise
  std::shared_ptr<GatedPixelCNN> net_;
  std::shared_ptr<Likelihood> p_;
  int64_t h_ = 28, w_ = 28;
};

}  // namespace gv::vae

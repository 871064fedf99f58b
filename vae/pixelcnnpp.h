// pixelcnnpp.h: a PixelCNN++-style network (Salimans et al. 2017, "PixelCNN++: improving the
// PixelCNN with discretized logistic mixture likelihood and other modifications") conditioned on a
// latent code z, and the decoder p(x|z) built on it: the PixelVAE of the paper's Section 4 on
// CIFAR-10 (Fig. 6).
//
// Two streams, as in PixelCNN++:
//   u  ("down"): position (i, j) sees only rows above i; its convolutions are down-shifted, 2 x 3
//      taps reading rows i-1..i (and the first one rows i-2..i-1);
//   ul ("down-right"): (i, j) sees rows above i and row i left of j; 2 x 2 taps reading rows
//      i-1..i, columns j-1..j (the first one is a 1 x 3 conv of row i-1 plus a 2 x 1 conv of
//      column j-1), and every block also reads u at (i, j).
// Each shifted convolution holds exactly the taps a mask would keep (no zero tap is computed).
// An up pass of gated residual blocks at `resolutions` resolutions (32, 16, 8 for 32x32 images),
// joined by stride-2 shifted convolutions, stores every block's output; a down pass runs back up
// the resolutions (stride-2 transposed 2 x 2 convolutions: output (i, j) reads the coarse (i/2,
// j/2)), each block reading the stored output of its mirror image through a 1x1 "nin" link (the
// U-Net-like skips). A gated residual block, as in the authors' code:
//   c = conv(concat_elu(x)) [+ nin(concat_elu(a))];  c = conv(dropout(concat_elu(c))) + W z;
//   out = x + c_1 * sigmoid(c_2)     (c = [c_1, c_2] along the channels)
// with concat_elu(v) = elu([v, -v]) and W z a per-block, per-channel term of the latent code added
// to the 2F channels before the gate. The input carries an extra constant channel of ones (so the
// zero padding of the image's border is visible to the network), and the head is nin(elu(ul)) ->
// the likelihood family's parameter planes. Output (i, j) depends on x only at pixels before (i, j)
// in raster order, every channel included: tests/vae/test_pixelcnnpp.cpp checks it by gradients.
// Differences from the authors' network: the upsampling is a 2 x 2 transposed convolution for both
// streams (theirs is 2 x 3 for u), and there is no weight normalization.
#pragma once
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "nn/layers.h"
#include "vae/decoder.h"

namespace gv::vae {

struct PixelCNNPPConfig {
  int64_t filters = 32;       // F, channels of both streams
  int64_t blocks = 1;         // gated residual blocks per resolution, per pass
  int64_t resolutions = 3;    // H and W must be divisible by 2^(resolutions - 1)
  double dropout = 0;         // on each block's hidden layer, in training only (authors: 0.5)
  int64_t latent = 0;         // Z of the conditioning code (0: unconditioned)
  int64_t data_channels = 3;  // channels of x
  int64_t out_planes = 100;   // the family's parameter planes (logistic-mixture-rgb: 10 per component)
};

class PixelCNNPP : public nn::Module {
 public:
  PixelCNNPP(const PixelCNNPPConfig& c, Generator& g);
  const PixelCNNPPConfig& config() const { return cfg_; }
  // x (B, C, H, W), z (B, Z) (undefined when latent is 0) -> params (B, out_planes, H, W). Dropout
  // (in training mode, dropout > 0) draws from the network's own stream (a buffer, so checkpoints
  // resume it exactly).
  ag::Var forward(const ag::Var& x, const ag::Var& z);
  // Incremental evaluation in raster order: the same parameters as forward() at every pixel, but
  // every layer's output at a position is computed once, when first needed (each layer keeps a
  // buffer of the image and a mask of the positions computed), so a whole image costs about one
  // forward pass instead of H*W of them (Ramachandran et al. 2017 cache the same way). Only the
  // positions that output (i, j) depends on are computed for it, so they are final: a request that
  // would read an input pixel not yet given is an Error (an internal one) (the network is causal by
  // construction). pixel(i, j, params) gets the parameters (B, out_planes) of pixel (i, j) and
  // returns its value (B, C). Returns x (B, C, H, W). No gradients; evaluation mode (no dropout).
  using PixelFn = std::function<Tensor(int64_t i, int64_t j, const Tensor& params)>;
  Tensor generate(const Tensor& z, int64_t batch, int64_t H, int64_t W, const PixelFn& pixel);
  // How many positions generate() computed over all layers in its last call, and how many a full
  // forward pass computes at that image size (the cache's work against one pass).
  int64_t last_positions() const { return last_positions_; }
  int64_t positions_per_pass(int64_t H, int64_t W) const;

 private:
  struct Ctx;
  enum class Kind { input, conv, convt, point };
  // One layer of the network's graph; nodes are stored in evaluation order.
  struct Node {
    Kind kind = Kind::point;
    std::vector<int> in;  // input nodes
    int level = 0;        // resolution: (H >> level, W >> level)
    int64_t channels = 0;
    std::shared_ptr<nn::Conv2d> conv;            // conv: taps (kh, kw), stride s; output (i, j)
    int64_t kh = 0, kw = 0, stride = 1, pad_top = 0, pad_left = 0;  // reads rows i*s - pad_top + [0, kh)
    std::shared_ptr<nn::ConvTranspose2d> convt;  // convt: 2 x 2, stride 2
    std::function<ag::Var(const std::vector<ag::Var>&, Ctx&)> fn;  // point: the same position of its inputs
  };
  int add_node(Node n);
  int shifted_conv(int in, int64_t out, int64_t kh, int64_t kw, int64_t stride, int64_t pad_top, int64_t pad_left,
                   const std::string& name, Generator& g);
  int gated_block(int x, int a, bool down_right, const std::string& name, Generator& g);
  ag::Var run_conv(const Node& n, const ag::Var& x) const;  // full image
  void check_inputs(const char* op, int64_t B, int64_t H, int64_t W, const Tensor& z) const;

  PixelCNNPPConfig cfg_;
  std::vector<Node> nodes_;
  std::vector<std::shared_ptr<nn::Linear>> cond_;  // one per gated block (empty without a latent code)
  int out_ = -1;
  int64_t last_positions_ = 0;
};

// p(x|z) = prod over pixels in raster order of P(x_ij | params_ij(x_<ij, z)), P any family whose
// channels at one pixel need nothing from each other beyond its own params (logistic-mixture-rgb
// couples them inside the pixel, in R, G, B order).
class PixelCNNPPDecoder : public Decoder {
 public:
  // c.out_planes is set from p for c.data_channels
  PixelCNNPPDecoder(PixelCNNPPConfig c, std::shared_ptr<Likelihood> p, Generator& g);
  std::string name() const override { return "PixelCNN++ (" + p_->name() + ")"; }
  ag::Var log_prob(const Tensor& x, const ag::Var& z) override;
  // Pixel by pixel in raster order through the incremental PixelCNNPP::generate.
  Tensor sample(const Tensor& z, Generator& g) override;
  // The reference: one whole-image forward pass per pixel ("naive recomputation"); the same draws
  // from g as sample(). pixels >= 0 stops after that many pixels (for timing a few).
  Tensor sample_naive(const Tensor& z, Generator& g, int64_t pixels = -1);
  bool has_mean() const override { return false; }
  Tensor mean(const Tensor& z) override;  // ValueError
  const Likelihood& likelihood() const override { return *p_; }
  PixelCNNPP& network() { return *net_; }
  void set_image_size(int64_t h, int64_t w) { h_ = h, w_ = w; }

 private:
  int64_t batch_of(const Tensor& z) const;
  std::shared_ptr<PixelCNNPP> net_;
  std::shared_ptr<Likelihood> p_;
  int64_t h_ = 32, w_ = 32;
};

}  // namespace gv::vae

// pixelcnn.cpp: the gated PixelCNN and its decoder (pixelcnn.h).
#include "vae/pixelcnn.h"

#include <algorithm>

namespace gv::vae {

using ag::Var;

namespace {

void check_config(const PixelCNNConfig& c) {
  GV_CHECK(c.channels > 0 && c.layers > 0 && c.data_channels > 0 && c.latent >= 0, ValueError,
           "GatedPixelCNN: channels, layers and data_channels must be positive and latent >= 0, got {}, {}, {}, {}",
           c.channels, c.layers, c.data_channels, c.latent);
  GV_CHECK(c.kernel % 2 == 1 && c.first_kernel % 2 == 1 && c.kernel > 0 && c.first_kernel > 0, ValueError,
           "GatedPixelCNN: kernel sizes must be odd, got {} and first {}", c.kernel, c.first_kernel);
}

// tanh(f + c_f) * sigmoid(g + c_g) over pre = [f, g] (B, 2C, H, W); cond (B, 2C) or undefined.
Var gate(const Var& pre, const Var& cond, int64_t C) {
  Var a = pre;
  if (cond.defined()) a = a + ag::reshape(cond, {cond.size(0), 2 * C, 1, 1});
  return ag::tanh(ag::slice(a, 1, 0, C)) * ag::sigmoid(ag::slice(a, 1, C, 2 * C));
}

}  // namespace

GatedPixelCNN::GatedPixelCNN(const PixelCNNConfig& c, Generator& g) : cfg_(c) {
  check_config(cfg_);
  const int64_t C = cfg_.channels;
  for (int64_t l = 0; l < cfg_.layers; ++l) {
    Layer L;
    L.first = l == 0;
    const int64_t k = L.first ? cfg_.first_kernel : cfg_.kernel, in = L.first ? cfg_.data_channels : C;
    L.p = k / 2;
    // vertical: (p+1) x k taps, padded p+1 on top (and bottom, cropped), p left and right: output
    // row r reads input rows r-p-1..r-1, so rows 1..H are the stack itself (row i reads i-p..i) and
    // rows 0..H-1 the same shifted down by one, which is what the horizontal stack may see
    L.vertical = std::make_shared<nn::Conv2d>(in, 2 * C, nn::Size2(L.p + 1, k), g,
                                              nn::ConvOptions{.padding = nn::Size2(L.p + 1, L.p)});
    // horizontal: 1 x (p+1) taps; output column j reads j-p-1..j-1 (mask A: padding p+1) or
    // j-p..j (mask B: padding p)
    L.horizontal = std::make_shared<nn::Conv2d>(in, 2 * C, nn::Size2(1, L.p + 1), g,
                                                nn::ConvOptions{.padding = nn::Size2(0, L.first ? L.p + 1 : L.p)});
    L.v_to_h = std::make_shared<nn::Conv2d>(2 * C, 2 * C, 1, g);
    if (!L.first) L.residual = std::make_shared<nn::Conv2d>(C, C, 1, g);
    if (cfg_.latent > 0) {
      L.cond_v = std::make_shared<nn::Linear>(cfg_.latent, 2 * C, g, false);
      L.cond_h = std::make_shared<nn::Linear>(cfg_.latent, 2 * C, g, false);
    }
    const std::string n = std::to_string(l);
    register_module("layer" + n + "_vertical", L.vertical);
    register_module("layer" + n + "_horizontal", L.horizontal);
    register_module("layer" + n + "_v_to_h", L.v_to_h);
    if (L.residual) register_module("layer" + n + "_residual", L.residual);
    if (L.cond_v) register_module("layer" + n + "_cond_v", L.cond_v), register_module("layer" + n + "_cond_h", L.cond_h);
    layers_.push_back(std::move(L));
  }
  head1_ = register_module("head1", std::make_shared<nn::Conv2d>(C, C, 1, g));
  head2_ = register_module("head2", std::make_shared<nn::Conv2d>(C, cfg_.data_channels, 1, g));
}

Var GatedPixelCNN::forward(const Var& x, const Var& z) {
  GV_CHECK(x.defined() && x.dim() == 4 && x.size(1) == cfg_.data_channels, ShapeError,
           "GatedPixelCNN: expected x of shape (B, {}, H, W), got {}", cfg_.data_channels,
           x.defined() ? shape_str(x.shape()) : std::string("nothing"));
  GV_CHECK(cfg_.latent == 0 || (z.defined() && z.dim() == 2 && z.size(0) == x.size(0) && z.size(1) == cfg_.latent),
           ShapeError, "GatedPixelCNN: expected z of shape ({}, {}), got {}", x.size(0), cfg_.latent,
           z.defined() ? shape_str(z.shape()) : std::string("nothing"));
  const int64_t H = x.size(2), W = x.size(3), C = cfg_.channels;
  Var v = x, h = x;
  for (Layer& L : layers_) {
    const Var vp = (*L.vertical)(v);                    // (B, 2C, H + p + 2, W)
    const Var v_pre = ag::slice(vp, 2, 1, H + 1);        // row i: rows i-p..i of v
    const Var v_above = ag::slice(vp, 2, 0, H);          // row i: rows i-p-1..i-1, strictly above
    const Var h_pre = ag::slice((*L.horizontal)(h), 3, 0, W) + (*L.v_to_h)(v_above);
    const Var cv = L.cond_v ? (*L.cond_v)(z) : Var(), ch = L.cond_h ? (*L.cond_h)(z) : Var();
    v = gate(v_pre, cv, C);
    const Var hg = gate(h_pre, ch, C);
    h = L.first ? hg : h + (*L.residual)(hg);
  }
  return (*head2_)(ag::relu((*head1_)(ag::relu(h))));
}

PixelCNNDecoder::PixelCNNDecoder(const PixelCNNConfig& c, Generator& g)
    : net_(std::make_shared<GatedPixelCNN>(c, g)), p_(bernoulli()) {
  GV_CHECK(c.data_channels == 1, ValueError, "PixelCNNDecoder: binary images of one channel, got {} channels",
           c.data_channels);
  register_module("pixelcnn", net_);
}

Var PixelCNNDecoder::log_prob(const Tensor& x, const Var& z) { return p_->log_prob(x, net_->forward(Var(x), z)); }

int64_t GatedPixelCNN::rows_of_reach() const {
  int64_t r = 1;  // the vertical stack reaches the horizontal one shifted down one row
  for (const Layer& L : layers_) r += L.p;
  return r;
}

Tensor PixelCNNDecoder::draw_pixels(const Tensor& z, Generator& g, bool crop) {
  ag::NoGradGuard no_grad;
  GV_CHECK(z.defined() && z.dim() == 2, ShapeError, "{}: expected z of shape (B, Z), got {}", name(),
           z.defined() ? shape_str(z.shape()) : std::string("nothing"));
  const int64_t B = z.size(0), reach = net_->rows_of_reach();
  Tensor x = Tensor::zeros({B, 1, h_, w_}, z.dtype(), z.device());
  const Var zv(z);
  for (int64_t i = 0; i < h_; ++i) {
    // row i depends on rows i-reach..i only: the rows above cannot change it, so they are left out
    const int64_t top = crop ? std::max<int64_t>(0, i - reach) : 0;
    for (int64_t j = 0; j < w_; ++j) {
      // pixel (i, j) depends only on the pixels before it, all drawn already
      const Var rows(x.slice(2, top, crop ? i + 1 : h_).contiguous());
      const Tensor logit = net_->forward(rows, zv).data().slice(2, i - top, i - top + 1).slice(3, j, j + 1).contiguous();
      x.slice(2, i, i + 1).slice(3, j, j + 1).copy_(p_->sample(logit, g));  // (B, 1, 1, 1)
    }
  }
  return x;
}

Tensor PixelCNNDecoder::sample(const Tensor& z, Generator& g) { return draw_pixels(z, g, true); }
Tensor PixelCNNDecoder::sample_naive(const Tensor& z, Generator& g) { return draw_pixels(z, g, false); }

Tensor PixelCNNDecoder::mean(const Tensor&) {
  GV_THROW(ValueError, "{}: E[x|z] has no closed form (the pixels depend on each other); draw samples instead", name());
}

}  // namespace gv::vae

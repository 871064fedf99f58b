// pixelcnn.cpp: the gated PixelCNN and its decoder (pixelcnn.h).
#include "vae/pixelcnn.h"

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

// z must be (B, Z) for a network conditioned on Z > 0 latents (latent 0: z is ignored)
void check_z(const char* op, const Tensor& z, int64_t B, int64_t latent) {
  GV_CHECK(latent == 0 || (z.defined() && z.dim() == 2 && z.size(0) == B && z.size(1) == latent), ShapeError,
           "{}: expected z of shape ({}, {}), got {}", op, B, latent,
           z.defined() ? shape_str(z.shape()) : std::string("nothing"));
}

// tanh(f + c_f) * sigmoid(g + c_g) over pre = [f, g] (B, 2C, H, W); cond (B, 2C) or undefined.
Var gate(const Var& pre, const Var& cond, int64_t C) {
  Var a = pre;
  if (cond.defined()) a = a + ag::reshape(cond, {cond.size(0), 2 * C, 1, 1});
  return ag::gate(a, 1);
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
  check_z("GatedPixelCNN", z.defined() ? z.data() : Tensor(), x.size(0), cfg_.latent);
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

namespace {

// a 1x1 convolution's weight (O, I, 1, 1) as the (O, I) matrix of a linear map
Tensor as_matrix(const nn::Conv2d& c) { return c.weight().data().view({c.weight().size(0), c.weight().size(1)}); }

}  // namespace

Tensor GatedPixelCNN::generate(const Tensor& z, int64_t B, int64_t H, int64_t W, const PixelFn& pixel) {
  ag::NoGradGuard no_grad;
  const Tensor& w0 = layers_.front().vertical->weight().data();
  const DType dt = w0.dtype();
  const Device dev = w0.device();
  GV_CHECK(B > 0 && H > 0 && W > 0, ShapeError, "GatedPixelCNN::generate: batch, H and W must be positive, got {}, {}, {}",
           B, H, W);
  check_z("GatedPixelCNN::generate", z, B, cfg_.latent);
  const int64_t C = cfg_.channels, D = cfg_.data_channels, nl = int64_t(layers_.size());

  // Per layer, what stays fixed for the whole image and the two input buffers:
  //   vbuf: the vertical stack's input (B, C_in, p+1+H, W), p+1 zero rows on top; image row r is
  //         buffer row p+1+r, so buffer rows [i, i+p+1) are image rows i-p-1..i-1 (zeros above 0);
  //   hbuf: the current row of the horizontal stack's input, channels last (B, pad+W, C_in), with
  //         pad zero columns on the left (p+1 for mask A, p for mask B), so that the taps of pixel
  //         j are buffer columns [j, j+p+1), one row of a matrix product;
  //   hv:   the horizontal pre-activation's part that does not change along the row (B, W, 2C): the
  //         1x1 link from the vertical stack above, both biases and the z term.
  struct State {
    Tensor vbuf, hbuf, hv, wh, wv2h, wres, bres, hconst, cond_v;
    int64_t p = 0, pad = 0;
  };
  std::vector<State> st(static_cast<size_t>(nl));
  for (int64_t l = 0; l < nl; ++l) {
    const Layer& L = layers_[size_t(l)];
    State& s = st[size_t(l)];
    const int64_t cin = L.first ? D : C;
    s.p = L.p;
    s.pad = L.first ? L.p + 1 : L.p;
    s.vbuf = Tensor::zeros({B, cin, L.p + 1 + H, W}, dt, dev);
    s.hbuf = Tensor::zeros({B, s.pad + W, cin}, dt, dev);
    // (2C, C_in, 1, p+1) -> (2C, p+1, C_in): the taps in the order of hbuf's columns and channels
    s.wh = L.horizontal->weight().data().select(2, 0).permute({0, 2, 1}).contiguous().view({2 * C, (L.p + 1) * cin});
    s.wv2h = as_matrix(*L.v_to_h);
    s.hconst = L.horizontal->bias().data() + L.v_to_h->bias().data();  // (2C)
    if (L.cond_h) s.hconst = (linear(z, L.cond_h->weight().data(), Tensor()) + s.hconst).unsqueeze(1);  // (B, 1, 2C)
    if (L.cond_v) s.cond_v = linear(z, L.cond_v->weight().data(), Tensor()).view({B, 2 * C, 1, 1});
    if (L.residual) s.wres = as_matrix(*L.residual), s.bres = L.residual->bias().data();
  }
  const Tensor wh1 = as_matrix(*head1_), bh1 = head1_->bias().data();
  const Tensor wh2 = as_matrix(*head2_), bh2 = head2_->bias().data();

  Tensor x = Tensor::zeros({B, D, H, W}, dt, dev);
  for (int64_t i = 0; i < H; ++i) {
    // Row i's vertical inputs are complete (rows < i are drawn): each layer's vertical stack at row
    // i-1, which is also what the horizontal stack of row i sees from above (forward's v_above).
    for (int64_t l = 0; l < nl; ++l) {
      State& s = st[size_t(l)];
      const Layer& L = layers_[size_t(l)];
      Conv2dParams cp;
      cp.pad_w = s.p;
      const Tensor vp = conv2d(s.vbuf.slice(2, i, i + s.p + 1), L.vertical->weight().data(),
                               L.vertical->bias().data(), cp);  // (B, 2C, 1, W)
      if (i > 0 && l + 1 < nl) {  // v of row i-1 feeds the next layer (row -1 is only padding)
        const Tensor pre = s.cond_v.defined() ? vp + s.cond_v : vp;
        State& n = st[size_t(l + 1)];
        n.vbuf.slice(2, n.p + i, n.p + i + 1).copy_(gv::gate(pre, 1));
      }
      s.hv = linear(vp.view({B, 2 * C, W}).transpose(1, 2), s.wv2h, Tensor()) + s.hconst;  // (B, W, 2C)
    }
    for (int64_t j = 0; j < W; ++j) {
      Tensor h;  // the horizontal stack at (i, j), layer by layer: (B, C)
      for (int64_t l = 0; l < nl; ++l) {
        State& s = st[size_t(l)];
        const Tensor taps = s.hbuf.slice(1, j, j + s.p + 1).reshape({B, s.wh.size(1)});
        const Tensor hg = gv::gate(linear(taps, s.wh, Tensor()) + s.hv.select(1, j), 1);
        h = s.wres.defined() ? s.hbuf.select(1, s.pad + j) + linear(hg, s.wres, s.bres) : hg;
        if (l + 1 < nl) st[size_t(l + 1)].hbuf.select(1, st[size_t(l + 1)].pad + j).copy_(h);
      }
      const Tensor logits = linear(relu(linear(relu(h), wh1, bh1)), wh2, bh2);  // (B, D)
      const Tensor v = pixel(i, j, logits);
      GV_CHECK(v.defined() && v.shape() == (Shape{B, D}), ShapeError,
               "GatedPixelCNN::generate: the pixel function must return ({}, {}), got {}", B, D,
               v.defined() ? shape_str(v.shape()) : std::string("nothing"));
      st[0].hbuf.select(1, st[0].pad + j).copy_(v);
      x.select(3, j).select(2, i).copy_(v);
    }
    st[0].vbuf.slice(2, st[0].p + 1 + i, st[0].p + 2 + i).copy_(x.slice(2, i, i + 1));
  }
  return x;
}

int64_t PixelCNNDecoder::batch_of(const Tensor& z) const {
  GV_CHECK(z.defined() && z.dim() == 2, ShapeError, "{}: expected z of shape (B, Z), got {}", name(),
           z.defined() ? shape_str(z.shape()) : std::string("nothing"));
  return z.size(0);
}

Tensor PixelCNNDecoder::sample(const Tensor& z, Generator& g) {
  const int64_t B = batch_of(z);
  return net_->generate(z, B, h_, w_, [&](int64_t, int64_t, const Tensor& logits) {
    return p_->sample(logits.view({B, 1, 1, 1}), g).view({B, 1});  // the draws of sample_naive, in its order
  });
}

Tensor PixelCNNDecoder::sample_naive(const Tensor& z, Generator& g, int64_t pixels) {
  ag::NoGradGuard no_grad;
  const int64_t B = batch_of(z);
  Tensor x = Tensor::zeros({B, 1, h_, w_}, z.dtype(), z.device());
  const Var zv(z);
  if (pixels < 0) pixels = h_ * w_;
  for (int64_t i = 0; i < h_; ++i)
    for (int64_t j = 0; j < w_ && i * w_ + j < pixels; ++j) {
      // pixel (i, j) depends only on the pixels before it, all drawn already
      const Tensor logit = net_->forward(Var(x), zv).data().slice(2, i, i + 1).slice(3, j, j + 1).contiguous();
      x.slice(2, i, i + 1).slice(3, j, j + 1).copy_(p_->sample(logit, g));  // (B, 1, 1, 1)
    }
  return x;
}

Tensor PixelCNNDecoder::mean(const Tensor&) {
  GV_THROW(ValueError, "{}: E[x|z] has no closed form (the pixels depend on each other); draw samples instead", name());
}

}  // namespace gv::vae

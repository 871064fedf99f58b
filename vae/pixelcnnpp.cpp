// pixelcnnpp.cpp: the PixelCNN++-style network as a graph of layers (pixelcnnpp.h), evaluated
// whole for training and position by position, on demand, for sampling.
#include "vae/pixelcnnpp.h"

#include <algorithm>

namespace gv::vae {

using ag::Var;

// What every layer of one evaluation shares: the z terms of the gated blocks (B, 2F) and the
// dropout stream (null: no dropout).
struct PixelCNNPP::Ctx {
  std::vector<Var> cond;
  Generator* dropout_g = nullptr;
  Var dropout(const Var& v, double p) {
    if (dropout_g == nullptr || p <= 0) return v;
    Tensor keep = bernoulli(Tensor::full(v.shape(), 1 - p, v.dtype(), v.data().device()), *dropout_g);
    return v * Var(keep / (1 - p));
  }
};

namespace {

Var concat_elu(const Var& v) { return ag::elu(ag::concat({v, -v}, 1)); }

void check_config(const PixelCNNPPConfig& c) {
  GV_CHECK(c.filters > 0 && c.blocks > 0 && c.resolutions > 0 && c.data_channels > 0 && c.out_planes > 0 &&
               c.latent >= 0,
           ValueError,
           "PixelCNNPP: filters, blocks, resolutions, data_channels and out_planes must be positive and latent >= 0, "
           "got {}, {}, {}, {}, {}, {}",
           c.filters, c.blocks, c.resolutions, c.data_channels, c.out_planes, c.latent);
  GV_CHECK(c.dropout >= 0 && c.dropout < 1, ValueError, "PixelCNNPP: dropout must be in [0, 1), got {}", c.dropout);
}

}  // namespace

int PixelCNNPP::add_node(Node n) {
  nodes_.push_back(std::move(n));
  return int(nodes_.size()) - 1;
}

int PixelCNNPP::shifted_conv(int in, int64_t out, int64_t kh, int64_t kw, int64_t stride, int64_t pad_top,
                             int64_t pad_left, const std::string& name, Generator& g) {
  Node n;
  n.kind = Kind::conv;
  n.in = {in};
  n.level = nodes_[size_t(in)].level + (stride == 2 ? 1 : 0);
  n.channels = out;
  n.kh = kh, n.kw = kw, n.stride = stride, n.pad_top = pad_top, n.pad_left = pad_left;
  n.conv = register_module(name, std::make_shared<nn::Conv2d>(nodes_[size_t(in)].channels, out, nn::Size2(kh, kw), g,
                                                              nn::ConvOptions{.stride = stride}));
  return add_node(std::move(n));
}

int PixelCNNPP::gated_block(int x, int a, bool down_right, const std::string& name, Generator& g) {
  const int64_t F = cfg_.filters, kw = down_right ? 2 : 3;
  const int level = nodes_[size_t(x)].level;
  auto point = [&](std::vector<int> in, int64_t channels, auto fn) {
    Node n;
    n.kind = Kind::point;
    n.in = std::move(in);
    n.level = level;
    n.channels = channels;
    n.fn = fn;
    return add_node(std::move(n));
  };
  int c = shifted_conv(point({x}, 2 * F, [](const std::vector<Var>& v, Ctx&) { return concat_elu(v[0]); }), F, 2, kw,
                       1, 1, 1, name + "_conv1", g);
  if (a >= 0) {
    auto nin = register_module(name + "_nin", std::make_shared<nn::Conv2d>(2 * nodes_[size_t(a)].channels, F, 1, g));
    c = point({c, a}, F, [nin](const std::vector<Var>& v, Ctx&) { return v[0] + (*nin)(concat_elu(v[1])); });
  }
  const double p = cfg_.dropout;
  c = point({c}, 2 * F, [p](const std::vector<Var>& v, Ctx& ctx) { return ctx.dropout(concat_elu(v[0]), p); });
  c = shifted_conv(c, 2 * F, 2, kw, 1, 1, 1, name + "_conv2", g);
  const int id = int(cond_.size());
  if (cfg_.latent > 0)
    cond_.push_back(register_module(name + "_cond", std::make_shared<nn::Linear>(cfg_.latent, 2 * F, g, false)));
  return point({x, c}, F, [id, F](const std::vector<Var>& v, Ctx& ctx) {
    Var h = v[1];
    if (!ctx.cond.empty()) h = h + ag::reshape(ctx.cond[size_t(id)], {h.size(0), 2 * F, 1, 1});
    auto halves = ag::chunk(h, 2, 1);
    return v[0] + halves[0] * ag::sigmoid(halves[1]);
  });
}

PixelCNNPP::PixelCNNPP(const PixelCNNPPConfig& c, Generator& g) : cfg_(c) {
  check_config(cfg_);
  const int64_t F = cfg_.filters, R = cfg_.resolutions, nb = cfg_.blocks;
  Node input;
  input.kind = Kind::input;
  input.channels = cfg_.data_channels + 1;  // x and a channel of ones
  const int x = add_node(std::move(input));
  auto add = [&](int a, int b) {
    Node n;
    n.in = {a, b};
    n.level = nodes_[size_t(a)].level;
    n.channels = F;
    n.fn = [](const std::vector<Var>& v, Ctx&) { return v[0] + v[1]; };
    return add_node(std::move(n));
  };
  // u reads rows i-2..i-1 (a 2 x 3 conv shifted down one row); ul the row above (1 x 3, shifted
  // down) plus the column to the left (2 x 1, shifted right)
  int u = shifted_conv(x, F, 2, 3, 1, 2, 1, "u_in", g);
  int ul = add(shifted_conv(x, F, 1, 3, 1, 1, 1, "ul_in_row", g), shifted_conv(x, F, 2, 1, 1, 1, 1, "ul_in_col", g));
  std::vector<int> us = {u}, uls = {ul};
  for (int64_t l = 0; l < R; ++l) {  // up pass, fine to coarse
    for (int64_t b = 0; b < nb; ++b) {
      const std::string n = "up" + std::to_string(l) + "_" + std::to_string(b);
      u = gated_block(u, -1, false, n + "_u", g);
      ul = gated_block(ul, u, true, n + "_ul", g);
      us.push_back(u), uls.push_back(ul);
    }
    if (l + 1 < R) {
      const std::string n = "down" + std::to_string(l);
      u = shifted_conv(u, F, 2, 3, 2, 1, 1, n + "_u", g);
      ul = shifted_conv(ul, F, 2, 2, 2, 1, 1, n + "_ul", g);
      us.push_back(u), uls.push_back(ul);
    }
  }
  u = us.back(), ul = uls.back();
  us.pop_back(), uls.pop_back();
  for (int64_t l = R - 1; l >= 0; --l) {  // down pass, coarse to fine, reading the stored outputs
    const int64_t blocks = l == R - 1 ? nb : nb + 1;
    for (int64_t b = 0; b < blocks; ++b) {
      const std::string n = "dn" + std::to_string(l) + "_" + std::to_string(b);
      u = gated_block(u, us.back(), false, n + "_u", g);
      Node cat;
      cat.in = {u, uls.back()};
      cat.level = nodes_[size_t(u)].level;
      cat.channels = 2 * F;
      cat.fn = [](const std::vector<Var>& v, Ctx&) { return ag::concat({v[0], v[1]}, 1); };
      ul = gated_block(ul, add_node(std::move(cat)), true, n + "_ul", g);
      us.pop_back(), uls.pop_back();
    }
    if (l > 0) {
      for (int* s : {&u, &ul}) {
        Node n;
        n.kind = Kind::convt;
        n.in = {*s};
        n.level = int(l) - 1;
        n.channels = F;
        n.convt = register_module("upsample" + std::to_string(l) + (s == &u ? "_u" : "_ul"),
                                  std::make_shared<nn::ConvTranspose2d>(F, F, 2, g, nn::ConvOptions{.stride = 2}));
        *s = add_node(std::move(n));
      }
    }
  }
  GV_CHECK(us.empty() && uls.empty(), Error, "PixelCNNPP: {} skips left unused", us.size());
  auto head = register_module("head", std::make_shared<nn::Conv2d>(F, cfg_.out_planes, 1, g));
  Node out;
  out.in = {ul};
  out.channels = cfg_.out_planes;
  out.fn = [head](const std::vector<Var>& v, Ctx&) { return (*head)(ag::elu(v[0])); };
  out_ = add_node(std::move(out));
  // the dropout stream's (seed, offset), a buffer so that checkpoints carry it
  const uint64_t seed = uint64_t(uniform({1}, g, 0, 1, DType::f64).item() * 9007199254740992.0);
  register_buffer("dropout_stream", Tensor::from_vector(std::vector<int64_t>{int64_t(seed), 0}, {2}));
}

void PixelCNNPP::check_inputs(const char* op, int64_t B, int64_t H, int64_t W, const Tensor& z) const {
  const int64_t m = int64_t(1) << (cfg_.resolutions - 1);
  GV_CHECK(B > 0 && H > 0 && W > 0 && H % m == 0 && W % m == 0, ShapeError,
           "{}: batch {} and image {}x{}: H and W must be positive multiples of {} ({} resolutions)", op, B, H, W, m,
           cfg_.resolutions);
  GV_CHECK(cfg_.latent == 0 || (z.defined() && z.dim() == 2 && z.size(0) == B && z.size(1) == cfg_.latent),
           ShapeError, "{}: expected z of shape ({}, {}), got {}", op, B, cfg_.latent,
           z.defined() ? shape_str(z.shape()) : std::string("nothing"));
}

int64_t PixelCNNPP::positions_per_pass(int64_t H, int64_t W) const {
  int64_t n = 0;
  for (const Node& nd : nodes_)
    if (nd.kind != Kind::input) n += (H >> nd.level) * (W >> nd.level);
  return n;
}

// The whole image: zero padding by the conv's symmetric padding, then the rows and columns that
// the shifted taps want (output (i, j) reads input rows i*s - pad_top + [0, kh)).
Var PixelCNNPP::run_conv(const Node& n, const Var& x) const {
  const int64_t H = x.size(2), W = x.size(3), s = n.stride, Ho = H / s, Wo = W / s;
  auto pad = [&](int64_t lead, int64_t k, int64_t in, int64_t out, int64_t& offset) {
    const int64_t trail = std::max<int64_t>(0, (out - 1) * s - lead + k - in);
    const int64_t p = std::max(lead, trail);
    GV_CHECK((p - lead) % s == 0, Error, "PixelCNNPP: padding {} for lead {} at stride {}", p, lead, s);
    offset = (p - lead) / s;
    return p;
  };
  int64_t orow = 0, ocol = 0;
  Conv2dParams cp;
  cp.stride_h = cp.stride_w = s;
  cp.pad_h = pad(n.pad_top, n.kh, H, Ho, orow);
  cp.pad_w = pad(n.pad_left, n.kw, W, Wo, ocol);
  Var y = ag::conv2d(x, n.conv->weight(), n.conv->bias(), cp);
  return ag::slice(ag::slice(y, 2, orow, orow + Ho), 3, ocol, ocol + Wo);
}

Var PixelCNNPP::forward(const Var& x, const Var& z) {
  GV_CHECK(x.defined() && x.dim() == 4 && x.size(1) == cfg_.data_channels, ShapeError,
           "PixelCNNPP: expected x of shape (B, {}, H, W), got {}", cfg_.data_channels,
           x.defined() ? shape_str(x.shape()) : std::string("nothing"));
  const int64_t B = x.size(0), H = x.size(2), W = x.size(3);
  check_inputs("PixelCNNPP", B, H, W, z.defined() ? z.data() : Tensor());
  Ctx ctx;
  for (auto& c : cond_) ctx.cond.push_back((*c)(z));
  Generator drop;
  const Tensor& state = buffer("dropout_stream");
  const bool dropping = is_training() && cfg_.dropout > 0;
  if (dropping) {
    drop.set_state(uint64_t(state.data<int64_t>()[0]), uint64_t(state.data<int64_t>()[1]));
    ctx.dropout_g = &drop;
  }
  std::vector<Var> val(nodes_.size());
  for (size_t i = 0; i < nodes_.size(); ++i) {
    const Node& n = nodes_[i];
    switch (n.kind) {
      case Kind::input:
        val[i] = ag::concat({x, Var(Tensor::ones({B, 1, H, W}, x.dtype(), x.data().device()))}, 1);
        break;
      case Kind::conv: val[i] = run_conv(n, val[size_t(n.in[0])]); break;
      case Kind::convt: val[i] = (*n.convt)(val[size_t(n.in[0])]); break;
      case Kind::point: {
        std::vector<Var> in;
        for (int k : n.in) in.push_back(val[size_t(k)]);
        val[i] = n.fn(in, ctx);
        break;
      }
    }
  }
  if (dropping)
    set_buffer("dropout_stream", Tensor::from_vector(std::vector<int64_t>{int64_t(drop.seed()), int64_t(drop.offset())}, {2}));
  return val[size_t(out_)];
}

Tensor PixelCNNPP::generate(const Tensor& z, int64_t B, int64_t H, int64_t W, const PixelFn& pixel) {
  ag::NoGradGuard no_grad;
  check_inputs("PixelCNNPP::generate", B, H, W, z);
  const Tensor& w0 = nodes_[1].conv->weight().data();
  const DType dt = w0.dtype();
  const Device dev = w0.device();
  const int64_t C = cfg_.data_channels;
  Ctx ctx;
  for (auto& c : cond_) ctx.cond.push_back((*c)(Var(z)));
  // every layer's output over the image, and which positions hold their final value
  std::vector<Tensor> buf;
  std::vector<std::vector<uint8_t>> done;
  for (const Node& n : nodes_) {
    buf.push_back(Tensor::zeros({B, n.channels, H >> n.level, W >> n.level}, dt, dev));
    done.emplace_back(size_t((H >> n.level) * (W >> n.level)), 0);
  }
  buf[0].slice(1, C, C + 1).fill_(1.0);  // the constant channel; x's channels are written as drawn
  int64_t positions = 0;

  // Computes node k at rows [r0, r1), columns [c0, c1) (clipped), after the inputs it reads there.
  std::function<void(int, int64_t, int64_t, int64_t, int64_t)> ensure = [&](int k, int64_t r0, int64_t r1,
                                                                             int64_t c0, int64_t c1) {
    const Node& n = nodes_[size_t(k)];
    const int64_t Hl = H >> n.level, Wl = W >> n.level;
    r0 = std::max<int64_t>(r0, 0), c0 = std::max<int64_t>(c0, 0), r1 = std::min(r1, Hl), c1 = std::min(c1, Wl);
    int64_t a0 = r1, a1 = r0, b0 = c1, b1 = c0;  // the bounding box of what is not done yet
    for (int64_t r = r0; r < r1; ++r)
      for (int64_t c = c0; c < c1; ++c)
        if (!done[size_t(k)][size_t(r * Wl + c)]) a0 = std::min(a0, r), a1 = std::max(a1, r + 1), b0 = std::min(b0, c), b1 = std::max(b1, c + 1);
    if (a0 >= a1) return;
    GV_CHECK(n.kind != Kind::input, Error,
             "PixelCNNPP::generate: a layer read input pixel ({}, {}) before it was drawn (the network is not causal)",
             a0, b0);
    Tensor y;
    if (n.kind == Kind::conv) {
      const int64_t s = n.stride, i0 = a0 * s - n.pad_top, i1 = (a1 - 1) * s - n.pad_top + n.kh;
      const int64_t j0 = b0 * s - n.pad_left, j1 = (b1 - 1) * s - n.pad_left + n.kw;
      const int in = n.in[0];
      ensure(in, i0, i1, j0, j1);
      const Tensor& src = buf[size_t(in)];
      const int64_t Hi = src.size(2), Wi = src.size(3);
      const int64_t v0 = std::max<int64_t>(i0, 0), v1 = std::min(i1, Hi), h0 = std::max<int64_t>(j0, 0),
                    h1 = std::min(j1, Wi);
      Tensor patch = src.slice(2, v0, v1).slice(3, h0, h1);  // a view when the taps lie inside the image
      if (v0 != i0 || v1 != i1 || h0 != j0 || h1 != j1) {   // else zeros outside it
        Tensor padded = Tensor::zeros({B, src.size(1), i1 - i0, j1 - j0}, dt, dev);
        if (v0 < v1 && h0 < h1) padded.slice(2, v0 - i0, v1 - i0).slice(3, h0 - j0, h1 - j0).copy_(patch);
        patch = padded;
      }
      Conv2dParams cp;
      cp.stride_h = cp.stride_w = s;
      y = conv2d(patch, n.conv->weight().data(), n.conv->bias().data(), cp);
    } else if (n.kind == Kind::convt) {
      const int64_t i0 = a0 / 2, i1 = (a1 - 1) / 2 + 1, j0 = b0 / 2, j1 = (b1 - 1) / 2 + 1;
      ensure(n.in[0], i0, i1, j0, j1);
      Conv2dParams cp;
      cp.stride_h = cp.stride_w = 2;
      y = conv_transpose2d(buf[size_t(n.in[0])].slice(2, i0, i1).slice(3, j0, j1), n.convt->weight().data(),
                           n.convt->bias().data(), cp);
      y = y.slice(2, a0 - 2 * i0, a1 - 2 * i0).slice(3, b0 - 2 * j0, b1 - 2 * j0);
    } else {
      std::vector<Var> in;
      for (int i : n.in) {
        ensure(i, a0, a1, b0, b1);
        in.push_back(Var(buf[size_t(i)].slice(2, a0, a1).slice(3, b0, b1)));
      }
      y = n.fn(in, ctx).data();
    }
    buf[size_t(k)].slice(2, a0, a1).slice(3, b0, b1).copy_(y);
    for (int64_t r = a0; r < a1; ++r)
      for (int64_t c = b0; c < b1; ++c) done[size_t(k)][size_t(r * Wl + c)] = 1;
    positions += (a1 - a0) * (b1 - b0);
  };

  for (int64_t i = 0; i < H; ++i)
    for (int64_t j = 0; j < W; ++j) {
      ensure(out_, i, i + 1, j, j + 1);
      const Tensor params = buf[size_t(out_)].select(3, j).select(2, i).contiguous();  // (B, P)
      const Tensor v = pixel(i, j, params);
      GV_CHECK(v.defined() && v.shape() == (Shape{B, C}), ShapeError,
               "PixelCNNPP::generate: the pixel function must return ({}, {}), got {}", B, C,
               v.defined() ? shape_str(v.shape()) : std::string("nothing"));
      buf[0].slice(1, 0, C).select(3, j).select(2, i).copy_(v);
      done[0][size_t(i * W + j)] = 1;
    }
  last_positions_ = positions;
  return buf[0].slice(1, 0, C).contiguous();  // the input layer's buffer holds the image drawn
}

// ---- the decoder ------------------------------------------------------------------------------------

namespace {
PixelCNNPPConfig with_planes(PixelCNNPPConfig c, const Likelihood* p) {
  GV_CHECK(p != nullptr, ValueError, "PixelCNNPPDecoder: needs a likelihood family");
  c.out_planes = p->param_planes(c.data_channels);
  return c;
}
}  // namespace

PixelCNNPPDecoder::PixelCNNPPDecoder(PixelCNNPPConfig c, std::shared_ptr<Likelihood> p, Generator& g)
    : net_(std::make_shared<PixelCNNPP>(with_planes(c, p.get()), g)), p_(std::move(p)) {
  register_module("pixelcnnpp", net_);
}

Var PixelCNNPPDecoder::log_prob(const Tensor& x, const Var& z) {
  return p_->log_prob(x, net_->forward(Var(x.to(net_->dtype())), z));
}

int64_t PixelCNNPPDecoder::batch_of(const Tensor& z) const {
  GV_CHECK(z.defined() && z.dim() == 2, ShapeError, "{}: expected z of shape (B, Z), got {}", name(),
           z.defined() ? shape_str(z.shape()) : std::string("nothing"));
  return z.size(0);
}

Tensor PixelCNNPPDecoder::sample(const Tensor& z, Generator& g) {
  const int64_t B = batch_of(z), C = net_->config().data_channels, P = net_->config().out_planes;
  return net_->generate(z, B, h_, w_, [&](int64_t, int64_t, const Tensor& params) {
    return p_->sample(params.view({B, P, 1, 1}), g).view({B, C});
  });
}

Tensor PixelCNNPPDecoder::sample_naive(const Tensor& z, Generator& g, int64_t pixels) {
  ag::NoGradGuard no_grad;
  const int64_t B = batch_of(z), C = net_->config().data_channels;
  const bool was_training = net_->is_training();
  net_->eval();  // no dropout, as in generate()
  Tensor x = Tensor::zeros({B, C, h_, w_}, net_->dtype(), z.device());
  const Var zv(z);
  if (pixels < 0) pixels = h_ * w_;
  for (int64_t i = 0; i < h_; ++i)
    for (int64_t j = 0; j < w_ && i * w_ + j < pixels; ++j) {
      const Tensor params = net_->forward(Var(x), zv).data().slice(2, i, i + 1).slice(3, j, j + 1).contiguous();
      x.slice(2, i, i + 1).slice(3, j, j + 1).copy_(p_->sample(params, g));
    }
  net_->train(was_training);
  return x;
}

Tensor PixelCNNPPDecoder::mean(const Tensor&) {
  GV_THROW(ValueError, "{}: E[x|z] has no closed form (the pixels depend on each other); draw samples instead", name());
}

}  // namespace gv::vae

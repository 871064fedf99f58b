// model.cpp: the VAE's encoder q(z|x) = N(mu(x), diag(exp(logvar(x)))) and decoder x -> the
// parameters of p(x|z), built as two Sequentials ("encoder", "decoder") for the "mlp" (benchmark W1)
// and "conv" (benchmark W2) architectures described in model.h.
#include "vae/model.h"

#include <algorithm>
#include <cmath>

#include "vae/pixelcnn.h"
#include "vae/pixelcnnpp.h"

namespace gv::vae {

using ag::Var;
using nn::Layer;
using nn::Sequential;

namespace {

std::shared_ptr<Layer> activation(const std::string& name) {
  if (name == "softplus") return std::make_shared<nn::Softplus>();
  if (name == "relu") return std::make_shared<nn::ReLU>();
  if (name == "leaky_relu") return std::make_shared<nn::LeakyReLU>(0.01);
  if (name == "tanh") return std::make_shared<nn::Tanh>();
  GV_THROW(ValueError, "VAE: unknown activation '{}'; known: softplus, relu, leaky_relu, tanh", name);
}

void check_config(const ModelConfig& c) {
  GV_CHECK(c.arch == "mlp" || c.arch == "conv" || c.arch == "conv3", ValueError,
           "VAE: unknown arch '{}'; known: mlp, conv, conv3", c.arch);
  GV_CHECK(c.decoder == "factorized" || c.decoder == "pixelcnn" || c.decoder == "pixelcnn++", ValueError,
           "VAE: unknown decoder '{}'; known: factorized, pixelcnn, pixelcnn++", c.decoder);
  GV_CHECK(c.sigma_floor >= 0 && std::isfinite(c.sigma_floor), ValueError,
           "VAE: sigma_floor must be >= 0 and finite, got {}", c.sigma_floor);
  GV_CHECK(!c.data_shape.empty(), ShapeError, "VAE: data_shape is empty; expected (C, H, W) or (D)");
  for (int64_t d : c.data_shape)
    GV_CHECK(d > 0, ShapeError, "VAE: data_shape {} has a non-positive size", shape_str(c.data_shape));
  GV_CHECK(c.latent > 0, ValueError, "VAE: latent size must be positive, got {}", c.latent);
  if (c.arch == "mlp") {
    GV_CHECK(c.hidden > 0, ValueError, "VAE(mlp): hidden units must be positive, got {}", c.hidden);
    GV_CHECK(c.hidden_layers >= 0, ValueError, "VAE(mlp): hidden_layers must be >= 0, got {}", c.hidden_layers);
  } else {
    const int64_t m = c.arch == "conv3" ? 8 : 4;
    GV_CHECK(c.data_shape.size() == 3, ShapeError, "VAE({}): data_shape must be (C, H, W), got {}", c.arch,
             shape_str(c.data_shape));
    GV_CHECK(c.data_shape[1] % m == 0 && c.data_shape[2] % m == 0, ShapeError,
             "VAE({}): height and width must be divisible by {} (stride-2 convolutions), got {}x{}; "
             "crop or pad the images, or use arch 'mlp'",
             c.arch, m, c.data_shape[1], c.data_shape[2]);
  }
}

// The decoder's output shape per example: (k*C, H, W) (or (k*D) for vector data).
Shape params_shape(const ModelConfig& c, const Likelihood& p) {
  Shape s = c.data_shape;
  s[0] = p.param_planes(s[0]);
  return s;
}

}  // namespace

VAE::VAE(const ModelConfig& cfg, std::shared_ptr<Likelihood> p, Generator& g) : cfg_(cfg) {
  check_config(cfg_);
  GV_CHECK(p != nullptr, ValueError, "VAE: needs a likelihood family for its decoder");
  const int64_t Z = cfg_.latent, D = shape_numel(cfg_.data_shape);
  const Shape out_shape = params_shape(cfg_, *p);
  auto enc = std::make_shared<Sequential>();
  auto dec = std::make_shared<Sequential>();
  if (cfg_.arch == "mlp") {
    // encoder: (B, C, H, W) -> (B, D) -> hidden_layers x (Linear + act) -> (B, 2Z)
    enc->add(std::make_shared<nn::Flatten>());
    int64_t in = D;
    for (int64_t l = 0; l < cfg_.hidden_layers; ++l, in = cfg_.hidden) {
      enc->add(std::make_shared<nn::Linear>(in, cfg_.hidden, g));
      enc->add(activation(cfg_.activation));
    }
    enc->add(std::make_shared<nn::Linear>(in, 2 * Z, g));
    // decoder: (B, Z) -> hidden_layers x (Linear + act) -> (B, k*D) -> (B, k*C, H, W)
    in = Z;
    for (int64_t l = 0; l < cfg_.hidden_layers; ++l, in = cfg_.hidden) {
      dec->add(std::make_shared<nn::Linear>(in, cfg_.hidden, g));
      dec->add(activation(cfg_.activation));
    }
    dec->add(std::make_shared<nn::Linear>(in, shape_numel(out_shape), g));
    dec->add(std::make_shared<nn::Reshape>(out_shape));
  } else if (cfg_.arch == "conv3") {
    const int64_t C = cfg_.data_shape[0], H8 = cfg_.data_shape[1] / 8, W8 = cfg_.data_shape[2] / 8;
    const nn::ConvOptions down{.stride = 2, .padding = 1};
    int64_t in = C;
    for (int64_t ch : {64, 128, 256}) {
      enc->add(std::make_shared<nn::Conv2d>(in, ch, 4, g, down));
      enc->add(std::make_shared<nn::LeakyReLU>(0.1));
      in = ch;
    }
    enc->add(std::make_shared<nn::Flatten>());
    enc->add(std::make_shared<nn::Linear>(256 * H8 * W8, 512, g));
    enc->add(std::make_shared<nn::LeakyReLU>(0.1));
    enc->add(std::make_shared<nn::Linear>(512, 2 * Z, g));
    dec->add(std::make_shared<nn::Linear>(Z, 512, g));
    dec->add(std::make_shared<nn::ReLU>());
    dec->add(std::make_shared<nn::Linear>(512, 256 * H8 * W8, g));
    dec->add(std::make_shared<nn::ReLU>());
    dec->add(std::make_shared<nn::Reshape>(Shape{256, H8, W8}));
    dec->add(std::make_shared<nn::ConvTranspose2d>(256, 128, 4, g, down));
    dec->add(std::make_shared<nn::ReLU>());
    dec->add(std::make_shared<nn::ConvTranspose2d>(128, 64, 4, g, down));
    dec->add(std::make_shared<nn::ReLU>());
    dec->add(std::make_shared<nn::ConvTranspose2d>(64, out_shape[0], 4, g, down));
  } else {
    const int64_t C = cfg_.data_shape[0], H4 = cfg_.data_shape[1] / 4, W4 = cfg_.data_shape[2] / 4;
    const int64_t flat = 128 * H4 * W4;  // 6272 for 28x28
    const nn::ConvOptions down{.stride = 2, .padding = 1};
    // encoder: (B, C, H, W) -> (B, 64, H/2, W/2) -> (B, 128, H/4, W/4) -> (B, 1024) -> (B, 2Z)
    enc->add(std::make_shared<nn::Conv2d>(C, 64, 4, g, down));
    enc->add(std::make_shared<nn::LeakyReLU>(0.1));
    enc->add(std::make_shared<nn::Conv2d>(64, 128, 4, g, down));
    enc->add(std::make_shared<nn::LeakyReLU>(0.1));
    enc->add(std::make_shared<nn::Flatten>());
    enc->add(std::make_shared<nn::Linear>(flat, 1024, g));
    enc->add(std::make_shared<nn::LeakyReLU>(0.1));
    enc->add(std::make_shared<nn::Linear>(1024, 2 * Z, g));
    // decoder: (B, Z) -> (B, 1024) -> (B, 128, H/4, W/4) -> (B, 64, H/2, W/2) -> (B, k*C, H, W)
    dec->add(std::make_shared<nn::Linear>(Z, 1024, g));
    dec->add(std::make_shared<nn::ReLU>());
    dec->add(std::make_shared<nn::Linear>(1024, flat, g));
    dec->add(std::make_shared<nn::ReLU>());
    dec->add(std::make_shared<nn::Reshape>(Shape{128, H4, W4}));
    dec->add(std::make_shared<nn::ConvTranspose2d>(128, 64, 4, g, down));
    dec->add(std::make_shared<nn::ReLU>());
    dec->add(std::make_shared<nn::ConvTranspose2d>(64, out_shape[0], 4, g, down));
    // no output nonlinearity: the likelihood family interprets the raw output (see model.h)
  }
  encoder_ = register_module("encoder", enc);
  if (cfg_.decoder == "pixelcnn") {
    GV_CHECK(p->name() == "bernoulli" && cfg_.data_shape.size() == 3 && cfg_.data_shape[0] == 1, ValueError,
             "VAE: the pixelcnn decoder models binary one-channel images (likelihood bernoulli), got {} on {}",
             p->name(), shape_str(cfg_.data_shape));
    auto pix = std::make_shared<PixelCNNDecoder>(
        PixelCNNConfig{.channels = cfg_.pixel_channels, .layers = cfg_.pixel_layers, .kernel = cfg_.pixel_kernel,
                       .first_kernel = cfg_.pixel_first_kernel, .latent = Z, .data_channels = 1},
        g);
    pix->set_image_size(cfg_.data_shape[1], cfg_.data_shape[2]);
    decoder_ = register_module("decoder", pix);
  } else if (cfg_.decoder == "pixelcnn++") {
    GV_CHECK(cfg_.data_shape.size() == 3, ShapeError, "VAE: the pixelcnn++ decoder models images (C, H, W), got {}",
             shape_str(cfg_.data_shape));
    auto pix = std::make_shared<PixelCNNPPDecoder>(
        PixelCNNPPConfig{.filters = cfg_.pixel_channels, .blocks = cfg_.pixel_blocks,
                         .resolutions = cfg_.pixel_resolutions, .dropout = cfg_.pixel_dropout, .latent = Z,
                         .data_channels = cfg_.data_shape[0]},
        std::move(p), g);
    pix->set_image_size(cfg_.data_shape[1], cfg_.data_shape[2]);
    decoder_ = register_module("decoder", pix);
  } else {
    decoder_ = register_module("decoder", std::make_shared<FactorizedDecoder>(dec, std::move(p), Z));
  }
  GV_CHECK(cfg_.average_decay == 0 || (cfg_.average_decay > 0 && cfg_.average_decay < 1), ValueError,
           "VAE: average_decay must be 0 (no averaging) or in (0, 1), got {}", cfg_.average_decay);
  if (cfg_.average_decay > 0)  // last: it averages every parameter registered above
    average_ = register_module("average", std::make_shared<nn::WeightAverage>(*this, cfg_.average_decay));
}

FactorizedDecoder& VAE::factorized() {
  auto* f = dynamic_cast<FactorizedDecoder*>(decoder_.get());
  GV_CHECK(f != nullptr, ValueError, "VAE: the decoder is a {}, not a factorized one", decoder_->name());
  return *f;
}


std::pair<Var, Var> VAE::encode(const Var& x) {
  const Shape& ds = cfg_.data_shape;
  bool ok = x.defined() && x.dim() == int64_t(ds.size()) + 1 && std::equal(ds.begin(), ds.end(), x.shape().begin() + 1);
  GV_CHECK(ok, ShapeError, "VAE::encode: expected x of shape (B, {}), got {}", fmt::join(ds, ", "),
           x.defined() ? shape_str(x.shape()) : std::string("nothing"));
  Var h = (*encoder_)(x);  // (B, 2Z)
  auto parts = ag::chunk(h, 2, 1);
  if (cfg_.sigma_floor > 0) {  // log(floor^2 + e^raw) = a + softplus(raw - a), a = log floor^2: no overflow
    const double a = 2 * std::log(cfg_.sigma_floor);
    return {parts[0], ag::softplus(parts[1] - a) + a};
  }
  return {parts[0], parts[1]};  // mu (B, Z), logvar (B, Z)
}

}  // namespace gv::vae

// test_pixelcnn.cpp: the gated PixelCNN decoder. Causality and the absence of a blind spot, by
// gradients for every pair of pixels; log_prob a normalized distribution that sample() draws from,
// by exact enumeration of every 2x3 binary image; the cached sampler against forward() and against
// naive recomputation; a float64 gradient check through the decoder.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <vector>

#include "autograd/gradcheck.h"
#include "vae/model.h"
#include "vae/objective.h"
#include "vae/pixelcnn.h"
#include "vae/samplers.h"

using namespace gv;
using namespace gv::vae;
using ag::Var;

// This file's helpers and tests in a namespace of their own: the unity build (scripts/test.sh)
// compiles several test files as one, and their helpers must not meet.
namespace file_vae_test_pixelcnn {

namespace {

PixelCNNDecoder tiny_decoder(int64_t layers, int64_t first_kernel, int64_t latent, uint64_t seed) {
  Generator g(seed);
  PixelCNNDecoder d({.channels = 4, .layers = layers, .kernel = 3, .first_kernel = first_kernel, .latent = latent}, g);
  d.to(DType::f64);
  return d;
}

}  // namespace

TEST_CASE("PixelCNN: output pixel i depends on input pixel j exactly when j < i (no leak, no blind spot)") {
  // 3 layers on 4x4: the first (mask A, 5x5) reaches 3 columns left and 2 to each side above; each
  // later layer one more, so every earlier pixel of a 4x4 image is within reach.
  PixelCNNDecoder d = tiny_decoder(3, 5, 2, 1);
  const int64_t H = 4, W = 4;
  Generator g(2);
  const Tensor x0 = bernoulli(Tensor::full({1, 1, H, W}, 0.5, DType::f64), g);
  const Var z(normal({1, 2}, g, 0, 1, DType::f64));
  for (int64_t i = 0; i < H * W; ++i) {
    Var x(x0.clone(), true);
    Var out = d.network().forward(x, z);
    Var one = ag::sum(ag::slice(ag::slice(out, 2, i / W, i / W + 1), 3, i % W, i % W + 1));
    one.backward();
    const std::vector<double> grad = x.grad().to_vector<double>();
    for (int64_t j = 0; j < H * W; ++j) {
      CAPTURE(i);
      CAPTURE(j);
      if (j >= i) CHECK(grad[j] == 0.0);  // exactly: no path at all, not a small number
      else CHECK(grad[j] != 0.0);
    }
  }
}

TEST_CASE("PixelCNN: causal over the whole image for a deeper, unconditioned network on 6x5") {
  PixelCNNDecoder d = tiny_decoder(5, 3, 0, 3);
  const int64_t H = 6, W = 5;
  Generator g(4);
  const Tensor x0 = uniform({2, 1, H, W}, g).to(DType::f64);
  for (int64_t i : {0, 1, 7, 14, 29}) {
    Var x(x0.clone(), true);
    Var out = d.network().forward(x, Var());
    ag::sum(ag::slice(ag::slice(out, 2, i / W, i / W + 1), 3, i % W, i % W + 1)).backward();
    const std::vector<double> grad = x.grad().to_vector<double>();
    for (int64_t b = 0; b < 2; ++b)
      for (int64_t j = i; j < H * W; ++j) CHECK(grad[b * H * W + j] == 0.0);
  }
}

TEST_CASE("PixelCNN: log_prob sums to 1 over every 2x3 binary image, and sample() draws from it") {
  PixelCNNDecoder d = tiny_decoder(2, 3, 2, 5);
  d.set_image_size(2, 3);
  Generator g(6);
  const Tensor z1 = normal({1, 2}, g, 0, 1, DType::f64);
  // every image: bit b of n is pixel b in raster order
  std::vector<double> all(64 * 6);
  for (int64_t n = 0; n < 64; ++n)
    for (int64_t b = 0; b < 6; ++b) all[n * 6 + b] = double((n >> b) & 1);
  const Tensor xs = Tensor::from_vector(all, {64, 1, 2, 3});
  ag::NoGradGuard ng;
  const std::vector<double> lp =
      d.log_prob(xs, Var(z1.expand({64, 2}).contiguous())).data().to_vector<double>();
  double total = 0;
  for (double v : lp) total += std::exp(v);
  CHECK(total == doctest::Approx(1.0).epsilon(1e-12));  // float64: 64 terms, a few ulps each
  // 40000 draws: each image's frequency within 4.5 standard errors of exp(log_prob) (a false alarm
  // in about 1 of 10^5 images per run)
  const int64_t N = 40000;
  const Tensor s = d.sample(z1.expand({N, 2}).contiguous(), g);
  std::map<int64_t, int64_t> count;
  const std::vector<double> sv = s.to_vector<double>();
  for (int64_t k = 0; k < N; ++k) {
    int64_t n = 0;
    for (int64_t b = 0; b < 6; ++b) {
      CHECK((sv[k * 6 + b] == 0.0 || sv[k * 6 + b] == 1.0));
      n |= int64_t(sv[k * 6 + b]) << b;
    }
    ++count[n];
  }
  for (int64_t n = 0; n < 64; ++n) {
    const double p = std::exp(lp[n]), f = double(count[n]) / double(N);
    CAPTURE(n);
    CHECK(std::abs(f - p) <= 4.5 * std::sqrt(p * (1 - p) / double(N)) + 1e-12);
  }
}

namespace {

// forward()'s logits against generate()'s, fed the known pixels (teacher forcing), in float64: the
// same sums in another order, so they agree to rounding (1e-12 on logits of order 1, about 10^4
// ulps; a wrong tap or a stale cache entry gives errors of order 0.1)
void check_incremental(GatedPixelCNN& net, const Tensor& x, const Tensor& z) {
  const int64_t B = x.size(0), H = x.size(2), W = x.size(3);
  const Tensor whole = net.forward(Var(x), z.defined() ? Var(z) : Var()).data();
  Tensor inc = Tensor::full(x.shape(), std::nan(""), DType::f64);
  int64_t calls = 0;
  const Tensor back = net.generate(z, B, H, W, [&](int64_t i, int64_t j, const Tensor& logits) {
    CHECK(i * W + j == calls++);  // raster order, once per pixel
    inc.select(3, j).select(2, i).copy_(logits);
    return x.select(3, j).select(2, i).contiguous();
  });
  CHECK(calls == H * W);
  CHECK(back.to_vector<double>() == x.to_vector<double>());
  const std::vector<double> a = whole.to_vector<double>(), b = inc.to_vector<double>();
  double worst = 0;
  for (size_t k = 0; k < a.size(); ++k) worst = std::max(worst, std::abs(a[k] - b[k]));  // NaN fails below
  CHECK(worst <= 1e-12);
  for (double v : b) CHECK(std::isfinite(v));
}

}  // namespace

TEST_CASE("PixelCNN: the incremental (cached) evaluation gives forward()'s logits at every pixel") {
  Generator g(31);
  SUBCASE("conditioned, mask A 5x5, 3 layers, 7x6") {
    PixelCNNDecoder d = tiny_decoder(3, 5, 2, 32);
    check_incremental(d.network(), uniform({3, 1, 7, 6}, g).to(DType::f64), normal({3, 2}, g, 0, 1, DType::f64));
  }
  SUBCASE("unconditioned, 3x3 throughout, 5 layers, 9x4 (reach beyond the image's top)") {
    PixelCNNDecoder d = tiny_decoder(5, 3, 0, 33);
    check_incremental(d.network(), bernoulli(Tensor::full({2, 1, 9, 4}, 0.5, DType::f64), g), Tensor());
  }
  SUBCASE("wider kernels (7 then 5), two data channels, one image") {
    GatedPixelCNN net({.channels = 3, .layers = 3, .kernel = 5, .first_kernel = 7, .latent = 3, .data_channels = 2}, g);
    net.to(DType::f64);
    check_incremental(net, uniform({1, 2, 5, 8}, g).to(DType::f64), normal({1, 3}, g, 0, 1, DType::f64));
  }
}

TEST_CASE("PixelCNN: the cached sampler draws the same images as naive whole-image recomputation") {
  PixelCNNDecoder d = tiny_decoder(3, 5, 2, 21);
  d.set_image_size(9, 5);
  Generator g(22);
  const Tensor z = normal({5, 2}, g, 0, 1, DType::f64);
  Generator a(23), b(23);
  const Tensor fast = d.sample(z, a), naive = d.sample_naive(z, b);
  CHECK(fast.shape() == Shape{5, 1, 9, 5});
  // bitwise: the logits differ by rounding only (float64), so a draw could differ only if its
  // uniform fell within ~1e-15 of the probability
  CHECK(fast.to_vector<double>() == naive.to_vector<double>());
  CHECK(a.offset() == b.offset());  // the same draws from the generator
  CHECK_THROWS_WITH_AS(d.network().generate(z, 4, 3, 3, [](int64_t, int64_t, const Tensor& l) { return l; }),
                       doctest::Contains("expected z of shape (4, 2)"), ShapeError);
  CHECK_THROWS_WITH_AS(d.network().generate(z, 5, 3, 3, [](int64_t, int64_t, const Tensor&) { return Tensor(); }),
                       doctest::Contains("must return (5, 1)"), ShapeError);
}

TEST_CASE("PixelCNN decoder: float64 gradients of log p(x|z) match central differences") {
  PixelCNNDecoder d = tiny_decoder(2, 3, 2, 7);
  Generator g(8);
  const Tensor x = bernoulli(Tensor::full({2, 1, 3, 3}, 0.5, DType::f64), g);
  std::vector<Var> inputs = d.parameters();
  Var z(normal({2, 2}, g, 0, 1, DType::f64), true);
  inputs.push_back(z);
  auto f = [&](const std::vector<Var>& in) { return ag::sum(d.log_prob(x, in.back())); };
  auto res = ag::gradcheck(f, inputs);
  INFO(res.message);
  CHECK(res.ok);
}

TEST_CASE("PixelCNN decoder: no closed-form mean, bad shapes and kernels are named") {
  PixelCNNDecoder d = tiny_decoder(1, 3, 2, 9);
  CHECK_FALSE(d.has_mean());
  CHECK_THROWS_WITH_AS(d.mean(Tensor::zeros({1, 2}, DType::f64)), doctest::Contains("no closed form"), ValueError);
  CHECK_THROWS_AS(d.network().forward(Var(Tensor::zeros({1, 2, 4, 4}, DType::f64)), Var()), ShapeError);
  CHECK_THROWS_WITH_AS(d.network().forward(Var(Tensor::zeros({1, 1, 4, 4}, DType::f64)), Var()),
                       doctest::Contains("expected z of shape (1, 2)"), ShapeError);
  Generator g(1);
  CHECK_THROWS_WITH_AS(GatedPixelCNN({.kernel = 4}, g), doctest::Contains("odd"), ValueError);
}

TEST_CASE("PixelVAE: a VAE with the PixelCNN decoder; float64 gradients of its whole objective") {
  ModelConfig c;
  c.data_shape = {1, 3, 3};
  c.latent = 2;
  c.hidden = 5;
  c.hidden_layers = 1;
  c.decoder = "pixelcnn";
  c.pixel_layers = 2;
  c.pixel_channels = 3;
  c.pixel_first_kernel = 3;
  Generator g(11);
  VAE m(c, bernoulli(), g);
  m.to(DType::f64);
  CHECK_FALSE(m.decoder().has_mean());
  CHECK_THROWS_WITH_AS(m.factorized(), doctest::Contains("not a factorized one"), ValueError);
  bool has_pixelcnn = false;
  for (const auto& [n, v] : m.named_parameters()) has_pixelcnn |= n.rfind("decoder.pixelcnn.", 0) == 0;
  CHECK(has_pixelcnn);
  const Tensor x = bernoulli(Tensor::full({3, 1, 3, 3}, 0.5, DType::f64), g);
  auto f = [&](const std::vector<Var>&) {
    Generator e(12);
    return objective(m, x, *kl(), 1.0, e).loss;
  };
  auto res = ag::gradcheck(f, m.parameters());
  INFO(res.message);
  CHECK(res.ok);
  // ancestral samples are draws (no mean) of the model's image size
  Generator s(13);
  Samples a = sample_ancestral(m, 4, s);
  CHECK(a.x.shape() == Shape{4, 1, 3, 3});
  CHECK_FALSE(a.mean.defined());
  // the PixelCNN models binary one-channel images only
  Generator g2(1);
  CHECK_THROWS_WITH_AS(VAE(c, gaussian_fixed(1.0), g2), doctest::Contains("binary one-channel"), ValueError);
}

}  // namespace file_vae_test_pixelcnn

// test_pixelcnnpp.cpp: the PixelCNN++-style decoder. Causality over pixels (every channel) and the
// absence of a blind spot, by gradients for every pair of pixels of an RGB image; the incremental
// evaluation against forward() at every pixel, and the cached sampler against naive recomputation;
// log_prob a normalized distribution that sample() draws from, by enumerating every 2x2 binary
// image; dropout's stream; float64 gradient checks; the errors.
#include <doctest/doctest.h>

#include <cmath>
#include <map>
#include <vector>

#include "autograd/gradcheck.h"
#include "vae/model.h"
#include "vae/objective.h"
#include "vae/pixelcnnpp.h"
#include "vae/regularizer.h"

using namespace gv;
using namespace gv::vae;
using ag::Var;

// This file's helpers and tests in a namespace of their own: the unity build (scripts/test.sh)
// compiles several test files as one, and their helpers must not meet.
namespace file_vae_test_pixelcnnpp {

namespace {

PixelCNNPPConfig tiny(int64_t resolutions, int64_t blocks, int64_t latent, int64_t channels = 3) {
  return {.filters = 4, .blocks = blocks, .resolutions = resolutions, .latent = latent, .data_channels = channels};
}

PixelCNNPPDecoder tiny_decoder(PixelCNNPPConfig c, std::shared_ptr<Likelihood> p, uint64_t seed) {
  Generator g(seed);
  PixelCNNPPDecoder d(c, std::move(p), g);
  d.to(DType::f64);
  return d;
}

// Values on the 8-bit grid of [-1, 1]
Tensor grid_image(const Shape& s, Generator& g) {
  Tensor u = uniform(s, g, 0, 256, DType::f64);
  return (u.to(DType::i64).to(DType::f64) / 127.5 - 1.0);
}

}  // namespace

TEST_CASE("PixelCNN++: output pixel i depends on input pixel j (every channel) exactly when j < i, within reach") {
  // three resolutions (8, 4, 2), one block each. The receptive field has no blind spot: it holds
  // every earlier pixel but, in odd rows, the two that lie 7 columns away: the far left of the same
  // row and the far right of the row above (even rows reach them through the coarser resolutions,
  // whose rows line up with the even ones)
  PixelCNNPPDecoder d = tiny_decoder(tiny(3, 1, 2), discretized_logistic_mixture_rgb(2), 1);
  const int64_t H = 8, W = 8, C = 3;
  Generator g(2);
  const Tensor x0 = grid_image({1, C, H, W}, g);
  const Var z(normal({1, 2}, g, 0, 1, DType::f64));
  int64_t checked = 0;
  for (int64_t i = 0; i < H * W; ++i) {
    Var x(x0.clone(), true);
    Var out = d.network().forward(x, z);
    ag::sum(ag::slice(ag::slice(out, 2, i / W, i / W + 1), 3, i % W, i % W + 1)).backward();
    const std::vector<double> grad = x.grad().to_vector<double>();
    for (int64_t j = 0; j < H * W; ++j)
      for (int64_t c = 0; c < C; ++c) {
        CAPTURE(i);
        CAPTURE(j);
        CAPTURE(c);
        const double gj = grad[size_t(c * H * W + j)];
        const int64_t ri = i / W, ci = i % W, rj = j / W, cj = j % W;
        const bool beyond = ri % 2 == 1 && ((rj == ri && ci - cj >= 7) || (rj == ri - 1 && cj - ci >= 7));
        if (j >= i || beyond) CHECK(gj == 0.0);  // exactly: no path at all
        else CHECK(gj != 0.0);                   // no blind spot
        ++checked;
      }
  }
  CHECK(checked == 64 * 64 * 3);
}

TEST_CASE("PixelCNN++: causal for two blocks per resolution, no latent code, one channel, 4x8") {
  PixelCNNPPDecoder d = tiny_decoder(tiny(2, 2, 0, 1), bernoulli(), 3);
  const int64_t H = 4, W = 8;
  Generator g(4);
  const Tensor x0 = uniform({2, 1, H, W}, g).to(DType::f64);
  for (int64_t i : {0, 1, 7, 8, 13, 31}) {
    Var x(x0.clone(), true);
    ag::sum(ag::slice(ag::slice(d.network().forward(x, Var()), 2, i / W, i / W + 1), 3, i % W, i % W + 1)).backward();
    const std::vector<double> grad = x.grad().to_vector<double>();
    for (int64_t b = 0; b < 2; ++b)
      for (int64_t j = 0; j < H * W; ++j) {
        CAPTURE(i);
        CAPTURE(j);
        if (j >= i) CHECK(grad[size_t(b * H * W + j)] == 0.0);
        else CHECK(grad[size_t(b * H * W + j)] != 0.0);
      }
  }
}

namespace {
// generate() fed the pixels of x gives forward(x)'s parameters at every pixel
void check_incremental(PixelCNNPP& net, const Tensor& x, const Tensor& z) {
  const int64_t B = x.size(0), C = x.size(1), H = x.size(2), W = x.size(3);
  const Tensor want = net.forward(Var(x), z.defined() ? Var(z) : Var()).data();
  double worst = 0;
  const Tensor got = net.generate(z, B, H, W, [&](int64_t i, int64_t j, const Tensor& params) {
    const Tensor ref = want.select(3, j).select(2, i);
    worst = std::max(worst, max(abs(params - ref)).item());
    return x.select(3, j).select(2, i).contiguous().view({B, C});
  });
  // float64: the two evaluations sum the same products in different blockings
  CHECK(worst < 1e-12);
  CHECK(got.to_vector<double>() == x.to_vector<double>());
  // each layer's position is computed about once: the cache does one forward pass's work
  CHECK(net.last_positions() <= net.positions_per_pass(H, W));
  CHECK(net.last_positions() >= net.positions_per_pass(H, W) * 9 / 10);
}
}  // namespace

TEST_CASE("PixelCNN++: the incremental (cached) evaluation gives forward()'s parameters at every pixel") {
  Generator g(31);
  SUBCASE("RGB, three resolutions, conditioned, 8x8") {
    PixelCNNPPDecoder d = tiny_decoder(tiny(3, 1, 2), discretized_logistic_mixture_rgb(2), 32);
    d.eval();
    check_incremental(d.network(), grid_image({2, 3, 8, 8}, g), normal({2, 2}, g, 0, 1, DType::f64));
  }
  SUBCASE("one channel, two resolutions, two blocks, unconditioned, 6x4") {
    PixelCNNPPDecoder d = tiny_decoder(tiny(2, 2, 0, 1), bernoulli(), 33);
    d.eval();
    check_incremental(d.network(), bernoulli(Tensor::full({3, 1, 6, 4}, 0.5, DType::f64), g), Tensor());
  }
}

TEST_CASE("PixelCNN++: the cached sampler draws the same images as naive whole-image recomputation") {
  PixelCNNPPDecoder d = tiny_decoder(tiny(2, 1, 2), discretized_logistic_mixture_rgb(3), 21);
  d.set_image_size(4, 6);
  Generator g(22);
  const Tensor z = normal({3, 2}, g, 0, 1, DType::f64);
  Generator a(23), b(23);
  const Tensor fast = d.sample(z, a), naive = d.sample_naive(z, b);
  CHECK(fast.shape() == Shape{3, 3, 4, 6});
  CHECK(fast.to_vector<double>() == naive.to_vector<double>());  // float64: a draw moves only within ~1e-15
  CHECK(a.offset() == b.offset());
  for (double v : fast.to_vector<double>()) {  // on the 8-bit grid of [-1, 1]
    CHECK(v >= -1);
    CHECK(v <= 1);
    CHECK(std::fabs(std::round((v + 1) * 127.5) - (v + 1) * 127.5) < 1e-9);
  }
}

TEST_CASE("PixelCNN++: log_prob sums to 1 over every 2x2 binary image, and sample() draws from it") {
  PixelCNNPPDecoder d = tiny_decoder(tiny(2, 1, 2, 1), bernoulli(), 5);
  d.set_image_size(2, 2);
  d.eval();
  Generator g(6);
  const Tensor z1 = normal({1, 2}, g, 0, 1, DType::f64);
  std::vector<double> all(16 * 4);
  for (int64_t n = 0; n < 16; ++n)
    for (int64_t b = 0; b < 4; ++b) all[size_t(n * 4 + b)] = double((n >> b) & 1);
  const Tensor xs = Tensor::from_vector(all, {16, 1, 2, 2});
  const std::vector<double> lp = d.log_prob(xs, Var(z1.expand({16, 2}).contiguous())).data().to_vector<double>();
  double total = 0;
  for (double v : lp) total += std::exp(v);
  CHECK(total == doctest::Approx(1).epsilon(1e-12));  // float64 rounding of 16 products
  const int64_t n = 8000;  // 5 standard errors of 8000 draws: a 0.5% change of a 16-way law shows
  Generator s(7);
  const std::vector<double> draws = d.sample(z1.expand({n, 2}).contiguous(), s).to_vector<double>();
  std::vector<double> count(16, 0);
  for (int64_t k = 0; k < n; ++k) {
    int64_t code = 0;
    for (int64_t b = 0; b < 4; ++b) code |= int64_t(draws[size_t(k * 4 + b)]) << b;
    count[size_t(code)] += 1;
  }
  for (int64_t m = 0; m < 16; ++m) {
    const double q = std::exp(lp[size_t(m)]), f = count[size_t(m)] / n;
    CAPTURE(m);
    CHECK(std::fabs(f - q) < 5 * std::sqrt(q * (1 - q) / n) + 5.0 / n);  // 5 standard errors
  }
}

TEST_CASE("PixelCNN++: dropout draws from the network's own stream, only in training") {
  PixelCNNPPConfig c = tiny(2, 1, 2);
  c.dropout = 0.5;
  PixelCNNPPDecoder d = tiny_decoder(c, discretized_logistic_mixture_rgb(2), 41);
  Generator g(42);
  const Tensor x = grid_image({2, 3, 4, 4}, g), z = normal({2, 2}, g, 0, 1, DType::f64);
  const Tensor state0 = d.named_buffers().front().second.clone();
  const Tensor a = d.network().forward(Var(x), Var(z)).data(), b = d.network().forward(Var(x), Var(z)).data();
  CHECK(max(abs(a - b)).item() > 1e-3);  // two masks
  d.set_buffer("pixelcnnpp.dropout_stream", state0);
  CHECK(d.network().forward(Var(x), Var(z)).data().to_vector<double>() == a.to_vector<double>());  // resumed exactly
  d.eval();
  const Tensor e1 = d.network().forward(Var(x), Var(z)).data(), e2 = d.network().forward(Var(x), Var(z)).data();
  CHECK(e1.to_vector<double>() == e2.to_vector<double>());
  CHECK(max(abs(e1 - a)).item() > 1e-3);
}

TEST_CASE("PixelCNN++ decoder: float64 gradients of log p(x|z) match central differences") {
  PixelCNNPPDecoder d = tiny_decoder(tiny(2, 1, 2), discretized_logistic_mixture_rgb(2), 7);
  Generator g(8);
  const Tensor x = grid_image({2, 3, 2, 2}, g);
  // a small parameter of every kind of layer, and z (all of them: 7 s of finite differences)
  std::vector<Var> inputs;
  for (const auto& [n, v] : d.named_parameters())
    for (const char* want : {"ul_in_col.weight", "u_in.bias", "up0_0_ul_conv1.bias", "up0_0_ul_nin.weight",
                             "down0_u.bias", "dn1_0_u_cond.weight", "upsample1_ul.bias", "dn0_1_ul_conv2.bias",
                             "head.bias"})
      if (n == std::string("pixelcnnpp.") + want) inputs.push_back(v);
  REQUIRE(inputs.size() == 9);
  Var z(normal({2, 2}, g, 0, 1, DType::f64), true);
  inputs.push_back(z);
  auto f = [&](const std::vector<Var>& in) { return ag::sum(d.log_prob(x, in.back())); };
  auto res = ag::gradcheck(f, inputs);
  INFO(res.message);
  CHECK(res.ok);
}

TEST_CASE("PixelCNN++ decoder: no closed-form mean; bad sizes, codes and settings are named") {
  PixelCNNPPDecoder d = tiny_decoder(tiny(3, 1, 2), discretized_logistic_mixture_rgb(2), 9);
  CHECK_FALSE(d.has_mean());
  CHECK_THROWS_WITH_AS(d.mean(Tensor::zeros({1, 2}, DType::f64)), doctest::Contains("no closed form"), ValueError);
  CHECK_THROWS_WITH_AS(d.network().forward(Var(Tensor::zeros({1, 3, 6, 8}, DType::f64)), Var(Tensor::zeros({1, 2}, DType::f64))),
                       doctest::Contains("multiples of 4"), ShapeError);
  CHECK_THROWS_WITH_AS(d.network().forward(Var(Tensor::zeros({1, 3, 8, 8}, DType::f64)), Var()),
                       doctest::Contains("expected z of shape (1, 2)"), ShapeError);
  CHECK_THROWS_AS(d.network().forward(Var(Tensor::zeros({1, 1, 8, 8}, DType::f64)), Var()), ShapeError);
  Generator g(1);
  PixelCNNPPConfig bad = tiny(3, 1, 2);
  bad.dropout = 1;
  CHECK_THROWS_WITH_AS(PixelCNNPP(bad, g), doctest::Contains("dropout"), ValueError);
  CHECK(d.network().config().out_planes == 20);  // 10 per component of the RGB mixture
}

TEST_CASE("PixelVAE on colour images: conv3 encoder, PixelCNN++ decoder, the floor on sigma") {
  ModelConfig c;
  c.arch = "conv3";
  c.data_shape = {3, 8, 8};
  c.latent = 3;
  c.decoder = "pixelcnn++";
  c.pixel_channels = 4;
  c.pixel_resolutions = 2;
  c.sigma_floor = 0.1;
  Generator g(51);
  VAE m(c, discretized_logistic_mixture_rgb(2), g);
  m.to(DType::f64);
  CHECK(m.decoder().name() == "PixelCNN++ (logistic-mixture-rgb)");
  const Tensor x = grid_image({2, 3, 8, 8}, g);
  auto [mu, logvar] = m.encode(Var(x));
  CHECK(mu.shape() == Shape{2, 3});
  CHECK(-max(neg(logvar.data())).item() > 2 * std::log(0.1));  // sigma > floor, smoothly
  Generator e(52);
  Var loss = objective(m, x, *kl(), 1.0, e).loss;
  CHECK(std::isfinite(loss.item()));
  loss.backward();
  for (const auto& [n, v] : m.named_parameters()) {
    CAPTURE(n);
    REQUIRE(v.grad().defined());
    CHECK(std::isfinite(sum(abs(v.grad())).item()));
  }
  // the floor's map logvar = log(floor^2 + e^raw), by float64 gradients through a small MLP encoder
  ModelConfig s;
  s.data_shape = {1, 2, 2};
  s.latent = 2;
  s.hidden = 3;
  s.hidden_layers = 1;
  s.sigma_floor = 0.3;
  VAE small(s, bernoulli(), g);
  small.to(DType::f64);
  const Tensor xs = uniform({2, 1, 2, 2}, g).to(DType::f64);
  auto res = ag::gradcheck([&](const std::vector<Var>&) { return ag::sum(small.encode(Var(xs)).second); },
                           small.parameters());
  INFO(res.message);
  CHECK(res.ok);
  Generator g2(1);
  ModelConfig bad = c;
  bad.data_shape = {3, 12, 12};
  CHECK_THROWS_WITH_AS(VAE(bad, discretized_logistic_mixture_rgb(2), g2), doctest::Contains("divisible by 8"), ShapeError);
}

}  // namespace file_vae_test_pixelcnnpp

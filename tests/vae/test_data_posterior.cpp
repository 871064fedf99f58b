// test_posterior.cpp: q(x|z) over a data set (vae/data_posterior.h) on tiny MLP VAEs over 1x2x2 images:
//   - against a brute-force computation (the whole N x K weight matrix at once), for several
//     streaming block sizes, with the identity E_w||g - x||^2 = ||g - m||^2 + variance of Prop. 4;
//   - known answers: identical images (variance 0, uniform weights), an encoder that ignores x
//     (the weights are uniform: the data mean and the data variance), a duplicated data set (same
//     mean and variance, twice the ESS), a sharp posterior (one image dominates: ESS 1);
//   - the model's mode is restored, and bad shapes raise errors that name them.
#include <doctest/doctest.h>

#include <cmath>
#include <string>
#include <vector>

#include "test_util.h"
#include "vae/data_posterior.h"
#include "tests/vae/vae_test_util.h"

using namespace gv;
using namespace gv::vae;
using gv::test::expect_close;
using gv::test::has;

// This file's helpers and tests in a namespace of their own: the unity build (scripts/test.sh)
// compiles several test files as one, and their helpers must not meet.
namespace file_vae_test_data_posterior {

namespace {


// A tiny MLP VAE over 1x2x2 images (D = 4) with one hidden tanh layer of 8 units in the encoder
// and in the decoder; the encoder's last Linear maps it to [mu, logvar].
VAE tiny_vae(int64_t latent, uint64_t seed = 1) {
  return gv::test::tiny_vae({.latent = latent, .activation = "tanh", .seed = seed});
}

bool starts_with(const std::string& s, const std::string& p) { return s.rfind(p, 0) == 0; }
bool ends_with(const std::string& s, const std::string& p) {
  return s.size() >= p.size() && s.compare(s.size() - p.size(), p.size(), p) == 0;
}

// The encoder's last Linear (weight (2Z, H), bias (2Z)): its outputs are [mu, logvar].
std::pair<ag::Var, ag::Var> encoder_last(const VAE& m) {
  ag::Var w, b;
  for (const auto& [name, v] : m.named_parameters()) {
    if (starts_with(name, "encoder.") && ends_with(name, ".weight")) w = v;
    if (starts_with(name, "encoder.") && ends_with(name, ".bias")) b = v;
  }
  REQUIRE(w.defined());
  REQUIRE(b.defined());
  return {w, b};
}

void set_values(const ag::Var& v, const std::vector<double>& values) {
  REQUIRE((int64_t)values.size() == v.numel());
  v.set_data(Tensor::from_vector(std::vector<float>(values.begin(), values.end()), v.shape()));
}

Tensor images_from(const std::vector<double>& v, int64_t n) {
  return Tensor::from_vector(std::vector<float>(v.begin(), v.end()), {n, 1, 2, 2});
}
Tensor uniform_images(int64_t n, uint64_t seed) { return images_from(gv::test::lcg(n * 4, seed, 0, 1), n); }
Tensor latents(const std::vector<double>& v, int64_t zdim) {
  return Tensor::from_vector(v, {(int64_t)v.size() / zdim, zdim});
}

// Everything at once: log q(z_k|x_i) from the model's encoder, the (K, N) weights, their sums.
struct Brute {
  std::vector<double> mean, variance, ess, log_qz, expected_err;  // expected_err: E_w||g_k - x||^2
};
Brute brute_force(VAE& model, const Tensor& images, const Tensor& z, const std::vector<double>& g) {
  ag::NoGradGuard no_grad;
  auto [mu_v, lv_v] = model.encode(ag::Var(images));
  const std::vector<double> mu = mu_v.data().to_vector<double>(), lv = lv_v.data().to_vector<double>();
  const std::vector<double> x = images.to_vector<double>(), zv = z.to_vector<double>();
  const int64_t n = images.size(0), d = 4, k = z.size(0), zd = z.size(1);
  Brute r;
  for (int64_t kk = 0; kk < k; ++kk) {
    std::vector<double> lq((size_t)n);
    double mx = -INFINITY;
    for (int64_t i = 0; i < n; ++i) {
      double s = 0;
      for (int64_t j = 0; j < zd; ++j) {
        const double diff = zv[kk * zd + j] - mu[i * zd + j];
        s += diff * diff * std::exp(-lv[i * zd + j]) + lv[i * zd + j] + kLog2Pi;
      }
      lq[i] = -0.5 * s;
      mx = std::max(mx, lq[i]);
    }
    double tot = 0;
    for (double v : lq) tot += std::exp(v - mx);
    std::vector<double> w((size_t)n);
    double w2 = 0;
    for (int64_t i = 0; i < n; ++i) {
      w[i] = std::exp(lq[i] - mx) / tot;
      w2 += w[i] * w[i];
    }
    std::vector<double> m((size_t)d, 0.0);
    for (int64_t i = 0; i < n; ++i)
      for (int64_t t = 0; t < d; ++t) m[t] += w[i] * x[i * d + t];
    double var = 0, err = 0;
    for (int64_t i = 0; i < n; ++i)
      for (int64_t t = 0; t < d; ++t) {
        var += w[i] * (x[i * d + t] - m[t]) * (x[i * d + t] - m[t]);
        err += w[i] * (g[t] - x[i * d + t]) * (g[t] - x[i * d + t]);
      }
    r.mean.insert(r.mean.end(), m.begin(), m.end());
    r.variance.push_back(var);
    r.ess.push_back(1.0 / w2);
    r.log_qz.push_back(mx + std::log(tot) - std::log((double)n));
    r.expected_err.push_back(err);
  }
  return r;
}

}  // namespace

TEST_CASE("data_posterior agrees with a brute-force computation, for any streaming block size") {
  VAE model = tiny_vae(2, 3);
  const Tensor x = uniform_images(37, 11);
  const Tensor z = latents(gv::test::lcg(2 * 9, 5, -1.5, 1.5), 2);
  const std::vector<double> g = {0.2, 0.7, 0.4, 0.9};  // any "decoder output" for Prop. 4's identity
  const Brute want = brute_force(model, x, z, g);
  for (int64_t block : {1, 5, 37, 1000}) {
    CAPTURE(block);
    DataPosteriorOptions o;
    o.block = block;
    int64_t calls = 0, last = 0;
    o.progress = [&](int64_t done, int64_t total) {
      ++calls;
      last = done;
      CHECK(total == 37);
    };
    const DataPosterior got = data_posterior(model, x, z, 4, o);
    CHECK(calls == (37 + block - 1) / block);
    CHECK(last == 37);
    CHECK(got.n == 37);
    CHECK(got.mean.shape() == Shape{9, 1, 2, 2});
    expect_close(got.mean.to_vector<double>(), want.mean, 1e-12, 1e-10, "posterior mean");
    expect_close(got.variance, want.variance, 1e-12, 1e-9, "posterior variance");
    expect_close(got.ess, want.ess, 1e-10, 1e-10, "effective sample size");
    expect_close(got.log_qz, want.log_qz, 1e-10, 1e-12, "log q(z)");
    // Prop. 4: E_q(x|z)||g - x||^2 = ||g - m(z)||^2 + sum_d Var_q(x|z)[x_d]
    const std::vector<double> m = got.mean.to_vector<double>();
    std::vector<double> err;
    for (int64_t k = 0; k < 9; ++k) {
      double dist = 0;
      for (int t = 0; t < 4; ++t) dist += (g[t] - m[k * 4 + t]) * (g[t] - m[k * 4 + t]);
      err.push_back(dist + got.variance[k]);
    }
    expect_close(err, want.expected_err, 1e-12, 1e-9, "E_w||g - x||^2 = ||g - m||^2 + variance");
  }
}

TEST_CASE("data_posterior: identical images have variance 0, uniform weights and their own mean") {
  VAE model = tiny_vae(2, 4);
  const std::vector<double> one = {0.1, 0.9, 0.5, 0.3};
  std::vector<double> v;
  for (int i = 0; i < 12; ++i) v.insert(v.end(), one.begin(), one.end());
  const Tensor x = images_from(v, 12);
  const Tensor z = latents({0, 0, 1, -1, -3, 2}, 2);
  const DataPosterior r = data_posterior(model, x, z, 5);
  const std::vector<double> m = r.mean.to_vector<double>();
  for (int64_t k = 0; k < 3; ++k) {
    CAPTURE(k);
    CHECK(r.variance[k] >= 0);
    CHECK(r.variance[k] < 1e-9);
    CHECK(r.ess[k] == doctest::Approx(12).epsilon(1e-9));
    for (int t = 0; t < 4; ++t) CHECK(m[k * 4 + t] == doctest::Approx(one[t]).epsilon(1e-6));
  }
}

TEST_CASE("data_posterior: an encoder that ignores x gives the data mean and the data variance everywhere") {
  VAE model = tiny_vae(2, 5);
  auto [w, b] = encoder_last(model);
  set_values(w, std::vector<double>((size_t)w.numel(), 0.0));
  set_values(b, {0.5, -0.25, std::log(0.3), std::log(2.0)});  // mu = (0.5, -0.25), var = (0.3, 2)
  const int64_t n = 25;
  const Tensor x = uniform_images(n, 21);
  const std::vector<double> xv = x.to_vector<double>();
  std::vector<double> dmean(4, 0.0);
  for (int64_t i = 0; i < n; ++i)
    for (int t = 0; t < 4; ++t) dmean[t] += xv[i * 4 + t] / (double)n;
  double dvar = 0;  // sum_d (1/N) sum_i (x_id - mean_d)^2
  for (int64_t i = 0; i < n; ++i)
    for (int t = 0; t < 4; ++t) dvar += (xv[i * 4 + t] - dmean[t]) * (xv[i * 4 + t] - dmean[t]) / (double)n;
  const std::vector<double> zs = {0, 0, 0.5, -0.25, 4, 4};
  const DataPosterior r = data_posterior(model, x, latents(zs, 2), 7);
  const std::vector<double> m = r.mean.to_vector<double>();
  for (int64_t k = 0; k < 3; ++k) {
    CAPTURE(k);
    CHECK(r.variance[k] == doctest::Approx(dvar).epsilon(1e-6));
    CHECK(r.ess[k] == doctest::Approx((double)n).epsilon(1e-9));
    for (int t = 0; t < 4; ++t) CHECK(m[k * 4 + t] == doctest::Approx(dmean[t]).epsilon(1e-6));
    // log q(z) = log N(z; (0.5, -0.25), diag(0.3, 2)): every posterior is that one Gaussian
    const double d0 = zs[k * 2] - 0.5, d1 = zs[k * 2 + 1] + 0.25;
    const double want = -0.5 * (d0 * d0 / 0.3 + d1 * d1 / 2.0 + std::log(0.3) + std::log(2.0) + 2 * kLog2Pi);
    CHECK(r.log_qz[k] == doctest::Approx(want).epsilon(1e-6));
  }
}

TEST_CASE("data_posterior: a data set given twice has the same mean, variance and q(z), and twice the ESS") {
  VAE model = tiny_vae(2, 6);
  const Tensor x = uniform_images(10, 31);
  const Tensor xx = concat({x, x}, 0);
  const Tensor z = latents(gv::test::lcg(2 * 6, 8, -2, 2), 2);
  const DataPosterior a = data_posterior(model, x, z, 3), b = data_posterior(model, xx, z, 3);
  expect_close(b.mean.to_vector<double>(), a.mean.to_vector<double>(), 1e-12, 1e-9, "mean");
  expect_close(b.variance, a.variance, 1e-12, 1e-9, "variance");
  expect_close(b.log_qz, a.log_qz, 1e-12, 1e-9, "log q(z)");
  std::vector<double> twice;
  for (double e : a.ess) twice.push_back(2 * e);
  expect_close(b.ess, twice, 1e-9, 1e-9, "ESS doubles");
}

TEST_CASE("data_posterior: with sharp posteriors one image dominates: ESS 1, its own image, variance 0") {
  VAE model = tiny_vae(2, 7);
  auto [w, b] = encoder_last(model);
  // logvar = -12 for every x (its rows of the weight zeroed): posteriors of standard deviation e^-6
  std::vector<double> wv = w.data().to_vector<double>();
  const int64_t h = w.size(1);
  for (int64_t t = 2 * h; t < 4 * h; ++t) wv[(size_t)t] = 0;
  set_values(w, wv);
  set_values(b, {0, 0, -12, -12});
  const Tensor x = uniform_images(6, 41);
  ag::Var mu_v;
  {
    ag::NoGradGuard no_grad;
    mu_v = model.encode(ag::Var(x)).first;
  }
  // z at the encoder mean of image 4 (exactly representable: the float32 mean itself)
  const Tensor z = mu_v.data().slice(0, 4, 5).to(DType::f64).contiguous();
  const DataPosterior r = data_posterior(model, x, z, 6);
  CHECK(r.ess[0] == doctest::Approx(1).epsilon(1e-6));
  CHECK(r.variance[0] < 1e-9);
  const std::vector<double> m = r.mean.to_vector<double>(), xv = x.to_vector<double>();
  for (int t = 0; t < 4; ++t) CHECK(m[t] == doctest::Approx(xv[4 * 4 + t]).epsilon(1e-6));
  // log q(z) = log (1/N) q(z|x_4) = -log 6 - 1/2 (2 log 2pi + 2 (-12))
  CHECK(r.log_qz[0] == doctest::Approx(-std::log(6.0) - 0.5 * (2 * kLog2Pi - 24)).epsilon(1e-6));
}

TEST_CASE("data_posterior: encode_data restores the model's mode") {
  VAE model = tiny_vae(2, 8);
  model.train();
  data_posterior(model, uniform_images(3, 1), latents({0, 0}, 2), 2);
  CHECK(model.is_training());
  model.eval();
  encode_data(model, uniform_images(3, 1), 2);
  CHECK_FALSE(model.is_training());
}

TEST_CASE("data_posterior: bad shapes raise errors that name them") {
  VAE model = tiny_vae(2, 9);
  const Tensor x = uniform_images(5, 2);
  // z of the wrong latent size, or not 2-D
  std::string e = gv::test::error_of<ShapeError>([&] { data_posterior(model, x, latents({0, 0, 0, 1, 1, 1}, 3), 2); });
  CAPTURE(e);
  CHECK(has(e, "[2, 3]"));
  CHECK(has(e, "(K, 2)"));
  CHECK(has(e, "latent size is 2"));
  e = gv::test::error_of<ShapeError>([&] { data_posterior(model, x, Tensor::zeros({4}, DType::f64), 2); });
  CHECK(has(e, "[4]"));
  // images of the wrong shape
  e = gv::test::error_of<ShapeError>([&] { encode_data(model, Tensor::zeros({5, 1, 3, 3}), 2); });
  CAPTURE(e);
  CHECK(has(e, "[5, 1, 3, 3]"));
  CHECK(has(e, "[1, 2, 2]"));
  // encodings of another data set
  const EncodedData enc = encode_data(model, x, 2);
  e = gv::test::error_of<ShapeError>([&] { data_posterior(enc, uniform_images(4, 3), latents({0, 0}, 2)); });
  CAPTURE(e);
  CHECK(has(e, "5 encodings"));
  CHECK(has(e, "[4, 1, 2, 2]"));
  // no images, bad batch, bad block
  CHECK(has(gv::test::error_of<ValueError>([&] { encode_data(model, Tensor::zeros({0, 1, 2, 2}), 2); }), "no images"));
  CHECK(has(gv::test::error_of<ValueError>([&] { encode_data(model, x, 0); }), "batch"));
  DataPosteriorOptions o;
  o.block = 0;
  CHECK(has(gv::test::error_of<ValueError>([&] { data_posterior(enc, x, latents({0, 0}, 2), o); }), "block"));
}

TEST_CASE("encode_data refuses a posterior that is not finite, naming the image") {
  VAE m = gv::test::tiny_vae({.latent = 2, .hidden_layers = 0});
  ag::Var bias;
  for (const auto& [name, v] : m.named_parameters())
    if (name.rfind("encoder.", 0) == 0 && name.size() > 5 && name.substr(name.size() - 5) == ".bias") bias = v;
  REQUIRE(bias.defined());
  REQUIRE(bias.numel() == 4);  // [mu, logvar] for Z = 2
  bias.set_data(Tensor::from_vector(std::vector<float>{0, 0, 0, 1e30f}, {4}));  // exp(1e30) overflows
  Generator g(1);
  const Tensor x = uniform({3, 1, 2, 2}, g);
  CHECK_THROWS_WITH_AS(encode_data(m, x, 2), doctest::Contains("the posterior q(z|x) of image 0 is not finite"),
                       NonFiniteError);
  bias.set_data(Tensor::from_vector(std::vector<float>{0, 0, 0, 0}, {4}));
  CHECK_NOTHROW(encode_data(m, x, 2));
}

}  // namespace file_vae_test_data_posterior

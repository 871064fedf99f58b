// likelihood.cpp: the likelihood families p(x|z) of likelihood.h, one section each: Bernoulli,
// Gaussian with fixed sigma, Gaussian with learned diagonal variance, 256-way categorical, and the
// discretized logistic mixture of PixelCNN++. log_prob is a composition of autograd ops (its
// gradient comes from theirs); sample and mean work on plain Tensors.
//
// Parameter layout (likelihood.h): params (B, k*C, ...) is read as (B, k, C, ...), a view, so plane
// j*C + c holds parameter j of data channel c. For a family with k = 1 params has x's shape.
#include "vae/likelihood.h"

#include <cmath>
#include <limits>
#include <numbers>

namespace gv::vae {
namespace {

using ag::Var;
constexpr double kInf = std::numeric_limits<double>::infinity();

// ---- shared helpers -----------------------------------------------------------------------------

// (B, k*C, ...) -> (B, k, C, ...)
Shape planes_shape(const Shape& params, int64_t k) {
  Shape s = params;
  s[1] = params[1] / k;
  s.insert(s.begin() + 1, k);
  return s;
}

// x (B, C, ...) and params (B, k*C, ...) must fit; the error names the family and both shapes.
void check_fit(const std::string& family, const Tensor& x, const Shape& params, int64_t k) {
  GV_CHECK(x.dim() >= 2, ShapeError, "{} log_prob: data x of shape {} needs a batch axis and a channel axis (params {})",
           family, shape_str(x.shape()), shape_str(params));
  Shape want = x.shape();
  want[1] *= k;
  GV_CHECK(params == want, ShapeError,
           "{} log_prob: data x of shape {} and params of shape {} do not fit: params must be (B, k*C, ...) = {} "
           "with k = {} parameter planes per channel",
           family, shape_str(x.shape()), shape_str(params), shape_str(want), k);
}

// The number of dimensions of one example of x (B, ...).
double dims_per_example(const Tensor& x) {
  return double(shape_numel(Shape(x.shape().begin() + 1, x.shape().end())));
}

// The data shape (B, C, ...) that params (B, k*C, ...) describe, for sample and mean.
Shape data_shape(const std::string& family, const char* op, const Shape& params, int64_t k) {
  GV_CHECK(params.size() >= 2 && params[1] % k == 0, ShapeError,
           "{} {}: params of shape {} must be (B, k*C, ...) with k = {} parameter planes per channel",
           family, op, shape_str(params), k);
  Shape s = params;
  s[1] /= k;
  return s;
}

// x in params' dtype and on params' device (no copy when it already is).
Tensor like_params(const Tensor& x, const Var& params) {
  return x.to(params.dtype()).to(params.data().device());
}

// (B, ...) -> (B): the sum over every axis but the batch axis.
Var per_example(const Var& v) {
  Axes axes;
  for (int64_t d = 1; d < v.dim(); ++d) axes.push_back(d);
  return ag::sum(v, axes);
}

// A float64 host copy of x, contiguous.
Tensor host_f64(const Tensor& x) { return x.to(Device::cpu()).to(DType::f64).contiguous(); }

// Every data value within [lo, hi] (a NaN fails too); the error names the family and the value.
void check_range(const std::string& family, const Tensor& x, double lo, double hi, const char* what) {
  Tensor xc = host_f64(x);
  const double* p = xc.data<double>();
  for (int64_t i = 0; i < xc.numel(); ++i)
    GV_CHECK(p[i] >= lo && p[i] <= hi, ValueError, "{} log_prob: data value {} at flat position {} is outside {}",
             family, p[i], i, what);
}

// Gumbel(0, 1) noise -log(-log u), u uniform in (0, 1]: argmax(logits + noise) samples softmax(logits).
Tensor gumbel(const Shape& shape, Generator& g, const Tensor& like) {
  return neg(log(neg(log(uniform(shape, g, 0, 1, like.dtype(), like.device())))));
}

// ---- Bernoulli on logits ------------------------------------------------------------------------
// log p(x | l) = x log sigmoid(l) + (1 - x) log sigmoid(-l) = x l - softplus(l)
class Bernoulli final : public Likelihood {
 public:
  std::string name() const override { return "bernoulli"; }
  int64_t params_per_channel() const override { return 1; }

  Var log_prob(const Tensor& x, const Var& logits) const override {
    check_fit(name(), x, logits.shape(), 1);
    return per_example(Var(like_params(x, logits)) * logits - ag::softplus(logits));
  }
  Tensor sample(const Tensor& logits, Generator& g) const override {
    data_shape(name(), "sample", logits.shape(), 1);
    return bernoulli(sigmoid(logits), g);
  }
  Tensor mean(const Tensor& logits) const override {
    data_shape(name(), "mean", logits.shape(), 1);
    return sigmoid(logits);
  }
};

// ---- Gaussian with fixed standard deviation -----------------------------------------------------
// log N(x; mu, sigma^2) = -(x - mu)^2 / (2 sigma^2) - log(2 pi sigma^2) / 2: the L2 loss up to a
// constant; its gradient in mu is (x - mu) / sigma^2.
class GaussianFixed final : public Likelihood {
 public:
  explicit GaussianFixed(double sigma) : sigma_(sigma) {}
  std::string name() const override { return "gaussian"; }
  int64_t params_per_channel() const override { return 1; }

  Var log_prob(const Tensor& x, const Var& mu) const override {
    check_fit(name(), x, mu.shape(), 1);
    const double per_dim = dims_per_example(x);
    Var sq = per_example(ag::square(Var(like_params(x, mu)) - mu));
    return sq * (-0.5 / (sigma_ * sigma_)) - 0.5 * per_dim * std::log(2 * std::numbers::pi * sigma_ * sigma_);
  }
  Tensor sample(const Tensor& mu, Generator& g) const override {
    data_shape(name(), "sample", mu.shape(), 1);
    return mu + normal(mu.shape(), g, 0, sigma_, mu.dtype(), mu.device());
  }
  Tensor mean(const Tensor& mu) const override {
    data_shape(name(), "mean", mu.shape(), 1);
    return mu.clone();  // a fresh tensor, like every family's mean
  }

 private:
  double sigma_;
};

// ---- Gaussian with learned diagonal variance ----------------------------------------------------
// params = [mu planes, log variance planes] along axis 1; v = clamp(log var, min, max):
// log N(x; mu, e^v) = -((x - mu)^2 e^-v + v + log 2 pi) / 2
class GaussianLearned final : public Likelihood {
 public:
  GaussianLearned(double min_logvar, double max_logvar) : lo_(min_logvar), hi_(max_logvar) {}
  std::string name() const override { return "gaussian-learned"; }
  int64_t params_per_channel() const override { return 2; }

  Var log_prob(const Tensor& x, const Var& params) const override {
    check_fit(name(), x, params.shape(), 2);
    auto halves = ag::chunk(params, 2, 1);  // mu, log variance: (B, C, ...) each
    Var mu = halves[0], logvar = ag::clamp(halves[1], lo_, hi_);
    Var terms = ag::square(Var(like_params(x, params)) - mu) * ag::exp(-logvar) + logvar;
    const double per_dim = dims_per_example(x);
    return per_example(terms) * -0.5 - 0.5 * per_dim * std::log(2 * std::numbers::pi);
  }
  // x = mu + e^(v/2) eps, eps ~ N(0, 1)
  Tensor sample(const Tensor& params, Generator& g) const override {
    data_shape(name(), "sample", params.shape(), 2);
    auto halves = chunk(params, 2, 1);
    Tensor sd = exp(clamp(halves[1], lo_, hi_) * 0.5);
    return halves[0] + sd * normal(sd.shape(), g, 0, 1, params.dtype(), params.device());
  }
  Tensor mean(const Tensor& params) const override {
    data_shape(name(), "mean", params.shape(), 2);
    return chunk(params, 2, 1)[0].contiguous();
  }

 private:
  double lo_, hi_;
};

// ---- 256-way categorical ------------------------------------------------------------------------
// params = 256 logits l_0..l_255 per channel, read as (B, 256, C, ...); x = j/255 is value j:
// log p(x = j/255) = l_j - logsumexp_k l_k  (the log_softmax over axis 1 at index j, computed as a
// gather minus a logsumexp so that the forward pass makes no (B, 256, C, ...) tensor)
constexpr int64_t kLevels = 256;

class Categorical256 final : public Likelihood {
 public:
  std::string name() const override { return "categorical256"; }
  int64_t params_per_channel() const override { return kLevels; }

  Var log_prob(const Tensor& x, const Var& params) const override {
    check_fit(name(), x, params.shape(), kLevels);
    Var logits = ag::reshape(params, planes_shape(params.shape(), kLevels));  // (B, 256, C, ...)
    Tensor j = level_index(x);                                                 // (B, 1, C, ...)
    return per_example(ag::gather(logits, 1, j)) - per_example(ag::logsumexp(logits, {1}, true));
  }
  // Gumbel-max: argmax_k (l_k + Gumbel noise) is value k with probability softmax(l)_k
  Tensor sample(const Tensor& params, Generator& g) const override {
    data_shape(name(), "sample", params.shape(), kLevels);
    Tensor logits = params.reshape(planes_shape(params.shape(), kLevels));
    Tensor k = argmax(logits + gumbel(logits.shape(), g, logits), 1);
    return k.to(params.dtype()) / double(kLevels - 1);
  }
  // E[x] = sum_k softmax(l)_k k/255
  Tensor mean(const Tensor& params) const override {
    data_shape(name(), "mean", params.shape(), kLevels);
    Tensor logits = params.reshape(planes_shape(params.shape(), kLevels));
    Shape vshape(logits.dim(), 1);
    vshape[1] = kLevels;
    Tensor values = Tensor::arange(kLevels).to(params.dtype()).reshape(vshape) / double(kLevels - 1);
    return sum(softmax(logits, 1) * values.to(params.device()), {1});
  }

 private:
  // j = round(255 x), checked to lie in [0, 255]: (B, C, ...) -> int64 (B, 1, C, ...)
  Tensor level_index(const Tensor& x) const {
    Tensor xc = host_f64(x);
    Tensor j = Tensor::empty(xc.shape(), DType::i64);
    const double* px = xc.data<double>();
    int64_t* pj = j.data<int64_t>();
    for (int64_t i = 0; i < xc.numel(); ++i) {
      GV_CHECK(px[i] >= -0.5 / 255 && px[i] <= 1 + 0.5 / 255, ValueError,
               "{} log_prob: data value {} at flat position {} is outside [0, 1] (values j/255 of 8-bit j)", name(),
               px[i], i);
      pj[i] = std::llround(px[i] * (kLevels - 1));
    }
    return j.unsqueeze(1);
  }
};

// ---- discretized logistic mixture (PixelCNN++, Salimans et al. 2017) ----------------------------
// x in [-1, 1] on the 8-bit grid -1 + 2j/255, each value owning the bin [x - 1/255, x + 1/255].
// params = K mixture logits, K means, K log scales per channel, read as (B, 3K, C, ...); channels
// are independent given params (no channel-autoregressive coefficients, unlike PixelCNN++'s RGB
// variant). With sigma the logistic CDF, s_k = exp(max(log s_k, -7)):
//   p(x) = sum_k pi_k [sigma((x + 1/255 - mu_k) / s_k) - sigma((x - 1/255 - mu_k) / s_k)]
// except the edge bins, which take the tails: x = -1 uses sigma((-1 + 1/255 - mu_k) / s_k) and
// x = 1 uses 1 - sigma((1 - 1/255 - mu_k) / s_k). Where a bin's probability is below a threshold
// (float32 cancels catastrophically there) it is taken as the density at the bin's centre times
// the bin width 2/255. The threshold is PixelCNN++'s 1e-5 in float32; float64 keeps the exact
// difference down to 1e-10, so its probabilities sum to 1 within about that.
class LogisticMixture final : public Likelihood {
 public:
  explicit LogisticMixture(int64_t components) : K_(components) {}
  std::string name() const override { return "logistic-mixture"; }
  int64_t params_per_channel() const override { return 3 * K_; }

  Var log_prob(const Tensor& x, const Var& params) const override {
    check_fit(name(), x, params.shape(), 3 * K_);
    check_range(name(), x, -1 - 1.0 / 255, 1 + 1.0 / 255, "[-1, 1] (values -1 + 2j/255 of 8-bit j)");
    const double half_bin = 1.0 / 255, tiny = params.dtype() == DType::f32 ? 1e-5 : 1e-10;
    Var p5 = ag::reshape(params, planes_shape(params.shape(), 3 * K_));  // (B, 3K, C, ...)
    auto parts = ag::split(p5, {K_, K_, K_}, 1);                         // (B, K, C, ...) each
    Var log_pi = ag::log_softmax(parts[0], 1), mu = parts[1];
    Var log_s = ag::clamp(parts[2], -7, kInf);
    Var inv_s = ag::exp(-log_s);

    Tensor x5 = like_params(x, params).unsqueeze(1);  // (B, 1, C, ...)
    Var mid = inv_s * (Var(x5) - mu);                 // (x - mu) / s at the bin's centre
    Var upper = mid + inv_s * half_bin;               // ... at its upper edge
    Var lower = mid - inv_s * half_bin;               // ... at its lower edge
    // log sigma(t) = t - softplus(t); log(1 - sigma(t)) = -softplus(t)
    Var log_cdf_upper = upper - ag::softplus(upper);  // the bin of x = -1
    Var log_sf_lower = -ag::softplus(lower);          // the bin of x = 1
    Var bin = ag::sigmoid(upper) - ag::sigmoid(lower);
    Var log_bin = ag::log(ag::clamp(bin, 1e-12, 1));
    // log density of the logistic at the centre, plus log of the bin width 2/255
    Var log_mid = mid - log_s - 2 * ag::softplus(mid) + std::log(2 * half_bin);

    Tensor interior_ok = gt(bin.data(), tiny);
    Var log_p = ag::where(lt(x5, -0.999), log_cdf_upper,
                          ag::where(gt(x5, 0.999), log_sf_lower, ag::where(interior_ok, log_bin, log_mid)));
    return per_example(ag::logsumexp(log_p + log_pi, {1}, true));  // log sum_k pi_k p_k(x)
  }

  // Component k by Gumbel-max, then a logistic draw mu_k + s_k log(u / (1 - u)), clamped to
  // [-1, 1] and rounded to the 8-bit grid (which is exactly how the edge bins take the tails).
  Tensor sample(const Tensor& params, Generator& g) const override {
    Shape ds = data_shape(name(), "sample", params.shape(), 3 * K_);
    auto parts = split(params.reshape(planes_shape(params.shape(), 3 * K_)), {K_, K_, K_}, 1);
    Tensor k = argmax(parts[0] + gumbel(parts[0].shape(), g, params), 1, true);  // (B, 1, C, ...)
    Tensor mu = gather(parts[1], 1, k), log_s = clamp(gather(parts[2], 1, k), -7, kInf);
    Tensor u = uniform(mu.shape(), g, 0, 1, params.dtype(), params.device());
    Tensor y = clamp(mu + exp(log_s) * (log(u) - log1p(neg(u))), -1, 1);
    // nearest grid value -1 + 2j/255, j = floor(127.5 (y + 1) + 1/2) (non-negative: truncation floors)
    Tensor j = (y + 1.0) * 127.5 + 0.5;
    return (j.to(DType::i64).to(params.dtype()) / 127.5 - 1.0).reshape(ds);
  }
  // sum_k pi_k mu_k, clamped to [-1, 1]
  Tensor mean(const Tensor& params) const override {
    data_shape(name(), "mean", params.shape(), 3 * K_);
    auto parts = split(params.reshape(planes_shape(params.shape(), 3 * K_)), {K_, K_, K_}, 1);
    return clamp(sum(softmax(parts[0], 1) * parts[1], {1}), -1, 1);
  }

 private:
  int64_t K_;
};

}  // namespace

std::shared_ptr<Likelihood> bernoulli() { return std::make_shared<Bernoulli>(); }

std::shared_ptr<Likelihood> gaussian_fixed(double sigma) {
  GV_CHECK(sigma > 0 && std::isfinite(sigma), ValueError, "gaussian_fixed: sigma must be positive and finite, got {}",
           sigma);
  return std::make_shared<GaussianFixed>(sigma);
}

std::shared_ptr<Likelihood> gaussian_learned(double min_logvar, double max_logvar) {
  GV_CHECK(min_logvar <= max_logvar, ValueError, "gaussian_learned: min_logvar {} is above max_logvar {}", min_logvar,
           max_logvar);
  return std::make_shared<GaussianLearned>(min_logvar, max_logvar);
}

std::shared_ptr<Likelihood> categorical256() { return std::make_shared<Categorical256>(); }

std::shared_ptr<Likelihood> discretized_logistic_mixture(int64_t components) {
  GV_CHECK(components >= 1, ValueError, "discretized_logistic_mixture: needs at least 1 component, got {}", components);
  return std::make_shared<LogisticMixture>(components);
}

std::shared_ptr<Likelihood> make_likelihood(const std::string& name, double sigma, int64_t components) {
  if (name == "bernoulli") return bernoulli();
  if (name == "gaussian") return gaussian_fixed(sigma);
  if (name == "gaussian-learned") return gaussian_learned();
  if (name == "categorical256") return categorical256();
  if (name == "logistic-mixture") return discretized_logistic_mixture(components);
  GV_THROW(ValueError,
           "make_likelihood: unknown likelihood '{}'; allowed: bernoulli, gaussian, gaussian-learned, "
           "categorical256, logistic-mixture",
           name);
}

}  // namespace gv::vae

// likelihood.cpp: the likelihood families p(x|z) of likelihood.h, one section each: Bernoulli,
// Gaussian with fixed sigma, Gaussian with learned diagonal variance, 256-way categorical, and the
// discretized logistic mixture of PixelCNN++. log_prob is a composition of autograd ops (its
// gradient comes from theirs); sample and mean work on plain Tensors.
//
// Parameter layout (likelihood.h): params (B, k*C, ...) is read as (B, k, C, ...), a view, so plane
// j*C + c holds parameter j of data channel c. For a family with k = 1 params has x's shape.
#include "vae/likelihood.h"

#include <cmath>
#include <functional>
#include <limits>
#include <numbers>
#include <type_traits>
#include <vector>

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

// x (B, C, ...) and params (B, planes(C), ...) must fit; the error names the family, both shapes
// and what the planes are (`why`).
void check_planes(const std::string& family, const Tensor& x, const Shape& params,
                  const std::function<int64_t(int64_t)>& planes, const std::string& why) {
  GV_CHECK(x.dim() >= 2, ShapeError, "{} log_prob: data x of shape {} needs a batch axis and a channel axis (params {})",
           family, shape_str(x.shape()), shape_str(params));
  Shape want = x.shape();
  want[1] = planes(x.size(1));
  GV_CHECK(params == want, ShapeError, "{} log_prob: data x of shape {} and params of shape {} do not fit: params must be {} ({})",
           family, shape_str(x.shape()), shape_str(params), shape_str(want), why);
}
// The per-channel families: params (B, k*C, ...).
void check_fit(const std::string& family, const Tensor& x, const Shape& params, int64_t k) {
  check_planes(family, x, params, [k](int64_t C) { return k * C; },
               fmt::format("(B, k*C, ...) with k = {} parameter planes per channel", k));
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
// On a GPU the test is a device reduction and only its one count comes back; the data is copied
// to the host only to name the bad value when there is one.
void check_range(const std::string& family, const Tensor& x, double lo, double hi, const char* what) {
  if (!x.device().is_cpu()) {
    // in x's own dtype: every bound sits half a grid step beyond the last valid value, so rounding it
    // to float32 changes no answer, and no float64 copy of the batch is made
    const Tensor lo_t = Tensor::scalar(lo, x.dtype(), x.device()), hi_t = Tensor::scalar(hi, x.dtype(), x.device());
    if (sum(ge(x, lo_t) * le(x, hi_t)).item() == double(x.numel())) return;  // NaN compares false
  }
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
  bool discrete() const override { return true; }
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
  bool discrete() const override { return true; }
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
// log P(bin of x) of one logistic component, element-wise: x5 on the 8-bit grid -1 + 2j/255 (each
// value owns [x - 1/255, x + 1/255]), mu and the raw log scale broadcastable to it. With sigma the
// logistic CDF and s = exp(max(log s, -7)):
//   P = sigma((x + 1/255 - mu) / s) - sigma((x - 1/255 - mu) / s)
// except the edge bins, which take the tails: x = -1 uses sigma((-1 + 1/255 - mu) / s) and x = 1
// uses 1 - sigma((1 - 1/255 - mu) / s), both in log space (t - softplus(t), -softplus(t)), exact far
// into the tails. Where a bin's probability is below a threshold (float32 cancels catastrophically
// there) it is taken as the density at the bin's centre times the bin width 2/255. The threshold is
// PixelCNN++'s 1e-5 in float32; float64 keeps the exact difference down to 1e-10, so its
// probabilities sum to 1 within about that.
Var log_logistic_bin(const Tensor& x5, const Var& mu, const Var& raw_log_s) {
  const double half_bin = 1.0 / 255, tiny = mu.dtype() == DType::f32 ? 1e-5 : 1e-10;
  Var log_s = ag::clamp(raw_log_s, -7, kInf);
  Var inv_s = ag::exp(-log_s);
  Var mid = inv_s * (Var(x5) - mu);    // (x - mu) / s at the bin's centre
  Var upper = mid + inv_s * half_bin;  // ... at its upper edge
  Var lower = mid - inv_s * half_bin;  // ... at its lower edge
  Var log_cdf_upper = upper - ag::softplus(upper);  // the bin of x = -1
  Var log_sf_lower = -ag::softplus(lower);          // the bin of x = 1
  Var bin = ag::sigmoid(upper) - ag::sigmoid(lower);
  Var log_bin = ag::log(ag::clamp(bin, 1e-12, 1));
  // log density of the logistic at the centre, plus log of the bin width 2/255
  Var log_mid = mid - log_s - 2 * ag::softplus(mid) + std::log(2 * half_bin);
  Tensor interior_ok = gt(bin.data(), tiny);
  return ag::where(lt(x5, -0.999), log_cdf_upper,
                   ag::where(gt(x5, 0.999), log_sf_lower, ag::where(interior_ok, log_bin, log_mid)));
}

// A logistic draw mu + s log(u / (1 - u)) (s from the raw log scale, clamped at -7), clamped to
// [-1, 1] and rounded to the nearest grid value -1 + 2j/255: exactly the bins of log_logistic_bin,
// edge bins taking the tails.
Tensor draw_logistic_bin(const Tensor& mu, const Tensor& raw_log_s, Generator& g) {
  Tensor u = uniform(mu.shape(), g, 0, 1, mu.dtype(), mu.device());
  Tensor y = clamp(mu + exp(clamp(raw_log_s, -7, kInf)) * (log(u) - log1p(neg(u))), -1, 1);
  // j = floor(127.5 (y + 1) + 1/2), non-negative, so truncation floors
  Tensor j = (y + 1.0) * 127.5 + 0.5;
  return j.to(DType::i64).to(mu.dtype()) / 127.5 - 1.0;
}

// Channels independent given params, each its own mixture: params = K mixture logits, K means, K
// log scales per channel, read as (B, 3K, C, ...);
//   p(x_c) = sum_k pi_kc P_bin(x_c | mu_kc, s_kc)   (log_logistic_bin above).
class LogisticMixture final : public Likelihood {
 public:
  explicit LogisticMixture(int64_t components) : K_(components) {}
  std::string name() const override { return "logistic-mixture"; }
  bool discrete() const override { return true; }
  int64_t params_per_channel() const override { return 3 * K_; }

  Var log_prob(const Tensor& x, const Var& params) const override {
    check_fit(name(), x, params.shape(), 3 * K_);
    check_range(name(), x, -1 - 1.0 / 255, 1 + 1.0 / 255, "[-1, 1] (values -1 + 2j/255 of 8-bit j)");
    Var p5 = ag::reshape(params, planes_shape(params.shape(), 3 * K_));  // (B, 3K, C, ...)
    auto parts = ag::split(p5, {K_, K_, K_}, 1);                         // (B, K, C, ...) each
    const Tensor x5 = like_params(x, params).unsqueeze(1);               // (B, 1, C, ...)
    Var log_p = log_logistic_bin(x5, parts[1], parts[2]);
    return per_example(ag::logsumexp(log_p + ag::log_softmax(parts[0], 1), {1}, true));  // log sum_k pi_k p_k(x)
  }

  // Component k by Gumbel-max, then draw_logistic_bin of that component.
  Tensor sample(const Tensor& params, Generator& g) const override {
    Shape ds = data_shape(name(), "sample", params.shape(), 3 * K_);
    auto parts = split(params.reshape(planes_shape(params.shape(), 3 * K_)), {K_, K_, K_}, 1);
    Tensor k = argmax(parts[0] + gumbel(parts[0].shape(), g, params), 1, true);  // (B, 1, C, ...)
    return draw_logistic_bin(gather(parts[1], 1, k), gather(parts[2], 1, k), g).reshape(ds);
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

// ---- the RGB-coupled mixture of PixelCNN++ --------------------------------------------------------
// One mixture over the whole pixel: component k has a weight pi_k and, per channel c, a mean mu_kc,
// a log scale and coefficients a_kcc' (c' < c, squashed by tanh into (-1, 1)) that shift the mean of
// channel c linearly by the values of the channels before it, in R, G, B order:
//   p(x) = sum_k pi_k prod_c P_bin(x_c | mu_kc + sum_{c' < c} tanh(a_kcc') x_c', s_kc)
// Each factor is a distribution over x_c given the earlier channels, so p sums to 1 over the 256^C
// colours, and channel c depends only on channels c' < c (tests/vae/test_likelihood.cpp enumerates
// both). Layout: params (B, P, ...) with P = K (1 + 2C + C(C-1)/2), planes
//   [K logits | K*C means, plane K + k*C + c | K*C log scales | K*C(C-1)/2 coefficients, a_kcc' at
//   plane K + 2KC + k*C(C-1)/2 + c(c-1)/2 + c'].
class LogisticMixtureRGB final : public Likelihood {
 public:
  explicit LogisticMixtureRGB(int64_t components) : K_(components) {}
  std::string name() const override { return "logistic-mixture-rgb"; }
  bool discrete() const override { return true; }
  int64_t params_per_channel() const override { return 0; }  // coupled: see param_planes
  int64_t param_planes(int64_t channels) const override { return K_ * (1 + 2 * channels + pairs(channels)); }

  Var log_prob(const Tensor& x, const Var& params) const override {
    check_planes(name(), x, params.shape(), [this](int64_t C) { return param_planes(C); },
                 fmt::format("K = {} components, K (1 + 2C + C(C-1)/2) planes for C channels", K_));
    check_range(name(), x, -1 - 1.0 / 255, 1 + 1.0 / 255, "[-1, 1] (values -1 + 2j/255 of 8-bit j)");
    const int64_t C = x.size(1);
    Parts<Var> p = parts(params, C);
    const Tensor x5 = like_params(x, params).unsqueeze(1);  // (B, 1, C, ...)
    // the coupled means, channel by channel: (B, K, C, ...)
    std::vector<Var> means;
    for (int64_t c = 0; c < C; ++c) {
      Var m = ag::select(p.mu, 2, c);
      for (int64_t c2 = 0; c2 < c; ++c2)
        m = m + ag::tanh(ag::select(p.coef, 2, pair(c, c2))) * Var(x5.select(2, c2));
      means.push_back(ag::unsqueeze(m, 2));
    }
    Var log_p = ag::sum(log_logistic_bin(x5, ag::concat(means, 2), p.log_s), {2});  // (B, K, ...)
    return per_example(ag::logsumexp(log_p + ag::log_softmax(p.logits, 1), {1}));
  }

  // Component k by Gumbel-max, then the channels in order, each a draw_logistic_bin whose mean is
  // shifted by the already drawn (grid-rounded) earlier channels: the distribution log_prob scores.
  Tensor sample(const Tensor& params, Generator& g) const override {
    const int64_t C = channels_of(params, "sample");
    Parts<Tensor> p = parts(params, C);
    Tensor k = argmax(p.logits + gumbel(p.logits.shape(), g, params), 1, true);  // (B, 1, ...)
    Tensor k3 = k.unsqueeze(2);                                                   // (B, 1, 1, ...)
    auto pick = [&](const Tensor& t) {  // (B, K, n, ...) -> component k's (B, n, ...)
      Shape s = t.shape();
      s[1] = 1;
      return gather(t, 1, k3.expand(s).contiguous()).squeeze(1);
    };
    const Tensor mu = pick(p.mu), log_s = pick(p.log_s), coef = C > 1 ? tanh(pick(p.coef)) : Tensor();
    std::vector<Tensor> xs;
    for (int64_t c = 0; c < C; ++c) {
      Tensor m = mu.select(1, c);
      for (int64_t c2 = 0; c2 < c; ++c2) m = m + coef.select(1, pair(c, c2)) * xs[size_t(c2)];
      xs.push_back(draw_logistic_bin(m, log_s.select(1, c).contiguous(), g));
    }
    for (Tensor& t : xs) t = t.unsqueeze(1);
    return concat(xs, 1);
  }
  // The mean of the continuous mixture (no rounding, no tails), clamped to [-1, 1]: per component
  // E[x_c] = mu_kc + sum_{c' < c} tanh(a_kcc') E[x_c'] (the coupling is linear), weighted by pi_k.
  Tensor mean(const Tensor& params) const override {
    const int64_t C = channels_of(params, "mean");
    Parts<Tensor> p = parts(params, C);
    std::vector<Tensor> m;  // (B, K, ...) each
    for (int64_t c = 0; c < C; ++c) {
      Tensor mc = p.mu.select(2, c);
      for (int64_t c2 = 0; c2 < c; ++c2) mc = mc + tanh(p.coef.select(2, pair(c, c2))) * m[size_t(c2)];
      m.push_back(mc);
    }
    const Tensor pi = softmax(p.logits, 1);
    std::vector<Tensor> out;
    for (const Tensor& mc : m) out.push_back(clamp(sum(pi * mc, {1}), -1, 1).unsqueeze(1));
    return concat(out, 1);
  }

 private:
  static int64_t pairs(int64_t C) { return C * (C - 1) / 2; }
  static int64_t pair(int64_t c, int64_t c2) { return c * (c - 1) / 2 + c2; }
  template <class T>
  struct Parts {
    T logits, mu, log_s, coef;  // (B, K, ...), (B, K, C, ...) twice, (B, K, C(C-1)/2, ...) (undefined for C = 1)
  };
  template <class T>
  Parts<T> parts(const T& params, int64_t C) const {
    const int64_t nc = pairs(C);
    std::vector<int64_t> sizes = {K_, K_ * C, K_ * C};
    if (nc > 0) sizes.push_back(K_ * nc);
    std::vector<T> s;
    if constexpr (std::is_same_v<T, Var>) s = ag::split(params, sizes, 1);
    else s = split(params, sizes, 1);
    auto planes = [&](const T& t, int64_t n) {
      Shape sh = t.shape();
      sh[1] = n;
      sh.insert(sh.begin() + 1, K_);
      if constexpr (std::is_same_v<T, Var>) return ag::reshape(t, sh);
      else return t.reshape(sh);
    };
    return {s[0], planes(s[1], C), planes(s[2], C), nc > 0 ? planes(s[3], nc) : T()};
  }
  // C from params (B, K (1 + 2C + C(C-1)/2), ...); ShapeError when no C fits
  int64_t channels_of(const Tensor& params, const char* op) const {
    GV_CHECK(params.dim() >= 2, ShapeError, "{} {}: params of shape {} need a batch and a plane axis", name(), op,
             shape_str(params.shape()));
    for (int64_t C = 1; param_planes(C) <= params.size(1); ++C)
      if (param_planes(C) == params.size(1)) return C;
    GV_THROW(ShapeError, "{} {}: params of shape {} have {} planes; K = {} components need K (1 + 2C + C(C-1)/2) for C "
             "channels ({} for RGB)", name(), op, shape_str(params.shape()), params.size(1), K_, param_planes(3));
  }
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

std::shared_ptr<Likelihood> discretized_logistic_mixture_rgb(int64_t components) {
  GV_CHECK(components >= 1, ValueError, "discretized_logistic_mixture_rgb: needs at least 1 component, got {}",
           components);
  return std::make_shared<LogisticMixtureRGB>(components);
}

std::shared_ptr<Likelihood> make_likelihood(const std::string& name, double sigma, int64_t components) {
  if (name == "bernoulli") return bernoulli();
  if (name == "gaussian") return gaussian_fixed(sigma);
  if (name == "gaussian-learned") return gaussian_learned();
  if (name == "categorical256") return categorical256();
  if (name == "logistic-mixture") return discretized_logistic_mixture(components);
  if (name == "logistic-mixture-rgb") return discretized_logistic_mixture_rgb(components);
  GV_THROW(ValueError,
           "make_likelihood: unknown likelihood '{}'; allowed: bernoulli, gaussian, gaussian-learned, "
           "categorical256, logistic-mixture, logistic-mixture-rgb",
           name);
}

}  // namespace gv::vae

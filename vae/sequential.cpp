// sequential.cpp: the sequential VAE and infusion training (sequential.h): the per-step network,
// the summed per-step objective, the two chains, and the per-step data posterior of Proposition 5.
#include "vae/sequential.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "vae/model.h"

namespace gv::vae {

using ag::Var;

std::string sequential_kinds_help() { return "sequential, infusion"; }
std::string sequential_gates_help() { return "scalar, map"; }

namespace {

void check_config(const SequentialConfig& c) {
  GV_CHECK(c.kind == "sequential" || c.kind == "infusion", ValueError,
           "SequentialVAE: unknown kind '{}'; known: {}", c.kind, sequential_kinds_help());
  GV_CHECK(c.gate == "scalar" || c.gate == "map", ValueError, "SequentialVAE: unknown gate '{}'; known: {}", c.gate,
           sequential_gates_help());
  GV_CHECK(c.data_shape.size() == 3 && c.data_shape[0] > 0 && c.data_shape[1] > 0 && c.data_shape[2] > 0,
           ShapeError, "SequentialVAE: data_shape must be (C, H, W) with positive sizes, got {}",
           shape_str(c.data_shape));
  GV_CHECK(c.data_shape[1] % 4 == 0 && c.data_shape[2] % 4 == 0, ShapeError,
           "SequentialVAE: height and width must be divisible by 4 (two stride-2 convolutions), got {}x{}",
           c.data_shape[1], c.data_shape[2]);
  GV_CHECK(c.steps >= 1, ValueError, "SequentialVAE: steps must be >= 1, got {}", c.steps);
  GV_CHECK(c.kind == "infusion" || c.latent >= 1, ValueError, "SequentialVAE: latent per step must be >= 1, got {}",
           c.latent);
  GV_CHECK(c.channels1 >= 1 && c.channels2 >= 1, ValueError, "SequentialVAE: channels must be >= 1, got {} and {}",
           c.channels1, c.channels2);
  GV_CHECK(std::isfinite(c.alpha0) && std::isfinite(c.alpha_step) && c.alpha0 >= 0 && c.alpha0 <= 1 &&
               c.alpha_step >= 0,
           ValueError, "SequentialVAE: infusion needs 0 <= alpha0 <= 1 and alpha_step >= 0, got {} and {}", c.alpha0,
           c.alpha_step);
}

void check_images(const char* op, const Tensor& x, const Shape& ds) {
  bool ok = x.defined() && x.dim() == 4 && x.size(0) > 0 && std::equal(ds.begin(), ds.end(), x.shape().begin() + 1);
  GV_CHECK(ok, ShapeError, "{}: expected images (B, {}) with B >= 1, got {}", op, fmt::join(ds, ", "),
           x.defined() ? shape_str(x.shape()) : std::string("nothing"));
}

Tensor in_dtype(const Tensor& x, DType dt) { return x.dtype() == dt ? x : x.to(dt); }
// x in the model's dtype, on its device
Tensor placed(const Tensor& x, const SequentialVAE& m) { return in_dtype(x, m.dtype()).to(m.device()); }

}  // namespace

// ---- one step ----------------------------------------------------------------------------------------
SequentialStep::SequentialStep(const SequentialConfig& c, int64_t t, Generator& g) : c_(c) {
  const int64_t C = c.data_shape[0], H4 = c.data_shape[1] / 4, W4 = c.data_shape[2] / 4;
  const int64_t c1 = c.channels1, c2 = c.channels2, flat = c2 * H4 * W4;
  const nn::ConvOptions s2{.stride = 2, .padding = 1};
  has_z_ = c.kind == "sequential";
  reads_prev_ = c.kind == "infusion" || t > 0;
  if (has_z_) {
    // the encoder of W4 (BENCHMARKS.md): two stride-2 convolutions, then one linear layer -> [mu, logvar]
    encoder_ = register_module("encoder", std::make_shared<nn::Sequential>(std::initializer_list<std::shared_ptr<nn::Layer>>{
        std::make_shared<nn::Conv2d>(C, c1, 4, g, s2), std::make_shared<nn::LeakyReLU>(0.1),
        std::make_shared<nn::Conv2d>(c1, c2, 4, g, s2), std::make_shared<nn::LeakyReLU>(0.1),
        std::make_shared<nn::Flatten>(), std::make_shared<nn::Linear>(flat, 2 * c.latent, g)}));
    from_z_ = register_module("from_z", std::make_shared<nn::Sequential>(std::initializer_list<std::shared_ptr<nn::Layer>>{
        std::make_shared<nn::Linear>(c.latent, flat, g), std::make_shared<nn::Reshape>(Shape{c2, H4, W4})}));
  }
  if (reads_prev_) {
    down1_ = register_module("down1", std::make_shared<nn::Conv2d>(C, c1, 4, g, s2));
    down2_ = register_module("down2", std::make_shared<nn::Conv2d>(c1, c2, 4, g, s2));
  }
  up1_ = register_module("up1", std::make_shared<nn::ConvTranspose2d>(c2, c1, 4, g, s2));
  up2_ = register_module("up2", std::make_shared<nn::ConvTranspose2d>(c1, C, 4, g, s2));
  if (reads_prev_) {
    if (c.gate == "map") gate_map_ = register_module("gate_map", std::make_shared<nn::ConvTranspose2d>(c1, 1, 4, g, s2));
    else gate_ = register_parameter("gate", Tensor::zeros({1}));  // r = sigmoid(0) = 1/2 at the start
  }
}

std::pair<Var, Var> SequentialStep::encode(const Var& x) {
  GV_CHECK(has_z_, ValueError, "SequentialStep::encode: an infusion step has no encoder");
  Var h = (*encoder_)(x);  // (B, 2Z)
  auto parts = ag::chunk(h, 2, 1);
  return {parts[0], parts[1]};
}

SequentialStep::Out SequentialStep::decode(const Var& z, const Var& prev) {
  GV_CHECK(z.defined() == has_z_, ValueError, "SequentialStep::decode: this {} step {} a latent code", c_.kind,
           has_z_ ? "needs" : "takes no");
  GV_CHECK(prev.defined() == reads_prev_, ValueError, "SequentialStep::decode: this step {} a previous image",
           reads_prev_ ? "needs" : "takes no");
  Var h, d1;
  if (has_z_) h = (*from_z_)(z);  // (B, c2, H/4, W/4)
  if (reads_prev_) {
    d1 = ag::leaky_relu((*down1_)(prev), 0.1);          // (B, c1, H/2, W/2)
    Var d2 = ag::leaky_relu((*down2_)(d1), 0.1);        // (B, c2, H/4, W/4)
    h = h.defined() ? h + d2 : d2;
  }
  Var u = (*up1_)(h);
  if (c_.skips && d1.defined()) u = u + d1;  // the U-Net skip: the previous image's features at H/2
  u = ag::relu(u);
  Var out = (*up2_)(u);  // x^_t (B, C, H, W)
  Out o;
  o.proposal = out;
  if (!reads_prev_) {
    o.x = out;
    return o;
  }
  o.gate = gate_map_ ? ag::sigmoid((*gate_map_)(u)) : ag::sigmoid(gate_);  // (B, 1, H, W) or (1)
  // x_t = r x^_t + (1 - r) x_(t-1), written with two products so that r = 1 gives x^_t exactly and
  // r = 0 gives x_(t-1) exactly (x_(t-1) + r (x^_t - x_(t-1)) is not exact at r = 1)
  o.x = o.gate * out + (1.0 - o.gate) * prev;
  return o;
}

// ---- the model -------------------------------------------------------------------------------------
SequentialVAE::SequentialVAE(const SequentialConfig& c, Generator& g) : c_(c) {
  check_config(c_);
  for (int64_t t = 0; t < c_.steps; ++t)
    steps_.push_back(register_module("step" + std::to_string(t), std::make_shared<SequentialStep>(c_, t, g)));
  register_buffer("data_mean", Tensor::zeros(c_.data_shape));
  register_buffer("data_std", Tensor::ones(c_.data_shape));
}

SequentialStep& SequentialVAE::step(int64_t t) {
  GV_CHECK(t >= 0 && t < c_.steps, IndexError, "SequentialVAE::step: step {} of a {}-step model", t, c_.steps);
  return *steps_[size_t(t)];
}

void SequentialVAE::set_data_statistics(const Tensor& images) {
  check_images("SequentialVAE::set_data_statistics", images, c_.data_shape);
  const DType dt = buffer("data_mean").dtype();
  // per-pixel sums in float64, a block of images at a time (the whole set in float64 would be
  // 8 bytes per value: 1.2 GB for CIFAR-10)
  const int64_t N = images.size(0), block = 1024;
  Tensor s1 = Tensor::zeros(c_.data_shape, DType::f64), s2 = Tensor::zeros(c_.data_shape, DType::f64);
  for (int64_t b = 0; b < N; b += block) {
    const Tensor x = images.slice(0, b, std::min(N, b + block)).to(DType::f64);
    s1 = s1 + gv::sum(x, {0});
    s2 = s2 + gv::sum(gv::square(x), {0});
  }
  const Tensor m = s1 / double(N);
  const Tensor var = gv::clamp(s2 / double(N) - gv::square(m), 0, std::numeric_limits<double>::infinity());
  set_buffer("data_mean", m.to(dt));
  set_buffer("data_std", gv::sqrt(var).to(dt));
}

double SequentialVAE::alpha(int64_t t) const { return std::min(1.0, c_.alpha0 + double(t) * c_.alpha_step); }

Tensor SequentialVAE::infusion_noise(int64_t B, Generator& g) const {
  const DType dt = dtype();
  Shape s = c_.data_shape;
  s.insert(s.begin(), B);
  Tensor eps = normal(s, g, 0, 1, dt, device());
  return gv::clamp(buffer("data_mean").to(dt) + buffer("data_std").to(dt) * eps, 0, 1);
}

Tensor SequentialVAE::infuse(const Tensor& x, const Tensor& prev, double alpha, Generator& g) {
  if (alpha <= 0) return prev;  // no true pixel: x is never read
  GV_CHECK(x.defined() && x.shape() == prev.shape(), ShapeError, "infuse: the data {} and the state {} differ",
           x.defined() ? shape_str(x.shape()) : std::string("nothing"), shape_str(prev.shape()));
  // one draw per pixel, shared by its channels
  Tensor m = bernoulli(Tensor::full({prev.size(0), 1, prev.size(2), prev.size(3)}, alpha, prev.dtype(), prev.device()), g);
  return gv::where(m.expand(prev.shape()), x, prev);
}

// ---- the objective ------------------------------------------------------------------------------
double kl_warmup_weight(int64_t step, double scale) {
  GV_CHECK(scale > 0, ValueError, "kl_warmup_weight: the scale must be positive, got {}", scale);
  return 1.0 - std::exp(-double(step) / scale);
}

SequentialTerms sequential_objective(SequentialVAE& m, const Tensor& x, const Likelihood& p, const Regularizer& r,
                                     double weight, Generator& g) {
  check_images("sequential_objective", x, m.config().data_shape);
  const int64_t C = m.config().data_shape[0];
  GV_CHECK(p.param_planes(C) == C, ValueError,
           "sequential_objective: the steps output one value per channel (the mean); the family {} needs {} planes "
           "for {} channels",
           p.name(), p.param_planes(C), C);
  const Tensor xd = placed(x, m);
  const bool detach = m.config().detach_prev;
  SequentialTerms terms;
  terms.weight = weight;
  Var prev;
  if (m.infusion()) prev = Var(m.infusion_noise(x.size(0), g));
  Var loss;
  for (int64_t t = 0; t < m.steps(); ++t) {
    SequentialStep& st = m.step(t);
    SequentialStepTerms s;
    SequentialStep::Out o;
    if (m.infusion()) {
      const Var zt(SequentialVAE::infuse(xd, prev.data(), m.alpha(t), g));  // the infused state: data, no graph
      o = st.decode(Var(), zt);
    } else {
      auto [mu, logvar] = st.encode(Var(xd));
      s.q = reparameterize(mu, logvar, g);
      o = st.decode(s.q.z, prev);
      s.regularizer = r.value(s.q, g);
    }
    s.x = o.x;
    s.gate_mean = o.gate.defined() ? gv::mean(o.gate.data()).item() : 0.0;
    s.reconstruction = ag::mean(p.log_prob(xd, o.x));
    Var lt = m.infusion() ? -s.reconstruction * (double(t + 1) / double(m.steps()))
                          : -(s.reconstruction - s.regularizer * weight);
    loss = loss.defined() ? loss + lt : lt;
    prev = (detach || m.infusion()) ? o.x.detach() : o.x;
    terms.steps.push_back(std::move(s));
  }
  terms.loss = loss;
  return terms;
}

// ---- sampling --------------------------------------------------------------------------------------
std::vector<Tensor> sample_chain(SequentialVAE& m, int64_t B, Generator& g) {
  GV_CHECK(B >= 1, ValueError, "sample_chain: the number of samples must be >= 1, got {}", B);
  EvalScope scope(m);
  const DType dt = m.dtype();
  std::vector<Tensor> out;
  Var prev;
  if (m.infusion()) prev = Var(m.infusion_noise(B, g));
  for (int64_t t = 0; t < m.steps(); ++t) {
    Var z;
    if (!m.infusion()) z = Var(normal({B, m.config().latent}, g, 0, 1, dt, m.device()));  // z_t ~ p(z_t)
    // infusion samples at alpha = 0: the state goes in as it is, no data anywhere
    prev = m.step(t).decode(z, prev).x;
    out.push_back(prev.data().to(Device::cpu()));  // chains are for figures and metrics: on the host
  }
  return out;
}

std::vector<Tensor> reconstruction_chain(SequentialVAE& m, const Tensor& x, Generator& g, bool use_mean) {
  check_images("reconstruction_chain", x, m.config().data_shape);
  EvalScope scope(m);
  const Tensor xd = placed(x, m);
  std::vector<Tensor> out;
  Var prev;
  if (m.infusion()) prev = Var(m.infusion_noise(x.size(0), g));
  for (int64_t t = 0; t < m.steps(); ++t) {
    SequentialStep& st = m.step(t);
    if (m.infusion()) {
      prev = st.decode(Var(), Var(SequentialVAE::infuse(xd, prev.data(), m.alpha(t), g))).x;
    } else {
      auto [mu, logvar] = st.encode(Var(xd));
      Var z = use_mean ? mu : reparameterize(mu, logvar, g).z;
      prev = st.decode(z, prev).x;
    }
    out.push_back(prev.data().to(Device::cpu()));  // chains are for figures and metrics: on the host
  }
  return out;
}

// ---- Proposition 5 ---------------------------------------------------------------------------------
std::vector<EncodedData> encode_steps(SequentialVAE& m, const Tensor& images, int64_t batch) {
  GV_CHECK(!m.infusion(), ValueError,
           "encode_steps: infusion training has no encoder; its q(z_t|x) is the infusion process, whose density is "
           "not computed here");
  std::vector<EncodedData> out;
  for (int64_t t = 0; t < m.steps(); ++t) {
    try {
      out.push_back(encode_data(
          m, [&](const Var& x) { return m.step(t).encode(x); }, m.config().data_shape, images, batch));
    } catch (const NonFiniteError& e) {
      GV_THROW(NonFiniteError, "step {}: {}", t, e.what());
    }
  }
  return out;
}

EncodedData concat_steps(const std::vector<EncodedData>& steps, int64_t t) {
  GV_CHECK(t >= 0 && t < int64_t(steps.size()), IndexError, "concat_steps: step {} of {}", t, steps.size());
  std::vector<Tensor> mu, lv;
  for (int64_t s = 0; s <= t; ++s) {
    mu.push_back(steps[size_t(s)].mu);
    lv.push_back(steps[size_t(s)].logvar);
  }
  return {gv::concat(mu, 1).contiguous(), gv::concat(lv, 1).contiguous()};
}

std::vector<StepPosterior> step_posterior_variance(const std::vector<EncodedData>& steps, const Tensor& images,
                                                   int64_t K, Generator& g, const DataPosteriorOptions& o) {
  GV_CHECK(!steps.empty(), ValueError, "step_posterior_variance: no steps");
  GV_CHECK(K >= 2, ValueError, "step_posterior_variance: needs K >= 2 latent points (a standard error), got {}", K);
  const int64_t N = steps[0].mu.size(0);
  for (const auto& s : steps)
    GV_CHECK(s.mu.size(0) == N, ShapeError, "step_posterior_variance: steps encode {} and {} images", N,
             s.mu.size(0));
  // the points: image i_k uniform (with replacement), then z_s ~ q_s(z_s | x_(i_k)) for every step s
  Tensor u = uniform({K}, g, 0, 1, DType::f64).contiguous();
  std::vector<int64_t> idx(static_cast<size_t>(K));
  for (int64_t k = 0; k < K; ++k) idx[size_t(k)] = std::min(N - 1, int64_t(u.data<double>()[k] * double(N)));
  const Tensor rows = Tensor::from_vector(idx, {K, 1});
  std::vector<Tensor> draws;
  for (const auto& s : steps) {
    const Tensor ix = rows.to(s.mu.device()).expand({K, s.mu.size(1)});  // row i_k of every column
    const Tensor mu = gv::gather(s.mu, 0, ix), sd = gv::exp(gv::gather(s.logvar, 0, ix) * 0.5);
    draws.push_back(mu + sd * normal(mu.shape(), g, 0, 1, DType::f64, mu.device()));
  }
  std::vector<StepPosterior> out;
  for (int64_t t = 0; t < int64_t(steps.size()); ++t) {
    std::vector<Tensor> zs(draws.begin(), draws.begin() + t + 1);
    DataPosterior dp = data_posterior(concat_steps(steps, t), images, gv::concat(zs, 1).contiguous(), o);
    double s1 = 0, s2 = 0, ess = 0;
    for (int64_t k = 0; k < K; ++k) {
      s1 += dp.variance[size_t(k)];
      s2 += dp.variance[size_t(k)] * dp.variance[size_t(k)];
      ess += dp.ess[size_t(k)];
    }
    StepPosterior sp;
    sp.variance = s1 / double(K);
    sp.variance_se = std::sqrt(std::max(0.0, s2 / double(K) - sp.variance * sp.variance) / double(K - 1));
    sp.ess = ess / double(K);
    out.push_back(sp);
  }
  return out;
}

// ---- sharpness ----------------------------------------------------------------------------------------
double laplacian_variance(const Tensor& images) {
  GV_CHECK(images.defined() && images.dim() == 4 && images.size(0) > 0 && images.size(2) >= 3 && images.size(3) >= 3,
           ShapeError, "laplacian_variance: expected images (N, C, H, W) with N >= 1 and H, W >= 3, got {}",
           images.defined() ? shape_str(images.shape()) : std::string("nothing"));
  const Tensor x = gv::clamp(images.to(DType::f64), 0, 1).to(Device::cpu()).contiguous();
  const int64_t N = x.size(0), C = x.size(1), H = x.size(2), W = x.size(3);
  const double* p = x.data<double>();
  std::vector<double> grey(size_t(H * W));
  double total = 0;
  for (int64_t n = 0; n < N; ++n) {
    std::fill(grey.begin(), grey.end(), 0.0);
    for (int64_t c = 0; c < C; ++c)
      for (int64_t i = 0; i < H * W; ++i) grey[size_t(i)] += p[(n * C + c) * H * W + i] / double(C);
    double s1 = 0, s2 = 0;
    for (int64_t i = 1; i + 1 < H; ++i)
      for (int64_t j = 1; j + 1 < W; ++j) {
        const double* q = grey.data() + i * W + j;
        const double l = 4 * q[0] - q[-W] - q[W] - q[-1] - q[1];
        s1 += l, s2 += l * l;
      }
    const double m = double((H - 2) * (W - 2));
    total += std::max(0.0, s2 / m - (s1 / m) * (s1 / m));
  }
  return total / double(N);
}

}  // namespace gv::vae

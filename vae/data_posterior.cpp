// data_posterior.cpp: q(x|z) over a data set, summarized at chosen latent points (see data_posterior.h for
// the formulas and the streaming logsumexp).
#include "vae/data_posterior.h"

#include <algorithm>
#include <cmath>

namespace gv::vae {

namespace {

Tensor to_cpu_f64(const Tensor& t) {
  Tensor r = t.device() == Device::cpu() ? t : t.to(Device::cpu());
  return (r.dtype() == DType::f64 ? r : r.to(DType::f64)).contiguous();
}

void check_images(const char* op, const Tensor& images) {
  GV_CHECK(images.defined() && images.dim() >= 2, ShapeError, "{}: images must be (N, C, H, W), got {}", op,
           images.defined() ? shape_str(images.shape()) : std::string("an undefined tensor"));
  GV_CHECK(images.size(0) > 0, ValueError, "{}: no images (shape {})", op, shape_str(images.shape()));
}

// z must be (K, Z) with K >= 1 and Z = latent.
void check_latents(const char* op, const Tensor& z, int64_t latent, const char* whose) {
  GV_CHECK(z.defined() && z.dim() == 2 && z.size(1) == latent && z.size(0) > 0, ShapeError,
           "{}: latent points z must be (K, {}) ({} latent size is {}), got {}", op, latent, whose, latent,
           z.defined() ? shape_str(z.shape()) : std::string("an undefined tensor"));
}

}  // namespace

EncodedData encode_data(Model& model, const Tensor& images, int64_t batch,
                        const std::function<void(int64_t, int64_t)>& progress) {
  return encode_data(
      model, [&](const ag::Var& x) { return model.encode(x); }, model.data_shape(), images, batch, progress);
}

EncodedData encode_data(nn::Module& owner, const GaussianEncoder& encode, const Shape& data_shape,
                        const Tensor& images, int64_t batch, const std::function<void(int64_t, int64_t)>& progress) {
  check_images("encode_data", images);
  GV_CHECK(batch > 0, ValueError, "encode_data: batch must be positive, got {}", batch);
  const Shape& want = data_shape;
  const Shape got(images.shape().begin() + 1, images.shape().end());
  GV_CHECK(got == want, ShapeError, "encode_data: images {} do not match the model's data shape (N, {}...) = {}",
           shape_str(images.shape()), shape_str(want), shape_str(want));
  EvalScope scope(owner);
  auto params = owner.parameters();
  const DType dtype = owner.dtype();
  const Device device = params.empty() ? Device::cpu() : params.front().data().device();
  const int64_t n = images.size(0);
  std::vector<Tensor> mus, logvars;
  for (int64_t s = 0; s < n; s += batch) {
    const int64_t e = std::min(n, s + batch);
    Tensor x = images.slice(0, s, e);
    if (!(x.device() == device)) x = x.to(device);
    if (x.dtype() != dtype) x = x.to(dtype);
    auto [mu, logvar] = encode(ag::Var(x));  // (B, Z) each
    mus.push_back(to_cpu_f64(mu.data()));
    logvars.push_back(to_cpu_f64(logvar.data()));
    // a posterior that is not finite would make every figure built on it garbage
    for (const auto& [what, t] : {std::pair{"mean", mus.back()}, std::pair{"variance", exp(logvars.back())}})
      if (const auto bad = first_non_finite(t))
        GV_THROW(NonFiniteError, "encode_data: the posterior q(z|x) of image {} is not finite: its {} is {}",
                 s + bad->index / t.size(1), what, bad->value);
    if (progress) progress(e, n);
  }
  return {concat(mus, 0), concat(logvars, 0)};
}

DataPosterior data_posterior(const EncodedData& enc, const Tensor& images, const Tensor& z,
                                 const DataPosteriorOptions& o) {
  check_images("data_posterior", images);
  GV_CHECK(enc.mu.defined() && enc.logvar.defined() && enc.mu.dim() == 2 && enc.mu.shape() == enc.logvar.shape(),
           ShapeError, "data_posterior: encodings must be mu and logvar of the same shape (N, Z), got {} and {}",
           enc.mu.defined() ? shape_str(enc.mu.shape()) : "undefined",
           enc.logvar.defined() ? shape_str(enc.logvar.shape()) : "undefined");
  const int64_t n = images.size(0), zdim = enc.mu.size(1);
  GV_CHECK(enc.mu.size(0) == n, ShapeError, "data_posterior: {} encodings (mu {}) for {} images {}", enc.mu.size(0),
           shape_str(enc.mu.shape()), n, shape_str(images.shape()));
  check_latents("data_posterior", z, zdim, "the encodings'");
  GV_CHECK(o.block > 0, ValueError, "data_posterior: block must be positive, got {}", o.block);
  const int64_t k = z.size(0), d = images.numel() / n;

  const std::vector<double> zv = to_cpu_f64(z).to_vector<double>();  // (K, Z)
  const std::vector<double> mu = to_cpu_f64(enc.mu).to_vector<double>();
  const std::vector<double> logvar = to_cpu_f64(enc.logvar).to_vector<double>();
  // per image: 1/var (N, Z) and c_i = sum_j logvar_ij + Z log 2pi
  std::vector<double> inv_var(mu.size()), c((size_t)n, (double)zdim * kLog2Pi);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < zdim; ++j) {
      const size_t ij = (size_t)(i * zdim + j);
      inv_var[ij] = std::exp(-logvar[ij]);
      c[(size_t)i] += logvar[ij];
    }

  // running sums per latent point, relative to the running maximum m_max[k] of log q(z_k|x_i)
  std::vector<double> m_max((size_t)k, -INFINITY), s1((size_t)k, 0.0), s2((size_t)k, 0.0), q2((size_t)k, 0.0);
  Tensor acc = Tensor::zeros({k, d}, DType::f64);  // A_k = sum_i e_ik x_i: (K, D)
  double* a = acc.data<double>();
  std::vector<double> logq, scale((size_t)k), sq_norm;
  for (int64_t s = 0; s < n; s += o.block) {
    const int64_t e = std::min(n, s + o.block), b = e - s;
    const Tensor xb = to_cpu_f64(images.slice(0, s, e)).reshape({b, d});  // (B, D)
    const double* xp = xb.data<double>();
    sq_norm.assign((size_t)b, 0.0);
    for (int64_t i = 0; i < b; ++i)
      for (int64_t t = 0; t < d; ++t) sq_norm[(size_t)i] += xp[i * d + t] * xp[i * d + t];
    // log q(z_k|x_i) = -1/2 [ sum_j (z_kj - mu_ij)^2 / var_ij + c_i ]: (K, B)
    logq.assign((size_t)(k * b), 0.0);
    for (int64_t kk = 0; kk < k; ++kk)
      for (int64_t i = 0; i < b; ++i) {
        double quad = c[(size_t)(s + i)];
        for (int64_t j = 0; j < zdim; ++j) {
          const size_t ij = (size_t)((s + i) * zdim + j);
          const double diff = zv[(size_t)(kk * zdim + j)] - mu[ij];
          quad += diff * diff * inv_var[ij];
        }
        logq[(size_t)(kk * b + i)] = -0.5 * quad;
      }
    // new maximum per row; earlier sums rescaled by exp(old max - new max); e_ik overwrites logq
    for (int64_t kk = 0; kk < k; ++kk) {
      double* row = &logq[(size_t)(kk * b)];
      const double mnew = std::max(m_max[(size_t)kk], *std::max_element(row, row + b));
      const double sc = std::isfinite(m_max[(size_t)kk]) ? std::exp(m_max[(size_t)kk] - mnew) : 0.0;
      scale[(size_t)kk] = sc;
      s1[(size_t)kk] *= sc;
      s2[(size_t)kk] *= sc * sc;
      q2[(size_t)kk] *= sc;
      for (int64_t i = 0; i < b; ++i) {
        const double w = std::isfinite(mnew) ? std::exp(row[i] - mnew) : 0.0;
        row[i] = w;
        s1[(size_t)kk] += w;
        s2[(size_t)kk] += w * w;
        q2[(size_t)kk] += w * sq_norm[(size_t)i];
      }
      m_max[(size_t)kk] = mnew;
    }
    // A = diag(scale) A + E (K, B) @ X (B, D)
    const Tensor part = matmul(Tensor::from_vector(logq, {k, b}), xb).contiguous();  // (K, D)
    const double* pp = part.data<double>();
    for (int64_t kk = 0; kk < k; ++kk)
      for (int64_t t = 0; t < d; ++t) a[kk * d + t] = a[kk * d + t] * scale[(size_t)kk] + pp[kk * d + t];
    if (o.progress) o.progress(e, n);
  }

  DataPosterior r;
  r.n = n;
  r.variance.resize((size_t)k);
  r.second_moment.resize((size_t)k);
  r.ess.resize((size_t)k);
  r.log_qz.resize((size_t)k);
  for (int64_t kk = 0; kk < k; ++kk) {
    const double sk = s1[(size_t)kk];
    double norm2 = 0;
    for (int64_t t = 0; t < d; ++t) {
      a[kk * d + t] /= sk;  // m_k
      norm2 += a[kk * d + t] * a[kk * d + t];
    }
    r.second_moment[(size_t)kk] = q2[(size_t)kk] / sk;
    r.variance[(size_t)kk] = std::max(0.0, r.second_moment[(size_t)kk] - norm2);
    r.ess[(size_t)kk] = sk * sk / s2[(size_t)kk];
    r.log_qz[(size_t)kk] = m_max[(size_t)kk] + std::log(sk) - std::log((double)n);
  }
  Shape mean_shape = images.shape();
  mean_shape[0] = k;
  r.mean = acc.reshape(mean_shape);
  return r;
}

DataPosterior data_posterior(Model& model, const Tensor& images, const Tensor& z, int64_t batch,
                                 const DataPosteriorOptions& o) {
  check_latents("data_posterior", z, model.latent(), "the model's");
  return data_posterior(encode_data(model, images, batch), images, z, o);
}

}  // namespace gv::vae

// init.cpp: the initialisers of init.h. Every random one reduces to a uniform or normal draw from
// the engine's Philox generator with a bound or standard deviation computed here.
#include "nn/init.h"

#include <cmath>

namespace gv::nn::init {

Fans fans(const Shape& w) {
  GV_CHECK(w.size() >= 2, ShapeError, "init.fans: a weight needs at least 2 axes, got shape {}", shape_str(w));
  int64_t receptive = 1;  // kh * kw for a conv weight, 1 for a linear one
  for (size_t i = 2; i < w.size(); ++i) receptive *= w[i];
  return {w[1] * receptive, w[0] * receptive};
}

double gain(Nonlinearity nl, double leaky_slope) {
  switch (nl) {
    case Nonlinearity::linear: return 1.0;
    case Nonlinearity::sigmoid: return 1.0;
    case Nonlinearity::tanh: return 5.0 / 3.0;
    case Nonlinearity::relu: return std::sqrt(2.0);
    case Nonlinearity::leaky_relu: return std::sqrt(2.0 / (1.0 + leaky_slope * leaky_slope));
  }
  GV_THROW(ValueError, "init.gain: unknown nonlinearity {}", int(nl));
}

namespace {

double kaiming_std(const Shape& shape, double a, Nonlinearity nl, FanMode mode) {
  Fans f = fans(shape);
  int64_t fan = mode == FanMode::fan_in ? f.in : f.out;
  GV_CHECK(fan > 0, ShapeError, "init.kaiming: zero fan for weight shape {}", shape_str(shape));
  return gain(nl, a) / std::sqrt(double(fan));  // std = gain / sqrt(fan)
}

double xavier_std(const Shape& shape, double gain) {
  Fans f = fans(shape);
  GV_CHECK(f.in + f.out > 0, ShapeError, "init.xavier: zero fans for weight shape {}", shape_str(shape));
  return gain * std::sqrt(2.0 / double(f.in + f.out));  // std = gain sqrt(2 / (fan_in + fan_out))
}

}  // namespace

// ---- returning a new tensor -------------------------------------------------------------------
Tensor zeros(const Shape& shape, DType dtype) { return Tensor::zeros(shape, dtype); }

Tensor uniform(const Shape& shape, Generator& g, double lo, double hi, DType dtype) {
  return gv::uniform(shape, g, lo, hi, dtype);
}

Tensor normal(const Shape& shape, Generator& g, double mean, double std, DType dtype) {
  return gv::normal(shape, g, mean, std, dtype);
}

// A uniform U(-b, b) has standard deviation b / sqrt(3), so b = sqrt(3) * std.
Tensor kaiming_uniform(const Shape& shape, Generator& g, double a, Nonlinearity nl, FanMode mode, DType dtype) {
  double b = std::sqrt(3.0) * kaiming_std(shape, a, nl, mode);
  return gv::uniform(shape, g, -b, b, dtype);
}

Tensor kaiming_normal(const Shape& shape, Generator& g, double a, Nonlinearity nl, FanMode mode, DType dtype) {
  return gv::normal(shape, g, 0.0, kaiming_std(shape, a, nl, mode), dtype);
}

Tensor xavier_uniform(const Shape& shape, Generator& g, double gain, DType dtype) {
  double b = std::sqrt(3.0) * xavier_std(shape, gain);  // = gain sqrt(6 / (fan_in + fan_out))
  return gv::uniform(shape, g, -b, b, dtype);
}

Tensor xavier_normal(const Shape& shape, Generator& g, double gain, DType dtype) {
  return gv::normal(shape, g, 0.0, xavier_std(shape, gain), dtype);
}

Tensor torch_default(const Shape& shape, Generator& g, int64_t fan_in, DType dtype) {
  GV_CHECK(fan_in > 0, ValueError, "init.torch_default: fan_in must be positive, got {}", fan_in);
  double b = 1.0 / std::sqrt(double(fan_in));  // b = 1 / sqrt(fan_in)
  return gv::uniform(shape, g, -b, b, dtype);
}

// ---- filling in place: draw on the host in the tensor's dtype, then copy (to any device) -------
void zeros_(Tensor& t) { t.fill_(0.0); }
void uniform_(Tensor& t, Generator& g, double lo, double hi) {
  t.copy_(init::uniform(t.shape(), g, lo, hi, t.dtype()));
}
void normal_(Tensor& t, Generator& g, double mean, double std) {
  t.copy_(init::normal(t.shape(), g, mean, std, t.dtype()));
}
void kaiming_uniform_(Tensor& t, Generator& g, double a, Nonlinearity nl, FanMode mode) {
  t.copy_(kaiming_uniform(t.shape(), g, a, nl, mode, t.dtype()));
}
void kaiming_normal_(Tensor& t, Generator& g, double a, Nonlinearity nl, FanMode mode) {
  t.copy_(kaiming_normal(t.shape(), g, a, nl, mode, t.dtype()));
}
void xavier_uniform_(Tensor& t, Generator& g, double gain) { t.copy_(xavier_uniform(t.shape(), g, gain, t.dtype())); }
void xavier_normal_(Tensor& t, Generator& g, double gain) { t.copy_(xavier_normal(t.shape(), g, gain, t.dtype())); }

}  // namespace gv::nn::init

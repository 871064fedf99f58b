// init.h: weight initialisers. Each draws from a gv::Generator (so a seed fixes every weight) and
// either returns a new tensor of a shape and dtype or fills an existing tensor in place (the
// trailing-underscore forms). Fans follow PyTorch's convention for a weight of shape
// (dim0, dim1, k...): fan_in = dim1 * prod(k), fan_out = dim0 * prod(k). For linear (out, in) and
// conv (out, in, kh, kw) weights that is the usual meaning; a transposed conv weight
// (in, out, kh, kw) gets fan_in = out*kh*kw, exactly as PyTorch computes it.
#pragma once
#include "engine/random.h"
#include "engine/tensor.h"

namespace gv::nn::init {

struct Fans {
  int64_t in, out;
};
Fans fans(const Shape& weight_shape);  // needs at least 2 axes

// The gain that keeps activations' variance steady through a nonlinearity (PyTorch's calculate_gain).
enum class Nonlinearity { linear, relu, leaky_relu, tanh, sigmoid };
double gain(Nonlinearity nl, double leaky_slope = 0.01);  // relu: sqrt(2), leaky_relu(a): sqrt(2/(1+a^2))

enum class FanMode { fan_in, fan_out };  // kaiming: keep forward (fan_in) or backward (fan_out) variance

// ---- returning a new tensor -------------------------------------------------------------------
Tensor zeros(const Shape& shape, DType dtype = DType::f32);
Tensor uniform(const Shape& shape, Generator& g, double lo, double hi, DType dtype = DType::f32);
Tensor normal(const Shape& shape, Generator& g, double mean, double std, DType dtype = DType::f32);
// He et al. 2015, U(-b, b) with b = gain * sqrt(3 / fan); `a` is the leaky_relu slope (0: relu).
Tensor kaiming_uniform(const Shape& shape, Generator& g, double a = 0, Nonlinearity nl = Nonlinearity::leaky_relu,
                       FanMode mode = FanMode::fan_in, DType dtype = DType::f32);
// He et al. 2015, N(0, std^2) with std = gain / sqrt(fan).
Tensor kaiming_normal(const Shape& shape, Generator& g, double a = 0, Nonlinearity nl = Nonlinearity::leaky_relu,
                      FanMode mode = FanMode::fan_in, DType dtype = DType::f32);
// Glorot & Bengio 2010, U(-b, b) with b = gain * sqrt(6 / (fan_in + fan_out)).
Tensor xavier_uniform(const Shape& shape, Generator& g, double gain = 1, DType dtype = DType::f32);
// Glorot & Bengio 2010, N(0, std^2) with std = gain * sqrt(2 / (fan_in + fan_out)).
Tensor xavier_normal(const Shape& shape, Generator& g, double gain = 1, DType dtype = DType::f32);
// PyTorch's default for Linear and Conv weights and biases: U(-1/sqrt(fan_in), 1/sqrt(fan_in)).
// (For a weight this equals kaiming_uniform with a = sqrt(5): gain sqrt(2/6), b = sqrt(1/fan_in).)
Tensor torch_default(const Shape& shape, Generator& g, int64_t fan_in, DType dtype = DType::f32);

// ---- filling a tensor in place (its shape, dtype and device) ----------------------------------
void zeros_(Tensor& t);
void uniform_(Tensor& t, Generator& g, double lo, double hi);
void normal_(Tensor& t, Generator& g, double mean, double std);
void kaiming_uniform_(Tensor& t, Generator& g, double a = 0, Nonlinearity nl = Nonlinearity::leaky_relu,
                      FanMode mode = FanMode::fan_in);
void kaiming_normal_(Tensor& t, Generator& g, double a = 0, Nonlinearity nl = Nonlinearity::leaky_relu,
                     FanMode mode = FanMode::fan_in);
void xavier_uniform_(Tensor& t, Generator& g, double gain = 1);
void xavier_normal_(Tensor& t, Generator& g, double gain = 1);

}  // namespace gv::nn::init

// layers.h: the layers models are built from. Each is a Layer (one Var in, one Var out) that owns
// its parameters as Module parameters, so names nest ("enc.0.weight") and to(f64) converts them.
//   Linear, Conv2d, ConvTranspose2d, MaskedConv2d (PixelCNN)    layers with weights
//   ReLU, LeakyReLU, Tanh, Sigmoid, Softplus, GatedActivation    activations
//   Flatten, Reshape                                             shape changes that keep the batch axis
//   Sequential                                                   a chain of layers named "0", "1", ...
// Default initialisations are PyTorch's, so comparisons with PyTorch models start from the same
// distributions (not the same numbers: the generator is ours).
#pragma once
#include <initializer_list>
#include <memory>
#include <vector>

#include "autograd/ops.h"
#include "engine/random.h"
#include "nn/module.h"

namespace gv::nn {

// A height and width; a single number means a square.
struct Size2 {
  int64_t h, w;
  Size2(int64_t s) : h(s), w(s) {}  // NOLINT: implicit, so `4` means 4x4
  Size2(int64_t h_, int64_t w_) : h(h_), w(w_) {}
};

// ---- layers with weights -----------------------------------------------------------------------

// y = x W^T + b. x (..., in) -> y (..., out); weight (out, in), bias (out).
// Init as PyTorch's nn.Linear: weight and bias ~ U(-1/sqrt(in), 1/sqrt(in)), weight drawn first.
class Linear : public Layer {
 public:
  Linear(int64_t in, int64_t out, Generator& g, bool bias = true, DType dtype = DType::f32);
  ag::Var forward(const ag::Var& x) override;
  const ag::Var& weight() const { return weight_; }
  const ag::Var& bias() const { return bias_; }  // undefined without a bias
  int64_t in_features() const { return in_; }
  int64_t out_features() const { return out_; }

 private:
  int64_t in_, out_;
  ag::Var weight_, bias_;
};

// Options of the convolutions, meant for designated initialisers:
//   Conv2d(3, 64, 4, g, {.stride = 2, .padding = 1})
struct ConvOptions {
  Size2 stride = 1, padding = 0, dilation = 1;
  Size2 output_padding = 0;  // ConvTranspose2d only: extra rows/columns on the bottom/right
  bool bias = true;
  DType dtype = DType::f32;
};

// x (N, in, H, W) -> (N, out, Ho, Wo), Ho = floor((H + 2 pad - dil (kh - 1) - 1) / stride) + 1.
// weight (out, in, kh, kw), bias (out). Init as PyTorch's nn.Conv2d: weight and bias
// ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in)) with fan_in = in * kh * kw.
class Conv2d : public Layer {
 public:
  Conv2d(int64_t in, int64_t out, Size2 kernel, Generator& g, ConvOptions opt = {});
  ag::Var forward(const ag::Var& x) override;
  const ag::Var& weight() const { return weight_; }
  const ag::Var& bias() const { return bias_; }
  const Conv2dParams& params() const { return p_; }

 protected:
  int64_t in_, out_;
  Conv2dParams p_;
  ag::Var weight_, bias_;
};

// The adjoint of Conv2d (it maps Conv2d's output shape back to its input shape):
// x (N, in, H, W) -> (N, out, Ho, Wo), Ho = (H - 1) stride - 2 pad + dil (kh - 1) + output_padding + 1.
// weight (in, out, kh, kw) as in PyTorch, bias (out). Init as PyTorch's nn.ConvTranspose2d:
// U(-1/sqrt(fan_in), 1/sqrt(fan_in)) where PyTorch's fan_in is weight.size(1) * kh * kw = out*kh*kw.
class ConvTranspose2d : public Layer {
 public:
  ConvTranspose2d(int64_t in, int64_t out, Size2 kernel, Generator& g, ConvOptions opt = {});
  ag::Var forward(const ag::Var& x) override;
  const ag::Var& weight() const { return weight_; }
  const ag::Var& bias() const { return bias_; }

 private:
  int64_t in_, out_;
  Conv2dParams p_;
  Size2 out_pad_;
  ag::Var weight_, bias_;
};

// PixelCNN's masked convolution (van den Oord et al. 2016, "Pixel Recurrent Neural Networks"),
// kh x kw (odd), stride 1, keeping the image's size. Pixels are ordered in raster order (row by
// row, left to right); the kernel's centre (kh/2, kw/2) is the output's pixel.
//   type 'A' (first layer): sees only pixels strictly before the centre;
//   type 'B' (later layers): also sees the centre pixel itself.
// Every channel of a pixel is one unit (the per-position mask: one-channel images).
// The weight is the full (out, in, kh, kw) kernel with its masked taps zero, as a masked
// convolution's weight after multiplication would be; but the forward pass never multiplies by a
// mask and never computes a masked tap. The live taps are a prefix of the kernel in raster order,
// so the layer is one convolution over that prefix (ag::masked_conv2d): one GEMM of depth
// in*taps, where a 3x3 B has 5 taps of 9 and a 7x7 A 24 of 49. The masked taps get a zero
// gradient, so the optimizers keep them zero.
class MaskedConv2d : public Conv2d {
 public:
  // opt: bias and dtype; stride, dilation and padding must stay at their defaults (or padding
  // kernel/2, which is what the layer uses anyway).
  MaskedConv2d(char type, int64_t in, int64_t out, Size2 kernel, Generator& g, ConvOptions opt = {});
  ag::Var forward(const ag::Var& x) override;
  char mask_type() const { return type_; }
  Tensor mask() const;  // (out, in, kh, kw) of 0 and 1, in the weight's dtype

  // The spatial mask alone, (kh, kw) float32: 1 for taps strictly before the centre in raster
  // order, the centre 1 for type 'B' and 0 for 'A', 0 after it.
  static Tensor spatial_mask(char type, int64_t kh, int64_t kw);

 private:
  // How many taps are live: they are the first in raster order (spatial_mask is 1 on them). The
  // type and sizes are those spatial_mask checks.
  static int64_t live_taps(char type, int64_t kh, int64_t kw);
  char type_;
  int64_t kh_, kw_;
};

// ---- activations -------------------------------------------------------------------------------
class ReLU : public Layer {
 public:
  ag::Var forward(const ag::Var& x) override { return ag::relu(x); }  // max(x, 0)
};
class LeakyReLU : public Layer {
 public:
  explicit LeakyReLU(double slope = 0.01) : slope_(slope) {}
  ag::Var forward(const ag::Var& x) override { return ag::leaky_relu(x, slope_); }  // x > 0 ? x : slope x
 private:
  double slope_;
};
class Tanh : public Layer {
 public:
  ag::Var forward(const ag::Var& x) override { return ag::tanh(x); }
};
class Sigmoid : public Layer {
 public:
  ag::Var forward(const ag::Var& x) override { return ag::sigmoid(x); }  // 1 / (1 + e^-x)
};
class Softplus : public Layer {
 public:
  ag::Var forward(const ag::Var& x) override { return ag::softplus(x); }  // log(1 + e^x)
};

// Gated unit of the gated PixelCNN (van den Oord et al. 2016, "Conditional Image Generation with
// PixelCNN Decoders"): x (N, 2C, ...) -> tanh(x[:, :C]) * sigmoid(x[:, C:]), (N, C, ...).
class GatedActivation : public Layer {
 public:
  ag::Var forward(const ag::Var& x) override;
};

// ---- shape changes (the batch axis 0 is kept) ---------------------------------------------------

// Flattens axes start..end into one: (N, C, H, W) -> (N, C*H*W) with the defaults.
class Flatten : public Layer {
 public:
  explicit Flatten(int64_t start = 1, int64_t end = -1) : start_(start), end_(end) {}
  ag::Var forward(const ag::Var& x) override { return ag::flatten(x, start_, end_); }

 private:
  int64_t start_, end_;
};

// Reshapes each example: Reshape({128, 7, 7}) maps (N, 6272) -> (N, 128, 7, 7); one -1 is inferred.
class Reshape : public Layer {
 public:
  explicit Reshape(Shape shape) : shape_(std::move(shape)) {}
  ag::Var forward(const ag::Var& x) override;

 private:
  Shape shape_;
};

// ---- containers --------------------------------------------------------------------------------

// Applies its layers in order; they are submodules named "0", "1", ...
class Sequential : public Layer {
 public:
  Sequential() = default;
  Sequential(std::initializer_list<std::shared_ptr<Layer>> layers);
  Sequential& add(std::shared_ptr<Layer> layer);
  void push_back(std::shared_ptr<Layer> layer) { add(std::move(layer)); }
  size_t size() const { return layers_.size(); }
  const std::shared_ptr<Layer>& operator[](size_t i) const;
  ag::Var forward(const ag::Var& x) override;

 private:
  std::vector<std::shared_ptr<Layer>> layers_;
};

}  // namespace gv::nn

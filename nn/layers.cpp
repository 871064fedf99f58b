// layers.cpp: forward passes, shape checks and default initialisation of the layers in layers.h.
// Every forward is composed of differentiable ops (autograd/ops.h), so no layer needs a backward.
#include "nn/layers.h"

#include <string>

#include "nn/init.h"

namespace gv::nn {

namespace {

// "Conv2d(3 -> 64)": how a layer names itself in errors.
std::string layer_label(const Module& m, int64_t in, int64_t out) {
  return fmt::format("{}({} -> {})", m.type_name(), in, out);
}

// Checks that x is (N, in, H, W) in the weight's dtype. (The label is built only for an error.)
void check_image_input(const ag::Var& x, const Module& layer, int64_t in, int64_t out, DType weight_dtype) {
  GV_CHECK(x.dim() == 4 && x.size(1) == in, ShapeError, "{}: expects input (N, {}, H, W), got shape {}",
           layer_label(layer, in, out), in, shape_str(x.shape()));
  GV_CHECK(x.dtype() == weight_dtype, DTypeError, "{}: input is {} but the weights are {} (convert with to())",
           layer_label(layer, in, out), dtype_name(x.dtype()), dtype_name(weight_dtype));
}

Conv2dParams conv_params(const ConvOptions& o) {
  return {o.stride.h, o.stride.w, o.padding.h, o.padding.w, o.dilation.h, o.dilation.w};
}

void check_conv_args(const std::string& label, int64_t in, int64_t out, Size2 k, const ConvOptions& o) {
  GV_CHECK(in > 0 && out > 0, ValueError, "{}: channel counts must be positive", label);
  GV_CHECK(k.h > 0 && k.w > 0, ValueError, "{}: kernel must be positive, got ({}, {})", label, k.h, k.w);
  GV_CHECK(o.stride.h > 0 && o.stride.w > 0 && o.dilation.h > 0 && o.dilation.w > 0, ValueError,
           "{}: stride ({}, {}) and dilation ({}, {}) must be positive", label, o.stride.h, o.stride.w,
           o.dilation.h, o.dilation.w);
  GV_CHECK(o.padding.h >= 0 && o.padding.w >= 0, ValueError, "{}: padding ({}, {}) must not be negative", label,
           o.padding.h, o.padding.w);
}

}  // namespace

// ---- Linear -----------------------------------------------------------------------------------
Linear::Linear(int64_t in, int64_t out, Generator& g, bool bias, DType dtype) : in_(in), out_(out) {
  GV_CHECK(in > 0 && out > 0, ValueError, "Linear: sizes must be positive, got in = {}, out = {}", in, out);
  weight_ = register_parameter("weight", init::torch_default({out, in}, g, in, dtype));  // (out, in)
  if (bias) bias_ = register_parameter("bias", init::torch_default({out}, g, in, dtype));  // (out)
}

ag::Var Linear::forward(const ag::Var& x) {
  GV_CHECK(x.dim() >= 1 && x.size(-1) == in_, ShapeError, "{}: expects input (..., {}), got shape {}",
           layer_label(*this, in_, out_), in_, shape_str(x.shape()));
  GV_CHECK(x.dtype() == weight_.dtype(), DTypeError, "{}: input is {} but the weights are {} (convert with to())",
           layer_label(*this, in_, out_), dtype_name(x.dtype()), dtype_name(weight_.dtype()));
  return ag::linear(x, weight_, bias_);  // (..., in) @ w^T + b -> (..., out), one GEMM
}

// ---- Conv2d -----------------------------------------------------------------------------------
Conv2d::Conv2d(int64_t in, int64_t out, Size2 kernel, Generator& g, ConvOptions opt)
    : in_(in), out_(out), p_(conv_params(opt)) {
  std::string label = layer_label(*this, in, out);
  check_conv_args(label, in, out, kernel, opt);
  GV_CHECK(opt.output_padding.h == 0 && opt.output_padding.w == 0, ValueError,
           "{}: output_padding belongs to ConvTranspose2d", label);
  int64_t fan_in = in * kernel.h * kernel.w;
  weight_ = register_parameter("weight", init::torch_default({out, in, kernel.h, kernel.w}, g, fan_in, opt.dtype));
  if (opt.bias) bias_ = register_parameter("bias", init::torch_default({out}, g, fan_in, opt.dtype));
}

ag::Var Conv2d::forward(const ag::Var& x) {
  check_image_input(x, *this, in_, out_, weight_.dtype());
  return ag::conv2d(x, weight_, bias_, p_);  // (N, in, H, W) -> (N, out, Ho, Wo)
}

// ---- ConvTranspose2d --------------------------------------------------------------------------
ConvTranspose2d::ConvTranspose2d(int64_t in, int64_t out, Size2 kernel, Generator& g, ConvOptions opt)
    : in_(in), out_(out), p_(conv_params(opt)), out_pad_(opt.output_padding) {
  std::string label = layer_label(*this, in, out);
  check_conv_args(label, in, out, kernel, opt);
  // as PyTorch: the extra output rows must be fewer than the stride (or dilation) can produce
  GV_CHECK(out_pad_.h >= 0 && out_pad_.w >= 0 && out_pad_.h < std::max(p_.stride_h, p_.dil_h) &&
               out_pad_.w < std::max(p_.stride_w, p_.dil_w),
           ValueError, "{}: output_padding ({}, {}) must be smaller than stride or dilation", label, out_pad_.h,
           out_pad_.w);
  Shape wshape{in, out, kernel.h, kernel.w};  // (in, out, kh, kw)
  int64_t fan_in = init::fans(wshape).in;     // out * kh * kw, as PyTorch computes it
  weight_ = register_parameter("weight", init::torch_default(wshape, g, fan_in, opt.dtype));
  if (opt.bias) bias_ = register_parameter("bias", init::torch_default({out}, g, fan_in, opt.dtype));
}

ag::Var ConvTranspose2d::forward(const ag::Var& x) {
  check_image_input(x, *this, in_, out_, weight_.dtype());
  return ag::conv_transpose2d(x, weight_, bias_, p_, out_pad_.h, out_pad_.w);  // -> (N, out, Ho, Wo)
}

// ---- MaskedConv2d -----------------------------------------------------------------------------
Tensor MaskedConv2d::spatial_mask(char type, int64_t kh, int64_t kw) {
  GV_CHECK(type == 'A' || type == 'B', ValueError, "MaskedConv2d: mask type must be 'A' or 'B', got '{}'", type);
  GV_CHECK(kh > 0 && kw > 0 && kh % 2 == 1 && kw % 2 == 1, ValueError,
           "MaskedConv2d: the kernel needs a centre, so odd sizes; got ({}, {})", kh, kw);
  Tensor m = Tensor::zeros({kh, kw});
  float* p = m.data<float>();
  const int64_t live = live_taps(type, kh, kw);
  for (int64_t t = 0; t < kh * kw; ++t) p[t] = t < live ? 1.0f : 0.0f;
  return m;
}

int64_t MaskedConv2d::live_taps(char type, int64_t kh, int64_t kw) {
  // tap t (raster order) is live when it comes before the centre (or is the centre, for B)
  const int64_t centre = (kh / 2) * kw + kw / 2;
  return type == 'B' ? centre + 1 : centre;
}

MaskedConv2d::MaskedConv2d(char type, int64_t in, int64_t out, Size2 kernel, Generator& g, ConvOptions opt)
    : Conv2d(in, out, kernel, g, {.padding = Size2(kernel.h / 2, kernel.w / 2), .bias = opt.bias, .dtype = opt.dtype}),
      type_(type), kh_(kernel.h), kw_(kernel.w) {
  const std::string label = layer_label(*this, in, out);
  const Tensor spatial = spatial_mask(type, kernel.h, kernel.w);  // checks the type and the odd sizes
  GV_CHECK(opt.stride.h == 1 && opt.stride.w == 1 && opt.dilation.h == 1 && opt.dilation.w == 1 &&
               ((opt.padding.h == 0 && opt.padding.w == 0) ||
                (opt.padding.h == kernel.h / 2 && opt.padding.w == kernel.w / 2)),
           ValueError,
           "{}: a masked convolution keeps the image size: stride 1, dilation 1 and padding ({}, {}) (implied), got "
           "stride ({}, {}), dilation ({}, {}), padding ({}, {})",
           label, kernel.h / 2, kernel.w / 2, opt.stride.h, opt.stride.w, opt.dilation.h, opt.dilation.w,
           opt.padding.h, opt.padding.w);
  GV_CHECK(kernel.h > 1 || kernel.w > 1 || type == 'B', ValueError, "{}: a 1x1 type A kernel has no live tap", label);
  ag::NoGradGuard no_grad;
  Tensor w = weight_.data();  // a handle on the parameter's storage
  w.copy_(w * spatial.to(opt.dtype));  // the masked taps are zero and stay zero
}

Tensor MaskedConv2d::mask() const {
  return spatial_mask(type_, kh_, kw_).to(weight_.dtype()).expand(weight_.shape()).contiguous();
}

ag::Var MaskedConv2d::forward(const ag::Var& x) {
  check_image_input(x, *this, in_, out_, weight_.dtype());
  return ag::masked_conv2d(x, weight_, bias_, {1, 1, kh_ / 2, kw_ / 2, 1, 1}, live_taps(type_, kh_, kw_));
}

// ---- activations and shape changes ------------------------------------------------------------
ag::Var GatedActivation::forward(const ag::Var& x) {
  GV_CHECK(x.dim() >= 2 && x.size(1) % 2 == 0, ShapeError,
           "GatedActivation: expects (N, 2C, ...) with an even channel count, got shape {}", shape_str(x.shape()));
  return ag::gate(x, 1);  // tanh(a) * sigmoid(b) of the halves [a, b], in one pass each way
}

ag::Var Reshape::forward(const ag::Var& x) {
  GV_CHECK(x.dim() >= 1, ShapeError, "Reshape: the input needs a batch axis, got a scalar");
  Shape s{x.size(0)};  // (N, shape...)
  s.insert(s.end(), shape_.begin(), shape_.end());
  return ag::reshape(x, s);
}

// ---- Sequential -------------------------------------------------------------------------------
Sequential::Sequential(std::initializer_list<std::shared_ptr<Layer>> layers) {
  for (const auto& l : layers) add(l);
}

Sequential& Sequential::add(std::shared_ptr<Layer> layer) {
  register_module(std::to_string(layers_.size()), layer);
  layers_.push_back(std::move(layer));
  return *this;
}

const std::shared_ptr<Layer>& Sequential::operator[](size_t i) const {
  GV_CHECK(i < layers_.size(), IndexError, "Sequential: index {} out of range for {} layers", i, layers_.size());
  return layers_[i];
}

ag::Var Sequential::forward(const ag::Var& x) {
  ag::Var h = x;
  for (const auto& l : layers_) h = l->forward(h);
  return h;
}

}  // namespace gv::nn

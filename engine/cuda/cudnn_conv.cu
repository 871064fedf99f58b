// cudnn_conv.cu: cuDNN as the alternative convolution of the CUDA backend (GENVAE_CUDA_CONV=cudnn or
// cuda::set_conv_impl; ours, im2col/col2im around cuBLAS, is the default: gemm_conv.cu).
//
// The algorithm of each direction is chosen once per shape from cuDNN's ranked list
// (cudnnGet*Algorithm_v7) and cached with its workspace size: by default the first deterministic
// one without tensor-core (TF32) math, so results repeat run after run; with
// cuda::allow_nondeterministic(true) the first one cuDNN ranks. The workspace comes from our caching
// allocator. The legacy cuDNN API (still in cuDNN 9) is used: it maps one to one onto our three
// convolution kernels.
#include <cudnn.h>

#include <cstdlib>
#include <map>
#include <mutex>
#include <string>
#include <tuple>

#include "engine/cuda/launch.h"

namespace gv::cuda {
namespace {

using detail::Scratch;

void check_cudnn(cudnnStatus_t s, const std::string& what) {
  if (s != CUDNN_STATUS_SUCCESS)
    detail::throw_device_error("cuDNN error: " + what + " failed: " + cudnnGetErrorString(s) + " (" +
                                   std::to_string(int(s)) + ")",
                               __FILE__, __LINE__);
}

cudnnHandle_t cudnn_handle(int device) {
  static std::mutex m;
  static cudnnHandle_t handles[16] = {};
  std::lock_guard<std::mutex> lock(m);
  if (handles[device] == nullptr)
    check_cudnn(cudnnCreate(&handles[device]), "cudnnCreate on cuda:" + std::to_string(device));
  return handles[device];
}

// The descriptors of one convolution (x: N,C,H,W; w: O,C,kh,kw; y: N,O,Ho,Wo), freed on scope exit.
struct Descriptors {
  cudnnTensorDescriptor_t x = nullptr, y = nullptr;
  cudnnFilterDescriptor_t w = nullptr;
  cudnnConvolutionDescriptor_t conv = nullptr;
  Descriptors(DType dt, const ConvShape& g, int64_t N, int64_t O) {
    const cudnnDataType_t t = dt == DType::f64 ? CUDNN_DATA_DOUBLE : CUDNN_DATA_FLOAT;
    check_cudnn(cudnnCreateTensorDescriptor(&x), "cudnnCreateTensorDescriptor");
    check_cudnn(cudnnCreateTensorDescriptor(&y), "cudnnCreateTensorDescriptor");
    check_cudnn(cudnnCreateFilterDescriptor(&w), "cudnnCreateFilterDescriptor");
    check_cudnn(cudnnCreateConvolutionDescriptor(&conv), "cudnnCreateConvolutionDescriptor");
    check_cudnn(cudnnSetTensor4dDescriptor(x, CUDNN_TENSOR_NCHW, t, int(N), int(g.C), int(g.H), int(g.W)),
                "cudnnSetTensor4dDescriptor (input)");
    check_cudnn(cudnnSetTensor4dDescriptor(y, CUDNN_TENSOR_NCHW, t, int(N), int(O), int(g.Ho), int(g.Wo)),
                "cudnnSetTensor4dDescriptor (output)");
    check_cudnn(cudnnSetFilter4dDescriptor(w, t, CUDNN_TENSOR_NCHW, int(O), int(g.C), int(g.kh), int(g.kw)),
                "cudnnSetFilter4dDescriptor");
    check_cudnn(cudnnSetConvolution2dDescriptor(conv, int(g.ph), int(g.pw), int(g.sh), int(g.sw), int(g.dh), int(g.dw),
                                                CUDNN_CROSS_CORRELATION, t),
                "cudnnSetConvolution2dDescriptor");
    check_cudnn(cudnnSetConvolutionMathType(conv, nondeterministic_allowed() ? CUDNN_DEFAULT_MATH : CUDNN_FMA_MATH),
                "cudnnSetConvolutionMathType");
  }
  ~Descriptors() {
    cudnnDestroyTensorDescriptor(x);
    cudnnDestroyTensorDescriptor(y);
    cudnnDestroyFilterDescriptor(w);
    cudnnDestroyConvolutionDescriptor(conv);
  }
  Descriptors(const Descriptors&) = delete;
  Descriptors& operator=(const Descriptors&) = delete;
};

// The algorithm cache: one entry per (direction, device, dtype, shape, determinism); Ho and Wo
// follow from the rest.
using Key = std::tuple<int, int, int, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t,
                       int64_t, int64_t, int64_t, int64_t, bool>;
struct Choice {
  int algo;
  size_t workspace;
};
std::mutex choice_cache_m;
std::map<Key, Choice> choice_cache;
constexpr int kMaxAlgos = 16;

// The cached choice of one direction; on a miss, get(perf, &n) asks cuDNN for its ranked list and
// the first usable entry is taken: deterministic and without TF32 unless allowed.
template <class Perf, class Get>
Choice choice(int dir, int device, DType dt, const ConvShape& g, int64_t N, int64_t O, const char* what, Get&& get) {
  const bool any = nondeterministic_allowed();
  const Key k{dir, device, int(dt), N, O, g.C, g.H, g.W, g.kh, g.kw, g.sh, g.sw, g.ph, g.pw, g.dh, g.dw, any};
  std::lock_guard<std::mutex> lock(choice_cache_m);
  if (auto it = choice_cache.find(k); it != choice_cache.end()) return it->second;
  Perf perf[kMaxAlgos];
  int n = 0;
  get(perf, &n);
  for (int i = 0; i < n; ++i) {
    if (perf[i].status != CUDNN_STATUS_SUCCESS) continue;
    if (!any && (perf[i].determinism != CUDNN_DETERMINISTIC || perf[i].mathType == CUDNN_TENSOR_OP_MATH ||
                 perf[i].mathType == CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION))
      continue;
    return choice_cache[k] = Choice{int(perf[i].algo), perf[i].memory};
  }
  detail::throw_device_error(std::string("cuDNN: no ") + (any ? "" : "deterministic ") + "algorithm for this " + what +
                                 " (allow_nondeterministic(true) widens the choice, or use GENVAE_CUDA_CONV=im2col)",
                             __FILE__, __LINE__);
}

// t (N, ch, h, w) += v[c] broadcast over the channel axis (our binary kernel; t is written in place,
// each element reads only itself).
void add_per_channel(DType dt, void* t, const void* v, int64_t N, int64_t ch, int64_t hw, int device) {
  TensorRef tr, vr;
  tr.data = t;
  vr.data = const_cast<void*>(v);
  tr.dtype = vr.dtype = dt;
  tr.ndim = vr.ndim = 3;
  tr.shape[0] = vr.shape[0] = N;
  tr.shape[1] = vr.shape[1] = ch;
  tr.shape[2] = vr.shape[2] = hw;
  tr.strides[0] = ch * hw;
  tr.strides[1] = hw;
  tr.strides[2] = 1;
  vr.strides[0] = 0;
  vr.strides[1] = 1;
  vr.strides[2] = 0;
  binary(BinaryOp::add, tr, tr, vr, device);
}

// alpha = 1, beta = 0 in the operands' type (cuDNN reads float scalars for float data, double for double)
struct Scalars {
  float f1 = 1, f0 = 0;
  double d1 = 1, d0 = 0;
  const void* one(DType dt) const { return dt == DType::f64 ? static_cast<const void*>(&d1) : &f1; }
  const void* zero(DType dt) const { return dt == DType::f64 ? static_cast<const void*>(&d0) : &f0; }
};

}  // namespace

void cudnn_conv_forward(DType dt, const ConvShape& g, int64_t N, int64_t O, const void* x, const void* w,
                        const void* bias, void* out, int device) {
  detail::set_device(device, "conv2d (cuDNN)");
  const Descriptors d(dt, g, N, O);
  const Choice c = choice<cudnnConvolutionFwdAlgoPerf_t>(0, device, dt, g, N, O, "forward convolution", [&](auto* perf, int* n) {
    check_cudnn(cudnnGetConvolutionForwardAlgorithm_v7(cudnn_handle(device), d.x, d.w, d.conv, d.y, kMaxAlgos, n, perf),
                "cudnnGetConvolutionForwardAlgorithm_v7");
  });
  Scratch ws(c.workspace, device);
  const Scalars s;
  check_cudnn(cudnnConvolutionForward(cudnn_handle(device), s.one(dt), d.x, x, d.w, w, d.conv,
                                      cudnnConvolutionFwdAlgo_t(c.algo), ws.p, c.workspace, s.zero(dt), d.y, out),
              "cudnnConvolutionForward");
  if (bias) add_per_channel(dt, out, bias, N, O, g.Ho * g.Wo, device);
}

void cudnn_conv_backward_input(DType dt, const ConvShape& g, int64_t N, int64_t O, const void* gout, const void* w,
                               const void* init, void* gx, int device) {
  detail::set_device(device, "conv2d_backward_input (cuDNN)");
  const Descriptors d(dt, g, N, O);
  const Choice c = choice<cudnnConvolutionBwdDataAlgoPerf_t>(1, device, dt, g, N, O, "input-gradient convolution",
                                                             [&](auto* perf, int* n) {
    check_cudnn(cudnnGetConvolutionBackwardDataAlgorithm_v7(cudnn_handle(device), d.w, d.y, d.conv, d.x, kMaxAlgos, n, perf),
                "cudnnGetConvolutionBackwardDataAlgorithm_v7");
  });
  Scratch ws(c.workspace, device);
  const Scalars s;
  check_cudnn(cudnnConvolutionBackwardData(cudnn_handle(device), s.one(dt), d.w, w, d.y, gout, d.conv,
                                           cudnnConvolutionBwdDataAlgo_t(c.algo), ws.p, c.workspace, s.zero(dt), d.x,
                                           gx),
              "cudnnConvolutionBackwardData");
  if (init) add_per_channel(dt, gx, init, N, g.C, g.H * g.W, device);
}

void cudnn_conv_backward_weight(DType dt, const ConvShape& g, int64_t N, int64_t O, const void* x, const void* gout,
                                void* gw, int device) {
  detail::set_device(device, "conv2d_backward_weight (cuDNN)");
  const Descriptors d(dt, g, N, O);
  const Choice c = choice<cudnnConvolutionBwdFilterAlgoPerf_t>(2, device, dt, g, N, O, "weight-gradient convolution",
                                                               [&](auto* perf, int* n) {
    check_cudnn(cudnnGetConvolutionBackwardFilterAlgorithm_v7(cudnn_handle(device), d.x, d.y, d.conv, d.w, kMaxAlgos, n, perf),
                "cudnnGetConvolutionBackwardFilterAlgorithm_v7");
  });
  Scratch ws(c.workspace, device);
  const Scalars s;
  check_cudnn(cudnnConvolutionBackwardFilter(cudnn_handle(device), s.one(dt), d.x, x, d.y, gout, d.conv,
                                             cudnnConvolutionBwdFilterAlgo_t(c.algo), ws.p, c.workspace, s.zero(dt),
                                             d.w, gw),
              "cudnnConvolutionBackwardFilter");
}

size_t cudnn_cached_algorithms() {
  std::lock_guard<std::mutex> lock(choice_cache_m);
  return choice_cache.size();
}

}  // namespace gv::cuda

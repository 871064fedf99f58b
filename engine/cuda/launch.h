// launch.h: what the .cu files share: the device's multiprocessor count, the launch check, the
// per-device error word, scratch memory, and the dtype dispatch. CUDA-only (nvcc reads it).
#pragma once
#include <cuda_runtime_api.h>

#include <string>

#include "engine/cuda/cuda_backend.h"
#include "engine/cuda/cuda_check.h"
#include "engine/cuda/kernels.h"

namespace gv::cuda::detail {

int sm_count(int device);
// Makes `device` current for the calling thread; `what` names the op, for the message.
void set_device(int device, const char* what);
// The device's error word (kernels.h), allocated and zeroed on first use. Asking for it marks the
// word to be read at the next wait: only kernels that can record an error ask.
kern::ErrorWord* error_word(int device);
// Raises what a kernel recorded in the error word (and clears it); called after every wait, it
// reads the word only when a kernel that asked for it ran since the last read.
void raise_kernel_errors(int device);

inline void check_launch(const char* what, const kern::Launch& l, int device) {
  GV_CUDA_CHECK(cudaGetLastError(), std::string("launching the ") + what + " kernel (" + std::to_string(l.blocks) +
                                        " blocks of " + std::to_string(l.threads) + ") on cuda:" +
                                        std::to_string(device));
}

// A device buffer for the length of a call, from the caching allocator.
struct Scratch {
  void* p = nullptr;
  int device;
  Scratch(size_t nbytes, int dev) : device(dev) { p = alloc(nbytes, dev); }
  ~Scratch() { free(p, device); }
  Scratch(const Scratch&) = delete;
  Scratch& operator=(const Scratch&) = delete;
  template <class T> T* as() const { return static_cast<T*>(p); }
};

template <class F>
decltype(auto) dispatch_float(DType dt, const char* op, F&& f) {
  switch (dt) {
    case DType::f32: return f.template operator()<float>();
    case DType::f64: return f.template operator()<double>();
    default: break;
  }
  throw_dtype_error(std::string(op) + " on cuda: needs float32 or float64, got " + dtype_name(dt), __FILE__, __LINE__);
}
template <class F>
decltype(auto) dispatch_all(DType dt, const char* op, F&& f) {
  switch (dt) {
    case DType::f32: return f.template operator()<float>();
    case DType::f64: return f.template operator()<double>();
    case DType::i64: return f.template operator()<int64_t>();
  }
  throw_dtype_error(std::string(op) + " on cuda: unknown dtype", __FILE__, __LINE__);
}

}  // namespace gv::cuda::detail

namespace gv::cuda {
// cuDNN's convolutions (cudnn_conv.cu), with the contracts of conv_forward and its gradients.
void cudnn_conv_forward(DType dt, const ConvShape& g, int64_t N, int64_t O, const void* x, const void* w,
                        const void* bias, void* out, int device);
void cudnn_conv_backward_input(DType dt, const ConvShape& g, int64_t N, int64_t O, const void* gout, const void* w,
                               const void* init, void* gx, int device);
void cudnn_conv_backward_weight(DType dt, const ConvShape& g, int64_t N, int64_t O, const void* x, const void* gout,
                                void* gw, int device);
}  // namespace gv::cuda

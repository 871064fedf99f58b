// cuda_check.h: checking of CUDA runtime calls, for the engine's .cu files (GV_CUDA_CHECK names
// cudaGetErrorName etc., which nvcc declares in every .cu file). The throwing helpers live in
// cuda_check.cpp, compiled by the host compiler where engine/error.h and fmt are at home, so nvcc
// never parses fmt and no .cpp file needs the CUDA headers.
#pragma once
#include <cstddef>
#include <string>

namespace gv::cuda::detail {

// Throws gv::DeviceError: "CUDA error: <call> failed: <description> (<name> = <status>)[ while
// <context>]; hint: <hint_for(status)> [file:line]". `status` is a cudaError_t.
[[noreturn]] void throw_cuda_error(int status, const char* name, const char* description,
                                   const char* call, const std::string& context, const char* file,
                                   int line);

// What to try next after a cudaError_t (defined in cuda_backend.cu, where the enum is at hand).
const char* hint_for(int status);

// Other errors raised from .cu files, with the same " [file:line]" suffix as GV_THROW.
[[noreturn]] void throw_device_error(const std::string& msg, const char* file, int line);
[[noreturn]] void throw_dtype_error(const std::string& msg, const char* file, int line);
[[noreturn]] void throw_index_error(const std::string& msg, const char* file, int line);
[[noreturn]] void throw_shape_error(const std::string& msg, const char* file, int line);
[[noreturn]] void throw_value_error(const std::string& msg, const char* file, int line);

// "12 bytes", "1.5 MiB", ... for messages.
std::string bytes_str(size_t nbytes);

}  // namespace gv::cuda::detail

// GV_CUDA_CHECK(cudaMalloc(&p, n), "allocating " + bytes_str(n)): the optional second argument is
// a std::string (or string literal) of context, built only when the call fails.
// The runtime's last-error slot is cleared first, so later calls do not report the error again.
#define GV_CUDA_CHECK(call, ...)                                                                   \
  do {                                                                                             \
    const cudaError_t gv_cuda_status_ = (call);                                                    \
    if (gv_cuda_status_ != cudaSuccess) {                                                          \
      (void)cudaGetLastError();                                                                    \
      ::gv::cuda::detail::throw_cuda_error(                                                        \
          static_cast<int>(gv_cuda_status_), cudaGetErrorName(gv_cuda_status_),                   \
          cudaGetErrorString(gv_cuda_status_), #call, ::std::string(__VA_ARGS__), __FILE__,        \
          __LINE__);                                                                               \
    }                                                                                              \
  } while (0)

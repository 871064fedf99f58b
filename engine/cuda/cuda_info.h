// cuda_info.h: a one-line account of the CUDA devices, for logs, skip messages and error hints.
// Implemented by cuda_backend.cu, or by cuda_absent.cpp in a build without CUDA.
#pragma once
#include <string>

namespace gv::cuda {

// "cuda:0 NVIDIA H100 80GB HBM3 (sm_90, 79.2 GiB)", one entry per device; when none can be used,
// why: "cudaGetDeviceCount: CUDA driver version is insufficient for CUDA runtime version
// (cudaErrorInsufficientDriver = 35)"; in a build without CUDA, says so.
std::string describe_devices();

}  // namespace gv::cuda

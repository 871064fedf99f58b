// cuda_backend.cu: device discovery, memory and copies of the CUDA backend (cuda_backend.h).
// Every runtime call goes through GV_CUDA_CHECK, so a failure is a gv::DeviceError that names the
// call, the runtime's error, what was being done and what to try.
//
// Memory comes straight from cudaMalloc/cudaFree for now; alloc/free are the one place a caching
// allocator will go. Work runs on the legacy default stream, so copies and kernels are ordered
// with respect to each other; copy_to_host returns once the data is on the host.
#include <cuda_runtime_api.h>

#include <atomic>
#include <cstdint>
#include <cstdio>
#include <string>

#include "engine/cuda/cuda_backend.h"
#include "engine/cuda/cuda_check.h"
#include "engine/cuda/cuda_info.h"

namespace gv::cuda {

namespace detail {

const char* hint_for(int status) {
  switch (static_cast<cudaError_t>(status)) {
    case cudaErrorInsufficientDriver:
    case cudaErrorNoDevice:
    case cudaErrorInvalidDevice:
    case cudaErrorDevicesUnavailable:
    case cudaErrorSystemNotReady:
    case cudaErrorSystemDriverMismatch:
    case cudaErrorCompatNotSupportedOnDevice:
    case cudaErrorInitializationError:
      return "is a GPU visible? check nvidia-smi, the driver version and CUDA_VISIBLE_DEVICES";
    case cudaErrorMemoryAllocation:
      return "the GPU is out of memory: use a smaller batch, drop tensors that are still "
             "referenced, or check nvidia-smi for other processes on the GPU";
    case cudaErrorNoKernelImageForDevice:
    case cudaErrorInvalidKernelImage:
    case cudaErrorUnsupportedPtxVersion:
      return "this build has no kernels for this GPU: reconfigure with -Dgpu_archs=<its compute "
             "capability without the dot, e.g. 86> (nvidia-smi --query-gpu=compute_cap --format=csv)";
    case cudaErrorIllegalAddress:
    case cudaErrorLaunchFailure:
    case cudaErrorMisalignedAddress:
    case cudaErrorIllegalInstruction:
    case cudaErrorHardwareStackError:
    case cudaErrorAssert:
      return "a kernel faulted (maybe an earlier one: kernels run asynchronously; rerun with "
             "CUDA_LAUNCH_BLOCKING=1 or under compute-sanitizer to find it); the CUDA context is "
             "unusable for the rest of this process";
    default:
      return "is a GPU visible? check nvidia-smi";
  }
}

}  // namespace detail

using detail::bytes_str;

namespace {

std::string dev_str(int device) { return "cuda:" + std::to_string(device); }

// Makes `device` current for the calling thread; `what` is what it is for ("an allocation").
void set_device(int device, const char* what) {
  GV_CUDA_CHECK(cudaSetDevice(device), "selecting " + dev_str(device) + " for " + what + " (" +
                                           std::to_string(device_count()) + " devices found)");
}

}  // namespace

bool compiled() { return true; }

int device_count() {
  int n = 0;
  const cudaError_t e = cudaGetDeviceCount(&n);
  if (e != cudaSuccess) {
    (void)cudaGetLastError();  // "insufficient driver", "no device", ...: all mean none usable
    return 0;
  }
  return n;
}

std::string describe_devices() {
  int n = 0;
  const cudaError_t e = cudaGetDeviceCount(&n);
  if (e != cudaSuccess) {
    (void)cudaGetLastError();
    return std::string("cudaGetDeviceCount: ") + cudaGetErrorString(e) + " (" + cudaGetErrorName(e) +
           " = " + std::to_string(int(e)) + ")";
  }
  if (n == 0) return "cudaGetDeviceCount: 0 devices";
  int runtime = 0, driver = 0;
  (void)cudaRuntimeGetVersion(&runtime);
  (void)cudaDriverGetVersion(&driver);
  std::string s;
  for (int d = 0; d < n; ++d) {
    cudaDeviceProp p{};
    if (!s.empty()) s += ", ";
    if (cudaGetDeviceProperties(&p, d) != cudaSuccess) {
      (void)cudaGetLastError();
      s += dev_str(d) + " (properties unavailable)";
      continue;
    }
    char buf[160];
    std::snprintf(buf, sizeof buf, " (sm_%d%d, %.1f GiB)", p.major, p.minor,
                  double(p.totalGlobalMem) / (1024.0 * 1024.0 * 1024.0));
    s += dev_str(d) + " " + p.name + buf;
  }
  s += "; runtime " + std::to_string(runtime / 1000) + "." + std::to_string(runtime % 1000 / 10) +
       ", driver " + std::to_string(driver / 1000) + "." + std::to_string(driver % 1000 / 10);
  return s;
}

void* alloc(size_t nbytes, int device) {
  if (nbytes == 0) return nullptr;
  set_device(device, "an allocation");
  void* p = nullptr;
  GV_CUDA_CHECK(cudaMalloc(&p, nbytes), "allocating " + bytes_str(nbytes) + " on " + dev_str(device));
  return p;
}

void free(void* p, int device) noexcept {
  if (p == nullptr) return;
  cudaError_t e = cudaSetDevice(device);
  if (e == cudaSuccess) e = cudaFree(p);
  if (e == cudaSuccess) return;
  (void)cudaGetLastError();
  // At process exit the runtime may be torn down before the last tensors; the driver reclaims
  // their memory anyway. Anything else is worth a line, once (free cannot throw).
  if (e == cudaErrorCudartUnloading || e == cudaErrorContextIsDestroyed) return;
  static std::atomic<bool> reported{false};
  if (!reported.exchange(true))
    std::fprintf(stderr, "genvae: warning: cudaFree on %s failed: %s (%s); further failures not shown\n",
                 dev_str(device).c_str(), cudaGetErrorString(e), cudaGetErrorName(e));
}

void copy_to_device(void* dst, const void* host_src, size_t nbytes, int device) {
  if (nbytes == 0) return;
  set_device(device, "a copy from the host");
  GV_CUDA_CHECK(cudaMemcpy(dst, host_src, nbytes, cudaMemcpyHostToDevice),
                "copying " + bytes_str(nbytes) + " from the host to " + dev_str(device));
}

void copy_to_host(void* host_dst, const void* src, size_t nbytes, int device) {
  if (nbytes == 0) return;
  set_device(device, "a copy to the host");
  GV_CUDA_CHECK(cudaMemcpy(host_dst, src, nbytes, cudaMemcpyDeviceToHost),
                "copying " + bytes_str(nbytes) + " from " + dev_str(device) +
                    " to the host (an error here may come from an earlier kernel)");
}

void copy_on_device(void* dst, const void* src, size_t nbytes, int device) {
  if (nbytes == 0 || dst == src) return;
  set_device(device, "a copy on the device");
  const auto d = reinterpret_cast<uintptr_t>(dst), s = reinterpret_cast<uintptr_t>(src);
  if (d < s + nbytes && s < d + nbytes) {  // overlapping ranges: cudaMemcpy's result is undefined
    void* tmp = alloc(nbytes, device);
    try {
      GV_CUDA_CHECK(cudaMemcpy(tmp, src, nbytes, cudaMemcpyDeviceToDevice),
                    "copying " + bytes_str(nbytes) + " within " + dev_str(device) + " (overlapping)");
      GV_CUDA_CHECK(cudaMemcpy(dst, tmp, nbytes, cudaMemcpyDeviceToDevice),
                    "copying " + bytes_str(nbytes) + " within " + dev_str(device) + " (overlapping)");
    } catch (...) {
      free(tmp, device);
      throw;
    }
    free(tmp, device);
    return;
  }
  GV_CUDA_CHECK(cudaMemcpy(dst, src, nbytes, cudaMemcpyDeviceToDevice),
                "copying " + bytes_str(nbytes) + " within " + dev_str(device));
}

void synchronize(int device) {
  set_device(device, "synchronize");
  GV_CUDA_CHECK(cudaDeviceSynchronize(),
                "waiting for " + dev_str(device) + " (an error here may come from an earlier kernel)");
}

}  // namespace gv::cuda

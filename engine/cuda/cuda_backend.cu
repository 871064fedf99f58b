// cuda_backend.cu: device discovery, memory and copies of the CUDA backend (cuda_backend.h).
// Every runtime call goes through GV_CUDA_CHECK, so a failure is a gv::DeviceError that names the
// call, the runtime's error, what was being done and what to try.
//
// Memory goes through a caching allocator per device (engine/cuda/block_cache.h). Work runs on the
// legacy default stream, so copies and kernels are ordered with respect to each other;
// copy_to_host returns once the data is on the host, and then raises any error a kernel recorded.
#include <cuda_runtime_api.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <mutex>
#include <string>

#include "engine/cuda/block_cache.h"
#include "engine/cuda/cuda_backend.h"
#include "engine/cuda/cuda_check.h"
#include "engine/cuda/cuda_info.h"
#include "engine/cuda/launch.h"

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

constexpr int kMaxDevices = 16;

void check_index(int device) {
  if (device < 0 || device >= kMaxDevices)
    detail::throw_device_error("no device " + dev_str(device) + " (" + std::to_string(device_count()) + " found)",
                               __FILE__, __LINE__);
}

// The caching allocator of each device, made on first use and never destroyed (tensors may be
// freed by static destructors after it would be).
BlockCache& cache(int device) {
  static std::mutex m;
  static BlockCache* caches[kMaxDevices] = {};
  std::lock_guard<std::mutex> lock(m);
  if (caches[device] == nullptr)
    caches[device] = new BlockCache(
        [device](size_t n) -> void* {
          void* p = nullptr;
          if (cudaSetDevice(device) != cudaSuccess || cudaMalloc(&p, n) != cudaSuccess) {
            (void)cudaGetLastError();
            return nullptr;
          }
          return p;
        },
        [device](void* p) {
          if (cudaSetDevice(device) == cudaSuccess) (void)cudaFree(p);
          (void)cudaGetLastError();
        });
  return *caches[device];
}

std::atomic<bool> g_nondeterministic{false};

}  // namespace

namespace detail {

void set_device(int device, const char* what) {
  check_index(device);
  GV_CUDA_CHECK(cudaSetDevice(device), "selecting " + dev_str(device) + " for " + what + " (" +
                                           std::to_string(device_count()) + " devices found)");
}

int sm_count(int device) {
  static std::atomic<int> counts[kMaxDevices] = {};
  check_index(device);
  if (int c = counts[device].load(std::memory_order_relaxed); c > 0) return c;
  int c = 0;
  GV_CUDA_CHECK(cudaDeviceGetAttribute(&c, cudaDevAttrMultiProcessorCount, device),
                "asking " + dev_str(device) + " for its multiprocessor count");
  c = std::max(c, 1);
  counts[device].store(c, std::memory_order_relaxed);
  return c;
}

namespace {
std::atomic<kern::ErrorWord*> g_words[kMaxDevices] = {};
// Whether a kernel that can record an error was launched since the word was last read: the
// waits read it (a second copy to the host) only then.
std::atomic<bool> g_armed[kMaxDevices] = {};
}  // namespace

kern::ErrorWord* error_word(int device) {
  check_index(device);
  g_armed[device].store(true);
  if (kern::ErrorWord* w = g_words[device].load()) return w;
  static std::mutex m;
  std::lock_guard<std::mutex> lock(m);
  if (kern::ErrorWord* w = g_words[device].load()) return w;
  set_device(device, "the kernels' error word");
  void* p = nullptr;
  GV_CUDA_CHECK(cudaMalloc(&p, sizeof(kern::ErrorWord)), "allocating the kernels' error word on " + dev_str(device));
  GV_CUDA_CHECK(cudaMemset(p, 0, sizeof(kern::ErrorWord)), "clearing the kernels' error word");
  g_words[device].store(static_cast<kern::ErrorWord*>(p));
  return static_cast<kern::ErrorWord*>(p);
}

void raise_kernel_errors(int device) {
  if (device < 0 || device >= kMaxDevices || !g_armed[device].exchange(false)) return;
  kern::ErrorWord* w = g_words[device].load();
  kern::ErrorWord h{};
  GV_CUDA_CHECK(cudaMemcpy(&h, w, sizeof h, cudaMemcpyDeviceToHost), "reading the kernels' error word");
  if (h.code == kern::kErrNone) return;
  GV_CUDA_CHECK(cudaMemset(w, 0, sizeof h), "clearing the kernels' error word");
  if (h.code == kern::kErrBernoulli)
    throw_value_error("bernoulli: p must lie in [0, 1], got a value outside it (or NaN) at flat index " +
                          std::to_string(h.position) + " (found by the kernel on " + dev_str(device) +
                          ", reported at the next wait for the GPU; the draw is not valid)",
                      __FILE__, __LINE__);
  const char* op = h.code == kern::kErrGather ? "gather" : h.code == kern::kErrScatterAdd ? "scatter_add" : "one_hot";
  std::string axis = h.axis >= 0 ? " on axis " + std::to_string(h.axis) : std::string();
  throw_index_error(std::string(op) + ": index value " + std::to_string(h.value) + " at position " +
                        std::to_string(h.position) + " is out of range [0, " + std::to_string(h.extent) + ")" + axis +
                        " (found by a kernel on " + dev_str(device) +
                        ", reported at the next wait for the GPU; later results of that kernel are not valid)",
                    __FILE__, __LINE__);
}

}  // namespace detail

using detail::set_device;

void allow_nondeterministic(bool on) { g_nondeterministic.store(on); }
bool nondeterministic_allowed() { return g_nondeterministic.load(); }

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
  BlockCache& c = cache(device);
  void* p = c.alloc(nbytes);
  if (p == nullptr) {
    size_t free_b = 0, total_b = 0;
    (void)cudaMemGetInfo(&free_b, &total_b);
    (void)cudaGetLastError();
    detail::throw_device_error("CUDA error: out of memory allocating " + bytes_str(nbytes) + " on " + dev_str(device) +
                                   " (this process holds " + bytes_str(c.in_use_bytes()) + " in tensors; the GPU has " +
                                   bytes_str(free_b) + " free of " + bytes_str(total_b) +
                                   "); hint: use a smaller batch, drop tensors that are still referenced, or check "
                                   "nvidia-smi for other processes on the GPU",
                               __FILE__, __LINE__);
  }
  return p;
}

void free(void* p, int device) noexcept {
  if (p == nullptr || device < 0 || device >= kMaxDevices) return;
  if (cache(device).free(p)) return;
  static std::atomic<bool> reported{false};
  if (!reported.exchange(true))
    std::fprintf(stderr, "genvae: warning: cuda free of a block the allocator of %s did not hand out; ignored\n",
                 dev_str(device).c_str());
}

CacheStats cache_stats(int device) {
  check_index(device);
  BlockCache& c = cache(device);
  return {c.cached_bytes(), c.in_use_bytes(), c.hits(), c.misses()};
}

void cache_release(int device) {
  check_index(device);
  cache(device).release();
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
  detail::raise_kernel_errors(device);
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
  detail::raise_kernel_errors(device);
}

}  // namespace gv::cuda

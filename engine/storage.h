// storage.h: a block of memory on one device, shared by every Tensor that views it.
#pragma once
#include <cstddef>
#include <memory>

#include "engine/device.h"

namespace gv {

class Storage {
 public:
  Storage(size_t nbytes, Device device);  // allocates (uninitialized)
  ~Storage();
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;

  void* data() const { return ptr_; }
  size_t nbytes() const { return nbytes_; }
  Device device() const { return device_; }

 private:
  void* ptr_ = nullptr;
  size_t nbytes_ = 0;
  Device device_;
};

// Raw allocation per device. CPU memory is 64-byte aligned. CUDA memory comes from
// engine/cuda/cuda_backend.h (a DeviceError when CUDA is not compiled in or not available).
void* cpu_alloc(size_t nbytes);
void cpu_free(void* p, size_t nbytes);  // nbytes: as given to cpu_alloc

// CPU blocks of at least kMinCachedBytes are not returned to the system when freed but kept, by
// size, for the next allocation of the same size (up to kMaxCachedBytes kept; beyond that they are
// freed). Training allocates the same sizes every step, so after the first step no large block
// faults in fresh pages. Off in ASan builds (so a use after free is still caught) and when the
// environment sets GENVAE_CPU_CACHE=0.
inline constexpr size_t kMinCachedBytes = size_t(64) << 10;
inline constexpr size_t kMaxCachedBytes = size_t(1) << 30;
struct CpuCacheStats {
  bool enabled = false;
  size_t cached_bytes = 0;   // held for reuse now
  int64_t hits = 0, misses = 0;  // large allocations served from the cache / from the system
};
CpuCacheStats cpu_cache_stats();
void cpu_cache_release();  // frees every cached block

}  // namespace gv

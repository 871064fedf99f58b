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
void cpu_free(void* p);

}  // namespace gv

// storage.cpp: allocation per device.
#include "engine/storage.h"

#include <cstdlib>

#include "engine/cuda/cuda_backend.h"
#include "engine/error.h"

namespace gv {

void* cpu_alloc(size_t nbytes) {
  size_t n = (nbytes + 63) / 64 * 64;
  if (n == 0) n = 64;
  void* p = std::aligned_alloc(64, n);
  GV_CHECK(p != nullptr, Error, "cpu_alloc: out of memory allocating {} bytes", nbytes);
  return p;
}
void cpu_free(void* p) { std::free(p); }

Storage::Storage(size_t nbytes, Device device) : nbytes_(nbytes), device_(device) {
  ptr_ = device.is_cpu() ? cpu_alloc(nbytes) : cuda::alloc(nbytes, device.index);
}

Storage::~Storage() {
  if (device_.is_cpu()) cpu_free(ptr_);
  else cuda::free(ptr_, device_.index);
}

bool cuda_compiled() { return cuda::compiled(); }
bool cuda_available() { return cuda::device_count() > 0; }

}  // namespace gv

// storage.cpp: allocation per device.
#include "engine/storage.h"

#include <cstdlib>
#include <mutex>
#include <string>
#include <unordered_map>  // unordered_multimap

#include "engine/cuda/cuda_backend.h"
#include "engine/error.h"

namespace gv {

namespace {

#if defined(__SANITIZE_ADDRESS__)
constexpr bool kSanitized = true;  // ASan must see every free, or it cannot catch a use after free
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
constexpr bool kSanitized = true;
#else
constexpr bool kSanitized = false;
#endif
#else
constexpr bool kSanitized = false;
#endif

// Freed blocks of at least kMinCachedBytes, kept by size for the next allocation of that size.
// A training step allocates the same sizes every step; without the cache each large block is a
// fresh mmap whose pages fault in again (measured: ~8% of a W2 step in the kernel).
struct BlockCache {
  std::mutex m;
  std::unordered_multimap<size_t, void*> blocks;  // rounded size -> block
  CpuCacheStats stats;
  bool enabled = !kSanitized && [] {
    const char* e = std::getenv("GENVAE_CPU_CACHE");
    return !(e && std::string(e) == "0");
  }();
};
BlockCache& cache() {
  static BlockCache* c = new BlockCache;  // never destroyed: tensors may outlive static destructors
  return *c;
}

size_t round_size(size_t nbytes) {
  size_t n = (nbytes + 63) / 64 * 64;
  return n == 0 ? 64 : n;
}

}  // namespace

void* cpu_alloc(size_t nbytes) {
  const size_t n = round_size(nbytes);
  BlockCache& c = cache();
  const bool large = c.enabled && n >= kMinCachedBytes;
  if (large) {
    std::lock_guard<std::mutex> lock(c.m);
    auto it = c.blocks.find(n);
    if (it != c.blocks.end()) {
      void* p = it->second;
      c.blocks.erase(it);
      c.stats.cached_bytes -= n;
      ++c.stats.hits;
      return p;
    }
    ++c.stats.misses;
  }
  void* p = std::aligned_alloc(64, n);
  GV_CHECK(p != nullptr, Error, "cpu_alloc: out of memory allocating {} bytes", nbytes);
  return p;
}

void cpu_free(void* p, size_t nbytes) {
  if (!p) return;
  const size_t n = round_size(nbytes);
  BlockCache& c = cache();
  if (c.enabled && n >= kMinCachedBytes) {
    std::lock_guard<std::mutex> lock(c.m);
    if (c.stats.cached_bytes + n <= kMaxCachedBytes) {
      c.blocks.emplace(n, p);
      c.stats.cached_bytes += n;
      return;
    }
  }
  std::free(p);
}

void cpu_cache_release() {
  BlockCache& c = cache();
  std::lock_guard<std::mutex> lock(c.m);
  for (auto& block : c.blocks) std::free(block.second);
  c.blocks.clear();
  c.stats.cached_bytes = 0;
}

CpuCacheStats cpu_cache_stats() {
  BlockCache& c = cache();
  std::lock_guard<std::mutex> lock(c.m);
  CpuCacheStats s = c.stats;
  s.enabled = c.enabled;
  return s;
}

Storage::Storage(size_t nbytes, Device device) : nbytes_(nbytes), device_(device) {
  ptr_ = device.is_cpu() ? cpu_alloc(nbytes) : cuda::alloc(nbytes, device.index);
}

Storage::~Storage() {
  if (device_.is_cpu()) cpu_free(ptr_, nbytes_);
  else cuda::free(ptr_, device_.index);
}

bool cuda_compiled() { return cuda::compiled(); }
bool cuda_available() { return cuda::device_count() > 0; }

}  // namespace gv

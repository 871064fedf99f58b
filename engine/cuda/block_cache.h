// block_cache.h: the caching allocator of the CUDA backend, as plain C++ over two raw functions
// (cudaMalloc and cudaFree there; malloc and free in tests/engine/test_block_cache.cpp).
// Freed blocks are kept by rounded size and handed out again for the same size: a training step
// allocates the same sizes every step, and cudaMalloc/cudaFree synchronise the device. Reuse is
// safe because every kernel runs on one stream per device: work queued on a block before it was
// freed runs before work queued after it is handed out again. When the raw allocation fails, the
// cache goes back to the raw free and the allocation is tried once more.
#pragma once
#include <cstddef>
#include <cstdint>
#include <functional>
#include <mutex>
#include <unordered_map>

namespace gv::cuda {

class BlockCache {
 public:
  using RawAlloc = std::function<void*(size_t)>;  // nullptr when out of memory
  using RawFree = std::function<void(void*)>;
  BlockCache(RawAlloc a, RawFree f) : raw_alloc_(std::move(a)), raw_free_(std::move(f)) {}

  // 512-byte granules up to 1 MiB, whole MiB above (a few sizes serve a step's many tensors).
  static size_t round(size_t n) {
    if (n <= (size_t(1) << 20)) return (n + 511) / 512 * 512;
    return (n + (size_t(1) << 20) - 1) >> 20 << 20;
  }

  // A block of at least n bytes (n > 0), or nullptr when even an empty cache cannot get one.
  void* alloc(size_t n) {
    const size_t r = round(n);
    std::lock_guard<std::mutex> lock(m_);
    auto it = free_.find(r);
    void* p = nullptr;
    if (it != free_.end()) {
      p = it->second;
      free_.erase(it);
      cached_ -= r;
      ++hits_;
    } else {
      ++misses_;
      p = raw_alloc_(r);
      if (p == nullptr && !free_.empty()) {
        release_locked();
        p = raw_alloc_(r);
      }
      if (p == nullptr) return nullptr;
    }
    used_.emplace(p, r);
    in_use_ += r;
    return p;
  }

  // Keeps p for reuse; false when p did not come from alloc (then nothing changes).
  bool free(void* p) {
    std::lock_guard<std::mutex> lock(m_);
    auto it = used_.find(p);
    if (it == used_.end()) return false;
    const size_t r = it->second;
    used_.erase(it);
    in_use_ -= r;
    free_.emplace(r, p);
    cached_ += r;
    return true;
  }

  void release() {
    std::lock_guard<std::mutex> lock(m_);
    release_locked();
  }

  size_t cached_bytes() const { std::lock_guard<std::mutex> lock(m_); return cached_; }
  size_t in_use_bytes() const { std::lock_guard<std::mutex> lock(m_); return in_use_; }
  int64_t hits() const { std::lock_guard<std::mutex> lock(m_); return hits_; }
  int64_t misses() const { std::lock_guard<std::mutex> lock(m_); return misses_; }

 private:
  void release_locked() {
    for (auto& kv : free_) raw_free_(kv.second);
    free_.clear();
    cached_ = 0;
  }
  RawAlloc raw_alloc_;
  RawFree raw_free_;
  mutable std::mutex m_;
  std::unordered_multimap<size_t, void*> free_;  // rounded size -> cached block
  std::unordered_map<void*, size_t> used_;       // block -> rounded size
  size_t cached_ = 0, in_use_ = 0;
  int64_t hits_ = 0, misses_ = 0;
};

}  // namespace gv::cuda

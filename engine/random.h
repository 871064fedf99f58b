// random.h: counter-based random numbers (Philox 4x32-10, Salmon et al. 2011), written here.
// A Generator is a key (the seed) and a counter (how many 128-bit blocks it has used). Element i
// of a draw is a pure function of (seed, counter, i), so the same seed gives the same numbers on
// every run, at every thread count, and on CPU and GPU alike. Draws advance the counter.
#pragma once
#include <array>
#include <cstdint>

#include "engine/macros.h"
#include "engine/philox.h"
#include "engine/tensor.h"

namespace gv {

class Generator {
 public:
  explicit Generator(uint64_t seed = 0) : seed_(seed) {}
  // Independent stream `index` of a seed: the same key, its counter started index * 2^48 blocks
  // in, so streams 0, 1, 2, ... of one seed never overlap (each has 2^48 blocks, 2^50 draws).
  static Generator stream(uint64_t seed, uint64_t index) {
    Generator g(seed);
    g.offset_ = index << 48;
    return g;
  }
  uint64_t seed() const { return seed_; }
  uint64_t offset() const { return offset_; }  // 128-bit blocks consumed so far
  void set_state(uint64_t seed, uint64_t offset) { seed_ = seed; offset_ = offset; }
  // Reserve n blocks; returns the first block's counter.
  uint64_t advance(uint64_t nblocks) { uint64_t o = offset_; offset_ += nblocks; return o; }
  // The 4 words of block `ctr` under this seed (a pure function).
  std::array<uint32_t, 4> block(uint64_t ctr) const;

 private:
  uint64_t seed_ = 0;
  uint64_t offset_ = 0;
};

// Draws (float dtypes; the device is the tensor's). Each call advances the generator.
Tensor uniform(const Shape& shape, Generator& g, double lo = 0, double hi = 1,
               DType dtype = DType::f32, Device device = Device::cpu());
Tensor normal(const Shape& shape, Generator& g, double mean = 0, double std = 1,
              DType dtype = DType::f32, Device device = Device::cpu());
// Each element is 1 with probability p[i] (p in [0,1]), else 0; same dtype and shape as p.
Tensor bernoulli(const Tensor& p, Generator& g);
// A random permutation of 0..n-1 (int64), Fisher-Yates driven by the generator.
Tensor randperm(int64_t n, Generator& g);

}  // namespace gv

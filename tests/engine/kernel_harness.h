// kernel_harness.h: runs the CUDA kernels' per-thread bodies (engine/cuda/kernels.h) on the CPU,
// over the grid a launch would have: every block, every thread, in order. The shared-memory
// reduction runs one block at a time and phase by phase, with each loop over the threads standing
// for the code between two __syncthreads, exactly as engine/cuda/reduce_kernels.cu orders it.
#pragma once
#include <vector>

#include "engine/cuda/kernels.h"

namespace gv::harness {

// body(grid) for every thread of the launch.
template <class Body>
void run(const kern::Launch& l, Body&& body) {
  for (int64_t b = 0; b < l.blocks; ++b)
    for (int64_t t = 0; t < l.threads; ++t) body(kern::Grid{b, t, l.threads, l.blocks});
}

// The block form of a reduction: each block takes outputs block, block + blocks, ...
template <class R, class T>
void run_reduce_blocks(const kern::Launch& l, const kern::ReduceGeom& r, const T* x, typename R::Out* out) {
  std::vector<typename R::Acc> sh(size_t(l.threads));  // the block's shared memory
  for (int64_t b = 0; b < l.blocks; ++b)
    for (int64_t o = b; o < r.nout; o += l.blocks) {
      for (int64_t t = 0; t < l.threads; ++t) sh[size_t(t)] = kern::reduce_partial<R>(r, x, o, t, l.threads);
      for (int64_t s = l.threads / 2; s > 0; s /= 2)  // __syncthreads() after each step
        for (int64_t t = 0; t < l.threads; ++t) kern::reduce_tree_step<R>(sh.data(), t, s);
      out[o] = R::fin(sh[0]);
    }
}

}  // namespace gv::harness

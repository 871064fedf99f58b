// random_kernels.h: the CPU backend's random fills (engine/cpu/random.cpp), called by CpuBackend.
#pragma once
#include <cstdint>

#include "engine/backend.h"

namespace gv::cpu {

void random_uniform(const TensorRef& out, uint64_t seed, uint64_t start, double lo, double hi);
void random_normal(const TensorRef& out, uint64_t seed, uint64_t start, double mean, double std);
void random_bernoulli(const TensorRef& out, const TensorRef& p, uint64_t seed, uint64_t start);

}  // namespace gv::cpu

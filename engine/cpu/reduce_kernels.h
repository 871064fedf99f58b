// reduce_kernels.h: the CPU backend's reductions (engine/cpu/reduce.cpp), called by CpuBackend.
#pragma once
#include "engine/backend.h"

namespace gv::cpu {

// out (x's rank, reduced axes of size 1, contiguous) = the reduction of x over the marked axes.
void reduce(ReduceOp op, const TensorRef& out, const TensorRef& x, const bool* reduced);

}  // namespace gv::cpu

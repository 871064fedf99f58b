// index_kernels.h: the CPU backend's gather, scatter_add, one_hot, copy and fill
// (engine/cpu/index.cpp), called by CpuBackend. Shapes and contracts as in engine/backend.h.
#pragma once
#include "engine/backend.h"

namespace gv::cpu {

void gather(const TensorRef& out, const TensorRef& x, const TensorRef& index, int axis);
void scatter_add(const TensorRef& out, const TensorRef& index, const TensorRef& src, int axis);
void one_hot(const TensorRef& out, const TensorRef& index, int64_t classes);
void copy(const TensorRef& dst, const TensorRef& src);
void fill(const TensorRef& dst, double value);

}  // namespace gv::cpu

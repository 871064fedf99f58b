// conv_kernels.h: the CPU backend's convolution kernels (engine/cpu/conv.cpp), called by
// CpuBackend (engine/cpu/cpu_backend.cpp). Contiguous operands; shapes as in engine/backend.h.
#pragma once
#include <cstdint>

#include "engine/backend.h"

namespace gv::cpu {

void conv_forward(DType dt, const ConvGeom& g, int64_t N, int64_t O, const void* x, const void* w, const void* bias,
                  void* out);
void conv_backward_input(DType dt, const ConvGeom& g, int64_t N, int64_t O, const void* gout, const void* w,
                         const void* init, void* gx);
void conv_backward_weight(DType dt, const ConvGeom& g, int64_t N, int64_t O, const void* x, const void* gout,
                          void* gw);

}  // namespace gv::cpu

// cuda_backend.h: the CUDA backend as the rest of the engine sees it. Plain C++ (no CUDA headers),
// so engine/*.cpp can call it whether or not CUDA is compiled in. Implemented in cuda/*.cu when the
// build has CUDA, else by cuda/cuda_absent.cpp, whose functions throw DeviceError.
// Pointers are device pointers unless named host_*; sizes are in bytes unless named n (elements).
#pragma once
#include <cstddef>
#include <cstdint>

#include "engine/dtype.h"
#include "engine/functors.h"

namespace gv::cuda {

bool compiled();      // the build has the CUDA backend
int device_count();   // 0 when no GPU can be used (any error from the driver counts as none)
void* alloc(size_t nbytes, int device);
void free(void* p, int device) noexcept;
void copy_to_device(void* dst, const void* host_src, size_t nbytes, int device);
void copy_to_host(void* host_dst, const void* src, size_t nbytes, int device);
void copy_on_device(void* dst, const void* src, size_t nbytes, int device);
void synchronize(int device);

// y[i] = F(x[i]) for contiguous float32/float64 arrays of n elements, with the functors of
// engine/functors.h.
void unary(UnaryOp op, DType dtype, const void* x, void* y, int64_t n, double a, double b,
           int device);

}  // namespace gv::cuda

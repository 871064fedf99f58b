// macros.h: the one macro that lets the same scalar math compile for the host and for CUDA.
// GV_HD expands to __host__ __device__ only under nvcc, so the functors in functors.h run in plain
// C++ host tests on machines without a GPU and inside CUDA kernels unchanged.
#pragma once

#if defined(__CUDACC__)
#define GV_HD __host__ __device__ __forceinline__
#else
#define GV_HD inline
#endif

// strided.h: the index math of strided and broadcast operands, written once for both backends
// (GV_HD: plain C++ on the host, __host__ __device__ under nvcc). A kernel walks K operands over
// one row-major index space; operand k's element i sits at its data + offset_k(i).
//
// make_space drops size-1 axes and merges neighbouring axes wherever every operand is contiguous
// across them, so a contiguous or simply broadcast operand becomes one or two long runs.
// offsets_of turns a linear index into the K element offsets.
#pragma once
#include <cstdint>

#include "engine/dtype.h"
#include "engine/macros.h"

namespace gv {

inline constexpr int kMaxDims = 32;  // axes of a TensorRef (more than any model here needs)

// A kernel's view of one operand: where element [0,...,0] is, its dtype, and its shape and element
// strides (0 along a broadcast axis). Plain data, the same on the host and on a GPU.
struct TensorRef {
  void* data = nullptr;
  DType dtype = DType::f32;
  int ndim = 0;
  int64_t shape[kMaxDims] = {};
  int64_t strides[kMaxDims] = {};
  template <class T>
  GV_HD T* ptr() const { return static_cast<T*>(data); }
};

// Elements of r, and whether r is row-major contiguous (size-1 axes may have any stride; a
// broadcast axis of size > 1, stride 0, is not contiguous).
GV_HD int64_t ref_numel(const TensorRef& r) {
  int64_t n = 1;
  for (int d = 0; d < r.ndim; ++d) n *= r.shape[d];
  return n;
}
GV_HD bool ref_is_contiguous(const TensorRef& r) {
  int64_t expect = 1;
  for (int d = r.ndim - 1; d >= 0; --d) {
    if (r.shape[d] != 1 && r.strides[d] != expect) return false;
    expect *= r.shape[d];
  }
  return true;
}

// K operands over one index space of nd axes (nd == 0: one element; empty: no element at all).
template <int K>
struct StridedSpace {
  int nd = 0;
  bool empty = false;
  bool too_many_axes = false;  // more than kMaxDims axes remain after merging
  int64_t numel = 1;
  int64_t shape[kMaxDims] = {};
  int64_t strides[K][kMaxDims] = {};
};

// The index space of `shape` (ndim axes) with strides[k] for each operand.
template <int K>
GV_HD StridedSpace<K> make_space(int ndim, const int64_t* shape, const int64_t* const* strides) {
  StridedSpace<K> s;
  for (int d = 0; d < ndim; ++d) {
    if (shape[d] == 0) {
      s.empty = true;
      s.numel = 0;
      return s;
    }
    if (shape[d] == 1) continue;
    bool merge = s.nd > 0;
    for (int k = 0; k < K && merge; ++k) merge = s.strides[k][s.nd - 1] == strides[k][d] * shape[d];
    if (merge) {
      s.shape[s.nd - 1] *= shape[d];
      for (int k = 0; k < K; ++k) s.strides[k][s.nd - 1] = strides[k][d];
    } else {
      if (s.nd == kMaxDims) {
        s.too_many_axes = true;
        return s;
      }
      s.shape[s.nd] = shape[d];
      for (int k = 0; k < K; ++k) s.strides[k][s.nd] = strides[k][d];
      ++s.nd;
    }
    s.numel *= shape[d];
  }
  return s;
}

// offs[k] = the offset of element `linear` (row-major over the space) in operand k; idx receives
// the multi-index (for walking on from there).
template <int K>
GV_HD void offsets_of(const StridedSpace<K>& s, int64_t linear, int64_t* offs, int64_t* idx) {
  for (int k = 0; k < K; ++k) offs[k] = 0;
  for (int d = s.nd - 1; d >= 0; --d) {
    const int64_t i = linear % s.shape[d];
    linear /= s.shape[d];
    idx[d] = i;
    for (int k = 0; k < K; ++k) offs[k] += i * s.strides[k][d];
  }
}

}  // namespace gv

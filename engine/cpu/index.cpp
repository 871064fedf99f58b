// index.cpp: the CPU backend's kernels that move values by an index or by strides: gather,
// scatter_add, one_hot, the strided copy with dtype conversion and fill. Called by CpuBackend.
#include "engine/cpu/index_kernels.h"

#include "engine/cpu/isa_call.h"
#include "engine/cpu/loops.h"

namespace gv::cpu {
namespace {

// f(p, c) for every position p of index (row-major) with its multi-index c.
template <class F>
void for_each_position(const TensorRef& index, F&& f) {
  const int64_t n = ref_numel(index);
  int64_t c[kMaxDims] = {0};
  for (int64_t p = 0; p < n; ++p) {
    f(p, c);
    for (int d = index.ndim - 1; d >= 0; --d) {
      if (++c[d] < index.shape[d]) break;
      c[d] = 0;
    }
  }
}

int64_t at(const TensorRef& r, const int64_t* c) {
  int64_t off = 0;
  for (int d = 0; d < r.ndim; ++d) off += c[d] * r.strides[d];
  return off;
}

// The index value at c, checked against [0, extent) on the axis.
int64_t index_value(const TensorRef& index, const int64_t* c, int64_t p, int64_t extent, int axis, const char* op) {
  const int64_t v = index.ptr<int64_t>()[at(index, c)];
  GV_CHECK(v >= 0 && v < extent, IndexError, "{}: index value {} at position {} is out of range [0, {}) on axis {}",
           op, v, p, extent, axis);
  return v;
}

// The offset in t of the element at c with the axis coordinate replaced by v.
int64_t at_axis(const TensorRef& t, const int64_t* c, int axis, int64_t v) {
  int64_t off = 0;
  for (int d = 0; d < t.ndim; ++d) off += (d == axis ? v : c[d]) * t.strides[d];
  return off;
}

}  // namespace

void gather(const TensorRef& out, const TensorRef& x, const TensorRef& index, int axis) {
  dispatch_all(x.dtype, "gather", [&]<class T>() {
    const T* px = x.ptr<T>();
    T* po = out.ptr<T>();  // contiguous, index's shape
    for_each_position(index, [&](int64_t p, const int64_t* c) {
      po[p] = px[at_axis(x, c, axis, index_value(index, c, p, x.shape[axis], axis, "gather"))];
    });
  });
}

// One pass in index order: each sum is formed in a fixed order.
void scatter_add(const TensorRef& out, const TensorRef& index, const TensorRef& src, int axis) {
  dispatch_all(src.dtype, "scatter_add", [&]<class T>() {
    const T* ps = src.ptr<T>();
    T* po = out.ptr<T>();
    for_each_position(index, [&](int64_t p, const int64_t* c) {
      po[at_axis(out, c, axis, index_value(index, c, p, out.shape[axis], axis, "scatter_add"))] += ps[at(src, c)];
    });
  });
}

void one_hot(const TensorRef& out, const TensorRef& index, int64_t classes) {
  dispatch_all(out.dtype, "one_hot", [&]<class T>() {
    T* po = out.ptr<T>();  // contiguous zeros, index's shape + (classes)
    for_each_position(index, [&](int64_t p, const int64_t* c) {
      const int64_t v = index.ptr<int64_t>()[at(index, c)];
      GV_CHECK(v >= 0 && v < classes, IndexError, "one_hot: index value {} at position {} is out of range [0, {})", v,
               p, classes);
      po[p * classes + v] = T(1);
    });
  });
}

void copy(const TensorRef& dst, const TensorRef& src) {
  dispatch_all(dst.dtype, "copy_", [&]<class D>() {
    dispatch_all(src.dtype, "copy_", [&]<class S>() {
      D* d = dst.ptr<D>();
      const S* s = src.ptr<S>();
      strided_for<2>({&dst, &src}, [&](auto o, int64_t n, auto in) {
        if (in[0] == 1 && in[1] == 1)
          isa_call([&] {
            for (int64_t i = 0; i < n; ++i) d[o[0] + i] = D(s[o[1] + i]);
          });
        else
          for (int64_t i = 0; i < n; ++i) d[o[0] + i * in[0]] = D(s[o[1] + i * in[1]]);
      });
    });
  });
}

void fill(const TensorRef& dst, double value) {
  dispatch_all(dst.dtype, "fill_", [&]<class T>() {
    T* d = dst.ptr<T>();
    const T v = T(value);
    strided_for<1>({&dst}, [&](auto o, int64_t n, auto in) {
      for (int64_t i = 0; i < n; ++i) d[o[0] + i * in[0]] = v;
    });
  });
}

}  // namespace gv::cpu

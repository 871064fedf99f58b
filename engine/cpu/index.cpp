// index.cpp: joining and splitting along an axis, gather / scatter_add by an int64 index, one_hot.
#include "engine/cpu/loops.h"
#include "engine/ops.h"

namespace gv {

Tensor concat(const std::vector<Tensor>& xs, int64_t axis) {
  GV_CHECK(!xs.empty(), ValueError, "concat: no tensors given");
  const Tensor& x0 = xs[0];
  int64_t ax = x0.norm_axis(axis, "concat");
  Shape shape = x0.shape();
  int64_t total = 0;
  for (size_t i = 0; i < xs.size(); ++i) {
    const Tensor& x = xs[i];
    GV_CHECK(x.dtype() == x0.dtype() && x.device() == x0.device(), DTypeError,
             "concat: tensor {} is {} but tensor 0 is {}", i, x.str(), x0.str());
    bool fits = x.dim() == x0.dim();
    for (int64_t d = 0; fits && d < x.dim(); ++d) fits = d == ax || x.shape()[d] == shape[d];
    GV_CHECK(fits, ShapeError, "concat: tensor {} of shape {} does not fit tensor 0 of shape {} along axis {}", i,
             shape_str(x.shape()), shape_str(shape), axis);
    total += x.shape()[ax];
  }
  shape[ax] = total;
  Tensor out = Tensor::empty(shape, x0.dtype(), x0.device());
  int64_t off = 0;
  for (const Tensor& x : xs) {
    int64_t n = x.shape()[ax];
    out.slice(ax, off, off + n).copy_(x);
    off += n;
  }
  return out;
}

std::vector<Tensor> split(const Tensor& x, const std::vector<int64_t>& sizes, int64_t axis) {
  int64_t ax = x.norm_axis(axis, "split");
  int64_t total = 0;
  for (int64_t s : sizes) {
    GV_CHECK(s >= 0, ValueError, "split: negative size in {}", shape_str(sizes));
    total += s;
  }
  GV_CHECK(total == x.shape()[ax], ShapeError, "split: sizes {} add up to {} but axis {} of shape {} has {}",
           shape_str(sizes), total, axis, shape_str(x.shape()), x.shape()[ax]);
  std::vector<Tensor> out;
  int64_t off = 0;
  for (int64_t s : sizes) {
    out.push_back(x.slice(ax, off, off + s));
    off += s;
  }
  return out;
}

std::vector<Tensor> chunk(const Tensor& x, int64_t n, int64_t axis) {
  GV_CHECK(n > 0, ValueError, "chunk: number of chunks must be positive, got {}", n);
  int64_t len = x.size(axis), step = (len + n - 1) / n;
  std::vector<int64_t> sizes;
  for (int64_t off = 0; off < len; off += step) sizes.push_back(std::min(step, len - off));
  if (sizes.empty()) sizes.push_back(0);
  return split(x, sizes, axis);
}

namespace {

// Checks for gather/scatter_add: index is int64 with x's rank and fits x off the axis.
void check_index(const Tensor& x_like, const Shape& xshape, int64_t ax, const Tensor& index, const char* op) {
  GV_CHECK(index.dtype() == DType::i64, DTypeError, "{}: index must be int64, got {}", op, index.str());
  GV_CHECK(index.dim() == (int64_t)xshape.size(), ShapeError, "{}: index of shape {} and input of shape {} differ in rank",
           op, shape_str(index.shape()), shape_str(xshape));
  for (int64_t d = 0; d < index.dim(); ++d)
    GV_CHECK(d == ax || index.shape()[d] <= xshape[d], ShapeError,
             "{}: index of shape {} is larger than input of shape {} on axis {}", op, shape_str(index.shape()),
             shape_str(xshape), d);
  GV_CHECK(x_like.device().is_cpu() && index.device().is_cpu(), DeviceError, "{}: not implemented on CUDA yet", op);
}

// f(position p in index (row-major), offset into x-shaped strides xs with index[p] on the axis)
template <class F>
void for_each_index(const Tensor& index, const Shape& xshape, const Shape& xs, int64_t ax, const char* op, F&& f) {
  Tensor idx = index.contiguous();
  const int64_t* pi = idx.data<int64_t>();
  const int64_t n = idx.numel(), nd = idx.dim();
  Shape st = contiguous_strides(idx.shape());
  for (int64_t p = 0; p < n; ++p) {
    int64_t v = pi[p];
    GV_CHECK(v >= 0 && v < xshape[ax], IndexError, "{}: index value {} at position {} is out of range [0, {}) on axis {}",
             op, v, p, xshape[ax], ax);
    int64_t off = 0, r = p;
    for (int64_t d = 0; d < nd; ++d) {
      int64_t c = r / st[d];
      r %= st[d];
      off += (d == ax ? v : c) * xs[d];
    }
    f(p, off);
  }
}

}  // namespace

Tensor gather(const Tensor& x, int64_t axis, const Tensor& index) {
  int64_t ax = x.norm_axis(axis, "gather");
  check_index(x, x.shape(), ax, index, "gather");
  Tensor out = Tensor::empty(index.shape(), x.dtype());
  cpu::dispatch_all(x.dtype(), "gather", [&]<class T>() {
    const T* px = x.data<T>();
    T* po = out.data<T>();
    for_each_index(index, x.shape(), x.strides(), ax, "gather", [&](int64_t p, int64_t off) { po[p] = px[off]; });
  });
  return out;
}

Tensor scatter_add(const Shape& shape, int64_t axis, const Tensor& index, const Tensor& src) {
  GV_CHECK(src.shape() == index.shape(), ShapeError, "scatter_add: src of shape {} and index of shape {} differ",
           shape_str(src.shape()), shape_str(index.shape()));
  Tensor out = Tensor::zeros(shape, src.dtype());
  int64_t ax = out.norm_axis(axis, "scatter_add");
  check_index(src, shape, ax, index, "scatter_add");
  cpu::dispatch_all(src.dtype(), "scatter_add", [&]<class T>() {
    Tensor s = src.contiguous();
    const T* ps = s.data<T>();
    T* po = out.data<T>();
    for_each_index(index, shape, out.strides(), ax, "scatter_add", [&](int64_t p, int64_t off) { po[off] += ps[p]; });
  });
  return out;
}

Tensor one_hot(const Tensor& index, int64_t num_classes, DType dtype) {
  GV_CHECK(index.dtype() == DType::i64, DTypeError, "one_hot: index must be int64, got {}", index.str());
  GV_CHECK(num_classes > 0, ValueError, "one_hot: num_classes must be positive, got {}", num_classes);
  Shape shape = index.shape();
  shape.push_back(num_classes);
  Tensor out = Tensor::zeros(shape, dtype);
  Tensor idx = index.contiguous();
  const int64_t* pi = idx.data<int64_t>();
  cpu::dispatch_all(dtype, "one_hot", [&]<class T>() {
    T* po = out.data<T>();
    for (int64_t p = 0; p < idx.numel(); ++p) {
      GV_CHECK(pi[p] >= 0 && pi[p] < num_classes, IndexError,
               "one_hot: index value {} at position {} is out of range [0, {})", pi[p], p, num_classes);
      po[p * num_classes + pi[p]] = T(1);
    }
  });
  return out;
}

}  // namespace gv

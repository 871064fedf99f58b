// index.cpp: joining and splitting along an axis (views and copies), and the front ends of gather
// and scatter_add by an int64 index and of one_hot (kernels behind engine/backend.h; the CPU's in
// engine/cpu/index.cpp).
#include "engine/backend.h"
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
  GV_CHECK(x_like.device() == index.device(), DeviceError, "{}: input on {} but index on {}", op,
           x_like.device().str(), index.device().str());
}

}  // namespace

Tensor gather(const Tensor& x, int64_t axis, const Tensor& index) {
  int64_t ax = x.norm_axis(axis, "gather");
  check_index(x, x.shape(), ax, index, "gather");
  Tensor out = Tensor::empty(index.shape(), x.dtype(), x.device());
  if (out.numel() > 0)
    backend_for(x.device(), "gather").gather(tensor_ref(out), tensor_ref(x), tensor_ref(index), (int)ax);
  return out;
}

Tensor scatter_add(const Shape& shape, int64_t axis, const Tensor& index, const Tensor& src) {
  GV_CHECK(src.shape() == index.shape(), ShapeError, "scatter_add: src of shape {} and index of shape {} differ",
           shape_str(src.shape()), shape_str(index.shape()));
  Tensor out = Tensor::zeros(shape, src.dtype(), src.device());
  int64_t ax = out.norm_axis(axis, "scatter_add");
  check_index(src, shape, ax, index, "scatter_add");
  if (src.numel() > 0)
    backend_for(src.device(), "scatter_add")
        .scatter_add(tensor_ref(out), tensor_ref(index), tensor_ref(src), (int)ax);
  return out;
}

Tensor one_hot(const Tensor& index, int64_t num_classes, DType dtype) {
  GV_CHECK(index.dtype() == DType::i64, DTypeError, "one_hot: index must be int64, got {}", index.str());
  GV_CHECK(num_classes > 0, ValueError, "one_hot: num_classes must be positive, got {}", num_classes);
  Shape shape = index.shape();
  shape.push_back(num_classes);
  Tensor out = Tensor::zeros(shape, dtype, index.device());
  if (index.numel() > 0)
    backend_for(index.device(), "one_hot").one_hot(tensor_ref(out), tensor_ref(index), num_classes);
  return out;
}

}  // namespace gv

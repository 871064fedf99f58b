// tensor.h: the Tensor handle. A Tensor is shared Storage + dtype + shape + strides (in elements)
// + offset (in elements). Views (reshape of contiguous data, permute, transpose, slice, expand,
// squeeze/unsqueeze) share storage and copy nothing; contiguous() copies only when it must.
// Ops on tensors are free functions in engine/ops.h.
#pragma once
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "engine/device.h"
#include "engine/dtype.h"
#include "engine/error.h"
#include "engine/storage.h"

namespace gv {

using Shape = std::vector<int64_t>;

std::string shape_str(const Shape& s);  // "[4, 3]"
int64_t shape_numel(const Shape& s);
Shape contiguous_strides(const Shape& s);
// "[3, 17]": the multi-index of flat element i (row-major) of a tensor of this shape.
std::string index_str(const Shape& s, int64_t i);

class Tensor;
// The first element of t, in row-major order, that is NaN or infinite: its flat index and value;
// nullopt when every element is finite (integer tensors always are). Reads t on the CPU.
struct NonFiniteAt {
  int64_t index;
  double value;
};
std::optional<NonFiniteAt> first_non_finite(const Tensor& t);

class Tensor {
 public:
  Tensor() = default;  // undefined: defined() is false

  // --- factories -------------------------------------------------------------------------------
  static Tensor empty(const Shape& shape, DType dtype = DType::f32, Device device = Device::cpu());
  static Tensor zeros(const Shape& shape, DType dtype = DType::f32, Device device = Device::cpu());
  static Tensor ones(const Shape& shape, DType dtype = DType::f32, Device device = Device::cpu());
  static Tensor full(const Shape& shape, double value, DType dtype = DType::f32,
                     Device device = Device::cpu());
  static Tensor scalar(double value, DType dtype = DType::f32, Device device = Device::cpu());
  static Tensor arange(int64_t n, DType dtype = DType::i64, Device device = Device::cpu());
  template <class T>
  static Tensor from_vector(const std::vector<T>& values, const Shape& shape);
  static Tensor from_list(std::initializer_list<double> values, const Shape& shape,
                          DType dtype = DType::f32);

  // --- what it is ------------------------------------------------------------------------------
  bool defined() const { return storage_ != nullptr; }
  DType dtype() const { return dtype_; }
  Device device() const;
  const Shape& shape() const { return shape_; }
  const Shape& strides() const { return strides_; }
  int64_t offset() const { return offset_; }
  int64_t dim() const { return (int64_t)shape_.size(); }
  int64_t size(int64_t axis) const;  // negative axes count from the end
  int64_t numel() const { return shape_numel(shape_); }
  bool is_contiguous() const;
  bool same_storage(const Tensor& o) const { return storage_ == o.storage_; }
  const std::shared_ptr<Storage>& storage() const { return storage_; }
  std::string str() const;  // "float32[2, 3] cpu"

  // Pointer to element [0,...,0] (storage base + offset). The dtype must match T.
  template <class T>
  T* data() const;
  void* raw_data() const;

  double item() const;  // the value of a one-element tensor, as double
  template <class T>
  std::vector<T> to_vector() const;  // row-major copy to the host, converting to T

  // --- views (no copy) -------------------------------------------------------------------------
  Tensor view(const Shape& shape) const;     // needs compatible strides; one -1 is inferred
  Tensor reshape(const Shape& shape) const;  // a view when possible, else a contiguous copy
  Tensor permute(const std::vector<int64_t>& dims) const;
  Tensor transpose(int64_t a, int64_t b) const;
  Tensor t() const;  // transpose of a 2-D tensor
  Tensor slice(int64_t axis, int64_t start, int64_t end, int64_t step = 1) const;
  Tensor select(int64_t axis, int64_t index) const;  // drops the axis
  Tensor expand(const Shape& shape) const;  // broadcast size-1 axes (stride 0); may add leading
  Tensor unsqueeze(int64_t axis) const;
  Tensor squeeze(int64_t axis) const;
  Tensor flatten(int64_t start = 0, int64_t end = -1) const;
  Tensor as_strided(const Shape& shape, const Shape& strides, int64_t offset) const;

  // --- copies ----------------------------------------------------------------------------------
  Tensor contiguous() const;  // itself when already contiguous
  Tensor clone() const;       // always a fresh contiguous copy
  Tensor to(DType dtype) const;
  Tensor to(Device device) const;
  Tensor& copy_(const Tensor& src);  // src broadcast to this shape, converted to this dtype
  Tensor& fill_(double value);

  int64_t norm_axis(int64_t axis, const char* op) const;  // checks and wraps a negative axis

 private:
  std::shared_ptr<Storage> storage_;
  DType dtype_ = DType::f32;
  Shape shape_, strides_;
  int64_t offset_ = 0;
};

// Broadcast two shapes numpy-style; throws ShapeError naming op and both shapes.
Shape broadcast_shapes(const Shape& a, const Shape& b, const char* op);

// --- template definitions ----------------------------------------------------------------------
template <class T>
T* Tensor::data() const {
  GV_CHECK(defined(), ValueError, "data: the tensor is undefined");
  GV_CHECK(dtype_ == dtype_of<T>::value, DTypeError, "data: tensor is {}, asked for {}",
           dtype_name(dtype_), dtype_name(dtype_of<T>::value));
  return static_cast<T*>(storage_->data()) + offset_;
}

template <class T>
Tensor Tensor::from_vector(const std::vector<T>& values, const Shape& shape) {
  GV_CHECK((int64_t)values.size() == shape_numel(shape), ShapeError,
           "from_vector: {} values do not fill shape {}", values.size(), shape_str(shape));
  Tensor t = empty(shape, dtype_of<T>::value);
  std::copy(values.begin(), values.end(), t.data<T>());
  return t;
}

}  // namespace gv

// tensor.cpp: Tensor factories, views and copies.
#include "engine/tensor.h"

#include <cmath>

#include <algorithm>
#include <cstring>
#include <numeric>

#include "engine/backend.h"
#include "engine/cpu/loops.h"

namespace gv {

std::string shape_str(const Shape& s) { return fmt::format("[{}]", fmt::join(s, ", ")); }

std::string index_str(const Shape& s, int64_t i) {
  std::vector<int64_t> idx(s.size());
  for (size_t d = s.size(); d-- > 0;) {
    idx[d] = s[d] > 0 ? i % s[d] : 0;
    i = s[d] > 0 ? i / s[d] : 0;
  }
  return fmt::format("[{}]", fmt::join(idx, ", "));
}

namespace {
template <class T>
std::optional<NonFiniteAt> first_non_finite_of(const Tensor& c) {
  const T* p = c.data<T>();
  for (int64_t i = 0, n = c.numel(); i < n; ++i)
    if (!std::isfinite(p[i])) return NonFiniteAt{i, double(p[i])};
  return std::nullopt;
}
}  // namespace

std::optional<NonFiniteAt> first_non_finite(const Tensor& t) {
  if (t.dtype() != DType::f32 && t.dtype() != DType::f64) return std::nullopt;
  const Tensor c = (t.device().is_cpu() ? t : t.to(Device::cpu())).contiguous();  // no copy when already contiguous
  return t.dtype() == DType::f32 ? first_non_finite_of<float>(c) : first_non_finite_of<double>(c);
}

int64_t shape_numel(const Shape& s) {
  int64_t n = 1;
  for (int64_t d : s) n *= d;
  return n;
}

Shape contiguous_strides(const Shape& s) {
  Shape st(s.size());
  int64_t acc = 1;
  for (int64_t d = (int64_t)s.size() - 1; d >= 0; --d) {
    st[d] = acc;
    acc *= std::max<int64_t>(s[d], 1);
  }
  return st;
}

Shape broadcast_shapes(const Shape& a, const Shape& b, const char* op) {
  size_t n = std::max(a.size(), b.size());
  Shape out(n);
  for (size_t i = 0; i < n; ++i) {
    int64_t da = i < n - a.size() ? 1 : a[i - (n - a.size())];
    int64_t db = i < n - b.size() ? 1 : b[i - (n - b.size())];
    GV_CHECK(da == db || da == 1 || db == 1, ShapeError,
             "{}: shapes {} and {} cannot be broadcast together", op, shape_str(a), shape_str(b));
    out[i] = da == 1 ? db : da;
  }
  return out;
}

// ---- factories --------------------------------------------------------------------------------
Tensor Tensor::empty(const Shape& shape, DType dtype, Device device) {
  for (int64_t d : shape)
    GV_CHECK(d >= 0, ShapeError, "empty: negative size in shape {}", shape_str(shape));
  Tensor t;
  t.storage_ = std::make_shared<Storage>(shape_numel(shape) * dtype_size(dtype), device);
  t.dtype_ = dtype;
  t.shape_ = shape;
  t.strides_ = contiguous_strides(shape);
  return t;
}
Tensor Tensor::zeros(const Shape& shape, DType dtype, Device device) {
  return full(shape, 0.0, dtype, device);
}
Tensor Tensor::ones(const Shape& shape, DType dtype, Device device) {
  return full(shape, 1.0, dtype, device);
}
Tensor Tensor::full(const Shape& shape, double value, DType dtype, Device device) {
  Tensor t = empty(shape, dtype, device);
  t.fill_(value);  // the device's own fill kernel: nothing crosses from the host
  return t;
}
Tensor Tensor::scalar(double value, DType dtype, Device device) { return full({}, value, dtype, device); }
Tensor Tensor::arange(int64_t n, DType dtype, Device device) {
  Tensor t = empty({n}, dtype, Device::cpu());
  cpu::dispatch_all(dtype, "arange", [&]<class T>() {
    T* p = t.data<T>();
    for (int64_t i = 0; i < n; ++i) p[i] = T(i);
  });
  return device.is_cpu() ? t : t.to(device);
}
Tensor Tensor::from_list(std::initializer_list<double> values, const Shape& shape, DType dtype) {
  Tensor t = from_vector(std::vector<double>(values), shape);
  return dtype == DType::f64 ? t : t.to(dtype);
}

// ---- what it is -------------------------------------------------------------------------------
Device Tensor::device() const { return storage_ ? storage_->device() : Device::cpu(); }

int64_t Tensor::norm_axis(int64_t axis, const char* op) const {
  int64_t n = dim();
  GV_CHECK(axis >= -n && axis < n, IndexError, "{}: axis {} is out of range for a tensor of shape {}",
           op, axis, shape_str(shape_));
  return axis < 0 ? axis + n : axis;
}
int64_t Tensor::size(int64_t axis) const { return shape_[norm_axis(axis, "size")]; }

bool Tensor::is_contiguous() const {
  if (numel() == 0) return true;  // no element to misplace
  int64_t acc = 1;
  for (int64_t d = dim() - 1; d >= 0; --d) {
    if (shape_[d] == 1) continue;
    if (strides_[d] != acc) return false;
    acc *= shape_[d];
  }
  return true;
}

std::string Tensor::str() const {
  if (!defined()) return "undefined tensor";
  return fmt::format("{}{} {}", dtype_name(dtype_), shape_str(shape_), device().str());
}

void* Tensor::raw_data() const {
  GV_CHECK(defined(), ValueError, "data: the tensor is undefined");
  return static_cast<char*>(storage_->data()) + offset_ * dtype_size(dtype_);
}

double Tensor::item() const {
  GV_CHECK(numel() == 1, ShapeError, "item: needs a tensor of one element, got shape {}",
           shape_str(shape_));
  return to_vector<double>()[0];
}

template <class T>
std::vector<T> Tensor::to_vector() const {
  GV_CHECK(defined(), ValueError, "to_vector: the tensor is undefined");
  Tensor c = device().is_cpu() ? *this : to(Device::cpu());
  c = c.to(dtype_of<T>::value).contiguous();
  const T* p = c.data<T>();
  return std::vector<T>(p, p + c.numel());
}
template std::vector<float> Tensor::to_vector<float>() const;
template std::vector<double> Tensor::to_vector<double>() const;
template std::vector<int64_t> Tensor::to_vector<int64_t>() const;

// ---- views ------------------------------------------------------------------------------------
Tensor Tensor::as_strided(const Shape& shape, const Shape& strides, int64_t offset) const {
  GV_CHECK(shape.size() == strides.size(), ShapeError, "as_strided: shape {} and strides {} differ in rank",
           shape_str(shape), shape_str(strides));
  Tensor t = *this;
  t.shape_ = shape;
  t.strides_ = strides;
  t.offset_ = offset;
  return t;
}

static Shape infer_shape(const Shape& shape, int64_t numel, const Shape& from, const char* op) {
  Shape s = shape;
  int64_t known = 1, infer = -1;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == -1) {
      GV_CHECK(infer < 0, ShapeError, "{}: more than one -1 in shape {}", op, shape_str(shape));
      infer = (int64_t)i;
    } else {
      GV_CHECK(s[i] >= 0, ShapeError, "{}: bad size in shape {}", op, shape_str(shape));
      known *= s[i];
    }
  }
  if (infer >= 0) {
    GV_CHECK(known > 0 && numel % known == 0, ShapeError, "{}: shape {} is invalid for input of shape {}",
             op, shape_str(shape), shape_str(from));
    s[infer] = numel / known;
  }
  GV_CHECK(shape_numel(s) == numel, ShapeError, "{}: shape {} is invalid for input of shape {} ({} elements)",
           op, shape_str(shape), shape_str(from), numel);
  return s;
}

// Strides for viewing this tensor's elements (in row-major order) as `s`, or empty if impossible.
static bool view_strides(const Shape& from, const Shape& fst, const Shape& to, Shape& out) {
  out.assign(to.size(), 0);
  if (shape_numel(to) == 0) { out = contiguous_strides(to); return true; }
  // walk groups of axes of `from` and `to` with equal element counts
  size_t i = 0, j = 0;
  while (i < from.size() || j < to.size()) {
    // skip size-1 axes of the target: any stride will do
    if (j < to.size() && to[j] == 1) { out[j] = 1; ++j; continue; }
    if (i < from.size() && from[i] == 1) { ++i; continue; }
    if (i >= from.size() || j >= to.size()) return false;
    size_t i0 = i, j0 = j;
    int64_t na = from[i++], nb = to[j++];
    while (na != nb) {
      if (na < nb) { if (i >= from.size()) return false; na *= from[i++]; }
      else { if (j >= to.size()) return false; nb *= to[j++]; }
    }
    // axes i0..i-1 of `from` must be contiguous with each other (ignoring size-1 axes)
    int64_t last = -1;
    for (size_t k = i0; k < i; ++k) {
      if (from[k] == 1) continue;
      if (last >= 0 && fst[last] != fst[k] * from[k]) return false;
      last = (int64_t)k;
    }
    int64_t inner = last >= 0 ? fst[last] : 1;
    for (size_t k = j; k-- > j0;) {
      out[k] = inner;
      inner *= to[k];
    }
  }
  return true;
}

Tensor Tensor::view(const Shape& shape) const {
  Shape s = infer_shape(shape, numel(), shape_, "view");
  Shape st;
  GV_CHECK(view_strides(shape_, strides_, s, st), ShapeError,
           "view: cannot view shape {} with strides {} as {} without a copy (use reshape)",
           shape_str(shape_), shape_str(strides_), shape_str(s));
  return as_strided(s, st, offset_);
}

Tensor Tensor::reshape(const Shape& shape) const {
  Shape s = infer_shape(shape, numel(), shape_, "reshape");
  Shape st;
  if (view_strides(shape_, strides_, s, st)) return as_strided(s, st, offset_);
  return contiguous().view(s);
}

Tensor Tensor::permute(const std::vector<int64_t>& dims) const {
  GV_CHECK((int64_t)dims.size() == dim(), ShapeError, "permute: {} axes given for a tensor of shape {}",
           dims.size(), shape_str(shape_));
  Shape s(dim()), st(dim());
  std::vector<bool> seen(dim(), false);
  for (int64_t i = 0; i < dim(); ++i) {
    int64_t d = norm_axis(dims[i], "permute");
    GV_CHECK(!seen[d], IndexError, "permute: axis {} repeated in {}", d, shape_str(dims));
    seen[d] = true;
    s[i] = shape_[d];
    st[i] = strides_[d];
  }
  return as_strided(s, st, offset_);
}

Tensor Tensor::transpose(int64_t a, int64_t b) const {
  a = norm_axis(a, "transpose");
  b = norm_axis(b, "transpose");
  std::vector<int64_t> p(dim());
  std::iota(p.begin(), p.end(), 0);
  std::swap(p[a], p[b]);
  return permute(p);
}

Tensor Tensor::t() const {
  GV_CHECK(dim() == 2, ShapeError, "t: needs a 2-D tensor, got shape {}", shape_str(shape_));
  return transpose(0, 1);
}

Tensor Tensor::slice(int64_t axis, int64_t start, int64_t end, int64_t step) const {
  axis = norm_axis(axis, "slice");
  GV_CHECK(step > 0, ValueError, "slice: step must be positive, got {}", step);
  int64_t n = shape_[axis];
  auto clampi = [n](int64_t v) { return std::clamp<int64_t>(v < 0 ? v + n : v, 0, n); };
  start = clampi(start);
  end = std::max(clampi(end), start);
  Shape s = shape_, st = strides_;
  s[axis] = (end - start + step - 1) / step;
  st[axis] = strides_[axis] * step;
  return as_strided(s, st, offset_ + start * strides_[axis]);
}

Tensor Tensor::select(int64_t axis, int64_t index) const {
  axis = norm_axis(axis, "select");
  int64_t n = shape_[axis];
  GV_CHECK(index >= -n && index < n, IndexError, "select: index {} is out of range for axis {} of shape {}",
           index, axis, shape_str(shape_));
  if (index < 0) index += n;
  Shape s = shape_, st = strides_;
  s.erase(s.begin() + axis);
  st.erase(st.begin() + axis);
  return as_strided(s, st, offset_ + index * strides_[axis]);
}

Tensor Tensor::expand(const Shape& shape) const {
  GV_CHECK((int64_t)shape.size() >= dim(), ShapeError, "expand: cannot expand shape {} to fewer axes {}",
           shape_str(shape_), shape_str(shape));
  int64_t lead = (int64_t)shape.size() - dim();
  Shape st(shape.size(), 0);
  for (int64_t d = 0; d < dim(); ++d) {
    int64_t want = shape[lead + d];
    if (shape_[d] == want) st[lead + d] = strides_[d];
    else GV_CHECK(shape_[d] == 1, ShapeError, "expand: cannot expand shape {} to {}", shape_str(shape_),
                  shape_str(shape));
  }
  return as_strided(shape, st, offset_);
}

Tensor Tensor::unsqueeze(int64_t axis) const {
  int64_t n = dim() + 1;
  GV_CHECK(axis >= -n && axis < n, IndexError, "unsqueeze: axis {} is out of range for shape {}", axis,
           shape_str(shape_));
  if (axis < 0) axis += n;
  Shape s = shape_, st = strides_;
  int64_t stride = axis < dim() ? strides_[axis] * shape_[axis] : 1;
  s.insert(s.begin() + axis, 1);
  st.insert(st.begin() + axis, stride);
  return as_strided(s, st, offset_);
}

Tensor Tensor::squeeze(int64_t axis) const {
  axis = norm_axis(axis, "squeeze");
  GV_CHECK(shape_[axis] == 1, ShapeError, "squeeze: axis {} of shape {} has size {}, not 1", axis,
           shape_str(shape_), shape_[axis]);
  Shape s = shape_, st = strides_;
  s.erase(s.begin() + axis);
  st.erase(st.begin() + axis);
  return as_strided(s, st, offset_);
}

Tensor Tensor::flatten(int64_t start, int64_t end) const {
  if (dim() == 0) return reshape({1});
  start = norm_axis(start, "flatten");
  end = norm_axis(end, "flatten");
  GV_CHECK(start <= end, IndexError, "flatten: start axis {} is after end axis {}", start, end);
  Shape s(shape_.begin(), shape_.begin() + start);
  int64_t n = 1;
  for (int64_t d = start; d <= end; ++d) n *= shape_[d];
  s.push_back(n);
  s.insert(s.end(), shape_.begin() + end + 1, shape_.end());
  return reshape(s);
}

// ---- copies -----------------------------------------------------------------------------------
Tensor Tensor::contiguous() const {
  if (is_contiguous()) return *this;
  return clone();
}

Tensor Tensor::clone() const {
  Tensor out = empty(shape_, dtype_, device());
  out.copy_(*this);
  return out;
}

Tensor Tensor::to(DType dtype) const {
  if (dtype == dtype_) return *this;
  Tensor out = empty(shape_, dtype, device());
  out.copy_(*this);
  return out;
}

Tensor Tensor::to(Device dev) const {
  if (dev == device()) return *this;
  // Between two devices neither of which is the host: through the host (one download, one upload).
  if (!device().is_cpu() && !dev.is_cpu()) return to(Device::cpu()).to(dev);
  const Tensor src = contiguous();  // on its own device (a strided copy kernel there, if needed)
  Tensor out = empty(shape_, dtype_, dev);
  const size_t nbytes = size_t(numel()) * dtype_size(dtype_);
  if (device().is_cpu())
    backend_for(dev, "to").from_host(out.raw_data(), src.raw_data(), nbytes);
  else
    backend_for(device(), "to").to_host(out.raw_data(), src.raw_data(), nbytes);
  return out;
}

// Writing through a stride-0 (broadcast) axis would store many values into one element.
static void check_writable(const Tensor& t, const char* op) {
  for (int64_t d = 0; d < t.dim(); ++d)
    GV_CHECK(t.strides()[d] != 0 || t.shape()[d] <= 1, ValueError,
             "{}: cannot write into a broadcast view (axis {} of shape {} has stride 0); write into a contiguous copy",
             op, d, shape_str(t.shape()));
}

Tensor& Tensor::copy_(const Tensor& src) {
  GV_CHECK(defined() && src.defined(), ValueError, "copy_: undefined tensor");
  check_writable(*this, "copy_");
  Shape b = broadcast_shapes(shape_, src.shape(), "copy_");
  GV_CHECK(b == shape_, ShapeError, "copy_: cannot copy a tensor of shape {} into one of shape {}",
           shape_str(src.shape()), shape_str(shape_));
  if (src.device() != device()) return copy_(src.to(device()));  // one transfer, then on the device
  if (src.same_storage(*this)) {
    if (src.device().is_cuda() && src.offset() == offset_ && src.strides() == strides_ && src.dtype() == dtype_)
      return *this;                      // the same view: nothing to do
    return copy_(src.clone());           // overlapping views: copy via a temporary
  }
  if (numel() > 0) backend_for(device(), "copy_").copy(tensor_ref(*this), tensor_ref(src, shape_));
  return *this;
}

Tensor& Tensor::fill_(double value) {
  GV_CHECK(defined(), ValueError, "fill_: undefined tensor");
  check_writable(*this, "fill_");
  if (numel() > 0) backend_for(device(), "fill_").fill(tensor_ref(*this), value);
  return *this;
}

}  // namespace gv

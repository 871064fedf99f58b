// loader.cpp: Dataset gathering and holdout splits, the pixel transforms, and BatchLoader.
// Batches are gathered row by row with memcpy from the contiguous data set (a row is one item's
// bytes), so a batch costs one copy of its own bytes and nothing else.
#include "nn/data/loader.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "engine/ops.h"

namespace gv::data {

namespace {

// Checks a data set's tensors and returns it contiguous on the CPU.
Dataset checked_cpu(const Dataset& ds, const char* op) {
  GV_CHECK(ds.images.defined() && ds.images.dim() >= 1, ValueError,
           "{}: the data set's images must be a tensor (N, ...), got {}", op,
           ds.images.defined() ? ds.images.str() : "an undefined tensor");
  Dataset out{ds.images.to(Device::cpu()).contiguous(), Tensor()};
  if (ds.labels.defined()) {
    GV_CHECK(ds.labels.dtype() == DType::i64 && ds.labels.dim() == 1 && ds.labels.size(0) == ds.images.size(0),
             ShapeError, "{}: labels must be int64 ({}) to match images {}, got {}", op,
             ds.images.size(0), shape_str(ds.images.shape()), ds.labels.str());
    out.labels = ds.labels.to(Device::cpu()).contiguous();
  }
  return out;
}

// dst[k] = src[idx[k]] for k < count: rows of row_bytes bytes.
void gather_rows(const Tensor& src, const int64_t* idx, int64_t count, Tensor& dst) {
  const int64_t n = src.size(0);
  const size_t row = n == 0 ? 0 : (size_t)(src.numel() / n) * dtype_size(src.dtype());
  const auto* in = static_cast<const uint8_t*>(src.raw_data());
  auto* out = static_cast<uint8_t*>(dst.raw_data());
  for (int64_t k = 0; k < count; ++k) {
    GV_CHECK(idx[k] >= 0 && idx[k] < n, IndexError, "gather: index {} out of range for {} items", idx[k], n);
    std::memcpy(out + k * row, in + idx[k] * row, row);
  }
}

Shape with_rows(const Shape& shape, int64_t rows) {
  Shape s = shape;
  s[0] = rows;
  return s;
}

// A fresh or reused tensor of the given shape and dtype: reused when `t` already is one that no
// other tensor shares.
Tensor& ensure(Tensor& t, const Shape& shape, DType dtype) {
  const bool reuse = t.defined() && t.storage().use_count() == 1 && t.shape() == shape &&
                     t.dtype() == dtype && t.is_contiguous() && t.offset() == 0 && t.device().is_cpu();
  if (!reuse) t = Tensor::empty(shape, dtype);
  return t;
}

}  // namespace

Dataset take(const Dataset& ds, const Tensor& indices) {
  const Dataset src = checked_cpu(ds, "take");
  GV_CHECK(indices.defined() && indices.dtype() == DType::i64 && indices.dim() == 1, ValueError,
           "take: indices must be int64 (K), got {}", indices.defined() ? indices.str() : "an undefined tensor");
  const Tensor idx = indices.to(Device::cpu()).contiguous();
  const int64_t k = idx.size(0);
  Dataset out{Tensor::empty(with_rows(src.images.shape(), k), src.images.dtype()), Tensor()};
  gather_rows(src.images, idx.data<int64_t>(), k, out.images);
  if (src.labels.defined()) {
    out.labels = Tensor::empty({k}, DType::i64);
    gather_rows(src.labels, idx.data<int64_t>(), k, out.labels);
  }
  return out;
}

std::pair<Dataset, Dataset> split_holdout(const Dataset& ds, int64_t n_holdout, uint64_t seed) {
  const int64_t n = ds.size();
  GV_CHECK(n_holdout >= 0 && n_holdout <= n, ValueError,
           "split_holdout: cannot hold out {} of {} items", n_holdout, n);
  Generator g(seed);
  std::vector<int64_t> perm = randperm(n, g).to_vector<int64_t>();
  std::vector<int64_t> holdout(perm.begin(), perm.begin() + n_holdout), train(perm.begin() + n_holdout, perm.end());
  std::sort(holdout.begin(), holdout.end());  // each part in the data set's order
  std::sort(train.begin(), train.end());
  return {take(ds, Tensor::from_vector(train, {n - n_holdout})),
          take(ds, Tensor::from_vector(holdout, {n_holdout}))};
}

// ---- transforms ---------------------------------------------------------------------------------
Tensor to_signed(const Tensor& x) { return x * 2.0 - 1.0; }

Tensor binarize_dynamic(const Tensor& x, Generator& g) { return bernoulli(x, g); }

Tensor binarize_static(const Tensor& x, double threshold) { return gt(x, threshold); }

Tensor dequantize_uniform(const Tensor& x, Generator& g) {
  GV_CHECK(x.defined() && is_floating(x.dtype()), DTypeError,
           "dequantize_uniform: x must be a float tensor, got {}", x.defined() ? x.str() : "an undefined tensor");
  const Tensor u = uniform(x.shape(), g, 0.0, 1.0, DType::f64);  // U(0,1]: 1 - u is U[0,1)
  const Tensor v = x.to(Device::cpu()).to(DType::f64).contiguous();
  Tensor out = Tensor::empty(x.shape(), DType::f64);
  const double *pv = v.data<double>(), *pu = u.data<double>();
  double* po = out.data<double>();
  for (int64_t i = 0, n = x.numel(); i < n; ++i) {
    const double k = std::nearbyint(pv[i] * 255.0);  // the 8-bit value, exactly
    po[i] = (k + (1.0 - pu[i])) / 256.0;  // in [k/256, (k+1)/256)
  }
  Tensor y = out.to(x.dtype());
  if (x.dtype() == DType::f32) {  // rounding to float may reach the next bin's edge: step back
    float* py = y.data<float>();
    for (int64_t i = 0, n = x.numel(); i < n; ++i) {
      const float edge = (float)((std::nearbyint(pv[i] * 255.0) + 1.0) / 256.0);
      if (py[i] >= edge) py[i] = std::nextafter(edge, 0.0f);
    }
  }
  return x.device().is_cpu() ? y : y.to(x.device());
}

// ---- BatchLoader --------------------------------------------------------------------------------
BatchLoader::BatchLoader(const Dataset& ds, int64_t batch_size, bool shuffle, uint64_t seed, bool drop_last)
    : ds_(checked_cpu(ds, "BatchLoader")),
      n_(ds_.images.size(0)),
      batch_size_(batch_size),
      shuffle_(shuffle),
      drop_last_(drop_last),
      seed_(seed) {
  GV_CHECK(batch_size >= 1, ValueError, "BatchLoader: batch_size must be at least 1, got {}", batch_size);
  start_epoch(0);
}

Tensor BatchLoader::epoch_order(int64_t n, uint64_t seed, int64_t epoch) {
  GV_CHECK(n >= 0 && epoch >= 0, ValueError, "epoch_order: needs n >= 0 and epoch >= 0, got {} and {}", n, epoch);
  const uint64_t blocks_per_perm = (uint64_t)(std::max<int64_t>(n - 1, 0) + 1) / 2;  // as randperm
  Generator g(seed);
  g.set_state(seed, (uint64_t)epoch * blocks_per_perm);
  return randperm(n, g);
}

void BatchLoader::start_epoch(int64_t epoch) {
  epoch_ = epoch;
  index_ = 0;
  order_ = shuffle_ ? epoch_order(n_, seed_, epoch) : Tensor::arange(n_, DType::i64);
}

int64_t BatchLoader::batches_per_epoch() const {
  return drop_last_ ? n_ / batch_size_ : (n_ + batch_size_ - 1) / batch_size_;
}

void BatchLoader::seek(int64_t epoch, int64_t index) {
  GV_CHECK(epoch >= 0 && index >= 0 && index <= n_, ValueError,
           "BatchLoader::seek: needs epoch >= 0 and index in 0..{}, got epoch {} and index {}", n_, epoch, index);
  if (epoch != epoch_ || !order_.defined()) start_epoch(epoch);
  index_ = index;
}

void BatchLoader::gather(const Tensor& src, int64_t first, int64_t count, Tensor& dst) const {
  ensure(dst, with_rows(src.shape(), count), src.dtype());
  gather_rows(src, order_.data<int64_t>() + first, count, dst);
}

void BatchLoader::set_shard(int64_t rank, int64_t ranks) {
  GV_CHECK(ranks >= 1 && rank >= 0 && rank < ranks, ValueError, "BatchLoader: rank {} of {} ranks", rank, ranks);
  GV_CHECK(ranks == 1 || (drop_last_ && batch_size_ % ranks == 0), ValueError,
           "BatchLoader: a batch of {} cannot be split evenly over {} ranks (needs a batch size that is a multiple "
           "of the ranks, and whole batches only)", batch_size_, ranks);
  rank_ = rank, ranks_ = ranks;
}

bool BatchLoader::next(Batch& batch) {
  const int64_t remaining = n_ - index_;
  if (remaining <= 0 || (drop_last_ && remaining < batch_size_)) {
    start_epoch(epoch_ + 1);
    return false;
  }
  const int64_t global = std::min(batch_size_, remaining);
  const int64_t count = global / ranks_, first = index_ + rank_ * count;  // this rank's slice of it
  gather(ds_.images, first, count, batch.images);
  if (ds_.labels.defined()) gather(ds_.labels, first, count, batch.labels);
  else batch.labels = Tensor();
  batch.indices = order_.slice(0, first, first + count);
  index_ += global;
  return true;
}

}  // namespace gv::data

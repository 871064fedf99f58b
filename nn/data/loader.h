// loader.h: data sets in memory, mini-batches and the pixel transforms of the VAE literature.
//   Dataset + split_holdout: images with labels, and a seeded train/holdout split.
//   Transforms: to_signed ([0,1] -> [-1,1]), binarize_dynamic (a fresh Bernoulli draw each call,
//     as in the IWAE/VLAE papers' dynamically binarized MNIST), binarize_static (threshold),
//     dequantize_uniform ((x*255 + u)/256, u ~ U[0,1): the continuous densities of bits/dim).
//   BatchLoader: shuffled or sequential batches, each epoch's order a pure function of
//     (seed, epoch), and a position that can be saved and restored exactly.
#pragma once
#include <cstdint>
#include <utility>

#include "engine/random.h"
#include "engine/tensor.h"

namespace gv::data {

struct Dataset {
  Tensor images;  // (N, ...) any float dtype; N items of the same shape
  Tensor labels;  // int64 (N), or undefined for unlabelled data
  int64_t size() const { return images.defined() ? images.size(0) : 0; }
};

// The items at `indices` (int64, any length), in that order, as a new contiguous data set.
Dataset take(const Dataset& ds, const Tensor& indices);

// Splits off n_holdout items chosen by randperm(N, Generator(seed)) (its first n_holdout
// entries); both parts keep the data set's order. Same seed, same split.
std::pair<Dataset, Dataset> split_holdout(const Dataset& ds, int64_t n_holdout, uint64_t seed);

// ---- transforms (same shape, dtype and device as x) -------------------------------------------
Tensor to_signed(const Tensor& x);                              // 2x - 1
Tensor binarize_dynamic(const Tensor& x, Generator& g);         // bernoulli(x): x in [0,1]
Tensor binarize_static(const Tensor& x, double threshold = 0.5);  // x > threshold ? 1 : 0
Tensor dequantize_uniform(const Tensor& x, Generator& g);       // (round(255 x) + u) / 256

// ---- batches ------------------------------------------------------------------------------------
struct Batch {
  Tensor images;  // (B, ...) contiguous, the data set's dtype
  Tensor labels;  // int64 (B), undefined when the data set has none
  Tensor indices; // int64 (B): the items' indices in the data set
};

struct LoaderPosition {
  int64_t epoch = 0;
  int64_t index = 0;  // items of this epoch already handed out
  bool operator==(const LoaderPosition&) const = default;
};

// Hands out the data set in batches of batch_size, epoch after epoch. With shuffle, epoch e
// visits the items in the order randperm(N, g) for a Generator g with the given seed, its counter
// set to e * ceil((N-1)/2) (the blocks one randperm(N) uses): so epoch e's order is what the
// (e+1)-th randperm(N) drawn from Generator(seed) would be, and needs no replay of epochs before
// it. Without shuffle the order is 0..N-1. With drop_last, the last batch of an epoch is dropped
// when it has fewer than batch_size items; otherwise it is handed out short.
class BatchLoader {
 public:
  BatchLoader(const Dataset& ds, int64_t batch_size, bool shuffle, uint64_t seed, bool drop_last);

  // Fills `batch` with the next batch of the current epoch and returns true; at the end of an
  // epoch returns false (once) and moves on to the start of the next. Reuses batch's buffers
  // when nothing else holds them.
  bool next(Batch& batch);

  // Data-parallel training: every rank runs the same loader (same seed, same global batches) and
  // next() hands out only rank's slice of each batch: items [rank b/ranks, (rank+1) b/ranks) of
  // it. batch_size must be a multiple of ranks, with drop_last. position() stays the global one.
  void set_shard(int64_t rank, int64_t ranks);

  LoaderPosition position() const { return {epoch_, index_}; }
  // Continue from `position()` as saved: the batches that follow are the same as they would have
  // been. index may be any count of items in 0..N (a multiple of batch_size when saved by us).
  void seek(int64_t epoch, int64_t index);
  void seek(const LoaderPosition& p) { seek(p.epoch, p.index); }

  int64_t size() const { return n_; }                  // items in the data set
  int64_t batch_size() const { return batch_size_; }
  int64_t batches_per_epoch() const;
  const Tensor& order() const { return order_; }       // the current epoch's order, int64 (N)
  static Tensor epoch_order(int64_t n, uint64_t seed, int64_t epoch);  // randperm as above

 private:
  void start_epoch(int64_t epoch);
  void gather(const Tensor& src, int64_t first, int64_t count, Tensor& dst) const;

  Dataset ds_;  // images made contiguous, on the CPU
  int64_t n_, batch_size_;
  bool shuffle_, drop_last_;
  uint64_t seed_;
  int64_t epoch_ = 0, index_ = 0;
  int64_t rank_ = 0, ranks_ = 1;
  Tensor order_;  // int64 (N)
};

}  // namespace gv::data

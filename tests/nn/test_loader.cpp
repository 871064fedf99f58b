// test_loader.cpp: data sets, holdout splits, pixel transforms and BatchLoader (nn/data/loader.h).
// Items are tagged with their own index (image i is filled with i) so every batch can be checked
// against the indices it claims; epochs, seeds and positions are checked for exact
// reproducibility; the cost of a batch is measured on MNIST when it is found.
#include <doctest/doctest.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <set>

#include "engine/ops.h"
#include "nn/data/idx.h"
#include "nn/data/loader.h"

using namespace gv::data;
using gv::Generator;
using gv::Shape;
using gv::Tensor;

// This file's helpers and tests in a namespace of their own: the unity build (scripts/test.sh)
// compiles several test files as one, and their helpers must not meet.
namespace file_nn_test_loader {

namespace {

// n items of shape (1,2,2), item i filled with i; labels i % 10 + 100 * i (unique, traceable).
Dataset tagged(int64_t n) {
  Dataset ds{Tensor::empty({n, 1, 2, 2}), Tensor::empty({n}, gv::DType::i64)};
  for (int64_t i = 0; i < n; ++i) {
    for (int k = 0; k < 4; ++k) ds.images.data<float>()[4 * i + k] = float(i);
    ds.labels.data<int64_t>()[i] = 100 * i + i % 10;
  }
  return ds;
}

// Checks that the batch's rows and labels are those of its indices; returns the indices.
std::vector<int64_t> checked_indices(const Batch& b) {
  const std::vector<int64_t> idx = b.indices.to_vector<int64_t>();
  REQUIRE(b.images.shape() == Shape{(int64_t)idx.size(), 1, 2, 2});
  CHECK(b.images.is_contiguous());
  const float* px = b.images.data<float>();
  const int64_t* lab = b.labels.data<int64_t>();
  for (size_t k = 0; k < idx.size(); ++k) {
    CHECK(px[4 * k + 3] == float(idx[k]));
    CHECK(lab[k] == 100 * idx[k] + idx[k] % 10);
  }
  return idx;
}

// The indices of the rest of the current epoch, batch by batch (consumes the end-of-epoch false).
std::vector<std::vector<int64_t>> rest_of_epoch(BatchLoader& loader) {
  std::vector<std::vector<int64_t>> out;
  Batch b;
  while (loader.next(b)) out.push_back(checked_indices(b));
  return out;
}

std::vector<int64_t> flat(const std::vector<std::vector<int64_t>>& batches) {
  std::vector<int64_t> all;
  for (const auto& b : batches) all.insert(all.end(), b.begin(), b.end());
  return all;
}

std::vector<int64_t> iota(int64_t n) {
  std::vector<int64_t> v(n);
  for (int64_t i = 0; i < n; ++i) v[i] = i;
  return v;
}

}  // namespace

// ================================ BatchLoader ====================================================
TEST_CASE("BatchLoader: every index exactly once per epoch, short last batch, then false once") {
  BatchLoader loader(tagged(103), 10, true, 7, false);
  CHECK(loader.batches_per_epoch() == 11);
  for (int epoch = 0; epoch < 3; ++epoch) {
    const auto batches = rest_of_epoch(loader);
    REQUIRE(batches.size() == 11);
    CHECK(batches.back().size() == 3);
    std::vector<int64_t> all = flat(batches);
    std::sort(all.begin(), all.end());
    CHECK(all == iota(103));
    CHECK(loader.position() == LoaderPosition{epoch + 1, 0});
  }
}

TEST_CASE("BatchLoader: the order of epoch e is a pure function of (seed, e)") {
  BatchLoader a(tagged(50), 8, true, 42, false), b(tagged(50), 8, true, 42, false);
  std::vector<std::vector<int64_t>> epochs;
  for (int e = 0; e < 4; ++e) {
    const std::vector<int64_t> ea = flat(rest_of_epoch(a));
    CHECK(ea == flat(rest_of_epoch(b)));
    CHECK(ea == BatchLoader::epoch_order(50, 42, e).to_vector<int64_t>());
    epochs.push_back(ea);
  }
  for (int e = 1; e < 4; ++e) CHECK(epochs[e] != epochs[e - 1]);  // different epochs differ
  // epoch e's order is the (e+1)-th randperm drawn from one Generator(seed)
  Generator g(42);
  for (int e = 0; e < 4; ++e) CHECK(gv::randperm(50, g).to_vector<int64_t>() == epochs[e]);
  // another seed, another order; no shuffle: 0..N-1 every epoch
  BatchLoader other(tagged(50), 8, true, 43, false);
  CHECK(flat(rest_of_epoch(other)) != epochs[0]);
  BatchLoader plain(tagged(50), 8, false, 42, false);
  CHECK(flat(rest_of_epoch(plain)) == iota(50));
  CHECK(flat(rest_of_epoch(plain)) == iota(50));
}

TEST_CASE("BatchLoader: drop_last drops the short batch, and different items each epoch") {
  BatchLoader loader(tagged(103), 10, true, 3, true);
  CHECK(loader.batches_per_epoch() == 10);
  std::set<int64_t> dropped_sets;
  for (int epoch = 0; epoch < 3; ++epoch) {
    const auto batches = rest_of_epoch(loader);
    REQUIRE(batches.size() == 10);
    for (const auto& b : batches) CHECK(b.size() == 10);
    std::vector<int64_t> all = flat(batches);
    CHECK(std::set<int64_t>(all.begin(), all.end()).size() == 100);
    int64_t sum = 0;
    for (int64_t i : all) sum += i;
    dropped_sets.insert(103 * 102 / 2 - sum);
  }
  CHECK(dropped_sets.size() > 1);  // the dropped items change with the epoch's order
  BatchLoader exact(tagged(20), 10, false, 0, true);
  CHECK(rest_of_epoch(exact).size() == 2);
  BatchLoader tiny(tagged(5), 10, true, 0, true);
  CHECK(rest_of_epoch(tiny).empty());
}

TEST_CASE("BatchLoader: position() and seek() resume exactly, mid-epoch and at epoch boundaries") {
  for (int64_t k : {0, 1, 4, 7}) {
    CAPTURE(k);
    BatchLoader run(tagged(61), 8, true, 99, false);
    rest_of_epoch(run);  // epoch 0
    Batch b;
    for (int64_t i = 0; i < k; ++i) REQUIRE(run.next(b));  // k batches into epoch 1
    const LoaderPosition saved = run.position();
    CHECK(saved == LoaderPosition{1, 8 * k});
    const auto rest = rest_of_epoch(run);
    const auto next_epoch = rest_of_epoch(run);

    BatchLoader resumed(tagged(61), 8, true, 99, false);
    resumed.seek(saved);
    CHECK(resumed.position() == saved);
    CHECK(rest_of_epoch(resumed) == rest);
    CHECK(rest_of_epoch(resumed) == next_epoch);
  }
  BatchLoader loader(tagged(10), 4, true, 1, false);
  loader.seek(5, 10);  // at the end of epoch 5: the next call ends it
  Batch b;
  CHECK_FALSE(loader.next(b));
  CHECK(loader.position() == LoaderPosition{6, 0});
  CHECK_THROWS_AS(loader.seek(0, 11), gv::ValueError);
  CHECK_THROWS_AS(loader.seek(-1, 0), gv::ValueError);
  CHECK_THROWS_AS(BatchLoader(tagged(10), 0, true, 1, false), gv::ValueError);
}

TEST_CASE("BatchLoader: a batch someone still holds is never overwritten; unlabelled data") {
  BatchLoader loader(tagged(30), 10, false, 0, false);
  Batch b;
  REQUIRE(loader.next(b));
  const Tensor kept = b.images;  // shares the buffer: next() must not reuse it
  REQUIRE(loader.next(b));
  CHECK(kept.data<float>()[0] == 0.0f);
  CHECK(b.images.data<float>()[0] == 10.0f);
  const void* buffer = b.images.raw_data();
  REQUIRE(loader.next(b));  // held by nobody else now: reused
  CHECK(b.images.raw_data() == buffer);
  CHECK(b.images.data<float>()[0] == 20.0f);

  BatchLoader unlabelled(Dataset{tagged(5).images, Tensor()}, 2, true, 0, false);
  REQUIRE(unlabelled.next(b));
  CHECK_FALSE(b.labels.defined());
  CHECK_THROWS_AS(BatchLoader(Dataset{tagged(5).images, Tensor::zeros({4}, gv::DType::i64)}, 2, true, 0, false),
                  gv::ShapeError);
}

// ================================ holdout split ==================================================
TEST_CASE("split_holdout: disjoint, complete, seeded, each part in the data set's order") {
  const Dataset ds = tagged(200);
  const auto [train, holdout] = split_holdout(ds, 30, 5);
  REQUIRE(train.size() == 170);
  REQUIRE(holdout.size() == 30);
  std::vector<int64_t> ti, hi;
  for (int64_t i = 0; i < train.size(); ++i) ti.push_back((int64_t)train.images.data<float>()[4 * i]);
  for (int64_t i = 0; i < holdout.size(); ++i) hi.push_back((int64_t)holdout.images.data<float>()[4 * i]);
  CHECK(std::is_sorted(ti.begin(), ti.end()));
  CHECK(std::is_sorted(hi.begin(), hi.end()));
  std::vector<int64_t> all = ti;
  all.insert(all.end(), hi.begin(), hi.end());
  std::sort(all.begin(), all.end());
  CHECK(all == iota(200));  // complete and disjoint
  for (int64_t i = 0; i < train.size(); ++i) CHECK(train.labels.data<int64_t>()[i] == 100 * ti[i] + ti[i] % 10);
  // the holdout is the first 30 entries of randperm(200, Generator(5))
  Generator g(5);
  std::vector<int64_t> perm = gv::randperm(200, g).to_vector<int64_t>();
  perm.resize(30);
  std::sort(perm.begin(), perm.end());
  CHECK(perm == hi);
  CHECK(split_holdout(ds, 30, 5).second.images.to_vector<float>() == holdout.images.to_vector<float>());
  CHECK(split_holdout(ds, 30, 6).second.images.to_vector<float>() != holdout.images.to_vector<float>());
  CHECK(split_holdout(ds, 0, 1).first.size() == 200);
  CHECK_THROWS_AS(split_holdout(ds, 201, 1), gv::ValueError);
}

// ================================ transforms =====================================================
TEST_CASE("to_signed and binarize_static: values") {
  const Tensor x = Tensor::from_list({0.0, 0.25, 0.5, 0.5001, 1.0}, {5});
  const std::vector<float> s = to_signed(x).to_vector<float>();
  CHECK(s[0] == -1.0f);
  CHECK(s[1] == -0.5f);
  CHECK(s[2] == 0.0f);
  CHECK(s[3] == doctest::Approx(0.0002).epsilon(1e-3));
  CHECK(s[4] == 1.0f);
  CHECK(binarize_static(x).to_vector<float>() == std::vector<float>{0, 0, 0, 1, 1});
  CHECK(binarize_static(x, 0.2).to_vector<float>() == std::vector<float>{0, 1, 1, 1, 1});
}

TEST_CASE("binarize_dynamic: 0/1 draws with mean p, fresh each call, reproducible per seed") {
  const int64_t n = 200000;
  Tensor p = Tensor::empty({n});
  for (int64_t i = 0; i < n; ++i) p.data<float>()[i] = (i % 2) ? 0.3f : 0.8f;
  Generator g(11);
  const Tensor a = binarize_dynamic(p, g), b = binarize_dynamic(p, g);
  const std::vector<float> va = a.to_vector<float>(), vb = b.to_vector<float>();
  double odd = 0, even = 0;
  for (int64_t i = 0; i < n; ++i) {
    REQUIRE((va[i] == 0.0f || va[i] == 1.0f));
    ((i % 2) ? odd : even) += va[i];
  }
  CHECK(odd / (n / 2) == doctest::Approx(0.3).epsilon(0.02));
  CHECK(even / (n / 2) == doctest::Approx(0.8).epsilon(0.02));
  CHECK(va != vb);  // a fresh draw each call
  Generator g2(11);
  CHECK(binarize_dynamic(p, g2).to_vector<float>() == va);
}

TEST_CASE("dequantize_uniform: (x*255 + u)/256 stays in its 8-bit bin, u ~ U[0,1)") {
  const int64_t n = 256 * 400;
  Tensor x = Tensor::empty({n});
  for (int64_t i = 0; i < n; ++i) x.data<float>()[i] = float(i % 256) / 255.0f;
  Generator g(3);
  const std::vector<float> y = dequantize_uniform(x, g).to_vector<float>();
  double sum = 0, sumsq = 0;
  for (int64_t i = 0; i < n; ++i) {
    const int64_t k = i % 256;
    REQUIRE(y[i] >= float(k) / 256.0f);
    REQUIRE(y[i] < float(k + 1) / 256.0f);
    const double u = y[i] * 256.0 - k;
    sum += u;
    sumsq += u * u;
  }
  const double mean = sum / n, var = sumsq / n - mean * mean;
  CHECK(mean == doctest::Approx(0.5).epsilon(0.01));
  CHECK(var == doctest::Approx(1.0 / 12).epsilon(0.02));
  const Tensor ones = Tensor::ones({1000});
  CHECK(gv::max(dequantize_uniform(ones, g)).item() < 1.0);
  CHECK(dequantize_uniform(x.to(gv::DType::f64), g).dtype() == gv::DType::f64);
}

// ================================ speed ==========================================================
namespace {

double ms_per_batch(const Dataset& ds, int64_t batch_size, int64_t batches) {
  BatchLoader loader(ds, batch_size, true, 1, true);
  Batch b;
  int64_t done = 0;
  const auto t0 = std::chrono::steady_clock::now();
  while (done < batches) {
    if (loader.next(b)) ++done;
  }
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count() / batches;
}

}  // namespace

TEST_CASE("BatchLoader: a shuffled batch of 100 MNIST images costs far less than 1 ms") {
  const std::string dir = default_mnist_dir();
  Dataset ds;
  if (std::filesystem::exists(std::filesystem::path(dir) / "train-images-idx3-ubyte.gz")) {
    const MnistSplit mnist = load_mnist(dir, true);
    ds = Dataset{mnist.images, mnist.labels};
  } else {
    MESSAGE("MNIST not found at '" << dir << "': timing 60000 random 28x28 images instead");
    ds = Dataset{Tensor::zeros({60000, 1, 28, 28}), Tensor::zeros({60000}, gv::DType::i64)};
  }
  ms_per_batch(ds, 100, 50);  // warm up
  const double ms = ms_per_batch(ds, 100, 1800);  // three epochs
  MESSAGE("BatchLoader: " << ms << " ms per shuffled batch of 100 images of 28x28");
#ifdef NDEBUG
  CHECK(ms < 0.5);
#endif
}

TEST_CASE("BatchLoader::set_shard: the ranks' slices, in rank order, are the unsharded batches") {
  const Dataset ds = tagged(103);
  BatchLoader whole(ds, 12, true, 9, true);
  std::vector<BatchLoader> ranks;
  for (int r = 0; r < 3; ++r) {
    ranks.emplace_back(ds, 12, true, 9, true);
    ranks.back().set_shard(r, 3);
  }
  for (int epoch = 0; epoch < 2; ++epoch) {
    const auto want = rest_of_epoch(whole);
    std::vector<std::vector<std::vector<int64_t>>> got;
    for (auto& l : ranks) got.push_back(rest_of_epoch(l));
    REQUIRE(want.size() == 8);  // 103 / 12, the short batch dropped
    for (size_t b = 0; b < want.size(); ++b) {
      std::vector<int64_t> joined;
      for (int r = 0; r < 3; ++r) {
        CHECK(got[r][b].size() == 4);
        joined.insert(joined.end(), got[r][b].begin(), got[r][b].end());
      }
      CHECK(joined == want[b]);
    }
    for (auto& l : ranks) CHECK(l.position() == whole.position());  // the position stays global
  }
  BatchLoader odd(ds, 10, true, 9, true), short_ok(ds, 12, true, 9, false);
  CHECK_THROWS_WITH_AS(odd.set_shard(0, 3), doctest::Contains("cannot be split evenly over 3 ranks"), gv::ValueError);
  CHECK_THROWS_AS(short_ok.set_shard(1, 2), gv::ValueError);  // a short last batch could not be split
  CHECK_THROWS_AS(odd.set_shard(2, 2), gv::ValueError);       // rank out of range
}

}  // namespace file_nn_test_loader

// test_matmul.cpp: matmul against a triple-loop reference (double accumulation) in float32 and
// float64: plain, transposed, sliced (leading dimension > columns), fully strided and expanded
// operands; batches with broadcasting; the folded 3-D @ 2-D path; numpy's 1-D rules; empty and
// size-1 edges; the errors.
#include <doctest/doctest.h>

#include <omp.h>

#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "engine/ops.h"
#include "engine/tensor.h"
#include "tests/test_util.h"

using namespace gv;
using gv::test::error_of;
using gv::test::has;
using gv::test::lcg;

// This file's helpers and tests in a namespace of their own: the unity build (scripts/test.sh)
// compiles several test files as one, and their helpers must not meet.
namespace file_engine_test_matmul {

namespace {

Tensor mm_rand(const Shape& shape, DType dt, uint64_t seed) {
  return Tensor::from_vector(lcg(shape_numel(shape), seed, -1, 1), shape).to(dt);
}

// numpy matmul in double on the logical values of a and b (1-D operands promoted and squeezed).
struct Ref {
  Shape shape;
  std::vector<double> v;
};
Ref matmul_ref(const Tensor& a0, const Tensor& b0) {
  Shape as = a0.shape(), bs = b0.shape();
  if (as.size() == 1) as.insert(as.begin(), 1);
  if (bs.size() == 1) bs.push_back(1);
  std::vector<double> av = a0.to_vector<double>(), bv = b0.to_vector<double>();
  int64_t n = as[as.size() - 2], k = as.back(), m = bs.back();
  REQUIRE(bs[bs.size() - 2] == k);
  Shape ba(as.begin(), as.end() - 2), bb(bs.begin(), bs.end() - 2);
  size_t nd = std::max(ba.size(), bb.size());
  while (ba.size() < nd) ba.insert(ba.begin(), 1);
  while (bb.size() < nd) bb.insert(bb.begin(), 1);
  Shape batch(nd);
  for (size_t d = 0; d < nd; ++d) {
    REQUIRE((ba[d] == bb[d] || ba[d] == 1 || bb[d] == 1));
    batch[d] = ba[d] == 1 ? bb[d] : ba[d];
  }
  int64_t nb = shape_numel(batch);
  Ref r;
  r.v.assign(nb * n * m, 0.0);
  std::vector<int64_t> idx(nd);
  for (int64_t bi = 0; bi < nb; ++bi) {
    int64_t q = bi;
    for (int64_t d = (int64_t)nd - 1; d >= 0; --d) {
      idx[d] = q % batch[d];
      q /= batch[d];
    }
    int64_t oa = 0, ob = 0;
    for (size_t d = 0; d < nd; ++d) {
      oa = oa * ba[d] + (ba[d] == 1 ? 0 : idx[d]);
      ob = ob * bb[d] + (bb[d] == 1 ? 0 : idx[d]);
    }
    for (int64_t i = 0; i < n; ++i)
      for (int64_t j = 0; j < m; ++j) {
        double s = 0;
        for (int64_t p = 0; p < k; ++p) s += av[(oa * n + i) * k + p] * bv[(ob * k + p) * m + j];
        r.v[(bi * n + i) * m + j] = s;
      }
  }
  r.shape = batch;
  if (a0.dim() != 1) r.shape.push_back(n);
  if (b0.dim() != 1) r.shape.push_back(m);
  return r;
}

// matmul(a, b) against the reference: shape, dtype and values (atol + rtol * |ref|).
void check_matmul(const Tensor& a, const Tensor& b, const std::string& what) {
  INFO(what, ": ", a.str(), " strides ", shape_str(a.strides()), " @ ", b.str(), " strides ", shape_str(b.strides()));
  Tensor out = matmul(a, b);
  Ref r = matmul_ref(a, b);
  CHECK(out.shape() == r.shape);
  CHECK(out.dtype() == a.dtype());
  std::vector<double> got = out.to_vector<double>();
  REQUIRE(got.size() == r.v.size());
  int64_t k = a.shape().back();
  double atol = a.dtype() == DType::f32 ? 2e-6 * double(k + 1) : 1e-14 * double(k + 1);
  double rtol = a.dtype() == DType::f32 ? 1e-5 : 1e-12;
  int64_t worst = -1;
  double worst_excess = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    double excess = std::fabs(got[i] - r.v[i]) - (atol + rtol * std::fabs(r.v[i]));
    if (!(excess <= 0) && (worst < 0 || !(excess <= worst_excess))) {
      worst = (int64_t)i;
      worst_excess = excess;
    }
  }
  CAPTURE(worst);
  double got_at = worst >= 0 ? got[worst] : 0, want_at = worst >= 0 ? r.v[worst] : 0;
  CAPTURE(got_at);
  CAPTURE(want_at);
  CHECK(worst == -1);
}

const DType kFloatTypes[] = {DType::f32, DType::f64};

}  // namespace

TEST_CASE("matmul: 2-D, plain and transposed operands") {
  for (DType dt : kFloatTypes) {
    CAPTURE(dtype_name(dt));
    Tensor a = mm_rand({5, 7}, dt, 1), b = mm_rand({7, 3}, dt, 2);
    Tensor at = mm_rand({7, 5}, dt, 3).t(), bt = mm_rand({3, 7}, dt, 4).t();  // transposed views
    REQUIRE_FALSE(at.is_contiguous());
    REQUIRE_FALSE(bt.is_contiguous());
    check_matmul(a, b, "a @ b");
    check_matmul(at, b, "a.t() @ b");
    check_matmul(a, bt, "a @ b.t()");
    check_matmul(at, bt, "a.t() @ b.t()");
    check_matmul(b.t(), a.t(), "b.t() @ a.t()");
    // (a b)^T == b^T a^T
    Tensor ab = matmul(a, b), btat = matmul(b.t(), a.t());
    std::vector<double> x = ab.t().to_vector<double>(), y = btat.to_vector<double>();
    for (size_t i = 0; i < x.size(); ++i) CHECK(x[i] == doctest::Approx(y[i]).epsilon(1e-5));
    // a larger product (several tiles and K blocks, threads)
    check_matmul(mm_rand({64, 130}, dt, 5), mm_rand({130, 96}, dt, 6), "64x130 @ 130x96");
    check_matmul(mm_rand({130, 64}, dt, 7).t(), mm_rand({96, 130}, dt, 8).t(), "transposed 64x130 @ 130x96");
  }
}

TEST_CASE("matmul: sliced, strided and expanded operands") {
  for (DType dt : kFloatTypes) {
    CAPTURE(dtype_name(dt));
    // leading dimension larger than the number of columns, with offsets
    Tensor a = mm_rand({8, 10}, dt, 11).slice(1, 2, 9);                    // (8, 7), ld 10, offset 2
    Tensor b = mm_rand({9, 12}, dt, 12).slice(0, 1, 8).slice(1, 4, 7);    // (7, 3), ld 12, offset 16
    check_matmul(a, b, "sliced columns");
    Tensor ar = mm_rand({8, 10}, dt, 13).slice(0, 3, 8);                   // (5, 10), offset 30
    Tensor br = mm_rand({10, 12}, dt, 14).slice(1, 0, 4);                  // (10, 4), ld 12
    check_matmul(ar, br, "sliced rows");
    // transposed and sliced: the GEMM packs it through strides (1, 8)
    Tensor ats = mm_rand({12, 8}, dt, 15).slice(0, 2, 9).t();              // (8, 7), strides (1, 8)
    check_matmul(ats, b, "sliced then transposed left");
    Tensor bts = mm_rand({5, 9}, dt, 16).slice(1, 1, 8).slice(0, 1, 4).t();  // (7, 3), strides (1, 9)
    check_matmul(a, bts, "sliced then transposed right");
    // fully non-contiguous: a step on the last axis (packed element by element)
    Tensor an = mm_rand({5, 14}, dt, 17).slice(1, 0, 14, 2);  // (5, 7), strides (14, 2)
    Tensor bn = mm_rand({7, 6}, dt, 18).slice(1, 0, 6, 2);    // (7, 3), strides (6, 2)
    REQUIRE(an.strides() == Shape{14, 2});
    check_matmul(an, b, "step-sliced left");
    check_matmul(a, bn, "step-sliced right");
    check_matmul(an, bn, "both step-sliced");
    check_matmul(an.t().slice(0, 0, 7, 2).t(), mm_rand({5, 4}, dt, 19).slice(0, 0, 4), "step on both axes");
    // expanded operands (stride 0)
    Tensor row = mm_rand({1, 7}, dt, 20).expand({4, 7});
    Tensor col = mm_rand({7, 1}, dt, 21).expand({7, 3});
    REQUIRE(row.strides()[0] == 0);
    check_matmul(row, b, "expanded rows");
    check_matmul(a, col, "expanded columns");
    check_matmul(row, col, "both expanded");
  }
}

TEST_CASE("matmul: batched 3-D and batch broadcasting") {
  for (DType dt : kFloatTypes) {
    CAPTURE(dtype_name(dt));
    Tensor a = mm_rand({4, 5, 7}, dt, 30), b = mm_rand({4, 7, 3}, dt, 31);
    check_matmul(a, b, "batched");
    check_matmul(mm_rand({4, 7, 5}, dt, 32).transpose(1, 2), mm_rand({4, 3, 7}, dt, 33).transpose(-1, -2),
                 "batched, transposed matrices");
    check_matmul(mm_rand({5, 4, 7}, dt, 34).permute({1, 0, 2}), b, "batched, permuted batch axis");
    check_matmul(a, mm_rand({7, 4, 3}, dt, 35).permute({1, 0, 2}), "batched, permuted right");
    check_matmul(mm_rand({4, 5, 14}, dt, 36).slice(2, 0, 14, 2), b, "batched, step-sliced");
    check_matmul(mm_rand({2, 1, 3, 4}, dt, 37), mm_rand({3, 4, 5}, dt, 38), "{2,1,3,4} @ {3,4,5}");
    check_matmul(mm_rand({3, 4}, dt, 39), mm_rand({2, 4, 5}, dt, 40), "2-D @ 3-D");
    check_matmul(mm_rand({1, 5, 7}, dt, 41), b, "{1,5,7} @ {4,7,3}");
    check_matmul(a, mm_rand({1, 7, 3}, dt, 42), "{4,5,7} @ {1,7,3}");
    check_matmul(mm_rand({2, 3, 1, 5, 7}, dt, 43), mm_rand({3, 4, 7, 2}, dt, 44), "5-D @ 4-D");
    check_matmul(mm_rand({5, 7}, dt, 45).expand({3, 5, 7}), b.slice(0, 0, 3), "expanded batch (stride 0)");
    Tensor out = matmul(mm_rand({2, 1, 3, 4}, dt, 37), mm_rand({3, 4, 5}, dt, 38));
    CHECK(out.shape() == Shape{2, 3, 3, 5});
    CHECK(out.is_contiguous());
  }
}

TEST_CASE("matmul: 3-D @ 2-D (the folded batch path)") {
  for (DType dt : kFloatTypes) {
    CAPTURE(dtype_name(dt));
    Tensor b = mm_rand({7, 3}, dt, 50);
    check_matmul(mm_rand({4, 5, 7}, dt, 51), b, "contiguous 3-D @ 2-D");
    check_matmul(mm_rand({4, 5, 7}, dt, 52), mm_rand({3, 7}, dt, 53).t(), "3-D @ transposed 2-D");
    check_matmul(mm_rand({6, 5, 7}, dt, 54).slice(0, 1, 5), b, "batch slice (viewable, offset)");
    check_matmul(mm_rand({2, 3, 5, 7}, dt, 55), b, "4-D @ 2-D");
    // non-viewable permutations: a.view({-1, k}) fails, so the batch loop runs
    Tensor p = mm_rand({5, 4, 7}, dt, 56).permute({1, 0, 2});  // (4, 5, 7), strides (7, 28, 1)
    CHECK_THROWS_AS(p.view({-1, 7}), ShapeError);
    check_matmul(p, b, "non-viewable permutation @ 2-D");
    Tensor q = mm_rand({4, 7, 5}, dt, 57).transpose(1, 2);  // (4, 5, 7), strides (35, 1, 5)
    CHECK_THROWS_AS(q.view({-1, 7}), ShapeError);
    check_matmul(q, b, "batch of transposed matrices @ 2-D");
    // viewable but with a step on the last axis: the folded view goes in through its strides
    Tensor s = mm_rand({4, 5, 14}, dt, 58).slice(2, 0, 14, 2);  // (4, 5, 7), strides (70, 14, 2)
    CHECK_NOTHROW(s.view({-1, 7}));
    check_matmul(s, b, "step-sliced 3-D @ 2-D");
    check_matmul(mm_rand({4, 5, 7}, dt, 59), mm_rand({7, 6}, dt, 60).slice(1, 0, 6, 2), "3-D @ step-sliced 2-D");
  }
}

TEST_CASE("matmul: 1-D operands") {
  for (DType dt : kFloatTypes) {
    CAPTURE(dtype_name(dt));
    Tensor v = mm_rand({7}, dt, 70), m = mm_rand({7, 3}, dt, 71), mt = mm_rand({5, 7}, dt, 72);
    check_matmul(v, m, "1-D @ 2-D");
    CHECK(matmul(v, m).shape() == Shape{3});
    check_matmul(mt, v, "2-D @ 1-D");
    CHECK(matmul(mt, v).shape() == Shape{5});
    Tensor w = mm_rand({7}, dt, 73);
    Tensor dot = matmul(v, w);
    CHECK(dot.dim() == 0);
    check_matmul(v, w, "1-D @ 1-D");
    std::vector<double> vv = v.to_vector<double>(), wv = w.to_vector<double>();
    double d = 0;
    for (int i = 0; i < 7; ++i) d += vv[i] * wv[i];
    CHECK(dot.item() == doctest::Approx(d).epsilon(1e-5));
    Tensor vs = mm_rand({14}, dt, 74).slice(0, 1, 14, 2);  // strided vector
    check_matmul(vs, m, "strided 1-D @ 2-D");
    check_matmul(mt, vs, "2-D @ strided 1-D");
    check_matmul(vs, vs, "strided dot");
    check_matmul(v, mm_rand({4, 7, 3}, dt, 75), "1-D @ 3-D");
    CHECK(matmul(v, mm_rand({4, 7, 3}, dt, 75)).shape() == Shape{4, 3});
    check_matmul(mm_rand({4, 5, 7}, dt, 76), v, "3-D @ 1-D");
    CHECK(matmul(mm_rand({4, 5, 7}, dt, 76), v).shape() == Shape{4, 5});
    check_matmul(mt.t().select(1, 2), m, "column as 1-D @ 2-D");
  }
}

TEST_CASE("matmul: empty and size-1 edges") {
  for (DType dt : kFloatTypes) {
    CAPTURE(dtype_name(dt));
    // k = 0: all zeros
    Tensor z = matmul(Tensor::empty({3, 0}, dt), Tensor::empty({0, 4}, dt));
    CHECK(z.shape() == Shape{3, 4});
    CHECK(z.to_vector<double>() == std::vector<double>(12, 0.0));
    Tensor zb = matmul(Tensor::empty({2, 3, 0}, dt), Tensor::empty({0, 4}, dt));
    CHECK(zb.shape() == Shape{2, 3, 4});
    CHECK(zb.to_vector<double>() == std::vector<double>(24, 0.0));
    Tensor z1 = matmul(Tensor::empty({0}, dt), Tensor::empty({0}, dt));
    CHECK(z1.dim() == 0);
    CHECK(z1.item() == 0.0);
    // n = 0, m = 0, batch = 0: empty results
    CHECK(matmul(Tensor::empty({0, 5}, dt), mm_rand({5, 3}, dt, 80)).shape() == Shape{0, 3});
    CHECK(matmul(mm_rand({4, 5}, dt, 81), Tensor::empty({5, 0}, dt)).shape() == Shape{4, 0});
    CHECK(matmul(Tensor::empty({0, 4, 5}, dt), mm_rand({5, 3}, dt, 82)).shape() == Shape{0, 4, 3});
    CHECK(matmul(Tensor::empty({0, 4, 5}, dt), mm_rand({2, 5, 3}, dt, 82).slice(0, 0, 1)).shape() == Shape{0, 4, 3});
    // sizes 1
    check_matmul(mm_rand({1, 1}, dt, 83), mm_rand({1, 1}, dt, 84), "1x1 @ 1x1");
    check_matmul(mm_rand({1, 5}, dt, 85), mm_rand({5, 1}, dt, 86), "row @ column");
    check_matmul(mm_rand({5, 1}, dt, 87), mm_rand({1, 5}, dt, 88), "outer product (k = 1)");
    Tensor c51 = mm_rand({5, 3}, dt, 89).slice(1, 1, 2);          // (5, 1), strides (3, 1)
    Tensor r15 = mm_rand({5, 3}, dt, 90).slice(1, 2, 3).t();      // (1, 5), strides (1, 3)
    Tensor r15s = mm_rand({10}, dt, 91).slice(0, 0, 10, 2).unsqueeze(0);  // (1, 5), strides (?, 2)
    check_matmul(c51, r15, "strided column @ strided row");
    check_matmul(c51, r15s, "strided column @ step row");
    check_matmul(r15, c51, "strided row @ strided column");
    check_matmul(r15s, c51, "step row @ strided column");
    check_matmul(r15s.t().expand({5, 4}), mm_rand({4, 1}, dt, 92).expand({4, 3}), "expanded (5,4) @ expanded (4,3)");
    check_matmul(mm_rand({1, 7}, dt, 93), mm_rand({7, 1}, dt, 94).t().t(), "1 row, 1 column");
    check_matmul(mm_rand({3, 1, 7}, dt, 95), mm_rand({7, 1}, dt, 96), "batched 1x7 @ 7x1");
  }
}

TEST_CASE("matmul: errors") {
  std::string e = error_of<ShapeError>([] { matmul(Tensor::zeros({4, 3}), Tensor::zeros({5, 2})); });
  CHECK(has(e, "matmul: shapes [4, 3] and [5, 2] cannot be multiplied"));
  e = error_of<ShapeError>([] { matmul(Tensor::zeros({3}), Tensor::zeros({4})); });
  CHECK(has(e, "matmul"));
  CHECK(has(e, "[3]"));
  CHECK(has(e, "[4]"));
  e = error_of<ShapeError>([] { matmul(Tensor::zeros({2, 3, 4}), Tensor::zeros({3, 4, 5})); });
  CHECK(has(e, "matmul: shapes [2, 3, 4] and [3, 4, 5] cannot be multiplied"));
  e = error_of<ShapeError>([] { matmul(Tensor::zeros({2, 3, 3, 4}), Tensor::zeros({4, 4, 5})); });
  CHECK(has(e, "matmul: shapes [2, 3, 3, 4] and [4, 4, 5] cannot be multiplied"));
  e = error_of<DTypeError>([] { matmul(Tensor::zeros({2, 2}, DType::i64), Tensor::zeros({2, 2}, DType::i64)); });
  CHECK(has(e, "matmul"));
  CHECK(has(e, "int64"));
  e = error_of<DTypeError>([] { matmul(Tensor::zeros({2, 2}, DType::f32), Tensor::zeros({2, 2}, DType::f64)); });
  CHECK(has(e, "matmul"));
  CHECK(has(e, "float32"));
  CHECK(has(e, "float64"));
  e = error_of<ShapeError>([] { matmul(Tensor::scalar(1), Tensor::zeros({1, 1})); });
  CHECK(has(e, "matmul"));
  CHECK_THROWS_AS(matmul(Tensor(), Tensor::zeros({2, 2})), ValueError);
}

TEST_CASE("matmul and linear: products split into per-thread blocks of rows or columns") {
  // shapes whose axis with more tiles is split into runs of whole tiles with a ragged last one,
  // each operand plain or transposed; run at 2 and 3 threads
  int saved = omp_get_max_threads();
  for (int threads : {2, 3}) {
    omp_set_num_threads(threads);
    CAPTURE(threads);
    for (DType dt : kFloatTypes) {
      CAPTURE(dtype_name(dt));
      check_matmul(mm_rand({100, 77}, dt, 11), mm_rand({77, 45}, dt, 12), "tall: rows split");
      check_matmul(mm_rand({37, 77}, dt, 13), mm_rand({77, 211}, dt, 14), "wide: columns split");
      check_matmul(mm_rand({77, 37}, dt, 15).t(), mm_rand({211, 77}, dt, 16).t(), "wide, both transposed");
      check_matmul(mm_rand({77, 100}, dt, 17).t(), mm_rand({77, 45}, dt, 18), "tall, a transposed");
      // linear = x @ w^T + b against matmul and a broadcast add
      Tensor x = mm_rand({97, 50}, dt, 19), w = mm_rand({130, 50}, dt, 20), b = mm_rand({130}, dt, 21);
      std::vector<double> got = linear(x, w, b).to_vector<double>();
      std::vector<double> want = add(matmul(x, w.t()), b).to_vector<double>();
      test::expect_close(got, want, 1e-4, 1e-4, "linear 97x50 @ (130x50)^T + b");
      std::vector<double> nob = linear(x, w, Tensor()).to_vector<double>();
      test::expect_close(nob, matmul(x, w.t()).to_vector<double>(), 1e-4, 1e-4, "linear without bias");
    }
  }
  omp_set_num_threads(saved);
}

}  // namespace file_engine_test_matmul

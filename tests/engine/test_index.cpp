// test_index.cpp: concat, split and chunk (views), gather / scatter_add (torch semantics, and the
// adjoint identity between them), one_hot, and the errors.
#include <doctest/doctest.h>

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
namespace file_engine_test_index {

namespace {

uint64_t ix_next(uint64_t& s) {
  s = s * 6364136223846793005ULL + 1442695040888963407ULL;
  return s >> 11;
}

Tensor ix_rand(const Shape& shape, DType dt, uint64_t seed) {
  std::vector<double> v(shape_numel(shape));
  uint64_t s = seed * 2862933555777941757ULL + 3037000493ULL;
  for (double& x : v) x = -1 + 2 * (double(ix_next(s)) * (1.0 / 9007199254740992.0));
  return Tensor::from_vector(v, shape).to(dt);
}

// int64 values in [0, hi) of `shape`.
Tensor ix_randint(const Shape& shape, int64_t hi, uint64_t seed) {
  std::vector<int64_t> v(shape_numel(shape));
  uint64_t s = seed * 2862933555777941757ULL + 3037000493ULL;
  for (int64_t& x : v) x = (int64_t)(ix_next(s) % (uint64_t)hi);
  return Tensor::from_vector(v, shape);
}

Tensor ix_iota(const Shape& shape, DType dt = DType::f64, double start = 0) {
  return add(Tensor::arange(shape_numel(shape), DType::f64), start).reshape(shape).to(dt);
}

Tensor idx(std::vector<int64_t> v, const Shape& shape) { return Tensor::from_vector(v, shape); }

std::vector<double> vals(const Tensor& t) { return t.to_vector<double>(); }

}  // namespace

TEST_CASE("index: concat along axes 0 and 1") {
  for (DType dt : {DType::f32, DType::f64, DType::i64}) {
    CAPTURE(dtype_name(dt));
    Tensor a = ix_iota({2, 3}, dt, 0), b = ix_iota({1, 3}, dt, 10), c = ix_iota({3, 3}, dt, 20);
    Tensor r0 = concat({a, b, c}, 0);
    CHECK(r0.shape() == Shape{6, 3});
    CHECK(r0.dtype() == dt);
    CHECK(vals(r0) == std::vector<double>{0, 1, 2, 3, 4, 5, 10, 11, 12, 20, 21, 22, 23, 24, 25, 26, 27, 28});

    Tensor d = ix_iota({2, 1}, dt, 100), e = ix_iota({2, 2}, dt, 200);
    Tensor r1 = concat({a, d, e}, 1);
    CHECK(r1.shape() == Shape{2, 6});
    CHECK(vals(r1) == std::vector<double>{0, 1, 2, 100, 200, 201, 3, 4, 5, 101, 202, 203});
    CHECK(vals(concat({a, d, e}, -1)) == vals(r1));

    // non-contiguous inputs: a transposed and a step-sliced piece
    Tensor at = ix_iota({3, 2}, dt, 50).t();                 // (2, 3): 50 52 54 / 51 53 55
    Tensor as = ix_iota({2, 6}, dt, 70).slice(1, 0, 6, 2);   // (2, 3): 70 72 74 / 76 78 80
    CHECK(vals(concat({at, as}, 0)) == std::vector<double>{50, 52, 54, 51, 53, 55, 70, 72, 74, 76, 78, 80});
    CHECK(vals(concat({at, as}, 1)) == std::vector<double>{50, 52, 54, 70, 72, 74, 51, 53, 55, 76, 78, 80});
    // a zero-size piece contributes nothing
    Tensor z0 = Tensor::zeros({0, 3}, dt), z1 = Tensor::zeros({2, 0}, dt);
    CHECK(vals(concat({a, z0, b}, 0)) == std::vector<double>{0, 1, 2, 3, 4, 5, 10, 11, 12});
    CHECK(vals(concat({z1, a, z1}, 1)) == vals(a));
    CHECK(concat({z0, z0}, 0).shape() == Shape{0, 3});
    // a single input is a copy
    Tensor one = concat({a}, 0);
    CHECK_FALSE(one.same_storage(a));
    CHECK(vals(one) == vals(a));
  }
  // 3-D along the middle axis
  Tensor p = ix_iota({2, 2, 2}), q = ix_iota({2, 1, 2}, DType::f64, 100);
  Tensor r = concat({p, q}, 1);
  CHECK(r.shape() == Shape{2, 3, 2});
  CHECK(vals(r) == std::vector<double>{0, 1, 2, 3, 100, 101, 4, 5, 6, 7, 102, 103});
  // concat then split gives the pieces back
  std::vector<Tensor> parts = split(r, {2, 1}, 1);
  CHECK(vals(parts[0]) == vals(p));
  CHECK(vals(parts[1]) == vals(q));
}

TEST_CASE("index: split and chunk give views") {
  Tensor x = ix_iota({5, 4});
  std::vector<Tensor> s = split(x, {2, 0, 3}, 0);
  REQUIRE(s.size() == 3);
  CHECK(s[0].shape() == Shape{2, 4});
  CHECK(s[1].shape() == Shape{0, 4});
  CHECK(s[2].shape() == Shape{3, 4});
  for (const Tensor& t : s) CHECK(t.same_storage(x));
  CHECK(vals(s[0]) == std::vector<double>{0, 1, 2, 3, 4, 5, 6, 7});
  CHECK(vals(s[2]) == std::vector<double>{8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19});
  std::vector<Tensor> c = split(x, {1, 3}, -1);
  CHECK(c[0].shape() == Shape{5, 1});
  CHECK(vals(c[0]) == std::vector<double>{0, 4, 8, 12, 16});
  CHECK(vals(c[1].select(0, 2)) == std::vector<double>{9, 10, 11});
  // a write through a piece is seen in x
  c[0].fill_(-1);
  CHECK(vals(x.select(1, 0)) == std::vector<double>(5, -1));

  Tensor y = ix_iota({5, 2});
  std::vector<Tensor> ch = chunk(y, 2, 0);
  REQUIRE(ch.size() == 2);
  CHECK(ch[0].size(0) == 3);
  CHECK(ch[1].size(0) == 2);
  CHECK(ch[0].same_storage(y));
  CHECK(ch[1].same_storage(y));
  CHECK(vals(ch[1]) == std::vector<double>{6, 7, 8, 9});
  std::vector<Tensor> ch1 = chunk(ix_iota({2, 6}), 3, 1);
  REQUIRE(ch1.size() == 3);
  CHECK(vals(ch1[1]) == std::vector<double>{2, 3, 8, 9});
  CHECK(chunk(ix_iota({4}), 4, 0).size() == 4);
  std::vector<Tensor> ch6 = chunk(ix_iota({6}), 4, 0);  // like torch: chunks of ceil(6/4) = 2
  REQUIRE(ch6.size() == 3);
  CHECK(vals(ch6[2]) == std::vector<double>{4, 5});
  // chunks of a non-contiguous tensor
  std::vector<Tensor> cht = chunk(ix_iota({3, 4}).t(), 2, 0);  // (4, 3) -> two (2, 3)
  REQUIRE(cht.size() == 2);
  CHECK(vals(cht[1]) == std::vector<double>{2, 6, 10, 3, 7, 11});

  std::string e = error_of<ShapeError>([&] { split(x, {2, 2}, 0); });
  CHECK(has(e, "split"));
  CHECK(has(e, "[2, 2]"));
  CHECK(has(e, "[5, 4]"));
  CHECK_THROWS_AS(split(x, {6, -1}, 0), ValueError);
  CHECK_THROWS_AS(chunk(x, 0, 0), ValueError);
  CHECK_THROWS_AS(split(x, {5}, 2), IndexError);
}

TEST_CASE("index: gather (torch.gather semantics)") {
  for (DType dt : {DType::f32, DType::f64, DType::i64}) {
    CAPTURE(dtype_name(dt));
    Tensor x = Tensor::from_list({1, 2, 3, 4, 5, 6}, {2, 3}, dt);
    // axis 1: out[i][j] = x[i][index[i][j]]
    Tensor g1 = gather(x, 1, idx({0, 0, 1, 0}, {2, 2}));
    CHECK(g1.shape() == Shape{2, 2});
    CHECK(g1.dtype() == dt);
    CHECK(vals(g1) == std::vector<double>{1, 1, 5, 4});
    CHECK(vals(gather(x, -1, idx({2, 1, 0, 2, 2, 2}, {2, 3}))) == std::vector<double>{3, 2, 1, 6, 6, 6});
    // axis 0: out[i][j] = x[index[i][j]][j]
    Tensor g0 = gather(x, 0, idx({0, 1, 1, 1, 0, 0}, {2, 3}));
    CHECK(vals(g0) == std::vector<double>{1, 5, 6, 4, 2, 3});
    CHECK(vals(gather(x, 0, idx({1, 1, 0}, {1, 3}))) == std::vector<double>{4, 5, 3});
    CHECK(vals(gather(x, 0, idx({1, 0, 1, 1}, {4, 1}))) == std::vector<double>{4, 1, 4, 4});  // a smaller index
    // a transposed x and a transposed index
    Tensor xt = x.t();  // (3, 2): 1 4 / 2 5 / 3 6
    CHECK(vals(gather(xt, 1, idx({1, 0, 0}, {3, 1}))) == std::vector<double>{4, 2, 3});
    Tensor it = idx({0, 2, 1, 0}, {2, 2}).t();  // (2, 2): 0 1 / 2 0
    CHECK(vals(gather(xt, 0, it)) == std::vector<double>{1, 5, 3, 4});
  }
  // 3-D, the middle axis, against a loop
  Tensor x = ix_rand({3, 4, 5}, DType::f64, 1);
  Tensor ind = ix_randint({3, 6, 5}, 4, 2);
  Tensor g = gather(x, 1, ind);
  CHECK(g.shape() == Shape{3, 6, 5});
  std::vector<double> xv = vals(x), gvv = vals(g);
  std::vector<int64_t> iv = ind.to_vector<int64_t>();
  int bad = 0;
  for (int i = 0; i < 3; ++i)
    for (int j = 0; j < 6; ++j)
      for (int k = 0; k < 5; ++k) {
        int p = (i * 6 + j) * 5 + k;
        if (gvv[p] != xv[(i * 4 + iv[p]) * 5 + k]) ++bad;
      }
  CHECK(bad == 0);
}

TEST_CASE("index: scatter_add accumulates duplicates") {
  for (DType dt : {DType::f32, DType::f64, DType::i64}) {
    CAPTURE(dtype_name(dt));
    Tensor src = Tensor::from_list({1, 2, 3, 4, 5, 6}, {2, 3}, dt);
    Tensor s1 = scatter_add({2, 3}, 1, idx({0, 0, 2, 1, 1, 1}, {2, 3}), src);
    CHECK(s1.shape() == Shape{2, 3});
    CHECK(s1.dtype() == dt);
    CHECK(vals(s1) == std::vector<double>{3, 0, 3, 0, 15, 0});
    Tensor s0 = scatter_add({3, 2}, 0, idx({0, 1, 0, 1, 2, 1}, {3, 2}), Tensor::from_list({1, 2, 3, 4, 5, 6}, {3, 2}, dt));
    CHECK(vals(s0) == std::vector<double>{4, 0, 0, 12, 5, 0});
    // into a larger output than the index covers
    Tensor s2 = scatter_add({4, 3}, 0, idx({3, 3}, {1, 2}), Tensor::from_list({7, 8}, {1, 2}, dt));
    CHECK(vals(s2) == std::vector<double>{0, 0, 0, 0, 0, 0, 0, 0, 0, 7, 8, 0});
    // a transposed src
    Tensor s3 = scatter_add({2, 2}, -1, idx({1, 1, 0, 0}, {2, 2}), Tensor::from_list({1, 2, 3, 4}, {2, 2}, dt).t());
    CHECK(vals(s3) == std::vector<double>{0, 4, 6, 0});  // src.t() = 1 3 / 2 4
  }
}

TEST_CASE("index: gather and scatter_add are adjoint") {
  struct Case {
    Shape x, index;
    int64_t axis;
  };
  std::vector<Case> cases = {{{4, 5}, {6, 5}, 0}, {{4, 5}, {4, 9}, 1}, {{3, 4, 5}, {2, 7, 5}, 1},
                             {{3, 4, 5}, {3, 4, 8}, -1}, {{6}, {10}, 0}};
  uint64_t seed = 40;
  for (const Case& c : cases) {
    CAPTURE(shape_str(c.x));
    CAPTURE(shape_str(c.index));
    CAPTURE(c.axis);
    int64_t ax = c.axis < 0 ? c.axis + (int64_t)c.x.size() : c.axis;
    Tensor x = ix_rand(c.x, DType::f64, ++seed);
    Tensor ind = ix_randint(c.index, c.x[ax], ++seed);
    Tensor g = ix_rand(c.index, DType::f64, ++seed);
    double lhs = sum(mul(gather(x, c.axis, ind), g)).item();
    Tensor sa = scatter_add(c.x, c.axis, ind, g);
    CHECK(sa.shape() == c.x);
    double rhs = sum(mul(x, sa)).item();
    CHECK(lhs == doctest::Approx(rhs).epsilon(1e-12));
    // scatter_add's total is the sum of src
    CHECK(sum(sa).item() == doctest::Approx(sum(g).item()).epsilon(1e-12));
  }
}

TEST_CASE("index: one_hot") {
  Tensor oh = one_hot(idx({2, 0, 1, 2}, {4}), 3);
  CHECK(oh.shape() == Shape{4, 3});
  CHECK(oh.dtype() == DType::f32);
  CHECK(vals(oh) == std::vector<double>{0, 0, 1, 1, 0, 0, 0, 1, 0, 0, 0, 1});
  Tensor oh2 = one_hot(idx({1, 0, 3, 3}, {2, 2}).t(), 4, DType::i64);  // (2, 2): 1 3 / 0 3
  CHECK(oh2.shape() == Shape{2, 2, 4});
  CHECK(oh2.dtype() == DType::i64);
  CHECK(oh2.to_vector<int64_t>() == std::vector<int64_t>{0, 1, 0, 0, 0, 0, 0, 1, 1, 0, 0, 0, 0, 0, 0, 1});
  Tensor oh0 = one_hot(Tensor::from_vector(std::vector<int64_t>{1}, {}), 2, DType::f64);
  CHECK(oh0.shape() == Shape{2});
  CHECK(vals(oh0) == std::vector<double>{0, 1});
  CHECK(one_hot(Tensor::zeros({0}, DType::i64), 5).shape() == Shape{0, 5});
  // argmax undoes one_hot
  CHECK(argmax(oh, 1).to_vector<int64_t>() == std::vector<int64_t>{2, 0, 1, 2});

  std::string e = error_of<IndexError>([] { one_hot(idx({0, 3}, {2}), 3); });
  CHECK(has(e, "one_hot"));
  CHECK(has(e, "value 3"));
  CHECK(has(e, "position 1"));
  CHECK_THROWS_AS(one_hot(idx({-1}, {1}), 3), IndexError);
  CHECK_THROWS_AS(one_hot(Tensor::zeros({2}), 3), DTypeError);
  CHECK_THROWS_AS(one_hot(idx({0}, {1}), 0), ValueError);
}

TEST_CASE("index: errors") {
  Tensor x = Tensor::from_list({1, 2, 3, 4, 5, 6}, {2, 3});
  // out-of-range index values name the value and the position
  std::string e = error_of<IndexError>([&] { gather(x, 1, idx({0, 1, 3, 0}, {2, 2})); });
  CHECK(has(e, "gather"));
  CHECK(has(e, "value 3"));
  CHECK(has(e, "position 2"));
  e = error_of<IndexError>([&] { gather(x, 0, idx({0, -1, 0}, {1, 3})); });
  CHECK(has(e, "value -1"));
  CHECK(has(e, "position 1"));
  e = error_of<IndexError>([&] { scatter_add({2, 3}, 0, idx({0, 2}, {1, 2}), Tensor::ones({1, 2})); });
  CHECK(has(e, "scatter_add"));
  CHECK(has(e, "value 2"));
  CHECK(has(e, "position 1"));
  // a float index is a dtype error
  e = error_of<DTypeError>([&] { gather(x, 0, Tensor::zeros({2, 3})); });
  CHECK(has(e, "gather"));
  CHECK(has(e, "int64"));
  CHECK(has(e, "float32"));
  CHECK_THROWS_AS(scatter_add({2, 3}, 0, Tensor::zeros({2, 3}, DType::f64), Tensor::ones({2, 3})), DTypeError);
  // shapes
  e = error_of<ShapeError>([&] { gather(x, 0, idx({0, 1}, {2})); });
  CHECK(has(e, "gather"));
  CHECK(has(e, "[2]"));
  CHECK(has(e, "[2, 3]"));
  e = error_of<ShapeError>([&] { gather(x, 0, idx({0, 0, 0, 0}, {1, 4})); });  // 4 > 3 off the axis
  CHECK(has(e, "gather"));
  CHECK(has(e, "[1, 4]"));
  e = error_of<ShapeError>([&] { scatter_add({2, 3}, 0, idx({0, 1}, {1, 2}), Tensor::ones({2, 1})); });
  CHECK(has(e, "scatter_add"));
  CHECK(has(e, "[2, 1]"));
  CHECK(has(e, "[1, 2]"));
  CHECK_THROWS_AS(gather(x, 2, idx({0}, {1, 1})), IndexError);
  // concat: ranks, sizes, dtypes
  e = error_of<ShapeError>([] { concat({Tensor::zeros({2, 3}), Tensor::zeros({2, 4})}, 0); });
  CHECK(has(e, "concat"));
  CHECK(has(e, "[2, 3]"));
  CHECK(has(e, "[2, 4]"));
  CHECK(has(e, "axis 0"));
  e = error_of<ShapeError>([] { concat({Tensor::zeros({2, 3}), Tensor::zeros({3})}, 0); });
  CHECK(has(e, "concat"));
  CHECK(has(e, "[3]"));
  CHECK(has(e, "[2, 3]"));
  e = error_of<ShapeError>([] { concat({Tensor::zeros({2}), Tensor::zeros({2, 1})}, 0); });
  CHECK(has(e, "concat"));
  e = error_of<DTypeError>([] { concat({Tensor::zeros({2}), Tensor::zeros({2}, DType::f64)}, 0); });
  CHECK(has(e, "concat"));
  CHECK(has(e, "float64"));
  CHECK_THROWS_AS(concat({}, 0), ValueError);
  CHECK_THROWS_AS(concat({Tensor::zeros({2, 3})}, 2), IndexError);
}

}  // namespace file_engine_test_index

// test_tensor.cpp: Tensor factories, views (which share storage and copy nothing), copies and
// conversions, zero-size and 0-d tensors, and the errors (type and message) of each.
#include <doctest/doctest.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#include "engine/cuda/cuda_backend.h"
#include "engine/ops.h"
#include "engine/storage.h"
#include "engine/tensor.h"
#include "tests/test_util.h"

using namespace gv;
using gv::test::error_of;
using gv::test::has;
using gv::test::lcg;

// This file's helpers and tests in a namespace of their own: the unity build (scripts/test.sh)
// compiles several test files as one, and their helpers must not meet.
namespace file_engine_test_tensor {

namespace {

std::string lower(std::string s) {
  for (char& c : s) c = (char)std::tolower((unsigned char)c);
  return s;
}

// 0, 1, 2, ... as float64 in `shape` (values equal to their row-major position).
Tensor iota(const Shape& shape, DType dtype = DType::f64) {
  int64_t n = shape_numel(shape);
  return Tensor::arange(n, DType::f64).reshape(shape).to(dtype);
}

// Element (multi-index) of a tensor, read through its own strides from storage (independent of
// to_vector, which goes through copy_).
double at(const Tensor& t, const std::vector<int64_t>& idx) {
  REQUIRE(idx.size() == t.shape().size());
  int64_t off = 0;
  for (size_t d = 0; d < idx.size(); ++d) off += idx[d] * t.strides()[d];
  switch (t.dtype()) {
    case DType::f32: return t.data<float>()[off];
    case DType::f64: return t.data<double>()[off];
    case DType::i64: return (double)t.data<int64_t>()[off];
  }
  return NAN;
}

// Calls f(multi-index) for every index of `shape` in row-major order.
template <class F>
void for_each_index(const Shape& shape, F&& f) {
  int64_t n = shape_numel(shape);
  std::vector<int64_t> idx(shape.size(), 0);
  for (int64_t p = 0; p < n; ++p) {
    int64_t r = p;
    for (int64_t d = (int64_t)shape.size() - 1; d >= 0; --d) {
      idx[d] = r % shape[d];
      r /= shape[d];
    }
    f(idx, p);
  }
}

// Checks every element of t against want(idx) both through strides and through to_vector.
template <class F>
void expect_elements(const Tensor& t, F&& want) {
  std::vector<double> v = t.to_vector<double>();
  REQUIRE((int64_t)v.size() == t.numel());
  int64_t bad = -1;
  double got_s = 0, got_v = 0, exp = 0;
  for_each_index(t.shape(), [&](const std::vector<int64_t>& idx, int64_t p) {
    double w = want(idx), s = at(t, idx);
    if (bad < 0 && (s != w || v[p] != w)) {
      bad = p;
      got_s = s;
      got_v = v[p];
      exp = w;
    }
  });
  INFO("tensor ", t.str(), " strides ", shape_str(t.strides()));
  CAPTURE(bad);
  CAPTURE(got_s);
  CAPTURE(got_v);
  CAPTURE(exp);
  CHECK(bad == -1);
}

}  // namespace

TEST_CASE("tensor: factories") {
  Tensor z = Tensor::zeros({2, 3});
  CHECK(z.dtype() == DType::f32);
  CHECK(z.shape() == Shape{2, 3});
  CHECK(z.strides() == Shape{3, 1});
  CHECK(z.offset() == 0);
  CHECK(z.dim() == 2);
  CHECK(z.numel() == 6);
  CHECK(z.device() == Device::cpu());
  CHECK(z.is_contiguous());
  CHECK(z.to_vector<float>() == std::vector<float>(6, 0.f));
  CHECK(z.str() == "float32[2, 3] cpu");

  Tensor o = Tensor::ones({4}, DType::f64);
  CHECK(o.dtype() == DType::f64);
  CHECK(o.to_vector<double>() == std::vector<double>(4, 1.0));

  Tensor f = Tensor::full({2, 2}, -3.5, DType::f64);
  CHECK(f.to_vector<double>() == std::vector<double>(4, -3.5));
  Tensor fi = Tensor::full({3}, 7.9, DType::i64);  // converted like a C++ cast
  CHECK(fi.to_vector<int64_t>() == std::vector<int64_t>{7, 7, 7});

  Tensor s = Tensor::scalar(2.5);
  CHECK(s.dim() == 0);
  CHECK(s.numel() == 1);
  CHECK(s.shape().empty());
  CHECK(s.item() == 2.5);

  Tensor a = Tensor::arange(5);
  CHECK(a.dtype() == DType::i64);
  CHECK(a.to_vector<int64_t>() == std::vector<int64_t>{0, 1, 2, 3, 4});
  CHECK(Tensor::arange(3, DType::f32).to_vector<float>() == std::vector<float>{0, 1, 2});
  CHECK(Tensor::arange(0).numel() == 0);

  Tensor v = Tensor::from_vector(std::vector<float>{1, 2, 3, 4, 5, 6}, {3, 2});
  CHECK(v.dtype() == DType::f32);
  CHECK(v.shape() == Shape{3, 2});
  CHECK(at(v, {2, 1}) == 6);
  CHECK(at(v, {1, 0}) == 3);
  Tensor vi = Tensor::from_vector(std::vector<int64_t>{5, -6}, {2});
  CHECK(vi.dtype() == DType::i64);
  CHECK(vi.to_vector<int64_t>() == std::vector<int64_t>{5, -6});

  Tensor l = Tensor::from_list({1.5, 2.5, 3.5, 4.5}, {2, 2}, DType::f64);
  CHECK(l.dtype() == DType::f64);
  CHECK(l.to_vector<double>() == std::vector<double>{1.5, 2.5, 3.5, 4.5});
  Tensor li = Tensor::from_list({1, -2}, {2}, DType::i64);
  CHECK(li.dtype() == DType::i64);
  CHECK(li.to_vector<int64_t>() == std::vector<int64_t>{1, -2});

  CHECK_FALSE(Tensor().defined());
  CHECK(Tensor().str() == "undefined tensor");
  CHECK(z.defined());

  std::string e = error_of<ShapeError>([] { Tensor::from_vector(std::vector<float>{1, 2, 3}, {2, 2}); });
  CHECK(has(e, "from_vector"));
  CHECK(has(e, "[2, 2]"));
  e = error_of<ShapeError>([] { Tensor::empty({2, -1}); });
  CHECK(has(e, "empty"));
  CHECK(has(e, "[2, -1]"));
}

TEST_CASE("tensor: size() with negative axes") {
  Tensor x = Tensor::zeros({2, 3, 4});
  CHECK(x.size(0) == 2);
  CHECK(x.size(-1) == 4);
  CHECK(x.size(-3) == 2);
  std::string e = error_of<IndexError>([&] { x.size(3); });
  CHECK(has(e, "axis 3"));
  CHECK(has(e, "[2, 3, 4]"));
  CHECK(has(error_of<IndexError>([&] { x.size(-4); }), "axis -4"));
}

TEST_CASE("tensor: reshape and view share storage when they can") {
  Tensor x = iota({2, 3, 4});
  Tensor r = x.reshape({6, 4});
  CHECK(r.same_storage(x));
  CHECK(r.shape() == Shape{6, 4});
  CHECK(r.strides() == Shape{4, 1});
  expect_elements(r, [](const auto& i) { return double(i[0] * 4 + i[1]); });

  Tensor v = x.view({4, -1});  // -1 inferred
  CHECK(v.same_storage(x));
  CHECK(v.shape() == Shape{4, 6});
  expect_elements(v, [](const auto& i) { return double(i[0] * 6 + i[1]); });

  // a write through the view is seen by the base
  r.select(0, 5).fill_(-1);
  CHECK(at(x, {1, 2, 0}) == -1);
  CHECK(at(x, {1, 2, 3}) == -1);
  CHECK(at(x, {1, 1, 3}) == 19);  // untouched neighbour
  CHECK(at(x, {1, 0, 0}) == 12);
}

TEST_CASE("tensor: view of a non-viewable tensor throws; reshape copies") {
  Tensor x = iota({2, 3});
  Tensor xt = x.t();  // (3, 2), strides (1, 3)
  CHECK_FALSE(xt.is_contiguous());
  std::string e = error_of<ShapeError>([&] { xt.view({6}); });
  CHECK(has(e, "view"));
  CHECK(has(e, "[3, 2]"));
  CHECK(has(e, "[6]"));

  Tensor r = xt.reshape({6});
  CHECK_FALSE(r.same_storage(x));
  CHECK(r.is_contiguous());
  CHECK(r.to_vector<double>() == std::vector<double>{0, 3, 1, 4, 2, 5});

  // a non-viewable permutation of a 3-D tensor
  Tensor p = iota({2, 3, 4}).permute({1, 0, 2});  // (3, 2, 4) strides (4, 12, 1)
  CHECK_THROWS_AS(p.view({3, 8}), ShapeError);
  CHECK_THROWS_AS(p.view({24}), ShapeError);
  CHECK_THROWS_AS(p.view({6, 4}), ShapeError);
  Tensor pv = p.reshape({6, 4});
  CHECK_FALSE(pv.same_storage(p));
  expect_elements(pv, [&](const auto& i) {
    int64_t a = i[0] / 2, b = i[0] % 2;  // p index (a, b, i[1]) = x index (b, a, i[1])
    return double(b * 12 + a * 4 + i[1]);
  });
  Tensor p8 = p.reshape({3, 8});
  CHECK_FALSE(p8.same_storage(p));
  expect_elements(p8, [&](const auto& i) {
    int64_t b = i[1] / 4, k = i[1] % 4;
    return double(b * 12 + i[0] * 4 + k);
  });
  // splitting an axis of a non-contiguous tensor is a view
  Tensor s = xt.view({3, 2, 1});
  CHECK(s.same_storage(x));
  expect_elements(s, [](const auto& i) { return double(i[1] * 3 + i[0]); });
}

TEST_CASE("tensor: permute, transpose and t") {
  Tensor x = iota({2, 3, 4});
  Tensor p = x.permute({2, 0, 1});  // p[i][j][k] = x[j][k][i]
  CHECK(p.same_storage(x));
  CHECK(p.shape() == Shape{4, 2, 3});
  CHECK(p.strides() == Shape{1, 12, 4});
  CHECK_FALSE(p.is_contiguous());
  expect_elements(p, [](const auto& i) { return double(i[1] * 12 + i[2] * 4 + i[0]); });

  Tensor pn = x.permute({-1, -3, -2});  // negative axes: same as {2, 0, 1}
  CHECK(pn.shape() == Shape{4, 2, 3});
  CHECK(pn.strides() == Shape{1, 12, 4});

  Tensor tr = x.transpose(0, 2);  // tr[i][j][k] = x[k][j][i]
  CHECK(tr.shape() == Shape{4, 3, 2});
  expect_elements(tr, [](const auto& i) { return double(i[2] * 12 + i[1] * 4 + i[0]); });
  Tensor trn = x.transpose(-1, 1);
  CHECK(trn.shape() == Shape{2, 4, 3});
  expect_elements(trn, [](const auto& i) { return double(i[0] * 12 + i[2] * 4 + i[1]); });

  Tensor m = iota({3, 5});
  Tensor mt = m.t();
  CHECK(mt.shape() == Shape{5, 3});
  CHECK(mt.strides() == Shape{1, 5});
  expect_elements(mt, [](const auto& i) { return double(i[1] * 5 + i[0]); });
  CHECK(mt.t().is_contiguous());

  std::string e = error_of<IndexError>([&] { x.permute({0, 0, 1}); });
  CHECK(has(e, "permute"));
  CHECK(has(e, "repeated"));
  e = error_of<ShapeError>([&] { x.permute({0, 1}); });
  CHECK(has(e, "permute"));
  CHECK(has(e, "[2, 3, 4]"));
  e = error_of<IndexError>([&] { x.permute({0, 1, 3}); });
  CHECK(has(e, "permute"));
  CHECK(has(e, "axis 3"));
  e = error_of<ShapeError>([&] { x.t(); });
  CHECK(has(e, "t:"));
  CHECK(has(e, "[2, 3, 4]"));
  CHECK(has(error_of<IndexError>([&] { x.transpose(0, 5); }), "transpose"));
}

TEST_CASE("tensor: slice with negative indices, steps and clamping") {
  Tensor a = iota({10});
  auto vals = [](const Tensor& t) { return t.to_vector<double>(); };
  CHECK(vals(a.slice(0, 2, 5)) == std::vector<double>{2, 3, 4});
  CHECK(vals(a.slice(0, -3, 10)) == std::vector<double>{7, 8, 9});
  CHECK(vals(a.slice(0, -3, 100)) == std::vector<double>{7, 8, 9});  // end clamps
  CHECK(vals(a.slice(0, -100, 2)) == std::vector<double>{0, 1});     // start clamps
  CHECK(vals(a.slice(0, 1, -1)) == std::vector<double>{1, 2, 3, 4, 5, 6, 7, 8});
  CHECK(vals(a.slice(0, 1, 8, 3)) == std::vector<double>{1, 4, 7});
  CHECK(vals(a.slice(0, 1, 9, 3)) == std::vector<double>{1, 4, 7});
  CHECK(vals(a.slice(0, 0, 10, 4)) == std::vector<double>{0, 4, 8});
  CHECK(vals(a.slice(0, -1, 10, 5)) == std::vector<double>{9});
  CHECK(a.slice(0, 20, 30).numel() == 0);  // start past the end: empty
  CHECK(a.slice(0, 5, 2).numel() == 0);    // end before start: empty
  CHECK(a.slice(0, 5, 2).shape() == Shape{0});
  Tensor s = a.slice(0, 3, 9, 2);
  CHECK(s.same_storage(a));
  CHECK(s.offset() == 3);
  CHECK(s.strides() == Shape{2});
  CHECK(s.shape() == Shape{3});

  Tensor m = iota({4, 6});
  Tensor ms = m.slice(1, 1, 6, 2);  // columns 1, 3, 5
  CHECK(ms.shape() == Shape{4, 3});
  CHECK(ms.strides() == Shape{6, 2});
  CHECK(ms.offset() == 1);
  expect_elements(ms, [](const auto& i) { return double(i[0] * 6 + 1 + 2 * i[1]); });
  Tensor mr = m.slice(-2, -3, 4);  // rows 1..3 via a negative axis and start
  CHECK(mr.shape() == Shape{3, 6});
  CHECK(mr.is_contiguous());
  expect_elements(mr, [](const auto& i) { return double((i[0] + 1) * 6 + i[1]); });
  Tensor both = m.slice(0, 1, 4, 2).slice(1, -4, -1, 2);  // rows 1,3; columns 2,4
  CHECK(both.shape() == Shape{2, 2});
  expect_elements(both, [](const auto& i) { return double((1 + 2 * i[0]) * 6 + 2 + 2 * i[1]); });

  std::string e = error_of<ValueError>([&] { a.slice(0, 0, 5, 0); });
  CHECK(has(e, "slice"));
  CHECK(has(e, "step"));
  CHECK(has(e, "0"));
  CHECK_THROWS_AS(a.slice(0, 0, 5, -1), ValueError);
  e = error_of<IndexError>([&] { m.slice(2, 0, 1); });
  CHECK(has(e, "slice"));
  CHECK(has(e, "[4, 6]"));
}

TEST_CASE("tensor: select") {
  Tensor x = iota({2, 3, 4});
  Tensor s = x.select(1, 2);  // s[i][k] = x[i][2][k]
  CHECK(s.shape() == Shape{2, 4});
  CHECK(s.same_storage(x));
  expect_elements(s, [](const auto& i) { return double(i[0] * 12 + 8 + i[1]); });
  Tensor sn = x.select(-1, -1);  // x[:, :, 3]
  CHECK(sn.shape() == Shape{2, 3});
  expect_elements(sn, [](const auto& i) { return double(i[0] * 12 + i[1] * 4 + 3); });
  Tensor s0 = x.select(0, 1).select(0, 1).select(0, 1);
  CHECK(s0.dim() == 0);
  CHECK(s0.item() == 12 + 4 + 1);

  std::string e = error_of<IndexError>([&] { x.select(1, 3); });
  CHECK(has(e, "select"));
  CHECK(has(e, "index 3"));
  CHECK(has(e, "[2, 3, 4]"));
  CHECK_THROWS_AS(x.select(1, -4), IndexError);
}

TEST_CASE("tensor: expand gives stride 0 and adds leading axes") {
  Tensor c = iota({3, 1});
  Tensor e = c.expand({2, 3, 4});
  CHECK(e.shape() == Shape{2, 3, 4});
  CHECK(e.strides() == Shape{0, 1, 0});
  CHECK(e.same_storage(c));
  CHECK_FALSE(e.is_contiguous());
  expect_elements(e, [](const auto& i) { return double(i[1]); });
  Tensor same = c.expand({3, 1});
  CHECK(same.strides() == c.strides());
  Tensor s = Tensor::scalar(4.0, DType::f64).expand({2, 2});
  CHECK(s.strides() == Shape{0, 0});
  CHECK(s.to_vector<double>() == std::vector<double>(4, 4.0));

  std::string msg = error_of<ShapeError>([&] { iota({2, 3}).expand({4, 3}); });
  CHECK(has(msg, "expand"));
  CHECK(has(msg, "[2, 3]"));
  CHECK(has(msg, "[4, 3]"));
  msg = error_of<ShapeError>([&] { iota({2, 3}).expand({3}); });
  CHECK(has(msg, "expand"));
  CHECK(has(msg, "[2, 3]"));
}

TEST_CASE("tensor: unsqueeze, squeeze, flatten") {
  Tensor x = iota({2, 3});
  Tensor u0 = x.unsqueeze(0);
  CHECK(u0.shape() == Shape{1, 2, 3});
  Tensor u1 = x.unsqueeze(1);
  CHECK(u1.shape() == Shape{2, 1, 3});
  Tensor ue = x.unsqueeze(-1);
  CHECK(ue.shape() == Shape{2, 3, 1});
  CHECK(ue.same_storage(x));
  CHECK(u1.is_contiguous());
  expect_elements(u1, [](const auto& i) { return double(i[0] * 3 + i[2]); });
  expect_elements(ue, [](const auto& i) { return double(i[0] * 3 + i[1]); });
  // unsqueeze of a transposed tensor keeps the values
  Tensor tu = x.t().unsqueeze(1);  // (3, 1, 2)
  CHECK(tu.shape() == Shape{3, 1, 2});
  expect_elements(tu, [](const auto& i) { return double(i[2] * 3 + i[0]); });
  CHECK_THROWS_AS(x.unsqueeze(3), IndexError);
  CHECK_THROWS_AS(x.unsqueeze(-4), IndexError);

  CHECK(u1.squeeze(1).shape() == Shape{2, 3});
  CHECK(u0.squeeze(-3).shape() == Shape{2, 3});
  expect_elements(ue.squeeze(2), [](const auto& i) { return double(i[0] * 3 + i[1]); });
  std::string e = error_of<ShapeError>([&] { x.squeeze(1); });
  CHECK(has(e, "squeeze"));
  CHECK(has(e, "[2, 3]"));
  CHECK(Tensor::scalar(1).unsqueeze(0).shape() == Shape{1});
  CHECK(Tensor::ones({1}).squeeze(0).dim() == 0);

  Tensor y = iota({2, 3, 4, 5});
  Tensor f = y.flatten();
  CHECK(f.shape() == Shape{120});
  CHECK(f.same_storage(y));
  Tensor f12 = y.flatten(1, 2);
  CHECK(f12.shape() == Shape{2, 12, 5});
  expect_elements(f12, [](const auto& i) { return double(i[0] * 60 + i[1] * 5 + i[2]); });
  CHECK(y.flatten(1).shape() == Shape{2, 60});
  CHECK(y.flatten(-2, -1).shape() == Shape{2, 3, 20});
  Tensor yt = y.transpose(0, 3);  // (5, 3, 4, 2): flattening copies, values must follow
  Tensor ftt = yt.flatten(1, 2);
  CHECK(ftt.shape() == Shape{5, 12, 2});
  expect_elements(ftt, [](const auto& i) {
    int64_t j = i[1] / 4, k = i[1] % 4;
    return double(i[2] * 60 + j * 20 + k * 5 + i[0]);
  });
  CHECK(Tensor::scalar(3).flatten().shape() == Shape{1});
  CHECK_THROWS_AS(y.flatten(2, 1), IndexError);
}

TEST_CASE("tensor: as_strided") {
  Tensor x = iota({12});
  Tensor w = x.as_strided({3, 4}, {2, 1}, 1);  // sliding windows: w[i][j] = 1 + 2i + j
  CHECK(w.same_storage(x));
  expect_elements(w, [](const auto& i) { return double(1 + 2 * i[0] + i[1]); });
  Tensor d = x.as_strided({3}, {5}, 0);  // 0, 5, 10
  CHECK(d.to_vector<double>() == std::vector<double>{0, 5, 10});
  CHECK_THROWS_AS(x.as_strided({3, 4}, {1}, 0), ShapeError);
}

TEST_CASE("tensor: is_contiguous") {
  CHECK(iota({2, 3}).is_contiguous());
  CHECK_FALSE(iota({2, 3}).t().is_contiguous());
  CHECK(iota({2, 3}).slice(0, 1, 2).is_contiguous());        // one row
  CHECK_FALSE(iota({2, 3}).slice(1, 0, 2).is_contiguous());  // part of each row
  CHECK_FALSE(iota({6}).slice(0, 0, 6, 2).is_contiguous());
  CHECK(iota({3, 1}).t().is_contiguous());  // (1, 3): size-1 axes do not matter
  CHECK_FALSE(iota({3, 1}).expand({3, 4}).is_contiguous());
  CHECK(Tensor::scalar(1).is_contiguous());
  CHECK(Tensor::zeros({0, 3}).is_contiguous());
}

TEST_CASE("tensor: contiguous copies only when needed; clone always") {
  Tensor x = iota({3, 4});
  Tensor c = x.contiguous();
  CHECK(c.same_storage(x));
  CHECK(c.offset() == x.offset());

  Tensor xt = x.t();
  Tensor ct = xt.contiguous();
  CHECK_FALSE(ct.same_storage(x));
  CHECK(ct.is_contiguous());
  CHECK(ct.shape() == Shape{4, 3});
  expect_elements(ct, [](const auto& i) { return double(i[1] * 4 + i[0]); });

  Tensor row = x.slice(0, 1, 2);  // contiguous with an offset
  CHECK(row.contiguous().same_storage(x));

  Tensor cl = x.clone();
  CHECK_FALSE(cl.same_storage(x));
  CHECK(cl.to_vector<double>() == x.to_vector<double>());
  cl.fill_(7);
  CHECK(at(x, {0, 0}) == 0);  // the original is untouched
  Tensor clt = xt.clone();
  CHECK(clt.is_contiguous());
  expect_elements(clt, [](const auto& i) { return double(i[1] * 4 + i[0]); });
  Tensor ce = iota({3, 1}).expand({3, 2}).clone();
  CHECK(ce.strides() == Shape{2, 1});
  CHECK(ce.to_vector<double>() == std::vector<double>{0, 0, 1, 1, 2, 2});
}

TEST_CASE("tensor: to(dtype) conversions") {
  Tensor x = Tensor::from_vector(std::vector<double>{1.5, -2.7, 3.0, 1e10, -0.4, 2.5}, {2, 3});
  CHECK(x.to(DType::f64).same_storage(x));  // same dtype: itself

  Tensor f = x.to(DType::f32);
  CHECK(f.dtype() == DType::f32);
  CHECK_FALSE(f.same_storage(x));
  std::vector<float> fv = f.to_vector<float>();
  CHECK(fv == std::vector<float>{1.5f, -2.7f, 3.0f, 1e10f, -0.4f, 2.5f});

  Tensor i = x.to(DType::i64);  // truncation toward zero like a C++ cast
  CHECK(i.dtype() == DType::i64);
  CHECK(i.to_vector<int64_t>() == std::vector<int64_t>{1, -2, 3, 10000000000LL, 0, 2});

  Tensor big = Tensor::from_vector(std::vector<int64_t>{(int64_t)1 << 40, -3, 0}, {3});
  CHECK(big.to(DType::f64).to_vector<double>() == std::vector<double>{1099511627776.0, -3, 0});
  CHECK(big.to(DType::f32).to_vector<float>() == std::vector<float>{1099511627776.0f, -3, 0});

  // a non-contiguous source converts element by element in logical order
  Tensor t = x.t().to(DType::i64);
  CHECK(t.shape() == Shape{3, 2});
  CHECK(t.to_vector<int64_t>() == std::vector<int64_t>{1, 10000000000LL, -2, 0, 3, 2});

  // float32 -> float64 is exact
  Tensor f64 = f.to(DType::f64);
  CHECK(f64.to_vector<double>()[1] == (double)-2.7f);
}

TEST_CASE("tensor: copy_ broadcasts and converts") {
  Tensor dst = Tensor::zeros({2, 3}, DType::f64);
  dst.copy_(Tensor::from_list({1, 2, 3}, {3}, DType::f32));
  CHECK(dst.to_vector<double>() == std::vector<double>{1, 2, 3, 1, 2, 3});
  dst.copy_(Tensor::from_list({10, 20}, {2, 1}, DType::i64));
  CHECK(dst.to_vector<double>() == std::vector<double>{10, 10, 10, 20, 20, 20});
  dst.copy_(Tensor::scalar(-1, DType::f32));
  CHECK(dst.to_vector<double>() == std::vector<double>(6, -1));

  Tensor di = Tensor::zeros({3}, DType::i64);
  di.copy_(Tensor::from_list({1.9, -1.9, 2.1}, {3}, DType::f64));
  CHECK(di.to_vector<int64_t>() == std::vector<int64_t>{1, -1, 2});

  // into a non-contiguous view: only the view's elements change
  Tensor base = Tensor::zeros({3, 4}, DType::f64);
  base.slice(1, 1, 4, 2).copy_(Tensor::from_list({1, 2, 3, 4, 5, 6}, {3, 2}, DType::f64));
  CHECK(base.to_vector<double>() == std::vector<double>{0, 1, 0, 2, 0, 3, 0, 4, 0, 5, 0, 6});

  // from a transposed source
  Tensor d2 = Tensor::zeros({3, 2}, DType::f32);
  d2.copy_(iota({2, 3}).t());
  CHECK(d2.to_vector<float>() == std::vector<float>{0, 3, 1, 4, 2, 5});

  std::string e = error_of<ShapeError>([&] { dst.copy_(iota({4})); });
  CHECK(has(e, "copy_"));
  CHECK(has(e, "[2, 3]"));
  CHECK(has(e, "[4]"));
  e = error_of<ShapeError>([&] { Tensor::zeros({3}).copy_(iota({2, 3})); });
  CHECK(has(e, "copy_"));
  CHECK(has(e, "[2, 3]"));
}

TEST_CASE("tensor: copy_ between overlapping views") {
  for (DType dt : {DType::f32, DType::f64, DType::i64}) {
    CAPTURE(dtype_name(dt));
    Tensor x = iota({4, 4}, dt);
    x.copy_(x.t());  // must be the true transpose, not a half-overwritten mix
    expect_elements(x, [](const auto& i) { return double(i[1] * 4 + i[0]); });
  }
  // shifting a row in place (source and destination overlap with an offset)
  Tensor a = iota({6});
  a.slice(0, 1, 6).copy_(a.slice(0, 0, 5));
  CHECK(a.to_vector<double>() == std::vector<double>{0, 0, 1, 2, 3, 4});
  Tensor b = iota({6});
  b.slice(0, 0, 5).copy_(b.slice(0, 1, 6));
  CHECK(b.to_vector<double>() == std::vector<double>{1, 2, 3, 4, 5, 5});
  // broadcasting from a row of itself
  Tensor m = iota({3, 3});
  m.copy_(m.select(0, 2));
  CHECK(m.to_vector<double>() == std::vector<double>{6, 7, 8, 6, 7, 8, 6, 7, 8});
}

TEST_CASE("tensor: fill_ on a non-contiguous view touches only its elements") {
  Tensor x = iota({4, 5});
  x.t().slice(0, 1, 5, 2).fill_(-1);  // columns 1 and 3 of x
  expect_elements(x, [](const auto& i) { return (i[1] == 1 || i[1] == 3) ? -1.0 : double(i[0] * 5 + i[1]); });
  Tensor y = iota({3, 4}, DType::i64);
  y.slice(0, 0, 3, 2).slice(1, 1, 3).fill_(9);  // rows 0, 2; columns 1, 2
  expect_elements(y, [](const auto& i) {
    return (i[0] != 1 && (i[1] == 1 || i[1] == 2)) ? 9.0 : double(i[0] * 4 + i[1]);
  });
  Tensor z = Tensor::zeros({2, 3}, DType::f32);
  z.fill_(2.5);
  CHECK(z.to_vector<float>() == std::vector<float>(6, 2.5f));
  Tensor s = iota({3});
  s.select(0, 1).fill_(42);  // a 0-d view
  CHECK(s.to_vector<double>() == std::vector<double>{0, 42, 2});
}

TEST_CASE("tensor: item and to_vector") {
  CHECK(Tensor::scalar(3.25, DType::f64).item() == 3.25);
  CHECK(Tensor::full({1, 1, 1}, -2, DType::i64).item() == -2.0);
  CHECK(iota({2, 3}).select(1, 2).select(0, 1).item() == 5);
  CHECK(iota({2, 3}).t().slice(0, 2, 3).slice(1, 1, 2).item() == 5);  // 1-element view (1, 1)

  std::string e = error_of<ShapeError>([] { Tensor::zeros({2, 3}).item(); });
  CHECK(has(e, "item"));
  CHECK(has(e, "[2, 3]"));
  CHECK_THROWS_AS(Tensor::zeros({0}).item(), ShapeError);

  Tensor x = iota({2, 3}, DType::f32);
  CHECK(x.to_vector<double>() == std::vector<double>{0, 1, 2, 3, 4, 5});
  CHECK(x.to_vector<int64_t>() == std::vector<int64_t>{0, 1, 2, 3, 4, 5});
  CHECK(x.t().to_vector<float>() == std::vector<float>{0, 3, 1, 4, 2, 5});
  CHECK(Tensor::from_list({1.75, -1.75}, {2}).to_vector<int64_t>() == std::vector<int64_t>{1, -1});
  CHECK_THROWS_AS(Tensor().to_vector<float>(), ValueError);
}

TEST_CASE("tensor: data<T>() checks the dtype") {
  Tensor x = Tensor::zeros({2}, DType::f64);
  std::string e = error_of<DTypeError>([&] { x.data<float>(); });
  CHECK(has(e, "float64"));
  CHECK(has(e, "float32"));
  CHECK_NOTHROW(x.data<double>());
  CHECK_THROWS_AS(x.data<int64_t>(), DTypeError);
  CHECK_THROWS_AS(Tensor().data<float>(), ValueError);
  // data() points at element [0, ...] of a view
  Tensor v = iota({3, 4}).slice(0, 1, 3).slice(1, 2, 4);
  CHECK(v.data<double>()[0] == 6);
  CHECK(static_cast<double*>(v.raw_data())[0] == 6);
}

TEST_CASE("tensor: zero-size tensors") {
  Tensor z = Tensor::zeros({0, 3});
  CHECK(z.numel() == 0);
  CHECK(z.shape() == Shape{0, 3});
  CHECK(z.dim() == 2);
  CHECK(z.to_vector<float>().empty());
  CHECK(z.reshape({3, 0}).shape() == Shape{3, 0});
  CHECK(z.reshape({-1}).shape() == Shape{0});
  CHECK(z.view({0}).shape() == Shape{0});
  CHECK(z.t().shape() == Shape{3, 0});
  CHECK(z.t().contiguous().shape() == Shape{3, 0});
  CHECK(z.clone().shape() == Shape{0, 3});
  CHECK(z.to(DType::f64).dtype() == DType::f64);
  CHECK(z.unsqueeze(1).shape() == Shape{0, 1, 3});
  CHECK(z.slice(1, 0, 2).shape() == Shape{0, 2});
  CHECK(z.expand({2, 0, 3}).shape() == Shape{2, 0, 3});
  CHECK(z.flatten().shape() == Shape{0});
  z.fill_(1);  // nothing to fill, must not crash
  Tensor e = Tensor::empty({0});
  e.copy_(Tensor::scalar(3));  // broadcast into nothing
  CHECK(e.numel() == 0);
  Tensor part = iota({2, 3}).slice(1, 2, 2);
  CHECK(part.shape() == Shape{2, 0});
  CHECK(part.to_vector<double>().empty());
  CHECK(part.contiguous().numel() == 0);
  // -1 cannot be inferred against zero known elements
  CHECK_THROWS_AS(z.reshape({-1, 0}), ShapeError);
}

TEST_CASE("tensor: 0-d scalars") {
  Tensor s = Tensor::scalar(5, DType::f64);
  CHECK(s.dim() == 0);
  CHECK(s.strides().empty());
  CHECK(s.is_contiguous());
  CHECK(s.reshape({1, 1}).shape() == Shape{1, 1});
  CHECK(s.reshape({1, 1}).item() == 5);
  CHECK(s.view({}).dim() == 0);
  CHECK(Tensor::ones({1, 1}).reshape({}).dim() == 0);
  CHECK(s.clone().item() == 5);
  CHECK(s.to(DType::i64).item() == 5);
  CHECK(s.to_vector<double>() == std::vector<double>{5});
  CHECK(s.permute({}).dim() == 0);
  Tensor c = s.clone();
  c.copy_(Tensor::scalar(7, DType::f32));
  CHECK(c.item() == 7);
  CHECK(s.item() == 5);
  c.fill_(-1);
  CHECK(c.item() == -1);
  CHECK_THROWS_AS(s.size(0), IndexError);
  CHECK_THROWS_AS(s.reshape({2}), ShapeError);
}

TEST_CASE("tensor: reshape error messages") {
  Tensor x = iota({2, 3});
  std::string e = error_of<ShapeError>([&] { x.reshape({4, 2}); });
  CHECK(has(e, "reshape"));
  CHECK(has(e, "[4, 2]"));
  CHECK(has(e, "[2, 3]"));
  e = error_of<ShapeError>([&] { x.reshape({-1, 4}); });
  CHECK(has(e, "reshape"));
  CHECK(has(e, "[-1, 4]"));
  CHECK(has(e, "[2, 3]"));
  e = error_of<ShapeError>([&] { x.view({-1, -1}); });
  CHECK(has(e, "view"));
  CHECK(has(e, "-1"));
  CHECK_THROWS_AS(x.reshape({-2, 3}), ShapeError);
  // the message carries the file:line of the check
  CHECK(has(e, "engine/tensor.cpp:"));
}

TEST_CASE("tensor: to(Device::cuda()) without a usable GPU is a clear DeviceError") {
  if (cuda_available()) {
    // a GPU is here: a round trip must keep the values
    Tensor x = iota({2, 3}, DType::f32);
    Tensor g = x.to(Device::cuda());
    CHECK(g.device() == Device::cuda());
    CHECK(g.to(Device::cpu()).to_vector<float>() == x.to_vector<float>());
    return;
  }
  Tensor x = iota({2, 3}, DType::f32);
  std::string e = error_of<DeviceError>([&] { x.to(Device::cuda()); });
  INFO("message: ", e);
  CHECK_FALSE(has(e, "<no exception>"));
  CHECK_FALSE(has(e, "<other exception>"));
  CHECK(has(lower(e), "cuda"));
  if (!cuda_compiled()) {
    CHECK(has(e, "no CUDA backend"));
    CHECK(has(e, "-Dcuda=enabled"));
  } else {
    CHECK(has(e, "cuda:0"));  // names the device it tried
  }
  CHECK_THROWS_AS(Tensor::zeros({2}, DType::f32, Device::cuda()), DeviceError);
  CHECK(Device::cuda(1).str() == "cuda:1");
  CHECK(Device::cpu().str() == "cpu");
}

namespace {
bool mapped(const std::string& name) {  // a file of that name is mapped into this process
  std::ifstream maps("/proc/self/maps");
  std::string line;
  while (std::getline(maps, line))
    if (line.find(name) != std::string::npos) return true;
  return false;
}
// Read when the binary loads, before any test case runs, so that no test that opens cuBLAS (in any
// order doctest runs them) can hide a link-time dependency.
const bool cublas_mapped_at_load = mapped("libcublas");
}  // namespace

TEST_CASE("cuBLAS is opened on first use, not linked: a CPU-only process never maps it") {
  // Linked, libcublas and libcublasLt cost every process about 210 MiB of resident memory.
  CHECK_FALSE(cublas_mapped_at_load);
  if (!cuda_compiled()) {
    CHECK(has(error_of<DeviceError>([] { cuda::cublas_library(); }), "no CUDA backend"));
    return;
  }
  std::string path;
  std::string e = error_of<DeviceError>([&] { path = cuda::cublas_library(); });
  if (has(e, "<no exception>")) {  // the toolkit's library is here (it is on the CI machines)
    INFO("loaded: ", path);
    CHECK(has(path, "libcublas.so."));
    CHECK(mapped("libcublas"));
    CHECK(cuda::cublas_library() == path);  // opened once
  } else {  // a build with CUDA on a machine without its libraries: the error says where it looked
    INFO("message: ", e);
    CHECK(has(e, "libcublas.so."));
    CHECK(has(e, "LD_LIBRARY_PATH"));
  }
}

TEST_CASE("storage: freed large CPU blocks are reused by size, small ones are not cached") {
  CpuCacheStats s0 = cpu_cache_stats();
  if (!s0.enabled) {
    MESSAGE("the CPU block cache is off in this build (ASan) or by GENVAE_CPU_CACHE=0");
    return;
  }
  const size_t big = kMinCachedBytes * 3 + 8;  // rounds up to a multiple of 64
  void* p = cpu_alloc(big);
  std::memset(p, 1, big);
  cpu_free(p, big);
  CHECK(cpu_cache_stats().cached_bytes >= s0.cached_bytes + big);
  void* q = cpu_alloc(big);
  CHECK(q == p);  // the same block back
  CHECK(cpu_cache_stats().hits == s0.hits + 1);
  void* r = cpu_alloc(big);  // the cache has none of that size left: a new block
  CHECK(r != q);
  cpu_free(q, big);
  cpu_free(r, big);
  void* small = cpu_alloc(256);
  size_t before = cpu_cache_stats().cached_bytes;
  cpu_free(small, 256);
  CHECK(cpu_cache_stats().cached_bytes == before);  // small blocks go straight back to malloc
  // tensors go through it too: a freed tensor's storage comes back for the next of its size
  const void* first;
  {
    Tensor t = Tensor::empty({int64_t(big / 4)}, DType::f32);
    first = t.raw_data();
  }
  Tensor t2 = Tensor::empty({int64_t(big / 4)}, DType::f32);
  CHECK(t2.raw_data() == first);
  cpu_cache_release();
  CHECK(cpu_cache_stats().cached_bytes == 0);
}

TEST_CASE("first_non_finite and index_str: the first NaN or infinity in row-major order, by multi-index") {
  using gv::Tensor;
  Tensor t = Tensor::from_vector(std::vector<float>{1, 2, 3, 4, 5, 6}, {2, 3});
  CHECK_FALSE(gv::first_non_finite(t).has_value());
  t.data<float>()[4] = std::numeric_limits<float>::infinity();
  t.data<float>()[5] = std::numeric_limits<float>::quiet_NaN();
  auto bad = gv::first_non_finite(t);
  REQUIRE(bad.has_value());
  CHECK(bad->index == 4);
  CHECK(std::isinf(bad->value));
  CHECK(gv::index_str(t.shape(), bad->index) == "[1, 1]");
  // a strided view is read in its own row-major order: the transpose's first bad element is [1, 1] too,
  // and its NaN at [2, 1] comes after it
  auto tb = gv::first_non_finite(t.t());
  REQUIRE(tb.has_value());
  CHECK(gv::index_str(t.t().shape(), tb->index) == "[1, 1]");
  Tensor d = Tensor::from_vector(std::vector<double>{0, -std::numeric_limits<double>::infinity()}, {2});
  CHECK(gv::first_non_finite(d)->index == 1);
  CHECK_FALSE(gv::first_non_finite(Tensor::arange(5)).has_value());  // integers are always finite
  CHECK(gv::index_str({4, 5, 6}, 5 * 6 + 6 + 2) == "[1, 1, 2]");
  CHECK(gv::number_str(std::nan("")) == "NaN");
  CHECK(gv::number_str(-std::numeric_limits<double>::infinity()) == "-inf");
}

}  // namespace file_engine_test_tensor

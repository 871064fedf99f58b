// test_kernel_bodies.cpp: the CUDA backend's kernel bodies (engine/cuda/kernels.h), run on the CPU
// by tests/engine/kernel_harness.h over the grid each launch would have, against the CPU backend.
// These check the indexing, bounds, broadcasting, reduction order and the plans of the code the
// GPU runs; tests/cuda/test_cuda.cpp checks the GPU itself where one exists.
//
// Each comparison is bitwise where the body computes what the CPU computes in the same order
// (element-wise ops from the same functors, gather, scatter_add, col2im, the serial reductions,
// the Philox draws); the block reductions sum in a tree, so their float sums are compared to a
// bound on the reordering (the comment at that check).
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <unordered_map>
#include <limits>
#include <vector>

#include "engine/backend.h"
#include "engine/cuda/block_cache.h"
#include "engine/gemm.h"
#include "engine/ops.h"
#include "engine/random.h"
#include "engine/tensor.h"
#include "tests/engine/kernel_harness.h"
#include "tests/test_util.h"

using namespace gv;

// This file's helpers and tests in a namespace of their own: the unity build (scripts/test.sh)
// compiles several test files as one, and their helpers must not meet.
namespace file_engine_test_kernel_bodies {

namespace {

// Grids to run every body on: the launch the GPU gets (for a GPU of 2 multiprocessors, so that the
// grid-stride loops wrap on the larger cases), a tiny one that wraps many times, and one thread.
std::vector<kern::Launch> grids(int64_t n) { return {kern::launch_for(n, 2), {3, 4}, {1, 1}}; }

Tensor randn(const Shape& s, DType dt, uint64_t seed) {
  Generator g(seed);
  return normal(s, g, 0, 1, dt);
}

bool same_bits(const Tensor& a, const Tensor& b) {
  if (a.shape() != b.shape() || a.dtype() != b.dtype()) return false;
  Tensor ca = a.contiguous(), cb = b.contiguous();
  return std::memcmp(ca.raw_data(), cb.raw_data(), size_t(ca.numel()) * dtype_size(ca.dtype())) == 0;
}

// A view with a permuted, sliced and broadcast layout: (4, 3, 5) out of a (5, 8, 1) base.
Tensor odd_view(DType dt, uint64_t seed) {
  Tensor base = randn({5, 8, 1}, dt, seed);
  return base.slice(1, 1, 7, 2).expand({5, 3, 4}).permute({2, 1, 0});
}

template <class Apply, int K>
void run_strided(const kern::Launch& l, const std::array<const TensorRef*, K>& refs, const Apply& op) {
  const StridedSpace<K> s = kern::space_of<K>(refs.data());
  REQUIRE(!s.too_many_axes);
  harness::run(l, [&](const kern::Grid& g) { kern::strided_body<K>(g, s, op); });
}

}  // namespace

TEST_CASE("kernel bodies: launch shapes cover the work and stay within the GPU's limits") {
  CHECK(kern::launch_for(0, 132).blocks == 1);
  CHECK(kern::launch_for(1000, 132).blocks == 4);
  CHECK(kern::launch_for(int64_t(1) << 40, 132).blocks == 132 * kern::kBlocksPerSM);
  CHECK(kern::reduce_block_threads(1) == 32);
  CHECK(kern::reduce_block_threads(100) == 128);
  CHECK(kern::reduce_block_threads(1 << 20) == kern::kThreads);
}

TEST_CASE("kernel bodies: unary and its backward over strided and broadcast views match the CPU bit for bit") {
  for (DType dt : {DType::f32, DType::f64}) {
    Tensor x = odd_view(dt, 1);
    Tensor gout = randn(x.shape(), dt, 2);
#define GV_CASE(name, F)                                                                                \
  {                                                                                                     \
    const UnaryOp op = UnaryOp::name;                                                                   \
    const double a = op == UnaryOp::clamp ? -0.5 : 0.1, b = 0.5;                                        \
    Tensor want = unary(op, x, a, b), want_g = unary_backward(op, x, want, gout, a, b);                  \
    for (const kern::Launch& l : grids(x.numel())) {                                                    \
      Tensor got = Tensor::empty(x.shape(), dt), got_g = Tensor::empty(x.shape(), dt);                  \
      const TensorRef o = tensor_ref(got), xr = tensor_ref(x), og = tensor_ref(got_g),                  \
                      yr = tensor_ref(want), gr = tensor_ref(gout);                                     \
      if (dt == DType::f32) {                                                                           \
        run_strided<kern::UnaryApply<F, float>, 2>(l, {&o, &xr}, {o.ptr<float>(), xr.ptr<float>(), float(a), float(b)}); \
        run_strided<kern::UnaryBackApply<F, float>, 4>(l, {&og, &xr, &yr, &gr},                         \
            {og.ptr<float>(), xr.ptr<float>(), yr.ptr<float>(), gr.ptr<float>(), float(a), float(b)});  \
      } else {                                                                                          \
        run_strided<kern::UnaryApply<F, double>, 2>(l, {&o, &xr}, {o.ptr<double>(), xr.ptr<double>(), a, b}); \
        run_strided<kern::UnaryBackApply<F, double>, 4>(l, {&og, &xr, &yr, &gr},                        \
            {og.ptr<double>(), xr.ptr<double>(), yr.ptr<double>(), gr.ptr<double>(), a, b});            \
      }                                                                                                 \
      CHECK_MESSAGE(same_bits(got, want), #name, " ", dtype_name(dt), " grid ", l.blocks, "x", l.threads); \
      CHECK_MESSAGE(same_bits(got_g, want_g), #name, " backward ", dtype_name(dt));                     \
    }                                                                                                   \
  }
    GV_UNARY_OPS(GV_CASE)
#undef GV_CASE
  }
}

TEST_CASE("kernel bodies: binary ops broadcast as the CPU does, in every dtype") {
  for (DType dt : {DType::f32, DType::f64, DType::i64}) {
    Tensor a = (randn({3, 1, 5}, DType::f64, 3) * Tensor::scalar(4.0, DType::f64)).to(dt);
    Tensor b = (randn({4, 1}, DType::f64, 4) * Tensor::scalar(4.0, DType::f64)).to(dt);
    if (dt == DType::i64) b = Tensor::from_vector<int64_t>({1, 3, 2, 1}, {4, 1});  // no division by 0, small powers
    const Shape out_shape = {3, 4, 5};
    const TensorRef ar = tensor_ref(a, out_shape), br = tensor_ref(b, out_shape);
#define GV_CASE(name, F)                                                                     \
  {                                                                                          \
    Tensor want = binary(BinaryOp::name, a, b);                                              \
    for (const kern::Launch& l : grids(want.numel())) {                                      \
      Tensor got = Tensor::empty(out_shape, dt);                                             \
      const TensorRef o = tensor_ref(got);                                                   \
      if (dt == DType::f32)                                                                  \
        run_strided<kern::BinaryApply<F, float>, 3>(l, {&o, &ar, &br}, {o.ptr<float>(), ar.ptr<float>(), br.ptr<float>()}); \
      else if (dt == DType::f64)                                                             \
        run_strided<kern::BinaryApply<F, double>, 3>(l, {&o, &ar, &br}, {o.ptr<double>(), ar.ptr<double>(), br.ptr<double>()}); \
      else                                                                                   \
        run_strided<kern::BinaryApply<F, int64_t>, 3>(l, {&o, &ar, &br}, {o.ptr<int64_t>(), ar.ptr<int64_t>(), br.ptr<int64_t>()}); \
      CHECK_MESSAGE(same_bits(got, want), #name, " ", dtype_name(dt));                       \
    }                                                                                        \
  }
    GV_BINARY_OPS(GV_CASE)
#undef GV_CASE
  }
}

TEST_CASE("kernel bodies: where, the gate and its backward, copy with conversion and fill") {
  Tensor x = odd_view(DType::f32, 5), y = randn({4, 3, 5}, DType::f32, 6), g = randn({4, 3, 5}, DType::f32, 7);
  Tensor cond = gt(randn({3, 1}, DType::f64, 8), Tensor::scalar(0.0, DType::f64));  // float64 mask, broadcast
  const Shape s = {4, 3, 5};
  Tensor want_where = where(cond, x, y);
  Tensor xy = concat({x, y}, 2);  // the gate's two halves along axis 2
  Tensor want_gate = gate(xy, 2), want_gback = gate_backward(xy, g, 2);
  Tensor want_copy = x.to(DType::f64);
  for (const kern::Launch& l : grids(60)) {
    Tensor w = Tensor::empty(s, DType::f32);
    const TensorRef wr = tensor_ref(w), cr = tensor_ref(cond, s), xr = tensor_ref(x), yr = tensor_ref(y),
                    gr = tensor_ref(g);
    run_strided<kern::WhereApply<float, double>, 4>(l, {&wr, &cr, &xr, &yr},
                                                     {wr.ptr<float>(), cr.ptr<double>(), xr.ptr<float>(), yr.ptr<float>()});
    CHECK(same_bits(w, want_where));

    Tensor gt_out = Tensor::empty(s, DType::f32), gback = Tensor::empty({4, 3, 10}, DType::f32);
    Tensor ga = gback.slice(2, 0, 5), gb = gback.slice(2, 5, 10);
    const TensorRef go = tensor_ref(gt_out), gar = tensor_ref(ga), gbr = tensor_ref(gb);
    run_strided<kern::GateApply<float>, 3>(l, {&go, &xr, &yr}, {go.ptr<float>(), xr.ptr<float>(), yr.ptr<float>()});
    run_strided<kern::GateBackApply<float>, 5>(
        l, {&gar, &gbr, &xr, &yr, &gr},
        {gar.ptr<float>(), gbr.ptr<float>(), xr.ptr<float>(), yr.ptr<float>(), gr.ptr<float>()});
    CHECK(same_bits(gt_out, want_gate));
    CHECK(same_bits(gback, want_gback));

    Tensor c = Tensor::empty(s, DType::f64);
    const TensorRef cref = tensor_ref(c);
    run_strided<kern::CopyApply<double, float>, 2>(l, {&cref, &xr}, {cref.ptr<double>(), xr.ptr<float>()});
    CHECK(same_bits(c, want_copy));

    // fill a strided slice: only its elements change
    Tensor base = Tensor::zeros({6, 7}, DType::i64);
    Tensor part = base.slice(0, 1, 6, 2).slice(1, 2, 7, 3);
    const TensorRef pr = tensor_ref(part);
    run_strided<kern::FillApply<int64_t>, 1>(l, {&pr}, {pr.ptr<int64_t>(), int64_t(9)});
    Tensor want_base = Tensor::zeros({6, 7}, DType::i64);
    want_base.slice(0, 1, 6, 2).slice(1, 2, 7, 3).fill_(9);
    CHECK(same_bits(base, want_base));
  }
}

TEST_CASE("kernel bodies: reductions over any axes, serial and in blocks, NaN and ties as on the CPU") {
  // x (6, 4, 70) seen permuted to (70, 6, 4), with NaNs and ties planted
  Tensor base = randn({6, 4, 70}, DType::f32, 9);
  std::vector<float> v = base.to_vector<float>();
  v[3 * 70 + 11] = std::numeric_limits<float>::quiet_NaN();
  v[5 * 280 + 2 * 70 + 40] = 7.0f;
  v[5 * 280 + 2 * 70 + 41] = 7.0f;  // a tie: argmax takes the first
  base = Tensor::from_vector(v, {6, 4, 70});
  Tensor x = base.permute({2, 0, 1});
  const std::vector<std::vector<bool>> axis_sets = {{true, false, false}, {false, true, true}, {true, true, true},
                                                    {false, true, false}, {true, false, true}};
  for (const auto& on : axis_sets) {
    Axes axes;
    for (int d = 0; d < 3; ++d)
      if (on[d]) axes.push_back(d);
    bool red[3] = {on[0], on[1], on[2]};
    const kern::ReduceGeom r = kern::reduce_geom(tensor_ref(x), red);
    const float* px = tensor_ref(x).ptr<float>();  // the view's element [0,0,0]
    Tensor want_sum = sum(x, axes, true), want_max = max(x, axes, true);
    INFO("axes " << on[0] << on[1] << on[2]);
    // serial: the CPU's order, so even the float sums are the same bits
    for (const kern::Launch& l : grids(r.nout)) {
      Tensor s = Tensor::empty(want_sum.shape()), m = Tensor::empty(want_max.shape());
      harness::run(l, [&](const kern::Grid& g) {
        kern::reduce_serial_body<kern::SumR<float>>(g, r, px, s.data<float>());
        kern::reduce_serial_body<kern::MaxR<float>>(g, r, px, m.data<float>());
      });
      CHECK(same_bits(s, want_sum));
      CHECK(same_bits(m, want_max));
    }
    // blocks: a tree of double partials. Each partial and the tree add in double, so the result
    // differs from the serial double sum by at most (nred) * 2^-52 * sum |x| before the one
    // rounding to float; the bound below adds that rounding (half an ulp of float, 2^-24 relative).
    Tensor bound = sum(abs(x), axes, true);
    for (const kern::Launch& l : {kern::Launch{kern::launch_for(r.nout, 2).blocks, kern::reduce_block_threads(r.nred)},
                                  kern::Launch{3, 4}, kern::Launch{1, 1}}) {
      Tensor s = Tensor::empty(want_sum.shape()), m = Tensor::empty(want_max.shape());
      harness::run_reduce_blocks<kern::SumR<float>>(l, r, px, s.data<float>());
      harness::run_reduce_blocks<kern::MaxR<float>>(l, r, px, m.data<float>());
      CHECK(same_bits(m, want_max));
      std::vector<float> gs = s.to_vector<float>(), ws = want_sum.to_vector<float>(), bs = bound.to_vector<float>();
      for (size_t i = 0; i < gs.size(); ++i) {
        if (std::isnan(ws[i])) {
          CHECK(std::isnan(gs[i]));
          continue;
        }
        const double tol = double(bs[i]) * (double(r.nred) * 0x1p-52 + 0x1p-23);
        CHECK_MESSAGE(std::fabs(double(gs[i]) - double(ws[i])) <= tol, "output ", i);
      }
    }
  }
  // argmax along each axis, with the NaN and the tie
  for (int axis = 0; axis < 3; ++axis) {
    bool red[3] = {axis == 0, axis == 1, axis == 2};
    const kern::ReduceGeom r = kern::reduce_geom(tensor_ref(x), red);
    Tensor want = argmax(x, axis, true);
    for (const kern::Launch& l : {kern::Launch{2, 32}, kern::Launch{3, 4}, kern::Launch{1, 1}}) {
      Tensor a = Tensor::empty(want.shape(), DType::i64), b = Tensor::empty(want.shape(), DType::i64);
      harness::run_reduce_blocks<kern::ArgmaxR<float>>(l, r, tensor_ref(x).ptr<float>(), a.data<int64_t>());
      harness::run(l, [&](const kern::Grid& g) {
        kern::reduce_serial_body<kern::ArgmaxR<float>>(g, r, tensor_ref(x).ptr<float>(), b.data<int64_t>());
      });
      CHECK_MESSAGE(same_bits(a, want), "axis ", axis);
      CHECK_MESSAGE(same_bits(b, want), "axis ", axis);
    }
  }
  // int64 sums are exact in any order
  Tensor xi = (randn({6, 4, 70}, DType::f64, 13) * 100.0).to(DType::i64).permute({2, 0, 1});
  bool red[3] = {true, false, true};
  const kern::ReduceGeom r = kern::reduce_geom(tensor_ref(xi), red);
  Tensor got = Tensor::empty({1, 6, 1}, DType::i64);
  harness::run_reduce_blocks<kern::SumR<int64_t>>({2, 64}, r, tensor_ref(xi).ptr<int64_t>(), got.data<int64_t>());
  CHECK(same_bits(got, sum(xi, {0, 2}, true)));
}

TEST_CASE("kernel bodies: gather, scatter_add and one_hot match the CPU; a bad index is recorded, not read") {
  Tensor x = randn({5, 6, 3}, DType::f64, 10).permute({1, 0, 2});  // (6, 5, 3), strided
  Generator g(11);
  Tensor index = (uniform({6, 4, 3}, g, 0, 4.999, DType::f64)).to(DType::i64);  // values in [0, 5)
  const int axis = 1;
  Tensor want = gather(x, axis, index);
  for (const kern::Launch& l : grids(index.numel())) {
    Tensor out = Tensor::empty(index.shape(), DType::f64);
    const TensorRef xr = tensor_ref(x), ir = tensor_ref(index);
    const kern::IndexGeom ig = kern::index_geom(ir, &xr, nullptr, axis, x.shape()[axis]);
    kern::ErrorWord err{};
    harness::run(l, [&](const kern::Grid& gr) {
      kern::gather_body<double>(gr, ig, xr.ptr<double>(), ir.ptr<int64_t>(), out.data<double>(), &err);
    });
    CHECK(err.code == kern::kErrNone);
    CHECK(same_bits(out, want));
  }
  // scatter_add: repeated indices sum in index order, as on the CPU
  Tensor src = randn({6, 4, 3}, DType::f32, 12);
  Tensor want_s = scatter_add({6, 5, 3}, axis, index, src);
  for (const kern::Launch& l : grids(24)) {
    Tensor out = Tensor::zeros({6, 5, 3}, DType::f32);
    const TensorRef orf = tensor_ref(out), ir = tensor_ref(index), sr = tensor_ref(src);
    const kern::IndexGeom ig = kern::index_geom(ir, &orf, &sr, axis, 5);
    kern::ErrorWord err{};
    harness::run(l, [&](const kern::Grid& gr) {
      kern::scatter_add_body<float>(gr, ig, ir.ptr<int64_t>(), sr.ptr<float>(), orf.ptr<float>(), &err);
    });
    CHECK(err.code == kern::kErrNone);
    CHECK(same_bits(out, want_s));
  }
  Tensor labels = Tensor::from_vector<int64_t>({3, 0, 9, 9, 4, 1}, {2, 3});
  Tensor want_h = one_hot(labels, 10);
  {
    Tensor out = Tensor::zeros({2, 3, 10});
    const TensorRef ir = tensor_ref(labels);
    const kern::IndexGeom ig = kern::index_geom(ir, nullptr, nullptr, 0, 10);
    kern::ErrorWord err{};
    harness::run({3, 4}, [&](const kern::Grid& gr) {
      kern::one_hot_body<float>(gr, ig, ir.ptr<int64_t>(), 10, out.data<float>(), &err);
    });
    CHECK(err.code == kern::kErrNone);
    CHECK(same_bits(out, want_h));
  }
  // out-of-range values: the first is recorded with its position, nothing outside x is read
  std::vector<int64_t> iv = index.to_vector<int64_t>();
  iv[7] = 5;
  iv[20] = -1;
  Tensor bad = Tensor::from_vector(iv, index.shape());
  Tensor out = Tensor::empty(bad.shape(), DType::f64);
  const TensorRef xr = tensor_ref(x), br = tensor_ref(bad);
  const kern::IndexGeom ig = kern::index_geom(br, &xr, nullptr, axis, 5);
  kern::ErrorWord err{};
  harness::run({1, 1}, [&](const kern::Grid& gr) {
    kern::gather_body<double>(gr, ig, xr.ptr<double>(), br.ptr<int64_t>(), out.data<double>(), &err);
  });
  CHECK(err.code == kern::kErrGather);
  CHECK(err.position == 7);
  CHECK(err.value == 5);
  CHECK(err.extent == 5);
  CHECK(std::isnan(out.to_vector<double>()[7]));
  CHECK(std::isnan(out.to_vector<double>()[20]));
  kern::ErrorWord err2{};
  Tensor hot = Tensor::zeros({2, 3, 10});
  Tensor bad_labels = Tensor::from_vector<int64_t>({3, 0, 10, 9, 4, 1}, {2, 3});
  const TensorRef blr = tensor_ref(bad_labels);
  harness::run({1, 2}, [&](const kern::Grid& gr) {
    kern::one_hot_body<float>(gr, kern::index_geom(blr, nullptr, nullptr, 0, 10), blr.ptr<int64_t>(), 10,
                              hot.data<float>(), &err2);
  });
  CHECK(err2.code == kern::kErrOneHot);
  CHECK(err2.position == 2);
}

TEST_CASE("kernel bodies: the Philox draws are the CPU's, bit for bit") {
  for (DType dt : {DType::f32, DType::f64}) {
    for (int64_t n : {1, 6, 1001}) {
      Generator gu(21), gn(22), gb(23);
      Tensor want_u = uniform({n}, gu, -2, 3, dt), want_n = normal({n}, gn, 1, 2, dt);
      Tensor p = uniform({n}, gb, 0, 1, dt);
      Generator gb2 = gb;
      Tensor want_b = bernoulli(p, gb);
      for (const kern::Launch& l : grids((n + 3) / 4)) {
        Tensor u = Tensor::empty({n}, dt), z = Tensor::empty({n}, dt), b = Tensor::empty({n}, dt);
        auto go = [&]<class T>() {
          kern::DrawArgs<T> au{u.data<T>(), nullptr, n, 21, 0, -2, 3};
          kern::DrawArgs<T> an{z.data<T>(), nullptr, n, 22, 0, 1, 2};
          kern::DrawArgs<T> ab{b.data<T>(), p.data<T>(), n, 23, gb2.offset(), 0, 0};
          harness::run(l, [&](const kern::Grid& g) {
            kern::random_body<kern::Draw::uniform, T>(g, au);
            kern::random_body<kern::Draw::normal, T>(g, an);
            kern::random_body<kern::Draw::bernoulli, T>(g, ab);
          });
        };
        if (dt == DType::f32) go.operator()<float>();
        else go.operator()<double>();
        CHECK(same_bits(u, want_u));
        CHECK(same_bits(z, want_n));
        CHECK(same_bits(b, want_b));
      }
    }
  }
}

TEST_CASE("philox.h: the portable log and cos/sin of the Box-Muller transform are accurate") {
  // log_unit and cossin_2pi replace std::log, cos and sin so the GPU gives the same bits; they must
  // still be as good as a library's: within 4 ulp of std:: (glibc's are within 1 ulp of exact).
  auto ulps = [](double a, double b) {
    if (a == b) return 0.0;
    return std::fabs(a - b) / std::fabs(std::nextafter(b, 2 * b + 1) - b);
  };
  double worst_log = 0, worst_trig = 0;
  std::vector<uint32_t> words = {0u, 1u, 2u, 0x7FFFFFFFu, 0x80000000u, 0xBFFFFFFFu, 0xFFFFFFFEu, 0xFFFFFFFFu};
  Generator g(31);
  for (int i = 0; i < 20000; ++i) words.push_back(g.block(uint64_t(i))[i % 4]);
  for (uint32_t w : words) {
    const double u = Philox::to_unit(w);
    if (u != 1.0) worst_log = std::max(worst_log, ulps(log_unit(u), std::log(u)));
    else CHECK(log_unit(u) == 0.0);
    double c, s;
    cossin_2pi(u, c, s);
    const double th = 6.283185307179586476925286766559 * u;
    // an absolute bound for values near 0 (there the reference's own argument error dominates)
    worst_trig = std::max(worst_trig, std::min(ulps(c, std::cos(th)), std::fabs(c - std::cos(th)) / 0x1p-52));
    worst_trig = std::max(worst_trig, std::min(ulps(s, std::sin(th)), std::fabs(s - std::sin(th)) / 0x1p-52));
  }
  MESSAGE("worst log error " << worst_log << " ulp, cos/sin " << worst_trig << " ulp (or 2^-52 absolute)");
  CHECK(worst_log <= 4);
  CHECK(worst_trig <= 4);
}

TEST_CASE("kernel bodies: im2col, col2im and the reorders give the CPU's convolutions bit for bit") {
  // conv2d through the GPU's plan: im2col of a chunk of m images, one GEMM, unpack with the bias;
  // and its input gradient: pack, the transposed GEMM, col2im. The GEMM is the CPU's here, so
  // the comparison isolates the index math.
  for (DType dt : {DType::f32, DType::f64}) {
    const int64_t N = 3, C = 2, H = 7, W = 6, O = 4, kh = 3, kw = 2;
    const Conv2dParams p{2, 1, 1, 1, 2, 1};  // strides (2, 1), padding 1, dilation (2, 1)
    const int64_t Ho = conv_out_size(H, kh, 2, 1, 2), Wo = conv_out_size(W, kw, 1, 1, 1), L = Ho * Wo, K = C * kh * kw;
    Tensor x = randn({N, C, H, W}, dt, 40), w = randn({O, C, kh, kw}, dt, 41), bias = randn({O}, dt, 42);
    Tensor gout = randn({N, O, Ho, Wo}, dt, 43);
    Tensor want = conv2d(x, w, bias, p), want_gx = conv2d_backward_input(gout, w, {N, C, H, W}, p);
    const kern::ConvArgs a{{C, H, W, kh, kw, Ho, Wo, 2, 1, 1, 1, 2, 1}, N};
    for (const kern::Launch& l : grids(K * N * L)) {
      Tensor col = Tensor::empty({K, N * L}, dt), y = Tensor::empty({O, N * L}, dt), out = Tensor::empty(want.shape(), dt);
      Tensor G = Tensor::empty({O, N * L}, dt), gx = Tensor::empty({N, C, H, W}, dt);
      auto go = [&]<class T>() {
        harness::run(l, [&](const kern::Grid& g) { kern::im2col_body<T>(g, a, x.data<T>(), col.data<T>()); });
        gemm<T>(O, N * L, K, T(1), w.data<T>(), K, 1, col.data<T>(), N * L, 1, T(0), y.data<T>(), N * L);
        harness::run(l, [&](const kern::Grid& g) {
          kern::unpack_rows_body<T>(g, y.data<T>(), N, O, L, bias.data<T>(), out.data<T>());
          kern::pack_rows_body<T>(g, gout.data<T>(), N, O, L, G.data<T>());
        });
        gemm<T>(K, N * L, O, T(1), w.data<T>(), 1, K, G.data<T>(), N * L, 1, T(0), col.data<T>(), N * L);
        harness::run(l, [&](const kern::Grid& g) { kern::col2im_body<T>(g, a, col.data<T>(), nullptr, gx.data<T>()); });
      };
      if (dt == DType::f32) go.operator()<float>();
      else go.operator()<double>();
      CHECK_MESSAGE(same_bits(out, want), dtype_name(dt), " grid ", l.blocks, "x", l.threads);
      CHECK_MESSAGE(same_bits(gx, want_gx), dtype_name(dt));
    }
  }
}

namespace {

// cuBLAS's gemm as its documentation defines it, column-major: C (m x n) = alpha op(A) op(B) +
// beta C, op(A) m x k, A stored with leading dimension lda (its rows when not transposed).
void ref_gemm_cm(bool ta, bool tb, int64_t m, int64_t n, int64_t k, double alpha, const double* A, int64_t lda,
                 const double* B, int64_t ldb, double beta, double* C, int64_t ldc) {
  REQUIRE(lda >= std::max<int64_t>(1, ta ? k : m));
  REQUIRE(ldb >= std::max<int64_t>(1, tb ? n : k));
  REQUIRE(ldc >= std::max<int64_t>(1, m));
  for (int64_t j = 0; j < n; ++j)
    for (int64_t i = 0; i < m; ++i) {
      double acc = 0;
      for (int64_t p = 0; p < k; ++p)
        acc += (ta ? A[p + i * lda] : A[i + p * lda]) * (tb ? B[j + p * ldb] : B[p + j * ldb]);
      C[i + j * ldc] = alpha * acc + (beta == 0 ? 0.0 : beta * C[i + j * ldc]);
    }
}

// The CUDA GEMM's plan (engine/cuda/gemm_conv.cu) on the CPU: C^T = X Y with X = op(B)^T and
// Y = op(A)^T read through kern::blas_operand, packed where it says so.
void planned_gemm(int64_t M, int64_t N, int64_t K, double alpha, const double* a, int64_t rsa, int64_t csa,
                  const double* b, int64_t rsb, int64_t csb, double beta, double* c, int64_t ldc) {
  auto prepare = [](const double* p, int64_t rows, int64_t cols, int64_t ri, int64_t rj, std::vector<double>& pack,
                    kern::BlasOperand& bo) {
    bo = kern::blas_operand(rows, cols, ri, rj);
    if (!bo.packed) return p;
    pack.resize(size_t(std::max<int64_t>(rows * cols, 1)));
    for (int64_t j = 0; j < cols; ++j)
      for (int64_t i = 0; i < rows; ++i) pack[size_t(i + j * rows)] = p[i * ri + j * rj];
    return static_cast<const double*>(pack.data());
  };
  std::vector<double> px, py;
  kern::BlasOperand bx, by;
  const double* x = prepare(b, N, K, csb, rsb, px, bx);
  const double* y = prepare(a, K, M, csa, rsa, py, by);
  ref_gemm_cm(bx.trans, by.trans, N, M, K, alpha, x, bx.ld, y, by.ld, beta, c, ldc);
}

}  // namespace

TEST_CASE("kernel bodies: the CUDA GEMM's operand plan gives engine/gemm.h's product for every layout") {
  // A (M, K) and B (K, N) in every layout the engine passes: row-major, transposed, a column of a
  // wider matrix, broadcast (stride 0), and size-1 axes with odd strides; C with ldc > N.
  struct Layout {
    const char* name;
    int64_t rs, cs;  // as multiples: resolved below from the matrix's shape
  };
  const int64_t M = 5, N = 7, K = 3;
  std::vector<double> store(4096);
  for (size_t i = 0; i < store.size(); ++i) store[i] = std::sin(double(i) * 0.37) + 0.01 * double(i % 13);
  auto layouts = [](int64_t rows, int64_t cols) {
    return std::vector<std::pair<int64_t, int64_t>>{
        {cols, 1}, {1, rows}, {cols + 3, 1}, {1, rows + 2}, {0, 1}, {cols, 0}, {2 * cols, 2}, {3, 5 * rows}};
  };
  int cases = 0;
  for (int64_t m : {M, int64_t(1)})
    for (int64_t k : {K, int64_t(1)})
      for (auto [rsa, csa] : layouts(m, k))
        for (auto [rsb, csb] : layouts(k, N))
          for (double beta : {0.0, 0.5}) {
            const double* a = store.data() + 11;
            const double* b = store.data() + 1500;
            const int64_t ldc = N + 2;
            std::vector<double> want(size_t(m * ldc), 3.0), got(size_t(m * ldc), 3.0);
            gemm<double>(m, N, k, 1.5, a, rsa, csa, b, rsb, csb, beta, want.data(), ldc);
            planned_gemm(m, N, k, 1.5, a, rsa, csa, b, rsb, csb, beta, got.data(), ldc);
            for (size_t i = 0; i < want.size(); ++i) {
              // both sum k <= 3 products in double: any order is within 4 ulp of the larger terms
              const double tol = 1e-14 * (1 + std::fabs(want[i]));
              if (std::fabs(want[i] - got[i]) > tol) {
                FAIL_CHECK("M=" << m << " K=" << k << " A strides (" << rsa << "," << csa << ") B strides (" << rsb
                                << "," << csb << ") beta " << beta << " element " << i << ": " << got[i]
                                << " != " << want[i]);
                break;
              }
            }
            ++cases;
          }
  CHECK(cases == 2 * 2 * 8 * 8 * 2);
  // the plan reads each layout in place where cuBLAS can: row-major and transposed need no copy
  CHECK_FALSE(kern::blas_operand(7, 3, 1, 7).packed);
  CHECK(kern::blas_operand(7, 3, 3, 1).trans);
  CHECK(kern::blas_operand(7, 3, 0, 1).packed);  // broadcast rows
}

TEST_CASE("the CUDA caching allocator reuses blocks by size and retries an allocation after releasing its cache") {
  std::vector<void*> live;
  size_t budget = 8 << 20, used = 0;  // a fake device of 8 MiB
  int raw_allocs = 0, raw_frees = 0;
  std::unordered_map<void*, size_t> sizes;
  cuda::BlockCache c(
      [&](size_t n) -> void* {
        if (used + n > budget) return nullptr;
        ++raw_allocs;
        used += n;
        void* p = std::malloc(n);
        sizes[p] = n;
        return p;
      },
      [&](void* p) {
        ++raw_frees;
        used -= sizes[p];
        sizes.erase(p);
        std::free(p);
      });
  CHECK(cuda::BlockCache::round(1) == 512);
  CHECK(cuda::BlockCache::round(513) == 1024);
  CHECK(cuda::BlockCache::round((1 << 20) + 1) == (2 << 20));
  void* a = c.alloc(1000);
  void* b = c.alloc(3 << 20);
  CHECK(raw_allocs == 2);
  CHECK(c.in_use_bytes() == 1024 + (3 << 20));
  CHECK(c.free(a));
  CHECK_FALSE(c.free(a));  // twice: refused, nothing changes
  CHECK(c.cached_bytes() == 1024);
  void* a2 = c.alloc(900);  // the same rounded size: the cached block again
  CHECK(a2 == a);
  CHECK(c.hits() == 1);
  CHECK(c.free(b));
  // 6 MiB does not fit beside the cached 3 MiB block: the cache is released and the call retried
  void* big = c.alloc(6 << 20);
  CHECK(big != nullptr);
  CHECK(raw_frees == 1);
  CHECK(c.cached_bytes() == 0);
  CHECK(c.alloc(4 << 20) == nullptr);  // nothing left to release: the caller reports out of memory
  CHECK(c.free(big));
  CHECK(c.free(a2));
  c.release();
  CHECK(used == 0);
  CHECK(raw_frees == raw_allocs);
}

}  // namespace file_engine_test_kernel_bodies

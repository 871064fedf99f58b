// test_conv.cpp: conv2d, its gradients and conv_transpose2d against naive direct loops written
// here (double accumulation), the adjoint identities, non-contiguous inputs, thread-count
// independence, and the errors bad arguments raise.
#include <doctest/doctest.h>
#include <omp.h>

#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "engine/ops.h"
#include "engine/runtime.h"
#include "tests/test_util.h"

using namespace gv;
using gv::test::error_of;  // its message, or "<no exception>" / "<other exception>"
using gv::test::has;

// This file's helpers and tests in a namespace of their own: the unity build (scripts/test.sh)
// compiles several test files as one, and their helpers must not meet.
namespace file_engine_test_conv {

namespace {

// ---- test data --------------------------------------------------------------------------------
std::vector<double> random_values(int64_t n, uint32_t seed) {
  std::mt19937 gen(seed);
  std::uniform_real_distribution<double> u(-1.0, 1.0);
  std::vector<double> v(n);
  for (double& x : v) x = u(gen);
  return v;
}

// A tensor of `shape` filled with uniform(-1, 1) values, and the same values as doubles.
struct Data {
  Tensor t;
  std::vector<double> v;
};
Data random_tensor(const Shape& shape, DType dt, uint32_t seed) {
  std::vector<double> v = random_values(shape_numel(shape), seed);
  Tensor t = Tensor::from_vector(v, shape).to(dt);
  return {t, t.to_vector<double>()};  // the values as rounded to dt
}

// ---- the naive references ---------------------------------------------------------------------
struct Dims {
  int64_t N, C, H, W, O, kh, kw;
  Conv2dParams p;
  int64_t Ho() const { return conv_out_size(H, kh, p.stride_h, p.pad_h, p.dil_h); }
  int64_t Wo() const { return conv_out_size(W, kw, p.stride_w, p.pad_w, p.dil_w); }
  Shape x() const { return {N, C, H, W}; }
  Shape w() const { return {O, C, kh, kw}; }
  Shape y() const { return {N, O, Ho(), Wo()}; }
  std::string str() const {
    return fmt::format("N={} C={} H={} W={} O={} k=({},{}) stride=({},{}) pad=({},{}) dil=({},{})",
                       N, C, H, W, O, kh, kw, p.stride_h, p.stride_w, p.pad_h, p.pad_w, p.dil_h,
                       p.dil_w);
  }
};

// Calls f(n, o, c, oh, ow, ki, kj, ih, iw) for every in-bounds term of the convolution sum.
template <class F>
void for_each_term(const Dims& d, F&& f) {
  const auto& p = d.p;
  for (int64_t n = 0; n < d.N; ++n)
    for (int64_t o = 0; o < d.O; ++o)
      for (int64_t oh = 0; oh < d.Ho(); ++oh)
        for (int64_t ow = 0; ow < d.Wo(); ++ow)
          for (int64_t c = 0; c < d.C; ++c)
            for (int64_t ki = 0; ki < d.kh; ++ki)
              for (int64_t kj = 0; kj < d.kw; ++kj) {
                int64_t ih = oh * p.stride_h - p.pad_h + ki * p.dil_h;
                int64_t iw = ow * p.stride_w - p.pad_w + kj * p.dil_w;
                if (ih >= 0 && ih < d.H && iw >= 0 && iw < d.W) f(n, o, c, oh, ow, ki, kj, ih, iw);
              }
}

// y[n][o][oh][ow] = bias[o] + sum x[n][c][ih][iw] * w[o][c][ki][kj]
std::vector<double> ref_conv2d(const Dims& d, const std::vector<double>& x,
                               const std::vector<double>& w, const std::vector<double>* bias) {
  const int64_t Ho = d.Ho(), Wo = d.Wo();
  std::vector<double> y(shape_numel(d.y()), 0.0);
  for_each_term(
      d, [&](auto n, auto o, auto c, auto oh, auto ow, auto ki, auto kj, auto ih, auto iw) {
        y[((n * d.O + o) * Ho + oh) * Wo + ow] +=
            x[((n * d.C + c) * d.H + ih) * d.W + iw] * w[((o * d.C + c) * d.kh + ki) * d.kw + kj];
      });
  if (bias)
    for (int64_t i = 0; i < (int64_t)y.size(); ++i) y[i] += (*bias)[(i / (Ho * Wo)) % d.O];
  return y;
}

// Gather form of the input gradient: for each input pixel, the output pixels whose window covers
// it.
std::vector<double> ref_backward_input(const Dims& d, const std::vector<double>& g,
                                       const std::vector<double>& w) {
  const auto& p = d.p;
  const int64_t Ho = d.Ho(), Wo = d.Wo();
  std::vector<double> gx(shape_numel(d.x()), 0.0);
  for (int64_t n = 0; n < d.N; ++n)
    for (int64_t c = 0; c < d.C; ++c)
      for (int64_t ih = 0; ih < d.H; ++ih)
        for (int64_t iw = 0; iw < d.W; ++iw) {
          double acc = 0;
          for (int64_t ki = 0; ki < d.kh; ++ki)
            for (int64_t kj = 0; kj < d.kw; ++kj) {
              int64_t th = ih + p.pad_h - ki * p.dil_h, tw = iw + p.pad_w - kj * p.dil_w;
              if (th < 0 || tw < 0 || th % p.stride_h || tw % p.stride_w) continue;
              int64_t oh = th / p.stride_h, ow = tw / p.stride_w;
              if (oh >= Ho || ow >= Wo) continue;
              for (int64_t o = 0; o < d.O; ++o)
                acc += g[((n * d.O + o) * Ho + oh) * Wo + ow] *
                       w[((o * d.C + c) * d.kh + ki) * d.kw + kj];
            }
          gx[((n * d.C + c) * d.H + ih) * d.W + iw] = acc;
        }
  return gx;
}

// gw[o][c][ki][kj] = sum over n, oh, ow of g[n][o][oh][ow] * x[n][c][ih][iw]
std::vector<double> ref_backward_weight(const Dims& d, const std::vector<double>& x,
                                        const std::vector<double>& g) {
  const int64_t Ho = d.Ho(), Wo = d.Wo();
  std::vector<double> gw(shape_numel(d.w()), 0.0);
  for_each_term(
      d, [&](auto n, auto o, auto c, auto oh, auto ow, auto ki, auto kj, auto ih, auto iw) {
        gw[((o * d.C + c) * d.kh + ki) * d.kw + kj] +=
            g[((n * d.O + o) * Ho + oh) * Wo + ow] * x[((n * d.C + c) * d.H + ih) * d.W + iw];
      });
  return gw;
}

// Scatter form of the transposed convolution: x (N,C,H,W), w (C,O,kh,kw) -> (N,O,Ho,Wo)
struct TDims {
  int64_t N, C, H, W, O, kh, kw;
  Conv2dParams p;
  int64_t oph = 0, opw = 0;
  int64_t Ho() const { return (H - 1) * p.stride_h - 2 * p.pad_h + p.dil_h * (kh - 1) + oph + 1; }
  int64_t Wo() const { return (W - 1) * p.stride_w - 2 * p.pad_w + p.dil_w * (kw - 1) + opw + 1; }
};
std::vector<double> ref_conv_transpose2d(const TDims& d, const std::vector<double>& x,
                                         const std::vector<double>& w,
                                         const std::vector<double>* bias) {
  const auto& p = d.p;
  const int64_t Ho = d.Ho(), Wo = d.Wo();
  std::vector<double> y(d.N * d.O * Ho * Wo, 0.0);
  for (int64_t n = 0; n < d.N; ++n)
    for (int64_t c = 0; c < d.C; ++c)
      for (int64_t h = 0; h < d.H; ++h)
        for (int64_t ww = 0; ww < d.W; ++ww)
          for (int64_t o = 0; o < d.O; ++o)
            for (int64_t ki = 0; ki < d.kh; ++ki)
              for (int64_t kj = 0; kj < d.kw; ++kj) {
                int64_t oh = h * p.stride_h - p.pad_h + ki * p.dil_h;
                int64_t ow = ww * p.stride_w - p.pad_w + kj * p.dil_w;
                if (oh < 0 || oh >= Ho || ow < 0 || ow >= Wo) continue;
                y[((n * d.O + o) * Ho + oh) * Wo + ow] +=
                    x[((n * d.C + c) * d.H + h) * d.W + ww] *
                    w[((c * d.O + o) * d.kh + ki) * d.kw + kj];
              }
  if (bias)
    for (int64_t i = 0; i < (int64_t)y.size(); ++i) y[i] += (*bias)[(i / (Ho * Wo)) % d.O];
  return y;
}

// ---- comparisons ------------------------------------------------------------------------------
// |got - ref| <= atol + rtol*|ref| everywhere; on failure names the worst index and the values.
void check_close(const Tensor& got_t, const Shape& shape, const std::vector<double>& ref,
                 double atol, double rtol, const std::string& what) {
  INFO(what);
  REQUIRE(got_t.shape() == shape);
  std::vector<double> got = got_t.to_vector<double>();
  REQUIRE(got.size() == ref.size());
  int64_t worst = -1, bad = 0;
  double worst_ratio = 0;
  for (size_t i = 0; i < ref.size(); ++i) {
    double ratio = std::abs(got[i] - ref[i]) / (atol + rtol * std::abs(ref[i]));
    if (!(ratio <= 1)) ++bad;
    if (!(ratio <= worst_ratio)) worst_ratio = ratio, worst = (int64_t)i;
  }
  if (bad > 0)
    FAIL_CHECK(
        fmt::format("{} of {} elements off; worst at flat index {}: got {:.10g}, want {:.10g}", bad,
                    ref.size(), worst, got[worst], ref[worst]));
  else
    CHECK(bad == 0);
}

// The tolerances for sums of K products of values in [-1, 1].
double atol_for(DType dt, int64_t K) { return dt == DType::f32 ? 2e-6 * (K + 8) : 1e-13 * (K + 8); }
constexpr double kRtol32 = 1e-5, kRtol64 = 1e-12;
double rtol_for(DType dt) { return dt == DType::f32 ? kRtol32 : kRtol64; }

bool same_bits(const Tensor& a, const Tensor& b) {
  return a.shape() == b.shape() && a.to_vector<double>() == b.to_vector<double>();
}

double dot(const std::vector<double>& a, const std::vector<double>& b) {
  double s = 0;
  for (size_t i = 0; i < a.size(); ++i) s += a[i] * b[i];
  return s;
}

// The sweep of small configurations: strides, pads, dilations, kernels (square and not), batches.
std::vector<Dims> sweep() {
  std::vector<Dims> out;
  const std::vector<std::pair<int64_t, int64_t>> kernels{{1, 1}, {3, 3}, {4, 4}, {2, 3}};
  for (int64_t s : {1, 2})
    for (int64_t pad : {0, 1, 2})
      for (int64_t dil : {1, 2})
        for (auto [kh, kw] : kernels)
          for (int64_t N : {1, 3}) {
            Dims d{N, 3, 9, 8, 4, kh, kw, Conv2dParams::make(s, pad, dil)};
            if (d.Ho() >= 1 && d.Wo() >= 1) out.push_back(d);
          }
  // non-square strides, pads and dilations
  out.push_back({2, 2, 10, 7, 3, 3, 2, {1, 2, 0, 1, 1, 1}});
  out.push_back({2, 2, 7, 10, 3, 2, 3, {2, 1, 1, 0, 1, 2}});
  out.push_back({1, 5, 11, 6, 2, 3, 3, {3, 1, 2, 0, 2, 1}});
  out.push_back({3, 1, 28, 28, 8, 4, 4, Conv2dParams::make(2, 1)});  // 28 -> 14
  out.push_back({2, 8, 14, 14, 6, 4, 4, Conv2dParams::make(2, 1)});  // 14 -> 7
  // at stride 1 im2col copies output rows with 16-lane (AVX-512) or 8-lane (AVX2) moves and a
  // masked tail: rows of exactly 16 values, and of 17; at stride 2 it gathers 16 or 8 at a time
  out.push_back({2, 3, 16, 16, 4, 3, 3, Conv2dParams::make(1, 1)});  // 16 -> 16
  out.push_back({1, 2, 9, 17, 3, 3, 3, Conv2dParams::make(1, 1)});   // width 17 -> 17
  out.push_back({2, 3, 32, 32, 4, 4, 4, Conv2dParams::make(2, 1)});  // 32 -> 16
  out.push_back({1, 2, 9, 34, 3, 3, 4, Conv2dParams::make(2, 1)});   // width 34 -> 17
  return out;
}

}  // namespace

// ---- conv_out_size ----------------------------------------------------------------------------
TEST_CASE("conv_out_size: formula and floor division of negative spans") {
  CHECK(conv_out_size(28, 4, 2, 1, 1) == 14);
  CHECK(conv_out_size(7, 3, 1, 1, 1) == 7);
  CHECK(conv_out_size(9, 3, 2, 0, 2) == 3);
  CHECK(conv_out_size(5, 5, 1, 0, 1) == 1);
  CHECK(conv_out_size(3, 5, 2, 0, 1) == 0);
  CHECK(conv_out_size(4, 5, 2, 0, 1) ==
        0);  // span -1: floor(-1/2) + 1 = 0, not 1 as with truncation
  CHECK(conv_out_size(2, 5, 1, 0, 1) <= 0);
  CHECK_THROWS_AS(conv_out_size(5, 3, 0, 0, 1), ValueError);
}

// ---- conv2d -----------------------------------------------------------------------------------
TEST_CASE("conv2d forward matches a direct loop (float32 and float64, sweep of configs)") {
  uint32_t seed = 1;
  int checked = 0;
  for (DType dt : {DType::f32, DType::f64})
    for (const Dims& d : sweep())
      for (bool with_bias : {false, true}) {
        Data x = random_tensor(d.x(), dt, seed++), w = random_tensor(d.w(), dt, seed++);
        Data b = random_tensor({d.O}, dt, seed++);
        Tensor y = conv2d(x.t, w.t, with_bias ? b.t : Tensor(), d.p);
        CHECK(y.dtype() == dt);
        auto ref = ref_conv2d(d, x.v, w.v, with_bias ? &b.v : nullptr);
        check_close(y, d.y(), ref, atol_for(dt, d.C * d.kh * d.kw), rtol_for(dt),
                    fmt::format("conv2d {} {} bias={}", dtype_name(dt), d.str(), with_bias));
        ++checked;
      }
  CHECK(checked > 300);
}

TEST_CASE("conv2d forward and gradients over several batch chunks") {
  // 8*9 rows x 128*144 columns of float64 is ~10.6 MiB of col per image, so the 32 MiB col buffer
  // takes the 4 images as a chunk of 3 and a chunk of 1 (both code paths, and the accumulation of
  // the weight gradient across chunks).
  Dims d{4, 8, 128, 144, 3, 3, 3, Conv2dParams::make(1, 1)};
  const DType dt = DType::f64;
  Data x = random_tensor(d.x(), dt, 11), w = random_tensor(d.w(), dt, 12);
  Data b = random_tensor({d.O}, dt, 13), g = random_tensor(d.y(), dt, 14);
  check_close(conv2d(x.t, w.t, b.t, d.p), d.y(), ref_conv2d(d, x.v, w.v, &b.v),
              atol_for(dt, d.C * 9), kRtol64, "forward");
  check_close(conv2d_backward_input(g.t, w.t, d.x(), d.p), d.x(), ref_backward_input(d, g.v, w.v),
              atol_for(dt, d.O * 9), kRtol64, "backward_input");
  check_close(conv2d_backward_weight(x.t, g.t, d.w(), d.p), d.w(), ref_backward_weight(d, x.v, g.v),
              atol_for(dt, d.N * d.H * d.W), kRtol64, "backward_weight");
}

TEST_CASE("conv2d on non-contiguous views equals conv2d on contiguous copies") {
  Dims d{2, 3, 9, 8, 4, 3, 3, Conv2dParams::make(2, 1)};
  // input stored NHWC and permuted to NCHW
  Tensor nhwc = random_tensor({d.N, d.H, d.W, d.C}, DType::f32, 21).t;
  Tensor x = nhwc.permute({0, 3, 1, 2});
  REQUIRE(!x.is_contiguous());
  // weight as a transposed view of an (C,O,kh,kw) tensor
  Tensor w = random_tensor({d.C, d.O, d.kh, d.kw}, DType::f32, 22).t.transpose(0, 1);
  REQUIRE(!w.is_contiguous());
  // bias as a strided slice
  Tensor b = random_tensor({2 * d.O}, DType::f32, 23).t.slice(0, 0, 2 * d.O, 2);
  Tensor y = conv2d(x, w, b, d.p);
  CHECK(same_bits(y, conv2d(x.contiguous(), w.contiguous(), b.contiguous(), d.p)));
  const std::vector<double> bv = b.to_vector<double>();  // row-major values of the views
  check_close(y, d.y(), ref_conv2d(d, x.to_vector<double>(), w.to_vector<double>(), &bv),
              atol_for(DType::f32, 27), kRtol32, "permuted input");

  // a sliced window with an offset and a step along W
  Tensor big = random_tensor({3, 4, 12, 20}, DType::f64, 24).t;
  Tensor xs = big.slice(0, 1, 3).slice(1, 1, 4).slice(2, 2, 11).slice(3, 3, 19, 2);  // (2,3,9,8)
  REQUIRE(xs.shape() == d.x());
  Tensor w64 = w.to(DType::f64);
  Tensor g = random_tensor(d.y(), DType::f64, 25).t;
  CHECK(same_bits(conv2d(xs, w64, Tensor(), d.p), conv2d(xs.contiguous(), w64, Tensor(), d.p)));
  CHECK(same_bits(conv2d_backward_weight(xs, g, d.w(), d.p),
                  conv2d_backward_weight(xs.contiguous(), g, d.w(), d.p)));
  Tensor gt =
      g.permute({0, 2, 3, 1}).contiguous().permute({0, 3, 1, 2});  // same values, NHWC memory
  REQUIRE(!gt.is_contiguous());
  CHECK(same_bits(conv2d_backward_input(gt, w64, d.x(), d.p),
                  conv2d_backward_input(g, w64, d.x(), d.p)));
}

TEST_CASE("conv2d results do not depend on the thread count (1, 2, 3) or the FMA path") {
  Dims d{6, 8, 20, 20, 8, 3, 3, Conv2dParams::make(1, 1)};
  Data x = random_tensor(d.x(), DType::f32, 31), w = random_tensor(d.w(), DType::f32, 32);
  Data g = random_tensor(d.y(), DType::f32, 33);
  auto run = [&] {
    return std::vector<Tensor>{conv2d(x.t, w.t, Tensor(), d.p),
                               conv2d_backward_input(g.t, w.t, d.x(), d.p),
                               conv2d_backward_weight(x.t, g.t, d.w(), d.p),
                               conv_transpose2d(g.t, w.t, Tensor(), d.p)};
  };
  const int saved = omp_get_max_threads();
  const Isa saved_isa = active_isa();
  std::vector<std::vector<Tensor>> fma_paths;
  for (Isa isa : supported_isas()) {
    CAPTURE(isa_name(isa));
    set_isa(isa);
    omp_set_num_threads(1);
    auto one = run();
    for (int t : {2, 3}) {
      omp_set_num_threads(t);
      auto other = run();
      for (size_t i = 0; i < one.size(); ++i) {
        CAPTURE(t);
        CAPTURE(i);
        CHECK(same_bits(one[i], other[i]));
      }
    }
    if (isa != Isa::generic) fma_paths.push_back(one);
  }
  omp_set_num_threads(saved);
  set_isa(saved_isa);
  for (size_t p = 1; p < fma_paths.size(); ++p)
    for (size_t i = 0; i < fma_paths[0].size(); ++i) CHECK(same_bits(fma_paths[0][i], fma_paths[p][i]));
}

TEST_CASE("conv2d: the packed lowering gives the same bits as im2col (every gradient, every ISA path)") {
  // The packed lowering reads im2col's matrix in place (engine/cpu/conv.cpp); the GEMM sees the
  // same panels, so every result must be bitwise the one of the im2col path. Strides 1 and 2,
  // padding 0 (x read directly) to 2, dilation, 1x1 and 7x7 kernels, rows of 16 and 17 positions.
  const Dims cases[] = {
      {6, 8, 20, 20, 8, 3, 3, Conv2dParams::make(1, 1)},  {3, 5, 16, 17, 7, 1, 1, Conv2dParams::make(1, 0)},
      {4, 3, 32, 32, 9, 4, 4, Conv2dParams::make(2, 1)},  {2, 4, 11, 13, 5, 7, 7, Conv2dParams::make(1, 3)},
      {3, 6, 12, 10, 4, 3, 3, Conv2dParams::make(2, 0)},  {2, 3, 15, 14, 4, 3, 3, Conv2dParams{1, 1, 2, 2, 2, 2}},
      {5, 16, 8, 8, 33, 4, 4, Conv2dParams::make(2, 1)},  {2, 2, 9, 34, 3, 3, 2, Conv2dParams{2, 1, 1, 0, 1, 1}},
  };
  gv::test::RuntimeGuard guard;
  for (const Dims& d : cases)
    for (DType dt : {DType::f32, DType::f64}) {
      INFO(d.str() << " " << dtype_name(dt));
      Data x = random_tensor(d.x(), dt, 41), w = random_tensor(d.w(), dt, 42);
      Data b = random_tensor({d.O}, dt, 43), g = random_tensor(d.y(), dt, 44);
      auto run = [&] {
        return std::vector<Tensor>{conv2d(x.t, w.t, b.t, d.p), conv2d_backward_input(g.t, w.t, d.x(), d.p),
                                   conv2d_backward_weight(x.t, g.t, d.w(), d.p)};
      };
      for (Isa isa : supported_isas()) {
        CAPTURE(isa_name(isa));
        set_isa(isa);
        set_conv_lowering(ConvLowering::im2col);
        const std::vector<Tensor> want = run();
        set_conv_lowering(ConvLowering::packed);
        const std::vector<Tensor> got = run();
        for (size_t i = 0; i < want.size(); ++i) {
          CAPTURE(i);
          CHECK(same_bits(want[i], got[i]));
        }
      }
    }
}

TEST_CASE("masked conv2d (the first taps in raster order) matches the direct loops with the dead taps zero") {
  // The references run the whole kernel with the dead taps' weights set to zero, which is what a
  // masked convolution means; ours never reads those taps (K = C*taps). The weight gradient must
  // be zero at the dead taps, exactly. Both lowerings, float32 and float64; PixelCNN's 3x3 B (5
  // taps) and 7x7 A (24) at padding k/2, a rectangular kernel, stride 2 with dilation, one tap.
  struct Case {
    Dims d;
    int64_t taps;
  };
  const Case cases[] = {
      {{3, 4, 9, 8, 6, 3, 3, Conv2dParams::make(1, 1)}, 5},   {{2, 1, 12, 11, 5, 7, 7, Conv2dParams::make(1, 3)}, 24},
      {{2, 3, 10, 9, 4, 5, 3, {1, 1, 2, 1, 1, 1}}, 7},         {{2, 3, 13, 12, 4, 3, 3, Conv2dParams{2, 2, 2, 1, 2, 1}}, 4},
      {{2, 5, 7, 7, 3, 3, 3, Conv2dParams::make(1, 1)}, 1},   {{2, 2, 6, 6, 3, 3, 3, Conv2dParams::make(1, 1)}, 9},
  };
  gv::test::RuntimeGuard guard;
  for (const Case& c : cases)
    for (DType dt : {DType::f32, DType::f64})
      for (ConvLowering lowering : {ConvLowering::packed, ConvLowering::im2col}) {
        const Dims& d = c.d;
        INFO(d.str() << " taps " << c.taps << " " << dtype_name(dt) << (lowering == ConvLowering::packed ? " packed" : " im2col"));
        set_conv_lowering(lowering);
        Data x = random_tensor(d.x(), dt, 51), w = random_tensor(d.w(), dt, 52);
        Data b = random_tensor({d.O}, dt, 53), g = random_tensor(d.y(), dt, 54);
        std::vector<double> wz = w.v;  // the weights the references see: the dead taps zero
        const int64_t all = d.kh * d.kw;
        for (size_t i = 0; i < wz.size(); ++i)
          if (int64_t(i) % all >= c.taps) wz[i] = 0;
        const int64_t K = d.C * c.taps;
        check_close(conv2d(x.t, w.t, b.t, d.p, c.taps), d.y(), ref_conv2d(d, x.v, wz, &b.v), atol_for(dt, K),
                    rtol_for(dt), "forward");
        check_close(conv2d_backward_input(g.t, w.t, d.x(), d.p, c.taps), d.x(), ref_backward_input(d, g.v, wz),
                    atol_for(dt, d.O * c.taps), rtol_for(dt), "backward_input");
        const Tensor gw = conv2d_backward_weight(x.t, g.t, d.w(), d.p, c.taps);
        std::vector<double> want = ref_backward_weight(d, x.v, g.v);
        for (size_t i = 0; i < want.size(); ++i)
          if (int64_t(i) % all >= c.taps) want[i] = 0;
        check_close(gw, d.w(), want, atol_for(dt, d.N * d.Ho() * d.Wo()), rtol_for(dt), "backward_weight");
        const std::vector<double> got = gw.to_vector<double>();
        for (size_t i = 0; i < got.size(); ++i)
          if (int64_t(i) % all >= c.taps) REQUIRE(got[i] == 0.0);
      }
}

TEST_CASE("masked conv2d: a tap count outside [1, kh*kw] names the op, the kernel and the count") {
  Tensor x = Tensor::zeros({1, 2, 5, 5}), w = Tensor::zeros({3, 2, 3, 3}), g = Tensor::zeros({1, 3, 5, 5});
  const Conv2dParams p = Conv2dParams::make(1, 1);
  for (int64_t taps : {int64_t(0), int64_t(10), int64_t(-2)}) {
    CAPTURE(taps);
    const std::string want = fmt::format("taps must be in [1, 9] (the 3x3 kernel of weight [3, 2, 3, 3]) or kAllTaps, got {}", taps);
    CHECK(has(error_of<ValueError>([&] { conv2d(x, w, Tensor(), p, taps); }), "conv2d: " + want));
    CHECK(has(error_of<ValueError>([&] { conv2d_backward_input(g, w, x.shape(), p, taps); }), "conv2d_backward_input: " + want));
    CHECK(has(error_of<ValueError>([&] { conv2d_backward_weight(x, g, w.shape(), p, taps); }), "conv2d_backward_weight: " + want));
  }
}

TEST_CASE("conv2d and conv_transpose2d: an image's output does not depend on its batch (1, 5, 6, 100)") {
  // W2's second encoder convolution and first decoder one, at a reduced channel count
  const Conv2dParams p = Conv2dParams::make(2, 1);
  Data x = random_tensor({100, 16, 14, 14}, DType::f32, 41), w = random_tensor({32, 16, 4, 4}, DType::f32, 42);
  Data xt = random_tensor({100, 32, 7, 7}, DType::f32, 43), b = random_tensor({32}, DType::f32, 44);
  Data bt = random_tensor({16}, DType::f32, 45);
  const Isa saved_isa = active_isa();
  for (Isa isa : supported_isas()) {
    CAPTURE(isa_name(isa));
    set_isa(isa);
    const Tensor full = conv2d(x.t, w.t, b.t, p), fullt = conv_transpose2d(xt.t, w.t, bt.t, p);
    const Tensor fullg = conv2d_backward_input(xt.t, w.t, x.t.shape(), p);
    for (int64_t batch : {1, 5, 6, 100})
      for (int64_t start : {int64_t(0), 100 - batch}) {
        CAPTURE(batch);
        CAPTURE(start);
        const Tensor xs = x.t.slice(0, start, start + batch), xts = xt.t.slice(0, start, start + batch);
        CHECK(same_bits(conv2d(xs, w.t, b.t, p), full.slice(0, start, start + batch).contiguous()));
        CHECK(same_bits(conv_transpose2d(xts, w.t, bt.t, p), fullt.slice(0, start, start + batch).contiguous()));
        CHECK(same_bits(conv2d_backward_input(xts, w.t, xs.shape(), p),
                        fullg.slice(0, start, start + batch).contiguous()));
      }
  }
  set_isa(saved_isa);
}

// ---- gradients --------------------------------------------------------------------------------
TEST_CASE("conv2d_backward_input and conv2d_backward_weight match direct loops") {
  uint32_t seed = 1000;
  for (DType dt : {DType::f32, DType::f64})
    for (const Dims& d : sweep()) {
      Data x = random_tensor(d.x(), dt, seed++), w = random_tensor(d.w(), dt, seed++);
      Data g = random_tensor(d.y(), dt, seed++);
      const std::string tag = fmt::format("{} {}", dtype_name(dt), d.str());
      check_close(conv2d_backward_input(g.t, w.t, d.x(), d.p), d.x(),
                  ref_backward_input(d, g.v, w.v), atol_for(dt, d.O * d.kh * d.kw), rtol_for(dt),
                  "backward_input " + tag);
      check_close(conv2d_backward_weight(x.t, g.t, d.w(), d.p), d.w(),
                  ref_backward_weight(d, x.v, g.v), atol_for(dt, d.N * d.Ho() * d.Wo()),
                  rtol_for(dt), "backward_weight " + tag);
    }
}

TEST_CASE("conv2d adjoint identity <conv2d(x,w), g> = <x, gx> = <w, gw> in float64") {
  uint32_t seed = 2000;
  for (const Dims& d : sweep()) {
    Data x = random_tensor(d.x(), DType::f64, seed++), w = random_tensor(d.w(), DType::f64, seed++);
    Data g = random_tensor(d.y(), DType::f64, seed++);
    double lhs = dot(conv2d(x.t, w.t, Tensor(), d.p).to_vector<double>(), g.v);
    double via_x = dot(x.v, conv2d_backward_input(g.t, w.t, d.x(), d.p).to_vector<double>());
    double via_w = dot(w.v, conv2d_backward_weight(x.t, g.t, d.w(), d.p).to_vector<double>());
    INFO(d.str());
    double tol =
        1e-12 * (1 + std::abs(lhs)) * std::sqrt((double)shape_numel(d.y()) * d.C * d.kh * d.kw);
    CHECK(std::abs(lhs - via_x) <= tol);
    CHECK(std::abs(lhs - via_w) <= tol);
  }
}

// ---- conv_transpose2d -------------------------------------------------------------------------
TEST_CASE("conv_transpose2d matches a direct scatter loop") {
  std::vector<TDims> cases{
      {2, 8, 7, 7, 4, 4, 4, Conv2dParams::make(2, 1)},    // 7 -> 14, a VAE decoder's upsampling
      {2, 4, 14, 14, 1, 4, 4, Conv2dParams::make(2, 1)},  // 14 -> 28
      {1, 3, 5, 6, 2, 3, 3, Conv2dParams::make(1, 0)},
      {3, 3, 5, 6, 2, 3, 3, Conv2dParams::make(1, 1)},
      {2, 3, 4, 5, 2, 3, 3, Conv2dParams::make(2, 1), 1, 1},  // output_padding 1
      {2, 3, 4, 5, 2, 3, 2, {2, 3, 1, 0, 1, 1}, 1, 2},        // non-square, output_padding (1, 2)
      {2, 2, 5, 5, 3, 3, 3, Conv2dParams::make(1, 1, 2), 1, 0},  // output_padding < dilation
      {2, 2, 6, 4, 3, 2, 3, {3, 2, 2, 1, 2, 1}},
      {1, 2, 3, 3, 2, 1, 1, Conv2dParams::make(3, 0)},  // 1x1 kernel, stride 3: gaps of zeros
  };
  uint32_t seed = 3000;
  for (DType dt : {DType::f32, DType::f64})
    for (const TDims& d : cases)
      for (bool with_bias : {false, true}) {
        Data x = random_tensor({d.N, d.C, d.H, d.W}, dt, seed++);
        Data w = random_tensor({d.C, d.O, d.kh, d.kw}, dt, seed++);
        Data b = random_tensor({d.O}, dt, seed++);
        Tensor y = conv_transpose2d(x.t, w.t, with_bias ? b.t : Tensor(), d.p, d.oph, d.opw);
        auto ref = ref_conv_transpose2d(d, x.v, w.v, with_bias ? &b.v : nullptr);
        check_close(
            y, {d.N, d.O, d.Ho(), d.Wo()}, ref, atol_for(dt, d.C * d.kh * d.kw), rtol_for(dt),
            fmt::format("conv_transpose2d {} N={} C={} {}x{} O={} k=({},{}) out_pad=({},{}) "
                        "bias={}",
                        dtype_name(dt), d.N, d.C, d.H, d.W, d.O, d.kh, d.kw, d.oph, d.opw,
                        with_bias));
      }
  // the 7 -> 14 -> 28 shapes of the decoder
  Tensor z = Tensor::zeros({5, 64, 7, 7});
  Tensor h = conv_transpose2d(z, Tensor::zeros({64, 32, 4, 4}), Tensor::ones({32}),
                              Conv2dParams::make(2, 1));
  CHECK(h.shape() == Shape{5, 32, 14, 14});
  CHECK(h.to_vector<float>()[123] == 1.0f);
  CHECK(conv_transpose2d(h, Tensor::zeros({32, 1, 4, 4}), Tensor(), Conv2dParams::make(2, 1))
            .shape() == Shape{5, 1, 28, 28});
}

TEST_CASE("conv_transpose2d is conv2d_backward_input with the channel roles swapped") {
  Dims d{3, 6, 14, 14, 5, 4, 4, Conv2dParams::make(2, 1)};  // conv2d (3,6,14,14) -> (3,5,7,7)
  Data g = random_tensor(d.y(), DType::f64, 41), w = random_tensor(d.w(), DType::f64, 42);
  // conv2d's weight (O,C,kh,kw) is conv_transpose2d's (C_in = O, C_out = C, kh, kw)
  Tensor up = conv_transpose2d(g.t, w.t, Tensor(), d.p);
  CHECK(same_bits(up, conv2d_backward_input(g.t, w.t, d.x(), d.p)));
}

// ---- errors -----------------------------------------------------------------------------------
TEST_CASE("conv2d raises typed errors that name the op and the shapes") {
  auto p = Conv2dParams::make(1, 0);
  Tensor x = Tensor::zeros({2, 3, 8, 8}), w = Tensor::zeros({4, 3, 3, 3});

  std::string m = error_of<ShapeError>([&] {
    conv2d(x, Tensor::zeros({4, 2, 3, 3}), Tensor(), p);
  });
  CHECK(has(m, "conv2d: input [2, 3, 8, 8] has 3 channels but weight [4, 2, 3, 3] expects 2"));

  m = error_of<ShapeError>([&] { conv2d(Tensor::zeros({3, 8, 8}), w, Tensor(), p); });
  CHECK(has(m, "conv2d"));
  CHECK(has(m, "[3, 8, 8]"));
  m = error_of<ShapeError>([&] { conv2d(x, Tensor::zeros({4, 27}), Tensor(), p); });
  CHECK(has(m, "[4, 27]"));

  m = error_of<ShapeError>([&] { conv2d(x, w, Tensor::zeros({5}), p); });
  CHECK(has(m, "conv2d"));
  CHECK(has(m, "bias [5]"));
  CHECK(has(m, "[4, 3, 3, 3]"));
  CHECK(has(error_of<ShapeError>([&] { conv2d(x, w, Tensor::zeros({4, 1}), p); }), "bias [4, 1]"));

  CHECK(has(error_of<ValueError>([&] { conv2d(x, w, Tensor(), Conv2dParams::make(0, 0)); }),
            "stride"));
  CHECK(has(error_of<ValueError>([&] { conv2d(x, w, Tensor(), {1, 1, 0, 0, 1, 0}); }), "dilation"));
  CHECK(has(error_of<ValueError>([&] { conv2d(x, w, Tensor(), {1, 1, -1, 0, 1, 1}); }), "padding"));

  m = error_of<ShapeError>([&] { conv2d(Tensor::zeros({1, 3, 2, 8}), w, Tensor(), p); });
  CHECK(has(m, "conv2d"));
  CHECK(has(m, "[1, 3, 2, 8]"));
  CHECK(has(m, "0x6"));
  // a span of -1 with stride 2 must not round up to a 1-pixel output
  m = error_of<ShapeError>([&] {
    conv2d(Tensor::zeros({1, 3, 4, 4}), Tensor::zeros({4, 3, 5, 5}), Tensor(),
           Conv2dParams::make(2, 0));
  });
  CHECK(has(m, "0x0"));

  m = error_of<DTypeError>([&] { conv2d(x, w.to(DType::f64), Tensor(), p); });
  CHECK(has(m, "conv2d"));
  CHECK(has(m, "float64[4, 3, 3, 3]"));
  CHECK(
      has(error_of<DTypeError>([&] { conv2d(x, w, Tensor::zeros({4}, DType::f64), p); }), "bias"));
  CHECK(has(error_of<DTypeError>([&] { conv2d(x.to(DType::i64), w.to(DType::i64), Tensor(), p); }),
            "int64"));
  CHECK(has(error_of<ValueError>([&] { conv2d(Tensor(), w, Tensor(), p); }), "conv2d"));

  // a CPU operand beside a CUDA one is refused, naming both devices
  if (cuda_available()) {
    m = error_of<DeviceError>([&] { conv2d(x.to(Device::cuda()), w, Tensor(), p); });
    CHECK(has(m, "conv2d"));
  }
}

TEST_CASE("conv2d gradients and conv_transpose2d raise typed errors") {
  auto p = Conv2dParams::make(1, 1);
  Tensor w = Tensor::zeros({4, 3, 3, 3}), g = Tensor::zeros({2, 4, 8, 8}),
         x = Tensor::zeros({2, 3, 8, 8});

  std::string m = error_of<ShapeError>([&] {
    conv2d_backward_input(Tensor::zeros({2, 4, 7, 8}), w, x.shape(), p);
  });
  CHECK(has(m, "conv2d_backward_input"));
  CHECK(has(m, "gout [2, 4, 7, 8]"));
  CHECK(has(m, "[2, 4, 8, 8]"));
  m = error_of<ShapeError>([&] { conv2d_backward_input(g, w, {2, 5, 8, 8}, p); });
  CHECK(has(m,
            "conv2d_backward_input: input [2, 5, 8, 8] has 5 channels but weight [4, 3, 3, 3] "
            "expects 3"));
  CHECK(has(error_of<ShapeError>([&] { conv2d_backward_input(g, w, {2, 3, 8}, p); }), "[2, 3, 8]"));
  CHECK(has(error_of<DTypeError>([&] { conv2d_backward_input(g.to(DType::f64), w, x.shape(), p); }),
            "conv2d_backward_input"));

  m = error_of<ShapeError>([&] {
    conv2d_backward_weight(x, Tensor::zeros({3, 4, 8, 8}), w.shape(), p);
  });
  CHECK(has(m, "conv2d_backward_weight"));
  CHECK(has(m, "gout [3, 4, 8, 8]"));
  m = error_of<ShapeError>([&] { conv2d_backward_weight(x, g, {4, 2, 3, 3}, p); });
  CHECK(has(m, "has 3 channels but weight [4, 2, 3, 3] expects 2"));
  CHECK(has(error_of<ValueError>([&] {
              conv2d_backward_weight(x, g, w.shape(), {0, 1, 1, 1, 1, 1});
            }),
            "stride"));

  // conv_transpose2d: x (N,C,H,W), w (C,O,kh,kw)
  Tensor xt = Tensor::zeros({2, 4, 7, 7}), wt = Tensor::zeros({4, 3, 4, 4});
  auto p2 = Conv2dParams::make(2, 1);
  m = error_of<ShapeError>([&] {
    conv_transpose2d(xt, Tensor::zeros({5, 3, 4, 4}), Tensor(), p2);
  });
  CHECK(has(
      m, "conv_transpose2d: input [2, 4, 7, 7] has 4 channels but weight [5, 3, 4, 4] expects 5"));
  m = error_of<ShapeError>([&] { conv_transpose2d(xt, wt, Tensor::zeros({4}), p2); });
  CHECK(has(m, "conv_transpose2d"));
  CHECK(has(m, "bias [4]"));
  m = error_of<ValueError>([&] { conv_transpose2d(xt, wt, Tensor(), p2, 2, 0); });
  CHECK(has(m, "conv_transpose2d"));
  CHECK(has(m, "output padding (2, 0)"));
  CHECK(has(error_of<ValueError>([&] { conv_transpose2d(xt, wt, Tensor(), p2, 0, -1); }),
            "output padding"));
  CHECK_NOTHROW(conv_transpose2d(xt, wt, Tensor(), p2, 1, 1));
  m = error_of<ShapeError>([&] {
    conv_transpose2d(Tensor::zeros({1, 4, 1, 1}), Tensor::zeros({4, 3, 1, 1}), Tensor(),
                     Conv2dParams::make(1, 1));
  });
  CHECK(has(m, "conv_transpose2d"));
  CHECK(has(m, "-1x-1"));
  CHECK(has(error_of<ShapeError>([&] {
              conv_transpose2d(Tensor::zeros({4, 7, 7}), wt, Tensor(), p2);
            }),
            "[4, 7, 7]"));
  CHECK(has(error_of<DTypeError>([&] { conv_transpose2d(xt.to(DType::f64), wt, Tensor(), p2); }),
            "conv_transpose2d"));
}

}  // namespace file_engine_test_conv

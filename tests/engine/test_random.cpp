// test_random.cpp: Philox 4x32-10 against the Random123 known answers, the element -> word mapping
// of each draw, reproducibility (seeds, counters, thread counts) and the statistics of uniform,
// normal, bernoulli and randperm. Statistical bounds are 5 sigma of the sampling error.
#include <doctest/doctest.h>
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <numbers>
#include <string>
#include <vector>

#include "engine/random.h"
#include "tests/test_util.h"

using namespace gv;

// This file's helpers and tests in a namespace of their own: the unity build (scripts/test.sh)
// compiles several test files as one, and their helpers must not meet.
namespace file_engine_test_random {

namespace {

using gv::test::error_of;

std::array<uint32_t, 4> philox(std::array<uint32_t, 4> ctr, uint32_t k0, uint32_t k1) {
  Philox::block(ctr.data(), k0, k1);
  return ctr;
}

struct Moments {
  double mean = 0, var = 0;
};
Moments moments(const std::vector<double>& x) {
  Moments m;
  for (double v : x) m.mean += v;
  m.mean /= (double)x.size();
  for (double v : x) m.var += (v - m.mean) * (v - m.mean);
  m.var /= (double)x.size();
  return m;
}

// Runs f with OpenMP limited to `threads`, restoring the previous limit after.
template <class F>
auto with_threads(int threads, F&& f) {
  int before = omp_get_max_threads();
  omp_set_num_threads(threads);
  auto r = f();
  omp_set_num_threads(before);
  return r;
}

}  // namespace

TEST_CASE("Philox 4x32-10 matches the Random123 known-answer vectors") {
  using W = std::array<uint32_t, 4>;
  CHECK(philox({0, 0, 0, 0}, 0, 0) == W{0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8});
  CHECK(philox({0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff}, 0xffffffff, 0xffffffff) ==
        W{0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd});
  CHECK(philox({0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344}, 0xa4093822, 0x299f31d0) ==
        W{0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1});
}

TEST_CASE("Philox Generator::block packs the counter and the seed into the 128-bit block") {
  using W = std::array<uint32_t, 4>;
  CHECK(Generator(0).block(0) == W{0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8});
  // counter = (ctr low, ctr high, 0, 0), key = (seed low, seed high)
  Generator g(0x299f31d0a4093822ull);
  CHECK(g.block(0x85a308d3243f6a88ull) == philox({0x243f6a88, 0x85a308d3, 0, 0}, 0xa4093822, 0x299f31d0));
  CHECK(g.block(1) != g.block(2));
  CHECK(Generator(1).block(7) != Generator(1ull << 32).block(7));  // both seed halves count
  CHECK(g.block(5) == g.block(5));  // pure: no state changes
  CHECK(g.offset() == 0);
}

TEST_CASE("to_unit maps 32 bits into (0, 1]") {
  CHECK(Philox::to_unit(0) > 0.0);
  CHECK(Philox::to_unit(0xffffffffu) == 1.0);
  CHECK(Philox::to_unit(0x7fffffffu) == 0.5);
}

TEST_CASE("random uniform: element i is word i%4 of block start + i/4") {
  Generator g(42);
  g.set_state(42, 10);
  Tensor x = uniform({3, 3}, g, -2.0, 3.0, DType::f64);
  CHECK(x.shape() == Shape{3, 3});
  CHECK(x.dtype() == DType::f64);
  CHECK(g.offset() == 10 + 3);  // ceil(9 / 4) blocks
  std::vector<double> v = x.to_vector<double>();
  for (int64_t i = 0; i < 9; ++i) {
    uint32_t w = Generator(42).block(10 + i / 4)[i % 4];
    CHECK(v[i] == doctest::Approx(-2.0 + 5.0 * Philox::to_unit(w)).epsilon(1e-15));
  }
}

TEST_CASE("random normal: elements 2j, 2j+1 are Box-Muller of one word pair") {
  Generator g(7);
  Tensor x = normal({7}, g, 1.0, 2.0, DType::f64);
  CHECK(g.offset() == 2);
  std::vector<double> v = x.to_vector<double>();
  for (int64_t i = 0; i < 7; ++i) {
    auto w = Generator(7).block(i / 4);
    int a = (int)(i % 4) / 2 * 2;  // first word of the pair
    double r = std::sqrt(-2.0 * std::log(Philox::to_unit(w[a])));
    double th = 2 * std::numbers::pi * Philox::to_unit(w[a + 1]);
    double z = i % 2 == 0 ? r * std::cos(th) : r * std::sin(th);
    CHECK(v[i] == doctest::Approx(1.0 + 2.0 * z).epsilon(1e-12));
  }
}

TEST_CASE("random: the same seed gives identical draws, different seeds differ") {
  for (DType dt : {DType::f32, DType::f64}) {
    Generator a(123), b(123), c(124);
    CHECK(uniform({1000}, a, 0, 1, dt).to_vector<double>() == uniform({1000}, b, 0, 1, dt).to_vector<double>());
    CHECK(normal({1000}, a, 0, 1, dt).to_vector<double>() == normal({1000}, b, 0, 1, dt).to_vector<double>());
    Generator a2(123);
    std::vector<double> ua = uniform({1000}, a2, 0, 1, dt).to_vector<double>();
    std::vector<double> uc = uniform({1000}, c, 0, 1, dt).to_vector<double>();
    int64_t same = 0;
    for (size_t i = 0; i < ua.size(); ++i) same += ua[i] == uc[i];
    CHECK(same < 5);
  }
}

TEST_CASE("random: consecutive draws differ and advance the counter by ceil(n/4)") {
  Generator g(5);
  std::vector<double> a = uniform({10}, g).to_vector<double>();
  CHECK(g.offset() == 3);
  std::vector<double> b = uniform({10}, g).to_vector<double>();
  CHECK(g.offset() == 6);
  CHECK(a != b);
  normal({2, 4}, g);
  CHECK(g.offset() == 8);
  bernoulli(Tensor::full({5}, 0.5), g);
  CHECK(g.offset() == 10);
  uniform({0}, g);  // an empty draw uses nothing
  CHECK(g.offset() == 10);
  randperm(6, g);  // 5 swaps, two per block
  CHECK(g.offset() == 13);
  // resuming from a saved state repeats the draw
  Generator h(0);
  h.set_state(5, 3);
  CHECK(uniform({10}, h).to_vector<double>() == b);
}

TEST_CASE("random draws do not depend on the OpenMP thread count") {
  const Shape shape{1 << 20};
  auto draw = [&] {
    Generator g(2024);
    std::vector<double> u = uniform(shape, g, -1, 1).to_vector<double>();
    std::vector<double> z = normal(shape, g, 0, 1, DType::f64).to_vector<double>();
    Tensor p = Tensor::full(shape, 0.3, DType::f32);
    std::vector<double> bern = bernoulli(p, g).to_vector<double>();
    u.insert(u.end(), z.begin(), z.end());
    u.insert(u.end(), bern.begin(), bern.end());
    return u;
  };
  const int before = omp_get_max_threads();
  std::vector<double> one = with_threads(1, draw);
  std::vector<double> two = with_threads(2, draw);
  std::vector<double> four = with_threads(4, draw);
  CHECK(omp_get_max_threads() == before);
  CHECK(one.size() == size_t(3) << 20);
  CHECK(one == two);
  CHECK(one == four);
}

TEST_CASE("random uniform: mean and variance within 5 sigma, float32 inside [lo, hi]") {
  const int64_t n = 1000000;
  Generator g(11);
  const double lo = -3, hi = 5, w = hi - lo;
  std::vector<double> x = uniform({n}, g, lo, hi, DType::f64).to_vector<double>();
  Moments m = moments(x);
  // mean (lo+hi)/2, var w^2/12; sd of the sample mean w/sqrt(12 n), of the sample variance
  // w^2 sqrt((1/80 - 1/144) / n)
  CHECK(std::abs(m.mean - 1.0) < 5 * w / std::sqrt(12.0 * n));
  CHECK(std::abs(m.var - w * w / 12) < 5 * w * w * std::sqrt((1.0 / 80 - 1.0 / 144) / n));
  CHECK(*std::min_element(x.begin(), x.end()) >= lo);
  CHECK(*std::max_element(x.begin(), x.end()) <= hi);

  // float32 rounding must not step outside [lo, hi], even when the bounds are not floats:
  // with ulp = 2^-23, [1 + 0.4 ulp, 1 + 2.6 ulp] holds only the floats 1 + ulp and 1 + 2 ulp,
  // and about 9% of the draws would round to 1 or 1 + 3 ulp
  const double ulp = std::ldexp(1.0, -23);
  for (auto [a, b] : {std::pair{0.0, 1.0}, std::pair{1 + 0.4 * ulp, 1 + 2.6 * ulp},
                      std::pair{-0.3, 0.7}, std::pair{2.0, 2.0}}) {
    std::vector<float> f = uniform({n}, g, a, b, DType::f32).to_vector<float>();
    CHECK((double)*std::min_element(f.begin(), f.end()) >= a);
    CHECK((double)*std::max_element(f.begin(), f.end()) <= b);
  }
}

TEST_CASE("random normal: mean, variance and the 2-sigma tail within 5 sigma") {
  const int64_t n = 1000000;
  Generator g(12);
  const double mu = 2, sd = 3;
  for (DType dt : {DType::f32, DType::f64}) {
    std::vector<double> x = normal({1000, 1000}, g, mu, sd, dt).to_vector<double>();
    Moments m = moments(x);
    CHECK(std::abs(m.mean - mu) < 5 * sd / std::sqrt((double)n));
    CHECK(std::abs(m.var - sd * sd) < 5 * sd * sd * std::sqrt(2.0 / n));  // var of s^2: 2 sd^4 / n
    int64_t tail = 0, above = 0;
    for (double v : x) {
      tail += std::abs(v - mu) > 2 * sd;
      above += v > mu;
    }
    const double p2 = 0.04550026389635842;  // P(|z| > 2)
    CHECK(std::abs((double)tail / n - p2) < 5 * std::sqrt(p2 * (1 - p2) / n));
    CHECK(std::abs((double)above / n - 0.5) < 5 * std::sqrt(0.25 / n));  // symmetry
  }
  // successive elements are uncorrelated (pairs share one block)
  std::vector<double> z = normal({n}, g, 0, 1, DType::f64).to_vector<double>();
  double c = 0;
  for (int64_t i = 0; i + 1 < n; i += 2) c += z[i] * z[i + 1];
  CHECK(std::abs(c / (n / 2)) < 5 / std::sqrt(n / 2.0));
}

TEST_CASE("random bernoulli: frequency matches p, p = 0 and p = 1 exact") {
  const int64_t n = 1000000;
  Generator g(13);
  for (double p : {0.05, 0.3, 0.5, 0.9}) {
    std::vector<double> b = bernoulli(Tensor::full({n}, p, DType::f64), g).to_vector<double>();
    double ones = 0;
    for (double v : b) {
      REQUIRE((v == 0.0 || v == 1.0));
      ones += v;
    }
    CHECK(std::abs(ones / n - p) < 5 * std::sqrt(p * (1 - p) / n));
  }
  for (double p : {0.0, 1.0}) {
    Tensor b = bernoulli(Tensor::full({n}, p, DType::f32), g);
    CHECK(b.dtype() == DType::f32);
    std::vector<float> v = b.to_vector<float>();
    CHECK(std::all_of(v.begin(), v.end(), [&](float x) { return x == (float)p; }));
  }
}

TEST_CASE("random bernoulli: per-element p through a non-contiguous view") {
  // p (2, 4) seen transposed as (4, 2): column 0 has p = 0.2, column 1 p = 0.8
  const int64_t n = 200000;
  std::vector<double> pv(2 * n);
  for (int64_t i = 0; i < n; ++i) pv[i] = 0.2, pv[n + i] = 0.8;
  Tensor p = Tensor::from_vector(pv, {2, n}).t();
  REQUIRE(!p.is_contiguous());
  Generator g(14);
  Tensor b = bernoulli(p, g);
  CHECK(b.shape() == Shape{n, 2});
  CHECK(b.dtype() == DType::f64);
  std::vector<double> v = b.to_vector<double>();
  double c0 = 0, c1 = 0;
  for (int64_t i = 0; i < n; ++i) c0 += v[2 * i], c1 += v[2 * i + 1];
  const double tol = 5 * std::sqrt(0.16 / n);
  CHECK(std::abs(c0 / n - 0.2) < tol);
  CHECK(std::abs(c1 / n - 0.8) < tol);
}

TEST_CASE("random randperm: a permutation, seed-dependent, every position equally likely") {
  Generator a(15), b(15), c(16);
  std::vector<int64_t> pa = randperm(1000, a).to_vector<int64_t>();
  CHECK(randperm(1000, b).to_vector<int64_t>() == pa);
  CHECK(randperm(1000, c).to_vector<int64_t>() != pa);
  std::vector<int64_t> sorted = pa;
  std::sort(sorted.begin(), sorted.end());
  for (int64_t i = 0; i < 1000; ++i) REQUIRE(sorted[i] == i);
  CHECK(randperm(1000, a).to_vector<int64_t>() != pa);  // the next draw differs
  CHECK(randperm(0, a).numel() == 0);
  CHECK(randperm(1, a).to_vector<int64_t>() == std::vector<int64_t>{0});
  CHECK(randperm(3, a).dtype() == DType::i64);

  // where value 0 lands: uniform over the 10 slots (Sattolo's off-by-one would never leave 0 at 0)
  const int trials = 100000, m = 10;
  std::vector<int64_t> where(m, 0);
  Generator g(17);
  for (int t = 0; t < trials; ++t) {
    std::vector<int64_t> p = randperm(m, g).to_vector<int64_t>();
    where[std::find(p.begin(), p.end(), 0) - p.begin()]++;
  }
  for (int k = 0; k < m; ++k)
    CHECK(std::abs((double)where[k] / trials - 0.1) < 5 * std::sqrt(0.09 / trials));
}

TEST_CASE("random: bad arguments throw typed errors naming the op, and do not advance") {
  Generator g(1);
  CHECK(error_of<ValueError>([&] { uniform({4}, g, 1, 0); }).find("uniform") != std::string::npos);
  CHECK(error_of<ValueError>([&] { uniform({4}, g, 0, INFINITY); }).find("uniform") != std::string::npos);
  CHECK(error_of<DTypeError>([&] { uniform({4}, g, 0, 1, DType::i64); }).find("uniform") != std::string::npos);
  CHECK(error_of<ValueError>([&] { normal({4}, g, 0, -1); }).find("normal: needs std >= 0") != std::string::npos);
  CHECK(error_of<DTypeError>([&] { normal({4}, g, 0, 1, DType::i64); }).find("normal") != std::string::npos);
  CHECK(error_of<ValueError>([&] { randperm(-1, g); }).find("randperm") != std::string::npos);
  CHECK(error_of<DTypeError>([&] { bernoulli(Tensor::zeros({3}, DType::i64), g); }).find("bernoulli") !=
        std::string::npos);
  std::string msg = error_of<ValueError>([&] {
    bernoulli(Tensor::from_list({0.5, 0.1, 1.5, 0.2}, {2, 2}), g);
  });
  CHECK(msg.find("bernoulli") != std::string::npos);
  CHECK(msg.find("1.5") != std::string::npos);
  CHECK(msg.find("index 2") != std::string::npos);
  msg = error_of<ValueError>([&] {
    bernoulli(Tensor::from_list({0.5, std::numeric_limits<double>::quiet_NaN()}, {2}), g);
  });
  CHECK(msg.find("nan") != std::string::npos);
  CHECK(msg.find("index 1") != std::string::npos);
  CHECK(error_of<ValueError>([&] { bernoulli(Tensor::full({2}, -0.01), g); }).find("-0.01") != std::string::npos);
  CHECK(g.offset() == 0);
}

TEST_CASE("random on a CUDA device gives the CPU's numbers") {
  if (!cuda_available()) {
    Generator g(3);
    CHECK(error_of<DeviceError>([&] { uniform({4}, g, 0, 1, DType::f32, Device::cuda()); })
              .find("uniform") != std::string::npos);
    CHECK(g.offset() == 0);
    return;
  }
  Generator a(3), b(3);
  Tensor gu = uniform({1000}, a, 0, 1, DType::f32, Device::cuda());
  CHECK(gu.device().is_cuda());
  CHECK(gu.to_vector<float>() == uniform({1000}, b, 0, 1, DType::f32).to_vector<float>());
  Tensor gn = normal({1000}, a, 0, 1, DType::f32, Device::cuda());
  CHECK(gn.to_vector<float>() == normal({1000}, b, 0, 1, DType::f32).to_vector<float>());
  Tensor p = Tensor::full({1000}, 0.5);
  Tensor gb = bernoulli(p.to(Device::cuda()), a);
  CHECK(gb.device().is_cuda());
  CHECK(gb.to_vector<float>() == bernoulli(p, b).to_vector<float>());
}

TEST_CASE("Generator::stream: streams of one seed share the key and start 2^48 blocks apart") {
  Generator s0 = Generator::stream(42, 0), s2 = Generator::stream(42, 2);
  CHECK(s0.seed() == 42);
  CHECK(s2.seed() == 42);
  CHECK(s0.offset() == 0);
  CHECK(s2.offset() == (uint64_t(2) << 48));
  // stream 0 is the plain generator of the seed; stream 2 draws differently
  Generator plain(42);
  CHECK(uniform({64}, s0).to_vector<double>() == uniform({64}, plain).to_vector<double>());
  Generator s2b = Generator::stream(42, 2), s1 = Generator::stream(42, 1);
  CHECK(uniform({64}, s2b).to_vector<double>() != uniform({64}, s1).to_vector<double>());
}

}  // namespace file_engine_test_random

// test_gemm.cpp: the engine's GEMM (engine/gemm.h) against a float64 triple loop, on every
// instruction-set path this CPU supports, and its determinism promise: the same bits for any
// thread count, any batch (row i never depends on the other rows) and both FMA paths.
#include <doctest/doctest.h>
#include <omp.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "engine/gemm.h"
#include "engine/ops.h"
#include "engine/random.h"
#include "engine/runtime.h"
#include "tests/test_util.h"

using namespace gv;
using gv::test::lcg;

// This file's helpers and tests in a namespace of their own: the unity build (scripts/test.sh)
// compiles several test files as one, and their helpers must not meet.
namespace file_engine_test_gemm {

namespace {

// An operand in a buffer: element (r, c) at off + r*rs + c*cs, with junk between elements so that
// a read outside the view shows up as a wrong result.
template <class T>
struct Operand {
  std::vector<T> buf;
  int64_t off = 0, rs = 0, cs = 0;
  const T* ptr() const { return buf.data() + off; }
  double at(int64_t r, int64_t c) const { return double(buf[off + r * rs + c * cs]); }
};

// rows x cols as: 0 row-major with padding (ld > width), 1 transposed (column-major storage with
// padding), 2 strided in both axes with an offset.
template <class T>
Operand<T> make_operand(int64_t rows, int64_t cols, int layout, uint64_t seed) {
  Operand<T> o;
  const int64_t pad = 3;
  int64_t size;
  if (layout == 0) {
    o.rs = cols + pad, o.cs = 1, o.off = 0;
    size = rows * o.rs + 1;
  } else if (layout == 1) {
    o.rs = 1, o.cs = rows + pad, o.off = 0;
    size = cols * o.cs + 1;
  } else {
    o.cs = 2, o.rs = 2 * cols + 5, o.off = 7;
    size = o.off + rows * o.rs + 1;
  }
  std::vector<double> v = lcg(size, seed, -1, 1);
  o.buf.assign(v.begin(), v.end());
  return o;
}

template <class T>
constexpr double unit_roundoff() {
  return std::numeric_limits<T>::epsilon() / 2;
}

// c = alpha a @ b + beta c0 in float64, and the bound on the rounding error of any summation order
// of K products plus the alpha and beta terms: (K + 3) u (|alpha| sum |a||b| + |beta c0|).
struct Ref {
  std::vector<double> c, bound;
};
template <class T>
Ref reference(const Operand<T>& a, const Operand<T>& b, const std::vector<T>& c0, int64_t M, int64_t N, int64_t K,
              int64_t ldc, double alpha, double beta) {
  Ref r{std::vector<double>(M * N), std::vector<double>(M * N)};
  for (int64_t i = 0; i < M; ++i)
    for (int64_t j = 0; j < N; ++j) {
      double s = 0, sa = 0;
      for (int64_t k = 0; k < K; ++k) {
        s += a.at(i, k) * b.at(k, j);
        sa += std::fabs(a.at(i, k) * b.at(k, j));
      }
      const double c = beta == 0 ? 0.0 : double(c0[i * ldc + j]);
      r.c[i * N + j] = alpha * s + beta * c;
      r.bound[i * N + j] = double(K + 3) * unit_roundoff<T>() * (std::fabs(alpha) * sa + std::fabs(beta * c)) + 1e-300;
    }
  return r;
}

// Runs one product on every supported path and checks every element against the reference within
// its bound, and that the padding of C beyond N columns is untouched.
template <class T>
void check_product(int64_t M, int64_t N, int64_t K, int la, int lb, double alpha, double beta, const std::string& what) {
  INFO(what << " M=" << M << " N=" << N << " K=" << K << " layouts " << la << "," << lb << " alpha " << alpha
            << " beta " << beta);
  Operand<T> a = make_operand<T>(M, K, la, 1000 + M * 7 + K), b = make_operand<T>(K, N, lb, 2000 + N * 5 + K);
  const int64_t ldc = N + 2;
  std::vector<double> cv = lcg(std::max<int64_t>(M * ldc, 1), 3000 + M + N, -1, 1);
  std::vector<T> c(cv.begin(), cv.end());
  if (beta == 0)  // beta = 0 must not read C: NaN there must not reach the result
    for (int64_t i = 0; i < M; ++i)
      for (int64_t j = 0; j < N; ++j) c[i * ldc + j] = std::numeric_limits<T>::quiet_NaN();
  const std::vector<T> c0 = c;
  const Ref ref = reference(a, b, c0, M, N, K, ldc, alpha, beta);
  for (Isa isa : supported_isas()) {
  CAPTURE(isa_name(isa));
  set_isa(isa);
  c = c0;
  gemm<T>(M, N, K, T(alpha), a.ptr(), a.rs, a.cs, b.ptr(), b.rs, b.cs, T(beta), c.data(), ldc);
  int64_t bad = 0, worst = -1;
  double worst_ratio = 0;
  for (int64_t i = 0; i < M; ++i) {
    for (int64_t j = 0; j < N; ++j) {
      const double got = double(c[i * ldc + j]), err = std::fabs(got - ref.c[i * N + j]);
      const double ratio = err / ref.bound[i * N + j];
      if (!(ratio <= 1)) {
        ++bad;
        if (worst < 0 || !(ratio <= worst_ratio)) worst = i * N + j, worst_ratio = ratio;
      }
    }
    for (int64_t j = N; j < ldc && i * ldc + j < (int64_t)c.size(); ++j)
      if (std::memcmp(&c[i * ldc + j], &c0[i * ldc + j], sizeof(T)) != 0) ++bad;
  }
  CAPTURE(worst);
  CAPTURE(worst_ratio);
  CHECK(bad == 0);
  }
}

const std::vector<int64_t> kSizes = {0, 1, 7, 17, 63, 65, 513};

}  // namespace

TEST_CASE("gemm: against a float64 triple loop, every transpose, layout, size, alpha and beta, every ISA path") {
  gv::test::RuntimeGuard guard;
  {
    for (int64_t M : kSizes)
      for (int64_t N : kSizes)
        for (int64_t K : kSizes) {
          // every size in every role; the largest products only once each (the reference is slow)
          const double macs = double(M) * double(N) * double(K);
          if (macs > 1.5e6) continue;
          const bool small = macs <= 3e4;
          for (int la = 0; la < 3; ++la)
            for (int lb = 0; lb < 3; ++lb) {
              if (!small && (la + lb) % 3 != 0) continue;  // (0,0), (1,2), (2,1): both transposes
              check_product<float>(M, N, K, la, lb, 1.0, 0.0, "f32");
              check_product<double>(M, N, K, la, lb, 1.0, 0.0, "f64");
              if (small || la == 0) {
                check_product<float>(M, N, K, la, lb, -0.5, 1.0, "f32 accumulate");
                check_product<double>(M, N, K, la, lb, 1.5, 0.25, "f64 alpha beta");
              }
            }
        }
  }
}

TEST_CASE("gemm: transposes through the BLAS-style form, and alpha = 0 reads neither operand") {
  gv::test::RuntimeGuard guard;
  const int64_t M = 19, N = 23, K = 300;  // K > kGemmKc: two K blocks
  for (bool ta : {false, true})
    for (bool tb : {false, true}) {
      std::vector<double> av = lcg(M * K, 1, -1, 1), bv = lcg(K * N, 2, -1, 1);
      std::vector<double> c(M * N, 0.0);
      gemm<double>(ta, tb, M, N, K, 1.0, av.data(), ta ? M : K, bv.data(), tb ? K : N, 0.0, c.data(), N);
      double worst = 0;
      for (int64_t i = 0; i < M; ++i)
        for (int64_t j = 0; j < N; ++j) {
          double s = 0;
          for (int64_t k = 0; k < K; ++k) s += (ta ? av[k * M + i] : av[i * K + k]) * (tb ? bv[j * K + k] : bv[k * N + j]);
          worst = std::max(worst, std::fabs(s - c[i * N + j]));
        }
      CAPTURE(ta);
      CAPTURE(tb);
      CHECK(worst < 1e-12);  // sums of 300 products of magnitude <= 1: (K+3) u K ~ 1e-11 at worst
    }
  std::vector<float> a(6, std::numeric_limits<float>::quiet_NaN()), b(6, 1.0f), c(4, 2.0f);
  gemm<float>(2, 2, 3, 0.0f, a.data(), 3, 1, b.data(), 2, 1, 0.5f, c.data(), 2);
  for (float v : c) CHECK(v == 1.0f);
}

TEST_CASE("gemm: the same bits for 1, 2 and 3 threads, and on the AVX2 and AVX-512 paths") {
  gv::test::RuntimeGuard guard;
  struct Shape3 {
    int64_t M, N, K;
  };
  for (Shape3 s : {Shape3{100, 500, 784}, Shape3{513, 65, 300}, Shape3{7, 1000, 20}, Shape3{300, 300, 513}}) {
    INFO("M=" << s.M << " N=" << s.N << " K=" << s.K);
    Operand<float> a = make_operand<float>(s.M, s.K, 0, 1), b = make_operand<float>(s.K, s.N, 1, 2);
    auto run = [&](int threads) {
      omp_set_num_threads(threads);
      std::vector<float> c(s.M * s.N);
      gemm<float>(s.M, s.N, s.K, 1.0f, a.ptr(), a.rs, a.cs, b.ptr(), b.rs, b.cs, 0.0f, c.data(), s.N);
      return c;
    };
    std::vector<std::vector<float>> by_isa;
    for (Isa isa : supported_isas()) {
      set_isa(isa);
      const std::vector<float> one = run(1), two = run(2), three = run(3);
      CAPTURE(isa_name(isa));
      CHECK(std::memcmp(one.data(), two.data(), sizeof(float) * one.size()) == 0);
      CHECK(std::memcmp(one.data(), three.data(), sizeof(float) * one.size()) == 0);
      if (isa != Isa::generic) by_isa.push_back(one);
    }
    for (size_t i = 1; i < by_isa.size(); ++i)  // both FMA paths: the same chain of fmas per element
      CHECK(std::memcmp(by_isa[0].data(), by_isa[i].data(), sizeof(float) * by_isa[0].size()) == 0);
  }
}

// B given by offset tables (gemm_indexed_b) must give exactly what gemm gives on B written out:
// the packing only moves values. Tables with runs of consecutive offsets broken every few
// entries (a convolution's output rows), runs along the rows (the hint), scattered offsets (the
// gather paths), and sizes past the packers' blocks (8 rows, 16 or 32 columns, 512 and 1024
// columns, kGemmKc = 256 rows).
template <class T>
void check_indexed(int64_t M, int64_t N, int64_t K, int kind, bool hint) {
  INFO("M=" << M << " N=" << N << " K=" << K << " kind " << kind << " hint " << hint);
  std::vector<int32_t> row(K), col(N);
  uint64_t state = 12345 + uint64_t(M * 31 + N * 7 + K + kind);
  auto next = [&] { return int32_t((state = state * 6364136223846793005ull + 1442695040888963407ull) >> 40); };
  for (int64_t k = 0; k < K; ++k)  // rows: runs of 5 (kind 2), 40 apart (kind 0) or scattered (kind 1)
    row[k] = kind == 1 ? next() % 4000 : int32_t(k / 5 * 11 + k % 5) * (kind == 2 ? 1 : 40);
  for (int64_t j = 0; j < N; ++j)  // columns: runs of 7 (kind 0), scattered (kind 1, 2)
    col[j] = kind == 0 ? int32_t(j / 7 * 9 + j % 7) : next() % 3000;
  int32_t max_off = 0;
  for (int32_t r : row)
    for (int32_t c : col) max_off = std::max(max_off, r + c);
  std::vector<double> bv = lcg(max_off + 1, 77 + kind, -1, 1);
  std::vector<T> base(bv.begin(), bv.end()), dense(K * N);
  for (int64_t k = 0; k < K; ++k)
    for (int64_t j = 0; j < N; ++j) dense[k * N + j] = base[row[k] + col[j]];
  std::vector<double> av = lcg(M * K, 88, -1, 1), cv = lcg(M * N, 99, -1, 1);
  std::vector<T> a(av.begin(), av.end()), c0(cv.begin(), cv.end());
  for (Isa isa : supported_isas()) {
    CAPTURE(isa_name(isa));
    set_isa(isa);
    for (T beta : {T(0), T(1)}) {
      std::vector<T> want = c0, got = c0;
      gemm<T>(M, N, K, T(1), a.data(), K, 1, dense.data(), N, 1, beta, want.data(), N);
      gemm_indexed_b<T>(M, N, K, T(1), a.data(), K, 1, {base.data(), row.data(), col.data(), hint}, beta, got.data(),
                        N);
      CHECK(std::memcmp(want.data(), got.data(), sizeof(T) * want.size()) == 0);
    }
  }
}

TEST_CASE("gemm_indexed_b: the same bits as gemm on the operand written out, every table shape, every ISA path") {
  gv::test::RuntimeGuard guard;
  for (int64_t N : {1, 15, 33, 100, 1100})
    for (int64_t K : {1, 9, 300})
      for (int kind : {0, 1, 2})
        for (bool hint : {false, true}) {
          check_indexed<float>(15, N, K, kind, hint);
          if (N <= 100) check_indexed<double>(3, N, K, kind, hint);
        }
}

TEST_CASE("gemm: the generic path differs from the FMA paths only within the float32 rounding bound") {
  // Fused and separate multiply-adds round differently; both stay within (K+3) u sum |a||b| of
  // the exact product, so they differ by at most twice that.
  gv::test::RuntimeGuard guard;
  if (!isa_supported(Isa::avx2)) {
    MESSAGE("this CPU has no AVX2+FMA path: nothing to compare the generic path with");
    return;
  }
  const int64_t M = 37, N = 41, K = 700;
  Operand<float> a = make_operand<float>(M, K, 0, 5), b = make_operand<float>(K, N, 0, 6);
  std::vector<float> cg(M * N), cf(M * N);
  set_isa(Isa::generic);
  gemm<float>(M, N, K, 1.0f, a.ptr(), a.rs, a.cs, b.ptr(), b.rs, b.cs, 0.0f, cg.data(), N);
  set_isa(best_isa());
  gemm<float>(M, N, K, 1.0f, a.ptr(), a.rs, a.cs, b.ptr(), b.rs, b.cs, 0.0f, cf.data(), N);
  double worst = 0;
  for (int64_t i = 0; i < M; ++i)
    for (int64_t j = 0; j < N; ++j) {
      double sa = 0;
      for (int64_t k = 0; k < K; ++k) sa += std::fabs(a.at(i, k) * b.at(k, j));
      const double bound = 2 * double(K + 3) * unit_roundoff<float>() * sa;
      worst = std::max(worst, std::fabs(double(cg[i * N + j]) - double(cf[i * N + j])) / bound);
    }
  CAPTURE(worst);
  CHECK(worst <= 1);
}

TEST_CASE("gemm and matmul: row i of a product does not depend on the other rows (batch 1, 5, 6, 100)") {
  gv::test::RuntimeGuard guard;
  Generator g(11);
  Tensor x = uniform({100, 784}, g, -1, 1), w = uniform({500, 784}, g, -0.05, 0.05), bias = uniform({500}, g, -1, 1);
  for (Isa isa : supported_isas()) {
    set_isa(isa);
    CAPTURE(isa_name(isa));
    const Tensor full = linear(x, w, bias), fullm = matmul(x, w.t());
    for (int64_t batch : {1, 5, 6, 100})
      for (int64_t start : {int64_t(0), 100 - batch, (100 - batch) / 2}) {
        CAPTURE(batch);
        CAPTURE(start);
        const Tensor part = linear(x.slice(0, start, start + batch), w, bias);
        const Tensor partm = matmul(x.slice(0, start, start + batch), w.t());
        CHECK(part.to_vector<float>() == full.slice(0, start, start + batch).to_vector<float>());
        CHECK(partm.to_vector<float>() == fullm.slice(0, start, start + batch).to_vector<float>());
      }
  }
}

TEST_CASE("gemm: GENVAE_GEMM-style backend switch: OpenBLAS agrees with ours within the rounding bound") {
  gv::test::RuntimeGuard guard;
  struct BackendGuard {
    GemmBackend b = gemm_backend();
    ~BackendGuard() { set_gemm_backend(b); }
  } bg;
  Generator g(5);
  Tensor a = uniform({70, 300}, g, -1, 1), b = uniform({300, 90}, g, -1, 1);
  set_gemm_backend(GemmBackend::own);
  const std::vector<double> ours = matmul(a, b).to_vector<double>();
  set_gemm_backend(GemmBackend::openblas);
  CHECK(std::string(gemm_backend_name(gemm_backend())) == "openblas");
  const std::vector<double> theirs = matmul(a, b.t().contiguous().t()).to_vector<double>();
  // each within (K+3) u sum|a||b| <= 303 * 2^-24 * 300 of the exact value
  gv::test::expect_close(ours, theirs, 2 * 303 * unit_roundoff<float>() * 300, 0, "own vs openblas");
}

TEST_CASE("runtime: instruction sets by name, and a refusal that names the allowed values") {
  CHECK(isa_supported(Isa::generic));
  CHECK(supported_isas().front() == Isa::generic);
  CHECK(best_isa() == supported_isas().back());
  for (Isa i : {Isa::generic, Isa::avx2, Isa::avx512}) CHECK(isa_from_name(isa_name(i)) == i);
  const std::string e = gv::test::error_message([] { isa_from_name("sse9"); });
  CHECK(gv::test::has(e, "'sse9'"));
  CHECK(gv::test::has(e, "generic, avx2 and avx512"));
  CHECK(!cpu_brand().empty());
  MESSAGE("CPU: " << cpu_brand() << "; paths: " << [] {
    std::string s;
    for (Isa i : supported_isas()) s += std::string(isa_name(i)) + " ";
    return s;
  }() << "; OpenBLAS kernels: " << std::string(openblas_corename()));
}

}  // namespace file_engine_test_gemm

// test_util.h: small helpers shared by the test files of every layer.
#pragma once
#include <doctest/doctest.h>
#include <omp.h>

#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "engine/error.h"
#include "engine/runtime.h"

namespace gv::test {

// Restores the kernels' instruction set and the thread count when a test that changes them ends.
struct RuntimeGuard {
  Isa isa = active_isa();
  int threads = omp_get_max_threads();
  ConvLowering conv = conv_lowering();
  ~RuntimeGuard() {
    set_isa(isa);
    omp_set_num_threads(threads);
    set_conv_lowering(conv);
  }
};

// The message of the E that f throws: "<no exception>" when it throws nothing,
// "<other exception>" when it throws something else.
template <class E, class F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const E& e) {
    return e.what();
  } catch (...) {
    return "<other exception>";
  }
  return "<no exception>";
}

// The message of the gv::Error that f throws, "(no error)" when it throws none.
template <class F>
std::string error_message(F&& f) {
  try {
    f();
  } catch (const gv::Error& e) {
    return e.what();
  }
  return "(no error)";
}

inline bool has(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

// n deterministic values uniform in [lo, hi) from a 64-bit LCG (Knuth's MMIX constants).
inline std::vector<double> lcg(int64_t n, uint64_t seed, double lo, double hi) {
  std::vector<double> v(n);
  uint64_t s = seed * 2862933555777941757ULL + 3037000493ULL;
  for (int64_t i = 0; i < n; ++i) {
    s = s * 6364136223846793005ULL + 1442695040888963407ULL;
    v[i] = lo + (hi - lo) * (double(s >> 11) * (1.0 / 9007199254740992.0));
  }
  return v;
}

// Checks got against want element by element, |got - want| <= atol + rtol |want| (NaN matches
// NaN, an infinity only itself), and on failure reports the worst index and both values there.
inline void expect_close(const std::vector<double>& got, const std::vector<double>& want, double atol, double rtol,
                         const std::string& what) {
  INFO(what);
  REQUIRE(got.size() == want.size());
  int64_t worst = -1;
  double worst_excess = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    double g = got[i], w = want[i], excess;
    if (std::isnan(w) || std::isnan(g)) excess = (std::isnan(w) && std::isnan(g)) ? 0 : INFINITY;
    else if (std::isinf(w) || std::isinf(g)) excess = g == w ? 0 : INFINITY;
    else excess = std::fabs(g - w) - (atol + rtol * std::fabs(w));
    if (excess > 0 && (worst < 0 || excess > worst_excess)) {
      worst = (int64_t)i;
      worst_excess = excess;
    }
  }
  CAPTURE(worst);
  double got_at = worst >= 0 ? got[worst] : 0, want_at = worst >= 0 ? want[worst] : 0;
  CAPTURE(got_at);
  CAPTURE(want_at);
  CHECK(worst == -1);
}

}  // namespace gv::test

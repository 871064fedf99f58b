// test_util.h: small helpers shared by the engine's test files.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace gv::test {

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

}  // namespace gv::test

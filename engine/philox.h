// philox.h: the Philox 4x32-10 block (Salmon et al. 2011) and the arithmetic that turns its
// words into draws, as host-device functions: the CPU's kernels (engine/cpu/random.cpp) and the
// CUDA kernels (engine/cuda/kernels.h) call the same code, so a seed gives the same stream, bit
// for bit, on both (engine/random.cpp states which word feeds which element).
#pragma once
#include <cmath>
#include <cstdint>

#include "engine/macros.h"

namespace gv {

// One Philox 4x32-10 block: 4 random 32-bit words from a 128-bit counter and a 64-bit key.
struct Philox {
  static constexpr uint32_t M0 = 0xD2511F53u, M1 = 0xCD9E8D57u;
  static constexpr uint32_t W0 = 0x9E3779B9u, W1 = 0xBB67AE85u;
  GV_HD static void mulhilo(uint32_t a, uint32_t b, uint32_t& hi, uint32_t& lo) {
    uint64_t p = (uint64_t)a * b;
    hi = (uint32_t)(p >> 32);
    lo = (uint32_t)p;
  }
  // ctr: 4 words (in/out), key: 2 words
  GV_HD static void block(uint32_t ctr[4], uint32_t k0, uint32_t k1) {
    for (int r = 0; r < 10; ++r) {
      uint32_t hi0, lo0, hi1, lo1;
      mulhilo(M0, ctr[0], hi0, lo0);
      mulhilo(M1, ctr[2], hi1, lo1);
      uint32_t c0 = hi1 ^ ctr[1] ^ k0, c2 = hi0 ^ ctr[3] ^ k1;
      ctr[0] = c0; ctr[1] = lo1; ctr[2] = c2; ctr[3] = lo0;
      k0 += W0; k1 += W1;
    }
  }
  // 32 random bits -> uniform float in (0, 1]: never 0, so log(u) is finite.
  GV_HD static double to_unit(uint32_t x) { return ((double)x + 1.0) * (1.0 / 4294967296.0); }
};

// The Box-Muller transform from +, -, *, / and sqrt alone (each correctly rounded by IEEE 754 on
// the host and on the GPU; the GPU file is built with -fmad=false so nothing is fused), so a
// normal draw is the same bits on both. std::log and the CUDA library's log differ in the last
// bit now and then.

namespace philox_math {
constexpr double kLn2Hi = 6.93147180369123816490e-01;  // ln 2 split so that e * kLn2Hi is exact
constexpr double kLn2Lo = 1.90821492927058770002e-10;
constexpr double kSqrtHalf = 0.70710678118654752440;
constexpr double kHalfPi = 1.57079632679489661923;
}  // namespace philox_math

// log(u) for u in (0, 1]: u = m 2^e with m in [sqrt(1/2), sqrt(2)), log m = 2 atanh(s), s =
// (m - 1)/(m + 1), |s| <= 0.1716, by its series to s^23 (the next term is below 1e-19 of s).
GV_HD double log_unit(double u) {
  int e = 0;
  while (u < 0.5) {  // u >= 2^-32 here: exact scaling by powers of two
    u *= 2.0;
    --e;
  }
  double m = u;
  if (m < philox_math::kSqrtHalf) {
    m *= 2.0;
    --e;
  }
  const double s = (m - 1.0) / (m + 1.0), s2 = s * s;
  double p = 1.0 / 23.0;
  p = p * s2 + 1.0 / 21.0;
  p = p * s2 + 1.0 / 19.0;
  p = p * s2 + 1.0 / 17.0;
  p = p * s2 + 1.0 / 15.0;
  p = p * s2 + 1.0 / 13.0;
  p = p * s2 + 1.0 / 11.0;
  p = p * s2 + 1.0 / 9.0;
  p = p * s2 + 1.0 / 7.0;
  p = p * s2 + 1.0 / 5.0;
  p = p * s2 + 1.0 / 3.0;
  const double lm = 2.0 * s + 2.0 * s * (s2 * p);
  return double(e) * philox_math::kLn2Hi + (double(e) * philox_math::kLn2Lo + lm);
}

// cos and sin of 2 pi u for u in (0, 1] with at most 32 fraction bits (Philox::to_unit):
// 4u = k + f exactly, f in [-1/2, 1/2], a = f pi/2 in [-pi/4, pi/4], then the quadrant k.
GV_HD void cossin_2pi(double u, double& c, double& s) {
  const double x = 4.0 * u;
  double k = double(int64_t(x + 0.5));  // x >= 0: the nearest integer (ties up), exact
  const double f = x - k;
  const double a = f * philox_math::kHalfPi, a2 = a * a;
  // Taylor series: |a| <= 0.786, terms to a^17 (sin) and a^18 (cos) leave < 1e-18
  double ps = -1.0 / 355687428096000.0;            // -1/17!
  ps = ps * a2 + 1.0 / 1307674368000.0;            // 1/15!
  ps = ps * a2 - 1.0 / 6227020800.0;               // -1/13!
  ps = ps * a2 + 1.0 / 39916800.0;                 // 1/11!
  ps = ps * a2 - 1.0 / 362880.0;                   // -1/9!
  ps = ps * a2 + 1.0 / 5040.0;                     // 1/7!
  ps = ps * a2 - 1.0 / 120.0;                      // -1/5!
  ps = ps * a2 + 1.0 / 6.0;                        // 1/3!
  const double sa = a - a * (a2 * ps);
  double pc = 1.0 / 6402373705728000.0;            // 1/18!
  pc = pc * a2 - 1.0 / 20922789888000.0;           // -1/16!
  pc = pc * a2 + 1.0 / 87178291200.0;              // 1/14!
  pc = pc * a2 - 1.0 / 479001600.0;                // -1/12!
  pc = pc * a2 + 1.0 / 3628800.0;                  // 1/10!
  pc = pc * a2 - 1.0 / 40320.0;                    // -1/8!
  pc = pc * a2 + 1.0 / 720.0;                      // 1/6!
  pc = pc * a2 - 1.0 / 24.0;                       // -1/4!
  pc = pc * a2 + 0.5;                              // 1/2!
  const double ca = 1.0 - a2 * pc;
  switch (int64_t(k) & 3) {
    case 0: c = ca; s = sa; break;
    case 1: c = -sa; s = ca; break;
    case 2: c = -ca; s = -sa; break;
    default: c = sa; s = -ca; break;
  }
}

// Box-Muller: r = sqrt(-2 ln u1), (z0, z1) = r (cos 2 pi u2, sin 2 pi u2), two independent N(0, 1).
GV_HD void box_muller(uint32_t w1, uint32_t w2, double& z0, double& z1) {
  const double r = std::sqrt(-2.0 * log_unit(Philox::to_unit(w1)));  // u1 in (0, 1]: finite
  double c, s;
  cossin_2pi(Philox::to_unit(w2), c, s);
  z0 = r * c;
  z1 = r * s;
}


// The 4 words of Philox block `ctr` under `seed`: counter (ctr low, ctr high, 0, 0), key (seed
// low, seed high).
GV_HD void philox_words(uint64_t seed, uint64_t ctr, uint32_t w[4]) {
  w[0] = uint32_t(ctr);
  w[1] = uint32_t(ctr >> 32);
  w[2] = 0u;
  w[3] = 0u;
  Philox::block(w, uint32_t(seed), uint32_t(seed >> 32));
}

}  // namespace gv

// fastmath.h: float32 exp, expm1, log, log1p and tanh written as straight-line code (selects, no
// branches, no library calls), so that the CPU's element-wise loops over them vectorize. The
// functors of functors.h use them for float32 on the host; CUDA device code keeps its own expf.
//
// Technique (the textbook one, coefficients fitted here by a Lawson/minimax iteration):
//  exp:  x = n ln2 + r, |r| <= ln2/2, n = round(x / ln2) by the 1.5*2^23 shift trick; ln2 split
//        Cody-Waite style (ln2_hi has 9 trailing zero bits, so n * ln2_hi is exact); exp(r) =
//        1 + r + r^2 P(r) with P of degree 4 (relative error 3.3e-9); 2^n made from exponent bits
//        in two halves 2^(n/2) 2^(n - n/2), so results that overflow give +inf and results in the
//        subnormal range are rounded once (no flush to zero).
//  log:  x = 2^k m with m in [sqrt(1/2), sqrt(2)) by integer arithmetic on the bits; f = m - 1
//        (exact), s = f / (2 + f), log(1 + f) = f - (f^2/2 - s (f^2/2 + R(s^2))), R(z) = z Q(z)
//        with Q of degree 2 fitted to 2 atanh(s)/s - 2; subnormal x is scaled by 2^23 first.
//  log1p: u = 1 + x rounded, c = x - (u - 1) its exact rounding error, log1p(x) = log(u) + c/u
//        with c/u added among the small terms of log(u).
//  expm1: (2^n - 1) + 2^n expm1(r), expm1(r) = r + r^2 P(r).
//  tanh: an odd minimax polynomial below |x| = 0.625, 1 - 2 / (e^(2|x|) + 1) above.
// Accuracy over all 2^32 floats against the double-precision std:: functions (the skipped case
// of tests/engine/test_fastmath.cpp), without FMA / with FMA (-march=native): exp 0.89/0.88 ulp,
// expm1 1.16/1.04, log 0.84/0.83, log1p 0.87/0.83, tanh 1.32/1.32; subnormal inputs and results
// included (no flush to zero). Special values as in C: exp(+-inf) = +inf/0, overflow gives +inf,
// log(0) = -inf, log(x < 0) = NaN, log1p(-1) = -inf, log1p(x < -1) = NaN, NaN in gives NaN out.
// The results assume IEEE round-to-nearest and no -ffast-math (it would undo the tricks).
#pragma once
#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>

#include "engine/macros.h"

namespace gv {
namespace fm_detail {

GV_HD uint32_t bits(float x) { return std::bit_cast<uint32_t>(x); }
GV_HD float from_bits(uint32_t b) { return std::bit_cast<float>(b); }

// c ? a : b, as a blend of the bits. A float ?: lets GCC (under its default -ftrapping-math) turn
// the select back into a branch, thread it and then refuse to if-convert the float arithmetic on
// one side, which keeps the loop scalar; masks leave no control flow to thread.
GV_HD float pick(bool c, float a, float b) {
  const uint32_t m = 0u - uint32_t(c);
  return from_bits((bits(a) & m) | (bits(b) & ~m));
}
GV_HD double pick(bool c, double a, double b) {
  const uint64_t m = 0u - uint64_t(c);
  return std::bit_cast<double>((std::bit_cast<uint64_t>(a) & m) | (std::bit_cast<uint64_t>(b) & ~m));
}

// a * b + c: one rounding where the target has FMA, else two (the algorithms allow either).
GV_HD float mad(float a, float b, float c) {
#if defined(__CUDA_ARCH__) || defined(__FMA__)
  return std::fma(a, b, c);
#else
  return a * b + c;
#endif
}

constexpr float kInf = std::numeric_limits<float>::infinity();
constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();
constexpr float kLog2e = 0x1.715476p+0f;
constexpr float kLn2Hi = 0x1.62e4p-1f;     // ln 2 to 15 bits: k * kLn2Hi is exact for |k| < 512
constexpr float kLn2Lo = 0x1.7f7d1cp-20f;  // ln 2 - kLn2Hi
constexpr float kShift = 0x1.8p23f;        // adding it rounds a float of magnitude < 2^22 to an integer

// exp(r) - 1 - r = r^2 P(r) on |r| <= 1.01 ln2/2 (minimax fit of the relative error of exp).
GV_HD float exp_poly(float r) {
  float p = mad(r, 0x1.6a1a72p-10f, 0x1.123fc6p-7f);
  p = mad(r, p, 0x1.555916p-5f);
  p = mad(r, p, 0x1.55548ap-3f);
  p = mad(r, p, 0x1.fffffcp-2f);
  return p;
}

// Reduction of x (finite, |x| < 2^21): n = round(x / ln2), x - n ln2 = hi + lo (hi exact, lo
// = -n kLn2Lo up to its rounding), r = hi + lo rounded; expm1(r) = hi + (lo + r^2 P(r)).
struct Reduced {
  int32_t n;
  float hi, tail;  // expm1(r) = hi + tail, |tail| < |hi| unless both are tiny
  float expm1_r;   // hi + tail rounded
};
GV_HD Reduced reduce_ln2(float x) {
  const float t = mad(x, kLog2e, kShift);
  const float nf = t - kShift;
  const int32_t n = int32_t(bits(t) - bits(kShift));
  const float hi = mad(-nf, kLn2Hi, x);  // exact: n * kLn2Hi is, and x - n * kLn2Hi is by Sterbenz
  const float lo = -nf * kLn2Lo;
  const float r = hi + lo;
  const float tail = mad(r * r, exp_poly(r), lo);
  return {n, hi, tail, hi + tail};
}

// 2^n for n in [-126, 127].
GV_HD float pow2i(int32_t n) { return from_bits(uint32_t(n + 127) << 23); }

// log(2^kbias x) + corr for x > 0 normal and finite (other x give garbage, never a trap).
GV_HD float log_core(float x, int32_t kbias, float corr) {
  const uint32_t ix = bits(x);
  // Subtracting the bits of sqrt(1/2) makes the exponent field count from [sqrt(1/2), sqrt(2)).
  const int32_t k = int32_t(ix - 0x3f3504f3u) >> 23;
  const float m = from_bits(ix - (uint32_t(k) << 23));  // in [sqrt(1/2), sqrt(2))
  const float f = m - 1.0f;                             // exact
  const float s = f / (2.0f + f);                       // |s| <= 0.1716
  const float z = s * s;
  const float R = z * mad(z, mad(z, 0x1.3229e2p-2f, 0x1.995c48p-2f), 0x1.55557cp-1f);
  const float hfsq = 0.5f * f * f;
  const float kf = float(k + kbias);
  const float small = mad(s, hfsq + R, mad(kf, kLn2Lo, corr));
  return mad(kf, kLn2Hi, f - (hfsq - small));
}

}  // namespace fm_detail

// e^x; max error < 1 ulp. Subnormal results are rounded correctly from the polynomial's value.
GV_HD float fast_expf(float x) {
  using namespace fm_detail;
  // e^89 and e^-104 are already +inf and 0 in float; NaN goes to -104 here and is put back below.
  float xc = pick(x > -104.0f, x, -104.0f);
  xc = pick(xc < 89.0f, xc, 89.0f);
  const Reduced red = reduce_ln2(xc);
  const float e = 1.0f + red.expm1_r;
  const int32_t n1 = red.n >> 1, n2 = red.n - n1;  // n in [-150, 128]: both halves are normal
  const float y = e * pow2i(n1) * pow2i(n2);
  return pick(x == x, y, x);
}

// e^x - 1, accurate for small |x| too; max error < 1.2 ulp.
GV_HD float fast_expm1f(float x) {
  using namespace fm_detail;
  float xc = pick(x > -25.0f, x, -25.0f);  // expm1(-25) is -1 in float; NaN is put back below
  xc = pick(xc < 89.0f, xc, 89.0f);
  const Reduced red = reduce_ln2(xc);
  const float p = red.expm1_r;
  // n <= 24: (2^n - 1) + 2^n hi + 2^n tail, 2^n - 1 and 2^n hi exact, their sum's rounding
  // error recovered exactly (Fast2Sum). n > 24: 2^n (1 + (expm1(r) - 2^-n)), with 2^n in two
  // halves as in fast_expf so that it overflows only as the result does.
  const float scale = pow2i(red.n < 24 ? red.n : 24);
  const float a = scale - 1.0f, b = scale * red.hi, sum = a + b;
  const float err = pick(std::fabs(a) >= std::fabs(b), (a - sum) + b, (b - sum) + a);
  const float lo = sum + mad(scale, red.tail, err);
  const int32_t nc = red.n < 126 ? red.n : 126, n1 = red.n >> 1, n2 = red.n - n1;
  const float hi = (1.0f + (p - pow2i(-nc))) * pow2i(n1) * pow2i(n2);
  const float y = pick(red.n > 24, hi, lo);
  return pick((x == x) & (x != 0.0f), y, x);  // NaN and +-0 give themselves
}

// log(x); max error < 1 ulp, subnormal x included.
GV_HD float fast_logf(float x) {
  using namespace fm_detail;
  const bool sub = x < 0x1p-126f;
  const float y = log_core(x * pick(sub, 0x1p23f, 1.0f), sub ? -23 : 0, 0.0f);
  // x = +inf and NaN come back as themselves, -inf and other negatives as NaN.
  const float special = pick(x == 0.0f, -kInf, pick(x < 0.0f, kNaN, x));
  return pick((x > 0.0f) & (x < kInf), y, special);
}

// log(1 + x); max error < 1 ulp; exact (x itself) for |x| < 2^-25 and for +-0.
GV_HD float fast_log1pf(float x) {
  using namespace fm_detail;
  const float u = 1.0f + x;  // >= 2^-24 when x > -1: never subnormal
  const float c = x - (u - 1.0f);  // the rounding error of u, exactly
  const float y = log_core(u, 0, c / u);
  const float special = pick(x == -1.0f, -kInf, pick(x < -1.0f, kNaN, x));  // +inf, NaN: themselves
  return pick((x > -1.0f) & (x < kInf) & (x != 0.0f), y, special);
}

// tanh(x); max error < 2 ulp. |x| < 0.625: x + x^3 Q(x^2) (Q of degree 4, a minimax fit);
// above: 1 - 2 / (e^(2|x|) + 1); the sign copied back.
GV_HD float fast_tanhf(float x) {
  using namespace fm_detail;
  const uint32_t sign = bits(x) & 0x80000000u;
  const float ax = from_bits(bits(x) ^ sign);
  const float z = ax * ax;
  float q = mad(z, -0x1.75e1cap-8f, 0x1.52269ap-6f);
  q = mad(z, q, -0x1.b83c5ap-5f);
  q = mad(z, q, 0x1.110726p-3f);
  q = mad(z, q, -0x1.555532p-2f);
  const float small = mad(ax * z, q, ax);
  const float big = 1.0f - 2.0f / (fast_expf(2.0f * ax) + 1.0f);  // 1 once e^(2|x|) is +inf
  const float y = pick(ax < 0.625f, small, big);
  return pick(x == x, from_bits(bits(y) | sign), x);
}

}  // namespace gv

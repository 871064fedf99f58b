// update_rules.h: the optimizers' per-element update rules (nn/optim.h: SGD, Adam, Adamax), written
// once for both backends (GV_HD). The CPU backend runs them in its vectorized loops, the CUDA
// backend in one fused kernel per parameter: the same arithmetic, in T, as PyTorch does for float32.
#pragma once
#include <cmath>
#include <cstdint>

#include "engine/dtype.h"
#include "engine/macros.h"

namespace gv {

enum class UpdateRule : uint8_t { sgd, sgd_momentum, adam, adamax };

// One parameter's update: p (and its state s0, s1) in place from the gradient g, n contiguous
// elements. h holds the rule's constants (below); all pointers are on the backend's device.
struct UpdateArgs {
  UpdateRule rule;
  DType dtype;
  int64_t n;
  void* p;
  void* s0;  // SGD: momentum buffer; Adam, Adamax: exp_avg
  void* s1;  // Adam: exp_avg_sq; Adamax: exp_inf
  const void* g;
  double h[6];  // sgd: lr, wd; sgd_momentum: lr, mu, wd, nesterov; adam: b1, b2, eps, wd, lr/bc1,
                // 1/sqrt(bc2); adamax: b1, b2, eps, wd, lr/bc1
};

// SGD: d = g + wd p; p -= lr d (weight decay only when wd != 0, as in PyTorch)
template <class T>
GV_HD void sgd_rule(T& p, T g, T lr, T wd) {
  p -= lr * (wd != 0 ? g + wd * p : g);
}
// SGD with momentum: d = g + wd p; v = mu v + d; p -= lr (nesterov ? d + mu v : v)
template <class T>
GV_HD void sgd_momentum_rule(T& p, T& v, T g, T lr, T mu, T wd, bool nesterov) {
  const T d = wd != 0 ? g + wd * p : g;
  v = mu * v + d;
  p -= lr * (nesterov ? d + mu * v : v);
}
// Adam: d = g + wd p; m = b1 m + (1-b1) d; v = b2 v + (1-b2) d^2;
// p -= lr/bc1 * m / (sqrt(v)/sqrt(bc2) + eps)
template <class T>
GV_HD void adam_rule(T& p, T& m, T& v, T g, T b1, T b2, T eps, T wd, T step_size, T inv_sqrt_bc2) {
  const T d = wd != 0 ? g + wd * p : g;
  m = b1 * m + (1 - b1) * d;
  v = b2 * v + (1 - b2) * d * d;
  p -= step_size * m / (std::sqrt(v) * inv_sqrt_bc2 + eps);
}
// Adamax (PyTorch's variant, eps inside the max): u = max(b2 u, |d| + eps); p -= lr/bc1 * m / u
template <class T>
GV_HD void adamax_rule(T& p, T& m, T& u, T g, T b1, T b2, T eps, T wd, T clr) {
  const T d = wd != 0 ? g + wd * p : g;
  m = b1 * m + (1 - b1) * d;
  const T decayed = b2 * u, fresh = std::fabs(d) + eps;
  u = (fresh > decayed || fresh != fresh) ? fresh : decayed;  // a NaN gradient propagates
  p -= clr * m / u;
}

// Elements [b, e) of the update, for both backends' loops.
template <class T>
GV_HD void apply_update(const UpdateArgs& a, int64_t b, int64_t e) {
  T* p = static_cast<T*>(a.p);
  T* s0 = static_cast<T*>(a.s0);
  T* s1 = static_cast<T*>(a.s1);
  const T* g = static_cast<const T*>(a.g);
  const T h0 = T(a.h[0]), h1 = T(a.h[1]), h2 = T(a.h[2]), h3 = T(a.h[3]), h4 = T(a.h[4]), h5 = T(a.h[5]);
  switch (a.rule) {
    case UpdateRule::sgd:
      for (int64_t k = b; k < e; ++k) sgd_rule<T>(p[k], g[k], h0, h1);
      break;
    case UpdateRule::sgd_momentum: {
      const bool nesterov = a.h[3] != 0;
      for (int64_t k = b; k < e; ++k) sgd_momentum_rule<T>(p[k], s0[k], g[k], h0, h1, h2, nesterov);
      break;
    }
    case UpdateRule::adam:
      for (int64_t k = b; k < e; ++k) adam_rule<T>(p[k], s0[k], s1[k], g[k], h0, h1, h2, h3, h4, h5);
      break;
    case UpdateRule::adamax:
      for (int64_t k = b; k < e; ++k) adamax_rule<T>(p[k], s0[k], s1[k], g[k], h0, h1, h2, h3, h4);
      break;
  }
}

}  // namespace gv

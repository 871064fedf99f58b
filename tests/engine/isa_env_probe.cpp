// isa_env_probe.cpp: an element-wise op large enough to run in an OpenMP parallel region, as the
// first thing a program does, so that GENVAE_ISA is first read there. A bad GENVAE_ISA must come
// back as an error (exit 1 with the message), never std::terminate. tests/engine/isa_env_test.sh.
#include <cstdio>
#include <exception>

#include "engine/ops.h"

int main() {
  try {
    const gv::Tensor y = gv::exp(gv::Tensor::ones({1 << 20}));
    std::printf("ok: exp(1) = %g\n", y.to_vector<float>()[0]);
    return 0;
  } catch (const std::exception& e) {
    std::printf("error: %s\n", e.what());
    return 1;
  }
}

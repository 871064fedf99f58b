// isa_supported.cpp: exits 0 when this CPU can run the named kernel path (generic, avx2,
// avx512), 77 (meson's SKIP) when it cannot, 2 on a name it does not know. tests/isa_run.sh uses
// it to run whole test binaries on every path with GENVAE_ISA.
#include <cstdio>
#include <exception>

#include "engine/runtime.h"

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: isa_supported generic|avx2|avx512\n");
    return 2;
  }
  try {
    const gv::Isa isa = gv::isa_from_name(argv[1]);
    if (gv::isa_supported(isa)) return 0;
    std::printf("this CPU (%s) has no %s path: SKIP\n", gv::cpu_brand().c_str(), argv[1]);
    return 77;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "isa_supported: %s\n", e.what());
    return 2;
  }
}

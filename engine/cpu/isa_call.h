// isa_call.h: runs a loop body compiled for the active instruction set (engine/runtime.h).
// isa_call(f) calls f from a function built with AVX-512 or AVX2+FMA code generation (GCC's and
// clang's target attribute) and `flatten`: f's body and every function it calls are inlined
// there, so their loops vectorize with 16 or 8 float lanes, and nothing compiled for those sets is
// ever shared with the rest of the program. Without flatten, a callee the inliner declined (the
// optimizer updates' apply_update) stayed the SSE2 baseline (docs/performance.md). The
// element-wise loops, the optimizer updates and the gradient norm use it (im2col and the packing
// go through the kernel table, gemm_kernel.h). The project builds with -ffp-contract=off, so these
// paths fuse no multiply-add the code does not write: every path gives the same bits. isa_call may run
// inside a parallel region, where an exception would end the program: cpu::parallel_for reads
// GENVAE_ISA (active_isa) before it forks, so a bad value is reported there.
#pragma once
#include "engine/runtime.h"

namespace gv::cpu {
namespace isa_detail {
template <class F>
__attribute__((target("avx512f,avx512dq,avx512bw,avx512vl,avx2,fma,bmi,bmi2,popcnt,f16c"), flatten)) void run_avx512(F& f) {
  f();
}
template <class F>
__attribute__((target("avx2,fma,bmi,bmi2,popcnt,f16c"), flatten)) void run_avx2(F& f) {
  f();
}
}  // namespace isa_detail

template <class F>
inline void isa_call(F&& f) {
  switch (active_isa()) {
    case Isa::avx512: isa_detail::run_avx512(f); return;
    case Isa::avx2: isa_detail::run_avx2(f); return;
    default: f(); return;
  }
}

}  // namespace gv::cpu

// runtime.h: how the CPU kernels run: the x86-64 instruction set, chosen at run time from cpuid,
// and the thread count.
// One binary carries every path (the kernel files are compiled once per instruction set); the
// best one the processor and its operating system support is used, unless GENVAE_ISA names
// another (generic, avx2 or avx512). A build flag is never needed for speed.
#pragma once
#include <string>
#include <vector>

namespace gv {

enum class Isa { generic = 0, avx2 = 1, avx512 = 2 };

const char* isa_name(Isa isa);      // "generic", "avx2", "avx512"
Isa isa_from_name(const std::string& name);  // throws ValueError naming the allowed values
bool isa_supported(Isa isa);        // the CPU and the OS (saved register state) allow it
std::vector<Isa> supported_isas();  // every supported path, generic first
Isa best_isa();                     // the widest supported path

// The path the kernels use now: GENVAE_ISA when set (a ValueError if this CPU cannot run it),
// else best_isa(). set_isa changes it for this process (tests run every path with it).
Isa active_isa();
void set_isa(Isa isa);  // ValueError if the CPU does not support it

// How the CPU convolutions lower to GEMM (engine/cpu/conv.cpp): packed (the default) reads
// im2col's matrix in place through offset tables; im2col writes it out first, as before. Both
// give the same bits; the choice is for measuring one against the other. GENVAE_CONV (packed |
// im2col) at first use, else packed.
enum class ConvLowering { packed = 0, im2col = 1 };
ConvLowering conv_lowering();
void set_conv_lowering(ConvLowering c);
const char* conv_lowering_name(ConvLowering c);

// What the CPU calls itself (cpuid's brand string), for the figures that name the machine.
std::string cpu_brand();

// Threads of the CPU kernels (OpenMP, and OpenBLAS when it is the GEMM backend). Apps call this,
// never OpenMP or BLAS directly.
void set_num_threads(int n);
int num_threads();
int cpu_count();  // processors this process may run on

}  // namespace gv

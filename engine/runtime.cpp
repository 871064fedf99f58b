// runtime.cpp: the instruction-set choice of engine/runtime.h (cpuid through GCC's
// __builtin_cpu_supports, which also checks that the OS saves the AVX and AVX-512 registers), and
// the thread count of OpenMP and OpenBLAS.
#include "engine/runtime.h"

#include <cblas.h>
#include <cpuid.h>
#include <omp.h>

#include <atomic>
#include <cstdlib>
#include <cstring>

#include "engine/error.h"

namespace gv {

const char* isa_name(Isa isa) {
  switch (isa) {
    case Isa::generic: return "generic";
    case Isa::avx2: return "avx2";
    case Isa::avx512: return "avx512";
  }
  return "?";
}

Isa isa_from_name(const std::string& name) {
  for (Isa i : {Isa::generic, Isa::avx2, Isa::avx512})
    if (name == isa_name(i)) return i;
  GV_THROW(ValueError, "instruction set '{}': allowed values are generic, avx2 and avx512", name);
}

bool isa_supported(Isa isa) {
  __builtin_cpu_init();
  switch (isa) {
    case Isa::generic: return true;
    case Isa::avx2: return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    case Isa::avx512:  // the Skylake-server set the avx512 kernels are compiled for
      return isa_supported(Isa::avx2) && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") &&
             __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl");
  }
  return false;
}

std::vector<Isa> supported_isas() {
  std::vector<Isa> v;
  for (Isa i : {Isa::generic, Isa::avx2, Isa::avx512})
    if (isa_supported(i)) v.push_back(i);
  return v;
}

Isa best_isa() { return supported_isas().back(); }

namespace {
std::atomic<int> g_isa{-1};

Isa isa_from_env() {
  const char* e = std::getenv("GENVAE_ISA");
  if (!e || !*e) return best_isa();
  Isa i = isa_from_name(e);
  GV_CHECK(isa_supported(i), ValueError, "GENVAE_ISA={}: this CPU ({}) does not support it; it supports {}", e,
           cpu_brand(), [] {
             std::string s;
             for (Isa j : supported_isas()) s += (s.empty() ? "" : ", ") + std::string(isa_name(j));
             return s;
           }());
  return i;
}
}  // namespace

Isa active_isa() {
  int i = g_isa.load(std::memory_order_relaxed);
  if (i < 0) {
    i = (int)isa_from_env();
    g_isa.store(i, std::memory_order_relaxed);
  }
  return (Isa)i;
}

void set_isa(Isa isa) {
  GV_CHECK(isa_supported(isa), ValueError, "set_isa({}): this CPU ({}) does not support it", isa_name(isa),
           cpu_brand());
  g_isa.store((int)isa, std::memory_order_relaxed);
}

namespace {
std::atomic<int> g_conv{-1};
}
ConvLowering conv_lowering() {
  int c = g_conv.load(std::memory_order_relaxed);
  if (c < 0) {
    const char* e = std::getenv("GENVAE_CONV");
    const std::string s = e ? e : "";
    GV_CHECK(s.empty() || s == "packed" || s == "im2col", ValueError,
             "GENVAE_CONV={}: allowed values are packed and im2col", s);
    c = s == "im2col" ? 1 : 0;
    g_conv.store(c, std::memory_order_relaxed);
  }
  return (ConvLowering)c;
}
void set_conv_lowering(ConvLowering c) { g_conv.store((int)c, std::memory_order_relaxed); }
const char* conv_lowering_name(ConvLowering c) { return c == ConvLowering::im2col ? "im2col" : "packed"; }

void set_num_threads(int n) {
  GV_CHECK(n >= 1, ValueError, "set_num_threads: needs at least 1 thread, got {}", n);
  omp_set_num_threads(n);
  openblas_set_num_threads(n);
}
int num_threads() { return omp_get_max_threads(); }
int cpu_count() { return omp_get_num_procs(); }

std::string cpu_brand() {
  unsigned regs[12] = {0};
  unsigned max_ext = __get_cpuid_max(0x80000000u, nullptr);
  if (max_ext < 0x80000004u) return "unknown x86-64 CPU";
  for (unsigned i = 0; i < 3; ++i)
    __get_cpuid(0x80000002u + i, &regs[4 * i], &regs[4 * i + 1], &regs[4 * i + 2], &regs[4 * i + 3]);
  char s[49];
  std::memcpy(s, regs, 48);
  s[48] = 0;
  std::string r(s);
  r.erase(0, r.find_first_not_of(' '));
  while (!r.empty() && (r.back() == ' ' || r.back() == 0)) r.pop_back();
  // family and model as the kernel reports them, since a KVM guest's brand string can be generic
  unsigned a, b, c, d;
  if (__get_cpuid(1, &a, &b, &c, &d)) {
    unsigned fam = (a >> 8) & 0xf, model = (a >> 4) & 0xf;
    if (fam == 6 || fam == 15) model += ((a >> 16) & 0xf) << 4;
    if (fam == 15) fam += (a >> 20) & 0xff;
    r += " (family " + std::to_string(fam) + " model " + std::to_string(model) + ")";
  }
  return r;
}

}  // namespace gv

// The x86-64 instruction set the CPU kernels run with: detected once, or forced with
// METAMLIP_CPU_ISA=baseline|avx2|avx512 (tests and benchmarks compare the variants).
//
// Kernels are compiled once per ISA with __attribute__((target(...))) and chosen through this
// at run time (the pair sums and the tensor sums share it).
#pragma once

#include <torch/torch.h>

#include <cstdlib>
#include <string>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define METAMLIP_X86 1
#define METAMLIP_TARGET_AVX512 __attribute__((target("avx512f,avx512vl,avx512bw,avx512dq,avx2,fma")))
#define METAMLIP_TARGET_AVX2 __attribute__((target("avx2,fma")))
#endif

namespace metamlip {

enum class Isa { baseline, avx2, avx512 };

/// The best ISA this CPU supports, or the one METAMLIP_CPU_ISA asks for (refused if unsupported).
inline Isa detect_isa() {
  Isa best = Isa::baseline;
#ifdef METAMLIP_X86
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) best = Isa::avx2;
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl") &&
      __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512dq"))
    best = Isa::avx512;
#endif
  const char* forced = std::getenv("METAMLIP_CPU_ISA");
  if (forced != nullptr) {
    const std::string name(forced);
    Isa wanted = name == "avx512" ? Isa::avx512 : name == "avx2" ? Isa::avx2 : Isa::baseline;
    TORCH_CHECK(name == "baseline" || name == "avx2" || name == "avx512",
                "METAMLIP_CPU_ISA must be baseline, avx2 or avx512, got ", name);
    TORCH_CHECK(int(wanted) <= int(best), "METAMLIP_CPU_ISA=", name, " is not supported by this CPU");
    return wanted;
  }
  return best;
}

}  // namespace metamlip

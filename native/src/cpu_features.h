// Run-time choice of the SIMD kernels: the addon is built for baseline x86-64 (the distribution's compiler flags), so
// its AVX2 kernels are compiled with target attributes and called only where the CPU reports the features.
#pragma once

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define SIDX_HAVE_AVX2 1
#endif

namespace sidx {

// Whether this CPU runs the AVX2 + FMA kernels; false where they are not compiled. Callers cache it in a constant.
inline bool CpuHasAvx2Fma() {
#ifdef SIDX_HAVE_AVX2
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#else
  return false;
#endif
}

}  // namespace sidx

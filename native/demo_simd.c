/* libdemo_simd.so: built twice by binding.gyp, as a baseline x86-64 build
 * (build/Release/simd-baseline/) and with -mavx2 (build/Release/simd-avx2/),
 * so that a bundle can carry both variants and pick by CPU feature. Both
 * compute the same answer; simd_build() says which build it is. */
#include "demo_export.h"

#if defined(__AVX2__)
#include <immintrin.h>

DEMO_EXPORT const char *simd_build(void) { return "avx2"; }

/* simd_dot8(v) == v[0]² + … + v[7]² (204 for 1…8), with one 256-bit multiply. */
DEMO_EXPORT int simd_dot8(const int *values) {
  const __m256i v = _mm256_loadu_si256((const __m256i *)values);
  int lanes[8];
  _mm256_storeu_si256((__m256i *)lanes, _mm256_mullo_epi32(v, v));
  int sum = 0;
  for (int i = 0; i < 8; i++) sum += lanes[i];
  return sum;
}
#else
DEMO_EXPORT const char *simd_build(void) { return "baseline"; }

/* simd_dot8(v) == v[0]² + … + v[7]², one lane at a time. */
DEMO_EXPORT int simd_dot8(const int *values) {
  int sum = 0;
  for (int i = 0; i < 8; i++) sum += values[i] * values[i];
  return sum;
}
#endif

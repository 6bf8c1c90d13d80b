/* libdemo_core.so (SONAME libdemo_core.so): the base library of the demo
 * bundle. No DT_NEEDED besides libc. The core_* functions exist so that
 * tests can exercise the mapping of C types through koffi. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "demo_export.h"

#define DEMO_CORE_VERSION "demo-core 1.0.0"

/* add(2, 3) == 5 */
DEMO_EXPORT int add(int a, int b) { return a + b; }

/* Always "demo-core 1.0.0" (static storage, never free it). */
DEMO_EXPORT const char *demo_version(void) { return DEMO_CORE_VERSION; }

/* 64-bit product, so values beyond 2^53 can be checked:
 * core_mul64(3000000000, 3000000000) == 9000000000000000000 */
DEMO_EXPORT int64_t core_mul64(int64_t a, int64_t b) { return a * b; }

/* core_scale(1.5, 4.0) == 6.0 */
DEMO_EXPORT double core_scale(double x, double factor) { return x * factor; }

/* Length of a NUL-terminated string; -1 for NULL. core_strlen("hello") == 5 */
DEMO_EXPORT int core_strlen(const char *s) {
  if (s == NULL) return -1;
  return (int)strlen(s);
}

/* C99 bool: core_is_even(4) == true, core_is_even(7) == false. */
DEMO_EXPORT bool core_is_even(int x) { return (x % 2) == 0; }

/* Sum of len bytes; 0 when buf is NULL or len is 0.
 * core_sum_bytes({1, 2, 3, 250}, 4) == 256 */
DEMO_EXPORT int core_sum_bytes(const uint8_t *buf, size_t len) {
  int sum = 0;
  if (buf == NULL) return 0;
  for (size_t i = 0; i < len; i++) sum += buf[i];
  return sum;
}

/* A struct returned by value: core_point(3, 4) == { x = 3, y = 4, len2 = 25 }. */
typedef struct {
  int x;
  int y;
  int len2;
} demo_point;
DEMO_EXPORT demo_point core_point(int x, int y) {
  demo_point p = {x, y, x * x + y * y};
  return p;
}

/* Out parameters: core_divmod(17, 5, &q, &r) sets q = 3, r = 2 and returns 0;
 * it returns -1 and writes nothing when b == 0. */
DEMO_EXPORT int core_divmod(int a, int b, int *quot, int *rem) {
  if (b == 0) return -1;
  *quot = a / b;
  *rem = a % b;
  return 0;
}

/* A pointer that C hands out and takes back: a counter C owns.
 * c = core_counter_new(10); core_counter_next(c) == 10, then 11; core_counter_free(c). */
typedef struct {
  int next;
} demo_counter;
DEMO_EXPORT demo_counter *core_counter_new(int start) {
  demo_counter *c = malloc(sizeof *c);
  if (c != NULL) c->next = start;
  return c;
}
DEMO_EXPORT int core_counter_next(demo_counter *c) { return c->next++; }
DEMO_EXPORT void core_counter_free(demo_counter *c) { free(c); }

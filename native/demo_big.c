/* libdemo_big.so: a 64 MiB library (a large read-only table), so that
 * extraction, hashing and memory use are measured on a size where they
 * matter. NEEDED libdemo_core.so. */
#include "demo_export.h"

int add(int a, int b);

/* The initializer keeps the whole table in the file (in .rodata), not in .bss. */
DEMO_EXPORT const unsigned char demo_big_table[64u << 20] = { 1, 2, 3 };

/* big_check() == add(1, 3) == 4; reads both ends of the table. */
DEMO_EXPORT int big_check(void) {
  return add(demo_big_table[0], demo_big_table[2]) + demo_big_table[(64u << 20) - 1];
}

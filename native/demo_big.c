/* libdemo_big.so: a 64 MiB library (a large read-only table), so that
 * extraction, hashing and memory use are measured on a size where they
 * matter. NEEDED libdemo_core.so. Built a second time with a smaller
 * DEMO_BIG_KIB as libdemo_big_1m.so, for a bundle of about 1 MiB in all. */
#include "demo_export.h"

#ifndef DEMO_BIG_KIB
#define DEMO_BIG_KIB 65536u
#endif
#define DEMO_BIG_BYTES ((DEMO_BIG_KIB) * 1024u)

int add(int a, int b);

/* The initializer keeps the whole table in the file (in .rodata), not in .bss. */
DEMO_EXPORT const unsigned char demo_big_table[DEMO_BIG_BYTES] = { 1, 2, 3 };

/* big_check() == add(1, 3) == 4; reads both ends of the table. */
DEMO_EXPORT int big_check(void) {
  return add(demo_big_table[0], demo_big_table[2]) + demo_big_table[DEMO_BIG_BYTES - 1];
}

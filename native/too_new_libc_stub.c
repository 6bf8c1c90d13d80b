/* libtoo_new_libc_stub.so (SONAME libc.so.6): a stand-in for a glibc newer
 * than any there is, defining the version GLIBC_2.99 (too_new_libc_stub.map).
 * It is built only to be linked against: libtoo_new_glibc.so, linked with it,
 * records that it needs GLIBC_2.99 from libc.so.6, as a library built on a
 * newer distribution records GLIBC_2.38. It is never packed or loaded; at run
 * time the library meets the real libc.so.6, which does not define it.
 *
 * Linked with -nostdlib (the real libc has the same soname and would be
 * dropped from the link), so it defines strlen itself, at GLIBC_2.2.5 like
 * the real one: the library then needs an old version and a new one. */
#include <stddef.h>
#include "demo_export.h"

DEMO_EXPORT size_t strlen(const char *s) {
  size_t n = 0;
  while (s[n] != '\0') n++;
  return n;
}

/* The symbol only GLIBC_2.99 has. */
DEMO_EXPORT int too_new_libc_function(void) { return 99; }

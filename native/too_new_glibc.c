/* libtoo_new_glibc.so: a library "built on a newer system". Linked against
 * libtoo_new_libc_stub.so (SONAME libc.so.6), it needs GLIBC_2.99 and
 * GLIBC_2.2.5 from libc.so.6 (.gnu.version_r), so on every real system the
 * dynamic linker refuses it: "version `GLIBC_2.99' not found". It also needs
 * libdemo_core.so, so that a bundle of the two has a dependency to load first
 * (which the check before loading must keep from being loaded). */
#include <string.h>
#include "demo_export.h"

/* From libc.so.6 at GLIBC_2.99 (the stand-in). */
extern int too_new_libc_function(void);

/* From libdemo_core.so. */
extern int add(int a, int b);

/* too_new_glibc_run("ab") == 101, where a libc with GLIBC_2.99 exists. */
DEMO_EXPORT int too_new_glibc_run(const char *s) { return add(too_new_libc_function(), (int)strlen(s)); }

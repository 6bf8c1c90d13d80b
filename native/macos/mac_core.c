/* libmac_core.dylib (install name @rpath/libmac_core.dylib): the base of the
 * cross-built Mach-O chain. It calls strlen from libSystem, so its one
 * external dependency, /usr/lib/libSystem.B.dylib, is a real one. */
#include <stddef.h>

size_t strlen(const char *s);

__attribute__((visibility("default"))) int mac_core_add(int a, int b) { return a + b; }

__attribute__((visibility("default"))) int mac_core_length(const char *s) { return s == NULL ? -1 : (int)strlen(s); }

/* libtoo_new_cxx.so: a library "built with a newer GCC". Linked against
 * libtoo_new_cxx_stub.so (SONAME libstdc++.so.6), it needs GLIBCXX_3.4,
 * GLIBCXX_3.4.99 and CXXABI_1.3.99 from libstdc++.so.6, so the dynamic linker
 * refuses it with every real libstdc++: "version `GLIBCXX_3.4.99' not found". */
#include "demo_export.h"

/* From libstdc++.so.6 (the stand-in). */
extern int too_new_cxx_old_function(void);
extern int too_new_cxx_function(void);
extern int too_new_cxxabi_function(void);

/* too_new_cxx_run() == 44, where such a libstdc++ exists. */
DEMO_EXPORT int too_new_cxx_run(void) { return too_new_cxx_old_function() + too_new_cxx_function() + too_new_cxxabi_function(); }

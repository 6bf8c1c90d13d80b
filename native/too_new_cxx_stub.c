/* libtoo_new_cxx_stub.so (SONAME libstdc++.so.6): a stand-in for a libstdc++
 * newer than any there is, defining GLIBCXX_3.4.99 and CXXABI_1.3.99 besides
 * the oldest versions (too_new_cxx_stub.map). libtoo_new_cxx.so is linked
 * against it and so needs those versions from libstdc++.so.6; at run time it
 * meets the real libstdc++.so.6, which does not define them. Tests also pack
 * it beside libtoo_new_cxx.so: a bundle that carries its own libstdc++.so.6. */
#include "demo_export.h"

DEMO_EXPORT int too_new_cxx_old_function(void) { return 1; }
DEMO_EXPORT int too_new_cxx_function(void) { return 30; }
DEMO_EXPORT int too_new_cxxabi_old_function(void) { return 0; }
DEMO_EXPORT int too_new_cxxabi_function(void) { return 13; }

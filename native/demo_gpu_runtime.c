/* libdemo_gpu_runtime.so.1 (SONAME libdemo_gpu_runtime.so.1): a stand-in for
 * a system GPU runtime. It is deliberately NOT part of the demo bundle; it is
 * built only so that libdemo_accel.so can be linked, and so tests can put it
 * on LD_LIBRARY_PATH of a child process to show the optional accelerator
 * loading once its runtime is present. */
#include "demo_export.h"

/* gpu_runtime_square(x) == x * x */
DEMO_EXPORT int gpu_runtime_square(int x) { return x * x; }

/* libdemo_accel.so: an optional accelerator. DT_NEEDED:
 * libdemo_gpu_runtime.so.1, which is not in the bundle, so loading this
 * library fails unless that runtime is findable by the dynamic linker. */
#include "demo_export.h"

/* From libdemo_gpu_runtime.so.1. */
extern int gpu_runtime_square(int x);

/* accel_run(x) == gpu_runtime_square(x) + 1 == x * x + 1; accel_run(3) == 10 */
DEMO_EXPORT int accel_run(int x) { return gpu_runtime_square(x) + 1; }

/* libdemo_plugin.so: linked by nobody. libdemo_app.so dlopen()s it from the
 * directory libdemo_app.so itself was loaded from. */
#include "demo_export.h"

/* plugin_run(x) == x * 3 + 7; plugin_run(2) == 13 */
DEMO_EXPORT int plugin_run(int x) { return x * 3 + 7; }

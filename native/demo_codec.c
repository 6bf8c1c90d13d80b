/* libdemo_codec: the FILE is libdemo_codec.so.1.2.3 but its SONAME is
 * libdemo_codec.so.1 (they differ on purpose, as with real versioned
 * libraries). DT_NEEDED: libdemo_core.so. */
#include "demo_export.h"

/* From libdemo_core.so. */
extern int add(int a, int b);

/* codec_encode(x) == add(x, 1000) == x + 1000; codec_encode(1) == 1001 */
DEMO_EXPORT int codec_encode(int x) { return add(x, 1000); }

/* Always "demo-codec 1.2.3". */
DEMO_EXPORT const char *codec_name(void) { return "demo-codec 1.2.3"; }

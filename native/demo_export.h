/* Shared by the demo libraries in native/.
 *
 * Every library is compiled with -fvisibility=hidden (see binding.gyp), so
 * only functions marked DEMO_EXPORT end up in the dynamic symbol table. */
#ifndef DEMO_EXPORT_H
#define DEMO_EXPORT_H

#define DEMO_EXPORT __attribute__((visibility("default")))

#endif

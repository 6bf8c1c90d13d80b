/* libdemo_app.so (SONAME libdemo_app.so): the top of the demo bundle.
 * DT_NEEDED: libdemo_codec.so.1 and libdemo_core.so.
 *
 * It also dlopen()s libdemo_plugin.so from the directory it was itself
 * loaded from (found with dladdr), the way real libraries find their plugins
 * next to themselves; so a bundle loader must keep libraries together in one
 * directory. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <string.h>

#include "demo_export.h"

/* From libdemo_core.so. */
extern int add(int a, int b);
/* From libdemo_codec.so.1. */
extern int codec_encode(int x);

#define PLUGIN_FILE "libdemo_plugin.so"
#define PLUGIN_SYMBOL "plugin_run"

/* Error codes returned by app_call_plugin. */
#define APP_ERR_DLADDR (-1)   /* dladdr could not find this library's path */
#define APP_ERR_DLOPEN (-2)   /* dlopen of <dir>/libdemo_plugin.so failed */
#define APP_ERR_DLSYM (-3)    /* plugin_run not found in the plugin */
#define APP_ERR_PATH (-4)     /* the plugin's path does not fit the buffer */

/* Text of the last failure of app_call_plugin, or empty. Not thread-safe;
 * enough for tests. */
static char last_error[4096];

static void set_error(const char *what, const char *detail) {
  snprintf(last_error, sizeof last_error, "%s: %s", what,
           detail != NULL ? detail : "(no detail)");
}

/* app_compute(x) == add(codec_encode(x), add(x, 1))
 *               == (x + 1000) + (x + 1) == 2 * x + 1001.
 * app_compute(5) == 1011, app_compute(0) == 1001. */
DEMO_EXPORT int app_compute(int x) { return add(codec_encode(x), add(x, 1)); }

/* Loads <directory of libdemo_app.so>/libdemo_plugin.so with
 * RTLD_NOW | RTLD_LOCAL, calls plugin_run(x) and returns its result
 * (plugin_run(x) == x * 3 + 7, so app_call_plugin(2) == 13).
 * On failure returns one of the negative APP_ERR_* codes above; the reason is
 * then available from app_plugin_error(). The plugin is dlclose()d again
 * before returning. */
DEMO_EXPORT int app_call_plugin(int x) {
  Dl_info info;
  char path[4096];
  const char *slash;
  size_t dir_len;
  void *handle;
  int (*run)(int);
  int result;

  last_error[0] = '\0';

  memset(&info, 0, sizeof info);
  if (dladdr((void *)&app_call_plugin, &info) == 0 || info.dli_fname == NULL) {
    set_error("dladdr", "could not find the path of libdemo_app.so");
    return APP_ERR_DLADDR;
  }

  slash = strrchr(info.dli_fname, '/');
  if (slash == NULL) {
    /* Loaded by a bare name: the dynamic linker's own path has no directory. */
    result = snprintf(path, sizeof path, "./%s", PLUGIN_FILE);
  } else {
    dir_len = (size_t)(slash - info.dli_fname);
    result = snprintf(path, sizeof path, "%.*s/%s", (int)dir_len,
                      info.dli_fname, PLUGIN_FILE);
  }
  if (result < 0 || (size_t)result >= sizeof path) {
    set_error("path", info.dli_fname);
    return APP_ERR_PATH;
  }

  dlerror(); /* clear any stale error */
  handle = dlopen(path, RTLD_NOW | RTLD_LOCAL);
  if (handle == NULL) {
    set_error("dlopen", dlerror());
    return APP_ERR_DLOPEN;
  }

  dlerror();
  *(void **)&run = dlsym(handle, PLUGIN_SYMBOL);
  if (run == NULL) {
    set_error("dlsym", dlerror());
    dlclose(handle);
    return APP_ERR_DLSYM;
  }

  result = run(x);
  dlclose(handle);
  return result;
}

/* The reason for the most recent failure of app_call_plugin (for example the
 * dlerror() text of a failed dlopen), or NULL when the most recent call
 * succeeded or none was made yet. Valid until the next app_call_plugin. */
DEMO_EXPORT const char *app_plugin_error(void) {
  return last_error[0] != '\0' ? last_error : NULL;
}

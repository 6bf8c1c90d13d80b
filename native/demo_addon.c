/* demo.node: a small N-API addon linked against libdemo_core.so
 * (DT_NEEDED libdemo_core.so, no RPATH/RUNPATH), so process.dlopen() of it
 * works only once libdemo_core.so has been loaded.
 *
 * Exports:
 *   add(a, b)  -> number   calls add() from libdemo_core.so (int32 args)
 *   version()  -> string   demo_version() from libdemo_core.so
 */
#include <stddef.h>

#include <node_api.h>

/* From libdemo_core.so. */
extern int add(int a, int b);
extern const char *demo_version(void);

#define CHECK(env, call)                                         \
  do {                                                           \
    if ((call) != napi_ok) {                                     \
      napi_throw_error((env), NULL, "demo.node: " #call " failed"); \
      return NULL;                                               \
    }                                                            \
  } while (0)

static napi_value js_add(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  napi_valuetype type;
  int32_t a, b;
  napi_value out;

  CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 2) {
    napi_throw_type_error(env, NULL, "add(a, b) expects two numbers");
    return NULL;
  }
  for (size_t i = 0; i < 2; i++) {
    CHECK(env, napi_typeof(env, argv[i], &type));
    if (type != napi_number) {
      napi_throw_type_error(env, NULL, "add(a, b) expects two numbers");
      return NULL;
    }
  }
  CHECK(env, napi_get_value_int32(env, argv[0], &a));
  CHECK(env, napi_get_value_int32(env, argv[1], &b));
  CHECK(env, napi_create_int32(env, add(a, b), &out));
  return out;
}

static napi_value js_version(napi_env env, napi_callback_info info) {
  napi_value out;
  (void)info;
  CHECK(env, napi_create_string_utf8(env, demo_version(), NAPI_AUTO_LENGTH, &out));
  return out;
}

NAPI_MODULE_INIT(/* napi_env env, napi_value exports */) {
  napi_property_descriptor props[] = {
      {"add", NULL, js_add, NULL, NULL, NULL, napi_enumerable, NULL},
      {"version", NULL, js_version, NULL, NULL, NULL, napi_enumerable, NULL},
  };
  if (napi_define_properties(env, exports, sizeof props / sizeof props[0], props) != napi_ok) {
    return NULL;
  }
  return exports;
}

/* libmac_accel.dylib (install name @rpath/libmac_accel.dylib): an optional
 * accelerator that libmac_app.dylib links weakly (LC_LOAD_WEAK_DYLIB), so
 * dyld loads libmac_app.dylib whether or not it is present. */
__attribute__((visibility("default"))) int mac_accel_run(int x) { return x * 2; }

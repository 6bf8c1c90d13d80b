/* libmac_app.dylib (install name @rpath/libmac_app.dylib): needs
 * @loader_path/libmac_codec.dylib (a path relative to itself, not an @rpath
 * name) and links libmac_accel.dylib weakly: when it is absent, dyld binds
 * mac_accel_run to NULL instead of refusing to load. */
int mac_codec_encode(int x);
int mac_accel_run(int x) __attribute__((weak_import));

__attribute__((visibility("default"))) int mac_app_run(int x) {
  int y = mac_codec_encode(x);
  return mac_accel_run != 0 ? mac_accel_run(y) : y;
}

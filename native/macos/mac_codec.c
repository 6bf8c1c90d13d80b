/* libmac_codec.dylib (install name @rpath/libmac_codec.dylib, LC_RPATH
 * @loader_path): needs @rpath/libmac_core.dylib, which dyld finds through
 * its own LC_RPATH, i.e. next to it. */
int mac_core_add(int a, int b);

__attribute__((visibility("default"))) int mac_codec_encode(int x) { return mac_core_add(x, 100); }

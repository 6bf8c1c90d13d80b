/* mac_addon.node: a Mach-O bundle (MH_BUNDLE), as node-gyp builds a Node
 * addon on macOS (-bundle -undefined dynamic_lookup). It needs
 * @rpath/libmac_app.dylib and resolves napi_module_register from the process
 * that loads it (node), which no file of the bundle provides. */
typedef struct napi_module napi_module;
void napi_module_register(napi_module *mod);
int mac_app_run(int x);

__attribute__((visibility("default"))) int mac_addon_run(int x) { return mac_app_run(x); }

/* What node-gyp's NAPI_MODULE would do at load time; here an exported
 * function, so the undefined symbol is real without running anything. */
__attribute__((visibility("default"))) void mac_addon_register(napi_module *mod) { napi_module_register(mod); }

/* musl-loader: a test tool, built with musl-gcc by scripts/build-musl.js.
 * dlopen()s each argument in order with musl's dynamic loader, then calls
 * app_compute(5) from the last one and prints the result. On failure it
 * prints musl's dlerror() and exits 2. It shows how musl resolves DT_NEEDED:
 * against the names libraries were loaded by, not their sonames. */
#include <dlfcn.h>
#include <stdio.h>

int main(int argc, char **argv) {
  void *handle = NULL;
  for (int i = 1; i < argc; i++) {
    handle = dlopen(argv[i], RTLD_NOW | RTLD_LOCAL);
    if (handle == NULL) {
      printf("dlopen failed: %s\n", dlerror());
      return 2;
    }
  }
  int (*compute)(int) = handle == NULL ? NULL : (int (*)(int))dlsym(handle, "app_compute");
  if (compute == NULL) {
    printf("dlsym failed: %s\n", dlerror());
    return 2;
  }
  printf("%d\n", compute(5));
  return 0;
}

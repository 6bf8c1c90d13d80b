/* chain_a.dll: the bottom of a three-DLL chain built with mingw-w64 for the
 * Windows tests under Wine (scripts/build-win32.js). chain_b.dll imports it
 * and chain_c.dll imports chain_b.dll, by name and without a path, so Windows
 * finds each only if it is already loaded (or on the DLL search path):
 *   chain_c(x) == chain_b(x) * 10 + 3 == (chain_a(x) * 10 + 2) * 10 + 3
 * with chain_a(x) == x + 1, e.g. chain_c(4) == 523. */
__declspec(dllexport) int chain_a(int x) { return x + 1; }

/* chain_c.dll: imports chain_b.dll (see chain_a.c for the chain). */
__declspec(dllimport) int chain_b(int x);
__declspec(dllexport) int chain_c(int x) { return chain_b(x) * 10 + 3; }

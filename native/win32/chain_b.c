/* chain_b.dll: imports chain_a.dll (see chain_a.c for the chain). */
__declspec(dllimport) int chain_a(int x);
__declspec(dllexport) int chain_b(int x) { return chain_a(x) * 10 + 2; }

/* A stand-in for Windows 10's bcryptprimitives.dll, which Wine 8 lacks,
 * installed into the Wine prefix by scripts/wine-env.js (never shipped, never
 * bundled). Programs built with Rust's standard library import ProcessPrng
 * from it to get random bytes; this one asks Wine's bcrypt.dll for them, the
 * system's preferred generator, as Windows's own does. */
#include <windows.h>
#include <bcrypt.h>

__declspec(dllexport) BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T size)
{
    while (size > 0) {
        ULONG chunk = size > 0x40000000 ? 0x40000000 : (ULONG)size;
        if (!BCRYPT_SUCCESS(BCryptGenRandom(NULL, data, chunk, BCRYPT_USE_SYSTEM_PREFERRED_RNG)))
            return FALSE;
        data += chunk;
        size -= chunk;
    }
    return TRUE;
}

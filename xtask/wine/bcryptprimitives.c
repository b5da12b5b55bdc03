/* A stand-in for bcryptprimitives.dll, which Wine 8.0 (Debian 12) lacks: Rust's standard
 * library imports ProcessPrng from it on Windows, and every test binary would exit with
 * status 53 (c0000135, DLL not found) without it. ProcessPrng fills the buffer from the
 * system's random source, here RtlGenRandom (advapi32 SystemFunction036), in chunks that
 * fit its ULONG length. Wine 8.13 and later ship the real DLL. */
#include <windows.h>

BOOLEAN WINAPI SystemFunction036(PVOID buffer, ULONG length);

__declspec(dllexport) BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T length) {
    while (length > 0) {
        ULONG chunk = length > 0x40000000 ? 0x40000000 : (ULONG)length;
        if (!SystemFunction036(data, chunk)) {
            return FALSE;
        }
        data += chunk;
        length -= chunk;
    }
    return TRUE;
}

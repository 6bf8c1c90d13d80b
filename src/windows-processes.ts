/**
 * Windows processes as the leases need them (leases.ts): when a process
 * started — GetProcessTimes' creation time, in 100 ns units since 1601, as a
 * decimal string — asked of kernel32.dll through koffi. It is to a Windows
 * pid what field 22 of `/proc/<pid>/stat` is to a Linux one: a pid is
 * reused, the pair is not.
 */
import { koffiUnlessObtaining } from './koffi';

// <winnt.h>: enough to read a process's times, granted for any process of this user.
const PROCESS_QUERY_LIMITED_INFORMATION = 0x1000;

interface Kernel32 {
  openProcess(access: number, inherit: number, pid: number): unknown;
  getProcessTimes(handle: unknown, creation: unknown[], exit: unknown[], kernel: unknown[], user: unknown[]): number;
  closeHandle(handle: unknown): number;
}

let kernel32: Kernel32 | undefined;

function api(): Kernel32 | null {
  if (kernel32 !== undefined) return kernel32;
  const ffi = koffiUnlessObtaining();
  if (ffi === null) return null;
  const lib = ffi.load('kernel32.dll');
  // A FILETIME is two 32-bit halves, low first: on little-endian Windows, a uint64.
  kernel32 = {
    openProcess: lib.func('void *OpenProcess(uint32_t access, int inherit, uint32_t pid)') as Kernel32['openProcess'],
    getProcessTimes: lib.func('int GetProcessTimes(void *process, _Out_ uint64_t *creation, _Out_ uint64_t *exit, _Out_ uint64_t *kernel, _Out_ uint64_t *user)') as Kernel32['getProcessTimes'],
    closeHandle: lib.func('int CloseHandle(void *handle)') as Kernel32['closeHandle'],
  };
  return kernel32;
}

/**
 * When Windows process `pid` started (100 ns units since 1601-01-01, a
 * decimal string), or null when it cannot be asked (gone, or not this
 * user's and not readable), or koffi is not there to ask with yet (a single
 * executable placing its own koffi.node: its lease then names the pid alone,
 * which keeps a directory while any process has that pid, never less).
 *
 * @example
 * windowsProcessStart(process.pid) // '134406173121034180'
 */
export function windowsProcessStart(pid: number): string | null {
  const k = api();
  if (k === null) return null;
  const handle = k.openProcess(PROCESS_QUERY_LIMITED_INFORMATION, 0, pid);
  if (handle === null) return null;
  try {
    const creation: unknown[] = [0];
    if (k.getProcessTimes(handle, creation, [0], [0], [0]) === 0) return null;
    // koffi gives a uint64 past 2^53 as a BigInt: String() is exact either way.
    return String(creation[0]);
  } finally {
    k.closeHandle(handle);
  }
}

/**
 * Memory mode (Linux): each library goes into an anonymous in-memory file
 * (`memfd_create`) and is loaded from `/proc/self/fd/<n>`, so nothing is
 * written to disk — for `mode: 'memory'`, and as the last resort of
 * `mode: 'auto'` when no cache root can be used (read-only, noexec, full).
 *
 * The descriptors stay open for the life of the process: glibc identifies a
 * loaded object by the path it was opened with, and a closed descriptor
 * number reused for another library would make `/proc/self/fd/<n>` look
 * "already loaded". Dependencies are matched by soname, as on disk.
 */
import createDebug from 'debug';
import { DlbundleError } from './errors';
import { koffi } from './koffi';
import { MEMORY_FILE_LABEL } from './manifest';

const debug = createDebug('dlbundle:cache');

// <linux/memfd.h>: close on exec; MFD_EXEC asks for an executable memfd where
// the kernel's vm.memfd_noexec policy would otherwise make it non-executable.
const MFD_CLOEXEC = 0x1;
const MFD_EXEC = 0x10;
const EINVAL = 22;

type MemfdCreate = (name: string, flags: number) => number;
let memfdCreate: MemfdCreate | undefined;
let flagsThatWork: number | undefined;


/**
 * Whether memory mode can work on this platform at all.
 *
 * @example
 * if (memoryModeSupported()) openBundle({ source, mode: 'memory' });
 */
export function memoryModeSupported(): boolean {
  return process.platform === 'linux';
}

/**
 * Creates an executable in-memory file named after `name` and returns its
 * descriptor, which stays open for the life of the process. Tries
 * `MFD_CLOEXEC | MFD_EXEC`, then `MFD_CLOEXEC` on kernels that do not know
 * MFD_EXEC (EINVAL); any other refusal (EPERM, EACCES from
 * `vm.memfd_noexec = 2`) is `E_NOEXEC`.
 *
 * @example
 * const fd = createMemoryFile('libdemo_core.so'); // then write it and load `/proc/self/fd/${fd}`
 */
export function createMemoryFile(name: string): number {
  if (!memoryModeSupported()) {
    throw new DlbundleError('E_USAGE', `Memory mode needs Linux (memfd_create); this is ${process.platform}.`, "Use mode: 'disk' with a writable cache directory.");
  }
  const ffi = koffi();
  memfdCreate ??= ffi.load(null).func('int memfd_create(const char *name, unsigned int flags)') as unknown as MemfdCreate;
  // The manifest refuses file names too long for this label (FILE_NAME_MAX_BYTES).
  const label = `${MEMORY_FILE_LABEL}${name}`;
  for (const flags of flagsThatWork === undefined ? [MFD_CLOEXEC | MFD_EXEC, MFD_CLOEXEC] : [flagsThatWork]) {
    const fd = memfdCreate(label, flags);
    if (fd >= 0) {
      flagsThatWork = flags;
      debug('memfd %d for %s (flags 0x%s)', fd, name, flags.toString(16));
      return fd;
    }
    const errno = ffi.errno();
    if (errno !== EINVAL) {
      throw new DlbundleError('E_NOEXEC', `memfd_create refused an executable memory file for ${JSON.stringify(name)} (errno ${errno}).`, 'The kernel forbids executable memory files here (vm.memfd_noexec); give dlbundle a cache directory on a file system that allows executables.', { file: name });
    }
  }
  throw new DlbundleError('E_NOEXEC', `memfd_create is not usable for ${JSON.stringify(name)} on this kernel.`, 'Give dlbundle a cache directory on a file system that allows executables.', { file: name });
}

/** The path a memory file is loaded from. */
export function memoryFilePath(fd: number): string {
  return `/proc/self/fd/${fd}`;
}

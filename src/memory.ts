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
import type * as childProcess from 'node:child_process';
import fs = require('node:fs');
import { logger } from './log';
import { streamVerified, type CacheRequest } from './cache';
import { DlbundleError } from './errors';
import { runSync, syncIo } from './io';
import { koffi } from './koffi';
import { MEMORY_FILE_LABEL, type ManifestFile } from './manifest';
import { runtimePlatform } from './platform';

const debug = logger('dlbundle:cache');

// <linux/memfd.h>: close on exec; MFD_EXEC asks for an executable memfd where
// the kernel's vm.memfd_noexec policy would otherwise make it non-executable.
const MFD_CLOEXEC = 0x1;
const MFD_EXEC = 0x10;
const EINVAL = 22;

type MemfdCreate = (name: string, flags: number) => number;
let memfdCreate: MemfdCreate | undefined;
let flagsThatWork: number | undefined;


/**
 * Whether memory mode can work on `platform` (default: this process's) at all (platform.ts).
 *
 * @example
 * if (memoryModeSupported()) openBundle({ source, mode: 'memory' });
 */
export function memoryModeSupported(platform: NodeJS.Platform = process.platform): boolean {
  return runtimePlatform(platform).noMemoryMode === null;
}

/**
 * `E_USAGE` saying that memory mode does not exist on `platform` (default:
 * this system), and why.
 *
 * @example
 * if (!memoryModeSupported()) throw noMemoryMode();
 */
export function noMemoryMode(platformName: NodeJS.Platform = process.platform): DlbundleError {
  const platform = runtimePlatform(platformName);
  return new DlbundleError(
    'E_USAGE',
    `mode: 'memory' cannot be used on ${platform.name}: ${platform.noMemoryMode ?? 'it is not supported here'}.`,
    "Use mode: 'disk' (or 'auto', the default) with a writable cache directory.",
  );
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
  if (!memoryModeSupported()) throw noMemoryMode();
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

/**
 * Writes `file` from the source into the new memory file `fd`, checked
 * against the manifest (`E_INTEGRITY` otherwise), and returns `fd`. A refused
 * file's descriptor is closed: it was never opened by dlopen, so its number
 * can be reused safely.
 *
 * @example
 * const fd = fillMemoryFile(createMemoryFile(file.name), { source, variantKey }, file);
 */
export function fillMemoryFile(fd: number, from: Pick<CacheRequest, 'source' | 'variantKey'>, file: ManifestFile): number {
  try {
    runSync(streamVerified(syncIo, from, file, fd, Buffer.allocUnsafe(1 << 16)));
  } catch (e) {
    fs.closeSync(fd);
    throw e;
  }
  return fd;
}

/** The path a memory file is loaded from. */
export function memoryFilePath(fd: number): string {
  return `/proc/self/fd/${fd}`;
}

// memfd_create's number where perl needs it (perl's syscall() takes a number;
// python's os.memfd_create does not), per Node architecture.
const MEMFD_CREATE_NR: Readonly<Partial<Record<string, number>>> = { x64: 319, arm64: 279, arm: 385, ia32: 356, ppc64: 360, s390x: 350, riscv64: 279, loong64: 279 };

// The helpers make the memory file, fork a child that keeps it open, print
// "<child pid> <fd>" and exit, so that spawnSync returns while the memory file
// still exists; the child closes its output and lives for at most 30 s.
const PERL_HELPER = `
my ($nr, $name) = @ARGV;
my $fd = syscall($nr, $name, 0x10);
$fd = syscall($nr, $name, 0) if $fd < 0 && $!{EINVAL};
if ($fd < 0) { print STDERR "memfd_create failed: $!\\n"; exit 2; }
my $pid = fork();
if (!defined $pid) { print STDERR "fork failed: $!\\n"; exit 3; }
if ($pid) { print "$pid $fd\\n"; exit 0; }
open(STDIN, '<', '/dev/null'); open(STDOUT, '>', '/dev/null'); open(STDERR, '>', '/dev/null');
sleep 30;`;
const PYTHON_HELPER = `
import os, sys, time, errno
try:
    fd = os.memfd_create(sys.argv[1], 0x10)
except OSError as e:
    if e.errno != errno.EINVAL: sys.exit('memfd_create failed: %s' % e)
    fd = os.memfd_create(sys.argv[1], 0)
pid = os.fork()
if pid:
    print(pid, fd, flush=True)
    os._exit(0)
null = os.open('/dev/null', os.O_RDWR)
for n in (0, 1, 2): os.dup2(null, n)
time.sleep(30)`;

/** The interpreters tried, by absolute path only: a PATH entry is not trusted to name the program that creates executable memory. */
const HELPERS: readonly { readonly program: string; readonly args: (name: string) => string[] | null }[] = [
  { program: '/usr/bin/perl', args: (name) => (MEMFD_CREATE_NR[process.arch] === undefined ? null : ['-e', PERL_HELPER, String(MEMFD_CREATE_NR[process.arch]), name]) },
  // -I -S: no current directory, user site-packages or site module on python's path.
  { program: '/usr/bin/python3', args: (name) => ['-I', '-S', '-c', PYTHON_HELPER, name] },
];

/**
 * {@link createMemoryFile} for the one file that must be placed before koffi
 * can be loaded: koffi's own `koffi.node`. Node cannot call `memfd_create`,
 * and no native code may run before koffi, so a system interpreter (perl,
 * else python3) makes the memory file and keeps it open just long enough for
 * this process to open its own descriptor through `/proc/<pid>/fd/<n>`. The
 * descriptor is checked to be an empty memory file of that name, then
 * returned; it stays open for the life of the process. `E_NOEXEC`, saying
 * what each helper answered, when none can.
 *
 * @example
 * const fd = createMemoryFileWithoutKoffi('koffi.node'); // then write it and process.dlopen `/proc/self/fd/${fd}`
 */
export function createMemoryFileWithoutKoffi(name: string): number {
  if (!memoryModeSupported()) throw noMemoryMode();
  const label = `${MEMORY_FILE_LABEL}${name}`;
  const tried: string[] = [];
  // Required here: child_process loads net, stream and dgram (≈ 5 ms in a
  // single executable), and only this rare fallback needs it.
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { spawnSync } = require('node:child_process') as typeof childProcess;
  for (const helper of HELPERS) {
    const args = helper.args(label);
    if (args === null) {
      tried.push(`${helper.program}: no memfd_create number known for ${process.arch}`);
      continue;
    }
    const r = spawnSync(helper.program, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 10_000, env: {} });
    const answer = /^(\d+) (\d+)\s*$/.exec(r.stdout ?? '');
    if (r.error !== undefined || r.status !== 0 || answer === null) {
      tried.push(`${helper.program}: ${r.error?.message ?? ((r.stderr ?? '').trim() || `exit status ${String(r.status)}`)}`);
      continue;
    }
    const [, pid, fd] = answer;
    let own: number | undefined;
    try {
      own = fs.openSync(`/proc/${pid}/fd/${fd}`, 'r+');
      // The pid could only have been reused if the holder had died: check that
      // this is an empty, unlinked memory file of this user with our name.
      const link = fs.readlinkSync(memoryFilePath(own));
      const st = fs.fstatSync(own);
      if (link !== `/memfd:${label} (deleted)` || st.size !== 0 || st.nlink !== 0 || st.uid !== process.geteuid?.()) {
        throw new Error(`/proc/${pid}/fd/${fd} is ${JSON.stringify(link)}, not the new memory file`);
      }
    } catch (e) {
      if (own !== undefined) fs.closeSync(own);
      // Not known to be our holder: it is left alone (it exits by itself within 30 s).
      tried.push(`${helper.program}: ${(e as Error).message}`);
      continue;
    }
    try {
      process.kill(Number(pid), 'SIGKILL');
    } catch (e) {
      debug('memory file holder %s already gone: %s', pid, (e as Error).message);
    }
    debug('memfd %d for %s, made by %s', own, name, helper.program);
    return own;
  }
  throw new DlbundleError(
    'E_NOEXEC',
    `No executable memory file could be made for ${JSON.stringify(name)} before koffi is loaded:\n${tried.map((t) => `  ${t}`).join('\n')}`,
    'Give dlbundle a cache directory on a file system that allows executables (DLBUNDLE_CACHE_DIR), or install perl or python3 (at /usr/bin), which dlbundle uses to create the one memory file that koffi itself needs.',
    { file: name },
  );
}

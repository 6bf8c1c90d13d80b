/**
 * Platform facts and the choice of variant: which target keys exist, which
 * ELF machine each one runs, and which key this machine has. Every
 * platform-specific fact lives in the one table below.
 */
import * as fs from 'node:fs';
import { DlbundleError } from './errors';
import { readInterpreterFile } from './elf-file';

/** The C library a Linux target is built against. */
export type Libc = 'gnu' | 'musl';

/** What a target key stands for. */
export interface TargetFacts {
  readonly platform: NodeJS.Platform;
  /** `process.arch` on that target. */
  readonly arch: NodeJS.Architecture;
  readonly libc: Libc | null;
  /** The ELF `e_machine` name and class its shared objects carry; null for non-ELF platforms. */
  readonly elf: { readonly machine: string; readonly class: 32 | 64 } | null;
  /**
   * Where glibc looks for libraries by default on this target: the Debian
   * multiarch tuple of its library directories, and the architecture bits of
   * `/etc/ld.so.cache` entries built for it. Null where dlbundle does not
   * resolve system libraries itself.
   */
  readonly glibc: { readonly multiarch: string; readonly ldCacheFlags: number } | null;
}

// Keyed like esbuild's platform table: `<platform>-<arch>[-<libc>]`.
const TARGETS: Readonly<Record<string, TargetFacts>> = {
  'linux-x64-gnu': { platform: 'linux', arch: 'x64', libc: 'gnu', elf: { machine: 'x86_64', class: 64 }, glibc: { multiarch: 'x86_64-linux-gnu', ldCacheFlags: 0x0303 } },
  'linux-x64-musl': { platform: 'linux', arch: 'x64', libc: 'musl', elf: { machine: 'x86_64', class: 64 }, glibc: null },
  'linux-arm64-gnu': { platform: 'linux', arch: 'arm64', libc: 'gnu', elf: { machine: 'aarch64', class: 64 }, glibc: { multiarch: 'aarch64-linux-gnu', ldCacheFlags: 0x0a03 } },
  'linux-arm64-musl': { platform: 'linux', arch: 'arm64', libc: 'musl', elf: { machine: 'aarch64', class: 64 }, glibc: null },
  'linux-arm-gnu': { platform: 'linux', arch: 'arm', libc: 'gnu', elf: { machine: 'arm', class: 32 }, glibc: { multiarch: 'arm-linux-gnueabihf', ldCacheFlags: 0x0903 } },
  'linux-ia32-gnu': { platform: 'linux', arch: 'ia32', libc: 'gnu', elf: { machine: 'i386', class: 32 }, glibc: { multiarch: 'i386-linux-gnu', ldCacheFlags: 0x0003 } },
  'linux-riscv64-gnu': { platform: 'linux', arch: 'riscv64', libc: 'gnu', elf: { machine: 'riscv', class: 64 }, glibc: { multiarch: 'riscv64-linux-gnu', ldCacheFlags: 0x1003 } },
  'linux-ppc64-gnu': { platform: 'linux', arch: 'ppc64', libc: 'gnu', elf: { machine: 'ppc64', class: 64 }, glibc: { multiarch: 'powerpc64le-linux-gnu', ldCacheFlags: 0x0503 } },
  'linux-s390x-gnu': { platform: 'linux', arch: 's390x', libc: 'gnu', elf: { machine: 's390', class: 64 }, glibc: { multiarch: 's390x-linux-gnu', ldCacheFlags: 0x0403 } },
  'linux-loong64-gnu': { platform: 'linux', arch: 'loong64', libc: 'gnu', elf: { machine: 'loongarch', class: 64 }, glibc: { multiarch: 'loongarch64-linux-gnu', ldCacheFlags: 0x1303 } },
  'freebsd-x64': { platform: 'freebsd', arch: 'x64', libc: null, elf: { machine: 'x86_64', class: 64 }, glibc: null },
  'darwin-x64': { platform: 'darwin', arch: 'x64', libc: null, elf: null, glibc: null },
  'darwin-arm64': { platform: 'darwin', arch: 'arm64', libc: null, elf: null, glibc: null },
  'win32-x64': { platform: 'win32', arch: 'x64', libc: null, elf: null, glibc: null },
  'win32-arm64': { platform: 'win32', arch: 'arm64', libc: null, elf: null, glibc: null },
};

/**
 * The facts of a target key; throws `E_USAGE` listing the known keys when it is not one.
 *
 * @example
 * targetFacts('linux-arm64-gnu').elf // { machine: 'aarch64', class: 64 }
 */
export function targetFacts(key: string): TargetFacts {
  const facts = TARGETS[key];
  if (facts === undefined) {
    throw new DlbundleError(
      'E_USAGE',
      `Unknown target ${JSON.stringify(key)}.`,
      `Use one of: ${Object.keys(TARGETS).join(', ')}.`,
    );
  }
  return facts;
}

/** Every known target key. */
export function knownTargets(): string[] {
  return Object.keys(TARGETS);
}

let hostLibcCache: Libc | null | undefined;

// Linkers put PT_INTERP right after the program headers, inside the first page.
const FIRST_PAGE = 4096;

/**
 * The C library of the running process, decided once from the program
 * interpreter of `/proc/self/exe` (musl's is `ld-musl-*.so.1`, glibc's
 * `ld-linux-*.so.*`). The common case is one 4 KiB read and a byte search,
 * because this runs on every start while the code is cold; the ELF reader is
 * used only when neither name is in the first page. (`process.report` takes
 * milliseconds, and so does reading /proc/self/maps.)
 *
 * @example
 * hostLibc() // 'gnu'
 */
export function hostLibc(): Libc | null {
  if (hostLibcCache !== undefined) return hostLibcCache;
  if (process.platform !== 'linux') return (hostLibcCache = null);
  let interp: string | null = null;
  try {
    const fd = fs.openSync('/proc/self/exe', 'r');
    const page = Buffer.alloc(FIRST_PAGE);
    try {
      fs.readSync(fd, page, 0, FIRST_PAGE, 0);
    } finally {
      fs.closeSync(fd);
    }
    if (page.indexOf('/ld-musl-') >= 0) interp = 'ld-musl';
    else if (page.indexOf('/ld-linux') >= 0) interp = 'ld-linux';
    else interp = readInterpreterFile('/proc/self/exe');
  } catch {
    // No readable /proc (some sandboxes): glibc is by far the common case.
    interp = null;
  }
  return (hostLibcCache = interp !== null && interp.includes('musl') ? 'musl' : 'gnu');
}

/**
 * This machine's target key, e.g. `linux-x64-gnu`.
 *
 * @example
 * hostTarget() // 'linux-x64-gnu'
 */
export function hostTarget(): string {
  const libc = hostLibc();
  return `${process.platform}-${process.arch}${libc === null ? '' : `-${libc}`}`;
}

/** The variant chosen for this machine, and why. */
export interface VariantChoice {
  readonly key: string;
  readonly reason: string;
}

/**
 * Picks the manifest variant for this machine: the one keyed by {@link hostTarget}.
 * Throws `E_NO_VARIANT` listing the bundle's variants and this machine's key.
 *
 * @example
 * selectVariant(['linux-x64-gnu', 'linux-arm64-gnu']) // { key: 'linux-x64-gnu', reason: 'matches this machine (linux-x64-gnu)' }
 */
export function selectVariant(available: readonly string[], bundleName = 'the bundle', host = hostTarget()): VariantChoice {
  if (available.includes(host)) return { key: host, reason: `matches this machine (${host})` };
  throw new DlbundleError(
    'E_NO_VARIANT',
    `${bundleName} has no build for this machine (${host}); it has ${available.length === 0 ? 'none' : available.join(', ')}.`,
    `Pack the libraries for ${host} into the bundle (dlbundle pack --target ${host}).`,
  );
}

/**
 * Platform facts and the choice of variant: which target keys exist, which
 * ELF machine each one runs, and which key this machine has. Every
 * platform-specific fact lives in the one table below.
 */
import { DlbundleError } from './errors';
import { readElfFile } from './elf-file';

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
}

// Keyed like esbuild's platform table: `<platform>-<arch>[-<libc>]`.
const TARGETS: Readonly<Record<string, TargetFacts>> = {
  'linux-x64-gnu': { platform: 'linux', arch: 'x64', libc: 'gnu', elf: { machine: 'x86_64', class: 64 } },
  'linux-x64-musl': { platform: 'linux', arch: 'x64', libc: 'musl', elf: { machine: 'x86_64', class: 64 } },
  'linux-arm64-gnu': { platform: 'linux', arch: 'arm64', libc: 'gnu', elf: { machine: 'aarch64', class: 64 } },
  'linux-arm64-musl': { platform: 'linux', arch: 'arm64', libc: 'musl', elf: { machine: 'aarch64', class: 64 } },
  'linux-arm-gnu': { platform: 'linux', arch: 'arm', libc: 'gnu', elf: { machine: 'arm', class: 32 } },
  'linux-ia32-gnu': { platform: 'linux', arch: 'ia32', libc: 'gnu', elf: { machine: 'i386', class: 32 } },
  'linux-riscv64-gnu': { platform: 'linux', arch: 'riscv64', libc: 'gnu', elf: { machine: 'riscv', class: 64 } },
  'linux-ppc64-gnu': { platform: 'linux', arch: 'ppc64', libc: 'gnu', elf: { machine: 'ppc64', class: 64 } },
  'linux-s390x-gnu': { platform: 'linux', arch: 's390x', libc: 'gnu', elf: { machine: 's390', class: 64 } },
  'linux-loong64-gnu': { platform: 'linux', arch: 'loong64', libc: 'gnu', elf: { machine: 'loongarch', class: 64 } },
  'freebsd-x64': { platform: 'freebsd', arch: 'x64', libc: null, elf: { machine: 'x86_64', class: 64 } },
  'darwin-x64': { platform: 'darwin', arch: 'x64', libc: null, elf: null },
  'darwin-arm64': { platform: 'darwin', arch: 'arm64', libc: null, elf: null },
  'win32-x64': { platform: 'win32', arch: 'x64', libc: null, elf: null },
  'win32-arm64': { platform: 'win32', arch: 'arm64', libc: null, elf: null },
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

/**
 * The C library of the running process, read once from the program
 * interpreter of `/proc/self/exe` (musl's is `ld-musl-*.so.1`).
 *
 * @example
 * hostLibc() // 'gnu'
 */
export function hostLibc(): Libc | null {
  if (hostLibcCache !== undefined) return hostLibcCache;
  if (process.platform !== 'linux') return (hostLibcCache = null);
  let interp: string | null = null;
  try {
    interp = readElfFile('/proc/self/exe').interp;
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

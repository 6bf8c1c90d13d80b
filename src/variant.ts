/**
 * Platform facts and the choice of variant: which target keys exist, which
 * ELF machine each one runs, and which key this machine has. Every
 * platform-specific fact lives in the one table below.
 */
import fs = require('node:fs');
import { DlbundleError } from './errors';
import type { ElfInfo } from './formats/elf';
import type { BinaryFormat } from './formats/binary';
import { readInterpreterFile } from './formats/elf-file';
import { nearest } from './nearest';
import { runtimePlatform } from './platform';

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
  /** musl targets: the architecture name in musl's file names (`ld-musl-<arch>.so.1`, `/etc/ld-musl-<arch>.path`). */
  readonly musl: { readonly arch: string } | null;
  /** Windows targets: the COFF machine of their DLLs (PE32+), by the ELF machine names. */
  readonly pe?: { readonly machine: string };
  /** macOS targets: the CPU of their Mach-O images, by the ELF machine names (a universal file is split per CPU). */
  readonly macho?: { readonly machine: string };
}

// Keyed like esbuild's platform table: `<platform>-<arch>[-<libc>]`.
const TARGETS: Readonly<Record<string, TargetFacts>> = {
  'linux-x64-gnu': { platform: 'linux', arch: 'x64', libc: 'gnu', elf: { machine: 'x86_64', class: 64 }, glibc: { multiarch: 'x86_64-linux-gnu', ldCacheFlags: 0x0303 }, musl: null },
  'linux-x64-musl': { platform: 'linux', arch: 'x64', libc: 'musl', elf: { machine: 'x86_64', class: 64 }, glibc: null, musl: { arch: 'x86_64' } },
  'linux-arm64-gnu': { platform: 'linux', arch: 'arm64', libc: 'gnu', elf: { machine: 'aarch64', class: 64 }, glibc: { multiarch: 'aarch64-linux-gnu', ldCacheFlags: 0x0a03 }, musl: null },
  'linux-arm64-musl': { platform: 'linux', arch: 'arm64', libc: 'musl', elf: { machine: 'aarch64', class: 64 }, glibc: null, musl: { arch: 'aarch64' } },
  'linux-arm-gnu': { platform: 'linux', arch: 'arm', libc: 'gnu', elf: { machine: 'arm', class: 32 }, glibc: { multiarch: 'arm-linux-gnueabihf', ldCacheFlags: 0x0903 }, musl: null },
  'linux-ia32-gnu': { platform: 'linux', arch: 'ia32', libc: 'gnu', elf: { machine: 'i386', class: 32 }, glibc: { multiarch: 'i386-linux-gnu', ldCacheFlags: 0x0003 }, musl: null },
  'linux-riscv64-gnu': { platform: 'linux', arch: 'riscv64', libc: 'gnu', elf: { machine: 'riscv', class: 64 }, glibc: { multiarch: 'riscv64-linux-gnu', ldCacheFlags: 0x1003 }, musl: null },
  'linux-ppc64-gnu': { platform: 'linux', arch: 'ppc64', libc: 'gnu', elf: { machine: 'ppc64', class: 64 }, glibc: { multiarch: 'powerpc64le-linux-gnu', ldCacheFlags: 0x0503 }, musl: null },
  'linux-s390x-gnu': { platform: 'linux', arch: 's390x', libc: 'gnu', elf: { machine: 's390', class: 64 }, glibc: { multiarch: 's390x-linux-gnu', ldCacheFlags: 0x0403 }, musl: null },
  'linux-loong64-gnu': { platform: 'linux', arch: 'loong64', libc: 'gnu', elf: { machine: 'loongarch', class: 64 }, glibc: { multiarch: 'loongarch64-linux-gnu', ldCacheFlags: 0x1303 }, musl: null },
  'freebsd-x64': { platform: 'freebsd', arch: 'x64', libc: null, elf: { machine: 'x86_64', class: 64 }, glibc: null, musl: null },
  'darwin-x64': { platform: 'darwin', arch: 'x64', libc: null, elf: null, glibc: null, musl: null, macho: { machine: 'x86_64' } },
  'darwin-arm64': { platform: 'darwin', arch: 'arm64', libc: null, elf: null, glibc: null, musl: null, macho: { machine: 'aarch64' } },
  'win32-x64': { platform: 'win32', arch: 'x64', libc: null, elf: null, glibc: null, musl: null, pe: { machine: 'x86_64' } },
  'win32-arm64': { platform: 'win32', arch: 'arm64', libc: null, elf: null, glibc: null, musl: null, pe: { machine: 'aarch64' } },
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

/** The target keys whose libraries are ELF shared objects: those `pack` takes. */
export function elfTargets(): string[] {
  return knownTargets().filter((k) => (TARGETS[k] as TargetFacts).elf !== null);
}

/**
 * `key` when it is a target whose libraries are ELF shared objects (what
 * `pack --package` takes); `E_USAGE` otherwise, with the nearest such key.
 *
 * @example
 * elfTarget('linux-arm64-gnu') // 'linux-arm64-gnu'
 * elfTarget('darwin-arm64')    // throws E_USAGE: does not use ELF shared objects
 */
export function elfTarget(key: string): string {
  const packable = elfTargets();
  if (packable.includes(key)) return key;
  const guess = nearest(key, packable);
  throw new DlbundleError(
    'E_USAGE',
    `${key in TARGETS ? `Target ${JSON.stringify(key)} does not use ELF shared objects, and pack --package looks for ELF libraries only: name the DLLs or dylibs themselves (dlbundle pack FILES --target ${key}).` : `Unknown target ${JSON.stringify(key)}.`}${guess === null ? '' : ` Did you mean ${JSON.stringify(guess)}?`}`,
    `Use one of: ${packable.join(', ')}.`,
  );
}

/** The binary format and machine of a target's libraries. */
export interface TargetLibraries {
  readonly format: BinaryFormat;
  /** The machine by dlbundle's names (`x86_64`, `aarch64`, …), whatever the format. */
  readonly machine: string;
  /** ELF targets: the ELF class. */
  readonly class: 32 | 64 | null;
}

/**
 * What `pack` expects the libraries of target `key` to be; `E_USAGE` with the
 * nearest known key when it is not one.
 *
 * @example
 * targetLibraries('win32-arm64') // { format: 'pe', machine: 'aarch64', class: null }
 */
export function targetLibraries(key: string): TargetLibraries {
  const facts = TARGETS[key];
  if (facts === undefined) {
    const guess = nearest(key, knownTargets());
    throw new DlbundleError('E_USAGE', `Unknown target ${JSON.stringify(key)}.${guess === null ? '' : ` Did you mean ${JSON.stringify(guess)}?`}`, `Use one of: ${knownTargets().join(', ')}.`);
  }
  if (facts.elf !== null) return { format: 'elf', machine: facts.elf.machine, class: facts.elf.class };
  if (facts.pe !== undefined) return { format: 'pe', machine: facts.pe.machine, class: null };
  if (facts.macho !== undefined) return { format: 'macho', machine: facts.macho.machine, class: null };
  // Every row names one format; a row without one is a mistake in the table above.
  throw new DlbundleError('E_USAGE', `Target ${JSON.stringify(key)} names no binary format in dlbundle's target table.`, 'Report this as a bug in dlbundle.');
}

/** The DT_NEEDED names of a target's C library: what tells a glibc build from a musl one of the same machine. */
function cLibraryNames(facts: TargetFacts): readonly string[] {
  if (facts.musl !== null) return [`libc.musl-${facts.musl.arch}.so.1`, 'libc.so'];
  if (facts.libc === 'gnu') return ['libc.so.6'];
  return facts.platform === 'freebsd' ? ['libc.so.7'] : [];
}

/**
 * The ELF target keys a shared object is built for: those whose machine and
 * class it carries, narrowed by the C library it names in DT_NEEDED (glibc's
 * `libc.so.6`, musl's `libc.musl-<arch>.so.1` or `libc.so`, FreeBSD's
 * `libc.so.7`); every such key when it names none. Empty for a machine no
 * target runs.
 *
 * @example
 * elfTargetsOf({ machine: 'aarch64', class: 64, needed: ['libc.so.6'] }) // ['linux-arm64-gnu']
 */
export function elfTargetsOf(elf: Pick<ElfInfo, 'machine' | 'class' | 'needed'>): string[] {
  const fits = elfTargets().filter((k) => {
    const facts = TARGETS[k] as TargetFacts;
    return facts.elf?.machine === elf.machine && facts.elf.class === elf.class;
  });
  const named = fits.filter((k) => cLibraryNames(TARGETS[k] as TargetFacts).some((n) => elf.needed.includes(n)));
  return named.length > 0 ? named : fits;
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

// CPU feature flags a variant may require, by architecture: the names Linux
// gives them in /proc/cpuinfo ("flags" on x86, "Features" on Arm), the ones a
// build can be specialised for. A name outside the table is refused at pack
// time (a typo would make a variant no CPU ever chooses).
const X86_FEATURES = [
  'sse', 'sse2', 'sse3', 'pni', 'ssse3', 'sse4_1', 'sse4_2', 'sse4a', 'popcnt', 'abm', 'lzcnt', 'bmi1', 'bmi2', 'adx', 'movbe', 'cx16', 'cx8', 'cmov',
  'fma', 'fma4', 'f16c', 'avx', 'avx2', 'avx_vnni', 'avx_vnni_int8', 'avx_ne_convert', 'avx_ifma',
  'avx512f', 'avx512cd', 'avx512bw', 'avx512dq', 'avx512vl', 'avx512ifma', 'avx512vbmi', 'avx512_vbmi2', 'avx512_vnni', 'avx512_bitalg', 'avx512_vpopcntdq', 'avx512_bf16', 'avx512_fp16', 'avx512_vp2intersect', 'avx512er', 'avx512pf', 'avx512_4vnniw', 'avx512_4fmaps',
  'aes', 'vaes', 'pclmulqdq', 'vpclmulqdq', 'sha_ni', 'gfni', 'rdrand', 'rdseed', 'xsave', 'xsaveopt', 'xsavec', 'osxsave', 'fxsr', 'mmx',
  'amx_tile', 'amx_int8', 'amx_bf16', 'amx_fp16', 'amx_complex', 'movdiri', 'movdir64b', 'serialize', 'clflushopt', 'clwb', 'erms', 'fsrm', 'rtm', 'hle', 'tsc', 'invpcid',
];
const ARM_FEATURES = [
  'fp', 'asimd', 'evtstrm', 'aes', 'pmull', 'sha1', 'sha2', 'crc32', 'atomics', 'fphp', 'asimdhp', 'cpuid', 'asimdrdm', 'jscvt', 'fcma', 'lrcpc', 'dcpop', 'sha3', 'sm3', 'sm4', 'asimddp', 'sha512',
  'sve', 'asimdfhm', 'dit', 'uscat', 'ilrcpc', 'flagm', 'ssbs', 'sb', 'paca', 'pacg', 'dcpodp', 'sve2', 'sveaes', 'svepmull', 'svebitperm', 'svesha3', 'svesm4', 'flagm2', 'frint',
  'svei8mm', 'svef32mm', 'svef64mm', 'svebf16', 'i8mm', 'bf16', 'dgh', 'rng', 'bti', 'mte', 'ecv', 'afp', 'rpres', 'mte3', 'sme', 'smei16i64', 'smef64f64', 'smei8i32', 'smef16f32', 'smeb16f32', 'smef32f32', 'smefa64', 'wfxt', 'ebf16', 'sveebf16', 'cssc', 'rprfm', 'sve2p1', 'sme2', 'sme2p1',
  // 32-bit Arm's names.
  'half', 'thumb', 'fastmult', 'vfp', 'edsp', 'neon', 'vfpv3', 'vfpv3d16', 'tls', 'vfpv4', 'idiva', 'idivt', 'vfpd32', 'lpae', 'evtstrm',
];
const FEATURES_BY_ARCH: Readonly<Record<string, readonly string[]>> = { x64: X86_FEATURES, ia32: X86_FEATURES, arm64: ARM_FEATURES, arm: ARM_FEATURES };

/**
 * The CPU feature flags a variant of `target` may require, or null when
 * dlbundle keeps no list for its architecture (then any well-formed flag is
 * taken).
 *
 * @example
 * knownFeatures('linux-x64-gnu')?.includes('avx2') // true
 */
export function knownFeatures(target: string): readonly string[] | null {
  return FEATURES_BY_ARCH[targetFacts(target).arch] ?? null;
}

/** A variant key taken apart: the target and the CPU features the build requires. */
export interface VariantKey {
  /** `<platform>-<arch>[-<libc>]`, a key of the target table. */
  readonly target: string;
  /** CPU feature flags, sorted (`avx2`, `fma`, …): `linux-x64-gnu+avx2+fma`. */
  readonly features: readonly string[];
}

const FEATURE = /^[a-z0-9_.]+$/;

/**
 * Splits a variant key `<target>[+feature…]`; `E_USAGE` when the target is
 * unknown or a feature name is malformed.
 *
 * @example
 * parseVariantKey('linux-x64-gnu+fma+avx2') // { target: 'linux-x64-gnu', features: ['avx2', 'fma'] }
 */
export function parseVariantKey(key: string): VariantKey {
  const [target = '', ...features] = key.split('+');
  targetFacts(target);
  for (const f of features) {
    if (!FEATURE.test(f)) throw new DlbundleError('E_USAGE', `${JSON.stringify(key)} names the CPU feature ${JSON.stringify(f)}, which is not a feature flag.`, 'Use the flag names of /proc/cpuinfo, such as avx2 or avx512f.');
  }
  return { target, features: [...new Set(features)].sort() };
}

function tryParseVariantKey(key: string): VariantKey | null {
  try {
    return parseVariantKey(key);
  } catch {
    // An unknown target: not this machine's, whatever it is.
    return null;
  }
}

/**
 * The variant key for `target` with `features` required (sorted, joined with `+`).
 *
 * @example
 * variantKey('linux-x64-gnu', ['fma', 'avx2']) // 'linux-x64-gnu+avx2+fma'
 */
export function variantKey(target: string, features: readonly string[]): string {
  return [target, ...[...new Set(features)].sort()].join('+');
}

let cpuFeaturesCache: ReadonlySet<string> | undefined;

/**
 * This CPU's feature flags: `$DLBUNDLE_CPU_FEATURES` (comma-separated; empty
 * means none) when set, else the `flags` (x86) or `Features` (Arm) line of
 * /proc/cpuinfo, read once. Empty where neither is available (Windows: not yet read from the system).
 *
 * @example
 * cpuFeatures().has('avx2')
 */
export function cpuFeatures(): ReadonlySet<string> {
  const override = process.env.DLBUNDLE_CPU_FEATURES;
  if (override !== undefined) return new Set(override.split(/[\s,]+/).filter((f) => f !== ''));
  if (cpuFeaturesCache !== undefined) return cpuFeaturesCache;
  let text = '';
  try {
    // Only a /proc of this system's own (under Wine, drive Z: shows Linux's).
    if (runtimePlatform().procfs) text = fs.readFileSync('/proc/cpuinfo', 'latin1');
  } catch {
    // No readable /proc: only variants without CPU requirements can be chosen.
  }
  const line = /^(?:flags|Features)\s*:\s*(.*)$/m.exec(text)?.[1] ?? '';
  cpuFeaturesCache = new Set(line.split(/\s+/).filter((f) => f !== ''));
  return cpuFeaturesCache;
}

/** The variant chosen for this machine, and why. */
export interface VariantChoice {
  readonly key: string;
  readonly reason: string;
}

/**
 * Picks the manifest variant for this machine: among the variants for this
 * machine's target ({@link hostTarget}, or `$DLBUNDLE_VARIANT`), the most
 * specific one whose CPU features this CPU has ({@link cpuFeatures}); ties go
 * to the smaller key. `$DLBUNDLE_VARIANT` with features names one variant
 * exactly. Throws `E_NO_VARIANT` listing the bundle's variants and this
 * machine's key, `E_USAGE` for a malformed `$DLBUNDLE_VARIANT`.
 *
 * @example
 * selectVariant(['linux-x64-gnu', 'linux-x64-gnu+avx2']) // { key: 'linux-x64-gnu+avx2', reason: '…' }
 */
export function selectVariant(available: readonly string[], bundleName = 'the bundle', options: { readonly honourOverride?: boolean } = {}): VariantChoice {
  const override = options.honourOverride === false ? undefined : process.env.DLBUNDLE_VARIANT;
  const wanted = override === undefined || override === '' ? null : parseVariantKey(override);
  const target = wanted?.target ?? hostTarget();
  const why = wanted === null ? `this machine is ${target}` : `DLBUNDLE_VARIANT=${override}`;
  const none = (detail: string): DlbundleError =>
    new DlbundleError(
      'E_NO_VARIANT',
      `${bundleName} has no build for ${wanted === null ? `this machine (${target})` : `DLBUNDLE_VARIANT=${override}`}${detail}; it has ${available.length === 0 ? 'none' : available.join(', ')}.`,
      `Pack the libraries for ${target} into the bundle (dlbundle pack --target ${target}), or unset DLBUNDLE_VARIANT.`,
    );
  // The common case, decided without parsing every key: one build for this target, no CPU variants.
  if (wanted === null && available.includes(target) && !available.some((k) => k.startsWith(`${target}+`))) {
    return { key: target, reason: `${why}; no CPU features required` };
  }
  if (wanted !== null && wanted.features.length > 0) {
    const exact = variantKey(wanted.target, wanted.features);
    if (!available.includes(exact)) throw none('');
    return { key: exact, reason: `${why} names it` };
  }
  // Keys of targets this version does not know (a newer packer's) are passed over, not refused.
  const forTarget = available.flatMap((key) => {
    const parsed = tryParseVariantKey(key);
    return parsed !== null && parsed.target === target ? [{ key, parsed }] : [];
  });
  if (forTarget.length === 0) throw none('');
  const cpu = forTarget.some((v) => v.parsed.features.length > 0) ? cpuFeatures() : new Set<string>();
  const usable = forTarget.filter((v) => v.parsed.features.every((f) => cpu.has(f)));
  if (usable.length === 0) {
    throw none(` whose CPU features this CPU has (it lacks ${[...new Set(forTarget.flatMap((v) => v.parsed.features.filter((f) => !cpu.has(f))))].join(', ')})`);
  }
  usable.sort((a, b) => b.parsed.features.length - a.parsed.features.length || (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  const best = usable[0] as (typeof usable)[number];
  const skipped = forTarget.filter((v) => !usable.includes(v)).map((v) => `${v.key} (needs ${v.parsed.features.filter((f) => !cpu.has(f)).join(', ')})`);
  const features = best.parsed.features.length === 0 ? 'no CPU features required' : `the CPU has ${best.parsed.features.join(', ')}`;
  return { key: best.key, reason: `${why}; ${features}${skipped.length === 0 ? '' : `; skipped ${skipped.join(', ')}`}` };
}

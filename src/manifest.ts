/**
 * The manifest (`dlbundle.json`): its types, its validation on read, and the
 * canonical digest that names a variant's cache directory.
 *
 * A manifest comes from the application's own files, but it decides file
 * names on disk, so everything in it is checked before use: names are plain
 * base names, numbers are numbers, hashes are hashes, and the recorded load
 * order really loads dependencies first.
 */
import path = require('node:path');
import { DlbundleError } from './errors';
import { xxh64 } from './hash';
import { compareNames, dependencyGraph, externalDependencies, loadOrder, type DependencyGraph } from './plan';
import { isVersionNumber, VERSION_FAMILIES, type RequiredVersions, type VersionFamily } from './versions';

import { MANIFEST_FILE, MANIFEST_FORMAT } from './manifest-format';

export { MANIFEST_FILE, MANIFEST_FORMAT };

/** One bundled shared object. */
export interface ManifestFile {
  /** File name in the bundle and in the cache directory; a plain base name. */
  readonly name: string;
  /** Size in bytes. */
  readonly size: number;
  /** xxh64 of the content, 16 lowercase hex digits. */
  readonly xxh64: string;
  /**
   * The name other libraries know it by, or null: DT_SONAME (ELF), the
   * export directory's DLL name (PE), the LC_ID_DYLIB install name of a
   * dylib (Mach-O, as written: `@rpath/libfoo.dylib`).
   */
  readonly soname: string | null;
  /** What it needs, in file order: DT_NEEDED (ELF); imported then delay-loaded DLLs (PE); one entry per dylib load command (Mach-O). */
  readonly needed: readonly string[];
  /** DT_RUNPATH directories (ELF), LC_RPATH entries unexpanded (Mach-O), in file order; none for PE. */
  readonly runpath: readonly string[];
  /** The machine by ELF's names (`x86_64`, `aarch64`, …), whatever the format. */
  readonly machine: string;
  /**
   * `pe` (Windows) or `macho` (macOS, one architecture); absent for ELF, and
   * in every manifest written before dlbundle read other formats.
   */
  readonly format?: 'pe' | 'macho';
  /**
   * The entries of `needed` the library loads without: PE delay-load imports
   * (resolved at their first call), Mach-O LC_LOAD_WEAK_DYLIB and
   * LC_LAZY_LOAD_DYLIB names no other command names. Absent when none.
   */
  readonly weakNeeded?: readonly string[];
  /** Present and true for a library the application loads with `bundle.optional()` (`pack --optional`): `doctor` does not count its failure. */
  readonly optional?: true;
  /**
   * The highest `GLIBC_x.y`, `GLIBCXX_x.y.z` and `CXXABI_x.y` symbol version
   * the file needs (`.gnu.version_r`), by family; absent when it needs none,
   * and in manifests packed before dlbundle recorded it. Checked against the
   * system before any `dlopen` (`E_SYSTEM_TOO_OLD`). A reader ignores
   * families it does not know, and dlbundle versions that predate the field
   * ignore it: the check is then left to ld.so.
   */
  readonly requiresVersions?: RequiredVersions;
}

/** The files built for one target (`linux-x64-gnu`, …). */
export interface ManifestVariant {
  /** {@link variantDigest} of `files`; names the cache directory. */
  readonly digest: string;
  /** The files, in any order. */
  readonly files: readonly ManifestFile[];
  /** Every file name once, dependencies before the libraries that need them. */
  readonly order: readonly string[];
  /** DT_NEEDED names that no bundled file provides, sorted. */
  readonly external: readonly string[];
}

/**
 * A whole `dlbundle.json`. In a manifest parsed with `variants: 'on-use'`
 * (what the run-time sources do), reading a variant validates it first and
 * may throw `E_BAD_MANIFEST`, `E_CYCLE` or `E_DUPLICATE_SONAME`.
 */
export interface Manifest {
  readonly format: typeof MANIFEST_FORMAT;
  /** The bundle's name; the first half of its cache directory's name. */
  readonly name: string;
  /** Variants by target key. */
  readonly variants: Readonly<Record<string, ManifestVariant>>;
}

const HEX16 = /^[0-9a-f]{16}$/;

/**
 * The file the cache writes last into every bundle directory; no bundled file
 * may have its name.
 */
export const COMPLETE_MARKER = '.dlbundle-complete';

// NAME_MAX of Linux file systems: the longest name of one directory entry, in bytes.
const NAME_MAX = 255;

/** What memory mode names each memfd: `memfd_create(MEMORY_FILE_LABEL + file name)`. */
export const MEMORY_FILE_LABEL = 'dlbundle:';

/**
 * The longest bundled file name, in bytes of UTF-8 (240). Every file may end
 * up in a memfd named `dlbundle:<file name>`, and the kernel refuses a memfd
 * name over 249 bytes (EINVAL): NAME_MAX less the "memfd:" it prefixes
 * (MFD_NAME_MAX_LEN in mm/memfd.c).
 */
export const FILE_NAME_MAX_BYTES = NAME_MAX - 'memfd:'.length - MEMORY_FILE_LABEL.length;

/**
 * The longest bundle name, in bytes (175). The cache stages a bundle in
 * `.staging-<name>-<digest>-<pid namespace>-s<start time>-<pid>-<random>`
 * (leases.ts stagingPrefix, then mkdtemp's `-<pid>-<6 characters>`, counted
 * as 12 for headroom), which must be one directory entry: 16 hex digits of
 * digest, a pid namespace of at most
 * 10 digits (a 32-bit inode number), a start time of at most 20 (a 64-bit
 * count of clock ticks), a pid of at most 7 (pid_max ≤ 2^22).
 */
export const BUNDLE_NAME_MAX_BYTES =
  NAME_MAX - '.staging-'.length - '-0123456789abcdef'.length - '-4294967295'.length - '-s18446744073709551615'.length - '-4194304'.length - '-abcdefABCDEF'.length;

/**
 * Why `name` cannot be used as a file name in a bundle directory, or null when
 * it can. `maxBytes` is the longest name, in bytes of UTF-8, that every place
 * the name goes can hold (a directory entry: 255).
 *
 * @example
 * unsafeNameReason('../libc.so.6') // 'contains "/"'
 */
export function unsafeNameReason(name: string, maxBytes = NAME_MAX): string | null {
  if (name.length === 0) return 'is empty';
  if (name === '.' || name === '..') return `is ${JSON.stringify(name)}`;
  if (name.includes('/')) return 'contains "/"';
  if (name.includes('\\')) return 'contains "\\"';
  if (name.includes('\0')) return 'contains a NUL character';
  // A UTF-16 unit is at most 3 bytes of UTF-8: short names need no count.
  const bytes = name.length * 3 <= maxBytes ? name.length : Buffer.byteLength(name, 'utf8');
  if (bytes > maxBytes) return `is ${bytes} bytes long in UTF-8, more than the ${maxBytes} allowed`;
  return null;
}

/**
 * The canonical digest of a file list: xxh64 over the sorted
 * `[name, size, xxh64]` triples. The same content always gets the same digest,
 * whatever order the files were listed in.
 *
 * @example
 * variantDigest([{ name: 'liba.so', size: 10, xxh64: '…' }]) // '3f2c…'
 */
export function variantDigest(files: readonly Pick<ManifestFile, 'name' | 'size' | 'xxh64'>[]): string {
  return xxh64(canonicalFileList(files));
}

/**
 * The canonical text of a file list that {@link variantDigest} hashes. The
 * cache writes it into a directory's completion marker, so a warm start can
 * check that a directory holds this file list by comparing text, not hashing.
 *
 * @example
 * canonicalFileList(files) // 'dlbundle/1\n[["liba.so",10,"…"]]'
 */
export function canonicalFileList(files: readonly Pick<ManifestFile, 'name' | 'size' | 'xxh64'>[]): string {
  const triples = [...files].sort((a, b) => compareNames(a.name, b.name)).map((f) => [f.name, f.size, f.xxh64]);
  return `dlbundle/${MANIFEST_FORMAT}\n${JSON.stringify(triples)}`;
}

/** Options of {@link parseManifest}. */
export interface ParseManifestOptions {
  /**
   * Recompute each variant's digest and refuse a mismatch (default true).
   * The run-time sources turn it off: a warm start must not hash, and the
   * cache checks the digest before it extracts anything under that name.
   */
  readonly checkDigest?: boolean;
  /**
   * When variants are validated in depth: `'all'` (default) now, every one;
   * `'on-use'` each when it is first read from `manifest.variants` — what the
   * run-time sources ask for, so a start validates the variant it loads and,
   * of the others, only their keys (all that choosing one needs).
   */
  readonly variants?: 'all' | 'on-use';
}

/**
 * Parses and validates a manifest. Throws `E_BAD_MANIFEST` naming the field
 * at fault; `E_CYCLE` or `E_DUPLICATE_SONAME` when the files cannot form a
 * bundle.
 *
 * @example
 * const manifest = parseManifest(fs.readFileSync('dist/native/dlbundle.json', 'utf8'), 'dist/native/dlbundle.json');
 */
export function parseManifest(input: string | unknown, origin = 'the manifest', options: ParseManifestOptions = {}): Manifest {
  let value = input;
  if (typeof input === 'string') {
    try {
      value = JSON.parse(input);
    } catch (e) {
      throw bad(origin, '', `is not valid JSON (${(e as Error).message.split('\n')[0] ?? ''})`);
    }
  }
  const m = record(value, origin, '');
  if (m.format !== MANIFEST_FORMAT) {
    throw bad(origin, 'format', `is ${show(m.format)}; this dlbundle reads format ${MANIFEST_FORMAT}`, 'Repack the bundle with this version of dlbundle, or upgrade dlbundle.');
  }
  const name = baseName(m.name, origin, 'name', BUNDLE_NAME_MAX_BYTES);
  const variantsIn = record(m.variants, origin, 'variants');
  const variants: Record<string, ManifestVariant> = {};
  const checkDigest = options.checkDigest ?? true;
  for (const [key, v] of Object.entries(variantsIn)) {
    const at = `variants[${JSON.stringify(key)}]`;
    // The key names the variant's directory in a bundle (`<out>/<key>/`).
    if (!/^[a-z0-9][a-z0-9_.+-]*$/.test(key) || key.length > NAME_MAX) throw bad(origin, at, 'is not a valid target key');
    if (options.variants !== 'on-use') {
      variants[key] = parseVariant(v, origin, at, checkDigest);
      continue;
    }
    let parsed: ManifestVariant | undefined;
    Object.defineProperty(variants, key, {
      enumerable: true,
      get: () => (parsed ??= parseVariant(v, origin, at, checkDigest)),
    });
  }
  return { format: MANIFEST_FORMAT, name, variants };
}

function parseVariant(value: unknown, origin: string, at: string, checkDigest: boolean): ManifestVariant {
  const v = record(value, origin, at);
  const filesIn = array(v.files, origin, `${at}.files`);
  const files: ManifestFile[] = new Array(filesIn.length);
  for (let i = 0; i < filesIn.length; i++) files[i] = parseFile(filesIn[i], origin, at, i);
  const names = new Set<string>();
  for (const f of files) {
    if (names.has(f.name)) throw bad(origin, `${at}.files`, `lists ${JSON.stringify(f.name)} twice`);
    names.add(f.name);
  }
  const order = strings(v.order, origin, `${at}.order`);
  const position = new Map<string, number>();
  for (let i = 0; i < order.length; i++) position.set(order[i] as string, i);
  if (order.length !== files.length || position.size !== order.length || !order.every((n) => names.has(n))) {
    throw bad(origin, `${at}.order`, 'is not a permutation of the file names');
  }
  const graph = dependencyGraph(files);
  // A recorded order that loads every dependency first proves there is no
  // cycle, so the load order is computed only when it does not: a cycle is
  // then reported as E_CYCLE, not as a bad order.
  let backwards: [user: string, dep: string] | undefined;
  for (const [user, deps] of graph.bundledDeps) {
    const p = position.get(user) as number;
    for (const dep of deps) if ((position.get(dep) as number) > p) backwards ??= [user, dep];
  }
  if (backwards !== undefined) loadOrder(graph);
  // Every file and every soname link becomes a directory entry beside the
  // completion marker: two of them with one name cannot both exist.
  // Each entry's file (null for the marker); an entry other than the file's name is its soname link.
  const onDisk = new Map<string, ManifestFile | null>([[COMPLETE_MARKER, null]]);
  const describe = (entry: string, f: ManifestFile | null): string =>
    f === null ? 'the completion marker' : entry === f.name ? `file ${JSON.stringify(f.name)}` : `the soname link of ${JSON.stringify(f.name)}`;
  const format = files[0]?.format;
  for (const f of files) {
    if (f.format !== format) throw bad(origin, `${at}.files`, `mixes formats: ${JSON.stringify(f.name)} is ${f.format ?? 'elf'}, ${JSON.stringify(files[0]?.name)} is ${format ?? 'elf'}`);
    for (let k = 0; k < 2; k++) {
      const entry = k === 0 ? f.name : sonameLink(f);
      if (entry === null) continue;
      const other = onDisk.get(entry);
      if (other !== undefined) throw bad(origin, `${at}.files`, `has ${describe(entry, f)} and ${describe(entry, other)} both named ${JSON.stringify(entry)}`);
      onDisk.set(entry, f);
    }
  }
  if (backwards !== undefined) {
    throw bad(origin, `${at}.order`, `puts ${JSON.stringify(backwards[0])} before its dependency ${JSON.stringify(backwards[1])}`);
  }
  const external = strings(v.external, origin, `${at}.external`);
  const expectedExternal = externalDependencies(graph);
  if (JSON.stringify([...external].sort(compareNames)) !== JSON.stringify(expectedExternal)) {
    throw bad(origin, `${at}.external`, `is ${JSON.stringify(external)} but the files need ${JSON.stringify(expectedExternal)} from outside the bundle`);
  }
  const digest = hex16(v.digest, origin, `${at}.digest`);
  const variant = { digest, files, order, external: expectedExternal };
  if (checkDigest) checkVariantDigest(variant, origin, at);
  graphs.set(variant, graph);
  return variant;
}

// The dependency graph each parsed variant was checked with, for variantGraph.
const graphs = new WeakMap<ManifestVariant, DependencyGraph<ManifestFile>>();

/**
 * The dependency graph of a variant's files: the one built when the variant
 * was parsed (a start needs it again at once, and it costs ≈ 10 µs a file),
 * else built now.
 *
 * @example
 * variantGraph(manifest.variants['linux-x64-gnu']).bundledDeps.get('libdemo_app.so') // ['libdemo_codec.so.1.2.3', …]
 */
export function variantGraph(variant: ManifestVariant): DependencyGraph<ManifestFile> {
  return graphs.get(variant) ?? dependencyGraph(variant.files);
}

/**
 * Throws `E_BAD_MANIFEST` when `variant.digest` is not the digest of its file list.
 *
 * @example
 * checkVariantDigest(manifest.variants['linux-x64-gnu'], 'dlbundle.json', 'variants["linux-x64-gnu"]');
 */
export function checkVariantDigest(variant: ManifestVariant, origin: string, at: string): void {
  const expected = variantDigest(variant.files);
  if (variant.digest !== expected) {
    throw bad(origin, `${at}.digest`, `is ${JSON.stringify(variant.digest)} but the file list hashes to ${JSON.stringify(expected)}`);
  }
}

// The field paths (`variants["…"].files[3].name`) are built only for a
// message: a variant can hold tens of thousands of files.
function parseFile(value: unknown, origin: string, variantAt: string, i: number): ManifestFile {
  const at = (field: string): string => `${variantAt}.files[${i}]${field}`;
  const f = record(value, origin, '', at);
  const size = f.size;
  if (typeof size !== 'number' || !Number.isSafeInteger(size) || size < 0) {
    throw bad(origin, at('.size'), `is ${show(size)}, not a non-negative integer`);
  }
  const format = formatField(f.format, origin, at);
  // An ELF soname becomes a symlink in the bundle directory (a directory
  // entry); the file name may also name a memfd. A DLL's export name and an
  // install name are names, not entries (see sonameLink).
  const soname = f.soname === null ? null : format === undefined ? baseName(f.soname, origin, '.soname', NAME_MAX, at) : str(f.soname, origin, '.soname', at);
  const needed = strings(f.needed, origin, '.needed', at);
  return {
    name: baseName(f.name, origin, '.name', FILE_NAME_MAX_BYTES, at),
    size,
    xxh64: hex16(f.xxh64, origin, '.xxh64', at),
    soname,
    needed,
    runpath: strings(f.runpath, origin, '.runpath', at),
    machine: str(f.machine, origin, '.machine', at),
    ...optionalFlag(f.optional, origin, at('.optional')),
    ...versionsField(f.requiresVersions, origin, at),
    ...(format === undefined ? {} : { format }),
    ...weakField(f.weakNeeded, needed, origin, at),
  };
}

// Families this version does not know are skipped, so that a manifest from a
// newer dlbundle that records more of them still loads.
function versionsField(value: unknown, origin: string, at: Prefix): { requiresVersions?: RequiredVersions } {
  if (value === undefined) return {};
  const v = record(value, origin, '.requiresVersions', at);
  let out: Partial<Record<VersionFamily, string>> | undefined;
  for (const family of VERSION_FAMILIES) {
    const version = v[family];
    if (version === undefined) continue;
    if (typeof version !== 'string' || !isVersionNumber(version)) {
      throw bad(origin, at(`.requiresVersions.${family}`), `is ${show(version)}, not a version number such as "2.34"`);
    }
    (out ??= {})[family] = version;
  }
  return out === undefined ? {} : { requiresVersions: out };
}

function formatField(value: unknown, origin: string, at: Prefix): 'pe' | 'macho' | undefined {
  if (value === undefined || value === 'pe' || value === 'macho') return value;
  throw bad(origin, at('.format'), `is ${show(value)}; this dlbundle reads "pe", "macho", or no format (ELF)`, 'Repack the bundle with this version of dlbundle, or upgrade dlbundle.');
}

function weakField(value: unknown, needed: readonly string[], origin: string, at: Prefix): { weakNeeded?: readonly string[] } {
  if (value === undefined) return {};
  const weak = strings(value, origin, '.weakNeeded', at);
  const stray = weak.find((w) => !needed.includes(w));
  if (stray !== undefined) throw bad(origin, at('.weakNeeded'), `names ${show(stray)}, which is not in needed`);
  return { weakNeeded: weak };
}

// An install name the dynamic loader resolves next to the image that asks
// for it (`@rpath/libfoo.dylib`, `@loader_path/libfoo.dylib`): one component.
const RELATIVE_INSTALL_NAME = /^@(?:rpath|loader_path|executable_path)\/([^/]+)$/;

/**
 * The second directory entry a file gets beside its own name in a bundle
 * directory, or null: its ELF soname (what ld.so and `$ORIGIN` lookups ask
 * for), or the last component of a Mach-O install name relative to
 * `@rpath` / `@loader_path` / `@executable_path` (what dyld looks for beside
 * the image). None for PE: Windows matches a loaded DLL by its file name.
 *
 * @example
 * sonameLink({ name: 'libdemo_codec.so.1.2.3', soname: 'libdemo_codec.so.1' }) // 'libdemo_codec.so.1'
 * sonameLink({ name: 'libvips.dylib', soname: '@rpath/libvips.42.dylib', format: 'macho' }) // 'libvips.42.dylib'
 */
export function sonameLink(file: Pick<ManifestFile, 'name' | 'soname' | 'format'>): string | null {
  const soname = file.soname;
  if (soname === null || soname === file.name) return null;
  // ELF: parseFile has already checked that the soname is a plain file name.
  if (file.format === undefined) return soname;
  if (file.format === 'pe') return null;
  const link = RELATIVE_INSTALL_NAME.exec(soname)?.[1];
  return link === undefined || link === file.name || unsafeNameReason(link) !== null ? null : link;
}

function optionalFlag(value: unknown, origin: string, at: string): { optional?: true } {
  if (value === undefined || value === false) return {};
  if (value === true) return { optional: true };
  throw bad(origin, at, `is ${show(value)}, not true or false`);
}

function bad(origin: string, at: string, what: string, next = 'Regenerate it with `dlbundle pack`; do not edit dlbundle.json by hand.'): DlbundleError {
  const where = at === '' ? '' : ` field ${at}`;
  return new DlbundleError('E_BAD_MANIFEST', `${origin}${where} ${what}.`, next, { file: origin });
}

/**
 * Field paths: `at` is the path itself, or the last part of it when `prefix`
 * makes the rest (built only for an error).
 */
type Prefix = (field: string) => string;
const asIs: Prefix = (field) => field;

function record(value: unknown, origin: string, at: string, prefix = asIs): Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw bad(origin, prefix(at), 'is not an object');
  return value as Record<string, unknown>;
}

function array(value: unknown, origin: string, at: string, prefix = asIs): unknown[] {
  if (!Array.isArray(value)) throw bad(origin, prefix(at), 'is not an array');
  // Copied index by index: a hole in a sparse array becomes undefined and is refused like any non-string.
  return Array.from(value as unknown[]);
}

/** An array of strings, copied in one pass. */
function strings(value: unknown, origin: string, at: string, prefix = asIs): string[] {
  if (!Array.isArray(value)) throw bad(origin, prefix(at), 'is not an array');
  const list = value as unknown[];
  const out: string[] = new Array(list.length);
  // Index by index: a hole in a sparse array is undefined and is refused like any non-string.
  for (let i = 0; i < list.length; i++) out[i] = str(list[i], origin, at, prefix, i);
  return out;
}

/**
 * A short description of any value for a message. Never throws: the value
 * may be a BigInt, a cycle or nested thousands deep (a manifest object handed
 * to fromBuffers need not come from JSON).
 */
function show(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value.length > 80 ? `${value.slice(0, 80)}…` : value);
  if (typeof value === 'number' || typeof value === 'boolean' || value === null || value === undefined) return String(value);
  if (typeof value === 'bigint') return `${value}n`;
  return Array.isArray(value) ? 'an array' : `a ${typeof value}`;
}

function str(value: unknown, origin: string, at: string, prefix = asIs, index = -1): string {
  if (typeof value !== 'string' || value.includes('\0')) {
    const where = prefix(index < 0 ? at : `${at}[${index}]`);
    throw bad(origin, where, typeof value !== 'string' ? 'is not a string' : 'contains a NUL character');
  }
  return value;
}

/**
 * The path of a bundle's file `name` (or soname link) in the directory `dir`.
 * Names in a parsed manifest are plain file names (no `/`, not `.` or `..`),
 * so joining them needs none of `path.join`'s normalisation, which costs
 * ≈ 15 µs a file on a start, where the code is cold.
 *
 * @example
 * entryPath('/tmp/dlbundle-1000/demo-1a2b…', 'libdemo_core.so') // '/tmp/dlbundle-1000/demo-1a2b…/libdemo_core.so'
 */
export function entryPath(dir: string, name: string): string {
  // path.sep: '\\' on Windows, where a path of both separators works but reads as a mistake.
  return dir.endsWith('/') || dir.endsWith(path.sep) ? `${dir}${name}` : `${dir}${path.sep}${name}`;
}

function baseName(value: unknown, origin: string, at: string, maxBytes: number, prefix = asIs): string {
  const s = str(value, origin, at, prefix);
  const reason = unsafeNameReason(s, maxBytes);
  if (reason === null) return s;
  // A name of a good shape is refused for its length: say which limit that is.
  const why = unsafeNameReason(s, Infinity) === null ? nameLimitWhy(at) : 'names must be plain file names';
  throw bad(origin, prefix(at), `${show(s)} ${reason}; ${why}`);
}

// Why a name's limit is what it is, for the message that refuses a longer one.
function nameLimitWhy(at: string): string {
  if (at === 'name') return 'the cache stages a bundle in ".staging-<name>-<digest>-<pid namespace>-s<start time>-<pid>-<random>", one directory entry of at most 255 bytes';
  if (at === '.name') return `memory mode loads each file from a memfd named "${MEMORY_FILE_LABEL}<file name>", and memfd_create takes at most ${NAME_MAX - 'memfd:'.length} bytes`;
  return `a directory entry holds at most ${NAME_MAX} bytes`;
}

function hex16(value: unknown, origin: string, at: string, prefix = asIs): string {
  const s = str(value, origin, at, prefix);
  if (!HEX16.test(s)) throw bad(origin, prefix(at), `${JSON.stringify(s)} is not 16 lowercase hex digits`);
  return s;
}

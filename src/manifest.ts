/**
 * The manifest (`dlbundle.json`): its types, its validation on read, and the
 * canonical digest that names a variant's cache directory.
 *
 * A manifest comes from the application's own files, but it decides file
 * names on disk, so everything in it is checked before use: names are plain
 * base names, numbers are numbers, hashes are hashes, and the recorded load
 * order really loads dependencies first.
 */
import { DlbundleError } from './errors';
import { xxh64 } from './hash';
import { compareNames, dependencyGraph, externalDependencies, loadOrder } from './plan';

/** The manifest format this version reads and writes. */
export const MANIFEST_FORMAT = 1;

/** The manifest's file name inside a bundle directory. */
export const MANIFEST_FILE = 'dlbundle.json';

/** One bundled shared object. */
export interface ManifestFile {
  /** File name in the bundle and in the cache directory; a plain base name. */
  readonly name: string;
  /** Size in bytes. */
  readonly size: number;
  /** xxh64 of the content, 16 lowercase hex digits. */
  readonly xxh64: string;
  /** DT_SONAME, or null when the file has none. */
  readonly soname: string | null;
  /** DT_NEEDED entries in file order. */
  readonly needed: readonly string[];
  /** DT_RUNPATH directories in file order. */
  readonly runpath: readonly string[];
  /** ELF machine name (`x86_64`, `aarch64`, …). */
  readonly machine: string;
  /** Present and true for a library the application loads with `bundle.optional()` (`pack --optional`): `doctor` does not count its failure. */
  readonly optional?: true;
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

/** A whole `dlbundle.json`. */
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

/**
 * Why `name` cannot be used as a file name in a bundle directory, or null when it can.
 *
 * @example
 * unsafeNameReason('../libc.so.6') // 'contains "/"'
 */
export function unsafeNameReason(name: string): string | null {
  if (name.length === 0) return 'is empty';
  if (name === '.' || name === '..') return `is ${JSON.stringify(name)}`;
  if (name.includes('/')) return 'contains "/"';
  if (name.includes('\\')) return 'contains "\\"';
  if (name.includes('\0')) return 'contains a NUL character';
  if (name.length > 255) return 'is longer than 255 characters';
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
  const name = baseName(m.name, origin, 'name');
  const variantsIn = record(m.variants, origin, 'variants');
  const variants: Record<string, ManifestVariant> = {};
  for (const [key, v] of Object.entries(variantsIn)) {
    if (!/^[a-z0-9][a-z0-9_.+-]*$/.test(key)) throw bad(origin, `variants[${JSON.stringify(key)}]`, 'is not a valid target key');
    variants[key] = parseVariant(v, origin, `variants[${JSON.stringify(key)}]`, options.checkDigest ?? true);
  }
  return { format: MANIFEST_FORMAT, name, variants };
}

function parseVariant(value: unknown, origin: string, at: string, checkDigest: boolean): ManifestVariant {
  const v = record(value, origin, at);
  const filesIn = array(v.files, origin, `${at}.files`);
  const files = filesIn.map((f, i) => parseFile(f, origin, `${at}.files[${i}]`));
  const names = new Set<string>();
  for (const f of files) {
    if (names.has(f.name)) throw bad(origin, `${at}.files`, `lists ${JSON.stringify(f.name)} twice`);
    names.add(f.name);
  }
  const order = array(v.order, origin, `${at}.order`).map((n, i) => str(n, origin, `${at}.order[${i}]`));
  if (order.length !== files.length || new Set(order).size !== order.length || !order.every((n) => names.has(n))) {
    throw bad(origin, `${at}.order`, 'is not a permutation of the file names');
  }
  const graph = dependencyGraph(files);
  loadOrder(graph); // a cycle is reported as E_CYCLE, not as a bad order
  // Every file and every soname link becomes a directory entry beside the
  // completion marker: two of them with one name cannot both exist.
  const onDisk = new Map<string, string>([[COMPLETE_MARKER, 'the completion marker']]);
  for (const f of files) {
    for (const entry of f.soname === null || f.soname === f.name ? [f.name] : [f.name, f.soname]) {
      const other = onDisk.get(entry);
      const what = entry === f.name ? `file ${JSON.stringify(f.name)}` : `the soname link of ${JSON.stringify(f.name)}`;
      if (other !== undefined) throw bad(origin, `${at}.files`, `has ${what} and ${other} both named ${JSON.stringify(entry)}`);
      onDisk.set(entry, what);
    }
  }
  const position = new Map(order.map((n, i) => [n, i]));
  for (const [user, deps] of graph.bundledDeps) {
    for (const dep of deps) {
      if ((position.get(dep) ?? 0) > (position.get(user) ?? 0)) {
        throw bad(origin, `${at}.order`, `puts ${JSON.stringify(user)} before its dependency ${JSON.stringify(dep)}`);
      }
    }
  }
  const external = array(v.external, origin, `${at}.external`).map((n, i) => str(n, origin, `${at}.external[${i}]`));
  const expectedExternal = externalDependencies(graph);
  if (JSON.stringify([...external].sort(compareNames)) !== JSON.stringify(expectedExternal)) {
    throw bad(origin, `${at}.external`, `is ${JSON.stringify(external)} but the files need ${JSON.stringify(expectedExternal)} from outside the bundle`);
  }
  const digest = hex16(v.digest, origin, `${at}.digest`);
  const variant = { digest, files, order, external: expectedExternal };
  if (checkDigest) checkVariantDigest(variant, origin, at);
  return variant;
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

function parseFile(value: unknown, origin: string, at: string): ManifestFile {
  const f = record(value, origin, at);
  const size = f.size;
  if (typeof size !== 'number' || !Number.isSafeInteger(size) || size < 0) {
    throw bad(origin, `${at}.size`, `is ${show(size)}, not a non-negative integer`);
  }
  const soname = f.soname === null ? null : baseName(f.soname, origin, `${at}.soname`);
  return {
    name: baseName(f.name, origin, `${at}.name`),
    size,
    xxh64: hex16(f.xxh64, origin, `${at}.xxh64`),
    soname,
    needed: array(f.needed, origin, `${at}.needed`).map((n, i) => str(n, origin, `${at}.needed[${i}]`)),
    runpath: array(f.runpath, origin, `${at}.runpath`).map((n, i) => str(n, origin, `${at}.runpath[${i}]`)),
    machine: str(f.machine, origin, `${at}.machine`),
    ...optionalFlag(f.optional, origin, `${at}.optional`),
  };
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

function record(value: unknown, origin: string, at: string): Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw bad(origin, at, 'is not an object');
  return value as Record<string, unknown>;
}

function array(value: unknown, origin: string, at: string): unknown[] {
  if (!Array.isArray(value)) throw bad(origin, at, 'is not an array');
  // Copied index by index: a hole in a sparse array becomes undefined and is refused like any non-string.
  return Array.from(value as unknown[]);
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

function str(value: unknown, origin: string, at: string): string {
  if (typeof value !== 'string') throw bad(origin, at, 'is not a string');
  if (value.includes('\0')) throw bad(origin, at, 'contains a NUL character');
  return value;
}

function baseName(value: unknown, origin: string, at: string): string {
  const s = str(value, origin, at);
  const reason = unsafeNameReason(s);
  if (reason !== null) throw bad(origin, at, `${JSON.stringify(s)} ${reason}; names must be plain file names`);
  return s;
}

function hex16(value: unknown, origin: string, at: string): string {
  const s = str(value, origin, at);
  if (!HEX16.test(s)) throw bad(origin, at, `${JSON.stringify(s)} is not 16 lowercase hex digits`);
  return s;
}

/**
 * Which glibc and libstdc++ versions this system offers a bundled library:
 * whether the copy of libc.so.6 or libstdc++.so.6 the dynamic linker will
 * hand it defines the `GLIBC_x.y` / `GLIBCXX_x.y.z` / `CXXABI_x.y` it needs,
 * and the highest it defines. A start asks the running glibc its version, or
 * looks the version's hash up in the copy's `.gnu.version_d` (a few
 * positioned reads, once per file per process); all the definitions are read
 * only to name what is missing, for doctor and inspect, and the process's
 * memory map only to confirm a refusal or when the bundle carries its own copy.
 */
import fs = require('node:fs');
import { logger } from './log';
import { elfHash } from './formats/elf';
import { readElfFile, readSymbolVersionsFile, versionHashesFile } from './formats/elf-file';
import { hostLibc } from './variant';
import { compareVersions, definedVersions, FAMILY_PROVIDERS, type RequiredVersions, type VersionFamily } from './versions';

const debug = logger('dlbundle:plan');

/**
 * Every glibc that runs Node 20 defines GLIBC_2.17 and all older versions:
 * the oldest builds of it (the unofficial glibc-217 ones) need exactly that.
 * A start does not look those up — manylinux2014 libraries need no more.
 */
export const GLIBC_FLOOR = '2.17';

/** What the system offers for one family. */
export interface OfferedVersion {
  /**
   * The highest version of the family the library defines (`2.36`), or null
   * when it defines none. From a quick look-up, the version asked about, once
   * the library is known to define it.
   */
  readonly version: string | null;
  /** The file that provides it: the copy of libc.so.6 or libstdc++.so.6 a bundled library will get. */
  readonly file: string;
  /** Why this copy, when it is not simply the one the system's search finds. */
  readonly note?: string;
}

/**
 * What this system offers `file` for `family` when it `needed` that version,
 * or null when dlbundle does not check (musl, whose libc has no symbol
 * versions; a provider the bundle itself carries and the process has not
 * loaded; a provider not found, which the dependency check reports).
 */
export type VersionOracle<F> = (family: VersionFamily, file: F, needed: string) => OfferedVersion | null;

/** How a {@link systemVersionOracle} finds libraries. */
export interface OracleContext<F> {
  /** Whether the bundle provides `soname` itself. */
  readonly bundled: (soname: string) => boolean;
  /** Where the system's dynamic linker would find `soname` for `file`, or null. */
  readonly resolve: (soname: string, file: F) => string | null;
  /**
   * The version of the glibc this process runs (`gnu_get_libc_version()`),
   * or null: what a start asks first for GLIBC (the run time passes it; the
   * command line, which loads nothing, does not).
   */
  readonly runningGlibc?: () => string | null;
}

/**
 * The version oracle of this process: reads what the provider of each family
 * defines, as ld.so would pick the provider. With `quick` (what a start
 * uses), a GLIBC version up to {@link GLIBC_FLOOR} is taken as present
 * without a look, a newer one is compared with the running glibc's version
 * (`ctx.runningGlibc`), and for the other families it first asks whether the
 * provider defines the very version needed, as ld.so looks first (by the hash
 * of its name: the provider's hashes are read once, a few small reads, no
 * names decoded). Every definition is read only when that answer is no — to
 * name the highest in the error, or to accept a version that only another
 * glibc library (libm) defines.
 *
 * @example
 * const offered = systemVersionOracle({ bundled: () => false, resolve: (dep) => resolveSystemLibrary(dep, ctx)?.path ?? null });
 * offered('GLIBC', file, '2.38') // { version: '2.36', file: '/usr/lib/x86_64-linux-gnu/libc.so.6' }
 */
export function systemVersionOracle<F>(ctx: OracleContext<F>, options: { readonly quick?: boolean } = {}): VersionOracle<F> {
  return (family, file, needed) => {
    if (hostLibc() !== 'gnu') return null;
    const soname = FAMILY_PROVIDERS[family].soname;
    if (options.quick === true && family === 'GLIBC') {
      if (compareVersions(needed, GLIBC_FLOOR) <= 0) return { version: needed, file: soname };
      // The libc.so.6 every glibc process already has is the one any library gets.
      const running = ctx.runningGlibc?.() ?? null;
      if (running !== null && compareVersions(needed, running) <= 0) return { version: running, file: soname };
    }
    if (ctx.bundled(soname)) {
      // ld.so hands a DT_NEEDED name the first loaded object it matches: a
      // copy the process already has (node links libstdc++) wins over the
      // bundled one, which is then loaded beside it and used by nobody.
      const loaded = loadedLibrary(soname);
      if (loaded === null) return null;
      return offeredBy(family, loaded, `the bundle carries its own ${soname}, but this process had already loaded ${loaded}, and the dynamic linker gives every library that needs ${soname} the copy already loaded`);
    }
    const path = ctx.resolve(soname, file);
    if (path === null) return null;
    if (options.quick === true && definesVersionOf(path, `${family}_${needed}`)) return { version: needed, file: path };
    const offered = offeredBy(family, path, undefined);
    if (offered === null || (offered.version !== null && compareVersions(needed, offered.version) <= 0)) return offered;
    // About to refuse: check that the copy read is the one in use (a process
    // started with another glibc or libstdc++ than the system's has it mapped).
    const loaded = loadedLibrary(soname);
    return loaded === null || sameFile(loaded, path) ? offered : (offeredBy(family, loaded, `this process has ${loaded} loaded, which the dynamic linker uses instead of ${path}`) ?? offered);
  };
}

// Two paths of one file (/lib is often a link to /usr/lib).
function sameFile(a: string, b: string): boolean {
  try {
    const x = fs.statSync(a);
    const y = fs.statSync(b);
    return x.dev === y.dev && x.ino === y.ino;
  } catch {
    return a === b;
  }
}

const definitions = new Map<string, RequiredVersions | null>();

/**
 * The highest version of each family `file` defines, read once per process;
 * null when the file cannot be read as ELF (then nothing is checked).
 *
 * @example
 * definedVersionsOf('/usr/lib/x86_64-linux-gnu/libc.so.6') // { GLIBC: '2.36' }
 */
export function definedVersionsOf(file: string): RequiredVersions | null {
  let known = definitions.get(file);
  if (known === undefined && !definitions.has(file)) {
    try {
      known = definedVersions(readSymbolVersionsFile(file).defined);
    } catch (e) {
      debug('could not read the version definitions of %s: %s', file, (e as Error).message);
      known = null;
    }
    definitions.set(file, known);
  }
  return known ?? null;
}

const hashes = new Map<string, ReadonlySet<number> | null>();

// Whether `file` defines the version `name`, by its hash (as ld.so looks first);
// each file's hashes are read once per process. False when it cannot be read:
// the full read decides then.
function definesVersionOf(file: string, name: string): boolean {
  let known = hashes.get(file);
  if (known === undefined) {
    try {
      known = versionHashesFile(file);
    } catch (e) {
      debug('could not read the version definitions of %s: %s', file, (e as Error).message);
      known = null;
    }
    hashes.set(file, known);
  }
  return known?.has(elfHash(name)) ?? false;
}

function offeredBy(family: VersionFamily, file: string, note: string | undefined): OfferedVersion | null {
  const defined = definedVersionsOf(file);
  if (defined === null) return null;
  return { version: defined[family] ?? null, file, ...(note === undefined ? {} : { note }) };
}

const loadedPaths = new Map<string, string>();

/**
 * The file of the object with soname `soname` that this process has mapped,
 * or null. Read from /proc/self/maps (≈ 0.3 ms, more on a first read), with
 * each mapped library's soname: the file name alone would miss glibc before
 * 2.34, whose libc.so.6 is the file libc-2.31.so. A library once loaded stays,
 * so a found path is kept for the process.
 */
export function loadedLibrary(soname: string): string | null {
  const known = loadedPaths.get(soname);
  if (known !== undefined) return known;
  let maps: string;
  try {
    maps = fs.readFileSync('/proc/self/maps', 'latin1');
  } catch {
    // No /proc (some sandboxes): nothing to confirm with.
    return null;
  }
  const seen = new Set<string>();
  for (const line of maps.split('\n')) {
    const at = line.indexOf(' /');
    if (at < 0) continue;
    const file = line.slice(at + 1);
    if (seen.has(file) || !/\.so([.-]|$)/.test(file)) continue;
    seen.add(file);
    try {
      if (readElfFile(file).soname === soname) {
        loadedPaths.set(soname, file);
        return file;
      }
    } catch {
      // Deleted since it was mapped, or not ELF: not the one.
    }
  }
  return null;
}

/**
 * Where macOS's dyld would find a library that the bundle does not provide,
 * asked before any load so that a missing one is reported by name
 * (`E_MISSING_DEP`) instead of as a bare `dlopen` message: the Mach-O
 * counterpart of system-libs.ts. The order is dyld's: `DYLD_LIBRARY_PATH`
 * (by leaf name), then the install name itself — `@rpath/` through the
 * library's LC_RPATH entries, `@loader_path/` in the directory it is loaded
 * from (the bundle directory), `@executable_path/` in the main program's —
 * then `DYLD_FALLBACK_LIBRARY_PATH` (by leaf name; `/usr/local/lib:/usr/lib`
 * when unset — older releases also searched `~/lib`, which is not counted on).
 * The `DYLD_*` variables are taken as this process has them; dyld ignores
 * them in a program with the hardened runtime, which this does not know.
 *
 * System libraries are not looked for on disk: since macOS 11 the ones under
 * `/usr/lib` and `/System` live only in the dyld shared cache, and
 * `/usr/lib/libSystem.B.dylib` is not a file on any Mac, so a dependency
 * under those directories is taken as present. Written from dyld's
 * documented rules (`man dyld`, `man dlopen`); it has not run on a Mac.
 */
import path = require('node:path');
import { logger } from './log';
import { withFileSource } from './formats/elf-file';
import { readMachO } from './formats/macho';
import { hostTarget, targetLibraries } from './variant';

const debug = logger('dlbundle:plan');

/** What the requesting library and the process contribute to dyld's search. */
export interface DyldContext {
  /** LC_RPATH entries of the library that needs the dependency, unexpanded (`@loader_path/../lib`). */
  readonly rpaths: readonly string[];
  /** The directory the library is loaded from: what `@loader_path` expands to. */
  readonly loaderDir: string;
  /** The main program's directory: what `@executable_path` expands to. */
  readonly executableDir: string;
  /** The environment dyld read at start-up (`DYLD_LIBRARY_PATH`, `DYLD_FALLBACK_LIBRARY_PATH`); `process.env` by default. */
  readonly env?: NodeJS.ProcessEnv;
  /** The CPU the process runs, by dlbundle's names (`x86_64`, `aarch64`); this machine's by default. */
  readonly machine?: string;
}

/** Where a dependency was found, and through which step of dyld's search. */
export interface DyldResolution {
  readonly path: string;
  readonly via: 'DYLD_LIBRARY_PATH' | 'system' | 'rpath' | 'loader_path' | 'executable_path' | 'path' | 'DYLD_FALLBACK_LIBRARY_PATH';
}

/** What {@link resolveDyldLibrary} searches, in dyld's words: `E_MISSING_DEP` says it. */
export const DYLD_SEARCH = 'DYLD_LIBRARY_PATH, its LC_RPATH entries, @loader_path (the bundle directory), @executable_path and DYLD_FALLBACK_LIBRARY_PATH; /usr/lib and /System are taken as present (the dyld shared cache)';

/** Directories whose libraries every macOS (11 and later) has in its dyld shared cache. */
const SYSTEM_PREFIXES = ['/usr/lib/', '/System/'];

/** dyld's fallback directories when DYLD_FALLBACK_LIBRARY_PATH is unset (`man dyld`). */
const DEFAULT_FALLBACK = ['/usr/local/lib', '/usr/lib'];

/**
 * Whether `name` is a macOS system library: under `/usr/lib/` or `/System/`,
 * present on every Mac through the dyld shared cache, not on disk.
 *
 * @example
 * isMacSystemLibrary('/usr/lib/libSystem.B.dylib') // true
 * isMacSystemLibrary('@rpath/libvips.42.dylib')    // false
 */
export function isMacSystemLibrary(name: string): boolean {
  return SYSTEM_PREFIXES.some((p) => name.startsWith(p));
}

/**
 * `entry` with a leading `@loader_path` or `@executable_path` replaced by its
 * directory, as dyld expands LC_RPATH entries and install names; anything
 * else unchanged.
 *
 * @example
 * expandLoaderPath('@loader_path/../lib', { loaderDir: '/cache/b-1', executableDir: '/app' }) // '/cache/b-1/../lib'
 */
export function expandLoaderPath(entry: string, ctx: Pick<DyldContext, 'loaderDir' | 'executableDir'>): string {
  if (entry === '@loader_path' || entry.startsWith('@loader_path/')) return ctx.loaderDir + entry.slice('@loader_path'.length);
  if (entry === '@executable_path' || entry.startsWith('@executable_path/')) return ctx.executableDir + entry.slice('@executable_path'.length);
  return entry;
}

/**
 * Finds the dylib `name` (an install name as a load command writes it) the
 * way dyld would, or returns null.
 *
 * @example
 * resolveDyldLibrary('/usr/lib/libSystem.B.dylib', ctx) // { path: '/usr/lib/libSystem.B.dylib', via: 'system' }
 * resolveDyldLibrary('@rpath/libmac_core.dylib', { rpaths: ['@loader_path'], loaderDir: dir, executableDir }) // { path: `${dir}/libmac_core.dylib`, via: 'rpath' }
 */
export function resolveDyldLibrary(name: string, ctx: DyldContext): DyldResolution | null {
  const env = ctx.env ?? process.env;
  const machine = ctx.machine ?? targetLibraries(hostTarget()).machine;
  const exists = (file: string): boolean => fitsMachine(file, machine);
  const leaf = name.slice(name.lastIndexOf('/') + 1);
  const inDirs = (list: string | undefined, via: DyldResolution['via']): DyldResolution | null => {
    for (const dir of (list ?? '').split(':')) {
      if (dir === '') continue;
      const candidate = path.join(dir, leaf);
      if (exists(candidate)) return { path: candidate, via };
    }
    return null;
  };
  const found =
    inDirs(env.DYLD_LIBRARY_PATH, 'DYLD_LIBRARY_PATH') ??
    itself(name, ctx, exists) ??
    inDirs(env.DYLD_FALLBACK_LIBRARY_PATH ?? DEFAULT_FALLBACK.join(':'), 'DYLD_FALLBACK_LIBRARY_PATH');
  debug('%s → %s', name, found === null ? 'not found' : `${found.path} (${found.via})`);
  return found;
}

/** The install name itself, expanded: the step between dyld's two environment searches. */
function itself(name: string, ctx: DyldContext, exists: (file: string) => boolean): DyldResolution | null {
  if (isMacSystemLibrary(name)) return { path: name, via: 'system' };
  if (name.startsWith('@rpath/')) {
    const rest = name.slice('@rpath/'.length);
    for (const entry of ctx.rpaths) {
      const candidate = path.join(expandLoaderPath(entry, ctx), rest);
      if (exists(candidate)) return { path: candidate, via: 'rpath' };
    }
    return null;
  }
  const expanded = expandLoaderPath(name, ctx);
  const via: DyldResolution['via'] = expanded === name ? 'path' : name.startsWith('@loader_path') ? 'loader_path' : 'executable_path';
  // Another @ word (a typo, or one dyld does not know) names no file; a
  // relative name is found from the current directory, and not at all in a
  // program with the hardened runtime: not counted on.
  if (expanded.startsWith('@') || !path.isAbsolute(expanded)) return null;
  const candidate = path.normalize(expanded);
  return exists(candidate) ? { path: candidate, via } : null;
}

// Files found to fit; a miss is not remembered: a library installed (or
// placed beside the bundle) later in the life of the process counts then.
const fits = new Set<string>();

/** Whether `file` is a Mach-O file with an image for `machine` (thin, or one slice of a universal file): dyld passes over any other and searches on. */
function fitsMachine(file: string, machine: string): boolean {
  const key = `${machine}\0${file}`;
  if (fits.has(key)) return true;
  try {
    // The Mach-O reader alone: the run time carries no PE reader.
    if (!withFileSource(file, (src) => readMachO(src, file)).images.some((image) => image.machine === machine)) return false;
  } catch {
    // Missing, unreadable or not Mach-O: dyld would not load it either.
    return false;
  }
  fits.add(key);
  return true;
}

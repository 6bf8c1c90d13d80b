/**
 * The search an external dependency is checked with before any load, by
 * platform (platform.ts says whose): glibc's or musl's `ld.so`
 * (system-libs.ts) on Linux, `dyld` (dyld-libs.ts) on macOS, the DLL search
 * (system-dlls.ts) on Windows. The first two look from the bundle
 * directory: `$ORIGIN` and `@loader_path` are where the bundled files are.
 */
import path = require('node:path');
import { DYLD_SEARCH, resolveDyldLibrary } from './dyld-libs';
import type { LoadCandidate } from './plan';
import { runtimePlatform } from './platform';
import { DLL_SEARCH, resolveSystemDll } from './system-dlls';
import { resolveSystemLibrary } from './system-libs';

/** How the dependencies of a bundled library are looked up on the system. */
export interface SystemSearch {
  /** Where `dependency` of `file` would be found, or null. */
  resolve(dependency: string, file: Pick<LoadCandidate, 'runpath'>): string | null;
  /** {@link resolve}, with the search step that found it (`ld.so.cache`, `rpath`, `system directory`, …), for `inspect` and `doctor`. */
  find(dependency: string, file: Pick<LoadCandidate, 'runpath'>): { readonly path: string; readonly via: string } | null;
  /** Where it looks, for `E_MISSING_DEP`'s message; undefined: ld.so's places (checkBeforeLoad's default). */
  readonly searched: string | undefined;
}

/**
 * The system search of `platform` (default: this process's) for libraries
 * loaded from `dir` (empty in memory mode, which has no directory).
 *
 * @example
 * systemSearch('/Users/me/Library/Caches/dlbundle/demo-1a2b', 'darwin').resolve('/usr/lib/libSystem.B.dylib', file) // '/usr/lib/libSystem.B.dylib'
 */
export function systemSearch(dir: string, platform: NodeJS.Platform = process.platform): SystemSearch {
  const linker = runtimePlatform(platform).linker;
  const search = (searched: string | undefined, find: SystemSearch['find']): SystemSearch => ({ searched, find, resolve: (dep, file) => find(dep, file)?.path ?? null });
  if (linker === 'windows') return search(DLL_SEARCH, (dep) => resolveSystemDll(dep));
  if (linker === 'dyld') {
    const executableDir = path.dirname(process.execPath);
    return search(DYLD_SEARCH, (dep, file) => resolveDyldLibrary(dep, { rpaths: file.runpath, loaderDir: dir, executableDir }));
  }
  return search(undefined, (dep, file) => resolveSystemLibrary(dep, { runpath: file.runpath, origin: dir }));
}

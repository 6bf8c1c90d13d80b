/**
 * The search an external dependency is checked with before any load, by
 * platform (platform.ts says whose): glibc's or musl's `ld.so`
 * (system-libs.ts) on Linux, `dyld` (dyld-libs.ts) on macOS. Both look from
 * the bundle directory: `$ORIGIN` and `@loader_path` are where the bundled
 * files are.
 */
import path = require('node:path');
import { resolveDyldLibrary } from './dyld-libs';
import type { LoadCandidate } from './plan';
import { runtimePlatform } from './platform';
import { resolveSystemLibrary } from './system-libs';

/** How the dependencies of a bundled library are looked up on the system. */
export interface SystemSearch {
  /** Where `dependency` of `file` would be found, or null. */
  resolve(dependency: string, file: Pick<LoadCandidate, 'runpath'>): string | null;
  /** Where it looks, for `E_MISSING_DEP`'s message. */
  readonly searched: string;
}

/**
 * The system search of `platform` (default: this process's) for libraries
 * loaded from `dir` (empty in memory mode, which has no directory).
 *
 * @example
 * systemSearch('/tmp/dlbundle-1000/demo-1a2b', 'darwin').resolve('/usr/lib/libSystem.B.dylib', file) // '/usr/lib/libSystem.B.dylib'
 */
export function systemSearch(dir: string, platform: NodeJS.Platform = process.platform): SystemSearch {
  const facts = runtimePlatform(platform);
  if (facts.linker === 'dyld') {
    const executableDir = path.dirname(process.execPath);
    return { searched: facts.searched, resolve: (dep, file) => resolveDyldLibrary(dep, { rpaths: file.runpath, loaderDir: dir, executableDir })?.path ?? null };
  }
  return { searched: facts.searched, resolve: (dep, file) => resolveSystemLibrary(dep, { runpath: file.runpath, origin: dir })?.path ?? null };
}

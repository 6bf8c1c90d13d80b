/**
 * The default cache roots and the user they belong to: shared by the root
 * checks (roots.ts) and by the loader of dlbundle's own code (runtime-loader.ts),
 * which looks for V8's code cache there before the rest of dlbundle is compiled.
 * Which roots a platform prefers is in platform.ts's table; this module
 * fills them in from the environment.
 */
import path = require('node:path');
import { runtimePlatform, type PlatformRoot, type RootPlaces } from './platform';

/**
 * The user the cache belongs to: the effective uid.
 *
 * @example
 * effectiveUid() // 1000
 */
export function effectiveUid(): number {
  // node:os is loaded only where there is no geteuid: the front imports this module.
  return process.geteuid?.() ?? (require('node:os') as typeof import('node:os')).userInfo().uid;
}

/**
 * The platform's cache roots (platform.ts), most preferred first, from the
 * environment as it is now: each an absolute path, or why it cannot be named.
 *
 * @example
 * platformRoots('linux') // [{ root: '/tmp/dlbundle-1000' }, { root: '/home/me/.cache/dlbundle' }]
 * platformRoots('darwin') // [{ root: '/Users/me/Library/Caches/dlbundle' }, { root: '/var/folders/…/T/dlbundle-501' }]
 */
export function platformRoots(platform: NodeJS.Platform = process.platform): readonly PlatformRoot[] {
  const places: RootPlaces = { tmpdir: () => tmpdir(platform), home: homeDirectory, uid: effectiveUid, env: process.env };
  return runtimePlatform(platform).roots(places);
}

/**
 * The first cache root when no `cacheDir` option is given, as an absolute
 * path: $DLBUNDLE_CACHE_DIR, else the platform's first root that can be
 * named (`<tmpdir>/dlbundle-<uid>` on Linux, `~/Library/Caches/dlbundle` on
 * macOS). Read from the environment when called.
 *
 * @example
 * defaultRoot() // '/tmp/dlbundle-1000'
 */
export function defaultRoot(platform: NodeJS.Platform = process.platform): string {
  const env = process.env.DLBUNDLE_CACHE_DIR;
  // Absolute: a relative DLBUNDLE_CACHE_DIR means the same directory to the root check and to the code cache.
  if (env !== undefined && env !== '') return path.resolve(env);
  for (const r of platformRoots(platform)) if ('root' in r) return path.resolve(r.root);
  // Every platform names a root in its temporary directory; this is not reached.
  return path.resolve(tmpdir(platform), `dlbundle-${effectiveUid()}`);
}

/**
 * os.tmpdir(), without loading node:os on POSIX (≈ 0.4 ms of a start): the
 * first of TMPDIR, TMP, TEMP that is set, else /tmp, without a trailing slash.
 */
function tmpdir(platform: NodeJS.Platform): string {
  if (platform === 'win32') return (require('node:os') as typeof import('node:os')).tmpdir();
  const env = process.env;
  const dir = env.TMPDIR || env.TMP || env.TEMP || '/tmp';
  return dir.length > 1 && dir.endsWith('/') ? dir.slice(0, -1) : dir;
}

// os.homedir() throws when HOME is unset and the uid has no passwd entry.
function homeDirectory(): string | { reason: string } {
  let home: string;
  try {
    // What os.homedir() answers first, without node:os (≈ 0.35 ms of a start; it is computed on every one).
    const env = process.env.HOME;
    home = env !== undefined && env !== '' ? env : (require('node:os') as typeof import('node:os')).homedir();
  } catch (e) {
    const why = process.env.HOME === undefined || process.env.HOME === '' ? `HOME is not set and uid ${effectiveUid()} has no passwd entry` : (e as Error).message;
    return { reason: `no home directory: ${why}` };
  }
  if (!path.isAbsolute(home)) return { reason: `no home directory: ${JSON.stringify(home)} is not an absolute path` };
  return home;
}

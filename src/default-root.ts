/**
 * The default cache root and the user it belongs to: shared by the root
 * checks (roots.ts) and by the loader of dlbundle's own code (runtime-loader.ts),
 * which looks for V8's code cache there before the rest of dlbundle is compiled.
 */
import path = require('node:path');
import { runtimePlatform } from './platform';

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
 * The first cache root when no `cacheDir` option is given, as an absolute
 * path: $DLBUNDLE_CACHE_DIR, else the system's preferred root
 * (platform.ts; Windows: `%LOCALAPPDATA%\dlbundle`), else
 * `<tmpdir>/dlbundle-<uid>`. Read from the environment when called.
 *
 * @example
 * defaultRoot() // '/tmp/dlbundle-1000'
 */
export function defaultRoot(): string {
  const env = process.env.DLBUNDLE_CACHE_DIR;
  // Absolute: a relative DLBUNDLE_CACHE_DIR means the same directory to the root check and to the code cache.
  if (env !== undefined && env !== '') return path.resolve(env);
  const system = runtimePlatform().cacheRoots?.(process.env).preferred;
  return path.resolve(system ?? path.join(tmpdir(), `dlbundle-${effectiveUid()}`));
}

/**
 * os.tmpdir() on POSIX, without loading node:os (≈ 0.4 ms of a start): the
 * first of TMPDIR, TMP, TEMP that is set, else /tmp, without a trailing slash.
 */
function tmpdir(): string {
  const env = process.env;
  const dir = env.TMPDIR || env.TMP || env.TEMP || '/tmp';
  return dir.length > 1 && dir.endsWith('/') ? dir.slice(0, -1) : dir;
}

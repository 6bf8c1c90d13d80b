/**
 * Which of a single-file program's bundles `autoSource(dir)` means. A build
 * (`dlbundle sea --bundle`, `dlbundle bundle --bundle`) records each bundle
 * with its directory relative to the entry script; at run time the entry's
 * directory is the program's own, so `dir` is taken relative to that.
 */
import path = require('node:path');

/**
 * The recorded bundle whose directory is `dir` relative to `base` (or the
 * only one, when there is one), with that relative path; `match` is null when
 * none is.
 *
 * @example
 * recordedBundle([{ name: 'demo', dir: 'native' }], '/opt/app', '/opt/app/native') // { match: { name: 'demo', dir: 'native' }, wanted: 'native' }
 */
export function recordedBundle<T extends { readonly dir: string }>(recorded: readonly T[], base: string, dir: string): { match: T | null; wanted: string } {
  const wanted = path.relative(base, path.resolve(dir));
  return { match: recorded.find((b) => b.dir === wanted) ?? (recorded.length === 1 ? (recorded[0] as T) : null), wanted };
}

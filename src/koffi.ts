/**
 * The one place dlbundle obtains koffi. It is loaded on first use, never at
 * import, because loading it maps koffi's native module into the process.
 *
 * dlbundle needs only koffi's native module (`koffi.node`): its exports are
 * the functions koffi's package re-exports. koffi's JavaScript entry finds that
 * file by trying several package layouts, and costs about 8 ms of a start on
 * top of the 2 ms of the dlopen itself — most of what a warm start costs.
 * So, where koffi is installed in the usual way, dlbundle finds the same file
 * the way koffi's static loader does (the `@koromix/koffi-<platform>-<arch>`
 * package, resolved from koffi's own directory) and `require`s it. Through
 * `require`, the module is cached by its real path, so an application that
 * also requires koffi, before or after, gets the very same native module
 * (koffi's loader then wraps it, as it always does): there is one koffi in
 * the process. A single-file build uses the koffi.node it carries, and a
 * pkg executable the one in its snapshot, each placed through the cache
 * (koffi-native.ts). Anything else unusual — koffi not found beside dlbundle,
 * another layout, a version that differs from koffi's own, a koffi.node that
 * does not load — falls back to `require('koffi')`.
 */
import fs = require('node:fs');
import path = require('node:path');
import type * as Koffi from 'koffi' with { 'resolution-mode': 'require' };
import { DlbundleError } from './errors';
import { carriesKoffiNative, EMBEDDED_KOFFI_KEY, koffiFromSnapshot, placeKoffiNative } from './koffi-native';
import { logger } from './log';
import { inPkgSnapshot } from './sources/pkg-snapshot';
import { hostLibc } from './variant';

/** koffi's module object. */
export type KoffiModule = typeof Koffi;
/** A library loaded by koffi; it stays loaded while this object is referenced. */
export type KoffiLibrary = Koffi.LibraryHandle;

const debug = logger('dlbundle:load');

let cached: KoffiModule | undefined;

/**
 * The koffi instance dlbundle loads and binds libraries with, loaded on the
 * first call — the same module an application's own `require('koffi')` gets
 * where koffi is installed the usual way. Declare structs, unions, callbacks
 * and other types on it: symbols that name them are bound by this instance.
 *
 * @example
 * const koffi = dlbundle.koffi();
 * koffi.struct('demo_point', { x: 'int', y: 'int', len2: 'int' });
 * bundle.library('libdemo_core.so', { point: 'demo_point core_point(int x, int y)' }).point(3, 4); // { x: 3, y: 4, len2: 25 }
 */
export function koffi(): KoffiModule {
  if (cached !== undefined) return cached;
  obtaining = true;
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    cached ??= koffiNativeModule() ?? carriedKoffi() ?? (require('koffi') as KoffiModule);
  } finally {
    obtaining = false;
  }
  return cached;
}

let obtaining = false;

/**
 * koffi, unless it is being obtained right now: a single-file build places
 * its koffi.node through the cache, whose lease names this process by its
 * start time, which Windows tells only through koffi (windows-processes.ts).
 * Null then, and that lease goes without a start time.
 *
 * @example
 * const ffi = koffiUnlessObtaining(); if (ffi !== null) ffi.load('kernel32.dll');
 */
export function koffiUnlessObtaining(): KoffiModule | null {
  return cached ?? (obtaining ? null : koffi());
}

/**
 * In a single-file build, the koffi.node it carries, placed and loaded
 * directly: koffi's own JavaScript, bundled into the program, would only
 * end up asking dlbundle for it (koffi-native.ts), after ≈ 1–2 ms of its own.
 */
function carriedKoffi(): KoffiModule | null {
  return carriesKoffiNative() ? (placeKoffiNative() as KoffiModule) : null;
}

/**
 * The koffi already in use, or the native module `load` gives, which is koffi
 * from then on: koffi-native.ts's loader in single-file builds, so that the
 * process holds one koffi whichever is asked first.
 */
export function koffiInUseOr(load: () => unknown): unknown {
  cached ??= load() as KoffiModule;
  return cached;
}

/**
 * koffi's native module as koffi's own static loader would find it, loaded
 * with `require`, or null when it is not where that loader looks.
 */
function koffiNativeModule(): KoffiModule | null {
  // Outside a package tree (a single executable, whose require reaches only
  // built-in modules) there is nothing to find.
  const paths = typeof require.resolve?.paths === 'function' ? require.resolve.paths('koffi') : null;
  // A single-file bundle carries its own koffi.node (koffi-native.ts); one found beside it may be another version.
  if (paths === null || Symbol.for(EMBEDDED_KOFFI_KEY) in globalThis) return null;
  const file = koffiNativeFile(paths);
  if (file === null) return null;
  // A pkg executable cannot dlopen a file of its snapshot; pkg's own way out
  // (process.dlopen copying it to ~/.cache/pkg) writes in place, unchecked.
  if (inPkgSnapshot(file.path)) return koffiFromSnapshot(file) as KoffiModule | null;
  let native: { version?: unknown };
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    native = require(file.path) as { version?: unknown };
  } catch (e) {
    // koffi's own loader reports why (it tries this file too), in the words users search for.
    debug('koffi.node at %s did not load (%s); asking koffi', file.path, (e as Error).message);
    return null;
  }
  // The package said koffi's version; its native module says otherwise. koffi's own loader will refuse it, with its own words.
  if (native.version !== file.version) return null;
  debug('koffi %s: native module %s', file.version, file.path);
  return native as KoffiModule;
}

/**
 * Where koffi's static loader would take `koffi.node` from, with koffi's
 * version, given the directories `require('koffi')` would search; null when
 * koffi is not in them or its native module is not where that loader looks
 * first (another platform than Linux, a build from source, an architecture
 * whose directory names its float ABI).
 *
 * @example
 * koffiNativeFile(require.resolve.paths('koffi'))
 * // { path: '/app/node_modules/@koromix/koffi-linux-x64/linux_x64/koffi.node', version: '3.3.4' }
 */
export function koffiNativeFile(paths: readonly string[]): { path: string; version: string } | null {
  if (process.platform !== 'linux') return null;
  for (const dir of paths) {
    const manifestFile = path.join(dir, 'koffi', 'package.json');
    // Most directories on the way have no koffi: asked without a thrown ENOENT, which costs ≈ 0.1 ms each.
    if (!fs.existsSync(manifestFile)) continue;
    let manifest: string;
    let koffiDir: string;
    try {
      manifest = fs.readFileSync(manifestFile, 'utf8');
      // A link (pnpm, npm link): koffi's loader searches from where koffi really is.
      // pkg's snapshot has no realpath (ENOENT); it keeps the layout it packed.
      koffiDir = inPkgSnapshot(dir) ? path.join(dir, 'koffi') : fs.realpathSync.native(path.join(dir, 'koffi'));
    } catch {
      continue;
    }
    const version = versionOf(manifest);
    return version === null ? null : nativeFileFrom(koffiDir, version);
  }
  return null;
}

function versionOf(packageJson: string): string | null {
  try {
    const version = (JSON.parse(packageJson) as { version?: unknown }).version;
    return typeof version === 'string' ? version : null;
  } catch {
    return null;
  }
}

/**
 * koffi's static loader requires `@koromix/koffi-<platform>-<arch>` from
 * `<koffi>/src/koffi/src/`: the first `node_modules` up from there that holds
 * that package decides, and the package takes `<platform>_<arch>/koffi.node`
 * (`musl_<arch>` under musl). Null when that package is of another version
 * than koffi (koffi would refuse it; so does this, before loading anything) or
 * has no such file.
 */
function nativeFileFrom(koffiDir: string, version: string): { path: string; version: string } | null {
  const pkg = path.join('@koromix', `koffi-${process.platform}-${process.arch}`);
  const triplet = `${hostLibc() === 'musl' ? 'musl' : process.platform}_${process.arch}`;
  for (let dir = path.join(koffiDir, 'src', 'koffi', 'src'); ; dir = path.dirname(dir)) {
    if (path.basename(dir) !== 'node_modules') {
      const pkgDir = path.join(dir, 'node_modules', pkg);
      let manifest: string | null = null;
      try {
        if (fs.existsSync(pkgDir)) manifest = fs.readFileSync(path.join(pkgDir, 'package.json'), 'utf8');
      } catch {
        // A package directory without a manifest: koffi would not take it either.
        return null;
      }
      if (manifest !== null) {
        const file = path.join(pkgDir, triplet, 'koffi.node');
        if (versionOf(manifest) !== version) return null;
        if (fs.existsSync(file)) return { path: file, version };
        if (inPkgSnapshot(file)) throw notInSnapshot(file, pkg);
        return null;
      }
    }
    if (path.dirname(dir) === dir) return null;
  }
}

// pkg packs the files that code requires by name; koffi's loader names its koffi.node in a variable.
function notInSnapshot(file: string, pkg: string): DlbundleError {
  return new DlbundleError(
    'E_MISSING_BLOB',
    `koffi's native module ${JSON.stringify(file)} is not in this pkg executable: pkg does not see koffi's loader require it.`,
    `Add "node_modules/${pkg}/**/koffi.node" to "pkg": { "assets": [...] } in the application's package.json, and build again.`,
    { file },
  );
}

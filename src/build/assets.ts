/**
 * The files of a bundle directory as (key → path) pairs: the layout that SEA
 * assets and generated modules carry, `<variant>/<file>` plus `dlbundle.json`.
 */
import fs = require('node:fs');
import path = require('node:path');
import { pack } from '../pack';
import { DlbundleError } from '../errors';
import { KOFFI_NATIVE_BUNDLE, KOFFI_NATIVE_FILE } from '../koffi-native';
import { readBundleManifest } from '../inspect';
import { MANIFEST_FILE, type Manifest } from '../manifest';
import { targetFacts } from '../variant';

/** A bundle directory's manifest and the path of each of its files, keyed like the directory. */
export interface BundleFiles {
  readonly manifest: Manifest;
  /** `dlbundle.json` and `<variant>/<file>` → absolute path. */
  readonly files: ReadonlyMap<string, string>;
}

/**
 * Every file of the bundle in `dir`, validated.
 *
 * @example
 * bundleFiles('native').files.get('linux-x64-gnu/libdemo_core.so')
 */
export function bundleFiles(dir: string): BundleFiles {
  const manifest = readBundleManifest(dir);
  const files = new Map<string, string>([[MANIFEST_FILE, path.resolve(dir, MANIFEST_FILE)]]);
  for (const [key, variant] of Object.entries(manifest.variants)) {
    for (const f of variant.files) files.set(`${key}/${f.name}`, path.resolve(dir, key, f.name));
  }
  return { manifest, files };
}

/**
 * Packs the installed koffi's prebuilt `koffi.node` files (glibc and musl
 * builds) as the `koffi-native` bundle in `out`, for single-file builds; for
 * `target` (`win32-x64`) when it is another system's than this one.
 *
 * @example
 * packKoffiNative(path.join(work, 'koffi-native'));
 */
export function packKoffiNative(out: string, target?: string): BundleFiles {
  const { files } = installedKoffiNative(target);
  fs.rmSync(out, { recursive: true, force: true });
  for (const [target, file] of Object.entries(files)) pack([file], { name: KOFFI_NATIVE_BUNDLE, out, target });
  return bundleFiles(out);
}

/** Where koffi's prebuilt native modules are installed, per target key. */
export interface KoffiNativeFiles {
  readonly version: string;
  /** Target key (`linux-x64-gnu`, `linux-x64-musl`, …) → path of that koffi.node. */
  readonly files: Readonly<Record<string, string>>;
}

/**
 * Finds the prebuilt `koffi.node` files of the installed koffi for this
 * platform and architecture (glibc and musl builds where koffi ships both),
 * or for the system of `target` (`win32-x64`: another system's build, which
 * npm installs only when asked, or which NODE_PATH reaches).
 *
 * @example
 * installedKoffiNative().files['linux-x64-gnu'] // '…/@koromix/koffi-linux-x64/linux_x64/koffi.node'
 */
export function installedKoffiNative(target?: string): KoffiNativeFiles {
  // koffi's "exports" hide package.json; its main file sits at the package root.
  const koffiDir = path.dirname(require.resolve('koffi'));
  const version = (JSON.parse(fs.readFileSync(path.join(koffiDir, 'package.json'), 'utf8')) as { version: string }).version;
  const { platform, arch } = target === undefined ? { platform: process.platform, arch: process.arch } : targetFacts(target);
  const pkg = `@koromix/koffi-${platform}-${arch}`;
  let pkgDir: string;
  try {
    pkgDir = path.dirname(require.resolve(`${pkg}/package.json`, { paths: [koffiDir] }));
  } catch (e) {
    const foreign = platform !== process.platform || arch !== process.arch;
    throw new DlbundleError(
      'E_MISSING_BLOB',
      `koffi's prebuilt package ${pkg} is not installed.`,
      foreign
        ? `npm installs another system's build only when asked: npm install --no-save --force ${pkg}@${version} (the version of the installed koffi), then build again.`
        : `Install koffi's dependencies for this platform (npm install), then build again.`,
      { cause: e },
    );
  }
  const files: Record<string, string> = {};
  // koffi's packages hold <platform>_<arch>/ (glibc) and musl_<arch>/ builds.
  const gnu = path.join(pkgDir, `${platform}_${arch}`, KOFFI_NATIVE_FILE);
  const musl = path.join(pkgDir, `musl_${arch}`, KOFFI_NATIVE_FILE);
  const suffix = platform === 'linux' ? '-gnu' : '';
  if (fs.existsSync(gnu)) files[`${platform}-${arch}${suffix}`] = gnu;
  if (platform === 'linux' && fs.existsSync(musl)) files[`linux-${arch}-musl`] = musl;
  return { version, files };
}

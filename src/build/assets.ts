/**
 * The files of a bundle directory as (key → path) pairs: the layout that SEA
 * assets and generated modules carry, `<variant>/<file>` plus `dlbundle.json`.
 */
import fs = require('node:fs');
import path = require('node:path');
import { pack } from '../pack';
import { installedKoffiNative, KOFFI_NATIVE_BUNDLE } from '../koffi-native';
import { readBundleManifest } from '../inspect';
import { MANIFEST_FILE, type Manifest } from '../manifest';

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
 * builds) as the `koffi-native` bundle in `out`, for single-file builds.
 *
 * @example
 * packKoffiNative(path.join(work, 'koffi-native'));
 */
export function packKoffiNative(out: string): BundleFiles {
  const { files } = installedKoffiNative();
  fs.rmSync(out, { recursive: true, force: true });
  for (const [target, file] of Object.entries(files)) pack([file], { name: KOFFI_NATIVE_BUNDLE, out, target });
  return bundleFiles(out);
}

/**
 * koffi's own native module (`koffi.node`) in single-file builds.
 *
 * In a single executable application `require` reaches only built-in modules,
 * and a single-file bundle has no `node_modules` beside it, so koffi's loader
 * cannot find its `koffi.node`. dlbundle's build commands carry it as a small
 * bundle of its own (`koffi-native`: one file per platform variant), and
 * replace koffi's static loader with a call to {@link loadKoffiNative}, which
 * puts that file through the same content-addressed cache and opens it with
 * `process.dlopen`. The application author writes nothing for it.
 *
 * With no usable cache root (every one noexec, read-only or full), koffi.node
 * goes into a memory file like every other library — but memory files are
 * made through koffi, so this one is made by a system interpreter instead
 * ({@link createMemoryFileWithoutKoffi}).
 */
import path = require('node:path');
import { logger } from './log';
import { tryMaterialize } from './cache';
import { EMBEDDED_KOFFI_KEY, koffiInUseOr } from './koffi';
import { DlbundleError, isDlbundleError } from './errors';
import { runSync, syncIo } from './io';
import { loadError } from './loader';
import { MANIFEST_FILE, type Manifest, type ManifestFile } from './manifest';
import { createMemoryFileWithoutKoffi, fillMemoryFile, memoryFilePath, memoryModeSupported } from './memory';
import { candidateRoots } from './roots';
import { fromBuffers, type BlobInput } from './sources/buffers';
import { fromSea, seaAssetKey, seaModule } from './sources/sea';
import type { Source } from './sources/source';
import { selectVariant } from './variant';

/** The name of the bundle that carries koffi's native module. */
export const KOFFI_NATIVE_BUNDLE = 'koffi-native';

/** The file name of koffi's native module inside that bundle. */
export const KOFFI_NATIVE_FILE = 'koffi.node';

export { EMBEDDED_KOFFI_KEY };
const EMBEDDED_KEY = Symbol.for(EMBEDDED_KOFFI_KEY);

const debug = logger('dlbundle:load');

/** koffi's native module carried in memory, as a generated module (`dlbundle pack --module`) registers it under {@link EMBEDDED_KOFFI_KEY}. */
export interface EmbeddedBundle {
  readonly manifest: Manifest | string;
  readonly blobs: Readonly<Record<string, BlobInput>>;
}

function embeddedKoffi(): EmbeddedBundle | undefined {
  return (globalThis as unknown as Record<symbol, EmbeddedBundle | undefined>)[EMBEDDED_KEY];
}

/**
 * Materializes koffi's native module for this machine from the SEA assets or
 * the registered embedded bundle, loads it with `process.dlopen` and returns
 * its exports (what `require('…/koffi.node')` would) — or returns the koffi
 * this process already uses, so that there is one. Called by the loader
 * that dlbundle's build commands substitute for koffi's own; another bundler
 * does the same by replacing koffi's `src/static.cjs` with a module whose
 * `loadStatic` returns this.
 *
 * @example
 * // koffi's src/static.cjs, replaced in a webpack or rollup single-file build:
 * module.exports = { loadStatic: () => require('dlbundle').loadKoffiNative() };
 */
export function loadKoffiNative(): unknown {
  return koffiInUseOr(placeKoffiNative);
}

/**
 * Whether this program carries koffi's native module itself: a single
 * executable with the `koffi-native` assets, or a bundle whose generated
 * module registered it.
 */
export function carriesKoffiNative(): boolean {
  if (embeddedKoffi() !== undefined) return true;
  const sea = seaModule();
  if (sea === null) return false;
  const key = seaAssetKey(KOFFI_NATIVE_BUNDLE, MANIFEST_FILE);
  try {
    if (sea.getRawAsset !== undefined) sea.getRawAsset(key);
    else sea.getAsset(key);
    return true;
  } catch {
    // A single executable built another way: koffi finds its own.
    return false;
  }
}

/** koffi's native module carried by this program, placed through the cache and loaded: see {@link loadKoffiNative}. */
export function placeKoffiNative(): unknown {
  const source = koffiNativeSource();
  const manifest = source.manifest();
  // koffi.node must match the process itself, whatever DLBUNDLE_VARIANT says about the application's bundles.
  const choice = selectVariant(Object.keys(manifest.variants), 'koffi', { honourOverride: false });
  const variant = manifest.variants[choice.key];
  if (variant === undefined) throw new DlbundleError('E_NO_VARIANT', `koffi's native module has no ${choice.key} build.`, 'Rebuild on a machine where koffi is installed for this platform.');
  const file = variant.files.find((f) => f.name === KOFFI_NATIVE_FILE);
  if (file === undefined) throw new DlbundleError('E_MISSING_BLOB', `The ${KOFFI_NATIVE_BUNDLE} bundle (${choice.key}) has no ${KOFFI_NATIVE_FILE}.`, 'Build the program again with `dlbundle sea` / `dlbundle bundle`.');
  const { roots, unavailable } = candidateRoots();
  const placed = runSync(tryMaterialize(syncIo, { bundleName: manifest.name, variantKey: choice.key, variant, source, roots, unavailableRoots: unavailable, verify: 'size', durability: 'background' }));
  if ('dir' in placed) {
    try {
      return dlopenKoffi(file, path.join(placed.dir, KOFFI_NATIVE_FILE));
    } catch (e) {
      // A root that passed the mount check and still cannot be mapped (a remount, a security policy).
      if (!isDlbundleError(e, 'E_NOEXEC') || !memoryModeSupported()) throw e;
      debug('%s cannot be mapped from %s; trying a memory file', KOFFI_NATIVE_FILE, placed.dir);
      return fromMemory(source, choice.key, file, e);
    }
  }
  if (!memoryModeSupported()) throw placed.error;
  debug('no cache root is usable for %s (%s); trying a memory file', KOFFI_NATIVE_FILE, placed.fallbacks.map((f) => `${f.root}: ${f.reason}`).join('; '));
  return fromMemory(source, choice.key, file, placed.error);
}

function dlopenKoffi(file: ManifestFile, at: string): unknown {
  const module = { exports: {} as unknown };
  try {
    process.dlopen(module, at);
  } catch (e) {
    throw loadError(file.name, at, e);
  }
  return module.exports;
}

/** koffi.node from a memory file; `diskError` (why no directory would do) is kept in the error when that fails too. */
function fromMemory(source: Source, variantKey: string, file: ManifestFile, diskError: DlbundleError): unknown {
  let fd: number;
  try {
    fd = createMemoryFileWithoutKoffi(file.name);
  } catch (e) {
    if (!isDlbundleError(e)) throw e;
    // Both reasons, then the memory error's next step (a DlbundleError's message is "what\nnext").
    const what = (err: Error): string => err.message.slice(0, Math.max(0, err.message.lastIndexOf('\n')));
    const next = e.message.slice(e.message.lastIndexOf('\n') + 1);
    throw new DlbundleError(e.code, `koffi's native module (${KOFFI_NATIVE_FILE}) could not be placed. ${what(diskError)}\n${what(e)}`, next, { file: file.name, cause: e });
  }
  return dlopenKoffi(file, memoryFilePath(fillMemoryFile(fd, { source, variantKey }, file)));
}

function koffiNativeSource(): Source {
  if (seaModule() !== null) return fromSea(KOFFI_NATIVE_BUNDLE);
  const embedded = embeddedKoffi();
  if (embedded !== undefined) return fromBuffers(embedded.manifest, embedded.blobs);
  throw new DlbundleError(
    'E_MISSING_BLOB',
    "koffi's native module (koffi.node) is not in this program: it is neither a single executable built by `dlbundle sea` nor a bundle that includes a module generated by `dlbundle pack --module`.",
    'Require the generated module before the first native call, or build with `dlbundle sea` / `dlbundle bundle`.',
  );
}

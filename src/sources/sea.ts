/**
 * A bundle carried as Node single-executable-application assets
 * (`node:sea`). Asset keys mirror a bundle directory under a prefix:
 * `dlbundle/<name>/dlbundle.json`, `dlbundle/<name>/<variant>/<file>`.
 * Blobs are read through `getRawAsset`, a view of the executable's own mapped
 * memory, so nothing is copied before the cache writes them out.
 */
import { DlbundleError } from '../errors';
import { MANIFEST_FILE, parseManifest, type Manifest } from '../manifest';
import { memoryBlob, type Source } from './source';

/** The prefix of every asset dlbundle adds to a SEA. */
export const SEA_ASSET_PREFIX = 'dlbundle';

/** The asset that lists the bundles of a SEA built by `dlbundle sea`. */
export const SEA_INDEX_ASSET = `${SEA_ASSET_PREFIX}/index.json`;

/**
 * The asset key of a path inside bundle `name` (`dlbundle.json`, or `<variant>/<file>`).
 *
 * @example
 * seaAssetKey('demo', 'linux-x64-gnu/libdemo_core.so') // 'dlbundle/demo/linux-x64-gnu/libdemo_core.so'
 */
export function seaAssetKey(name: string, relative: string): string {
  return `${SEA_ASSET_PREFIX}/${name}/${relative}`;
}

/** The part of `node:sea` dlbundle uses. */
interface SeaModule {
  isSea(): boolean;
  getAsset(key: string): ArrayBuffer;
  getAsset(key: string, encoding: string): string;
  getRawAsset?(key: string): ArrayBuffer;
}

/**
 * `node:sea` when this process is a single executable application, else null.
 *
 * @example
 * if (seaModule() !== null) console.log('running as a SEA');
 */
export function seaModule(): SeaModule | null {
  let sea: SeaModule;
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    sea = require('node:sea') as SeaModule;
  } catch {
    // Node before 20 has no node:sea: then this is certainly not a SEA.
    return null;
  }
  return sea.isSea() ? sea : null;
}

/**
 * The bundle `name` from this executable's SEA assets.
 *
 * @example
 * openBundle({ source: fromSea('demo') });
 */
export function fromSea(name: string): Source {
  let manifest: Manifest | undefined;
  const sea = (): SeaModule => {
    const m = seaModule();
    if (m === null) {
      throw new DlbundleError('E_USAGE', `fromSea(${JSON.stringify(name)}) was used outside a single executable application.`, 'Use fromDirectory (or autoSource) when running under plain node; build the executable with `dlbundle sea`.');
    }
    return m;
  };
  const asset = (key: string): Uint8Array => {
    const m = sea();
    try {
      // getRawAsset (Node ≥ 20.12) is a view of the executable's memory; getAsset copies.
      return new Uint8Array(m.getRawAsset !== undefined ? m.getRawAsset(key) : m.getAsset(key));
    } catch (e) {
      throw new DlbundleError('E_MISSING_BLOB', `This executable has no asset ${JSON.stringify(key)}.`, `Rebuild it with \`dlbundle sea\`, or add the bundle's assets with \`dlbundle pack … --sea-config\`.`, { file: key, cause: e });
    }
  };
  return {
    kind: 'sea',
    location: `SEA assets ${seaAssetKey(name, '')}`,
    manifest() {
      const key = seaAssetKey(name, MANIFEST_FILE);
      manifest ??= parseManifest(Buffer.from(asset(key)).toString('utf8'), key, { checkDigest: false, variants: 'on-use' });
      return manifest;
    },
    // eslint-disable-next-line require-yield
    *openBlob(_io, variant, file) {
      return memoryBlob(asset(seaAssetKey(name, `${variant}/${file.name}`)));
    },
  };
}

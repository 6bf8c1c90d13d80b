/**
 * A bundle held in memory: a manifest and its blobs as byte arrays (or
 * functions that produce them, so a generated module decodes only the blobs
 * that are really extracted).
 */
import { DlbundleError } from '../errors';
import { parseManifest, type Manifest } from '../manifest';
import { memoryBlob, type Source } from './source';

/** A blob's bytes, or a function called once when the blob is first needed. */
export type BlobInput = Uint8Array | (() => Uint8Array);

/**
 * A bundle from memory. `blobs` is keyed like the paths in a bundle directory:
 * `<variant>/<file name>`.
 *
 * @example
 * fromBuffers(manifestJson, { 'linux-x64-gnu/libdemo_core.so': bytes });
 */
export function fromBuffers(manifest: Manifest | string, blobs: Readonly<Record<string, BlobInput>> | ReadonlyMap<string, BlobInput>): Source {
  const parsed = parseManifest(manifest, 'the manifest given to fromBuffers', { checkDigest: false });
  const table = blobs instanceof Map ? blobs : new Map(Object.entries(blobs));
  return {
    kind: 'buffers',
    location: `memory (${parsed.name})`,
    manifest: () => parsed,
    // eslint-disable-next-line require-yield
    *openBlob(_io, variant, file) {
      const key = `${variant}/${file.name}`;
      const input = table.get(key);
      if (input === undefined) {
        throw new DlbundleError('E_MISSING_BLOB', `fromBuffers was given no blob ${JSON.stringify(key)}.`, `Pass every file of the manifest, keyed "<variant>/<file name>"; the keys given were ${JSON.stringify([...table.keys()])}.`, { file: file.name });
      }
      return memoryBlob(typeof input === 'function' ? input() : input);
    },
  };
}

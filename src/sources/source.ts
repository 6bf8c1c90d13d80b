/**
 * Where a bundle's manifest and blobs come from. Every source — a directory,
 * in-memory buffers, SEA assets, an asar archive — offers the same interface,
 * so the cache never knows which one it is reading.
 */
import type { Io, Step } from '../io';
import type { Manifest, ManifestFile } from '../manifest';

/** An open blob, read in chunks. */
export interface BlobReader {
  /**
   * Up to `scratch.length` bytes starting at `position`: either a view of
   * memory the source already holds or the filled part of `scratch`. An empty
   * array means the end of the blob.
   */
  read(io: Io, position: number, scratch: Buffer): Step<Uint8Array>;
  close(io: Io): Step<void>;
}

/** The kinds of source, as `explain()` reports them. */
export type SourceKind = 'directory' | 'buffers' | 'sea' | 'asar' | 'in-place';

/** A bundle's manifest and blobs. */
export interface Source {
  readonly kind: SourceKind;
  /** Where the bundle is, for messages and `explain()` (a path, an asset name, …). */
  readonly location: string;
  /** The validated manifest; read once, synchronously (it is small). */
  manifest(): Manifest;
  /** Opens one blob of one variant. Throws `E_MISSING_BLOB` when the source lacks it. */
  openBlob(io: Io, variant: string, file: ManifestFile): Step<BlobReader>;
  /**
   * Present when the blobs are loadable files already (an Electron app's
   * `app.asar.unpacked`): the directory holding a variant's files, loaded
   * where they are, with no copy and no cache directory.
   */
  inPlaceDir?(variant: string): string;
  /** Why this source was chosen (set by `autoSource`), for `explain()`. */
  readonly reason?: string;
}

/**
 * A reader over bytes already in memory: chunks are views, nothing is copied.
 *
 * @example
 * const reader = memoryBlob(buffer);
 */
export function memoryBlob(bytes: Uint8Array): BlobReader {
  return {
    // eslint-disable-next-line require-yield
    *read(_io, position, scratch) {
      return bytes.subarray(position, Math.min(bytes.length, position + scratch.length));
    },
    // eslint-disable-next-line require-yield
    *close() {
      return undefined;
    },
  };
}

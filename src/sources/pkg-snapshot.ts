/**
 * Files inside the snapshot of an executable built by pkg (`@yao-pkg/pkg`).
 *
 * pkg puts the application's files under `/snapshot/…`, a virtual file system
 * that exists only inside the executable. In its `--sea` mode (a Node single
 * executable application whose bootstrap mounts that file system) only some
 * calls see it: `readFileSync`, `statSync`, `readdirSync`, `existsSync` and
 * `createReadStream` do; `openSync`, `open`, `copyFileSync` and `realpathSync`
 * fail with ENOENT, so nothing can be read by position, and a stream gets
 * the whole file as one chunk whatever its `start`, `end` or
 * `highWaterMark`. And a library inside it cannot be `dlopen`ed: it must be
 * copied out first — which the cache does.
 *
 * The files themselves are byte ranges of one SEA asset, `__pkg_archive__`,
 * which `node:sea` maps from the executable; the asset `__pkg_manifest__`
 * says where each file lies (`offsets`: `[offset, length]` by path without
 * `/snapshot`). Where the archive is uncompressed, a blob is read as a view of
 * that memory — nothing is copied before the cache writes it out, however
 * large the library — and otherwise (a `--compress` build, another layout)
 * through `readFileSync`, one whole file at a time. Either way the cache
 * checks each file's size and xxh64 as it writes it.
 */
import fs = require('node:fs');
import path = require('node:path');
import { logger } from '../log';
import { seaModule } from './sea';

const debug = logger('dlbundle:pkg');

/** Where pkg mounts its snapshot on Linux and macOS. */
export const PKG_SNAPSHOT_ROOT = '/snapshot';

/** The SEA assets of pkg's `--sea` mode: the file list and the archive of file contents. */
const PKG_MANIFEST_ASSET = '__pkg_manifest__';
const PKG_ARCHIVE_ASSET = '__pkg_archive__';

/** Links followed in one lookup before giving up (pkg's own limit, the kernel's MAXSYMLINKS). */
const MAX_LINK_HOPS = 40;

/**
 * Whether this process is an executable built by pkg: its bootstrap sets
 * `process.pkg` before the application's first line runs.
 *
 * @example
 * if (isPkgExecutable()) console.log('inside a pkg executable');
 */
export function isPkgExecutable(): boolean {
  const pkg = (process as { pkg?: unknown }).pkg;
  return typeof pkg === 'object' && pkg !== null;
}

/**
 * Whether `file` is inside the snapshot of this pkg executable (false in any
 * other process, where `/snapshot` would be an ordinary directory).
 *
 * @example
 * inPkgSnapshot(path.join(__dirname, 'native')) // true inside a pkg executable
 */
export function inPkgSnapshot(file: string): boolean {
  if (process.platform === 'win32' || !isPkgExecutable()) return false;
  const abs = path.resolve(file);
  return abs === PKG_SNAPSHOT_ROOT || abs.startsWith(`${PKG_SNAPSHOT_ROOT}/`);
}

/** What pkg's `__pkg_manifest__` says about its archive, as far as reading a file needs. */
export interface PkgArchiveIndex {
  /** `[offset, length]` in the archive, by path without `/snapshot`. */
  readonly offsets: Readonly<Record<string, unknown>>;
  /** Link targets by path without `/snapshot`. */
  readonly symlinks: Readonly<Record<string, unknown>>;
}

/**
 * The index of an uncompressed pkg archive from the text of its
 * `__pkg_manifest__`, or null when files cannot be read from the archive in
 * place: compressed (each file must be decompressed whole), or not the
 * layout this was written for.
 *
 * @example
 * pkgArchiveIndex('{"offsets":{"/app/a.so":[0,10]},"symlinks":{}}')?.offsets['/app/a.so'] // [0, 10]
 */
export function pkgArchiveIndex(manifestText: string): PkgArchiveIndex | null {
  let m: unknown;
  try {
    m = JSON.parse(manifestText);
  } catch {
    return null;
  }
  if (!isObject(m) || !isObject(m.offsets)) return null;
  // pkg writes no `compression` field, or 0, for an uncompressed archive.
  if (m.compression !== undefined && m.compression !== 0) return null;
  return { offsets: m.offsets, symlinks: isObject(m.symlinks) ? m.symlinks : {} };
}

/**
 * Where `file` (an absolute path under `/snapshot`) lies in an archive of
 * `archiveSize` bytes, following links as pkg does (on the whole path); null
 * when the index has no usable entry for it.
 *
 * @example
 * pkgArchiveRange(index, '/snapshot/app/native/linux-x64-gnu/libdemo_core.so', archive.length) // { offset: 4096, length: 16384 }
 */
export function pkgArchiveRange(index: PkgArchiveIndex, file: string, archiveSize: number): { offset: number; length: number } | null {
  let key = file.slice(PKG_SNAPSHOT_ROOT.length);
  for (let hops = 0; typeof index.symlinks[key] === 'string'; hops++) {
    if (hops === MAX_LINK_HOPS) return null;
    key = index.symlinks[key] as string;
  }
  const entry = Object.hasOwn(index.offsets, key) ? index.offsets[key] : undefined;
  if (!Array.isArray(entry) || entry.length !== 2) return null;
  const [offset, length] = entry as unknown[];
  if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length)) return null;
  const o = offset as number;
  const n = length as number;
  return o >= 0 && n >= 0 && o + n <= archiveSize ? { offset: o, length: n } : null;
}

interface PkgArchive {
  readonly index: PkgArchiveIndex;
  readonly bytes: Uint8Array;
}

// Read once, on the first blob: the manifest lists every file of the application.
let archiveCache: PkgArchive | null | undefined;

function pkgArchive(): PkgArchive | null {
  if (archiveCache !== undefined) return archiveCache;
  archiveCache = null;
  const sea = seaModule();
  if (sea === null || sea.getRawAsset === undefined) return null;
  try {
    const index = pkgArchiveIndex(sea.getAsset(PKG_MANIFEST_ASSET, 'utf8'));
    if (index === null) {
      debug('the archive is compressed or laid out otherwise: files are read whole through the snapshot');
      return null;
    }
    archiveCache = { index, bytes: new Uint8Array(sea.getRawAsset(PKG_ARCHIVE_ASSET)) };
  } catch (e) {
    debug('no pkg archive among the SEA assets (%s): files are read whole through the snapshot', (e as Error).message);
  }
  return archiveCache;
}

/**
 * The bytes of `file` (under `/snapshot`): a view of the executable's mapped
 * archive when pkg stored it uncompressed and its size agrees with what the
 * snapshot reports, else the copy `readFileSync` returns. Errors are Node's
 * (`code` ENOENT when the snapshot has no such file).
 *
 * @example
 * const bytes = readSnapshotFile('/snapshot/app/native/linux-x64-gnu/libdemo_core.so');
 */
export function readSnapshotFile(file: string): Uint8Array {
  // ENOENT here when there is no such file. Its size (from pkg's file list) also guards against an entry meant otherwise.
  const size = fs.statSync(file).size;
  const archive = pkgArchive();
  const range = archive === null ? null : pkgArchiveRange(archive.index, file, archive.bytes.length);
  if (archive !== null && range !== null && range.length === size) {
    debug('%s: %d bytes read in place from the archive', file, range.length);
    return archive.bytes.subarray(range.offset, range.offset + range.length);
  }
  debug('%s: read whole through the snapshot', file);
  return fs.readFileSync(file);
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

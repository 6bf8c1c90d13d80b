/**
 * The content-addressed store: puts a variant's files into
 * `<root>/<name>-<digest>/` once per machine and reuses them on every later
 * start.
 *
 * - Nothing half-done is visible: files are written into a private staging
 *   directory in the same root, hashed while they are written, compared with
 *   the manifest, marked complete, and the whole directory is renamed into
 *   place. A process that loses the rename uses the winner's copy; processes
 *   starting at once let one of them write (leases.ts's extraction claim).
 * - A crash loses nothing that is trusted: the files are flushed before the
 *   rename, or — on a bundle's start — after it, with a marker valid only in
 *   the boot that wrote it until they are.
 * - Nobody else's files are loaded: a root must pass the root check of
 *   roots.ts (private, and nobody else can replace it or a directory above
 *   it), and bundle directories must be real directories owned by this user
 *   and not writable by group or others; a root that fails is recorded with
 *   its reason and the next root is tried.
 * - A warm start is a few `lstat`s: no hashing, no copying (unless
 *   `verify: 'full'`).
 */
import fs = require('node:fs');
import path = require('node:path');
import { logger } from './log';
import { DlbundleError, isDlbundleError } from './errors';
import { ioError } from './file-io';
import { createXxh64, hashScratch } from './hash';
import { claimExtraction, dropLease, releaseExtraction, stagingPrefix, sweepStaging, takeLease } from './leases';
import { mountOfPath } from './mounts';
import { asyncIo, readSmallFile, runAsync, type Io, type Step } from './io';
import { checkRoot, rootFallback, unsafeDir, unsafeFileReason, unsafeReason, type RootFallback } from './roots';
import { runtimePlatform } from './platform';
import { canonicalFileList, checkVariantDigest, COMPLETE_MARKER, entryPath, sonameLink, type ManifestFile, type ManifestVariant } from './manifest';
import type { Source } from './sources/source';

const debug = logger('dlbundle:cache');

export { COMPLETE_MARKER };


// Synchronous copies use 64 KiB chunks: the buffer stays in the CPU cache, and
// reading 64 MB measured three times faster than with 1 MiB chunks. Async
// copies pay a thread-pool round trip per chunk, so they take larger ones.
const SYNC_CHUNK_BYTES = 64 << 10;
const ASYNC_CHUNK_BYTES = 1 << 20;
const EXTRACT_CHUNK_BYTES = 1 << 20;

/** How long after a first start its directory is flushed, if the process still runs ({@link sealLater}). */
const SEAL_DELAY_MS = 1000;

function scratchBuffer(io: Io): Buffer {
  return Buffer.allocUnsafe(io.mode === 'sync' ? SYNC_CHUNK_BYTES : ASYNC_CHUNK_BYTES);
}

/** How strictly a reused directory is checked. */
export type VerifyMode = 'size' | 'full';

/** What to materialize, and where it may go. */
export interface CacheRequest {
  readonly bundleName: string;
  readonly variantKey: string;
  readonly variant: ManifestVariant;
  readonly source: Source;
  /** Candidate roots, most preferred first. */
  readonly roots: readonly string[];
  /** Roots that could not even be named (no home directory): reported after the roots tried. */
  readonly unavailableRoots?: readonly RootFallback[];
  readonly verify: VerifyMode;
  /**
   * When a new directory is made durable. `'before-use'` (the default):
   * files, marker and directory are flushed before it is renamed into place.
   * `'background'` (what a bundle's start uses): it is renamed into place as
   * soon as every file is written and verified, with a completion marker
   * valid only in this boot, and flushed later if the process still runs
   * ({@link sealLater}); after a crash, a marker of another boot has the
   * files hashed before they are trusted. Where a published file cannot be
   * flushed later (Windows: a loaded DLL cannot be opened for writing), it
   * is `'before-use'`.
   */
  readonly durability?: 'before-use' | 'background';
  /** Whose rules the roots are checked by (platform.ts); this process's platform by default. */
  readonly platform?: NodeJS.Platform;
}

/** Where the variant's files are now. */
export interface CacheResult {
  readonly root: string;
  /** The bundle directory: `<root>/<name>-<digest>`. */
  readonly dir: string;
  /** True when an existing directory was used as it was. */
  readonly reused: boolean;
  /** Roots tried before `root`, with the reason each was skipped. */
  readonly fallbacks: readonly RootFallback[];
  /**
   * Set when this process could not record its use of `dir` (a read-only
   * root): why, and that `dlbundle cache prune` cannot see the use.
   */
  readonly unprotected?: string;
}

/** The directory name of a variant inside a root. */
export function bundleDirName(bundleName: string, variant: ManifestVariant): string {
  return `${bundleName}-${variant.digest}`;
}

/**
 * Makes the variant's files available in a bundle directory and says where.
 * Tries each root in turn; throws the first root's error (with every root's
 * reason in the message) when none can be used, and `E_INTEGRITY` at once when
 * the source's content is wrong, since no other root would fix that.
 *
 * @example
 * const { dir } = runSync(materialize(syncIo, request));
 */
export function* materialize(io: Io, req: CacheRequest): Step<CacheResult> {
  const result = yield* tryMaterialize(io, req);
  if ('dir' in result) return result;
  throw result.error;
}

/** Every root failed: why each one did, and the error {@link materialize} throws for it. */
export interface NoRoot {
  readonly fallbacks: readonly RootFallback[];
  readonly error: DlbundleError;
}

/**
 * {@link materialize}, returning the roots' failures instead of throwing them
 * when no root can be used (memory mode takes over from there). Content
 * errors (`E_INTEGRITY`, `E_MISSING_BLOB`, `E_BAD_MANIFEST`) are still thrown.
 *
 * @example
 * const r = runSync(tryMaterialize(syncIo, request)); if ('dir' in r) … else r.fallbacks
 */
export function* tryMaterialize(io: Io, req: CacheRequest): Step<CacheResult | NoRoot> {
  const fallbacks: RootFallback[] = [];
  const errors: DlbundleError[] = [];
  for (const root of req.roots) {
    try {
      const used = yield* useRoot(io, req, root);
      debug('%s %s in %s', used.reused ? 'reused' : 'extracted', req.variantKey, used.dir);
      return { root, ...used, fallbacks };
    } catch (e) {
      const err = isDlbundleError(e) ? e : ioError(root, e, 'use the cache root');
      // The source's content is at fault: another root would not help.
      if (err.code === 'E_INTEGRITY' || err.code === 'E_MISSING_BLOB' || err.code === 'E_BAD_MANIFEST') throw err;
      debug('root %s skipped: %s', root, err.message);
      fallbacks.push(rootFallback(root, err));
      errors.push(err);
    }
  }
  fallbacks.push(...(req.unavailableRoots ?? []));
  return { fallbacks, error: noUsableRoot(req, fallbacks, errors) };
}

function noUsableRoot(req: CacheRequest, fallbacks: readonly RootFallback[], errors: readonly DlbundleError[]): DlbundleError {
  const first = errors[0];
  const allSame = errors.every((e) => e.code === first?.code);
  return new DlbundleError(
    allSame && first !== undefined ? first.code : 'E_UNSAFE_DIR',
    `No cache directory could be used for ${JSON.stringify(req.bundleName)}:\n${fallbacks.map((f) => `  ${f.root}: ${f.reason}`).join('\n')}`,
    'Set DLBUNDLE_CACHE_DIR (or the cacheDir option) to a directory of your own with mode 0700 on a file system that allows executables.',
    { dir: req.roots[0] ?? '', cause: first },
  );
}

/**
 * Where the variant's files are loaded from: the source's own directory when
 * it loads in place (sizes checked, nothing copied), otherwise the cache
 * ({@link tryMaterialize}: every root's failure when none can be used).
 *
 * @example
 * const placed = runSync(place(syncIo, request)); if ('dir' in placed) placed.dir
 */
export function* place(io: Io, req: CacheRequest): Step<CacheResult | NoRoot> {
  const dir = req.source.inPlaceDir?.(req.variantKey);
  if (dir === undefined) return yield* tryMaterialize(io, req);
  const scratch = req.verify === 'full' ? scratchBuffer(io) : null;
  for (const file of req.variant.files) {
    const p = path.join(dir, file.name);
    const st = yield* io.lstat(p);
    let wrong = st === null ? 'is missing' : !st.isFile() ? 'is not a regular file' : st.size !== file.size ? `has ${st.size} bytes instead of ${file.size}` : null;
    // verify: 'full' hashes the files where they are: in place there is no
    // copy whose hash was checked when it was written.
    if (wrong === null && scratch !== null) {
      const digest = yield* hashFileAt(io, p, file.size, scratch);
      if (digest !== file.xxh64) wrong = `has xxh64 ${String(digest)} instead of ${file.xxh64}`;
    }
    if (wrong !== null) {
      throw new DlbundleError(
        'E_INTEGRITY',
        `${JSON.stringify(p)} ${wrong}; it is loaded in place, so it must be the file that was packed.`,
        'Ship the unpacked bundle as `dlbundle pack` wrote it (asarUnpack the whole bundle directory).',
        { file: file.name, dir },
      );
    }
  }
  debug('loading %s in place from %s', req.variantKey, dir);
  return { root: path.dirname(dir), dir, reused: true, fallbacks: [] };
}

function* useRoot(io: Io, req: CacheRequest, root: string): Step<{ dir: string; reused: boolean; unprotected?: string }> {
  yield* checkRoot(io, root, { create: true, platform: req.platform });
  const name = bundleDirName(req.bundleName, req.variant);
  const dir = path.join(root, name);
  // A root about to receive its first copy is checked for noexec before this
  // process writes anything into it, its lease included.
  let st = yield* io.lstat(dir);
  const exists = st !== null;
  if (!exists) yield* refuseNoexec(io, root, req.platform);
  // Nor is a lease written into a root whose bundle directory is not ours.
  refuseUnsafeBundleDir(dir, st);
  // The lease is taken before the directory is checked, and a prune deciding
  // about it meanwhile is waited for (takeLease says why): once checked, the
  // directory stays while this process lives.
  const lease = yield* takeLease(io, root, name);
  const unprotected = lease.unprotected === null ? {} : { unprotected: lease.unprotected };
  try {
    if (lease.recheck) st = yield* io.lstat(dir);
    let state = yield* checkUnlessGone(io, dir, req, st);
    if (state !== 'ok' && state !== MOVED) {
      if (state !== 'missing') debug('%s is damaged (%s); rebuilding it', dir, state);
      if (exists) yield* refuseNoexec(io, root, req.platform);
      // One writer: another process extracting this directory is waited for,
      // and its directory, once published, checked as a warm start checks it.
      // The damaged directory found above, still in place (same inode), is
      // not checked again: a published one is a renamed staging directory.
      const damaged = st;
      const claim = yield* claimExtraction(io, root, name, function* () {
        const now = yield* io.lstat(dir);
        if (now !== null && damaged !== null && now.ino === damaged.ino && now.dev === damaged.dev) return false;
        state = yield* checkUnlessGone(io, dir, req, now);
        return state === 'ok' || state === MOVED;
      });
      if (claim !== null) {
        try {
          yield* sweepStaging(io, root);
          return { ...(yield* extractAndPublish(io, req, root, dir)), ...unprotected };
        } finally {
          yield* releaseExtraction(io, claim);
        }
      }
    }
    if (state === MOVED) yield* refreshMarker(io, dir, req, root);
    return { dir, reused: true, ...unprotected };
  } catch (e) {
    // This root is not used after all: leave no lease in it.
    yield* dropLease(io, root, name);
    throw e;
  }
}

/**
 * Extracts the variant into a staging directory and renames it into place as
 * `dir`: flushed first, or — `durability: 'background'` — marked complete for
 * this boot only and flushed afterwards ({@link sealLater}).
 */
function* extractAndPublish(io: Io, req: CacheRequest, root: string, dir: string): Step<{ dir: string; reused: boolean }> {
  const { staging, identities } = yield* extract(io, req, root);
  // Renamed into place, the staging directory is gone: nothing to remove.
  let renamed = false;
  try {
    if (req.durability === 'background' && runtimePlatform().backgroundFlush) {
      yield* writeMarker(io, staging, markerText(req.variant, identities, bootId()), false);
      const published = yield* publish(io, staging, dir, req, root, false);
      renamed = !published.reused;
      if (renamed) sealLater(dir, req, root, identities);
      return published;
    }
    yield* flushFiles(io, staging, req);
    yield* writeMarker(io, staging, markerText(req.variant, identities), true);
    yield* fsyncDirectory(io, staging);
    const published = yield* publish(io, staging, dir, req, root, true);
    renamed = !published.reused;
    return published;
  } finally {
    if (!renamed) yield* io.rm(staging);
  }
}

/** `E_NOEXEC` when `root` is on a file system mounted noexec: its files could be written but never mapped executable. */
function* refuseNoexec(io: Io, root: string, platform?: NodeJS.Platform): Step<void> {
  // Without /proc, dlopen's "failed to map segment" is still reported as E_NOEXEC.
  const mount = yield* mountOfPath(io, root, platform);
  if (mount?.options.includes('noexec') === true) {
    throw new DlbundleError('E_NOEXEC', `${JSON.stringify(root)} is on ${JSON.stringify(mount.mountPoint)}, mounted noexec: libraries there cannot be loaded.`, 'Point DLBUNDLE_CACHE_DIR (or cacheDir) at a directory on a file system that allows executables.', { dir: root });
  }
}

/** `E_UNSAFE_DIR` when the bundle directory `dir` (lstat `st`) exists and is not this user's private one. */
function refuseUnsafeBundleDir(dir: string, st: fs.Stats | null): void {
  const problem = st === null ? null : unsafeReason(st);
  if (problem !== null) throw unsafeDir(dir, `the bundle directory ${problem}`);
}

/**
 * 'ok' when `dir` holds exactly the variant's files, complete; 'missing' when
 * it does not exist; otherwise the reason it must be rebuilt. Throws
 * `E_UNSAFE_DIR` when the directory itself is not this user's private one.
 * `known` is the directory's lstat when the caller has just made it.
 */
function* checkBundleDir(io: Io, dir: string, req: CacheRequest, known?: fs.Stats | null): Step<'ok' | typeof MOVED | 'missing' | string> {
  const st = known !== undefined ? known : yield* io.lstat(dir);
  refuseUnsafeBundleDir(dir, st);
  if (st === null) return 'missing';

  const expected = expectedEntries(req.variant);
  const entries = yield* io.readdir(dir);
  if (!entries.includes(COMPLETE_MARKER)) return 'the completion marker is missing';
  const extra = entries.filter((e) => !expected.has(e));
  if (extra.length > 0) return `unexpected entries ${JSON.stringify(extra)}`;
  // The marker holds the file list it was completed for (comparing text keeps
  // a warm start free of hashing) and each file's identity when published.
  const marker = (yield* io.readFile(path.join(dir, COMPLETE_MARKER))).toString('utf8');
  const head = markerHead(req.variant);
  if (!marker.startsWith(head)) return 'the completion marker is for another file list';
  const parsed = parseMarkerTail(marker.slice(head.length));
  if (parsed === null) return 'the completion marker records no file identities';
  // Marked before its files were known to be on disk, and the machine has
  // restarted since (a crash, a power cut): the files may have lost writes
  // the marker saw, so each is hashed as if its identity had moved.
  const recorded = parsed.unflushedInBoot !== null && parsed.unflushedInBoot !== bootId() ? new Map<string, string>() : parsed.identities;

  let scratch: Buffer | undefined;
  let moved = false;
  for (const file of req.variant.files) {
    const p = entryPath(dir, file.name);
    const fst = yield* io.lstat(p);
    if (fst === null) return `${file.name} is missing`;
    if (unsafeFileReason(fst) !== null) return `${file.name} is not a private regular file of this user`;
    if (fst.size !== file.size) return `${file.name} has ${fst.size} bytes instead of ${file.size}`;
    const link = sonameLink(file);
    if (link !== null) {
      const target = yield* io.readlink(entryPath(dir, link));
      if (target !== file.name) return `the link ${link} does not point to ${file.name}`;
    }
    // Any write to the file after it was published moves its ctime, which no
    // user can set back, so a same-size rewrite is seen from the lstat alone.
    // So is a copy of the whole directory (a cache baked into a container
    // image, a backup restored): new inodes, same bytes. Only then is the file
    // hashed, to tell the two apart.
    const same = recorded.get(file.name) === fileIdentity(fst);
    if (!same || req.verify === 'full') {
      const digest = yield* hashFileAt(io, p, file.size, (scratch ??= scratchBuffer(io)));
      if (digest !== file.xxh64) return `${file.name} ${same ? '' : 'was changed after it was published: it '}has xxh64 ${String(digest)} instead of ${file.xxh64}`;
      if (!same) moved = true;
    }
  }
  return moved ? MOVED : 'ok';
}

/** {@link checkBundleDir}, where a directory removed while it is checked is missing. */
function* checkUnlessGone(io: Io, dir: string, req: CacheRequest, known?: fs.Stats | null): Step<string> {
  try {
    return yield* checkBundleDir(io, dir, req, known);
  } catch (e) {
    // A prune moved it aside after it was found, before the lease: it is extracted again.
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
    return 'it was removed while it was checked';
  }
}

/** {@link checkBundleDir}'s answer for a complete directory whose files are not the ones its marker recorded, but have their bytes. */
const MOVED = 'ok, but moved';

/**
 * Records the identities of the files now in `dir` in its marker (replaced by
 * rename, through a staging file in the root, so that the directory never
 * holds an entry a concurrent check would take for damage), so the next start
 * need not hash them again. Best effort: a read-only root keeps the old marker.
 */
function* refreshMarker(io: Io, dir: string, req: CacheRequest, root: string): Step<void> {
  try {
    const identities = new Map<string, string>();
    for (const file of req.variant.files) {
      const st = yield* io.lstat(path.join(dir, file.name));
      if (st === null) return;
      identities.set(file.name, fileIdentity(st));
    }
    // A marker valid in every boot only over files on disk: a directory
    // copied whole in this boot may still be in the page cache alone.
    yield* flushFiles(io, dir, req);
    yield* replaceMarker(io, dir, root, markerText(req.variant, identities));
  } catch (e) {
    debug('the marker of %s keeps its old identities: %s', dir, (e as Error).message);
  }
}

/**
 * Replaces the completion marker of the published directory `dir` with
 * `text`, through a staging file in the root renamed over it, so that the
 * directory never holds an entry a concurrent check would take for damage.
 */
function* replaceMarker(io: Io, dir: string, root: string, text: string): Step<void> {
  const staging = yield* io.mkdtemp(root, stagingPrefix('marker'));
  try {
    yield* writeMarker(io, staging, text, true);
    yield* io.rename(path.join(staging, COMPLETE_MARKER), path.join(dir, COMPLETE_MARKER));
  } finally {
    yield* io.rm(staging);
  }
}

/**
 * The completion marker: the canonical file list, then one JSON line mapping
 * each file name to its {@link fileIdentity} as published, then — for a
 * marker written before the files were flushed — a line naming the boot it
 * is valid in.
 */
function markerText(variant: ManifestVariant, identities: ReadonlyMap<string, string>, unflushedInBoot?: string | null): string {
  const boot = unflushedInBoot === undefined ? '' : `${UNFLUSHED}${unflushedInBoot ?? 'unknown'}\n`;
  return `${markerHead(variant)}${JSON.stringify(Object.fromEntries(identities))}\n${boot}`;
}

function markerHead(variant: ManifestVariant): string {
  return `${canonicalFileList(variant.files)}\n`;
}

const UNFLUSHED = 'unflushed in boot ';

/** What a marker records after its file list, or null when that is not such a record. */
function parseMarkerTail(text: string): { identities: Map<string, string>; unflushedInBoot: string | null } | null {
  const end = text.indexOf('\n');
  const rest = end < 0 ? '' : text.slice(end + 1);
  let value: unknown;
  try {
    value = JSON.parse(end < 0 ? text : text.slice(0, end));
  } catch {
    return null;
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return null;
  const identities = new Map<string, string>();
  for (const [name, id] of Object.entries(value)) if (typeof id === 'string') identities.set(name, id);
  if (rest === '') return { identities, unflushedInBoot: null };
  if (!rest.startsWith(UNFLUSHED) || !rest.endsWith('\n')) return null;
  return { identities, unflushedInBoot: rest.slice(UNFLUSHED.length, -1) };
}

let bootIdCache: string | null | undefined;

/** This boot's id (`/proc/sys/kernel/random/boot_id`), or null without /proc: then no boot-bound marker is trusted. */
function bootId(): string | null {
  if (bootIdCache === undefined) {
    if (!runtimePlatform().procfs) return (bootIdCache = null);
    try {
      bootIdCache = readSmallFile('/proc/sys/kernel/random/boot_id').toString('latin1').trim();
    } catch {
      bootIdCache = null;
    }
  }
  return bootIdCache;
}

/**
 * What identifies one published file: device, inode, size, mtime and ctime.
 * A rewrite in place keeps device and inode but moves ctime to the time of
 * the write (no user can set ctime); a replacement changes the inode.
 */
function fileIdentity(st: fs.Stats): string {
  return `${st.dev}:${st.ino}:${st.size}:${st.mtimeMs}:${st.ctimeMs}`;
}

/** The names a complete bundle directory holds: files, soname links, the marker. */
function expectedEntries(variant: ManifestVariant): Set<string> {
  const names = new Set<string>([COMPLETE_MARKER]);
  for (const f of variant.files) {
    names.add(f.name);
    const link = sonameLink(f);
    if (link !== null) names.add(link);
  }
  return names;
}

/** The xxh64 of the file at `p`, or null when it is longer than `limit`. */
function* hashFileAt(io: Io, p: string, limit: number, scratch: Buffer): Step<string | null> {
  const fd = yield* io.openRead(p);
  try {
    return (yield* hashDescriptor(io, fd, limit, scratch)).digest;
  } finally {
    yield* io.close(fd);
  }
}

/**
 * Reads an open file from the start and hashes it; the digest is null when
 * the file is longer than `limit` (it cannot be the expected one).
 */
function* hashDescriptor(io: Io, fd: number, limit: number, scratch: Buffer): Step<{ size: number; digest: string | null }> {
  const hash = createXxh64();
  let size = 0;
  for (;;) {
    const n = yield* io.read(fd, scratch, size);
    if (n === 0) break;
    size += n;
    if (size > limit) return { size, digest: null };
    hash.update(scratch.subarray(0, n));
  }
  return { size, digest: hash.digest() };
}

/**
 * Writes every file of the variant into a new staging directory in `root`,
 * each verified against the manifest, and returns it with each file's
 * identity. Nothing is flushed yet beyond the early flushes started per file:
 * {@link seal} does that.
 */
function* extract(io: Io, req: CacheRequest, root: string): Step<{ staging: string; identities: Map<string, string> }> {
  // The digest names the directory every later start trusts; check it once, here.
  checkVariantDigest(req.variant, req.source.location, `variants[${JSON.stringify(req.variantKey)}]`);
  const staging = yield* io.mkdtemp(root, stagingPrefix(bundleDirName(req.bundleName, req.variant)));
  try {
    // 1 MiB: each chunk is read, hashed and written, and larger writes measured faster than 64 KiB ones.
    // Synchronously, chunks are read where the hash reads them (hashScratch says why only then).
    const scratch = (io.mode === 'sync' ? hashScratch(EXTRACT_CHUNK_BYTES) : null) ?? Buffer.allocUnsafe(EXTRACT_CHUNK_BYTES);
    for (const file of req.variant.files) {
      yield* writeVerified(io, req, file, path.join(staging, file.name), scratch);
      const link = sonameLink(file);
      if (link !== null) {
        // The soname link lets $ORIGIN lookups and later dlopen-by-soname find the file.
        yield* io.symlink(file.name, path.join(staging, link));
      }
    }
    // Taken once every file is written: nothing after this changes them (a
    // flush or the rename does not move mtime or ctime).
    const identities = new Map<string, string>();
    for (const file of req.variant.files) {
      const p = path.join(staging, file.name);
      const st = yield* io.lstat(p);
      if (st === null) throw new DlbundleError('E_IO', `${JSON.stringify(p)} vanished from this process's staging directory.`, 'Another program is removing files in the cache root; stop it, or use another cache directory.', { file: file.name, dir: staging });
      identities.set(file.name, fileIdentity(st));
    }
    return { staging, identities };
  } catch (e) {
    yield* io.rm(staging);
    throw e;
  }
}

// Flushed after all are written: on ext4 (data=ordered) the first fsync's
// journal commit writes every file's data, so the rest cost little, where one
// fsync per file as it is written paid a commit each.
function* flushFiles(io: Io, dir: string, req: CacheRequest): Step<void> {
  for (const file of req.variant.files) yield* fsyncFile(io, path.join(dir, file.name));
}

/** Writes the completion marker into the staging directory `dir`; `flush`: to disk before it is closed. */
function* writeMarker(io: Io, dir: string, text: string, flush: boolean): Step<void> {
  const fd = yield* io.create(path.join(dir, COMPLETE_MARKER), 0o600);
  try {
    yield* io.write(fd, Buffer.from(text));
    if (flush) yield* io.fsync(fd);
  } finally {
    yield* io.close(fd);
  }
}

/**
 * Makes the directory `dir`, published with a marker valid for this boot
 * only, durable on libuv's thread pool, so that a first start does not wait
 * for the disk: its files are flushed, then the marker is replaced by one
 * valid in every boot, then the directory and the root are flushed. Until
 * then a crash can cost the files writes, and the marker says so: after a
 * restart its files are hashed before they are used (checkBundleDir), and
 * its marker made final once they match.
 */
function sealLater(dir: string, req: CacheRequest, root: string, identities: ReadonlyMap<string, string>): void {
  debug('published %s unflushed; its marker holds for this boot', dir);
  function* seal(): Step<void> {
    yield* flushFiles(asyncIo, dir, req);
    yield* replaceMarker(asyncIo, dir, root, markerText(req.variant, identities));
    yield* fsyncDirectory(asyncIo, dir);
    yield* fsyncDirectory(asyncIo, root);
  }
  // Started a while later, and only in a process still running then: the
  // flush is not needed for correctness (the boot-bound marker covers a
  // crash), it only spares the first start after a restart from hashing. A
  // process that is about to exit does not wait for the disk because of it
  // (an fsync in flight keeps Node's event loop alive); a command-line tool
  // that exits at once leaves the boot-bound marker, and a later long-lived
  // process or the first start after a restart makes it final.
  setTimeout(() => {
    runAsync(seal()).then(
      () => debug('flushed %s', dir),
      (e: unknown) => debug('could not flush %s: %s', dir, (e as Error).message),
    );
  }, SEAL_DELAY_MS).unref();
}

/**
 * Puts one blob at `to`, checked against the manifest as it is written
 * (`E_INTEGRITY` otherwise), and starts its flush when the directory is to be
 * flushed before use.
 *
 * Read, hashed and written in one pass: the bytes hashed are the bytes
 * written. A kernel copy (copy_file_range) followed by reading the copy back
 * to hash it measured slower on a 64 MiB library (≈ 65 ms against ≈ 50 ms,
 * ext4): the read-back costs as much as the copy saves.
 */
function* writeVerified(io: Io, req: CacheRequest, file: ManifestFile, to: string, scratch: Buffer): Step<void> {
  let fd: number | undefined;
  try {
    fd = yield* io.create(to, 0o700);
    yield* streamVerified(io, req, file, fd, scratch);
  } finally {
    if (fd !== undefined) yield* io.close(fd);
  }
  // Flushed later in the background otherwise; an early flush in flight would
  // keep a short-lived process waiting for the disk at exit.
  if (req.durability !== 'background') yield* io.startFlush(to);
}

/**
 * Streams one blob from the source into the open descriptor `fd`, hashing it
 * as it goes; `E_INTEGRITY` when it is not what the manifest says. Memory mode
 * uses it for memfd descriptors.
 *
 * @example
 * runSync(streamVerified(syncIo, request, file, memfd, Buffer.allocUnsafe(65536)));
 */
export function* streamVerified(io: Io, req: Pick<CacheRequest, 'source' | 'variantKey'>, file: ManifestFile, fd: number, scratch: Buffer): Step<void> {
  const blob = yield* req.source.openBlob(io, req.variantKey, file);
  try {
    const hash = createXxh64();
    let size = 0;
    for (;;) {
      const chunk = yield* blob.read(io, size, scratch);
      if (chunk.length === 0) break;
      size += chunk.length;
      if (size > file.size) break;
      hash.update(chunk);
      yield* io.write(fd, chunk);
    }
    checkBlob(req, file, size, size === file.size ? hash.digest() : null);
  } finally {
    yield* blob.close(io);
  }
}

function checkBlob(req: Pick<CacheRequest, 'source'>, file: ManifestFile, size: number, digest: string | null): void {
  if (size === file.size && digest === file.xxh64) return;
  const what = size > file.size ? `more than ${file.size} bytes` : size !== file.size ? `${size} bytes instead of ${file.size}` : `xxh64 ${String(digest)} instead of ${file.xxh64}`;
  throw new DlbundleError(
    'E_INTEGRITY',
    `${JSON.stringify(file.name)} from ${req.source.location} does not match the manifest: ${what}.`,
    'The bundle was changed after it was packed; pack it again and ship the manifest with its files.',
    { file: file.name },
  );
}

/**
 * Renames the staging directory into place. A damaged directory in the way is
 * moved aside first; when another process published first, its directory is
 * checked and used.
 */
function* publish(io: Io, staging: string, dir: string, req: CacheRequest, root: string, flush: boolean): Step<{ dir: string; reused: boolean }> {
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      yield* io.rename(staging, dir);
      if (flush) yield* fsyncDirectory(io, root);
      return { dir, reused: false };
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code !== 'EEXIST' && code !== 'ENOTEMPTY') throw e;
    }
    const state = yield* checkBundleDir(io, dir, req);
    if (state === 'ok' || state === MOVED) {
      debug('another process published %s first; using it', dir);
      return { dir, reused: true };
    }
    if (state === 'missing') continue;
    // Moved aside, not deleted in place: a process that has the old files
    // mapped keeps them, and the final name is never half-populated.
    const aside = yield* io.mkdtemp(root, stagingPrefix('damaged'));
    try {
      yield* io.rename(dir, path.join(aside, 'old'));
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
    }
    yield* io.rm(aside);
  }
  throw new DlbundleError('E_IO', `Could not publish ${JSON.stringify(dir)}: it kept changing under this process.`, 'Another program is modifying the cache directory; stop it, or use another cache directory.', { dir });
}

// Windows flushes a file only through a handle open for writing.
function* fsyncFile(io: Io, file: string): Step<void> {
  const fd = runtimePlatform().flushNeedsWrite ? yield* io.openWrite(file) : yield* io.openRead(file);
  try {
    yield* io.fsync(fd);
  } finally {
    yield* io.close(fd);
  }
}

// Flushing a directory makes its new entries (files, then the rename)
// durable, so a power cut cannot leave a marker without its files. NTFS
// journals directory changes itself, and refuses a directory's flush.
function* fsyncDirectory(io: Io, dir: string): Step<void> {
  if (!runtimePlatform().directoryFsync) return;
  const fd = yield* io.openRead(dir);
  try {
    yield* io.fsync(fd);
  } finally {
    yield* io.close(fd);
  }
}

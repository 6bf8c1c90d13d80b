/**
 * `dlbundle cache list` and `dlbundle cache prune`: the bundle directories in
 * the cache roots, how big they are, when they were last used, whether a live
 * process uses them — and the removal of the unused ones. A directory with a
 * lease of a live process (or of a process in another pid namespace, which
 * this one cannot see) is never removed.
 *
 * Only roots that pass the check a start applies ({@link checkRoot}) are
 * looked into; the others are skipped with the reason. Below such a root no
 * other user can change anything, so nothing removed here can be swapped for
 * a link to someone's files halfway through; entries that are not private
 * directories of this user are left alone all the same.
 */
import fs = require('node:fs');
import path = require('node:path');
import { logger } from './log';
import { COMPLETE_MARKER } from './cache';
import { isDlbundleError } from './errors';
import { runSync, syncIo } from './io';
import { endPruning, forgetLeases, lastUseOf, leasesOf, stagingPrefix, startPruning, sweepStaging } from './leases';
import { compareNames } from './plan';
import { candidateRoots, checkRoot, rootFallback, unsafeReason, type RootFallback } from './roots';
import { runtimePlatform } from './platform';

const debug = logger('dlbundle:cache');

/** One bundle directory in a cache root. */
export interface CacheEntry {
  readonly root: string;
  readonly dir: string;
  /** The bundle's name (the directory name without its digest). */
  readonly bundle: string;
  readonly digest: string;
  /** Bytes of the files in it. */
  readonly bytes: number;
  /** Last start that used it (ms since the epoch): the newest lease (of a live process or not), else the completion marker. */
  readonly lastUse: number;
  /** Pids of live processes using it (and of processes in other pid namespaces, which count as live). */
  readonly users: readonly number[];
}

const BUNDLE_DIR = /^(.+)-([0-9a-f]{16})$/;

/** What {@link scanCache} found. */
export interface CacheScan {
  readonly entries: readonly CacheEntry[];
  /** The roots that exist and passed the root check, in order. */
  readonly roots: readonly string[];
  /** The roots that were not looked into, and why. */
  readonly skipped: readonly RootFallback[];
}

/**
 * Every bundle directory of the given roots (default: the candidate roots of
 * a start), the roots that were looked into, and those refused with the reason.
 *
 * @example
 * const { entries, skipped } = scanCache(); for (const s of skipped) console.error(s.root, s.reason);
 */
export function scanCache(roots?: readonly string[]): CacheScan {
  const candidates = roots === undefined ? candidateRoots() : { roots: roots.map((r) => path.resolve(r)), unavailable: [] };
  const out: CacheEntry[] = [];
  const safe: string[] = [];
  const skipped: RootFallback[] = [];
  for (const root of new Set(candidates.roots)) {
    try {
      // A root that does not exist (yet) holds nothing.
      if (!runSync(checkRoot(syncIo, root, { create: false })).exists) continue;
    } catch (e) {
      if (!isDlbundleError(e)) throw e;
      skipped.push(rootFallback(root, e));
      continue;
    }
    safe.push(root);
    for (const name of fs.readdirSync(root).sort(compareNames)) {
      const m = BUNDLE_DIR.exec(name);
      const dir = path.join(root, name);
      if (m === null || name.startsWith('.')) continue;
      // A directory that another prune removes meanwhile is simply not listed.
      const st = fs.lstatSync(dir, { throwIfNoEntry: false });
      if (st === undefined) continue;
      const problem = unsafeReason(st);
      if (problem !== null) {
        debug('%s is left alone: it %s', dir, problem);
        continue;
      }
      const leases = leasesOf(root, name);
      const marker = fs.lstatSync(path.join(dir, COMPLETE_MARKER), { throwIfNoEntry: false });
      const bytes = directoryBytes(dir);
      if (bytes === null) continue;
      out.push({
        root,
        dir,
        bundle: m[1] as string,
        digest: m[2] as string,
        bytes,
        lastUse: Math.max(marker?.mtimeMs ?? 0, lastUseOf(root, name), ...leases.map((l) => l.lastUse)),
        users: leases.map((l) => l.pid),
      });
    }
  }
  return { entries: out, roots: safe, skipped: [...skipped, ...candidates.unavailable] };
}

/**
 * Every bundle directory of the given roots (default: the candidate roots of
 * a start); roots that fail the root check are left out ({@link scanCache} says why).
 *
 * @example
 * listCache().map((e) => `${e.dir} ${e.bytes}`)
 */
export function listCache(roots?: readonly string[]): CacheEntry[] {
  return [...scanCache(roots).entries];
}

/** Bytes of the files in `dir`, or null when it is gone. */
function directoryBytes(dir: string): number | null {
  let names: string[];
  try {
    names = fs.readdirSync(dir);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw e;
  }
  let total = 0;
  for (const name of names) {
    const st = fs.lstatSync(path.join(dir, name), { throwIfNoEntry: false });
    if (st?.isFile() === true) total += st.size;
  }
  return total;
}

/** Options of {@link pruneCache}. */
export interface PruneOptions {
  /** Keep this many most recently used directories of each bundle (default 1). */
  readonly keep?: number;
  /** Remove only directories not used for this many days. */
  readonly olderThanDays?: number;
  /** Report what would be removed without removing anything. */
  readonly dryRun?: boolean;
  readonly roots?: readonly string[];
  /** The current time (for tests). */
  readonly now?: number;
}

/** What {@link pruneCache} did. */
export interface PruneResult {
  readonly removed: readonly CacheEntry[];
  /** Kept because a live process uses them. */
  readonly inUse: readonly CacheEntry[];
  readonly kept: readonly CacheEntry[];
  /** Roots not looked into, with the reason (not this user's, a symlink, replaceable by another user…). */
  readonly skipped: readonly RootFallback[];
}

/**
 * Removes unused bundle directories: all but the `keep` most recently used
 * of each bundle, and of those only the ones unused for `olderThanDays` when
 * given. Directories in use are never removed; staging directories of dead
 * processes are swept too.
 *
 * @example
 * pruneCache({ keep: 1, olderThanDays: 30 }).removed.length
 */
export function pruneCache(options: PruneOptions = {}): PruneResult {
  const keep = options.keep ?? 1;
  const now = options.now ?? Date.now();
  const removed: CacheEntry[] = [];
  const inUse: CacheEntry[] = [];
  const kept: CacheEntry[] = [];
  const byBundle = new Map<string, CacheEntry[]>();
  const scan = scanCache(options.roots);
  // Roots where nothing can be removed (read-only), found on the first try.
  const unwritable = new Map<string, RootFallback>();
  for (const e of scan.entries) byBundle.set(`${e.root}\0${e.bundle}`, [...(byBundle.get(`${e.root}\0${e.bundle}`) ?? []), e]);
  for (const entries of byBundle.values()) {
    entries.sort((a, b) => b.lastUse - a.lastUse);
    entries.forEach((e, i) => {
      const old = options.olderThanDays === undefined || now - e.lastUse >= options.olderThanDays * 86_400_000;
      if (i < keep || !old) kept.push(e);
      else if (e.users.length > 0) inUse.push(e);
      else if (options.dryRun === true) removed.push(e);
      else if (unwritable.has(e.root)) kept.push(e);
      else {
        let outcome: ReturnType<typeof removeUnused>;
        try {
          outcome = removeUnused(e);
        } catch (err) {
          const code = (err as NodeJS.ErrnoException).code;
          if (code !== 'EROFS' && code !== 'EACCES') throw err;
          const why = code === 'EROFS' ? 'is on a read-only file system' : 'is not writable by this user';
          unwritable.set(e.root, { root: e.root, code: 'E_IO', reason: `${JSON.stringify(e.root)} ${why}: nothing in it can be removed, and the processes using it cannot record that they do.` });
          kept.push(e);
          return;
        }
        if (outcome === 'removed') removed.push(e);
        else if (outcome === 'in use') inUse.push(e);
        // 'gone': another prune removed it first; not ours to report.
      }
    });
  }
  if (options.dryRun !== true) {
    for (const root of scan.roots) if (!unwritable.has(root)) runSync(sweepStaging(syncIo, root, now));
  }
  return { removed, inUse, kept, skipped: [...scan.skipped, ...unwritable.values()] };
}

// The intent is written before the leases are read, and withdrawn once the
// directory is moved aside (takeLease in leases.ts argues why no start can
// then be using it). The slow recursive delete comes after, under a staging
// name of this live process, which no sweep touches. A directory already gone
// (another prune was first) is not an error.
//
// Windows refuses to move a directory while a program has a file in it open
// (a DLL loaded by a process that left no lease, a scanner still reading):
// once syncIo's retries are spent, it counts as in use and is kept. A file
// still held when the moved directory is deleted stays behind under the
// staging name, which a later sweep removes once this process is gone.
function removeUnused(e: CacheEntry): 'removed' | 'in use' | 'gone' {
  const name = path.basename(e.dir);
  const intent = startPruning(e.root, name);
  const held = runtimePlatform().transientErrors;
  let aside: string;
  try {
    if (leasesOf(e.root, name).length > 0) return 'in use';
    aside = runSync(syncIo.mkdtemp(e.root, stagingPrefix('pruned')));
    try {
      runSync(syncIo.rename(e.dir, path.join(aside, name)));
    } catch (err) {
      fs.rmSync(aside, { recursive: true, force: true });
      const code = (err as NodeJS.ErrnoException).code ?? '';
      if (code === 'ENOENT') return 'gone';
      if (held.has(code) && fs.existsSync(e.dir)) {
        debug('%s is kept: %s', e.dir, (err as Error).message);
        return 'in use';
      }
      throw err;
    }
  } finally {
    endPruning(intent);
  }
  try {
    runSync(syncIo.rm(aside));
  } catch (err) {
    if (!held.has((err as NodeJS.ErrnoException).code ?? '')) throw err;
    debug('%s is left for a later sweep: %s', aside, (err as Error).message);
  }
  // A start that wrote its lease after the leases were read has found the
  // directory missing and is extracting it again: its lease stays.
  runSync(forgetLeases(syncIo, e.root, name));
  return 'removed';
}

/**
 * `dlbundle cache list` and `dlbundle cache prune`: the bundle directories in
 * the cache roots, how big they are, when they were last used, whether a live
 * process uses them — and the removal of the unused ones. A directory with a
 * lease of a live process (or of a process in another pid namespace, which
 * this one cannot see) is never removed.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { cacheRoots, COMPLETE_MARKER } from './cache';
import { runSync, syncIo } from './io';
import { endPruning, forgetLeases, lastUseOf, leasesOf, stagingPrefix, startPruning, sweepStaging } from './leases';
import { compareNames } from './plan';

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

/**
 * Every bundle directory of the given roots (default: {@link cacheRoots}).
 *
 * @example
 * listCache().map((e) => `${e.dir} ${e.bytes}`)
 */
export function listCache(roots: readonly string[] = cacheRoots()): CacheEntry[] {
  const out: CacheEntry[] = [];
  for (const root of roots) {
    let names: string[];
    try {
      names = fs.readdirSync(root);
    } catch {
      // A root that does not exist (yet) holds nothing.
      continue;
    }
    for (const name of names.sort(compareNames)) {
      const m = BUNDLE_DIR.exec(name);
      const dir = path.join(root, name);
      // A directory that another prune removes meanwhile is simply not listed.
      if (m === null || name.startsWith('.') || fs.lstatSync(dir, { throwIfNoEntry: false })?.isDirectory() !== true) continue;
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
  return out;
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
  for (const e of listCache(options.roots)) byBundle.set(`${e.root}\0${e.bundle}`, [...(byBundle.get(`${e.root}\0${e.bundle}`) ?? []), e]);
  for (const entries of byBundle.values()) {
    entries.sort((a, b) => b.lastUse - a.lastUse);
    entries.forEach((e, i) => {
      const old = options.olderThanDays === undefined || now - e.lastUse >= options.olderThanDays * 86_400_000;
      if (i < keep || !old) kept.push(e);
      else if (e.users.length > 0) inUse.push(e);
      else if (options.dryRun === true) removed.push(e);
      else {
        const outcome = removeUnused(e);
        if (outcome === 'removed') removed.push(e);
        else if (outcome === 'in use') inUse.push(e);
        // 'gone': another prune removed it first; not ours to report.
      }
    });
  }
  if (options.dryRun !== true) {
    for (const root of new Set((options.roots ?? cacheRoots()).filter((r) => fs.existsSync(r)))) runSync(sweepStaging(syncIo, root, now));
  }
  return { removed, inUse, kept };
}

// The intent is written before the leases are read, and withdrawn once the
// directory is moved aside (takeLease in leases.ts argues why no start can
// then be using it). The slow recursive delete comes after, under a staging
// name of this live process, which no sweep touches. A directory already gone
// (another prune was first) is not an error.
function removeUnused(e: CacheEntry): 'removed' | 'in use' | 'gone' {
  const name = path.basename(e.dir);
  const intent = startPruning(e.root, name);
  let aside: string;
  try {
    if (leasesOf(e.root, name).length > 0) return 'in use';
    aside = fs.mkdtempSync(path.join(e.root, `${stagingPrefix('pruned')}-${process.pid}-`));
    try {
      fs.renameSync(e.dir, path.join(aside, name));
    } catch (err) {
      fs.rmSync(aside, { recursive: true, force: true });
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return 'gone';
      throw err;
    }
  } finally {
    endPruning(intent);
  }
  fs.rmSync(aside, { recursive: true, force: true });
  // A start that wrote its lease after the leases were read has found the
  // directory missing and is extracting it again: its lease stays.
  runSync(forgetLeases(syncIo, e.root, name));
  return 'removed';
}

/**
 * Who is using what in a cache root: processes are named by a tag (pid and
 * pid namespace), which staging directories carry in their names and leases
 * carry as file names. A staging directory whose process is gone is left
 * over from a crash and can be removed; a bundle directory with a lease of a
 * live process is in use and is never pruned.
 *
 * Layout: `<root>/.staging-…-<ns>-<pid>-<random>/` (tmp adds pid and random),
 * `<root>/.leases/<bundle dir name>/<ns>-<pid>` (mtime = last start).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import createDebug from 'debug';
import type { Io, Step } from './io';

const debug = createDebug('dlbundle:cache');

/** The directory of leases inside a root. */
export const LEASES_DIR = '.leases';

/** Prefix of staging directories inside a root. */
export const STAGING_PREFIX = '.staging';

/**
 * A staging directory whose process cannot be checked (another pid namespace)
 * is removed once it is this old; one whose process is alive here never is.
 */
export const STALE_STAGING_MS = 24 * 60 * 60 * 1000;

let namespaceCache: string | undefined;

/**
 * This process's pid namespace as a number string (`/proc/self/ns/pid` →
 * `pid:[4026531836]`), '0' where it cannot be read. Two containers sharing a
 * cache directory have different namespaces, and one's pids say nothing about
 * the other's.
 *
 * @example
 * pidNamespace() // '4026531836'
 */
export function pidNamespace(): string {
  if (namespaceCache !== undefined) return namespaceCache;
  try {
    namespaceCache = /\[(\d+)\]/.exec(fs.readlinkSync('/proc/self/ns/pid'))?.[1] ?? '0';
  } catch {
    // No /proc: every tag then carries namespace 0, and age still applies.
    namespaceCache = '0';
  }
  return namespaceCache;
}

/** This process's tag: `<pid namespace>-<pid>`. */
export function processTag(): string {
  return `${pidNamespace()}-${process.pid}`;
}

/**
 * Whether the process a tag names is alive, as far as this process can tell:
 * null when the tag is from another pid namespace (unknowable).
 *
 * @example
 * tagIsAlive(processTag()) // true
 */
export function tagIsAlive(namespace: string, pid: number): boolean | null {
  if (namespace !== pidNamespace()) return null;
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    // EPERM: it exists but belongs to another user — alive all the same.
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * The prefix for a new staging directory; `tmp` appends `-<pid>-<random>`,
 * so the name ends in the full process tag.
 *
 * @example
 * stagingPrefix('demo-1a2b3c4d5e6f7a8b') // '.staging-demo-1a2b3c4d5e6f7a8b-4026531836'
 */
export function stagingPrefix(label: string): string {
  return `${STAGING_PREFIX}-${label}-${pidNamespace()}`;
}

/** The (namespace, pid) a staging directory's name ends with, or null when it has none. */
export function stagingOwner(name: string): { namespace: string; pid: number } | null {
  const m = /-(\d+)-(\d+)-[A-Za-z0-9]+$/.exec(name);
  if (!name.startsWith(STAGING_PREFIX) || m === null) return null;
  return { namespace: m[1] as string, pid: Number(m[2]) };
}

/**
 * Removes the staging directories of `root` whose process is gone (or that
 * are older than {@link STALE_STAGING_MS}); those of live processes stay.
 * Returns the names removed.
 *
 * @example
 * runSync(sweepStaging(syncIo, '/tmp/dlbundle-1000')) // ['.staging-demo-…-4026531836-4242-AbC…']
 */
export function* sweepStaging(io: Io, root: string, now = Date.now()): Step<string[]> {
  const removed: string[] = [];
  for (const name of yield* io.readdir(root)) {
    if (!name.startsWith(STAGING_PREFIX)) continue;
    const owner = stagingOwner(name);
    const alive = owner === null ? null : tagIsAlive(owner.namespace, owner.pid);
    if (alive === true) continue;
    if (alive === null) {
      const st = yield* io.lstat(path.join(root, name));
      if (st === null || now - st.mtimeMs < STALE_STAGING_MS) continue;
    }
    yield* io.rm(path.join(root, name));
    debug('removed %s left by a process that is gone', name);
    removed.push(name);
  }
  return removed;
}

/**
 * Records that this process uses `<root>/<dirName>`: creates or touches
 * `<root>/.leases/<dirName>/<tag>`. Written before the directory is checked,
 * so a prune that looks after it cannot miss this process.
 *
 * @example
 * runSync(takeLease(syncIo, root, 'demo-1a2b3c4d5e6f7a8b'));
 */
export function* takeLease(io: Io, root: string, dirName: string): Step<void> {
  const dir = path.join(root, LEASES_DIR, dirName);
  const lease = path.join(dir, processTag());
  // Written over in place (its mtime is the last use). The directories are
  // made only when missing: on a warm start this is one open, one write. A
  // prune may remove the directory between our mkdir and write: then retry.
  for (let attempt = 1; ; attempt++) {
    try {
      yield* io.writeSmall(lease, `${process.pid}\n`, 0o600);
      return;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT' || attempt === 3) throw e;
    }
    for (const d of [path.join(root, LEASES_DIR), dir]) {
      try {
        yield* io.mkdir(d, 0o700);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      }
    }
  }
}

/**
 * Removes this process's lease on `<root>/<dirName>` (the directory was not used after all).
 *
 * @example
 * runSync(dropLease(syncIo, root, 'demo-1a2b3c4d5e6f7a8b'));
 */
export function* dropLease(io: Io, root: string, dirName: string): Step<void> {
  yield* io.rm(path.join(root, LEASES_DIR, dirName, processTag()));
}

/** A lease found in a root. */
export interface Lease {
  readonly namespace: string;
  readonly pid: number;
  /** When that process last started with this directory (ms since the epoch). */
  readonly lastUse: number;
  /** true: alive; false: gone; null: another pid namespace, unknowable. */
  readonly alive: boolean | null;
}

/**
 * The leases of `<root>/<dirName>`.
 *
 * @example
 * leasesOf(root, 'demo-1a2b…').some((l) => l.alive !== false) // in use (or cannot tell)
 */
export function leasesOf(root: string, dirName: string): Lease[] {
  const dir = path.join(root, LEASES_DIR, dirName);
  let names: string[];
  try {
    names = fs.readdirSync(dir);
  } catch {
    // No lease directory: nobody has used it since leases were introduced.
    return [];
  }
  const out: Lease[] = [];
  for (const name of names) {
    const m = /^(\d+)-(\d+)$/.exec(name);
    if (m === null) continue;
    const st = fs.lstatSync(path.join(dir, name), { throwIfNoEntry: false });
    if (st === undefined) continue;
    out.push({ namespace: m[1] as string, pid: Number(m[2]), lastUse: st.mtimeMs, alive: tagIsAlive(m[1] as string, Number(m[2])) });
  }
  return out;
}

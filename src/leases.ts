/**
 * Who is using what in a cache root: processes are named by a tag (pid
 * namespace, pid and the process's start time), which staging directories
 * carry in their names and leases carry as file names. A staging directory
 * whose process is gone is left over from a crash and can be removed; a bundle
 * directory with a lease of a live process is in use and is never pruned.
 *
 * Layout:
 * - `<root>/.staging-<label>-<ns>-s<start>-<pid>-<random>/` (tmp adds pid and random)
 * - `<root>/.leases/<dir>/<ns>-<pid>-<start>`: a lease (mtime = that process's last start with `<dir>`)
 * - `<root>/.leases/<dir>/.last-use`: mtime = the last start of a process that is gone
 * - `<root>/.leases/<dir>/.pruning/<ns>-<pid>-<start>`: a prune deciding whether to remove `<dir>`
 * - `<root>/.leases/<dir>/.extracting` → `<ns>-<pid>-<start>`: a symlink naming the one process
 *   writing `<dir>` (see {@link claimExtraction}); other cold starts wait for it. On
 *   Windows, a file holding the tag ({@link makeTag})
 * - `<root>/.leases/<dir>/.takeover-<ns>-<pid>-<start>` → its holder's tag: the one process
 *   removing the claim of `<ns>-<pid>-<start>`, gone or stalled
 *
 * The start time (field 22 of `/proc/<pid>/stat`, clock ticks since boot;
 * on Windows the creation time, windows-processes.ts) makes a tag name one
 * process for ever: a pid is reused, the pair is not. Windows has no pid
 * namespaces: its tags carry namespace 0.
 * Tags of earlier versions (`<ns>-<pid>`, no start time) are still read; see
 * {@link tagIsAlive} for how they are judged.
 */
import fs = require('node:fs');
import path = require('node:path');
import { logger } from './log';
import { DlbundleError } from './errors';
import { readSmallFile, runSync, syncIo, type Io, type Step } from './io';
import { runtimePlatform } from './platform';
import { windowsProcessStart } from './windows-processes';

const debug = logger('dlbundle:cache');

/** The directory of leases inside a root. */
export const LEASES_DIR = '.leases';

/** Prefix of staging directories inside a root. */
export const STAGING_PREFIX = '.staging';

/** In a lease directory: the newest use by a process that is gone (its mtime). */
const LAST_USE = '.last-use';

/** In a lease directory: the intents of prunes deciding about that bundle directory. */
const PRUNING = '.pruning';

/** In a lease directory: the extraction claim, a symlink whose target is its holder's tag. */
const EXTRACTING = '.extracting';

/** In a lease directory: prefix of the guard held while a claim of a gone or stalled process is removed. */
const TAKEOVER = '.takeover-';

/**
 * A cold start waiting for another process's extraction gives the claim up
 * (removes it and claims itself) once the holder has moved no byte, read or
 * written, for this long: stopped (SIGSTOP, a debugger), or stuck. An
 * extraction reads and writes all the time, except in its final fsyncs. A
 * holder whose I/O cannot be read (another pid namespace, hidepid) counts as
 * quiet, so it is waited for this long at most.
 */
export const CLAIM_STALL_MS = 3000;

/**
 * However busy the holder looks, a waiting cold start stops waiting after
 * this long and extracts by itself (the rename race keeps that correct).
 */
export const CLAIM_WAIT_MS = 30_000;

/** How often a waiting cold start looks for the published directory (one lstat while it is missing). */
const CLAIM_POLL_MS = 5;

/**
 * A staging directory whose process cannot be checked (another pid namespace)
 * is removed once it is this old; one whose process is alive here never is.
 */
export const STALE_STAGING_MS = 24 * 60 * 60 * 1000;

/**
 * How long a start waits for a live prune to finish deciding about the
 * directory it wants (the prune's decision takes microseconds to
 * milliseconds; a prune stopped in a debugger makes the start give the root
 * up instead of hanging).
 */
const PRUNE_WAIT_MS = 15_000;

/**
 * A prune decides in milliseconds (read the leases, rename the directory
 * aside). The intent of one in another pid namespace, whose liveness this
 * process cannot see, is taken for a killed prune's once it is this old —
 * well within {@link PRUNE_WAIT_MS}, so a start waiting on it goes on.
 */
const STALE_INTENT_MS = 10_000;
const PRUNE_POLL_MS = 2;

// Linux reports start times in USER_HZ ticks, which is 100 on every
// architecture Node runs on (sysconf(_SC_CLK_TCK) is not reachable from JS).
const TICKS_PER_SECOND = 100;

/**
 * Slack when comparing an old-format tag's process start with the time its
 * file was written: /proc/stat's btime is whole seconds, and the wall clock
 * may have been stepped since. Erring this way keeps a directory, never
 * removes one in use.
 */
const CLOCK_SLACK_MS = 2000;

let namespaceCache: string | undefined;
let tagCache: string | undefined;
let startCache: string | null | undefined;
let bootTimeCache: number | null | undefined;

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
  if (!runtimePlatform().procfs) return (namespaceCache = '0');
  try {
    namespaceCache = /\[(\d+)\]/.exec(fs.readlinkSync('/proc/self/ns/pid'))?.[1] ?? '0';
  } catch {
    // No /proc: every tag then carries namespace 0, and age still applies.
    namespaceCache = '0';
  }
  return namespaceCache;
}

/**
 * The start time of process `pid` (field 22 of `/proc/<pid>/stat`: clock
 * ticks after boot, as a decimal string; on Windows its creation time, see
 * windows-processes.ts), or null when it cannot be read (the process is gone,
 * or there is neither).
 *
 * @example
 * processStartTime(process.pid) // '238063'
 */
export function processStartTime(pid: number | 'self'): string | null {
  const source = runtimePlatform().processStarts;
  if (source === 'kernel32') return windowsProcessStart(pid === 'self' ? process.pid : pid);
  if (source !== 'procfs') return null;
  let stat: string;
  try {
    stat = readSmallFile(`/proc/${pid}/stat`).toString('latin1');
  } catch {
    return null;
  }
  // `pid (comm) state ppid …`: comm may hold spaces and parentheses, so the
  // fields are counted from the last ')'. The first after it is field 3.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const start = fields[22 - 3];
  return start !== undefined && /^\d+$/.test(start) ? start : null;
}

/**
 * The bytes process `pid` has read and written through system calls so far
 * (`rchar` + `wchar` of `/proc/<pid>/io`, all its threads, kernel copies
 * included), or null when that cannot be read (gone, no /proc, hidepid).
 *
 * @example
 * processIoChars(process.pid) // 1843302
 */
export function processIoChars(pid: number): number | null {
  if (!runtimePlatform().procfs) return null;
  let text: string;
  try {
    text = readSmallFile(`/proc/${pid}/io`).toString('latin1');
  } catch {
    return null;
  }
  const r = /^rchar: (\d+)$/m.exec(text)?.[1];
  const w = /^wchar: (\d+)$/m.exec(text)?.[1];
  return r === undefined || w === undefined ? null : Number(r) + Number(w);
}

/** This process's tag: `<pid namespace>-<pid>-<start time>` (`<ns>-<pid>` without /proc). */
export function processTag(): string {
  if (tagCache !== undefined) return tagCache;
  const start = ownStartTime();
  tagCache = `${pidNamespace()}-${process.pid}${start === null ? '' : `-${start}`}`;
  return tagCache;
}

function ownStartTime(): string | null {
  if (startCache === undefined) startCache = processStartTime('self');
  return startCache;
}

/** A process as a tag names it; `start` is null in tags of earlier versions. */
export interface ProcessTag {
  readonly namespace: string;
  readonly pid: number;
  readonly start: string | null;
}

/** The process a lease or intent file name names, or null when the name is not a tag. */
export function parseTag(name: string): ProcessTag | null {
  const m = /^(\d+)-(\d+)(?:-(\d+))?$/.exec(name);
  if (m === null) return null;
  return { namespace: m[1] as string, pid: Number(m[2]), start: m[3] ?? null };
}

/**
 * Whether the process a tag names is alive, as far as this process can tell:
 * null when the tag is from another pid namespace (unknowable). A live pid
 * counts only when its start time is the tag's: otherwise the pid was reused.
 * A tag of an earlier version has no start time; it counts only when that
 * pid's process started before `writtenMs` (when the file bearing the tag was
 * last written), since a process cannot write before it exists. That keeps a
 * directory that an old version's long-running process uses, and lets go of
 * one whose old lease names a pid reused since.
 *
 * @example
 * tagIsAlive(pidNamespace(), process.pid, processStartTime('self')) // true
 */
export function tagIsAlive(namespace: string, pid: number, start: string | null = null, writtenMs = Infinity): boolean | null {
  if (namespace !== pidNamespace()) return null;
  try {
    process.kill(pid, 0);
  } catch (e) {
    // EPERM: it exists but belongs to another user — alive all the same.
    if ((e as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  const actual = processStartTime(pid);
  // Unreadable (no /proc, or hidepid): the pid is all there is to go by.
  if (actual === null) return true;
  if (start !== null) return actual === start;
  const boot = bootTime();
  if (boot === null || writtenMs === Infinity) return true;
  return boot + (Number(actual) * 1000) / TICKS_PER_SECOND <= writtenMs + CLOCK_SLACK_MS;
}

/** The wall-clock time of boot (ms; /proc/stat's btime, whole seconds), or null without /proc. */
function bootTime(): number | null {
  if (bootTimeCache !== undefined) return bootTimeCache;
  if (!runtimePlatform().procfs) return (bootTimeCache = null);
  try {
    const m = /^btime (\d+)$/m.exec(fs.readFileSync('/proc/stat', 'latin1'));
    bootTimeCache = m === null ? null : Number(m[1]) * 1000;
  } catch {
    bootTimeCache = null;
  }
  return bootTimeCache;
}

/**
 * The prefix for a new staging directory; `tmp` appends `-<pid>-<random>`,
 * so the name ends in the process's namespace, start time and pid.
 *
 * @example
 * stagingPrefix('demo-1a2b3c4d5e6f7a8b') // '.staging-demo-1a2b3c4d5e6f7a8b-4026531836-s238063'
 */
export function stagingPrefix(label: string): string {
  const start = ownStartTime();
  return `${STAGING_PREFIX}-${label}-${pidNamespace()}${start === null ? '' : `-s${start}`}`;
}

/** The process a staging directory's name ends with, or null when it has none. */
export function stagingOwner(name: string): ProcessTag | null {
  if (!name.startsWith(STAGING_PREFIX)) return null;
  const m = /-(\d+)-s(\d+)-(\d+)-[A-Za-z0-9]+$/.exec(name);
  if (m !== null) return { namespace: m[1] as string, pid: Number(m[3]), start: m[2] as string };
  // Named by an earlier version: no start time.
  const old = /-(\d+)-(\d+)-[A-Za-z0-9]+$/.exec(name);
  return old === null ? null : { namespace: old[1] as string, pid: Number(old[2]), start: null };
}

/**
 * Removes the staging directories of `root` whose process is gone (or that
 * are older than {@link STALE_STAGING_MS}); those of live processes stay.
 * Removes the leases and prune intents of processes that are gone too (see
 * {@link sweepLeases}). Returns the staging names removed.
 *
 * @example
 * runSync(sweepStaging(syncIo, '/tmp/dlbundle-1000')) // ['.staging-demo-…-4026531836-s238063-4242-AbC…']
 */
export function* sweepStaging(io: Io, root: string, now = Date.now()): Step<string[]> {
  const removed: string[] = [];
  for (const name of yield* io.readdir(root)) {
    if (!name.startsWith(STAGING_PREFIX)) continue;
    const owner = stagingOwner(name);
    // Only a tag without a start time needs the directory's mtime.
    const st = owner === null || owner.start === null ? yield* io.lstat(path.join(root, name)) : null;
    const alive = owner === null ? null : tagIsAlive(owner.namespace, owner.pid, owner.start, st?.mtimeMs ?? Infinity);
    if (alive === true) continue;
    if (alive === null && (st === null || now - st.mtimeMs < STALE_STAGING_MS)) continue;
    try {
      yield* io.rm(path.join(root, name));
    } catch (e) {
      // A file in it still held open by another program (Windows): left for a later sweep.
      if (!runtimePlatform().transientErrors.has((e as NodeJS.ErrnoException).code ?? '')) throw e;
      debug('%s is left for a later sweep: %s', name, (e as Error).message);
      continue;
    }
    debug('removed %s left by a process that is gone', name);
    removed.push(name);
  }
  yield* sweepLeases(io, root);
  return removed;
}

/**
 * Removes the leases and prune intents of processes that are gone, in every
 * lease directory of `root`, keeping the newest such use as the directory's
 * last use; a lease directory of a bundle directory that no longer exists
 * goes once nothing live is left in it.
 *
 * @example
 * runSync(sweepLeases(syncIo, '/tmp/dlbundle-1000'));
 */
export function* sweepLeases(io: Io, root: string): Step<void> {
  for (const dirName of yield* entriesOf(io, path.join(root, LEASES_DIR))) {
    const live = yield* readLeases(io, root, dirName);
    const pruning = yield* livePrunes(io, root, dirName);
    if (live.length === 0 && pruning.length === 0 && (yield* io.lstat(path.join(root, dirName))) === null) yield* forgetLeases(io, root, dirName);
  }
}

/**
 * Removes what is left in the lease directory of a bundle directory that is
 * gone: its last use and the extraction claims of processes that are gone,
 * then the directory itself when it is empty (a start that has just written
 * a lease there keeps it).
 *
 * @example
 * runSync(forgetLeases(syncIo, root, 'demo-1a2b3c4d5e6f7a8b'));
 */
export function* forgetLeases(io: Io, root: string, dirName: string): Step<void> {
  const dir = path.join(root, LEASES_DIR, dirName);
  yield* io.rm(path.join(dir, LAST_USE));
  yield* forgetDeadClaims(io, dir);
  yield* removeIfEmpty(io, path.join(dir, PRUNING));
  yield* removeIfEmpty(io, dir);
}

function* removeIfEmpty(io: Io, dir: string): Step<void> {
  try {
    yield* io.either(
      () => fs.rmdirSync(dir),
      () => fs.promises.rmdir(dir),
    );
  } catch (e) {
    // Not empty: someone (a start, a prune) has just written into it. Gone: fine.
    const code = (e as NodeJS.ErrnoException).code;
    if (code !== 'ENOTEMPTY' && code !== 'EEXIST' && code !== 'ENOENT') throw e;
  }
}

/**
 * Creates or rewrites the small file `file`, making the directories `dirs`
 * (outermost first) when missing. A prune or sweep may remove an empty
 * directory between our mkdir and write: then it is made again.
 */
function* writeBookkeeping(io: Io, file: string, dirs: readonly string[]): Step<void> {
  for (let attempt = 1; ; attempt++) {
    try {
      yield* io.writeSmall(file, `${process.pid}\n`, 0o600);
      return;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT' || attempt === 20) throw e;
    }
    for (const d of dirs) {
      try {
        yield* io.mkdir(d, 0o700);
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        // ENOENT: an outer one was removed meanwhile; the next attempt makes it again.
        if (code === 'ENOENT') break;
        if (code !== 'EEXIST') throw e;
      }
    }
  }
}

/** What {@link takeLease} did. */
export interface LeaseTaken {
  /** Why no lease could be written (a read-only root), or null when it was. */
  readonly unprotected: string | null;
  /** Whether a prune may have been deciding about the directory meanwhile: look at it again. */
  readonly recheck: boolean;
}

// Leases are per process, bundle instances are not: two instances (or two
// copies of dlbundle) of one process using one directory share the lease
// file, so it is counted here and removed when the last one gives it up.
const HOLDS_KEY = Symbol.for('dlbundle.leases.v1');

function holds(): Map<string, number> {
  const g = globalThis as unknown as Record<symbol, Map<string, number> | undefined>;
  g[HOLDS_KEY] ??= new Map();
  return g[HOLDS_KEY];
}

/**
 * Records that this process uses `<root>/<dirName>` — creates or touches
 * `<root>/.leases/<dirName>/<tag>` — and waits for any live prune that was
 * deciding about that directory meanwhile. Call it before the directory is
 * checked; after it, no prune removes the directory while this process lives.
 *
 * Why (a Dekker-style protocol on files): a prune writes its intent, then
 * reads the leases, and moves the directory aside only when no live lease
 * exists, removing its intent once it is moved. A start writes its lease,
 * then looks for intents. Each writes before it reads, so either the prune
 * sees the lease (and keeps the directory) or the start sees the intent (and
 * waits until the prune is done, then looks at the directory afresh: there,
 * or missing and extracted again); or the prune has already moved the
 * directory, and the start's check finds it missing. The warm path pays one
 * lstat for this (`.pruning` does not exist).
 *
 * A root where the lease cannot be written (read-only: EROFS, or not
 * writable: EACCES) can still be used as it is; `unprotected` says why
 * `dlbundle cache prune` cannot see that use.
 *
 * @example
 * const { recheck } = runSync(takeLease(syncIo, root, 'demo-1a2b3c4d5e6f7a8b'));
 */
export function* takeLease(io: Io, root: string, dirName: string): Step<LeaseTaken> {
  const dir = path.join(root, LEASES_DIR, dirName);
  const lease = path.join(dir, processTag());
  try {
    // Written over in place (its mtime is the last use): on a warm start one open, one write.
    yield* writeBookkeeping(io, lease, [path.join(root, LEASES_DIR), dir]);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code !== 'EROFS' && code !== 'EACCES') throw e;
    debug('no lease on %s (%s): used as it is', dirName, code);
    return { recheck: false, unprotected: `this process could not record its use of ${JSON.stringify(path.join(root, dirName))} (${code === 'EROFS' ? 'read-only file system' : 'not writable'}), so \`dlbundle cache prune\` cannot see that it is in use`};
  }
  holds().set(lease, (holds().get(lease) ?? 0) + 1);
  if ((yield* io.lstat(path.join(dir, PRUNING))) === null) return { unprotected: null, recheck: false };
  try {
    yield* awaitPrunes(io, root, dirName);
    return { unprotected: null, recheck: true };
  } catch (e) {
    yield* dropLease(io, root, dirName);
    throw e;
  }
}

/** Waits until no live prune is deciding about `<root>/<dirName>`. */
function* awaitPrunes(io: Io, root: string, dirName: string): Step<void> {
  const deadline = Date.now() + PRUNE_WAIT_MS;
  for (;;) {
    const prunes = yield* livePrunes(io, root, dirName);
    if (prunes.length === 0) return;
    if (Date.now() > deadline) {
      throw new DlbundleError(
        'E_IO',
        `${JSON.stringify(path.join(root, dirName))} has been being pruned by pid ${prunes.map((p) => p.pid).join(', ')} for ${PRUNE_WAIT_MS / 1000} s.`,
        'A `dlbundle cache prune` seems stuck; end it, or use another cache directory.',
        { dir: path.join(root, dirName) },
      );
    }
    yield* sleep(io, PRUNE_POLL_MS);
  }
}

function* sleep(io: Io, ms: number): Step<void> {
  yield* io.either(
    () => void Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms),
    () => new Promise<void>((resolve) => setTimeout(resolve, ms)),
  );
}

/** The prunes deciding about `<root>/<dirName>` now; intents of prunes that are gone are removed. */
function* livePrunes(io: Io, root: string, dirName: string): Step<ProcessTag[]> {
  const dir = path.join(root, LEASES_DIR, dirName, PRUNING);
  const names = yield* entriesOf(io, dir);
  const live: ProcessTag[] = [];
  for (const name of names) {
    const tag = parseTag(name);
    if (tag === null) continue;
    // The intent's age matters only for a tag without a start time or from another pid namespace.
    const aged = tag.start === null || tag.namespace !== pidNamespace();
    const st = aged ? yield* io.lstat(path.join(dir, name)) : null;
    if (aged && st === null) continue;
    const alive = tagIsAlive(tag.namespace, tag.pid, tag.start, st?.mtimeMs ?? Infinity);
    if (alive === false || (alive === null && Date.now() - (st?.mtimeMs ?? 0) > STALE_INTENT_MS)) {
      // A prune killed while deciding: it will never move anything.
      yield* io.rm(path.join(dir, name));
      debug('removed the intent of prune %s, which is gone', name);
    } else {
      live.push(tag);
    }
  }
  return live;
}

/**
 * Gives up this process's lease on `<root>/<dirName>` (the directory was not
 * used after all); the file goes when no other bundle instance of this
 * process holds it.
 *
 * @example
 * runSync(dropLease(syncIo, root, 'demo-1a2b3c4d5e6f7a8b'));
 */
export function* dropLease(io: Io, root: string, dirName: string): Step<void> {
  const lease = path.join(root, LEASES_DIR, dirName, processTag());
  const count = holds().get(lease) ?? 0;
  if (count > 1) holds().set(lease, count - 1);
  if (count !== 1) return;
  holds().delete(lease);
  yield* io.unlink(lease);
}

/** What {@link claimExtraction} gives the process that is to extract. */
export interface ExtractionClaim {
  /** The claim this process holds, for {@link releaseExtraction}; null when it extracts without one. */
  readonly file: string | null;
}

/**
 * One writer per bundle directory: claims the extraction of
 * `<root>/<dirName>` for this process, or waits while another process holds
 * the claim, until `published()` (checked after each short sleep) says that
 * process's directory is in place. Returns null then: use that directory;
 * otherwise this process extracts, and gives the claim back with
 * {@link releaseExtraction} once it has published (or failed).
 *
 * The claim is `<root>/.leases/<dirName>/.extracting`, a symlink whose target
 * is the holder's tag: made with symlink(2), which fails with EEXIST when it
 * exists, so one process holds it, and read whole by one readlink(2). It lives
 * in a root that passed the root check, so only this user can plant one; a
 * planted claim names a process and nothing is ever opened through it.
 *
 * A waiter removes the claim, then claims for itself, when the holder is gone
 * (its tag is not alive: SIGKILLed mid-extraction) or has moved no byte for
 * {@link CLAIM_STALL_MS} (SIGSTOPped): see {@link removeClaim}. After
 * {@link CLAIM_WAIT_MS} it extracts without a claim, and so does every
 * waiter at once when the holder gives the claim back without publishing (it
 * failed: `E_INTEGRITY`, a full disk), so failures are not met one process
 * after another. Either way the rename race of the publish keeps every start
 * correct; a second writer costs bytes.
 *
 * A claim held by this very process (another bundle instance's `ready()`) is
 * not waited for: a synchronous start would block the event loop that
 * extraction needs; and each instance reads and checks its own source, as
 * before claims (a tampered copy of the bundle still fails `E_INTEGRITY`).
 *
 * @example
 * const claim = yield* claimExtraction(io, root, name, () => isComplete(io, dir));
 * if (claim !== null) try { extract … publish } finally { yield* releaseExtraction(io, claim); }
 */
export function* claimExtraction(io: Io, root: string, dirName: string, published: () => Step<boolean>): Step<ExtractionClaim | null> {
  const file = path.join(root, LEASES_DIR, dirName, EXTRACTING);
  const started = Date.now();
  // The holder being watched, its I/O counter, and when that last moved.
  let watched: string | null = null;
  let watchedChars: number | null = null;
  let quietSince = started;
  // The live holder this process last slept waiting for.
  let waitedOn: string | null = null;
  for (;;) {
    const made = yield* createClaim(io, file);
    if (made !== 'held') {
      const claim = { file: made === 'made' ? file : null };
      // The previous holder may have published between the caller's check and this claim.
      try {
        if (yield* published()) {
          yield* releaseExtraction(io, claim);
          return null;
        }
      } catch (e) {
        yield* releaseExtraction(io, claim);
        throw e;
      }
      if (made === 'unavailable') debug('no extraction claim on %s: extracting without one', dirName);
      // The writer waited for is alive and was busy until just now: it gave
      // up without publishing (E_INTEGRITY, a full disk), and its waiters go
      // on together, as before claims, not one after another. (Gone or
      // stalled, its claim was removed by a waiter taking over instead.)
      if (waitedOn !== null && holderAlive(waitedOn) === true && Date.now() - quietSince < CLAIM_STALL_MS / 3) {
        yield* releaseExtraction(io, claim);
        debug('%s gave the extraction of %s up: extracting without a claim', waitedOn, dirName);
        return { file: null };
      }
      return claim;
    }
    const holder = yield* holderOf(io, file);
    if (holder === null) continue; // released meanwhile: claim again at once
    if (holder === processTag()) return { file: null };
    const now = Date.now();
    const tag = parseTag(holder);
    const alive = holderAlive(holder);
    const chars = alive === true && tag !== null ? processIoChars(tag.pid) : null;
    if (watched !== holder || (chars !== null && chars !== watchedChars)) {
      watched = holder;
      watchedChars = chars;
      quietSince = now;
    }
    if (alive === false || now - quietSince > CLAIM_STALL_MS) {
      if (yield* removeClaim(io, file, holder)) debug('removed the extraction claim of %s on %s: %s', holder, dirName, alive === false ? 'it is gone' : `no I/O for ${now - quietSince} ms`);
      watched = null;
      waitedOn = null;
      continue;
    }
    if (now - started > CLAIM_WAIT_MS) {
      debug('waited %d ms for %s to extract %s: extracting without a claim', now - started, holder, dirName);
      return { file: null };
    }
    waitedOn = holder;
    yield* sleep(io, CLAIM_POLL_MS);
    if (yield* published()) {
      debug('waited %d ms for %s to extract %s', Date.now() - started, holder, dirName);
      return null;
    }
  }
}

/**
 * Gives back a claim of {@link claimExtraction}, if this process still holds
 * it (a waiter that took it over from this process, stalled, holds it now).
 *
 * @example
 * yield* releaseExtraction(io, claim);
 */
export function* releaseExtraction(io: Io, claim: ExtractionClaim): Step<void> {
  if (claim.file === null) return;
  if ((yield* readTag(io, claim.file)) === processTag()) yield* io.unlink(claim.file);
}

/**
 * Makes `file` name `tag`, failing with EEXIST when it exists: a symbolic
 * link whose target is the tag (symlink(2) makes it whole or not at all). Where
 * users cannot make symbolic links (Windows), the tag is written into a file
 * of its own, then hard-linked to `file`: linking fails with EEXIST just the
 * same, and `file` never shows a half-written tag.
 */
function* makeTag(io: Io, file: string, tag: string): Step<void> {
  if (runtimePlatform().symlinks) return yield* io.symlink(tag, file);
  const written = `${file}.${tag}.${tagFiles++}.tmp`;
  yield* io.writeSmall(written, tag, 0o600);
  try {
    yield* io.link(written, file);
  } finally {
    yield* io.unlink(written);
  }
}

let tagFiles = 0;

/** The tag `file` names (see {@link makeTag}); null when it is gone, or is no symbolic link where tags are. */
function* readTag(io: Io, file: string): Step<string | null> {
  if (runtimePlatform().symlinks) return yield* io.readlink(file);
  try {
    return (yield* io.readFile(file)).toString('utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw e;
  }
}

/** 'made': this process holds the claim; 'held': another does; 'unavailable': none can be made here. */
function* createClaim(io: Io, file: string): Step<'made' | 'held' | 'unavailable'> {
  try {
    yield* makeTag(io, file, processTag());
    return 'made';
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'EEXIST') return 'held';
    // No lease directory (a root where the lease could not be written), a
    // read-only root, or one without hard links (Windows, FAT): extract as
    // without claims; the rename race decides.
    if (code === 'ENOENT' || code === 'EROFS' || code === 'EACCES' || code === 'ENOTSUP') return 'unavailable';
    throw e;
  }
}

/** The tag a claim or guard names; '' when it is not a tag (no version writes that); null when it is gone. */
function* holderOf(io: Io, file: string): Step<string | null> {
  const target = yield* readTag(io, file);
  if (target !== null) return target;
  return (yield* io.lstat(file)) === null ? null : '';
}

/**
 * Removes the claim `file` if `holder` still holds it; true when it did. Only the process that
 * made the guard `.takeover-<holder>` (symlink(2), so one at a time) may,
 * which keeps two waiters from both removing a claim, the second removing the
 * first's new one. The one race left: a stalled holder that resumes and
 * finishes, and a new claim made, between the readlink and the rm here, lose
 * that new claim — one more writer, and the rename race still decides.
 */
function* removeClaim(io: Io, file: string, holder: string): Step<boolean> {
  const guard = path.join(path.dirname(file), `${TAKEOVER}${parseTag(holder) === null ? 'invalid' : holder}`);
  try {
    yield* makeTag(io, guard, processTag());
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return false;
    if (code !== 'EEXIST') throw e;
    // Another waiter is taking over; a guard whose maker died doing so goes.
    yield* removeIfHolderGone(io, guard);
    return false;
  }
  try {
    if ((yield* holderOf(io, file)) !== holder) return false;
    yield* io.rm(file);
    return true;
  } finally {
    yield* io.rm(guard);
  }
}

/** Removes the guard `file` when the process it names is gone. */
function* removeIfHolderGone(io: Io, file: string): Step<void> {
  const holder = yield* holderOf(io, file);
  if (holder !== null && holderAlive(holder) === false) yield* io.rm(file);
}

/** Whether the process a claim or guard names is alive (null: another pid namespace); a target that is no tag names nobody. */
function holderAlive(holder: string): boolean | null {
  const tag = parseTag(holder);
  return tag === null ? false : tagIsAlive(tag.namespace, tag.pid, tag.start);
}

/** Removes the claim and the takeover guards in lease directory `dir` whose processes are gone. */
function* forgetDeadClaims(io: Io, dir: string): Step<void> {
  for (const name of yield* entriesOf(io, dir)) {
    if (name.startsWith(TAKEOVER)) yield* removeIfHolderGone(io, path.join(dir, name));
  }
  const file = path.join(dir, EXTRACTING);
  const holder = yield* holderOf(io, file);
  if (holder !== null && holderAlive(holder) === false) yield* removeClaim(io, file, holder);
}

/**
 * Announces that this process (a prune) is deciding whether to remove
 * `<root>/<dirName>`: written before it reads the leases ({@link takeLease}
 * says why). Returns the intent file, for {@link endPruning}.
 *
 * @example
 * const intent = startPruning(root, 'demo-1a2b3c4d5e6f7a8b');
 */
export function startPruning(root: string, dirName: string): string {
  const dir = path.join(root, LEASES_DIR, dirName);
  const intent = path.join(dir, PRUNING, processTag());
  runSync(writeBookkeeping(syncIo, intent, [path.join(root, LEASES_DIR), dir, path.join(dir, PRUNING)]));
  return intent;
}

/**
 * Withdraws an intent of {@link startPruning}: once the directory is moved
 * aside, or kept.
 *
 * @example
 * endPruning(intent);
 */
export function endPruning(intent: string): void {
  fs.rmSync(intent, { force: true });
  runSync(removeIfEmpty(syncIo, path.dirname(intent)));
}

/** A lease found in a root. */
export interface Lease {
  readonly namespace: string;
  readonly pid: number;
  /** When that process last started with this directory (ms since the epoch). */
  readonly lastUse: number;
  /** true: alive; null: another pid namespace, unknowable. (Leases of processes that are gone are removed.) */
  readonly alive: true | null;
}

/**
 * The leases of `<root>/<dirName>` held by live processes (or by processes
 * of another pid namespace, which cannot be checked). Leases of processes
 * that are gone are removed on the way; the newest of their uses is kept as
 * the directory's {@link lastUseOf}.
 *
 * @example
 * leasesOf(root, 'demo-1a2b…').length > 0 // in use (or cannot tell)
 */
export function leasesOf(root: string, dirName: string): Lease[] {
  return runSync(readLeases(syncIo, root, dirName));
}

/**
 * The last use of `<root>/<dirName>` by a process that is gone (ms since the
 * epoch), 0 when none is recorded.
 *
 * @example
 * Math.max(markerMtime, lastUseOf(root, name), ...leasesOf(root, name).map((l) => l.lastUse))
 */
export function lastUseOf(root: string, dirName: string): number {
  return fs.lstatSync(path.join(root, LEASES_DIR, dirName, LAST_USE), { throwIfNoEntry: false })?.mtimeMs ?? 0;
}

function* readLeases(io: Io, root: string, dirName: string): Step<Lease[]> {
  const dir = path.join(root, LEASES_DIR, dirName);
  // No lease directory: nobody has used it since leases were introduced.
  const names = yield* entriesOf(io, dir);
  const out: Lease[] = [];
  for (const name of names) {
    const tag = parseTag(name);
    if (tag === null) continue;
    const file = path.join(dir, name);
    const st = yield* io.lstat(file);
    if (st === null) continue;
    const alive = tagIsAlive(tag.namespace, tag.pid, tag.start, st.mtimeMs);
    if (alive !== false) {
      out.push({ namespace: tag.namespace, pid: tag.pid, lastUse: st.mtimeMs, alive });
      continue;
    }
    // Its use is kept in .last-use when it is the newest: rename keeps the
    // mtime and replaces atomically; a concurrent sweep's ENOENT is fine.
    const last = yield* io.lstat(path.join(dir, LAST_USE));
    try {
      if (st.mtimeMs > (last?.mtimeMs ?? 0)) yield* io.rename(file, path.join(dir, LAST_USE));
      else yield* io.unlink(file);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      // A read-only root keeps its dead leases; they count for nothing all the same.
      if (code === 'EROFS' || code === 'EACCES') continue;
      if (code !== 'ENOENT') throw e;
    }
    debug('removed the lease %s of %s: its process is gone', name, dirName);
  }
  return out;
}

/** The entries of a bookkeeping directory; none when it does not exist (never made, or removed by a prune). */
function* entriesOf(io: Io, dir: string): Step<string[]> {
  // Mostly there is none (a prune intent directory): asked without a thrown ENOENT, which costs ≈ 0.1 ms.
  if ((yield* io.lstat(dir)) === null) return [];
  try {
    return yield* io.readdir(dir);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return [];
    throw e;
  }
}

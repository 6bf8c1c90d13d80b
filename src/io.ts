/**
 * File-system steps written once, run two ways.
 *
 * dlbundle must extract synchronously (the first `core.add(2, 3)` happens
 * before any `await`) and asynchronously (`await bundle.ready()` must not
 * block the event loop). Rather than keep two copies of the cache algorithm in
 * step, it is written as a generator over {@link Io} operations: each
 * operation is itself a tiny generator that either returns at once (sync) or
 * yields a promise (async). {@link runSync} and {@link runAsync} drive the same
 * algorithm with either set of operations.
 */
import fs = require('node:fs');
import path = require('node:path');
import { runtimePlatform } from './platform';

/** One step of an algorithm: yields promises (async I/O) or nothing (sync I/O), returns `T`. */
export type Step<T> = Generator<unknown, T, unknown>;

/** The file-system operations the cache needs. Errors are Node's (`code` = `ENOENT`, …). */
export interface Io {
  readonly mode: 'sync' | 'async';
  /** `lstat`, or null when the path does not exist. */
  lstat(path: string): Step<fs.Stats | null>;
  mkdir(path: string, mode: number): Step<void>;
  readdir(path: string): Step<string[]>;
  rename(from: string, to: string): Step<void>;
  /** Removes a file or directory tree; nothing when it does not exist. */
  rm(path: string): Step<void>;
  /** Removes a file or symbolic link; nothing when it does not exist. (No tree walk: `rm`'s costs ≈ 0.9 ms the first time, loading Node's rimraf.) */
  unlink(path: string): Step<void>;
  symlink(target: string, path: string): Step<void>;
  /** A hard link `path` to the file `existing`; fails with EEXIST when `path` exists. */
  link(existing: string, path: string): Step<void>;
  /** The target of a symlink, or null when `path` is not one. */
  readlink(path: string): Step<string | null>;
  /** Creates a fresh private (0700) directory `<parent>/<prefix>-<pid>-<random>`. */
  mkdtemp(parent: string, prefix: string): Step<string>;
  chmod(path: string, mode: number): Step<void>;
  /** Opens for writing; fails with EEXIST when the file exists. */
  create(path: string, mode: number): Step<number>;
  openRead(path: string): Step<number>;
  /** Opens an existing file for writing, without truncating it: what flushing needs on Windows. */
  openWrite(path: string): Step<number>;
  write(fd: number, bytes: Uint8Array): Step<void>;
  /** Reads up to `into.length` bytes at `position`; returns how many were read. */
  read(fd: number, into: Buffer, position: number): Step<number>;
  fsync(fd: number): Step<void>;
  close(fd: number): Step<void>;
  /** A whole (small) file. */
  readFile(path: string): Step<Buffer>;
  /** Creates or replaces a small file with `text` (not atomically: for bookkeeping such as leases). */
  writeSmall(path: string, text: string, mode: number): Step<void>;
  /**
   * Starts writing `path`'s data to disk on libuv's thread pool and returns at
   * once, in both modes: the disk works while this thread goes on (hashing,
   * copying the next file), and the later `fsync` only waits for what is left.
   * At most a few are in flight at once; past that it does nothing.
   */
  startFlush(path: string): Step<void>;
  /** Awaits a promise (async) or runs a synchronous alternative (sync). */
  either<T>(sync: () => T, async: () => Promise<T>): Step<T>;
}

// libuv opens every descriptor with O_CLOEXEC already, so children never inherit them.
const CREATE_FLAGS = fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL;
const WRITE_SMALL_FLAGS = fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_TRUNC;

/**
 * The whole of a small file (a marker, a manifest, a /proc file), read with
 * the plain descriptor calls. fs.readFileSync and fs.writeFileSync do the
 * same, but the first call of each in a process costs about 1 ms (Node's
 * JavaScript behind them runs for the first time), which on a warm start is
 * most of what dlbundle adds to the floor.
 *
 * @example
 * readSmallFile('/proc/self/stat').toString('latin1')
 */
export function readSmallFile(file: string): Buffer {
  const fd = fs.openSync(file, fs.constants.O_RDONLY);
  try {
    // /proc files report size 0: read until end of file whatever fstat says.
    let buf = Buffer.allocUnsafe(Math.max(fs.fstatSync(fd).size + 1, 4096));
    let size = 0;
    for (;;) {
      const n = fs.readSync(fd, buf, size, buf.length - size, null);
      if (n === 0) return buf.subarray(0, size);
      size += n;
      if (size === buf.length) {
        const bigger = Buffer.allocUnsafe(buf.length * 2);
        buf.copy(bigger, 0, 0, size);
        buf = bigger;
      }
    }
  } finally {
    fs.closeSync(fd);
  }
}

function* value<T>(fn: () => T): Step<T> {
  return fn();
}

function* awaited<T>(promise: Promise<T>): Step<T> {
  return (yield promise) as T;
}

function notALinkIsNull(read: () => string): string | null {
  try {
    return read();
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'EINVAL' || code === 'ENOENT') return null;
    throw e;
  }
}

// mkdtemp(3) makes the directory with mode 0700 and never reuses a name; the
// pid before its random characters lets the sweep of leftovers tell whose it
// is. (Node's own mkdtemp: the `tmp` package cost a cold start ≈ 10 ms,
// mostly loading `crypto`.)
function tempPrefix(parent: string, prefix: string): string {
  return path.join(parent, `${prefix}-${process.pid}-`);
}

function missingIsVoid(remove: () => void): void {
  try {
    remove();
  } catch (e) {
    missingIsNull(e);
  }
}

function missingIsNull(e: unknown): null {
  if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
  throw e;
}

// Windows refuses to rename or remove a file for a moment while another
// program has it open without sharing deletion — an antivirus scanner or the
// search indexer reading a file just written. Such refusals are retried with
// a doubling pause, ≈ 1.3 s in all, then reported; elsewhere the set of
// transient codes is empty and nothing is retried.
const RETRY_PAUSES_MS = [5, 10, 20, 40, 80, 160, 320, 640];

/** Whether a failure with `code` is worth another try after `attempt` pauses. */
function retryable(e: unknown, attempt: number): boolean {
  return attempt < RETRY_PAUSES_MS.length && runtimePlatform().transientErrors.has((e as NodeJS.ErrnoException).code ?? '');
}

/**
 * Windows renames a directory onto an existing one with EPERM (access
 * denied), where POSIX says EEXIST or ENOTEMPTY; the cache's publish counts
 * on the POSIX answer (another process published first). Seen from the
 * target being there: that refusal is not transient and gets the POSIX code.
 */
function existingTarget(e: unknown, to: string): NodeJS.ErrnoException | null {
  const code = (e as NodeJS.ErrnoException).code;
  if (code !== 'EPERM' && code !== 'EACCES') return null;
  const st = fs.lstatSync(to, { throwIfNoEntry: false });
  if (st === undefined || !st.isDirectory()) return null;
  return Object.assign(new Error(`EEXIST: the directory exists, rename onto ${JSON.stringify(to)} (${(e as Error).message})`), { code: 'EEXIST', path: to });
}

function retrySync<T>(op: () => T, renameTo?: string): T {
  for (let attempt = 0; ; attempt++) {
    try {
      return op();
    } catch (e) {
      const exists = renameTo === undefined || runtimePlatform().transientErrors.size === 0 ? null : existingTarget(e, renameTo);
      if (exists !== null) throw exists;
      if (!retryable(e, attempt)) throw e;
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, RETRY_PAUSES_MS[attempt] as number);
    }
  }
}

async function retryAsync<T>(op: () => Promise<T>, renameTo?: string): Promise<T> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await op();
    } catch (e) {
      const exists = renameTo === undefined || runtimePlatform().transientErrors.size === 0 ? null : existingTarget(e, renameTo);
      if (exists !== null) throw exists;
      if (!retryable(e, attempt)) throw e;
      await new Promise<void>((resolve) => setTimeout(resolve, RETRY_PAUSES_MS[attempt]));
    }
  }
}

/** Operations that complete before they return. */
export const syncIo: Io = {
  mode: 'sync',
  lstat: (p) => value(() => fs.lstatSync(p, { throwIfNoEntry: false }) ?? null),
  mkdir: (p, mode) => value(() => void fs.mkdirSync(p, { mode })),
  readdir: (p) => value(() => fs.readdirSync(p)),
  rename: (a, b) => value(() => retrySync(() => fs.renameSync(a, b), b)),
  rm: (p) => value(() => retrySync(() => fs.rmSync(p, { recursive: true, force: true }))),
  unlink: (p) => value(() => retrySync(() => missingIsVoid(() => fs.unlinkSync(p)))),
  symlink: (t, p) => value(() => fs.symlinkSync(t, p)),
  link: (a, p) => value(() => fs.linkSync(a, p)),
  readlink: (p) => value(() => notALinkIsNull(() => fs.readlinkSync(p))),
  mkdtemp: (parent, prefix) => value(() => fs.mkdtempSync(tempPrefix(parent, prefix))),
  chmod: (p, mode) => value(() => fs.chmodSync(p, mode)),
  create: (p, mode) => value(() => fs.openSync(p, CREATE_FLAGS, mode)),
  openRead: (p) => value(() => fs.openSync(p, fs.constants.O_RDONLY)),
  openWrite: (p) => value(() => fs.openSync(p, fs.constants.O_WRONLY)),
  write: (fd, bytes) =>
    value(() => {
      for (let done = 0; done < bytes.byteLength; ) done += fs.writeSync(fd, bytes, done, bytes.byteLength - done);
    }),
  read: (fd, into, position) => value(() => fs.readSync(fd, into, 0, into.length, position)),
  fsync: (fd) => value(() => fs.fsyncSync(fd)),
  close: (fd) => value(() => fs.closeSync(fd)),
  readFile: (p) => value(() => readSmallFile(p)),
  writeSmall: (p, text, mode) =>
    value(() => {
      const fd = fs.openSync(p, WRITE_SMALL_FLAGS, mode);
      try {
        fs.writeSync(fd, text);
      } finally {
        fs.closeSync(fd);
      }
    }),
  startFlush: (p) => value(() => startFlush(p)),
  either: (sync) => value(sync),
};

/** Operations on libuv's thread pool; the event loop keeps running. */
export const asyncIo: Io = {
  mode: 'async',
  lstat: (p) => awaited(fs.promises.lstat(p).catch(missingIsNull)),
  mkdir: (p, mode) => awaited(fs.promises.mkdir(p, { mode }).then(() => undefined)),
  readdir: (p) => awaited(fs.promises.readdir(p)),
  rename: (a, b) => awaited(retryAsync(() => fs.promises.rename(a, b), b)),
  rm: (p) => awaited(retryAsync(() => fs.promises.rm(p, { recursive: true, force: true }))),
  unlink: (p) => awaited(retryAsync(() => fs.promises.unlink(p).catch(missingIsNull)).then(() => undefined)),
  symlink: (t, p) => awaited(fs.promises.symlink(t, p)),
  link: (a, p) => awaited(fs.promises.link(a, p)),
  readlink: (p) => awaited(fs.promises.readlink(p).catch((e: unknown) => notALinkIsNull(() => { throw e; }))),
  mkdtemp: (parent, prefix) => awaited(fs.promises.mkdtemp(tempPrefix(parent, prefix))),
  chmod: (p, mode) => awaited(fs.promises.chmod(p, mode)),
  create: (p, mode) => awaited(promisified<number>((cb) => fs.open(p, CREATE_FLAGS, mode, cb))),
  openRead: (p) => awaited(promisified<number>((cb) => fs.open(p, fs.constants.O_RDONLY, cb))),
  openWrite: (p) => awaited(promisified<number>((cb) => fs.open(p, fs.constants.O_WRONLY, cb))),
  *write(fd, bytes) {
    for (let done = 0; done < bytes.byteLength; ) {
      done += (yield promisified<number>((cb) => fs.write(fd, bytes, done, bytes.byteLength - done, null, cb))) as number;
    }
  },
  read: (fd, into, position) => awaited(promisified<number>((cb) => fs.read(fd, into, 0, into.length, position, cb))),
  fsync: (fd) => awaited(promisified<void>((cb) => fs.fsync(fd, (e) => cb(e, undefined)))),
  close: (fd) => awaited(promisified<void>((cb) => fs.close(fd, (e) => cb(e, undefined)))),
  readFile: (p) => awaited(fs.promises.readFile(p)),
  writeSmall: (p, text, mode) => awaited(fs.promises.writeFile(p, text, { mode })),
  startFlush: (p) => value(() => startFlush(p)),
  either: (_sync, async) => awaited(async()),
};

// The descriptor is opened here, synchronously, so that the fdatasync is queued
// to a worker thread at once (an fs.open callback would wait for the event
// loop, which a synchronous caller does not return to). It has its own
// descriptor, closed by its own callback, because the caller may close theirs
// while this is queued. Its result is not reported: it only starts the work
// early, and the caller's own fsync reports failures.
//
// A synchronous extraction never lets those callbacks run, so every early
// flush would hold its descriptor until the whole start is done (200 files
// held 200 descriptors, EMFILE under a low `ulimit -n`). Past a few in flight,
// files are left to the caller's own fsync.
const MAX_FLUSHES_IN_FLIGHT = 8;
let flushesInFlight = 0;

function startFlush(file: string): void {
  // Where a flush needs the file open for writing (Windows), the caller's own fsync does it all.
  if (flushesInFlight >= MAX_FLUSHES_IN_FLIGHT || runtimePlatform().flushNeedsWrite) return;
  const fd = fs.openSync(file, fs.constants.O_RDONLY);
  flushesInFlight++;
  fs.fdatasync(fd, () =>
    fs.close(fd, () => {
      flushesInFlight--;
    }),
  );
}

// fs.promises works on FileHandle objects; the cache keeps plain descriptors so
// that both modes share one representation.
function promisified<T>(start: (cb: (err: NodeJS.ErrnoException | null, value: T) => void) => void): Promise<T> {
  return new Promise<T>((resolve, reject) => start((err, v) => (err === null ? resolve(v) : reject(err))));
}

/**
 * Runs a step whose operations came from {@link syncIo}. Throws what the step throws.
 *
 * @example
 * const dir = runSync(materializeStep(syncIo, request));
 */
export function runSync<T>(step: Step<T>): T {
  let r = step.next();
  while (r.done !== true) {
    // Only a bug in dlbundle could hand an async operation to the sync driver.
    if (r.value instanceof Promise) throw new TypeError('runSync was given an asynchronous operation');
    r = step.next(r.value);
  }
  return r.value;
}

/**
 * Runs a step whose operations came from {@link asyncIo}, awaiting every promise it yields.
 *
 * @example
 * const dir = await runAsync(materializeStep(asyncIo, request));
 */
export async function runAsync<T>(step: Step<T>): Promise<T> {
  let r = step.next();
  while (r.done !== true) {
    let v: unknown;
    try {
      v = await r.value;
    } catch (e) {
      r = step.throw(e);
      continue;
    }
    r = step.next(v);
  }
  return r.value;
}

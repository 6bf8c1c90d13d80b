/**
 * Runs a snippet of JavaScript in a fresh Node process that has dlbundle's
 * build (dist/) loaded, and returns what the snippet reports, as JSON.
 *
 * `dlopen` is per process and dlbundle's registry of loaded libraries is
 * process-wide, so every test about what gets loaded (/proc/self/maps, one
 * load only, checks made before dlopen, laziness) runs in a child of its own.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import * as path from 'node:path';
import { REPO, tempDir } from './fixtures';

/** The CommonJS entry of the build that children load as `dl`. */
export const DIST = path.join(REPO, 'dist', 'index.js');

const RESULT_MARK = '@@dlbundle-test-result@@';

// In scope for every snippet:
//   dl            the dlbundle build (params.dist, default dist/index.js)
//   P             the params given to runChild
//   fs, path      node modules
//   mapped()      distinct file paths in /proc/self/maps
//   demoMapped()  the mapped paths of demo libraries (libdemo_*, demo.node), sorted
//   caught(fn)    { ok: true, value } or { ok: false, error: { code, file, dependency, symbol, dir, message } }
//   caughtAsync(fn)  the same for an async fn
//   entries(dir)  sorted directory entries without .leases (dlbundle's bookkeeping), [] when it does not exist
const PRELUDE = `
'use strict';
const fs = require('node:fs');
const path = require('node:path');
const P = JSON.parse(process.env.DLBUNDLE_TEST_PARAMS || 'null');
delete process.env.DLBUNDLE_TEST_PARAMS;
const dl = require(process.env.DLBUNDLE_TEST_DIST);
delete process.env.DLBUNDLE_TEST_DIST;
const mapped = () => [...new Set(fs.readFileSync('/proc/self/maps', 'latin1').split('\\n')
  .map((l) => l.split(/\\s+/).slice(5).join(' ')).filter((p) => p.startsWith('/')))];
const demoMapped = () => mapped().filter((p) => /^(libdemo_|demo\\.node)/.test(path.basename(p))).sort();
const errorFacts = (e) => ({ name: e && e.name, code: e && e.code, file: e && e.file, dependency: e && e.dependency,
  symbol: e && e.symbol, dir: e && e.dir, message: String(e && e.message) });
const caught = (fn) => { try { return { ok: true, value: fn() }; } catch (e) { return { ok: false, error: errorFacts(e) }; } };
const caughtAsync = async (fn) => { try { return { ok: true, value: await fn() }; } catch (e) { return { ok: false, error: errorFacts(e) }; } };
const entries = (dir) => { try { return fs.readdirSync(dir).filter((e) => e !== '.leases').sort(); } catch { return []; } };
`;

/** What a failed call reported, as the child's `caught()` gives it. */
export interface ErrorFacts {
  readonly name?: string;
  readonly code?: string;
  readonly file?: string;
  readonly dependency?: string;
  readonly symbol?: string;
  readonly dir?: string;
  readonly message: string;
}

/** The child's `caught(fn)`: the value, or the error's facts. */
export type Caught<T> = { readonly ok: true; readonly value: T } | { readonly ok: false; readonly error: ErrorFacts };

/** Options of {@link runChild} and {@link spawnChild}. */
export interface ChildOptions {
  /** Values the snippet reads as `P` (JSON). */
  readonly params?: unknown;
  /** Environment variables to set (a string) or remove (undefined) in the child. */
  readonly env?: Readonly<Record<string, string | undefined>>;
  /** The dlbundle entry the child requires as `dl`; default {@link DIST}. */
  readonly dist?: string;
  /** A command that runs node, e.g. `['prlimit', '--nofile=150', '--']`. */
  readonly under?: readonly string[];
}

/** How a child ended. */
export interface ChildExit {
  readonly status: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
  /** What the snippet returned (parsed JSON), or undefined when it reported nothing. */
  readonly result: unknown;
}

/**
 * Runs `body` (the body of an async function; its return value is reported)
 * in a fresh Node process. The child's environment is this one's without
 * DLBUNDLE_CACHE_DIR, LD_LIBRARY_PATH, DEBUG and NODE_OPTIONS, and with
 * XDG_CACHE_HOME set to a fresh temporary directory, so a fallback cache root
 * is private to the test — then `options.env` applied on top.
 *
 * @example
 * const r = spawnChild('return 1 + 1;'); // r.result === 2
 */
export function spawnChild(body: string, options: ChildOptions = {}): ChildExit {
  const { command, args, env } = childInvocation(body, options);
  const r = spawnSync(command, args, { env, encoding: 'utf8', cwd: REPO, timeout: 30_000 });
  return childExit(r.status, r.signal, r.stdout, r.stderr);
}

/**
 * {@link spawnChild} without blocking, so several children can run at once
 * (processes racing for one cache directory).
 *
 * @example
 * const [a, b] = await Promise.all([spawnChildAsync(body), spawnChildAsync(body)]);
 */
export function spawnChildAsync(body: string, options: ChildOptions = {}): Promise<ChildExit> {
  return startChild(body, options).exit;
}

/**
 * {@link spawnChildAsync}, with the child process itself, to signal it
 * (SIGSTOP, SIGKILL) while it runs.
 *
 * @example
 * const { child, exit } = startChild(body); child.kill('SIGSTOP'); … const r = await exit;
 */
export function startChild(body: string, options: ChildOptions = {}): { child: ChildProcess; exit: Promise<ChildExit> } {
  const { command, args, env } = childInvocation(body, options);
  const child = spawn(command, args, { env, cwd: REPO, stdio: ['ignore', 'pipe', 'pipe'], timeout: 30_000 });
  const exit = new Promise<ChildExit>((resolve, reject) => {
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.on('error', reject);
    child.on('close', (status, signal) => resolve(childExit(status, signal, stdout, stderr)));
  });
  return { child, exit };
}

function childInvocation(body: string, options: ChildOptions): { command: string; args: string[]; env: NodeJS.ProcessEnv } {
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const name of ['DLBUNDLE_CACHE_DIR', 'LD_LIBRARY_PATH', 'DEBUG', 'NODE_OPTIONS']) delete env[name];
  env.XDG_CACHE_HOME = tempDir('dlbundle-xdg-');
  for (const [name, value] of Object.entries(options.env ?? {})) {
    if (value === undefined) delete env[name];
    else env[name] = value;
  }
  env.DLBUNDLE_TEST_PARAMS = JSON.stringify(options.params ?? null);
  env.DLBUNDLE_TEST_DIST = options.dist ?? DIST;
  const script = `${PRELUDE}
(async () => {
${body}
})().then(
  (value) => process.stdout.write('\\n${RESULT_MARK}' + JSON.stringify(value === undefined ? null : value) + '\\n'),
  (e) => { process.stderr.write(String(e && e.stack || e) + '\\n'); process.exitCode = 3; },
);
`;
  const [command = process.execPath, ...args] = [...(options.under ?? []), process.execPath, '-e', script];
  return { command, args, env };
}

function childExit(status: number | null, signal: NodeJS.Signals | null, stdout: string, stderr: string): ChildExit {
  const line = stdout.split('\n').find((l) => l.startsWith(RESULT_MARK));
  return { status, signal, stdout, stderr, result: line === undefined ? undefined : (JSON.parse(line.slice(RESULT_MARK.length)) as unknown) };
}

/** Throws with the child's output unless it exited 0 and reported a value; returns that value. */
export function childResult<T>(r: ChildExit): T {
  if (r.status !== 0 || r.result === undefined) {
    throw new Error(`child exited with status ${String(r.status)} (signal ${String(r.signal)}) and ${r.result === undefined ? 'no result' : 'a result'}\n--- stderr ---\n${r.stderr}\n--- stdout ---\n${r.stdout}`);
  }
  return r.result as T;
}

/**
 * {@link spawnChild}, requiring a clean exit and a reported value, which is
 * returned as `T` (the caller states the shape the snippet returns).
 *
 * @example
 * const maps = runChild<string[]>('return demoMapped();');
 */
export function runChild<T>(body: string, options: ChildOptions = {}): T {
  return childResult<T>(spawnChild(body, options));
}

// In the child: every demo library in /proc/self/maps, with the inode(s) its
// mappings have, the inode and size the path names now, and the xxh64 of the
// bytes at that path.
/**
 * A snippet defining `mappedReport()` in a child (its params need `hashModule`,
 * the path of dist/hash.js).
 */
export const MAPPED_REPORT = `
  const mappedReport = () => {
    const { createXxh64 } = require(P.hashModule);
    const scratch = Buffer.allocUnsafe(1 << 20);
    const hashFile = (p) => {
      const h = createXxh64();
      const fd = fs.openSync(p, 'r');
      try {
        for (let pos = 0, n; (n = fs.readSync(fd, scratch, 0, scratch.length, pos)) > 0; pos += n) h.update(scratch.subarray(0, n));
      } finally {
        fs.closeSync(fd);
      }
      return h.digest();
    };
    const byPath = new Map();
    for (const line of fs.readFileSync('/proc/self/maps', 'latin1').split('\\n')) {
      const cols = line.trim().split(/\\s+/);
      if (cols.length < 6) continue;
      const p = cols.slice(5).join(' ');
      if (!p.startsWith('/') || !/^(libdemo_|demo\\.node)/.test(path.basename(p))) continue;
      const inodes = byPath.get(p) || new Set();
      inodes.add(cols[4]);
      byPath.set(p, inodes);
    }
    return [...byPath].sort(([a], [b]) => (a < b ? -1 : 1)).map(([p, inodes]) => {
      let st = null;
      let hash = null;
      try { st = fs.statSync(p); hash = hashFile(p); } catch {}
      return { path: p, mappedInodes: [...inodes], inode: st === null ? null : String(st.ino), size: st === null ? null : st.size, xxh64: hash };
    });
  };
`;

/** One file of `mappedReport()`. */
export interface MappedFile {
  readonly path: string;
  readonly mappedInodes: readonly string[];
  readonly inode: string | null;
  readonly size: number | null;
  readonly xxh64: string | null;
}

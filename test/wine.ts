/**
 * Runs a snippet of JavaScript under a real Windows node.exe in Wine, with
 * dlbundle's build (dist/) loaded, and returns what the snippet reports — the
 * Windows counterpart of child.ts. scripts/wine-env.js provides node.exe,
 * koffi's Windows build, the Wine prefix and the wineserver.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { REPO, tempDir } from './fixtures';

// eslint-disable-next-line @typescript-eslint/no-require-imports
const wineEnv = require('../scripts/wine-env.js') as {
  prepareWine(options?: { log?: (line: string) => void }): WineSetup;
  startWineServer(setup: WineSetup, lingerSeconds?: number): void;
  stopWineServer(setup: WineSetup): void;
  runNodeExe(setup: WineSetup, args: readonly string[], options?: { env?: Record<string, string | undefined>; cwd?: string; timeout?: number | undefined }): NodeExeExit;
  runWindowsProgram(setup: WineSetup, exe: string, args: readonly string[], options?: { env?: Record<string, string | undefined>; cwd?: string; timeout?: number | undefined }): NodeExeExit;
  toWindowsPath(p: string): string;
  fromWindowsPath(prefix: string, p: string): string;
};

/** What scripts/wine-env.js prepared. */
export interface WineSetup {
  readonly tools: { readonly wine: string; readonly wineserver: string };
  readonly prefix: string;
  readonly nodeVersion: string;
  readonly nodeExe: string;
  readonly koffiVersion: string;
  /** The directory NODE_PATH names: koffi's Windows build is in it. */
  readonly modules: string;
  readonly build: { readonly dir: string; readonly chain: readonly string[]; readonly bcryptprimitives: string };
  readonly env: Readonly<Record<string, string>>;
}

/** How a node.exe run ended. */
export interface NodeExeExit {
  readonly status: number | null;
  readonly signal: string | null;
  readonly stdout: string;
  readonly stderr: string;
  /** Wall-clock milliseconds of the whole Wine run. */
  readonly ms: number;
}

/** {@link NodeExeExit} with what the snippet returned (parsed JSON), or undefined when it reported nothing. */
export interface WineExit extends NodeExeExit {
  readonly result: unknown;
}

export const { toWindowsPath, fromWindowsPath } = wineEnv;

let setup: WineSetup | undefined;

/**
 * Prepares Wine once per test process (fetching and building what is
 * missing; the first time, with the prefix, about 40 s) and starts the
 * wineserver; {@link stopWine} ends it.
 */
export function startWine(): WineSetup {
  // What is fetched or made is said; what is already there is not.
  setup ??= wineEnv.prepareWine({ log: (line) => line.includes('already') || process.stderr.write(`      wine-env: ${line}\n`) });
  wineEnv.startWineServer(setup);
  return setup;
}

/**
 * Runs the Windows program `exe` (a Linux path) under Wine in `cwd`, with
 * Wine's environment and nothing of dlbundle's tests; its output through files.
 *
 * @example
 * const r = runWindowsProgram('/tmp/x/app.exe', [], { cwd: '/tmp/x' }); // r.status, r.stdout, r.stderr
 */
export function runWindowsProgram(exe: string, args: readonly string[], options: { cwd: string; env?: Record<string, string | undefined>; timeout?: number }): NodeExeExit {
  return wineEnv.runWindowsProgram(setup ?? startWine(), exe, args, { ...options, env: { NODE_PATH: undefined, ...options.env } });
}

/** Stops the wineserver {@link startWine} started. */
export function stopWine(): void {
  if (setup !== undefined) wineEnv.stopWineServer(setup);
}

/** The dlbundle entry snippets require as `dl`, as node.exe names it. */
export const DIST_WINDOWS = toWindowsPath(path.join(REPO, 'dist', 'index.js'));

// In scope for every snippet (as in child.ts):
//   dl            the dlbundle build (dist/index.js)
//   P             the params given to runUnderWine
//   fs, path      node modules (path is path.win32 under node.exe)
//   repoRequire   require from the repository (koffi: node_modules/koffi, its Windows build through NODE_PATH)
//   caught(fn)    { ok: true, value } or { ok: false, error: { code, file, dependency, symbol, dir, message } }
//   caughtAsync(fn)  the same for an async fn
//   entries(dir)  sorted directory entries without .leases, [] when it does not exist
const PRELUDE = `
'use strict';
const fs = require('node:fs');
const path = require('node:path');
const P = JSON.parse(process.env.DLBUNDLE_TEST_PARAMS || 'null');
delete process.env.DLBUNDLE_TEST_PARAMS;
const RESULT = process.env.DLBUNDLE_TEST_RESULT;
delete process.env.DLBUNDLE_TEST_RESULT;
const dl = require(process.env.DLBUNDLE_TEST_DIST);
const repoRequire = require('node:module').createRequire(process.env.DLBUNDLE_TEST_DIST);
delete process.env.DLBUNDLE_TEST_DIST;
const errorFacts = (e) => ({ name: e && e.name, code: e && e.code, file: e && e.file, dependency: e && e.dependency,
  symbol: e && e.symbol, dir: e && e.dir, message: String(e && e.message) });
const caught = (fn) => { try { return { ok: true, value: fn() }; } catch (e) { return { ok: false, error: errorFacts(e) }; } };
const caughtAsync = async (fn) => { try { return { ok: true, value: await fn() }; } catch (e) { return { ok: false, error: errorFacts(e) }; } };
const entries = (dir) => { try { return fs.readdirSync(dir).filter((e) => e !== '.leases').sort(); } catch { return []; } };
`;

/** Options of {@link spawnUnderWine}. */
export interface WineRunOptions {
  /** Values the snippet reads as `P` (JSON). */
  readonly params?: unknown;
  /** Environment variables to set (a string) or remove (undefined) for node.exe. */
  readonly env?: Readonly<Record<string, string | undefined>>;
  readonly timeout?: number;
}

/**
 * Runs `body` (the body of an async function; its return value is reported)
 * in a fresh node.exe under Wine. The result comes back through a file: a
 * Windows program in Wine cannot write to a Linux pipe.
 *
 * @example
 * const r = spawnUnderWine('return process.platform;'); // r.result === 'win32'
 */
export function spawnUnderWine(body: string, options: WineRunOptions = {}): WineExit {
  const s = setup ?? startWine();
  const dir = tempDir('dlbundle-wine-run-');
  const script = path.join(dir, 'snippet.js');
  const resultFile = path.join(dir, 'result.json');
  fs.writeFileSync(
    script,
    `${PRELUDE}
(async () => {
${body}
})().then(
  (value) => fs.writeFileSync(RESULT, JSON.stringify(value === undefined ? null : value)),
  (e) => { process.stderr.write(String(e && e.stack || e) + '\\n'); process.exitCode = 3; },
);
`,
  );
  const r = wineEnv.runNodeExe(s, [toWindowsPath(script)], {
    timeout: options.timeout,
    env: {
      DLBUNDLE_TEST_PARAMS: JSON.stringify(options.params ?? null),
      DLBUNDLE_TEST_RESULT: toWindowsPath(resultFile),
      DLBUNDLE_TEST_DIST: DIST_WINDOWS,
      ...options.env,
    },
  });
  const result = fs.existsSync(resultFile) ? (JSON.parse(fs.readFileSync(resultFile, 'utf8')) as unknown) : undefined;
  return { ...r, result };
}

/**
 * {@link spawnUnderWine}, requiring a clean exit and a reported value, which
 * is returned as `T`.
 *
 * @example
 * const v = runUnderWine<number>('return 1 + 1;'); // 2
 */
export function runUnderWine<T>(body: string, options: WineRunOptions = {}): T {
  const r = spawnUnderWine(body, options);
  if (r.status !== 0 || r.result === undefined) {
    throw new Error(`node.exe exited with status ${String(r.status)} (signal ${String(r.signal)}) and ${r.result === undefined ? 'no result' : 'a result'}\n--- stderr ---\n${r.stderr}\n--- stdout ---\n${r.stdout}`);
  }
  return r.result as T;
}

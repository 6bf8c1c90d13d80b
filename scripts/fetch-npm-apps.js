#!/usr/bin/env node
'use strict';
// Installs real npm packages that carry native files — onnxruntime-node,
// sharp and DuckDB's @duckdb/node-api, at exact versions — each into an
// application directory of its own, <repo>/.cache/npm-apps/<app>/, for the
// tests that pack them with `dlbundle pack --package`.
//
// Each app is installed with `npm install --ignore-scripts` into a staging
// directory beside its final place, checked by running the package through its
// own public API in a plain `node` child, stamped, and renamed into place: an
// interrupted run never leaves a directory that looks complete. An app whose
// stamp names the same packages is re-used without asking the registry.
//
// --ignore-scripts: onnxruntime-node's postinstall downloads from GitHub,
// which these machines cannot reach; its tarball already carries the
// binaries for every platform. sharp and DuckDB need no install script either:
// their binaries come as platform packages (optional dependencies).
//
//   node scripts/fetch-npm-apps.js           prints one line per app
//   node scripts/fetch-npm-apps.js --json    prints the result as JSON
//
// require('./scripts/fetch-npm-apps.js').fetchNpmApps() returns
//   { root, apps: { 'onnxruntime-node': { dir, package, version, check }, sharp: …, duckdb: … }, fetched: [...] }

const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const REPO = path.resolve(__dirname, '..');
const DEFAULT_ROOT = path.join(REPO, '.cache', 'npm-apps');
const STAMP = '.dlbundle-npm-app.json';

class FetchError extends Error {}

/**
 * The apps, by directory name: the package installed, its exact version, and
 * a script run with plain node in the app directory that uses the package
 * through its public API and prints one line of JSON (the check's result).
 */
const APPS = {
  'onnxruntime-node': {
    package: 'onnxruntime-node',
    version: '1.30.0',
    // listSupportedBackends() asks the native binding: the addon and
    // libonnxruntime.so.1 beside it are loaded for real.
    check: `
      const ort = require('onnxruntime-node');
      if (typeof ort.InferenceSession.create !== 'function') throw new Error('no InferenceSession.create');
      console.log(JSON.stringify({ backends: ort.listSupportedBackends().map((b) => b.name) }));
    `,
  },
  sharp: {
    package: 'sharp',
    version: '0.35.5',
    // A 10×10 image made and resized to 5×3 by libvips.
    check: `
      const sharp = require('sharp');
      (async () => {
        const png = await sharp({ create: { width: 10, height: 10, channels: 3, background: { r: 255, g: 0, b: 0 } } }).png().toBuffer();
        const { data, info } = await sharp(png).resize(5, 3, { fit: 'fill' }).raw().toBuffer({ resolveWithObject: true });
        console.log(JSON.stringify({ width: info.width, height: info.height, channels: info.channels, firstPixel: [...data.subarray(0, 3)], libvips: sharp.versions.vips }));
      })().catch((e) => { console.error(e); process.exit(1); });
    `,
  },
  duckdb: {
    package: '@duckdb/node-api',
    version: '1.5.6-r.1',
    check: `
      const { DuckDBInstance } = require('@duckdb/node-api');
      (async () => {
        const instance = await DuckDBInstance.create(':memory:');
        const connection = await instance.connect();
        const reader = await connection.runAndReadAll('SELECT 42 AS answer');
        console.log(JSON.stringify({ rows: reader.getRows() }));
        connection.closeSync();
      })().catch((e) => { console.error(e); process.exit(1); });
    `,
  },
};

// npm's words for a registry it could not reach (DNS, refused, reset, timed out, proxy).
const UNREACHABLE = /\b(ENOTFOUND|EAI_AGAIN|ECONNREFUSED|ECONNRESET|ETIMEDOUT|ENETUNREACH|EHOSTUNREACH|ESOCKETTIMEDOUT|ERR_SOCKET_TIMEOUT)\b|network request to .* failed/;

function npmCommand() {
  // Under `npm run`/`npm test`, the npm that runs us; else the one on PATH.
  const execPath = process.env.npm_execpath;
  return execPath !== undefined && execPath.endsWith('.js') ? { cmd: process.execPath, pre: [execPath] } : { cmd: 'npm', pre: [] };
}

function registry() {
  const { cmd, pre } = npmCommand();
  const r = spawnSync(cmd, [...pre, 'config', 'get', 'registry'], { encoding: 'utf8' });
  return r.status === 0 ? r.stdout.trim() : "npm's registry";
}

/** `npm install` of `spec` in `dir`; FetchError saying whether the registry was unreachable. */
function npmInstall(dir, spec, log) {
  const { cmd, pre } = npmCommand();
  const args = ['install', '--ignore-scripts', '--no-audit', '--no-fund', '--no-save', '--fetch-retries=1', spec];
  log(`npm ${args.join(' ')}`);
  const r = spawnSync(cmd, [...pre, ...args], { cwd: dir, encoding: 'utf8', timeout: 15 * 60 * 1000 });
  if (r.error !== undefined) throw new FetchError(`\`npm ${args.join(' ')}\` could not be started: ${r.error.message}.`);
  if (r.status === 0) return;
  const output = `${r.stderr ?? ''}${r.stdout ?? ''}`.trim();
  const network = UNREACHABLE.exec(output);
  if (network !== null) {
    throw new FetchError(
      `The npm registry (${registry()}) could not be reached (${network[1] ?? 'network error'}) while installing ${spec}.\n` +
        'These tests pack real packages installed from the registry: connect to it (or point npm at a registry that has them: npm config set registry URL) and run again. ' +
        'Nothing was left half-installed.',
    );
  }
  throw new FetchError(`\`npm ${args.join(' ')}\` failed in ${dir} (exit status ${r.status ?? r.signal}):\n${output}`);
}

/** Runs the app's check with plain node in `dir`; returns its JSON line, or throws FetchError with its output. */
function runCheck(dir, key) {
  const r = spawnSync(process.execPath, ['-e', APPS[key].check], { cwd: dir, encoding: 'utf8', timeout: 120 * 1000 });
  if (r.status !== 0) {
    throw new FetchError(`${APPS[key].package}@${APPS[key].version}, as installed in ${dir}, does not work through its own API (exit status ${r.status ?? r.signal}):\n${`${r.stderr}${r.stdout}`.trim()}`);
  }
  const line = r.stdout.trim().split('\n').pop();
  try {
    return JSON.parse(line);
  } catch {
    throw new FetchError(`The check of ${APPS[key].package} in ${dir} printed ${JSON.stringify(r.stdout)}, not one line of JSON.`);
  }
}

/** The installed version of `pkg` under `dir`, or null. */
function installedVersion(dir, pkg) {
  try {
    return JSON.parse(fs.readFileSync(path.join(dir, 'node_modules', pkg, 'package.json'), 'utf8')).version ?? null;
  } catch {
    return null;
  }
}

function readStamp(dir, key) {
  try {
    const stamp = JSON.parse(fs.readFileSync(path.join(dir, STAMP), 'utf8'));
    const app = APPS[key];
    if (stamp.package !== app.package || stamp.version !== app.version) return null;
    if (installedVersion(dir, app.package) !== app.version) return null;
    return stamp;
  } catch {
    return null; // missing, unreadable or half-written: install again
  }
}

/**
 * Installs one app (unless its stamp says it is there) and returns where.
 *
 * @param {string} key  'onnxruntime-node', 'sharp' or 'duckdb'
 * @param {{ root?: string, log?: (line: string) => void }} [options]
 * @returns {{ dir: string, package: string, version: string, check: unknown, fetched: boolean }}
 */
function fetchNpmApp(key, options = {}) {
  const app = APPS[key];
  if (app === undefined) throw new FetchError(`Unknown app ${JSON.stringify(key)}; the apps are ${Object.keys(APPS).join(', ')}.`);
  const log = options.log ?? (() => {});
  const root = path.resolve(options.root ?? DEFAULT_ROOT);
  const dir = path.join(root, key);
  const existing = readStamp(dir, key);
  if (existing !== null) {
    log(`${app.package}@${app.version}: already installed in ${dir}`);
    return { dir, package: app.package, version: app.version, check: existing.check, fetched: false };
  }
  fs.mkdirSync(root, { recursive: true });
  // Staging directories of runs that were killed.
  for (const name of fs.readdirSync(root)) {
    if (name.startsWith(`.${key}.staging-`)) {
      const pid = Number(name.slice(`.${key}.staging-`.length).split('-')[0]);
      if (!isAlive(pid)) fs.rmSync(path.join(root, name), { recursive: true, force: true });
    }
  }
  const staging = fs.mkdtempSync(path.join(root, `.${key}.staging-${process.pid}-`));
  try {
    // A package.json of its own: without one, npm would walk up and install into the repository.
    fs.writeFileSync(path.join(staging, 'package.json'), `${JSON.stringify({ name: `dlbundle-npm-app-${key}`, private: true, description: 'Installed by scripts/fetch-npm-apps.js for the tests.' }, null, 2)}\n`);
    npmInstall(staging, `${app.package}@${app.version}`, log);
    const version = installedVersion(staging, app.package);
    if (version !== app.version) throw new FetchError(`npm installed ${app.package} ${version ?? '(nothing)'} in ${staging}, expected ${app.version}.`);
    const check = runCheck(staging, key);
    log(`${app.package}@${app.version}: works (${JSON.stringify(check)})`);
    fs.writeFileSync(path.join(staging, STAMP), `${JSON.stringify({ package: app.package, version: app.version, check }, null, 2)}\n`);
    fs.rmSync(dir, { recursive: true, force: true }); // a directory without a valid stamp
    try {
      fs.renameSync(staging, dir);
    } catch (e) {
      // Another process installed it first: use its copy if it is complete.
      const theirs = readStamp(dir, key);
      if (theirs === null) throw e;
      return { dir, package: app.package, version: app.version, check: theirs.check, fetched: false };
    }
    return { dir, package: app.package, version: app.version, check, fetched: true };
  } finally {
    fs.rmSync(staging, { recursive: true, force: true });
  }
}

function isAlive(pid) {
  if (!Number.isSafeInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return e.code === 'EPERM';
  }
}

/**
 * Installs every app (those already installed are re-used).
 *
 * @param {{ root?: string, log?: (line: string) => void, apps?: string[] }} [options]
 * @returns {{ root: string, apps: Record<string, { dir: string, package: string, version: string, check: unknown }>, fetched: string[] }}
 */
function fetchNpmApps(options = {}) {
  const root = path.resolve(options.root ?? DEFAULT_ROOT);
  const apps = {};
  const fetched = [];
  for (const key of options.apps ?? Object.keys(APPS)) {
    const { fetched: wasFetched, ...app } = fetchNpmApp(key, { ...options, root });
    apps[key] = app;
    if (wasFetched) fetched.push(key);
  }
  return { root, apps, fetched };
}

module.exports = { fetchNpmApps, fetchNpmApp, runCheck, APPS, FetchError };

if (require.main === module) {
  try {
    const json = process.argv.includes('--json');
    const result = fetchNpmApps({ log: json ? undefined : (line) => console.error(line) });
    if (json) console.log(JSON.stringify(result, null, 2));
    else for (const [key, app] of Object.entries(result.apps)) console.log(`${key}\t${app.package}@${app.version}\t${app.dir}`);
  } catch (e) {
    console.error(e instanceof FetchError ? `fetch-npm-apps: ${e.message}` : e);
    process.exitCode = 1;
  }
}

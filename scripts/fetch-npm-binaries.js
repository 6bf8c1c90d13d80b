#!/usr/bin/env node
'use strict';
// Fetches npm packages that carry Windows DLLs and macOS dylibs — sharp's and
// libvips' Windows and macOS builds, node-llama-cpp's, koffi's — for the tests
// that read them (PE and Mach-O readers against llvm-readobj and llvm-otool)
// and pack them for Windows and macOS targets. Nothing here runs them.
//
// Each package is fetched with `npm pack <name>@<version>` (the registry's own
// tarball, no install, no scripts) into a staging directory beside its final
// place, unpacked with tar, stamped, and renamed into
// <repo>/.cache/npm-binaries/<scope>+<name>@<version>/package/: an interrupted
// run never leaves a directory that looks complete, and a stamped one is
// re-used without asking the registry.
//
//   node scripts/fetch-npm-binaries.js           prints one line per package
//   node scripts/fetch-npm-binaries.js --json    prints the result as JSON
//
// require('./scripts/fetch-npm-binaries.js').fetchNpmBinaries() returns
//   { root, packages: { '<name>': { dir, name, version, fetched } }, fetched: [...] }
// where dir is the unpacked package directory (holding its package.json).

const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const REPO = path.resolve(__dirname, '..');
const DEFAULT_ROOT = path.join(REPO, '.cache', 'npm-binaries');
const STAMP = '.dlbundle-npm-binary.json';

class FetchError extends Error {}

/** koffi's version in package-lock.json: its per-platform builds are fetched at the same version. */
function lockedKoffiVersion() {
  const lock = JSON.parse(fs.readFileSync(path.join(REPO, 'package-lock.json'), 'utf8'));
  const version = lock.packages?.['node_modules/koffi']?.version;
  if (typeof version !== 'string') throw new FetchError('package-lock.json names no version of koffi; run npm install first.');
  return version;
}

/**
 * The packages, at exact versions: sharp 0.35.5 (the version scripts/fetch-npm-apps.js
 * installs) and the libvips 1.3.4 it depends on, node-llama-cpp 3.21.1, and koffi
 * at the version the lock file pins.
 */
function packageList() {
  const koffi = lockedKoffiVersion();
  return [
    { name: '@img/sharp-win32-x64', version: '0.35.5' },
    { name: '@img/sharp-darwin-arm64', version: '0.35.5' },
    { name: '@img/sharp-darwin-x64', version: '0.35.5' },
    { name: '@img/sharp-libvips-darwin-arm64', version: '1.3.4' },
    { name: '@img/sharp-libvips-darwin-x64', version: '1.3.4' },
    { name: '@node-llama-cpp/win-x64', version: '3.21.1' },
    { name: '@node-llama-cpp/mac-arm64-metal', version: '3.21.1' },
    { name: '@koromix/koffi-win32-x64', version: koffi },
    { name: '@koromix/koffi-win32-arm64', version: koffi },
    { name: '@koromix/koffi-darwin-arm64', version: koffi },
    { name: '@koromix/koffi-darwin-x64', version: koffi },
  ];
}

// npm's words for a registry it could not reach (DNS, refused, reset, timed out, proxy).
const UNREACHABLE = /\b(ENOTFOUND|EAI_AGAIN|ECONNREFUSED|ECONNRESET|ETIMEDOUT|ENETUNREACH|EHOSTUNREACH|ESOCKETTIMEDOUT|ERR_SOCKET_TIMEOUT)\b|network request to .* failed/;

function npmCommand() {
  // Under `npm run`/`npm test`, the npm that runs us; else the one on PATH.
  const execPath = process.env.npm_execpath;
  return execPath !== undefined && execPath.endsWith('.js') ? { cmd: process.execPath, pre: [execPath] } : { cmd: 'npm', pre: [] };
}

function run(cmd, args, cwd, what) {
  const r = spawnSync(cmd, args, { cwd, encoding: 'utf8', timeout: 15 * 60 * 1000, maxBuffer: 64 << 20 });
  if (r.error !== undefined) throw new FetchError(`${what} could not be started: ${r.error.message}.`);
  if (r.status === 0) return r.stdout;
  const output = `${r.stderr ?? ''}${r.stdout ?? ''}`.trim();
  const network = UNREACHABLE.exec(output);
  if (network !== null) {
    throw new FetchError(
      `The npm registry could not be reached (${network[1] ?? 'network error'}) during ${what}.\n` +
        'These tests read real packages from the registry: connect to it (or point npm at a registry that has them: npm config set registry URL) and run again. Nothing was left half-fetched.',
    );
  }
  throw new FetchError(`${what} failed in ${cwd} (exit status ${r.status ?? r.signal}):\n${output}`);
}

function dirName(p) {
  return `${p.name.replace(/^@/, '').replace('/', '+')}@${p.version}`;
}

function readStamp(dir, p) {
  try {
    const stamp = JSON.parse(fs.readFileSync(path.join(dir, STAMP), 'utf8'));
    const unpacked = JSON.parse(fs.readFileSync(path.join(dir, 'package', 'package.json'), 'utf8'));
    return stamp.name === p.name && stamp.version === p.version && unpacked.version === p.version ? stamp : null;
  } catch {
    return null; // missing, unreadable or half-written: fetch again
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
 * Fetches one package (unless its stamp says it is there) and returns where it is unpacked.
 *
 * @param {{ name: string, version: string }} p
 * @param {{ root?: string, log?: (line: string) => void }} [options]
 * @returns {{ dir: string, name: string, version: string, fetched: boolean }}
 */
function fetchNpmBinary(p, options = {}) {
  const log = options.log ?? (() => {});
  const root = path.resolve(options.root ?? DEFAULT_ROOT);
  const home = path.join(root, dirName(p));
  const dir = path.join(home, 'package');
  if (readStamp(home, p) !== null) {
    log(`${p.name}@${p.version}: already unpacked in ${dir}`);
    return { dir, name: p.name, version: p.version, fetched: false };
  }
  fs.mkdirSync(root, { recursive: true });
  const prefix = `.${dirName(p)}.staging-`;
  for (const name of fs.readdirSync(root)) {
    if (name.startsWith(prefix) && !isAlive(Number(name.slice(prefix.length).split('-')[0]))) fs.rmSync(path.join(root, name), { recursive: true, force: true });
  }
  const staging = fs.mkdtempSync(path.join(root, `${prefix}${process.pid}-`));
  try {
    const { cmd, pre } = npmCommand();
    const spec = `${p.name}@${p.version}`;
    log(`npm pack ${spec}`);
    const out = run(cmd, [...pre, 'pack', spec, '--json', '--pack-destination', staging], staging, `\`npm pack ${spec}\``);
    const tarball = JSON.parse(out)[0]?.filename;
    if (typeof tarball !== 'string') throw new FetchError(`\`npm pack ${spec}\` printed no file name: ${out.slice(0, 500)}`);
    // Scoped packages' tarballs are named scope-name-version.tgz; npm reports that name.
    const file = path.join(staging, path.basename(tarball.replace(/^@/, '').replace('/', '-')));
    run('tar', ['-xzf', file, '-C', staging, '--no-same-owner'], staging, `tar -xzf ${file}`);
    fs.rmSync(file);
    const unpacked = JSON.parse(fs.readFileSync(path.join(staging, 'package', 'package.json'), 'utf8'));
    if (unpacked.name !== p.name || unpacked.version !== p.version) throw new FetchError(`npm pack ${spec} gave ${unpacked.name}@${unpacked.version}.`);
    fs.writeFileSync(path.join(staging, STAMP), `${JSON.stringify({ name: p.name, version: p.version }, null, 2)}\n`);
    fs.rmSync(home, { recursive: true, force: true }); // a directory without a valid stamp
    try {
      fs.renameSync(staging, home);
    } catch (e) {
      // Another process fetched it first: use its copy if it is complete.
      if (readStamp(home, p) === null) throw e;
      return { dir, name: p.name, version: p.version, fetched: false };
    }
    return { dir, name: p.name, version: p.version, fetched: true };
  } finally {
    fs.rmSync(staging, { recursive: true, force: true });
  }
}

/**
 * Fetches every package (those already unpacked are re-used).
 *
 * @param {{ root?: string, log?: (line: string) => void }} [options]
 */
function fetchNpmBinaries(options = {}) {
  const root = path.resolve(options.root ?? DEFAULT_ROOT);
  const packages = {};
  const fetched = [];
  for (const p of packageList()) {
    const r = fetchNpmBinary(p, { ...options, root });
    packages[p.name] = r;
    if (r.fetched) fetched.push(p.name);
  }
  return { root, packages, fetched };
}

module.exports = { fetchNpmBinaries, fetchNpmBinary, packageList, FetchError };

if (require.main === module) {
  try {
    const json = process.argv.includes('--json');
    const result = fetchNpmBinaries({ log: json ? undefined : (line) => console.error(line) });
    if (json) console.log(JSON.stringify(result, null, 2));
    else for (const p of Object.values(result.packages)) console.log(`${p.name}@${p.version}\t${p.dir}`);
  } catch (e) {
    console.error(e instanceof FetchError ? `fetch-npm-binaries: ${e.message}` : e);
    process.exitCode = 1;
  }
}

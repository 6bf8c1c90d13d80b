'use strict';
// Fetches one Debian package for the tests, without installing it: downloaded
// with `apt-get download` into a private temporary directory, checked with
// `dpkg-deb -f`, unpacked with `dpkg -x` into a staging directory beside
// <root>/<package>/, stamped, and renamed into place — so an interrupted run
// never leaves a directory that looks complete. Already unpacked (a readable
// stamp naming an existing library): nothing is downloaded.

const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const STAMP = '.dlbundle-package.json';

class FetchError extends Error {}

/** Runs a command without a shell; throws FetchError naming the command, its output and what to do. */
function run(cmd, args, options, hint) {
  const r = spawnSync(cmd, args, { encoding: 'utf8', ...options });
  const shown = `\`${[cmd, ...args].join(' ')}\``;
  if (r.error !== undefined) {
    const missing = r.error.code === 'ENOENT';
    throw new FetchError(`${shown} could not be started: ${r.error.message}.` + (missing ? ` This needs Debian's ${cmd} (a Debian or Ubuntu system).` : ''));
  }
  if (r.status !== 0) {
    const output = `${r.stderr ?? ''}${r.stdout ?? ''}`.trim();
    throw new FetchError(`${shown} failed (exit status ${r.status ?? r.signal}):\n${output}\n${hint}`);
  }
  return r.stdout;
}

function readStamp(pkgDir) {
  try {
    const stamp = JSON.parse(fs.readFileSync(path.join(pkgDir, STAMP), 'utf8'));
    if (typeof stamp.version !== 'string' || typeof stamp.lib !== 'string') return null;
    const lib = path.join(pkgDir, stamp.lib);
    if (!fs.lstatSync(lib).isFile()) return null;
    return { version: stamp.version, lib };
  } catch {
    return null; // missing, unreadable or half-written: unpack again
  }
}

/**
 * @param {{ root: string, package: string, arch?: string, findLibrary: (unpacked: string, deb: string) => string, log?: (line: string) => void }} options
 *   `arch` (e.g. 'amd64') is appended to the package name and checked; `findLibrary` returns the
 *   library's path inside the unpacked tree, or throws FetchError when it is not there.
 * @returns {{ dir: string, lib: string, version: string, fetched: boolean }}
 */
function fetchDebianPackage(options) {
  const log = options.log ?? (() => {});
  const name = options.package;
  const pkgDir = path.join(options.root, name);
  const existing = readStamp(pkgDir);
  if (existing !== null) {
    log(`${name} ${existing.version}: already unpacked`);
    return { dir: pkgDir, ...existing, fetched: false };
  }
  fs.mkdirSync(options.root, { recursive: true });
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'dlbundle-deb-'));
  try {
    log(`apt-get download ${name}`);
    run('apt-get', ['download', options.arch === undefined ? name : `${name}:${options.arch}`], { cwd: work },
      'Run `apt-get update` (as root) so apt knows this package, then try again. Only the Debian package mirror needs to be reachable; nothing is installed.');
    const debs = fs.readdirSync(work).filter((f) => f.startsWith(`${name}_`) && f.endsWith('.deb'));
    if (debs.length !== 1) throw new FetchError(`apt-get download reported success but left ${debs.length} ${name}_*.deb files in ${work}.`);
    const deb = debs[0];
    const debPath = path.join(work, deb);
    const field = (f) => run('dpkg-deb', ['-f', debPath, f], {}, `${deb} is not a readable Debian package.`).trim();
    const version = field('Version');
    if (field('Package') !== name) throw new FetchError(`${deb} is package ${field('Package')}, expected ${name}.`);
    if (options.arch !== undefined && field('Architecture') !== options.arch) throw new FetchError(`${deb} is for ${field('Architecture')}, expected ${options.arch}.`);
    const staging = fs.mkdtempSync(path.join(options.root, `.${name}.staging-`));
    try {
      run('dpkg', ['-x', debPath, staging], {}, `dpkg could not unpack ${deb}.`);
      const lib = path.relative(staging, options.findLibrary(staging, deb));
      fs.writeFileSync(path.join(staging, STAMP), `${JSON.stringify({ package: name, version, lib, deb }, null, 2)}\n`);
      fs.rmSync(pkgDir, { recursive: true, force: true }); // a directory without a valid stamp
      try {
        fs.renameSync(staging, pkgDir);
      } catch (e) {
        // Another run may have published it in between; use theirs if it is complete.
        if (readStamp(pkgDir) === null) throw e;
      }
    } finally {
      fs.rmSync(staging, { recursive: true, force: true });
    }
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }
  const stamp = readStamp(pkgDir);
  if (stamp === null) throw new FetchError(`${pkgDir} was unpacked but its stamp cannot be read back.`);
  log(`${name} ${stamp.version}: unpacked into ${pkgDir}`);
  return { dir: pkgDir, ...stamp, fetched: true };
}

/** This machine's Debian architecture (amd64, arm64, …). */
function hostArchitecture() {
  return run('dpkg', ['--print-architecture'], {}, 'dpkg is needed to unpack the packages.').trim();
}

module.exports = { fetchDebianPackage, hostArchitecture, run, FetchError };

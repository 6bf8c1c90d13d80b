#!/usr/bin/env node
'use strict';
// Fetches a real third-party library chain that nobody in this project wrote —
// Debian's GMP → MPFR → MPC (libgmp10, libmpfr6, libmpc3) — for the tests that
// pack and load it through dlbundle.
//
// Each package is downloaded with `apt-get download` (into a private temporary
// directory) and unpacked with `dpkg -x` into <repo>/.cache/third-party/<package>/.
// Nothing is installed: dpkg's database and the system's library directories are
// never touched. A package that is already unpacked (its stamp file is there and
// its library exists) is not downloaded again.
//
//   node scripts/fetch-third-party.js           prints one line per library
//   node scripts/fetch-third-party.js --json    prints the result as JSON
//
// require('./scripts/fetch-third-party.js').fetchThirdParty() returns
//   { dir, libs: { gmp, mpfr, mpc }, libDirs: {…}, versions: { libgmp10, libmpfr6, libmpc3 }, fetched: [...] }
// where libs are absolute paths of the real files (libgmp.so.10.4.1, …).

const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const REPO = path.resolve(__dirname, '..');
const DEFAULT_ROOT = path.join(REPO, '.cache', 'third-party');
const STAMP = '.dlbundle-third-party.json';

/** The chain, dependencies first: key → Debian package and the file-name prefix of its library. */
const PACKAGES = [
  { key: 'gmp', package: 'libgmp10', prefix: 'libgmp.so.' },
  { key: 'mpfr', package: 'libmpfr6', prefix: 'libmpfr.so.' },
  { key: 'mpc', package: 'libmpc3', prefix: 'libmpc.so.' },
];

class FetchError extends Error {}

/** Runs a command without a shell; throws FetchError naming the command, its output and what to do. */
function run(cmd, args, options, hint) {
  const r = spawnSync(cmd, args, { encoding: 'utf8', ...options });
  const shown = `\`${[cmd, ...args].join(' ')}\``;
  if (r.error !== undefined) {
    const missing = r.error.code === 'ENOENT';
    throw new FetchError(
      `${shown} could not be started: ${r.error.message}.` +
        (missing ? ` This script needs Debian's ${cmd} (a Debian or Ubuntu system).` : ''),
    );
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

/** The one regular file named `<prefix><digits…>` under `dir` (symlinks such as libgmp.so.10 are aliases). */
function findRealLibrary(dir, prefix, origin) {
  const found = [];
  const walk = (d) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.isFile() && e.name.startsWith(prefix) && /^[0-9.]+$/.test(e.name.slice(prefix.length))) found.push(p);
    }
  };
  walk(dir);
  if (found.length !== 1) {
    throw new FetchError(`${origin} holds ${found.length} files named ${prefix}<version> (${found.join(', ') || 'none'}); expected exactly one.`);
  }
  return found[0];
}

function hostArchitecture() {
  return run('dpkg', ['--print-architecture'], {}, 'dpkg is needed to unpack the packages.').trim();
}

/**
 * Downloads (unless already unpacked) and unpacks libgmp10, libmpfr6 and libmpc3.
 *
 * @param {{ root?: string, log?: (line: string) => void }} [options]
 * @returns {{ dir: string, libs: { gmp: string, mpfr: string, mpc: string }, libDirs: { gmp: string, mpfr: string, mpc: string }, versions: Record<string, string>, fetched: string[] }}
 */
function fetchThirdParty(options = {}) {
  const root = path.resolve(options.root ?? DEFAULT_ROOT);
  const log = options.log ?? (() => {});
  fs.mkdirSync(root, { recursive: true });

  const libs = {};
  const libDirs = {};
  const versions = {};
  const missing = [];
  for (const p of PACKAGES) {
    const stamp = readStamp(path.join(root, p.package));
    if (stamp === null) missing.push(p);
    else {
      libs[p.key] = stamp.lib;
      versions[p.package] = stamp.version;
      log(`${p.package} ${stamp.version}: already unpacked`);
    }
  }

  if (missing.length > 0) {
    const arch = hostArchitecture();
    const work = fs.mkdtempSync(path.join(os.tmpdir(), 'dlbundle-third-party-'));
    try {
      const names = missing.map((p) => p.package);
      log(`apt-get download ${names.join(' ')}`);
      run('apt-get', ['download', ...names.map((n) => `${n}:${arch}`)], { cwd: work },
        'Run `apt-get update` (as root) so apt knows these packages, then try again. ' +
          'Only the Debian package mirror needs to be reachable; nothing is installed.');
      const debs = fs.readdirSync(work).filter((f) => f.endsWith('.deb'));
      for (const p of missing) {
        const deb = debs.find((f) => f.startsWith(`${p.package}_`));
        if (deb === undefined) {
          throw new FetchError(`apt-get download reported success but left no ${p.package}_*.deb in ${work} (found: ${debs.join(', ') || 'nothing'}).`);
        }
        const debPath = path.join(work, deb);
        const field = (name) => run('dpkg-deb', ['-f', debPath, name], {}, `${deb} is not a readable Debian package.`).trim();
        const version = field('Version');
        const debArch = field('Architecture');
        if (field('Package') !== p.package || debArch !== arch) {
          throw new FetchError(`${deb} is package ${field('Package')} for ${debArch}, expected ${p.package} for ${arch}.`);
        }
        // Unpack into a staging directory beside the final one, stamp it, then rename it into place,
        // so an interrupted run never leaves a directory that looks complete.
        const pkgDir = path.join(root, p.package);
        const staging = fs.mkdtempSync(path.join(root, `.${p.package}.staging-`));
        try {
          run('dpkg', ['-x', debPath, staging], {}, `dpkg could not unpack ${deb}.`);
          const lib = findRealLibrary(staging, p.prefix, deb);
          const rel = path.relative(staging, lib);
          fs.writeFileSync(path.join(staging, STAMP), `${JSON.stringify({ package: p.package, version, architecture: debArch, lib: rel, deb }, null, 2)}\n`);
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
        const stamp = readStamp(pkgDir);
        if (stamp === null) throw new FetchError(`${pkgDir} was unpacked but its stamp cannot be read back.`);
        libs[p.key] = stamp.lib;
        versions[p.package] = stamp.version;
        log(`${p.package} ${stamp.version}: unpacked into ${pkgDir}`);
      }
    } finally {
      fs.rmSync(work, { recursive: true, force: true });
    }
  }

  for (const p of PACKAGES) libDirs[p.key] = path.dirname(libs[p.key]);
  return { dir: root, libs, libDirs, versions, fetched: missing.map((p) => p.package) };
}

/**
 * The upstream part of a Debian version: no epoch, no Debian revision, no repack suffix.
 *
 * @example
 * upstreamVersion('2:6.2.1+dfsg1-1.1') // '6.2.1'
 */
function upstreamVersion(debianVersion) {
  return debianVersion.replace(/^[0-9]+:/, '').replace(/-[^-]*$/, '').replace(/[+~].*$/, '');
}

module.exports = { fetchThirdParty, upstreamVersion, PACKAGES, FetchError };

if (require.main === module) {
  try {
    const json = process.argv.includes('--json');
    const result = fetchThirdParty({ log: json ? undefined : (line) => console.error(line) });
    if (json) console.log(JSON.stringify(result, null, 2));
    else {
      for (const p of PACKAGES) console.log(`${p.package}\t${result.versions[p.package]}\t${result.libs[p.key]}`);
    }
  } catch (e) {
    console.error(e instanceof FetchError ? `fetch-third-party: ${e.message}` : e);
    process.exitCode = 1;
  }
}

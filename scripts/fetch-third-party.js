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

const fs = require('node:fs');
const path = require('node:path');
const { fetchDebianPackage, hostArchitecture, FetchError } = require('./debian-package.js');

const REPO = path.resolve(__dirname, '..');
const DEFAULT_ROOT = path.join(REPO, '.cache', 'third-party');

/** The chain, dependencies first: key → Debian package and the file-name prefix of its library. */
const PACKAGES = [
  { key: 'gmp', package: 'libgmp10', prefix: 'libgmp.so.' },
  { key: 'mpfr', package: 'libmpfr6', prefix: 'libmpfr.so.' },
  { key: 'mpc', package: 'libmpc3', prefix: 'libmpc.so.' },
];

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

/**
 * Downloads (unless already unpacked) and unpacks libgmp10, libmpfr6 and libmpc3.
 *
 * @param {{ root?: string, log?: (line: string) => void }} [options]
 * @returns {{ dir: string, libs: { gmp: string, mpfr: string, mpc: string }, libDirs: { gmp: string, mpfr: string, mpc: string }, versions: Record<string, string>, fetched: string[] }}
 */
function fetchThirdParty(options = {}) {
  const root = path.resolve(options.root ?? DEFAULT_ROOT);
  const arch = hostArchitecture();
  const libs = {};
  const libDirs = {};
  const versions = {};
  const fetched = [];
  for (const p of PACKAGES) {
    const r = fetchDebianPackage({ root, package: p.package, arch, log: options.log, findLibrary: (dir, deb) => findRealLibrary(dir, p.prefix, deb) });
    libs[p.key] = r.lib;
    libDirs[p.key] = path.dirname(r.lib);
    versions[p.package] = r.version;
    if (r.fetched) fetched.push(p.package);
  }
  return { dir: root, libs, libDirs, versions, fetched };
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

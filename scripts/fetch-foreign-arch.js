#!/usr/bin/env node
'use strict';
// Fetches a real shared object built for another machine than this one — the
// aarch64 libm.so.6 of Debian's libc6-arm64-cross — for the tests that check
// that dlbundle refuses a library of the wrong architecture (E_WRONG_ARCH),
// both when packing and before dlopen at run time.
//
// The package is downloaded with `apt-get download` (into a private temporary
// directory) and unpacked with `dpkg -x` into <repo>/.cache/foreign-arch/<package>/.
// Nothing is installed: dpkg's database and the system's library directories are
// never touched. libc6-arm64-cross is "Architecture: all" (its files are aarch64
// binaries under usr/aarch64-linux-gnu/), so it downloads on any Debian host.
// A package that is already unpacked (its stamp file is there and its library
// exists) is not downloaded again.
//
//   node scripts/fetch-foreign-arch.js           prints the package, its version and the library's path
//   node scripts/fetch-foreign-arch.js --json    prints the result as JSON
//
// require('./scripts/fetch-foreign-arch.js').fetchForeignArch() returns
//   { dir, lib, machine: 'aarch64', package: 'libc6-arm64-cross', version, fetched }
// where lib is the absolute path of a real aarch64 ELF shared object (not a
// linker script, not a symlink) and fetched says whether it was downloaded now.

const fs = require('node:fs');
const path = require('node:path');
const { fetchDebianPackage, FetchError } = require('./debian-package.js');

const REPO = path.resolve(__dirname, '..');
const DEFAULT_ROOT = path.join(REPO, '.cache', 'foreign-arch');

const PACKAGE = 'libc6-arm64-cross';
// libm.so.6 rather than libc.so.6: a real library with a soname and DT_NEEDED
// entries (libc.so.6, ld-linux-aarch64.so.1), at a third of libc's size.
const LIBRARY = path.join('usr', 'aarch64-linux-gnu', 'lib', 'libm.so.6');
const MACHINE = 'aarch64';
const EM_AARCH64 = 183;

/**
 * Why `file` is not a little-endian ELF64 shared object for aarch64, or null when it is.
 * Checked by hand (16 + 4 bytes) so this script needs no build of dlbundle.
 */
function notAarch64Reason(file) {
  let st;
  try {
    st = fs.lstatSync(file);
  } catch (e) {
    return `cannot be read (${e.code ?? e.message})`;
  }
  if (!st.isFile()) return 'is not a regular file';
  const head = Buffer.alloc(20);
  const fd = fs.openSync(file, 'r');
  try {
    fs.readSync(fd, head, 0, head.length, 0);
  } finally {
    fs.closeSync(fd);
  }
  if (head.readUInt32BE(0) !== 0x7f454c46) return 'does not start with 0x7f "ELF" (a linker script?)';
  if (head[4] !== 2 || head[5] !== 1) return `is not little-endian ELF64 (class ${head[4]}, data ${head[5]})`;
  if (head.readUInt16LE(16) !== 3) return `is not a shared object (e_type ${head.readUInt16LE(16)})`;
  if (head.readUInt16LE(18) !== EM_AARCH64) return `is built for e_machine ${head.readUInt16LE(18)}, not ${EM_AARCH64} (aarch64)`;
  return null;
}


/**
 * Downloads (unless already unpacked) and unpacks libc6-arm64-cross, and
 * returns the path of its aarch64 libm.so.6.
 *
 * @param {{ root?: string, log?: (line: string) => void }} [options]
 * @returns {{ dir: string, lib: string, machine: string, package: string, version: string, fetched: boolean }}
 */
function fetchForeignArch(options = {}) {
  const root = path.resolve(options.root ?? DEFAULT_ROOT);
  const r = fetchDebianPackage({
    root,
    package: PACKAGE,
    log: options.log,
    findLibrary: (dir, deb) => {
      const problem = notAarch64Reason(path.join(dir, LIBRARY));
      if (problem !== null) throw new FetchError(`${LIBRARY} in ${deb} ${problem}; expected an aarch64 shared object.`);
      return path.join(dir, LIBRARY);
    },
  });
  return { dir: r.dir, lib: r.lib, machine: MACHINE, package: PACKAGE, version: r.version, fetched: r.fetched };
}

module.exports = { fetchForeignArch, PACKAGE, MACHINE, FetchError };

if (require.main === module) {
  try {
    const json = process.argv.includes('--json');
    const result = fetchForeignArch({ log: json ? undefined : (line) => console.error(line) });
    if (json) console.log(JSON.stringify(result, null, 2));
    else console.log(`${result.package}\t${result.version}\t${result.lib}`);
  } catch (e) {
    console.error(e instanceof FetchError ? `fetch-foreign-arch: ${e.message}` : e);
    process.exitCode = 1;
  }
}

#!/usr/bin/env node
'use strict';
// The first step of `npm test`: stops the suite in its first second, with the
// one line that installs what is missing, instead of failing minutes later in
// whichever test first needs a missing tool. README.md gives the same line
// (test/prerequisites.test.ts checks that they agree, and agree with .ci/run).
const fs = require('node:fs');
const path = require('node:path');

// Debian packages and what the suite uses each for (the commands it runs).
const PACKAGES = [
  { pkg: 'build-essential', commands: ['gcc', 'g++', 'make'], why: 'node-gyp builds the demo and test libraries' },
  { pkg: 'python3', commands: ['python3'], why: 'node-gyp' },
  { pkg: 'binutils', commands: ['readelf', 'objcopy'], why: "readelf is the reference the ELF reader is checked against" },
  { pkg: 'dpkg', commands: ['dpkg-deb'], why: 'unpacks the Debian libraries the third-party tests download' },
  { pkg: 'musl-tools', commands: ['musl-gcc'], why: 'builds the musl variants of the demo libraries' },
  { pkg: 'util-linux', commands: ['setpriv'], why: 'runs attacks and starts as another user' },
  { pkg: 'mount', commands: ['mount', 'umount'], why: 'noexec, read-only and full tmpfs roots' },
  { pkg: 'strace', commands: ['strace'], why: 'proves a short-lived start never waits for the disk' },
  { pkg: 'clang', commands: ['clang'], why: 'cross-compiles the macOS (Mach-O) test libraries' },
  { pkg: 'lld', commands: ['ld.lld'], why: 'its ld64.lld links the macOS test libraries without an SDK' },
  { pkg: 'llvm', commands: ['llvm-config'], why: 'llvm-lipo and llvm-install-name-tool make the universal and @loader_path macOS test files' },
  // Installed without their recommendations (Mesa, fonts, GStreamer: hundreds of MB nothing here uses).
  // Debian's wine64 puts its programs in /usr/lib/wine/, not on PATH.
  { pkg: 'wine64', commands: [], files: ['/usr/lib/wine/wine64', '/usr/lib/wine/wineserver'], why: "runs a real Windows node.exe for the Windows tests", withoutRecommends: true },
  { pkg: 'gcc-mingw-w64-x86-64', commands: ['x86_64-w64-mingw32-gcc'], why: 'builds the Windows test DLLs', withoutRecommends: true },
];

/** The line README.md gives, to be run as root (or through sudo). */
const INSTALL_LINE = `apt-get update && apt-get install -y ${PACKAGES.filter((p) => !p.withoutRecommends).map((p) => p.pkg).join(' ')} && apt-get install -y --no-install-recommends ${PACKAGES.filter((p) => p.withoutRecommends).map((p) => p.pkg).join(' ')}`;

function onPath(command) {
  for (const dir of (process.env.PATH ?? '').split(path.delimiter)) {
    if (dir === '') continue;
    try {
      fs.accessSync(path.join(dir, command), fs.constants.X_OK);
      return true;
    } catch {
      // Not in this directory.
    }
  }
  return false;
}

function missing() {
  const problems = [];
  for (const p of PACKAGES) {
    const absent = [...p.commands.filter((c) => !onPath(c)), ...(p.files ?? []).filter((f) => !fs.existsSync(f))];
    if (absent.length > 0) problems.push(`${absent.join(', ')} (Debian package ${p.pkg}: ${p.why})`);
  }
  // apt-get download needs package lists; a fresh image has none until `apt-get update`.
  const lists = '/var/lib/apt/lists';
  let hasLists = false;
  try {
    hasLists = fs.readdirSync(lists).some((n) => n.endsWith('_Packages') || n.includes('_Packages.'));
  } catch {
    hasLists = false;
  }
  if (!hasLists) problems.push(`package lists in ${lists} (apt-get update: the third-party tests fetch real Debian libraries with apt-get download)`);
  if (process.geteuid?.() !== 0) problems.push('root (the suite switches to other uids with setpriv and mounts tmpfs file systems)');
  return problems;
}

if (require.main === module) {
  const problems = missing();
  if (problems.length > 0) {
    process.stderr.write(
      `npm test needs, and this machine lacks:\n${problems.map((p) => `  - ${p}\n`).join('')}` +
        `On Debian or Ubuntu, as root (or with sudo in front of each apt-get):\n\n  ${INSTALL_LINE}\n\n` +
        'Then run npm test again (as root). The whole suite takes about 5 minutes on 2 cores.\n',
    );
    process.exit(1);
  }
}

module.exports = { INSTALL_LINE, PACKAGES };

#!/usr/bin/env node
'use strict';
// Builds the Windows test DLLs of native/win32/ with mingw-w64 (Debian's
// gcc-mingw-w64-x86-64, which .ci/run installs) into build/win32/:
//
//   chain_a.dll ← chain_b.dll ← chain_c.dll   a chain: each imports the one
//       before it by name, without a path (native/win32/chain_a.c says what
//       chain_c computes through it)
//   bcryptprimitives.dll   Wine's missing system DLL, for the Wine prefix
//       only (scripts/wine-env.js installs it; see bcryptprimitives.c)
//
// Rebuilt only when a source is newer than its DLL. `npm run build:native`
// (node-gyp clean) empties build/, so this runs again from the Windows tests.

const { execFileSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const REPO = path.resolve(__dirname, '..');
const OUT = path.join(REPO, 'build', 'win32');
const SOURCES = path.join(REPO, 'native', 'win32');
const CC = 'x86_64-w64-mingw32-gcc';
const CFLAGS = ['-O2', '-s', '-Wall', '-shared'];

/** The DLLs, in dependency order: each links against those it `imports` (built before it). */
const DLLS = [
  { file: 'chain_a.dll', source: 'chain_a.c', imports: [], libs: [] },
  { file: 'chain_b.dll', source: 'chain_b.c', imports: ['chain_a.dll'], libs: [] },
  { file: 'chain_c.dll', source: 'chain_c.c', imports: ['chain_b.dll'], libs: [] },
  { file: 'bcryptprimitives.dll', source: 'bcryptprimitives.c', imports: [], libs: ['-lbcrypt'] },
];

function stale(target, sources) {
  if (!fs.existsSync(target)) return true;
  const t = fs.statSync(target).mtimeMs;
  return sources.some((s) => fs.statSync(s).mtimeMs > t);
}

function mingw(args) {
  try {
    execFileSync(CC, args, { stdio: 'pipe' });
  } catch (e) {
    if (e.code === 'ENOENT') throw new Error(`${CC} is not installed: apt-get install gcc-mingw-w64-x86-64 (.ci/run does).`);
    throw new Error(`${CC} ${args.join(' ')} failed:\n${e.stderr}`);
  }
}

/**
 * Builds what is stale and returns where the DLLs are.
 *
 * @returns {{ dir: string, chain: string[], bcryptprimitives: string }}
 *   chain: the chain's DLL paths in dependency order (chain_a first)
 */
function buildWin32() {
  fs.mkdirSync(OUT, { recursive: true });
  for (const dll of DLLS) {
    const target = path.join(OUT, dll.file);
    const imported = dll.imports.map((f) => path.join(OUT, f));
    if (!stale(target, [path.join(SOURCES, dll.source), ...imported])) continue;
    // Written in a directory beside and renamed: an interrupted build leaves
    // no half DLL that looks fresh. The file keeps its name there: the linker
    // writes it into the DLL (its export name, and what DLLs linked against
    // it import).
    const partial = fs.mkdtempSync(path.join(OUT, '.partial-'));
    try {
      // mingw's linker takes a DLL itself as an import library.
      mingw([...CFLAGS, '-o', path.join(partial, dll.file), path.join(SOURCES, dll.source), ...imported, ...dll.libs]);
      fs.renameSync(path.join(partial, dll.file), target);
    } finally {
      fs.rmSync(partial, { recursive: true, force: true });
    }
  }
  return {
    dir: OUT,
    chain: ['chain_a.dll', 'chain_b.dll', 'chain_c.dll'].map((f) => path.join(OUT, f)),
    bcryptprimitives: path.join(OUT, 'bcryptprimitives.dll'),
  };
}

module.exports = { buildWin32 };
if (require.main === module) console.log(buildWin32().dir);

#!/usr/bin/env node
'use strict';
// Replaces dist/index.js (tsc's re-export of ~30 modules) with one bundled
// file of the whole run time: `require('dlbundle')` then reads and compiles
// one file instead of resolving and compiling thirty, which is most of what a
// warm start costs beyond the floor. Packages (koffi, xxhash-wasm, debug, tmp)
// stay external, loaded where the code needs them. The other files of dist/
// stay for `dlbundle/build` and the CLI. Without esbuild (an optional
// dependency) tsc's output is kept as it is.
const fs = require('node:fs');
const path = require('node:path');

const repo = path.resolve(__dirname, '..');
let esbuild;
try {
  esbuild = require('esbuild');
} catch {
  console.warn('build-runtime: esbuild is not installed; dist/index.js stays unbundled (slower start-up).');
  process.exit(0);
}
esbuild.buildSync({
  entryPoints: [path.join(repo, 'src', 'index.ts')],
  outfile: path.join(repo, 'dist', 'index.js'),
  bundle: true,
  platform: 'node',
  format: 'cjs',
  target: 'node20',
  packages: 'external',
  sourcemap: false,
  legalComments: 'none',
  logLevel: 'warning',
});
// tsc's map described the file this one replaces.
fs.rmSync(path.join(repo, 'dist', 'index.js.map'), { force: true });

#!/usr/bin/env node
'use strict';
// Builds musl variants of the demo libraries (core, codec, app, plugin) and
// the musl-loader test tool with Debian's musl-gcc (package musl-tools, which
// .ci/run installs) into build/musl/. The same sources and sonames as the
// glibc build of binding.gyp; rebuilt only when a source is newer.
//
// One difference: RUNPATH $ORIGIN. musl's loader does not reuse a library
// that was opened by an explicit path to satisfy a later DT_NEEDED entry
// unless a search (RUNPATH, LD_LIBRARY_PATH at start-up, its path file)
// reaches the same file; $ORIGIN is that search, and the soname links dlbundle
// puts in the bundle directory are what it finds.
const { execFileSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const repo = path.resolve(__dirname, '..');
const out = path.join(repo, 'build', 'musl');
const src = (f) => path.join(repo, 'native', f);
const CFLAGS = ['-O2', '-fPIC', '-fvisibility=hidden', '-std=gnu11', '-Wall'];

const libraries = [
  { file: 'libdemo_core.so', soname: 'libdemo_core.so', source: 'demo_core.c', links: [] },
  { file: 'libdemo_codec.so.1.2.3', soname: 'libdemo_codec.so.1', source: 'demo_codec.c', links: ['libdemo_core.so'] },
  { file: 'libdemo_app.so', soname: 'libdemo_app.so', source: 'demo_app.c', links: ['libdemo_codec.so.1.2.3', 'libdemo_core.so'] },
  { file: 'libdemo_plugin.so', soname: 'libdemo_plugin.so', source: 'demo_plugin.c', links: [] },
];

function stale(target, sources) {
  if (!fs.existsSync(target)) return true;
  const t = fs.statSync(target).mtimeMs;
  return sources.some((s) => fs.statSync(s).mtimeMs > t);
}

function musl(args) {
  try {
    execFileSync('musl-gcc', args, { stdio: 'pipe' });
  } catch (e) {
    if (e.code === 'ENOENT') throw new Error('musl-gcc is not installed: apt-get install musl-tools (.ci/run does).');
    throw new Error(`musl-gcc ${args.join(' ')} failed:\n${e.stderr}`);
  }
}

function buildMusl() {
  fs.mkdirSync(out, { recursive: true });
  for (const lib of libraries) {
    const target = path.join(out, lib.file);
    if (!stale(target, [src(lib.source), src('demo_export.h')])) continue;
    musl([...CFLAGS, '-shared', `-Wl,-soname,${lib.soname}`, '-Wl,-rpath,$ORIGIN', '-Wl,--enable-new-dtags', '-o', target, src(lib.source), `-L${out}`, ...lib.links.map((l) => `-l:${l}`)]);
  }
  const loader = path.join(out, 'musl-loader');
  if (stale(loader, [src('musl_loader.c')])) musl(['-O2', '-o', loader, src('musl_loader.c')]);
  return { dir: out, loader, files: libraries.map((l) => path.join(out, l.file)) };
}

module.exports = { buildMusl };
if (require.main === module) console.log(buildMusl().dir);

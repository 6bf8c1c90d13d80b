#!/usr/bin/env node
'use strict';
// Cross-builds the Mach-O test files of native/macos/ into build/macos/, for
// x86_64 and arm64, with Debian's clang and ld64.lld (packages clang, lld) and
// the hand-written native/macos/libSystem.tbd in place of Apple's SDK; then
// universal (fat) copies of each with llvm-lipo (package llvm). node-gyp
// cannot do this: it links with the host's linker. Rebuilt only when a source
// is newer. The files are read, packed and planned by the tests; nothing here
// can run them (that needs a Mac).
//
// The chain (the install name first, then what each one loads):
//   libmac_core.dylib   @rpath/libmac_core.dylib; /usr/lib/libSystem.B.dylib
//   libmac_codec.dylib  @rpath/libmac_codec.dylib, LC_RPATH @loader_path; @rpath/libmac_core.dylib
//   libmac_accel.dylib  @rpath/libmac_accel.dylib (loaded weakly by the app)
//   libmac_app.dylib    @rpath/libmac_app.dylib, LC_RPATH @loader_path; @loader_path/libmac_codec.dylib,
//                       weak @rpath/libmac_accel.dylib
//   mac_addon.node      an MH_BUNDLE (no install name), LC_RPATH @loader_path; @rpath/libmac_app.dylib,
//                       napi_module_register left to the process (-undefined dynamic_lookup)
const { execFileSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const repo = path.resolve(__dirname, '..');
const out = path.join(repo, 'build', 'macos');
const src = (f) => path.join(repo, 'native', 'macos', f);
const TBD = src('libSystem.tbd');
// The oldest macOS that arm64 runs (11.0), for both architectures, so both slices say the same.
const MACOS = '11.0';
const ARCHS = ['x86_64', 'arm64'];

/** The files, in link order; `links` are earlier files of the same architecture. */
const FILES = [
  { file: 'libmac_core.dylib', source: 'mac_core.c', kind: 'dylib', links: [], rpath: false },
  { file: 'libmac_codec.dylib', source: 'mac_codec.c', kind: 'dylib', links: ['libmac_core.dylib'], rpath: true },
  { file: 'libmac_accel.dylib', source: 'mac_accel.c', kind: 'dylib', links: [], rpath: false },
  // The codec is named by a path relative to the app (install_name_tool -change, as projects do after linking).
  { file: 'libmac_app.dylib', source: 'mac_app.c', kind: 'dylib', links: ['libmac_codec.dylib'], weak: ['libmac_accel.dylib'], rpath: true, change: ['@rpath/libmac_codec.dylib', '@loader_path/libmac_codec.dylib'] },
  { file: 'mac_addon.node', source: 'mac_addon.c', kind: 'bundle', links: ['libmac_app.dylib'], rpath: true },
];

function run(program, args) {
  try {
    return execFileSync(program, args, { stdio: 'pipe', encoding: 'utf8' });
  } catch (e) {
    if (e.code === 'ENOENT') throw new Error(`${program} is not installed: apt-get install clang lld llvm (.ci/run does).`);
    throw new Error(`${program} ${args.join(' ')} failed:\n${e.stderr}`);
  }
}

let llvmBin;
/** LLVM's own directory: ld64.lld, llvm-lipo and llvm-install-name-tool have no unversioned name on PATH in Debian. */
function llvmTool(name) {
  llvmBin ??= run('llvm-config', ['--bindir']).trim();
  const tool = path.join(llvmBin, name);
  if (!fs.existsSync(tool)) throw new Error(`${tool} is missing: apt-get install lld llvm (.ci/run does).`);
  return tool;
}

function stale(target, sources) {
  if (!fs.existsSync(target)) return true;
  const t = fs.statSync(target).mtimeMs;
  return sources.some((s) => fs.statSync(s).mtimeMs > t);
}

function buildArch(arch) {
  const dir = path.join(out, arch);
  fs.mkdirSync(dir, { recursive: true });
  for (const f of FILES) {
    const target = path.join(dir, f.file);
    const deps = [...f.links, ...(f.weak ?? [])].map((l) => path.join(dir, l));
    if (!stale(target, [src(f.source), TBD, __filename, ...deps])) continue;
    const object = path.join(dir, `${path.basename(f.source, '.c')}.o`);
    run('clang', ['-target', `${arch}-apple-macos${MACOS}`, '-O2', '-fPIC', '-fvisibility=hidden', '-std=c11', '-Wall', '-c', src(f.source), '-o', object]);
    const kind = f.kind === 'bundle' ? ['-bundle', '-undefined', 'dynamic_lookup'] : ['-dylib', '-install_name', `@rpath/${f.file}`];
    run(llvmTool('ld64.lld'), [
      '-arch', arch, '-platform_version', 'macos', MACOS, MACOS,
      ...kind,
      ...(f.rpath ? ['-rpath', '@loader_path'] : []),
      '-o', target, object,
      ...f.links.map((l) => path.join(dir, l)),
      ...(f.weak ?? []).flatMap((l) => ['-weak_library', path.join(dir, l)]),
      TBD,
    ]);
    if (f.change !== undefined) run(llvmTool('llvm-install-name-tool'), ['-change', ...f.change, target]);
    fs.rmSync(object);
  }
  return dir;
}

/**
 * Builds (when stale) and returns the directories: one per architecture, and
 * `universal` with a fat file of both slices for each file.
 */
function buildMacos() {
  const dirs = Object.fromEntries(ARCHS.map((arch) => [arch, buildArch(arch)]));
  const universal = path.join(out, 'universal');
  fs.mkdirSync(universal, { recursive: true });
  for (const f of FILES) {
    const target = path.join(universal, f.file);
    const slices = ARCHS.map((arch) => path.join(dirs[arch], f.file));
    if (stale(target, slices)) run(llvmTool('llvm-lipo'), ['-create', ...slices, '-output', target]);
  }
  return { ...dirs, universal, files: FILES.map((f) => f.file) };
}

module.exports = { buildMacos };
if (require.main === module) console.log(JSON.stringify(buildMacos(), null, 2));

/**
 * macOS, without a Mac: the run time's macOS rules computed for
 * `platform: 'darwin'` on this Linux machine (cache roots, no /proc, no
 * memory mode, dyld's search), over Mach-O files cross-built from
 * native/macos/ by scripts/build-macos.js (clang + ld64.lld, a hand-written
 * libSystem.tbd). Nothing here loads a Mach-O file: that needs a Mac.
 */
import { strict as assert } from 'node:assert';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { place, type CacheRequest } from '../src/cache';
import { defaultRoot } from '../src/default-root';
import { expandLoaderPath, isMacSystemLibrary, resolveDyldLibrary, type DyldContext } from '../src/dyld-libs';
import { readBinaryFile } from '../src/formats/binary-file';
import type { MachOImage, MachOInfo } from '../src/formats/macho';
import { runSync, syncIo, type Io } from '../src/io';
import { loadError } from '../src/loader';
import { COMPLETE_MARKER, MANIFEST_FILE, parseManifest, variantGraph, type Manifest, type ManifestFile, type ManifestVariant } from '../src/manifest';
import { pack } from '../src/pack';
import { checkBeforeLoad, dependencyClosure, dependencyGraph } from '../src/plan';
import { memoryModeSupported, noMemoryMode } from '../src/memory';
import { Placer, placementsFor } from '../src/placement';
import { runtimePlatform } from '../src/platform';
import { candidateRoots, checkRoot } from '../src/roots';
import { fromDirectory } from '../src/sources/directory';
import { systemSearch } from '../src/system-search';
import { expectCode, nativeFixture, packedFixtures, tempDir } from './fixtures';
import { llvmTool } from './llvm-tools';

// eslint-disable-next-line @typescript-eslint/no-require-imports
const { buildMacos } = require('../scripts/build-macos.js') as { buildMacos(): { x86_64: string; arm64: string; universal: string; files: string[] } };

const uid = process.geteuid?.() ?? 0;

/** Sets environment variables for one test; the returned function puts them back. */
function withEnv(vars: Record<string, string | undefined>): () => void {
  const saved = Object.fromEntries(Object.keys(vars).map((k) => [k, process.env[k]]));
  const set = (values: Record<string, string | undefined>): void => {
    for (const [k, v] of Object.entries(values)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  };
  set(vars);
  return () => set(saved);
}

/** syncIo, with every whole-file read recorded. */
function recordingIo(reads: string[]): Io {
  return {
    ...syncIo,
    readFile: function* (p: string) {
      reads.push(p);
      return yield* syncIo.readFile(p);
    },
  };
}

/** A packed bundle of the (Linux) demo libraries: placement does not look inside the files. */
function demoBundle(): { dir: string; manifest: Manifest; key: string; variant: ManifestVariant } {
  const dir = packedFixtures(['libdemo_core.so', 'libdemo_codec.so.1.2.3', 'libdemo_app.so']);
  const manifest = parseManifest(fs.readFileSync(path.join(dir, MANIFEST_FILE), 'utf8'));
  const key = Object.keys(manifest.variants)[0] as string;
  return { dir, manifest, key, variant: manifest.variants[key] as ManifestVariant };
}

describe('macOS: cache roots (computed for darwin)', () => {
  let restore: () => void = () => undefined;
  afterEach(() => restore());

  it('~/Library/Caches/dlbundle first, <tmpdir>/dlbundle-<uid> as the fallback; cacheDir and $DLBUNDLE_CACHE_DIR replace the first', () => {
    restore = withEnv({ HOME: '/Users/me', TMPDIR: '/var/folders/zz/abc/T/', DLBUNDLE_CACHE_DIR: undefined, XDG_CACHE_HOME: '/xdg' });
    const tmpRoot = `/var/folders/zz/abc/T/dlbundle-${uid}`;
    // XDG_CACHE_HOME is a Linux convention: not used on macOS.
    assert.deepEqual(candidateRoots(undefined, 'darwin'), { roots: ['/Users/me/Library/Caches/dlbundle', tmpRoot], unavailable: [] });
    assert.equal(defaultRoot('darwin'), '/Users/me/Library/Caches/dlbundle');
    assert.deepEqual(candidateRoots('/given', 'darwin').roots, ['/given', tmpRoot]);
    process.env.DLBUNDLE_CACHE_DIR = '/from-env';
    assert.deepEqual(candidateRoots(undefined, 'darwin').roots, ['/from-env', tmpRoot]);
    assert.equal(defaultRoot('darwin'), '/from-env');
    // The same environment on Linux: the temporary directory first, XDG as the fallback.
    process.env.DLBUNDLE_CACHE_DIR = '';
    assert.deepEqual(candidateRoots(undefined, 'linux').roots, [tmpRoot, '/xdg/dlbundle']);
  });

  it('without a usable home directory the temporary root is used, and the home root is reported with the reason', () => {
    restore = withEnv({ HOME: 'not/absolute', TMPDIR: '/tmp', DLBUNDLE_CACHE_DIR: undefined });
    const r = candidateRoots(undefined, 'darwin');
    assert.deepEqual(r.roots, [`/tmp/dlbundle-${uid}`]);
    assert.equal(r.unavailable.length, 1);
    assert.equal(r.unavailable[0]?.root, '~/Library/Caches/dlbundle');
    assert.match(r.unavailable[0]?.reason ?? '', /no home directory: "not\/absolute" is not an absolute path; set HOME to use this root/);
    assert.equal(defaultRoot('darwin'), `/tmp/dlbundle-${uid}`);
  });

  it('the root check of a new root on darwin reads no /proc file (on Linux it reads the mount table), and still makes the root 0700', () => {
    for (const platform of ['darwin', 'linux'] as const) {
      const root = path.join(tempDir(), 'Library', 'Caches', 'dlbundle');
      const reads: string[] = [];
      const r = runSync(checkRoot(recordingIo(reads), root, { create: true, platform }));
      assert.deepEqual(r, { exists: true, real: root });
      assert.equal(fs.statSync(root).mode & 0o777, 0o700);
      if (platform === 'darwin') assert.deepEqual(reads, []);
      else assert.deepEqual(reads, ['/proc/self/mountinfo']);
    }
  });

  it('the uid and mode rules hold on darwin: a root writable by others is refused', () => {
    const root = path.join(tempDir(), 'shared');
    fs.mkdirSync(root, { mode: 0o700 });
    fs.chmodSync(root, 0o777);
    const e = expectCode('E_UNSAFE_DIR', () => runSync(checkRoot(syncIo, root, { create: true, platform: 'darwin' })));
    assert.match(e.message, /writable by group or others \(mode 0777\)/);
  });

  it('a cold extraction for darwin writes the bundle directory without reading /proc; the same on Linux reads the mount table', () => {
    const b = demoBundle();
    for (const platform of ['darwin', 'linux'] as const) {
      const root = path.join(tempDir(), 'root');
      const reads: string[] = [];
      const req: CacheRequest = { bundleName: b.manifest.name, variantKey: b.key, variant: b.variant, source: fromDirectory(b.dir), roots: [root], verify: 'size', platform };
      const placed = runSync(place(recordingIo(reads), req));
      assert.ok('dir' in placed, JSON.stringify(placed));
      for (const f of b.variant.files) assert.equal(fs.statSync(path.join(placed.dir, f.name)).size, f.size);
      const procReads = reads.filter((p) => p.startsWith('/proc/'));
      if (platform === 'darwin') assert.deepEqual(procReads, []);
      else assert.ok(procReads.includes('/proc/self/mountinfo'), JSON.stringify(reads));
    }
  });
});

describe('macOS: no memory mode (computed for darwin)', () => {
  let restore: () => void = () => undefined;
  afterEach(() => restore());

  it('the platform table: memory files on Linux only; on macOS an E_USAGE that says why and what to use', () => {
    assert.equal(memoryModeSupported('linux'), true);
    assert.equal(memoryModeSupported('darwin'), false);
    const e = noMemoryMode('darwin');
    assert.equal(e.code, 'E_USAGE');
    assert.match(e.message, /^mode: 'memory' cannot be used on macOS: there is no memfd_create, and dyld loads a library only from a file with a path\./);
    assert.match(e.message, /Use mode: 'disk' \(or 'auto', the default\)/);
    assert.equal(runtimePlatform('darwin').procfs, false);
    assert.equal(runtimePlatform('darwin').privacy, 'posix');
    assert.equal(runtimePlatform('darwin').linker, 'dyld');
    assert.equal(runtimePlatform('linux').procfs, true);
  });

  it('placementsFor: auto falls back to memory on Linux only; memory mode on darwin is E_USAGE', () => {
    assert.deepEqual(placementsFor('auto', false, 'linux'), ['disk', 'memory']);
    assert.deepEqual(placementsFor('auto', false, 'darwin'), ['disk']);
    assert.deepEqual(placementsFor('auto', true, 'darwin'), ['in-place']);
    assert.deepEqual(placementsFor('disk', false, 'linux'), ['disk']);
    assert.deepEqual(placementsFor('memory', false, 'linux'), ['memory']);
    expectCode('E_USAGE', () => placementsFor('memory', false, 'darwin'));
  });

  it("mode: 'memory' on darwin fails on first use with E_USAGE, before anything is written", () => {
    const b = demoBundle();
    const root = path.join(tempDir(), 'root');
    const placer = new Placer({ source: fromDirectory(b.dir), mode: 'memory', cacheDir: root, platform: 'darwin' });
    const e = expectCode('E_USAGE', () => placer.placeSync({ bundleName: b.manifest.name, variantKey: b.key, variant: b.variant }));
    assert.match(e.message, /cannot be used on macOS/);
    assert.equal(placer.current, undefined);
    assert.equal(fs.existsSync(root), false);
  });

  it("mode: 'auto' with no usable root: memory files on Linux, the roots' error on darwin", () => {
    const b = demoBundle();
    const target = { bundleName: b.manifest.name, variantKey: b.key, variant: b.variant };
    // Every root unusable: cacheDir below a regular file, and the fallbacks in a directory others can write.
    const open = tempDir();
    fs.chmodSync(open, 0o777);
    const file = path.join(tempDir(), 'a-file');
    fs.writeFileSync(file, '');
    restore = withEnv({ TMPDIR: open, XDG_CACHE_HOME: open, HOME: open, DLBUNDLE_CACHE_DIR: undefined });
    const linux = new Placer({ source: fromDirectory(b.dir), cacheDir: path.join(file, 'cache'), platform: 'linux' }).placeSync(target);
    assert.equal(linux.kind, 'memory');
    const darwin = new Placer({ source: fromDirectory(b.dir), cacheDir: path.join(file, 'cache'), platform: 'darwin' });
    const e = expectCode('E_UNSAFE_DIR', () => darwin.placeSync(target));
    assert.match(e.message, /No cache directory could be used/);
    assert.ok(e.message.includes(path.join(file, 'cache')), e.message);
    // cacheDir replaced ~/Library/Caches/dlbundle; the temporary root was the fallback.
    assert.ok(e.message.includes(path.join(open, `dlbundle-${uid}`)), e.message);
    assert.equal(darwin.current, undefined);
  });
});

describe('macOS: dyld messages become coded errors', () => {
  // The shapes of dyld's dlerror() text on macOS 12 to 14, as koffi prefixes them (not produced here: no Mac).
  it('"Library not loaded" is E_MISSING_DEP naming the install name; "incompatible architecture" is E_WRONG_ARCH', () => {
    const at = '/Users/me/Library/Caches/dlbundle/mac-1/libmac_codec.dylib';
    const missing = loadError('libmac_codec.dylib', at, new Error(`Failed to load shared library: dlopen(${at}, 0x0006): Library not loaded: @rpath/libmac_core.dylib\n  Referenced from: <6A1F…> ${at}\n  Reason: tried: '/Users/me/Library/Caches/dlbundle/mac-1/libmac_core.dylib' (no such file)`));
    assert.equal(missing.code, 'E_MISSING_DEP');
    assert.equal(missing.dependency, '@rpath/libmac_core.dylib');
    const framework = loadError('x.dylib', at, new Error("dlopen(x, 0x0006): Library not loaded: '@rpath/Electron Framework.framework/Electron Framework'\n  Referenced from: x"));
    assert.equal(framework.dependency, '@rpath/Electron Framework.framework/Electron Framework');
    const arch = loadError('libmac_codec.dylib', at, new Error(`dlopen(${at}, 0x0006): tried: '${at}' (mach-o file, but is an incompatible architecture (have 'x86_64', need 'arm64e' or 'arm64'))`));
    assert.equal(arch.code, 'E_WRONG_ARCH');
  });
});

describe('macOS: dyld search for dependencies the bundle lacks', () => {
  let built: ReturnType<typeof buildMacos>;
  before(function () {
    this.timeout(120_000);
    built = buildMacos();
  });
  const noEnv: NodeJS.ProcessEnv = {};

  it('/usr/lib and /System are taken as present (the dyld shared cache), though no such file is on this machine', () => {
    assert.equal(fs.existsSync('/usr/lib/libSystem.B.dylib'), false);
    const ctx: DyldContext = { rpaths: [], loaderDir: built.arm64, executableDir: '/nowhere', env: noEnv, machine: 'aarch64' };
    assert.deepEqual(resolveDyldLibrary('/usr/lib/libSystem.B.dylib', ctx), { path: '/usr/lib/libSystem.B.dylib', via: 'system' });
    assert.deepEqual(resolveDyldLibrary('/System/Library/Frameworks/Metal.framework/Versions/A/Metal', ctx)?.via, 'system');
    assert.equal(isMacSystemLibrary('/usr/local/lib/libvips.42.dylib'), false);
    assert.equal(resolveDyldLibrary('/usr/local/lib/libvips.42.dylib', ctx), null);
  });

  it('@rpath through LC_RPATH @loader_path: found next to the library, not found from a directory without it', () => {
    const ctx: DyldContext = { rpaths: ['@loader_path'], loaderDir: built.arm64, executableDir: '/nowhere', env: noEnv, machine: 'aarch64' };
    assert.deepEqual(resolveDyldLibrary('@rpath/libmac_core.dylib', ctx), { path: path.join(built.arm64, 'libmac_core.dylib'), via: 'rpath' });
    assert.equal(resolveDyldLibrary('@rpath/libmac_core.dylib', { ...ctx, loaderDir: tempDir() }), null);
    // No LC_RPATH at all: an @rpath name has nowhere to be found.
    assert.equal(resolveDyldLibrary('@rpath/libmac_core.dylib', { ...ctx, rpaths: [] }), null);
    // Entries are tried in order; a later one finds it.
    assert.deepEqual(resolveDyldLibrary('@rpath/libmac_core.dylib', { ...ctx, rpaths: ['/nowhere', '@executable_path/../lib', built.universal] }), { path: path.join(built.universal, 'libmac_core.dylib'), via: 'rpath' });
  });

  it('a file of another architecture is passed over, as dyld does, and the search goes on; a universal file fits both', () => {
    const rpaths = [built.arm64, built.x86_64];
    const base = { loaderDir: '/nowhere', executableDir: '/nowhere', env: noEnv };
    assert.deepEqual(resolveDyldLibrary('@rpath/libmac_core.dylib', { ...base, rpaths, machine: 'aarch64' })?.path, path.join(built.arm64, 'libmac_core.dylib'));
    assert.deepEqual(resolveDyldLibrary('@rpath/libmac_core.dylib', { ...base, rpaths, machine: 'x86_64' })?.path, path.join(built.x86_64, 'libmac_core.dylib'));
    assert.equal(resolveDyldLibrary('@rpath/libmac_core.dylib', { ...base, rpaths: [built.arm64], machine: 'x86_64' }), null);
    for (const machine of ['x86_64', 'aarch64']) {
      assert.deepEqual(resolveDyldLibrary(path.join(built.universal, 'libmac_app.dylib'), { ...base, rpaths: [], machine }), { path: path.join(built.universal, 'libmac_app.dylib'), via: 'path' });
    }
    // Not a Mach-O file at all (this ELF test library): not a candidate either.
    const elfDir = path.dirname(nativeFixture('libdemo_core.so'));
    assert.equal(resolveDyldLibrary('@rpath/libdemo_core.so', { ...base, rpaths: [elfDir], machine: 'x86_64' }), null);
  });

  it('@loader_path and @executable_path expand to the bundle directory and the program directory', () => {
    const ctx: DyldContext = { rpaths: [], loaderDir: built.arm64, executableDir: built.universal, env: noEnv, machine: 'aarch64' };
    assert.deepEqual(resolveDyldLibrary('@loader_path/libmac_codec.dylib', ctx), { path: path.join(built.arm64, 'libmac_codec.dylib'), via: 'loader_path' });
    assert.deepEqual(resolveDyldLibrary('@executable_path/libmac_codec.dylib', ctx), { path: path.join(built.universal, 'libmac_codec.dylib'), via: 'executable_path' });
    assert.deepEqual(resolveDyldLibrary('@loader_path/../arm64/libmac_core.dylib', ctx), { path: path.join(built.arm64, 'libmac_core.dylib'), via: 'loader_path' });
    assert.equal(resolveDyldLibrary('@loader_path/libmac_missing.dylib', ctx), null);
    assert.equal(resolveDyldLibrary('@unknown_word/libmac_core.dylib', ctx), null);
    assert.equal(expandLoaderPath('@loader_path_not/x', ctx), '@loader_path_not/x');
  });

  it('DYLD_LIBRARY_PATH first, by leaf name; DYLD_FALLBACK_LIBRARY_PATH last', () => {
    const ctx: DyldContext = { rpaths: ['@loader_path'], loaderDir: built.arm64, executableDir: '/nowhere', env: { DYLD_LIBRARY_PATH: `/nowhere:${built.universal}` }, machine: 'aarch64' };
    assert.deepEqual(resolveDyldLibrary('@rpath/libmac_core.dylib', ctx), { path: path.join(built.universal, 'libmac_core.dylib'), via: 'DYLD_LIBRARY_PATH' });
    const empty = tempDir();
    const fallback: DyldContext = { rpaths: [], loaderDir: empty, executableDir: empty, env: { DYLD_FALLBACK_LIBRARY_PATH: built.arm64 }, machine: 'aarch64' };
    assert.deepEqual(resolveDyldLibrary('@rpath/libmac_accel.dylib', fallback), { path: path.join(built.arm64, 'libmac_accel.dylib'), via: 'DYLD_FALLBACK_LIBRARY_PATH' });
  });
});

/** The cross-built chain as `llvm-otool -L` lists it: the install name (dylibs), then each dylib load command's name, weak ones marked. */
function otoolNames(file: string): { soname: string | null; needed: string[]; weak: string[] } {
  const lines = execFileSync(llvmTool('llvm-otool'), ['-L', file], { encoding: 'utf8' }).split('\n').slice(1).filter((l) => l.trim() !== '');
  const entries = lines.map((l) => /^\s+(.*) \(compatibility version [^)]*?(, weak)?\)$/.exec(l) ?? assert.fail(`unexpected llvm-otool line ${JSON.stringify(l)}`));
  const isDylib = readBinaryFile(file).format === 'macho' && (readBinaryFile(file) as MachOInfo).images[0]?.filetype === 'dylib';
  const [id, ...deps] = isDylib ? entries : [null, ...entries];
  return { soname: id?.[1] ?? null, needed: deps.map((m) => m?.[1] as string), weak: deps.filter((m) => m?.[2] !== undefined).map((m) => m?.[1] as string) };
}

const CHAIN = ['libmac_core.dylib', 'libmac_codec.dylib', 'libmac_accel.dylib', 'libmac_app.dylib', 'mac_addon.node'];
const LIBSYSTEM = '/usr/lib/libSystem.B.dylib';
const ARCHS = [
  { dir: 'x86_64', target: 'darwin-x64', machine: 'x86_64' },
  { dir: 'arm64', target: 'darwin-arm64', machine: 'aarch64' },
] as const;

describe('macOS: the cross-built chain, read, packed and planned', function () {
  this.timeout(120_000);
  let built: ReturnType<typeof buildMacos>;
  before(function () {
    this.timeout(120_000);
    built = buildMacos();
  });

  // What each file is, by construction (scripts/build-macos.js), for both architectures.
  const EXPECTED: Record<string, { filetype: string; soname: string | null; needed: string[]; weak: string[]; runpath: string[] }> = {
    'libmac_core.dylib': { filetype: 'dylib', soname: '@rpath/libmac_core.dylib', needed: [LIBSYSTEM], weak: [], runpath: [] },
    'libmac_codec.dylib': { filetype: 'dylib', soname: '@rpath/libmac_codec.dylib', needed: ['@rpath/libmac_core.dylib', LIBSYSTEM], weak: [], runpath: ['@loader_path'] },
    'libmac_accel.dylib': { filetype: 'dylib', soname: '@rpath/libmac_accel.dylib', needed: [LIBSYSTEM], weak: [], runpath: [] },
    'libmac_app.dylib': { filetype: 'dylib', soname: '@rpath/libmac_app.dylib', needed: ['@loader_path/libmac_codec.dylib', '@rpath/libmac_accel.dylib', LIBSYSTEM], weak: ['@rpath/libmac_accel.dylib'], runpath: ['@loader_path'] },
    'mac_addon.node': { filetype: 'bundle', soname: null, needed: ['@rpath/libmac_app.dylib', LIBSYSTEM], weak: [], runpath: ['@loader_path'] },
  };

  for (const arch of ARCHS) {
    it(`reading (${arch.dir}): readBinary gives each file's install name, load commands in order, weak ones and LC_RPATH, as llvm-otool -L does`, () => {
      for (const name of CHAIN) {
        const file = path.join(built[arch.dir], name);
        const info = readBinaryFile(file);
        assert.equal(info.format, 'macho');
        const { fat, images } = info as MachOInfo;
        assert.equal(fat, null);
        assert.equal(images.length, 1);
        const image = images[0] as MachOImage;
        const want = EXPECTED[name] as (typeof EXPECTED)[string];
        assert.equal(image.machine, arch.machine, name);
        assert.equal(image.filetype, want.filetype, name);
        assert.equal(image.soname, want.soname, name);
        assert.deepEqual(image.needed, want.needed, name);
        assert.deepEqual(image.runpath, want.runpath, name);
        assert.deepEqual(image.needed.filter((_, i) => image.neededCommands[i] === 'LC_LOAD_WEAK_DYLIB'), want.weak, name);
        assert.deepEqual(otoolNames(file), { soname: want.soname, needed: want.needed, weak: want.weak }, `${name}: llvm-otool -L`);
      }
    });
  }

  it('reading the universal files (llvm-lipo): one image per architecture in header order, each the thin file byte for byte', () => {
    for (const name of CHAIN) {
      const file = path.join(built.universal, name);
      const info = readBinaryFile(file) as MachOInfo;
      assert.notEqual(info.fat, null, name);
      assert.deepEqual(info.images.map((i) => i.machine), ['x86_64', 'aarch64'], name);
      const bytes = fs.readFileSync(file);
      for (const [i, arch] of (['x86_64', 'arm64'] as const).entries()) {
        const image = info.images[i] as MachOImage;
        assert.deepEqual(bytes.subarray(image.offset, image.offset + image.size), fs.readFileSync(path.join(built[arch], name)), `${name} ${arch}`);
        assert.deepEqual(image.needed, EXPECTED[name]?.needed);
      }
    }
  });

  for (const arch of ARCHS) {
    it(`packing for ${arch.target}: the thin and the universal build give the same variant; libSystem external, the weak dylib recorded, nothing missing`, () => {
      const fromThin = tempDir();
      const thin = pack(CHAIN.map((n) => path.join(built[arch.dir], n)), { name: 'mac', out: fromThin, target: arch.target });
      const fromFat = tempDir();
      const fat = pack(CHAIN.map((n) => path.join(built.universal, n)), { name: 'mac', out: fromFat, target: arch.target });
      assert.deepEqual(fat.variant, thin.variant);
      assert.deepEqual(thin.missing, []);
      const v = thin.variant;
      assert.deepEqual(v.external, [LIBSYSTEM]);
      for (const f of v.files) {
        assert.equal(f.format, 'macho');
        assert.equal(f.machine, arch.machine);
        // The universal file's slice for this target, byte for byte: the thin file.
        assert.deepEqual(fs.readFileSync(path.join(fromFat, arch.target, f.name)), fs.readFileSync(path.join(built[arch.dir], f.name)), f.name);
      }
      assert.deepEqual(v.files.find((f) => f.name === 'libmac_app.dylib')?.weakNeeded, ['@rpath/libmac_accel.dylib']);
      // The other architecture is refused for this target.
      const other = arch.dir === 'arm64' ? built.x86_64 : built.arm64;
      expectCode('E_WRONG_ARCH', () => pack([path.join(other, 'libmac_core.dylib')], { name: 'mac', out: tempDir(), target: arch.target }));
    });
  }

  /** Packs `names` of one architecture and returns the parsed variant and its graph. */
  function packed(arch: (typeof ARCHS)[number], names: readonly string[]): { out: string; manifest: Manifest; variant: ManifestVariant; graph: ReturnType<typeof variantGraph> } {
    const out = tempDir();
    pack(names.map((n) => path.join(built[arch.dir], n)), { name: 'mac', out, target: arch.target });
    const manifest = parseManifest(fs.readFileSync(path.join(out, MANIFEST_FILE), 'utf8'));
    const variant = manifest.variants[arch.target] as ManifestVariant;
    return { out, manifest, variant, graph: variantGraph(variant) };
  }

  for (const arch of ARCHS) {
    it(`planning for ${arch.target}: core → codec → app (the weak accelerator before it), the addon last; @rpath and @loader_path resolved against the bundle`, () => {
      const { variant, graph } = packed(arch, CHAIN);
      assert.deepEqual(variant.order, ['libmac_accel.dylib', 'libmac_core.dylib', 'libmac_codec.dylib', 'libmac_app.dylib', 'mac_addon.node']);
      assert.deepEqual(graph.bundledDeps.get('libmac_codec.dylib'), ['libmac_core.dylib']); // @rpath/libmac_core.dylib
      assert.deepEqual(graph.bundledDeps.get('libmac_app.dylib'), ['libmac_codec.dylib', 'libmac_accel.dylib']); // @loader_path/…, weak @rpath/…
      assert.deepEqual(graph.bundledDeps.get('mac_addon.node'), ['libmac_app.dylib']);
      for (const name of CHAIN) assert.deepEqual(graph.externalDeps.get(name), [LIBSYSTEM], name);
      assert.deepEqual(dependencyClosure(graph, variant.order, 'libmac_app.dylib'), ['libmac_accel.dylib', 'libmac_core.dylib', 'libmac_codec.dylib', 'libmac_app.dylib']);
      assert.equal(graph.providerOf('@rpath/libmac_codec.dylib')?.name, 'libmac_codec.dylib');
    });
  }

  it('the check before any load, for darwin-arm64 in a cache directory placed for darwin: libSystem present (the shared cache), the wrong machine refused', () => {
    const arch = ARCHS[1];
    const { manifest, variant, graph, out } = packed(arch, CHAIN);
    const root = path.join(tempDir(), 'Caches', 'dlbundle');
    const placed = runSync(place(syncIo, { bundleName: manifest.name, variantKey: arch.target, variant, source: fromDirectory(out), roots: [root], verify: 'size', platform: 'darwin' }));
    assert.ok('dir' in placed);
    assert.deepEqual(fs.readdirSync(placed.dir).sort(), [...CHAIN, COMPLETE_MARKER].sort());
    const search = systemSearch(placed.dir, 'darwin');
    const found = checkBeforeLoad(graph, variant.order, arch.machine, (dep, f) => search.resolve(dep, f), undefined, search.searched);
    assert.deepEqual([...found], [[LIBSYSTEM, LIBSYSTEM]]);
    const wrong = expectCode('E_WRONG_ARCH', () => checkBeforeLoad(graph, variant.order, 'x86_64', (dep, f) => search.resolve(dep, f), undefined, search.searched));
    assert.match(wrong.message, /"libmac_accel.dylib" is built for aarch64, but this process runs on x86_64/);
  });

  it('a bundle without libmac_core.dylib: E_MISSING_DEP names @rpath/libmac_core.dylib and where dyld looks; found once it is next to the codec (LC_RPATH @loader_path)', () => {
    const arch = ARCHS[1];
    const { variant, graph } = packed(arch, ['libmac_codec.dylib', 'libmac_app.dylib', 'libmac_accel.dylib']);
    assert.deepEqual(graph.externalDeps.get('libmac_codec.dylib'), ['@rpath/libmac_core.dylib', LIBSYSTEM]);
    const closure = dependencyClosure(graph, variant.order, 'libmac_app.dylib');
    const bundleDir = tempDir();
    const search = systemSearch(bundleDir, 'darwin');
    const resolve = (dep: string, f: ManifestFile): string | null => resolveDyldLibrary(dep, { rpaths: f.runpath, loaderDir: bundleDir, executableDir: '/nowhere', env: {}, machine: arch.machine })?.path ?? null;
    const e = expectCode('E_MISSING_DEP', () => checkBeforeLoad(graph, closure, arch.machine, resolve, undefined, search.searched));
    assert.equal(e.dependency, '@rpath/libmac_core.dylib');
    assert.equal(e.file, 'libmac_codec.dylib');
    assert.match(e.message, /searched DYLD_LIBRARY_PATH, its LC_RPATH entries, @loader_path \(the bundle directory\)/);
    fs.copyFileSync(path.join(built.arm64, 'libmac_core.dylib'), path.join(bundleDir, 'libmac_core.dylib'));
    assert.deepEqual([...checkBeforeLoad(graph, closure, arch.machine, resolve, undefined, search.searched)].sort(), [['@rpath/libmac_core.dylib', path.join(bundleDir, 'libmac_core.dylib')], [LIBSYSTEM, LIBSYSTEM]].sort());
  });

  it('a bundle without the weak libmac_accel.dylib: external, but not required before the load (dyld loads the app without it); a strong need would be E_MISSING_DEP', () => {
    const arch = ARCHS[0];
    const out = tempDir();
    const result = pack(['libmac_core.dylib', 'libmac_codec.dylib', 'libmac_app.dylib'].map((n) => path.join(built[arch.dir], n)), { name: 'mac', out, target: arch.target });
    assert.deepEqual(result.missing, []);
    const variant = result.variant;
    const graph = variantGraph(variant);
    assert.deepEqual(graph.externalDeps.get('libmac_app.dylib'), ['@rpath/libmac_accel.dylib', LIBSYSTEM]);
    const resolve = (dep: string, f: ManifestFile): string | null => resolveDyldLibrary(dep, { rpaths: f.runpath, loaderDir: out, executableDir: '/nowhere', env: {}, machine: arch.machine })?.path ?? null;
    assert.deepEqual([...checkBeforeLoad(graph, variant.order, arch.machine, resolve)], [[LIBSYSTEM, LIBSYSTEM]]);
    // The same file without its weak mark: the check would refuse it.
    const strong = variant.files.map(({ weakNeeded: _weak, ...f }) => f);
    const e = expectCode('E_MISSING_DEP', () => checkBeforeLoad(dependencyGraph(strong), variant.order, arch.machine, resolve));
    assert.equal(e.dependency, '@rpath/libmac_accel.dylib');
  });
});

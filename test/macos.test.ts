/**
 * macOS, without a Mac: the run time's macOS rules computed for
 * `platform: 'darwin'` on this Linux machine (cache roots, no /proc, no
 * memory mode, dyld's search), over Mach-O files cross-built from
 * native/macos/ by scripts/build-macos.js (clang + ld64.lld, a hand-written
 * libSystem.tbd). Nothing here loads a Mach-O file: that needs a Mac.
 */
import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { place, type CacheRequest } from '../src/cache';
import { defaultRoot } from '../src/default-root';
import { expandLoaderPath, isMacSystemLibrary, resolveDyldLibrary, type DyldContext } from '../src/dyld-libs';
import { runSync, syncIo, type Io } from '../src/io';
import { loadError } from '../src/loader';
import { MANIFEST_FILE, parseManifest, type Manifest, type ManifestVariant } from '../src/manifest';
import { memoryModeSupported } from '../src/memory';
import { Placer, placementsFor } from '../src/placement';
import { memoryModeRefusal, runtimePlatform } from '../src/platform';
import { candidateRoots, checkRoot } from '../src/roots';
import { fromDirectory } from '../src/sources/directory';
import { expectCode, nativeFixture, packedFixtures, tempDir } from './fixtures';

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
    assert.equal(memoryModeRefusal('linux'), null);
    const e = memoryModeRefusal('darwin');
    assert.equal(e?.code, 'E_USAGE');
    assert.match(e?.message ?? '', /^Memory mode does not exist on macOS: macOS has no memfd_create, and dyld loads a library only from a file with a path/);
    assert.match(e?.message ?? '', /mode: 'auto' \(the default\) or 'disk'/);
    assert.equal(runtimePlatform('darwin').mountTable, false);
    assert.equal(runtimePlatform('linux').mountTable, true);
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
    assert.match(e.message, /does not exist on macOS/);
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

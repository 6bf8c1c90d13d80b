/**
 * `bundle.provideAddons()`: a package's own require of its `.node` file,
 * served from the bundle after the libraries it needs — with the file absent
 * from the package, present there (the bundle's copy still wins), reached
 * through a package's `exports`, from ESM through createRequire, through a
 * direct process.dlopen, in memory mode, and undone. Each case runs in a
 * child of its own: hooks and loaded addons are per process.
 */
import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { spawnChild, type Caught } from './child';
import { nativeFixture, packedFixtures, tempDir } from './fixtures';

/** A package that requires its addon by a fixed relative path, as sharp and onnxruntime do; the file itself is left out unless `withAddon`. */
function fakePackage(withAddon: boolean): string {
  const dir = path.join(tempDir(), 'node_modules', 'demo-pkg');
  fs.mkdirSync(path.join(dir, 'build', 'Release'), { recursive: true });
  fs.writeFileSync(path.join(dir, 'package.json'), JSON.stringify({ name: 'demo-pkg', main: 'index.js', exports: { '.': './index.js', './addon.node': './build/Release/demo.node' } }));
  fs.writeFileSync(path.join(dir, 'index.js'), "module.exports = require('./build/Release/demo.node');\n");
  if (withAddon) fs.copyFileSync(nativeFixture('demo.node'), path.join(dir, 'build', 'Release', 'demo.node'));
  return dir;
}

const LIBS = ['libdemo_core.so', 'demo.node'];

interface Served {
  sum: number;
  version: string;
  mapped: string[];
  addons: { name: string; addon: boolean; from: string; path: string }[];
}

describe('bundle.provideAddons()', function () {
  this.timeout(60_000);

  it("serves a package's require of its missing .node from the bundle, after the library it needs", () => {
    const bundle = packedFixtures(LIBS);
    const pkg = fakePackage(false);
    const r = spawnChild(
      `const without = caught(() => require(P.pkg));
       const b = dl.openBundle({ source: dl.fromDirectory(P.bundle) });
       b.provideAddons();
       const demo = require(P.pkg);
       const again = require(P.pkg + '/build/Release/demo.node');
       const direct = b.addon('demo.node');
       return { without, sum: demo.add(2, 3), version: demo.version(), same: demo === again && demo === direct, mapped: demoMapped(),
         addons: b.explain().libraries.map(({ name, addon, from, path }) => ({ name, addon, from, path })) };`,
      { params: { bundle, pkg } },
    );
    const out = r.result as Served & { without: Caught<unknown>; same: boolean };
    assert.equal(r.status, 0, r.stderr);
    assert.equal(out.without.ok, false);
    assert.ok(!out.without.ok && /Cannot find module/.test(out.without.error.message));
    assert.equal(out.sum, 5);
    assert.equal(out.version, 'demo-core 1.0.0');
    assert.equal(out.same, true, 'one addon per process');
    // Both from the cache directory: libdemo_core.so (the dependency) and demo.node.
    assert.deepEqual(out.mapped.map((p) => path.basename(p)), ['demo.node', 'libdemo_core.so']);
    assert.ok(out.mapped.every((p) => !p.startsWith(pkg)));
    assert.deepEqual(
      out.addons.map(({ name, addon, from }) => ({ name, addon, from })),
      [
        { name: 'libdemo_core.so', addon: false, from: 'disk' },
        { name: 'demo.node', addon: true, from: 'disk' },
      ],
    );
  });

  it('serves the bundle’s copy even where the package has its own file (which alone could not load: its library is not on the system)', () => {
    const bundle = packedFixtures(LIBS);
    const pkg = fakePackage(true);
    const plain = spawnChild('return caught(() => require(P.pkg));', { params: { pkg } });
    const alone = plain.result as Caught<unknown>;
    assert.ok(!alone.ok && /libdemo_core\.so: cannot open shared object file/.test(alone.error.message), JSON.stringify(alone));

    const r = spawnChild(
      `dl.openBundle({ source: dl.fromDirectory(P.bundle) }).provideAddons();
       const demo = require(P.pkg);
       return { sum: demo.add(20, 22), mapped: demoMapped() };`,
      { params: { bundle, pkg } },
    );
    const out = r.result as Served;
    assert.equal(r.status, 0, r.stderr);
    assert.equal(out.sum, 42);
    assert.ok(!out.mapped.includes(path.join(pkg, 'build', 'Release', 'demo.node')), 'the package’s own copy was not opened');
  });

  it("follows a package's exports to a missing file, serves ESM through createRequire and a direct process.dlopen, and is undone", () => {
    const bundle = packedFixtures(LIBS);
    const pkg = fakePackage(false);
    const esm = path.join(path.dirname(path.dirname(pkg)), 'app.mjs');
    fs.writeFileSync(esm, "import { createRequire } from 'node:module';\nconst require = createRequire(import.meta.url);\nexport const demo = require('demo-pkg/addon.node');\n");
    const r = spawnChild(
      `const b = dl.openBundle({ source: dl.fromDirectory(P.bundle) });
       const undo = b.provideAddons();
       const { demo } = await import(P.esm);
       const m = { exports: {} };
       process.dlopen(m, '/nowhere/at/all/demo.node');
       undo();
       const after = caught(() => require(P.pkg));
       const afterDlopen = caught(() => process.dlopen({ exports: {} }, '/nowhere/at/all/demo.node'));
       return { esm: demo.add(1, 2), direct: m.exports.add(3, 4), same: m.exports === demo, after, afterDlopen };`,
      { params: { bundle, pkg, esm } },
    );
    const out = r.result as { esm: number; direct: number; same: boolean; after: Caught<unknown>; afterDlopen: Caught<unknown> };
    assert.equal(r.status, 0, r.stderr);
    assert.equal(out.esm, 3);
    assert.equal(out.direct, 7);
    assert.equal(out.same, true);
    assert.ok(!out.after.ok && /Cannot find module/.test(out.after.error.message), 'undone: the require fails as before');
    assert.ok(!out.afterDlopen.ok && /No such file|cannot open/.test(out.afterDlopen.error.message), 'undone: process.dlopen is Node’s again');
  });

  it('serves from memory files in memory mode, and leaves other .node files to Node', () => {
    const bundle = packedFixtures(LIBS);
    const pkg = fakePackage(false);
    const r = spawnChild(
      `const b = dl.openBundle({ source: dl.fromDirectory(P.bundle), mode: 'memory' });
       b.provideAddons();
       const demo = require(P.pkg);
       const other = caught(() => require('/nowhere/other.node'));
       return { sum: demo.add(2, 2), mapped: demoMapped(), memfds: mapped().filter((p) => p.startsWith('/memfd:')).sort(), other, report: b.explain() };`,
      { params: { bundle, pkg } },
    );
    const out = r.result as { sum: number; mapped: string[]; memfds: string[]; other: Caught<unknown>; report: { mode: string; libraries: { name: string; from: string; addon: boolean }[] } };
    assert.equal(r.status, 0, r.stderr);
    assert.equal(out.sum, 4);
    assert.equal(out.report.mode, 'memory');
    assert.deepEqual(out.mapped, [], 'nothing mapped from a file on disk');
    assert.deepEqual(out.memfds.filter((p) => /demo/.test(p)), ['/memfd:dlbundle:demo.node (deleted)', '/memfd:dlbundle:libdemo_core.so (deleted)']);
    assert.deepEqual(
      out.report.libraries.map((l) => [l.name, l.from, l.addon]),
      [
        ['libdemo_core.so', 'memory', false],
        ['demo.node', 'memory', true],
      ],
    );
    assert.ok(!out.other.ok && /Cannot find module '\/nowhere\/other.node'/.test(out.other.error.message));
  });

  it('refuses a bundle without .node files (E_USAGE) when it is called, not in a later require', () => {
    const bundle = packedFixtures(['libdemo_core.so']);
    const r = spawnChild('return caught(() => dl.openBundle({ source: dl.fromDirectory(P.bundle) }).provideAddons());', { params: { bundle } });
    const out = r.result as Caught<unknown>;
    assert.ok(!out.ok);
    assert.equal(out.error.code, 'E_USAGE');
    assert.match(out.error.message, /has no \.node file to provide/);
  });
});

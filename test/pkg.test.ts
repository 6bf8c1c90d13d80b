/**
 * An executable built by pkg (`@yao-pkg/pkg`) in its `--sea` mode, end to
 * end: a real application using `autoSource`, built offline by the pinned
 * pkg, copied alone into an empty directory, and run with a fresh HOME and
 * TMPDIR — cold, then warm.
 *
 * Inside such an executable the application's files are under `/snapshot/`,
 * a file system that only `readFileSync`, `statSync`, `readdirSync` and
 * `createReadStream` see (`openSync`, `copyFileSync` and `realpathSync`
 * fail there), and nothing in it can be dlopen'ed. pkg's `--sea` mode needs
 * Node ≥ 22 to build and to run; this machine's node is 20, so pkg runs on an
 * official Node binary fetched from the npm registry into .cache/node/
 * (scripts/fetch-node.js), and finds that same binary in a private pkg cache
 * (.cache/pkg-home/) instead of downloading one.
 */
import { strict as assert } from 'node:assert';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { SEA_FUSE } from '../src/build/sea-inject';
import { pack } from '../src/pack';
import { inPkgSnapshot, pkgArchiveIndex, pkgArchiveRange } from '../src/sources/pkg-snapshot';
import { DEMO_LIBS, hashFile, nativeFixture, REPO, rootEntries, tempDir } from './fixtures';

/** The Node the executables are built from (pkg's --sea mode needs ≥ 22). */
const NODE_VERSION = '24.22.3';
const PKG_TARGET = `node${NODE_VERSION}-${process.platform}-${process.arch}`;
const KOFFI_PACKAGE = `@koromix/koffi-${process.platform}-${process.arch}`;
/** What the application needs at run time, from this repository's node_modules: dlbundle's dependencies and theirs (not @types/node). */
const RUNTIME_PACKAGES = ['koffi', KOFFI_PACKAGE, 'debug', 'ms', 'xxhash-wasm'];

const { fetchNode } = require('../scripts/fetch-node.js') as { fetchNode(version: string): { node: string } };

/**
 * The application: the demo bundle through `autoSource` (argv[2] 'auto', the
 * default), or `fromDirectory` extracted by `await ready()` ('ready') or into
 * memory files ('memory'); 'koffi-first' requires koffi before dlbundle;
 * 'beside' takes the bundle from `native/` beside the executable, outside the
 * snapshot; 'broken' opens a bundle that lacks a blob, 'unlisted' one that
 * pkg was not told to pack. It prints one line of JSON: real native results,
 * explain(), where koffi.node is mapped from — or the error.
 */
const MAIN = `'use strict';
const fs = require('node:fs');
const path = require('node:path');
if (process.argv[2] === 'koffi-first') require('koffi');
const dl = require('dlbundle');

async function main(mode) {
  const base = mode === 'beside' ? path.dirname(process.execPath) : __dirname;
  const dir = path.join(base, mode === 'broken' || mode === 'unlisted' ? mode : 'native');
  const source = mode === 'ready' || mode === 'memory' ? dl.fromDirectory(dir) : dl.autoSource(dir);
  const bundle = dl.openBundle({ source, ...(mode === 'memory' ? { mode: 'memory' } : {}) });
  if (mode === 'ready') await bundle.ready();
  const app = bundle.library('libdemo_app.so', { compute: 'int app_compute(int x)', plugin: 'int app_call_plugin(int x)' });
  const compute = app.compute(5);
  const plugin = app.plugin(2);
  const addon = bundle.addon('demo.node');
  const maps = fs.readFileSync('/proc/self/maps', 'utf8').split('\\n').map((l) => l.split(/\\s+/).slice(5).join(' '));
  return {
    compute, plugin, addonAdd: addon.add(2, 3),
    // The application's own require('koffi') gets the koffi dlbundle loaded.
    koffiSame: require('koffi').load === dl.koffi().load,
    koffiMapped: [...new Set(maps.filter((p) => p.endsWith('/koffi.node')))],
    report: bundle.explain(),
  };
}
main(process.argv[2] || 'auto').then(
  (out) => console.log(JSON.stringify(out)),
  (e) => { console.log(JSON.stringify({ error: { code: e.code, message: e.message } })); process.exitCode = 1; },
);
`;

interface Output {
  compute: number;
  plugin: number;
  addonAdd: number;
  koffiSame: boolean;
  koffiMapped: string[];
  report: {
    source: { kind: string; location: string; reason: string | null };
    mode: string;
    dir: string | null;
    reused: boolean | null;
    libraries: { name: string; path: string; from: string }[];
  };
  error?: { code: string; message: string };
}

/**
 * A HOME in which pkg finds Node `version` already downloaded and extracted,
 * so that it never goes to nodejs.org. pkg's --sea mode (lib-es5/sea.js)
 * looks in `<home>/.pkg-cache/sea/` — the home directory, not PKG_CACHE_PATH —
 * for `node-v<version>-<os>-<arch>.tar.gz` beside a `.ok` marker (downloaded
 * and checksummed) and `node-v<version>-<os>-<arch>/bin/node` beside its own
 * `.ok` (extracted); with both markers it reads neither archive nor checksum,
 * so the archive is an empty stand-in.
 */
function seedPkgHome(node: string): string {
  const home = path.join(REPO, '.cache', 'pkg-home');
  const base = `node-v${NODE_VERSION}-${process.platform}-${process.arch}`;
  const sea = path.join(home, '.pkg-cache', 'sea');
  const binary = path.join(sea, base, 'bin', 'node');
  fs.mkdirSync(path.dirname(binary), { recursive: true });
  if (!fs.existsSync(binary)) {
    // The same file system as .cache/node: a link, not another 120 MB.
    const temp = `${binary}.${process.pid}`;
    try {
      fs.linkSync(node, temp);
    } catch {
      fs.copyFileSync(node, temp);
    }
    fs.renameSync(temp, binary);
  }
  for (const f of [`${binary}.ok`, path.join(sea, `${base}.tar.gz`), path.join(sea, `${base}.tar.gz.ok`)]) fs.writeFileSync(f, '');
  return home;
}

/**
 * An application directory as an npm install leaves it — dlbundle's published
 * files and its run-time dependencies copied into node_modules (pkg follows
 * no link out of the application) — with the demo bundle in `native/`, the
 * same bundle lacking libdemo_core.so in `broken/`, and pkg's assets listed
 * in package.json: pkg packs what code requires by name, not the files a
 * program reads or koffi's loader requires by a computed name.
 */
function makeApp(koffiAsset: boolean): string {
  const app = tempDir('dlbundle-pkg-app-');
  pack(DEMO_LIBS.map(nativeFixture), { name: 'demo', out: path.join(app, 'native') });
  fs.cpSync(path.join(app, 'native'), path.join(app, 'broken'), { recursive: true });
  fs.rmSync(path.join(app, 'broken', 'linux-x64-gnu', 'libdemo_core.so'));
  const ownPackage = JSON.parse(fs.readFileSync(path.join(REPO, 'package.json'), 'utf8')) as { files: string[] };
  const dlbundle = path.join(app, 'node_modules', 'dlbundle');
  fs.mkdirSync(dlbundle, { recursive: true });
  fs.copyFileSync(path.join(REPO, 'package.json'), path.join(dlbundle, 'package.json'));
  for (const entry of ownPackage.files.filter((f) => !f.startsWith('!'))) {
    fs.cpSync(path.join(REPO, entry), path.join(dlbundle, entry), { recursive: true, filter: (f) => !f.endsWith('.map') });
  }
  for (const name of RUNTIME_PACKAGES) fs.cpSync(path.join(REPO, 'node_modules', name), path.join(app, 'node_modules', name), { recursive: true, dereference: true });
  const assets = ['native/**/*', 'broken/**/*', ...(koffiAsset ? [`node_modules/${KOFFI_PACKAGE}/**/koffi.node`] : [])];
  fs.writeFileSync(path.join(app, 'package.json'), JSON.stringify({ name: 'demo-pkg', version: '1.0.0', bin: 'main.js', pkg: { assets } }, null, 2));
  fs.writeFileSync(path.join(app, 'main.js'), MAIN);
  return app;
}

/** Builds `app` with pkg --sea (offline, on Node `node`, in the seeded HOME), copies the executable alone into an empty directory, and returns its path. */
function buildAlone(app: string, node: string, home: string): string {
  const pkgDir = path.dirname(require.resolve('@yao-pkg/pkg/package.json'));
  const built = path.join(tempDir(), 'demo-pkg');
  const r = spawnSync(node, [path.join(pkgDir, 'lib-es5', 'bin.js'), app, '--sea', '--targets', PKG_TARGET, '--output', built], {
    cwd: app,
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: home },
    encoding: 'utf8',
    timeout: 300_000,
  });
  assert.equal(r.status, 0, `pkg failed:\n${r.stderr}\n${r.stdout}`);
  assert.doesNotMatch(r.stdout, /Downloading/, 'pkg downloaded nothing');
  const exe = path.join(tempDir('dlbundle-empty-'), 'demo-pkg');
  fs.copyFileSync(built, exe);
  fs.chmodSync(exe, 0o755);
  return exe;
}

interface Run {
  status: number | null;
  out: Output;
  stderr: string;
}

/** Runs `exe` in its otherwise empty directory with only PATH, HOME, TMPDIR and `extra` in its environment. */
function run(exe: string, args: readonly string[], home: string, tmp: string, extra: NodeJS.ProcessEnv = {}): Run {
  const r = spawnSync(exe, args, { cwd: path.dirname(exe), env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: home, TMPDIR: tmp, ...extra }, encoding: 'utf8', timeout: 60_000 });
  const last = r.stdout.trim().split('\n').pop() ?? '';
  assert.ok(last.startsWith('{'), `${exe} ${args.join(' ')} printed no result (status ${r.status}):\n${r.stderr}\n${r.stdout}`);
  return { status: r.status, out: JSON.parse(last) as Output, stderr: r.stderr };
}

/** {@link run}, which must succeed and print nothing on stderr. */
function runClean(exe: string, args: readonly string[], home: string, tmp: string): Output {
  const r = run(exe, args, home, tmp);
  assert.equal(r.status, 0, `${exe} ${args.join(' ')} failed: ${JSON.stringify(r.out.error)}\n${r.stderr}`);
  assert.equal(r.stderr, '', `${exe} ${args.join(' ')} printed on stderr`);
  return r.out;
}

function assertResults(out: Output, options: { plugin: boolean } = { plugin: true }): void {
  assert.equal(out.compute, 1011, 'app_compute(5) through codec and core');
  if (options.plugin) assert.equal(out.plugin, 13, 'app_call_plugin(2) finds the plugin beside libdemo_app.so');
  assert.equal(out.addonAdd, 5, 'demo.node add(2, 3) calls into libdemo_core.so');
  assert.equal(out.koffiSame, true, "the application's require('koffi') is dlbundle's koffi");
}

function markerInode(dir: string): bigint {
  return fs.statSync(path.join(dir, '.dlbundle-complete'), { bigint: true }).ino;
}

/** The one koffi-native bundle directory in `root`. */
function koffiDirIn(root: string): string {
  const found = rootEntries(root).filter((d) => d.startsWith('koffi-native-'));
  assert.equal(found.length, 1, JSON.stringify(rootEntries(root)));
  return path.join(root, found[0] as string);
}

describe('pkg (@yao-pkg/pkg --sea) executables', function () {
  this.timeout(600_000);

  it("no file of dlbundle's package holds Node's SEA fuse, which would make pkg's injection find it twice", () => {
    const ownPackage = JSON.parse(fs.readFileSync(path.join(REPO, 'package.json'), 'utf8')) as { files: string[] };
    const files: string[] = [];
    const walk = (p: string): void => {
      if (fs.statSync(p).isDirectory()) for (const e of fs.readdirSync(p)) walk(path.join(p, e));
      else files.push(p);
    };
    for (const entry of ownPackage.files.filter((f) => !f.startsWith('!'))) walk(path.join(REPO, entry));
    assert.ok(files.some((f) => f.endsWith('README.md')) && files.some((f) => f.endsWith('runtime.js')), `${files.length} files`);
    for (const f of files) assert.equal(fs.readFileSync(f).includes(SEA_FUSE), false, `${f} holds ${SEA_FUSE}`);
  });

  it("pkg's archive index: an entry is a range of the archive, found through links, and nothing when compressed or out of bounds", () => {
    const index = pkgArchiveIndex(JSON.stringify({ offsets: { '/app/a.so': [10, 5], '/app/big.so': [0, 100] }, symlinks: { '/app/link.so': '/app/hop.so', '/app/hop.so': '/app/a.so', '/app/loop': '/app/loop' } }));
    assert.ok(index !== null);
    assert.deepEqual(pkgArchiveRange(index, '/snapshot/app/a.so', 50), { offset: 10, length: 5 });
    assert.deepEqual(pkgArchiveRange(index, '/snapshot/app/link.so', 50), { offset: 10, length: 5 }, 'two links followed');
    assert.equal(pkgArchiveRange(index, '/snapshot/app/big.so', 50), null, 'past the end of the archive');
    assert.equal(pkgArchiveRange(index, '/snapshot/app/none.so', 50), null);
    assert.equal(pkgArchiveRange(index, '/snapshot/app/loop', 50), null, 'a link to itself');
    assert.equal(pkgArchiveRange(index, '/snapshot/app/toString', 50), null, 'no inherited property is an entry');
    assert.equal(pkgArchiveIndex(JSON.stringify({ offsets: {}, compression: 2 })), null, 'compressed: files are read whole');
    assert.equal(pkgArchiveIndex('{"entrypoint": "/app/main.js"}'), null, 'another layout');
    assert.equal(pkgArchiveIndex('not json'), null);
  });

  it('a path under /snapshot is in the snapshot only in a pkg executable', () => {
    assert.equal(inPkgSnapshot('/snapshot/app/native'), false, 'plain node');
    const processWithPkg = process as { pkg?: unknown };
    processWithPkg.pkg = { entrypoint: '/snapshot/app/main.js' };
    try {
      assert.equal(inPkgSnapshot('/snapshot/app/native'), true);
      assert.equal(inPkgSnapshot('/snapshot'), true);
      assert.equal(inPkgSnapshot('/snapshots/app'), false);
      assert.equal(inPkgSnapshot('/tmp/app/native'), false);
    } finally {
      delete processWithPkg.pkg;
    }
  });

  describe('an application built with koffi.node among its assets', () => {
    let exe = '';
    let nativeDir = '';
    before(function () {
      this.timeout(600_000);
      const { node } = fetchNode(NODE_VERSION);
      const app = makeApp(true);
      nativeDir = path.join(app, 'native', 'linux-x64-gnu');
      exe = buildAlone(app, node, seedPkgHome(node));
    });

    it('runs alone: autoSource reads the bundle from the snapshot, extracts it and koffi.node once into the fresh TMPDIR, reuses them next time, and prints nothing on stderr', () => {
      const alone = path.dirname(exe);
      assert.deepEqual(fs.readdirSync(alone), ['demo-pkg'], 'nothing but the executable');
      const home = tempDir();
      const tmp = tempDir();

      const cold = runClean(exe, [], home, tmp);
      assertResults(cold);
      assert.equal(cold.report.source.kind, 'directory');
      assert.match(cold.report.source.location, /^\/snapshot\/.*\/native$/);
      assert.match(cold.report.source.reason ?? '', /inside this pkg executable's snapshot, where files cannot be opened or loaded/);
      assert.equal(cold.report.reused, false);
      const dir = cold.report.dir as string;
      const root = path.dirname(dir);
      assert.equal(path.dirname(root), tmp, `extracted under the fresh TMPDIR: ${dir}`);
      // koffi.node came out of the snapshot through the same cache, and is the only one mapped.
      const koffiDir = koffiDirIn(root);
      assert.deepEqual(cold.koffiMapped, [path.join(koffiDir, 'koffi.node')]);
      assert.equal(fs.existsSync(path.join(home, '.cache', 'pkg')), false, "pkg's own copy of native modules (~/.cache/pkg) is not used");
      const before = { bundle: markerInode(dir), koffi: markerInode(koffiDir) };

      const warm = runClean(exe, [], home, tmp);
      assertResults(warm);
      assert.equal(warm.report.reused, true);
      assert.equal(warm.report.dir, dir);
      assert.deepEqual(warm.koffiMapped, cold.koffiMapped);
      assert.deepEqual({ bundle: markerInode(dir), koffi: markerInode(koffiDir) }, before, 'nothing was extracted again');
      assert.deepEqual(fs.readdirSync(alone), ['demo-pkg'], 'nothing written beside the executable');
    });

    it("koffi required by the application before dlbundle: dlbundle uses that module (pkg's copy), and no other koffi.node is mapped", () => {
      const home = tempDir();
      const out = runClean(exe, ['koffi-first'], home, tempDir());
      assertResults(out);
      assert.equal(out.koffiMapped.length, 1, JSON.stringify(out.koffiMapped));
      assert.ok((out.koffiMapped[0] as string).startsWith(path.join(home, '.cache', 'pkg') + path.sep), `pkg's copy: ${out.koffiMapped[0]}`);
      assert.deepEqual(rootEntries(path.dirname(out.report.dir as string)).filter((d) => d.startsWith('koffi-native-')), [], 'koffi.node was not placed a second time');
    });

    it('a bundle beside the executable, outside the snapshot, is a plain directory (not taken for SEA assets)', () => {
      const alone = tempDir('dlbundle-beside-');
      fs.copyFileSync(exe, path.join(alone, 'demo-pkg'));
      fs.chmodSync(path.join(alone, 'demo-pkg'), 0o755);
      fs.cpSync(path.dirname(nativeDir), path.join(alone, 'native'), { recursive: true });
      const out = runClean(path.join(alone, 'demo-pkg'), ['beside'], tempDir(), tempDir());
      assertResults(out);
      assert.deepEqual(out.report.source, { kind: 'directory', location: path.join(alone, 'native'), reason: `${JSON.stringify(path.join(alone, 'native'))} is a plain directory` });
    });

    it('fromDirectory extracted by `await ready()`: every file in place from the archive, byte for byte the packed one', () => {
      const r = run(exe, ['ready'], tempDir(), tempDir(), { DEBUG: 'dlbundle:pkg' });
      assert.equal(r.status, 0, JSON.stringify(r.out.error));
      assertResults(r.out);
      assert.equal(r.out.report.reused, false);
      const dir = r.out.report.dir as string;
      for (const name of DEMO_LIBS) {
        assert.equal(hashFile(path.join(dir, name)), hashFile(path.join(nativeDir, name)), name);
        // Views of the executable's mapped archive: no copy in memory, however large the library.
        assert.match(r.stderr, new RegExp(`/native/linux-x64-gnu/${name.replace(/\./g, '\\.')}: \\d+ bytes read in place from the archive`));
      }
      assert.doesNotMatch(r.stderr, /read whole/);
    });

    it('memory mode: the libraries come from memory files filled from the snapshot', () => {
      const out = runClean(exe, ['memory'], tempDir(), tempDir());
      assertResults(out, { plugin: false });
      assert.equal(out.plugin, -2, 'as from any memory file: libdemo_app.so looks for its plugin beside itself, in /proc/self/fd');
      assert.equal(out.report.mode, 'memory');
      assert.ok(out.report.libraries.length > 0);
      for (const lib of out.report.libraries) assert.equal(lib.from, 'memory', JSON.stringify(lib));
      // koffi.node itself still goes to a directory (memory files are made through koffi).
      const root = path.dirname(path.dirname(out.koffiMapped[0] as string));
      assert.deepEqual(rootEntries(root).filter((d) => !d.startsWith('koffi-native-') && !d.startsWith('.')), [], 'no bundle directory was written');
    });

    it('a bundle whose blob is missing from the snapshot stops with E_MISSING_BLOB naming the file', () => {
      const r = run(exe, ['broken'], tempDir(), tempDir());
      assert.equal(r.status, 1);
      assert.equal(r.out.error?.code, 'E_MISSING_BLOB');
      assert.match(r.out.error?.message ?? '', /lists "libdemo_core\.so" for linux-x64-gnu, but "\/snapshot\/.*\/broken\/linux-x64-gnu\/libdemo_core\.so" does not exist/);
    });

    it("a bundle directory that is not among pkg's assets stops with E_IO saying to list it", () => {
      const r = run(exe, ['unlisted'], tempDir(), tempDir());
      assert.equal(r.status, 1);
      assert.equal(r.out.error?.code, 'E_IO');
      assert.match(r.out.error?.message ?? '', /"\/snapshot\/.*\/unlisted\/dlbundle\.json" does not exist[^\n]*\nList the bundle directory among pkg's assets/);
    });
  });

  it('an application built without koffi.node among its assets stops at its first native call with E_MISSING_BLOB saying what to add', function () {
    this.timeout(600_000);
    const { node } = fetchNode(NODE_VERSION);
    const exe = buildAlone(makeApp(false), node, seedPkgHome(node));
    const r = run(exe, [], tempDir(), tempDir());
    assert.equal(r.status, 1);
    assert.equal(r.out.error?.code, 'E_MISSING_BLOB');
    assert.match(r.out.error?.message ?? '', /koffi's native module ".*\/koffi\.node" is not in this pkg executable/);
    assert.ok(r.out.error?.message.includes(`"node_modules/${KOFFI_PACKAGE}/**/koffi.node"`), r.out.error?.message);
  });
});

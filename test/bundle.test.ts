/**
 * openBundle end to end. Everything that loads a library runs in a fresh
 * child process (test/child.ts) that requires dist/, and reports what it got
 * back from real native calls, what explain() said and what /proc/self/maps
 * holds; this process then checks the files on disk.
 */
import { strict as assert } from 'node:assert';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { BundleReport } from '../src/bundle';
import { bundleDirName, COMPLETE_MARKER, materialize } from '../src/cache';
import { runSync, syncIo } from '../src/io';
import { canonicalFileList, type Manifest, type ManifestVariant } from '../src/manifest';
import { pack } from '../src/pack';
import { fromDirectory } from '../src/sources/directory';
import { ldSoCacheLookup, resolveSystemLibrary } from '../src/system-libs';
import { childResult, runChild, spawnChildAsync, type Caught, type ErrorFacts } from './child';
import { identities, markerFileList, NATIVE_BUILD, nativeFixture, REPO, rootEntries, tempDir } from './fixtures';

const KEY = 'linux-x64-gnu';
const FOREIGN_UID = 65534; // nobody
const CLOSURE_OF_APP = ['libdemo_core.so', 'libdemo_codec.so.1.2.3', 'libdemo_app.so'];
// The whole demo set, with the 64 MiB library; most tests use the small set, which copies fast.
const FULL_FILES = ['libdemo_core.so', 'libdemo_codec.so.1.2.3', 'libdemo_app.so', 'libdemo_plugin.so', 'libdemo_accel.so', 'libdemo_big.so', 'demo.node'];
const SMALL_FILES = ['libdemo_core.so', 'libdemo_codec.so.1.2.3', 'libdemo_app.so', 'libdemo_plugin.so', 'libdemo_accel.so'];

interface Packed {
  readonly dir: string;
  readonly manifest: Manifest;
  readonly variant: ManifestVariant;
  /** demo-<digest> */
  readonly dirName: string;
}

let full: Packed;
let small: Packed;

function packInto(files: readonly string[]): Packed {
  const dir = path.join(tempDir(), 'bundle');
  const r = pack(files.map(nativeFixture), { name: 'demo', out: dir });
  return { dir, manifest: r.manifest, variant: r.variant, dirName: bundleDirName('demo', r.variant) };
}

before(function () {
  this.timeout(60_000);
  full = packInto(FULL_FILES);
  small = packInto(SMALL_FILES);
});

/** A cache root path in a fresh temp dir, not created yet. */
function freshCache(): string {
  return path.join(tempDir(), 'cache');
}

function bundleCopy(of: Packed): string {
  const copy = path.join(tempDir(), 'bundle');
  fs.cpSync(of.dir, copy, { recursive: true });
  return copy;
}

/** Extracts `of` into `root` in this process (cache only, nothing is loaded here). */
function materializeHere(of: Packed, root: string): string {
  return runSync(materialize(syncIo, { bundleName: 'demo', variantKey: KEY, variant: of.variant, source: fromDirectory(of.dir), roots: [root], verify: 'size' })).dir;
}

function inDir(dir: string, names: readonly string[]): string[] {
  return names.map((n) => path.join(dir, n)).sort();
}

function errorOf<T>(c: Caught<T>): ErrorFacts {
  if (c.ok) assert.fail(`expected an error, got ${JSON.stringify(c.value)}`);
  return c.error;
}

function flipByte(file: string, at: number): void {
  const b = fs.readFileSync(file);
  b[at] = (b[at] ?? 0) ^ 0xff;
  fs.writeFileSync(file, b);
}

function isRoot(): boolean {
  return process.geteuid?.() === 0;
}

// The usual snippet: open the bundle at P.bundle with P.cache, compute through libdemo_app.so.
const OPEN_APP = `
  const bundle = dl.openBundle({ source: dl.fromDirectory(P.bundle), cacheDir: P.cache, ...(P.verify ? { verify: P.verify } : {}), ...(P.mode ? { mode: P.mode } : {}) });
  const app = bundle.library('libdemo_app.so', {
    compute: 'int app_compute(int x)',
    callPlugin: 'int app_call_plugin(int x)',
    pluginError: 'const char *app_plugin_error(void)',
  });
`;

interface AppRun {
  readonly value: number;
  readonly report: BundleReport;
  readonly dir: string | null;
  readonly maps: string[];
  readonly roundTrip: boolean;
}

const COMPUTE_AND_REPORT = `
  ${OPEN_APP}
  const value = app.compute(5);
  const report = bundle.explain();
  return { value, report, dir: bundle.dir, maps: demoMapped(), roundTrip: require('node:util').isDeepStrictEqual(JSON.parse(JSON.stringify(report)), report) };
`;

describe('openBundle: cold and warm starts', () => {
  let cache: string;
  let cold: AppRun;

  before(() => {
    cache = freshCache();
    cold = runChild<AppRun>(COMPUTE_AND_REPORT, { params: { bundle: full.dir, cache } });
  });

  it('a cold start computes through the bundled copies: app_compute(5) = 1011', () => {
    assert.equal(cold.value, 1011);
  });

  it('a cold start materializes <root>/demo-<digest>/ with every file byte for byte, mode 0700, the soname link and the marker', () => {
    const dir = path.join(cache, full.dirName);
    assert.equal(cold.dir, dir);
    assert.equal(fs.statSync(cache).mode & 0o777, 0o700);
    assert.equal(fs.statSync(dir).mode & 0o777, 0o700);
    assert.deepEqual(fs.readdirSync(dir).sort(), [COMPLETE_MARKER, ...FULL_FILES, 'libdemo_codec.so.1'].sort());
    for (const name of FULL_FILES) {
      const st = fs.lstatSync(path.join(dir, name));
      assert.ok(st.isFile(), name);
      assert.equal(st.mode & 0o777, 0o700, name);
      assert.ok(fs.readFileSync(path.join(dir, name)).equals(fs.readFileSync(path.join(full.dir, KEY, name))), `${name} is byte-identical to its blob`);
    }
    assert.equal(fs.readlinkSync(path.join(dir, 'libdemo_codec.so.1')), 'libdemo_codec.so.1.2.3');
    assert.equal(markerFileList(dir), canonicalFileList(full.variant.files));
    assert.deepEqual(rootEntries(cache), [full.dirName], 'no staging leftovers in the root');
  });

  it('explain() after a cold start: reused false, root, dir, variant, and exactly core, codec, app with size, hash, neededBy and timing', () => {
    const r = cold.report;
    const dir = path.join(cache, full.dirName);
    assert.equal(r.reused, false);
    assert.equal(r.root, cache);
    assert.equal(r.dir, dir);
    assert.equal(r.variant, KEY);
    assert.match(r.variantReason ?? '', /linux-x64-gnu/);
    assert.deepEqual(r.source, { kind: 'directory', location: full.dir, reason: null });
    assert.deepEqual(r.fallbacks, []);
    assert.deepEqual(r.libraries.map((l) => l.name), CLOSURE_OF_APP);
    for (const lib of r.libraries) {
      const file = full.variant.files.find((f) => f.name === lib.name);
      assert.ok(file);
      assert.equal(lib.path, path.join(dir, lib.name));
      assert.equal(lib.size, file.size);
      assert.equal(lib.xxh64, file.xxh64);
      assert.ok(Number.isFinite(lib.ms) && lib.ms >= 0, `${lib.name} ms ${lib.ms}`);
    }
    const neededBy = Object.fromEntries(r.libraries.map((l) => [l.name, [...l.neededBy].sort()]));
    assert.deepEqual(neededBy, {
      'libdemo_core.so': ['libdemo_app.so', 'libdemo_codec.so.1.2.3'],
      'libdemo_codec.so.1.2.3': ['libdemo_app.so'],
      'libdemo_app.so': [],
    });
  });

  it('explain() is a plain JSON-serialisable object (a JSON round trip gives it back unchanged)', () => {
    assert.equal(cold.roundTrip, true);
  });

  it('a warm start in a second process reuses the directory: reused true, no file rewritten (same inodes and mtimes)', () => {
    const dir = path.join(cache, full.dirName);
    const before = identities(dir);
    const warm = runChild<AppRun>(COMPUTE_AND_REPORT, { params: { bundle: full.dir, cache } });
    assert.equal(warm.value, 1011);
    assert.equal(warm.report.reused, true);
    assert.equal(warm.report.dir, dir);
    assert.deepEqual(warm.report.libraries.map((l) => l.path), CLOSURE_OF_APP.map((n) => path.join(dir, n)));
    assert.deepEqual(identities(dir), before);
    assert.deepEqual(rootEntries(cache), [full.dirName]);
  });
});

describe('openBundle: what gets loaded, and from where', () => {
  it('core, codec and app are mapped from the bundle directory (not build/Release); app finds the plugin beside itself, in the bundle directory', () => {
    const r = runChild<{ dir: string; beforeCall: string[]; value: number; afterCall: string[]; withoutPlugin: number; pluginError: string | null }>(
      `${OPEN_APP}
       app.compute(1);
       const beforeCall = demoMapped();
       const value = app.callPlugin(2);
       const afterCall = demoMapped();
       // Proof of where app looks: without the plugin in the bundle directory the call fails, naming that directory.
       fs.rmSync(path.join(bundle.dir, 'libdemo_plugin.so'));
       const withoutPlugin = app.callPlugin(2);
       return { dir: bundle.dir, beforeCall, value, afterCall, withoutPlugin, pluginError: app.pluginError() };`,
      { params: { bundle: small.dir, cache: freshCache() } },
    );
    assert.deepEqual(r.beforeCall, inDir(r.dir, CLOSURE_OF_APP), 'the plugin is not loaded before the call');
    assert.equal(r.value, 13);
    // app_call_plugin dlclose()s the plugin before it returns, so it is not mapped afterwards either.
    assert.deepEqual(r.afterCall, inDir(r.dir, CLOSURE_OF_APP));
    assert.ok(r.afterCall.every((p) => !p.startsWith(NATIVE_BUILD)));
    assert.equal(r.withoutPlugin, -2, 'dlopen of <bundle dir>/libdemo_plugin.so failed');
    assert.ok((r.pluginError ?? '').includes(path.join(r.dir, 'libdemo_plugin.so')), String(r.pluginError));
  });

  it('only the closure is loaded: touching core maps core alone; accel, plugin and big are never mapped unless asked for', () => {
    const r = runChild<{ dir: string; version: string; add: number; afterCore: string[]; afterApp: string[] }>(
      `const bundle = dl.openBundle({ source: dl.fromDirectory(P.bundle), cacheDir: P.cache });
       const core = bundle.library('libdemo_core.so', { add: 'int add(int a, int b)', version: 'const char *demo_version(void)' });
       const app = bundle.library('libdemo_app.so', { compute: 'int app_compute(int x)' });
       const accel = bundle.library('libdemo_accel.so', { run: 'int accel_run(int x)' });
       const big = bundle.library('libdemo_big.so', { check: 'int big_check(void)' });
       const add = core.add(2, 3);
       const version = core.version();
       const afterCore = demoMapped();
       app.compute(1);
       return { dir: bundle.dir, add, version, afterCore, afterApp: demoMapped() };`,
      { params: { bundle: full.dir, cache: freshCache() } },
    );
    assert.equal(r.add, 5);
    assert.equal(r.version, 'demo-core 1.0.0');
    assert.deepEqual(r.afterCore, inDir(r.dir, ['libdemo_core.so']));
    assert.deepEqual(r.afterApp, inDir(r.dir, CLOSURE_OF_APP));
  });

  it('the 64 MiB library loads when asked for, after core', () => {
    const r = runChild<{ dir: string; check: number; maps: string[]; names: string[] }>(
      `const bundle = dl.openBundle({ source: dl.fromDirectory(P.bundle), cacheDir: P.cache });
       const big = bundle.library('libdemo_big.so', { check: 'int big_check(void)' });
       const check = big.check();
       return { dir: bundle.dir, check, maps: demoMapped(), names: bundle.explain().libraries.map((l) => l.name) };`,
      { params: { bundle: full.dir, cache: freshCache() } },
    );
    assert.equal(r.check, 4);
    assert.deepEqual(r.maps, inDir(r.dir, ['libdemo_core.so', 'libdemo_big.so']));
    assert.deepEqual(r.names, ['libdemo_core.so', 'libdemo_big.so']);
  });

  it('a dependency that is neither bundled nor installed: E_MISSING_DEP naming it and the library, checked before dlopen', () => {
    const r = runChild<{ result: Caught<number>; maps: string[]; coreAfter: number; libraries: string[] }>(
      `const bundle = dl.openBundle({ source: dl.fromDirectory(P.bundle), cacheDir: P.cache });
       const accel = bundle.library('libdemo_accel.so', { run: 'int accel_run(int x)' });
       const core = bundle.library('libdemo_core.so', { add: 'int add(int a, int b)' });
       const result = caught(() => accel.run(3));
       const maps = demoMapped();
       return { result, maps, coreAfter: core.add(1, 1), libraries: bundle.explain().libraries.map((l) => l.name) };`,
      { params: { bundle: small.dir, cache: freshCache() } },
    );
    const e = errorOf(r.result);
    assert.equal(e.name, 'DlbundleError');
    assert.equal(e.code, 'E_MISSING_DEP');
    assert.equal(e.dependency, 'libdemo_gpu_runtime.so.1');
    assert.equal(e.file, 'libdemo_accel.so');
    assert.match(e.message, /libdemo_gpu_runtime\.so\.1/);
    assert.match(e.message, /optional\(\)|Install/);
    assert.deepEqual(r.maps, [], 'libdemo_accel.so was never dlopened');
    assert.equal(r.coreAfter, 2, 'the bundle still works for other libraries');
    assert.deepEqual(r.libraries, ['libdemo_core.so']);
  });

  it('the same library loads once its dependency is on LD_LIBRARY_PATH (the check agrees with the dynamic linker)', () => {
    const libs = tempDir();
    fs.copyFileSync(nativeFixture('libdemo_gpu_runtime.so.1'), path.join(libs, 'libdemo_gpu_runtime.so.1'));
    const r = runChild<{ dir: string; value: number; maps: string[] }>(
      `const bundle = dl.openBundle({ source: dl.fromDirectory(P.bundle), cacheDir: P.cache });
       const accel = bundle.library('libdemo_accel.so', { run: 'int accel_run(int x)' });
       const value = accel.run(3);
       return { dir: bundle.dir, value, maps: demoMapped() };`,
      { params: { bundle: small.dir, cache: freshCache() }, env: { LD_LIBRARY_PATH: libs } },
    );
    assert.equal(r.value, 10);
    assert.deepEqual(r.maps, [path.join(r.dir, 'libdemo_accel.so'), path.join(libs, 'libdemo_gpu_runtime.so.1')].sort());
  });

  it('LD_LIBRARY_PATH set after the process started does not help (ld.so read it at start-up): still E_MISSING_DEP, nothing mapped', () => {
    const libs = tempDir();
    fs.copyFileSync(nativeFixture('libdemo_gpu_runtime.so.1'), path.join(libs, 'libdemo_gpu_runtime.so.1'));
    const r = runChild<{ result: Caught<number>; maps: string[] }>(
      `process.env.LD_LIBRARY_PATH = P.libs;
       const bundle = dl.openBundle({ source: dl.fromDirectory(P.bundle), cacheDir: P.cache });
       const accel = bundle.library('libdemo_accel.so', { run: 'int accel_run(int x)' });
       return { result: caught(() => accel.run(3)), maps: demoMapped() };`,
      { params: { bundle: small.dir, cache: freshCache(), libs } },
    );
    const e = errorOf(r.result);
    assert.equal(e.code, 'E_MISSING_DEP');
    assert.equal(e.dependency, 'libdemo_gpu_runtime.so.1');
    assert.deepEqual(r.maps, []);
  });

  it('one load only: two bundles, a second module instance and a copied dist in one process map each library once, from one path', () => {
    const cache = freshCache();
    const otherCache = freshCache();
    const distCopy = path.join(tempDir(), 'dist');
    fs.cpSync(path.join(REPO, 'dist'), distCopy, { recursive: true });
    const r = runChild<{ values: number[]; distinct: boolean[]; paths: string[][]; dirs: (string | null)[]; maps: string[] }>(
      `const dist = P.dist;
       const open = (lib, cacheDir) => {
         const bundle = lib.openBundle({ source: lib.fromDirectory(P.bundle), cacheDir });
         return { bundle, app: bundle.library('libdemo_app.so', { compute: 'int app_compute(int x)' }) };
       };
       const a = open(dl, P.cache);
       const b = open(dl, P.cache);
       // A second instance of every dist module, as with two copies of dlbundle in node_modules.
       for (const k of Object.keys(require.cache)) if (k.startsWith(dist + path.sep)) delete require.cache[k];
       const dl2 = require(path.join(dist, 'index.js'));
       const c = open(dl2, P.cache);
       // A copied dist (resolving its dependencies through NODE_PATH), with its own cache directory.
       const dl3 = require(path.join(P.distCopy, 'index.js'));
       const d = open(dl3, P.otherCache);
       const all = [a, b, c, d];
       const values = all.map((x, i) => x.app.compute(i));
       return {
         values,
         distinct: [dl2 !== dl, dl3 !== dl && dl3 !== dl2, dl2.openBundle !== dl.openBundle],
         paths: all.map((x) => x.bundle.explain().libraries.map((l) => l.path)),
         dirs: all.map((x) => x.bundle.dir),
         maps: demoMapped(),
       };`,
      {
        params: { bundle: small.dir, cache, otherCache, distCopy, dist: path.join(REPO, 'dist') },
        env: { NODE_PATH: path.join(REPO, 'node_modules') },
      },
    );
    assert.deepEqual(r.values, [1001, 1003, 1005, 1007]);
    assert.deepEqual(r.distinct, [true, true, true]);
    const dir = path.join(cache, small.dirName);
    const expected = CLOSURE_OF_APP.map((n) => path.join(dir, n));
    for (const p of r.paths) assert.deepEqual(p, expected);
    assert.deepEqual(r.maps, [...expected].sort(), 'each library mapped once, from the first load');
    // The copy with its own cache directory materialized there, but uses the libraries already loaded.
    assert.equal(r.dirs[3], path.join(otherCache, small.dirName));
  });

  // LibraryReport.ms is the time this bundle's own dlopen took: none, for a library another bundle loaded.
  it('a bundle that reuses libraries another bundle loaded reports ms 0 for them (no dlopen of its own)', () => {
    const r = runChild<{ first: number[]; second: number[] }>(
      `const open = () => dl.openBundle({ source: dl.fromDirectory(P.bundle), cacheDir: P.cache });
       const a = open();
       const b = open();
       a.library('libdemo_app.so', { compute: 'int app_compute(int x)' }).compute(1);
       b.library('libdemo_app.so', { compute: 'int app_compute(int x)' }).compute(1);
       return { first: a.explain().libraries.map((l) => l.ms), second: b.explain().libraries.map((l) => l.ms) };`,
      { params: { bundle: small.dir, cache: freshCache() } },
    );
    assert.ok(r.first.every((ms) => ms > 0), JSON.stringify(r.first));
    assert.deepEqual(r.second, [0, 0, 0], `the second bundle reports the first one's dlopen times: ${JSON.stringify(r.second)}`);
  });
});

describe('openBundle: laziness and ready()', () => {
  it('openBundle and library() do nothing: no directory, no manifest read, no koffi; the first property access does it all', () => {
    const cache = freshCache();
    interface State { manifestCalls: number; cache: string[]; cacheExists: boolean; koffi: boolean; maps: string[]; dir: string | null }
    const r = runChild<{ before: State; report: BundleReport; after: State; type: string; value: number }>(
      `const src = dl.fromDirectory(P.bundle);
       let manifestCalls = 0;
       const counted = { ...src, manifest() { manifestCalls++; return src.manifest(); } };
       const bundle = dl.openBundle({ source: counted, cacheDir: P.cache });
       const app = bundle.library('libdemo_app.so', { compute: 'int app_compute(int x)' });
       const state = () => ({ manifestCalls, cache: entries(P.cache), cacheExists: fs.existsSync(P.cache),
         koffi: mapped().some((p) => path.basename(p) === 'koffi.node'), maps: demoMapped(), dir: bundle.dir });
       const before = state();
       const report = bundle.explain();
       const fn = app.compute; // a property access, no call
       const after = state();
       return { before, report, after, type: typeof fn, value: fn(5) };`,
      { params: { bundle: small.dir, cache } },
    );
    assert.deepEqual(r.before, { manifestCalls: 0, cache: [], cacheExists: false, koffi: false, maps: [], dir: null });
    assert.deepEqual(r.report, {
      source: { kind: 'directory', location: small.dir, reason: null },
      variant: null,
      variantReason: null,
      root: null,
      dir: null,
      reused: null,
      fallbacks: [],
      libraries: [],
      mode: null,
      limitations: [],
    });
    const dir = path.join(cache, small.dirName);
    assert.deepEqual(r.after, { manifestCalls: 1, cache: [small.dirName], cacheExists: true, koffi: true, maps: inDir(dir, CLOSURE_OF_APP), dir });
    assert.equal(r.type, 'function');
    assert.equal(r.value, 1011);
  });

  it('await bundle.ready() materializes and loads every declared library; calls then work', () => {
    const cache = freshCache();
    const r = runChild<{ mapsAfterReady: string[]; dir: string; reused: boolean; value: number; add: number }>(
      `${OPEN_APP}
       const core = bundle.library('libdemo_core.so', { add: 'int add(int a, int b)' });
       await bundle.ready();
       const mapsAfterReady = demoMapped();
       return { mapsAfterReady, dir: bundle.dir, reused: bundle.explain().reused, value: app.compute(5), add: core.add(2, 3) };`,
      { params: { bundle: small.dir, cache } },
    );
    assert.deepEqual(r.mapsAfterReady, inDir(r.dir, CLOSURE_OF_APP));
    assert.equal(r.reused, false);
    assert.equal(r.value, 1011);
    assert.equal(r.add, 5);
    assert.deepEqual(rootEntries(cache), [small.dirName]);
  });

  it('ready() and a synchronous first touch in the same tick: both work, one final directory, no staging leftovers', () => {
    const cache = freshCache();
    const r = runChild<{ value: number; ready: Caught<null>; maps: string[]; dir: string }>(
      `${OPEN_APP}
       const pending = caughtAsync(() => bundle.ready().then(() => null));
       const value = app.compute(5);
       const ready = await pending;
       return { value, ready, maps: demoMapped(), dir: bundle.dir };`,
      { params: { bundle: small.dir, cache } },
    );
    assert.equal(r.value, 1011);
    assert.deepEqual(r.ready, { ok: true, value: null });
    assert.deepEqual(r.maps, inDir(r.dir, CLOSURE_OF_APP));
    assert.deepEqual(rootEntries(cache), [small.dirName]);
  });

  it('a synchronous first touch while ready() is part-way through extracting: the first to publish wins, no staging leftovers', () => {
    const cache = freshCache();
    const r = runChild<{ sawStaging: string[]; value: number; ready: Caught<null>; report: BundleReport; after: string[] }>(
      `${OPEN_APP}
       const pending = caughtAsync(() => bundle.ready().then(() => null));
       let sawStaging = [];
       for (let i = 0; i < 100000 && sawStaging.length === 0; i++) {
         await new Promise((resolve) => setImmediate(resolve));
         sawStaging = entries(P.cache).filter((e) => e.startsWith('.staging'));
       }
       const value = app.compute(5);
       const ready = await pending;
       return { sawStaging, value, ready, report: bundle.explain(), after: entries(P.cache) };`,
      { params: { bundle: full.dir, cache } },
    );
    assert.equal(r.sawStaging.length, 1, 'the sync touch happened while ready() had a staging directory');
    assert.equal(r.value, 1011);
    assert.deepEqual(r.ready, { ok: true, value: null });
    assert.deepEqual(r.after, [full.dirName]);
    assert.equal(r.report.dir, path.join(cache, full.dirName));
    assert.deepEqual(r.report.libraries.map((l) => l.name), CLOSURE_OF_APP);
    assert.deepEqual(rootEntries(cache), [full.dirName]);
  });

  it('two concurrent ready() calls end with one directory and no staging leftovers', () => {
    const cache = freshCache();
    const r = runChild<{ results: Caught<null>[]; value: number }>(
      `${OPEN_APP}
       const results = await Promise.all([caughtAsync(() => bundle.ready().then(() => null)), caughtAsync(() => bundle.ready().then(() => null))]);
       return { results, value: app.compute(5) };`,
      { params: { bundle: small.dir, cache } },
    );
    assert.deepEqual(r.results, [{ ok: true, value: null }, { ok: true, value: null }]);
    assert.equal(r.value, 1011);
    assert.deepEqual(rootEntries(cache), [small.dirName]);
  });
  // A typo in a library name must not cost a whole extraction, on either path.
  it('ready() refuses an unknown library name before extracting anything, as the first touch does', () => {
    const cache = freshCache();
    const r = runChild<{ result: Caught<null>; cache: string[] }>(
      `const bundle = dl.openBundle({ source: dl.fromDirectory(P.bundle), cacheDir: P.cache });
       bundle.library('libnothere.so', { f: 'int f(void)' });
       return { result: await caughtAsync(() => bundle.ready().then(() => null)), cache: entries(P.cache) };`,
      { params: { bundle: small.dir, cache } },
    );
    assert.equal(errorOf(r.result).code, 'E_UNKNOWN_LIBRARY');
    assert.deepEqual(r.cache, [], 'ready() extracted the bundle before reporting the unknown name');
  });
});

describe('openBundle: processes racing for one cache directory', () => {
  it('four processes cold-starting at once: all compute, exactly one extracts for good, all map the same files, no staging leftovers', async () => {
    const cache = freshCache();
    const runs = await Promise.all(
      [0, 1, 2, 3].map(() => spawnChildAsync(COMPUTE_AND_REPORT, { params: { bundle: full.dir, cache } }).then((r) => childResult<AppRun>(r))),
    );
    const dir = path.join(cache, full.dirName);
    assert.deepEqual(runs.map((r) => r.value), [1011, 1011, 1011, 1011]);
    assert.equal(runs.filter((r) => r.report.reused === false).length, 1, JSON.stringify(runs.map((r) => r.report.reused)));
    for (const r of runs) assert.deepEqual(r.maps, inDir(dir, CLOSURE_OF_APP));
    assert.deepEqual(rootEntries(cache), [full.dirName]);
    assert.ok(fs.readFileSync(path.join(dir, 'libdemo_big.so')).equals(fs.readFileSync(path.join(full.dir, KEY, 'libdemo_big.so'))));
  });
});

describe('openBundle: damaged cache directories are repaired on the next start', () => {
  const damages: ReadonlyArray<{ readonly what: string; readonly damage: (dir: string) => void }> = [
    { what: 'the completion marker deleted', damage: (d) => fs.rmSync(path.join(d, COMPLETE_MARKER)) },
    { what: 'libdemo_core.so truncated', damage: (d) => fs.truncateSync(path.join(d, 'libdemo_core.so'), 4096) },
    { what: 'an extra file planted', damage: (d) => fs.writeFileSync(path.join(d, 'libdemo_evil.so'), 'x', { mode: 0o700 }) },
    {
      what: 'the soname link pointing at another library',
      damage: (d) => {
        fs.rmSync(path.join(d, 'libdemo_codec.so.1'));
        fs.symlinkSync('libdemo_core.so', path.join(d, 'libdemo_codec.so.1'));
      },
    },
    { what: 'the marker text for another file list', damage: (d) => fs.writeFileSync(path.join(d, COMPLETE_MARKER), `${canonicalFileList(small.variant.files.slice(2))}\n`) },
  ];
  for (const { what, damage } of damages) {
    it(`${what}: rebuilt (reused false), and the correct content is loaded`, () => {
      const cache = freshCache();
      const dir = materializeHere(small, cache);
      damage(dir);
      const r = runChild<AppRun>(COMPUTE_AND_REPORT, { params: { bundle: small.dir, cache } });
      assert.equal(r.report.reused, false);
      assert.equal(r.value, 1011);
      assert.deepEqual(r.maps, inDir(dir, CLOSURE_OF_APP));
      assert.deepEqual(fs.readdirSync(dir).sort(), [COMPLETE_MARKER, ...SMALL_FILES, 'libdemo_codec.so.1'].sort());
      for (const name of SMALL_FILES) assert.ok(fs.readFileSync(path.join(dir, name)).equals(fs.readFileSync(path.join(small.dir, KEY, name))), name);
      assert.equal(fs.readlinkSync(path.join(dir, 'libdemo_codec.so.1')), 'libdemo_codec.so.1.2.3');
      assert.deepEqual(rootEntries(cache), [small.dirName]);
    });
  }

  for (const verify of ['size', 'full'] as const) {
    it(`a same-size tampered libdemo_plugin.so, verify '${verify}': rebuilt (its recorded identity no longer matches) and the plugin works`, () => {
      const cache = freshCache();
      const dir = materializeHere(small, cache);
      const plugin = path.join(dir, 'libdemo_plugin.so');
      flipByte(plugin, 200); // inside the program headers: a reused copy would not load as it should
      const r = runChild<{ reused: boolean | null; plugin: number }>(
        `${OPEN_APP}
         const plugin = app.callPlugin(2);
         return { reused: bundle.explain().reused, plugin };`,
        { params: { bundle: small.dir, cache, verify } },
      );
      assert.equal(r.reused, false);
      assert.equal(r.plugin, 13);
      assert.ok(fs.readFileSync(plugin).equals(fs.readFileSync(path.join(small.dir, KEY, 'libdemo_plugin.so'))));
    });
  }
});

describe('openBundle: a bundle whose content does not match its manifest', () => {
  interface Refused { result: Caught<number>; maps: string[]; cache: string[] }
  const TOUCH_APP = `${OPEN_APP} return { result: caught(() => app.compute(5)), maps: demoMapped(), cache: entries(P.cache) };`;

  for (const { what, tamper } of [
    { what: 'a flipped byte (same size)', tamper: (f: string) => flipByte(f, 1000) },
    { what: 'a different size', tamper: (f: string) => fs.appendFileSync(f, 'more') },
  ]) {
    it(`a blob changed after packing, ${what}: E_INTEGRITY naming the file; nothing published, nothing loaded`, () => {
      const copy = bundleCopy(small);
      tamper(path.join(copy, KEY, 'libdemo_codec.so.1.2.3'));
      const cache = freshCache();
      const r = runChild<Refused>(TOUCH_APP, { params: { bundle: copy, cache } });
      const e = errorOf(r.result);
      assert.equal(e.code, 'E_INTEGRITY');
      assert.equal(e.file, 'libdemo_codec.so.1.2.3');
      assert.deepEqual(r.maps, []);
      assert.deepEqual(r.cache, [], 'no demo-<digest> directory, no staging leftovers');
    });
  }

  it('fromBuffers with a changed blob: E_INTEGRITY naming the file; nothing published', () => {
    const cache = freshCache();
    const r = runChild<Refused>(
      `const manifest = JSON.parse(fs.readFileSync(path.join(P.bundle, 'dlbundle.json'), 'utf8'));
       const blobs = {};
       for (const f of manifest.variants[P.key].files) blobs[P.key + '/' + f.name] = fs.readFileSync(path.join(P.bundle, P.key, f.name));
       blobs[P.key + '/libdemo_core.so'][3000] ^= 0xff;
       const bundle = dl.openBundle({ source: dl.fromBuffers(manifest, blobs), cacheDir: P.cache });
       const app = bundle.library('libdemo_app.so', { compute: 'int app_compute(int x)' });
       return { result: caught(() => app.compute(5)), maps: demoMapped(), cache: entries(P.cache) };`,
      { params: { bundle: small.dir, cache, key: KEY } },
    );
    const e = errorOf(r.result);
    assert.equal(e.code, 'E_INTEGRITY');
    assert.equal(e.file, 'libdemo_core.so');
    assert.deepEqual(r.maps, []);
    assert.deepEqual(r.cache, []);
  });

  it('a blob deleted from the bundle directory: E_MISSING_BLOB naming it; nothing published', () => {
    const copy = bundleCopy(small);
    fs.rmSync(path.join(copy, KEY, 'libdemo_plugin.so'));
    const cache = freshCache();
    const r = runChild<Refused>(TOUCH_APP, { params: { bundle: copy, cache } });
    const e = errorOf(r.result);
    assert.equal(e.code, 'E_MISSING_BLOB');
    assert.equal(e.file, 'libdemo_plugin.so');
    assert.deepEqual(r.maps, []);
    assert.deepEqual(r.cache, []);
  });

  it('a manifest whose digest does not match its files: E_BAD_MANIFEST at first use, before extracting', () => {
    const copy = bundleCopy(small);
    const file = path.join(copy, 'dlbundle.json');
    const json = JSON.parse(fs.readFileSync(file, 'utf8')) as { variants: Record<string, { digest: string }> };
    const v = json.variants[KEY];
    assert.ok(v);
    v.digest = 'fedcba9876543210';
    fs.writeFileSync(file, JSON.stringify(json));
    const cache = freshCache();
    const r = runChild<Refused>(TOUCH_APP, { params: { bundle: copy, cache } });
    const e = errorOf(r.result);
    assert.equal(e.code, 'E_BAD_MANIFEST');
    assert.match(e.message, /digest/);
    assert.deepEqual(r.maps, []);
    assert.deepEqual(r.cache, []);
  });
});

describe('openBundle: unsafe cache roots fall back to the next root', () => {
  interface FallbackRun { result: Caught<number>; report: BundleReport; maps: string[] }
  const RUN = `${OPEN_APP} const result = caught(() => app.compute(5)); return { result, report: bundle.explain(), maps: demoMapped() };`;

  /** A private root holding a complete bundle directory: what a bad place would offer. */
  function rootWithBundle(): { root: string; dir: string } {
    const root = freshCache();
    return { root, dir: materializeHere(small, root) };
  }

  const cases: ReadonlyArray<{ readonly what: string; readonly reason: RegExp; readonly make: () => { cacheDir: string; badFiles: string }; readonly root?: true }> = [
    {
      what: 'cacheDir is a symbolic link',
      reason: /symbolic link/,
      make: () => {
        const { root } = rootWithBundle();
        const link = path.join(tempDir(), 'link');
        fs.symlinkSync(root, link);
        return { cacheDir: link, badFiles: root };
      },
    },
    {
      what: 'the root is group-writable (0770)',
      reason: /writable by group or others \(mode 0770\)/,
      make: () => {
        const { root } = rootWithBundle();
        fs.chmodSync(root, 0o770);
        return { cacheDir: root, badFiles: root };
      },
    },
    {
      what: 'the root is world-writable (0777)',
      reason: /writable by group or others \(mode 0777\)/,
      make: () => {
        const { root } = rootWithBundle();
        fs.chmodSync(root, 0o777);
        return { cacheDir: root, badFiles: root };
      },
    },
    {
      what: 'the root is owned by uid 65534',
      reason: /owned by uid 65534/,
      root: true,
      make: () => {
        const { root } = rootWithBundle();
        fs.chownSync(root, FOREIGN_UID, FOREIGN_UID);
        return { cacheDir: root, badFiles: root };
      },
    },
    {
      what: 'the bundle directory in a good root is a symbolic link',
      reason: /bundle directory is a symbolic link/,
      make: () => {
        const { dir } = rootWithBundle();
        const root = freshCache();
        fs.mkdirSync(root, { mode: 0o700 });
        fs.symlinkSync(dir, path.join(root, small.dirName));
        return { cacheDir: root, badFiles: dir };
      },
    },
    {
      what: 'the bundle directory in a good root is owned by uid 65534',
      reason: /bundle directory is owned by uid 65534/,
      root: true,
      make: () => {
        const { root, dir } = rootWithBundle();
        fs.chownSync(dir, FOREIGN_UID, FOREIGN_UID);
        return { cacheDir: root, badFiles: dir };
      },
    },
  ];
  for (const { what, reason, make, root: needsRoot } of cases) {
    it(`${what}: $XDG_CACHE_HOME/dlbundle is used, explain().fallbacks says why, nothing is loaded from the bad place`, function () {
      if (needsRoot === true && !isRoot()) this.skip();
      const { cacheDir, badFiles } = make();
      const xdg = tempDir();
      const r = runChild<FallbackRun>(RUN, { params: { bundle: small.dir, cache: cacheDir }, env: { XDG_CACHE_HOME: xdg } });
      assert.ok(r.result.ok, JSON.stringify(r.result));
      assert.equal(r.result.value, 1011);
      const good = path.join(xdg, 'dlbundle');
      assert.equal(r.report.root, good);
      assert.equal(r.report.dir, path.join(good, small.dirName));
      assert.equal(fs.statSync(good).mode & 0o777, 0o700);
      assert.equal(r.report.fallbacks.length, 1);
      assert.equal(r.report.fallbacks[0]?.root, cacheDir);
      assert.equal(r.report.fallbacks[0]?.code, 'E_UNSAFE_DIR');
      assert.match(r.report.fallbacks[0]?.reason ?? '', reason);
      assert.deepEqual(r.maps, inDir(path.join(good, small.dirName), CLOSURE_OF_APP));
      const real = fs.realpathSync(badFiles);
      assert.ok(r.maps.every((p) => !p.startsWith(real + path.sep) && !p.startsWith(cacheDir + path.sep)), JSON.stringify(r.maps));
    });
  }

  // The default root is in /tmp, often mounted noexec: such a root is detected before extracting and skipped.
  it('a cache root on a noexec file system falls back to the next root, recording E_NOEXEC', function () {
    if (!isRoot()) this.skip();
    const noexec = tempDir();
    try {
      execFileSync('mount', ['-t', 'tmpfs', '-o', 'noexec,size=64m', 'tmpfs', noexec], { stdio: 'pipe' });
    } catch {
      this.skip(); // no permission to mount here: nothing to test with
    }
    try {
      const xdg = tempDir();
      const r = runChild<FallbackRun>(RUN, { params: { bundle: small.dir, cache: path.join(noexec, 'cache') }, env: { XDG_CACHE_HOME: xdg } });
      assert.ok(r.result.ok, `no fallback: ${JSON.stringify(r.result)}`);
      assert.equal(r.result.value, 1011);
      assert.equal(r.report.root, path.join(xdg, 'dlbundle'));
      assert.equal(r.report.fallbacks[0]?.code, 'E_NOEXEC');
    } finally {
      execFileSync('umount', [noexec]);
    }
  });

  it("every root bad, mode 'disk': E_UNSAFE_DIR, nothing loaded", () => {
    const { root } = rootWithBundle();
    const link = path.join(tempDir(), 'link');
    fs.symlinkSync(root, link);
    const xdg = tempDir();
    fs.mkdirSync(path.join(xdg, 'dlbundle'));
    fs.chmodSync(path.join(xdg, 'dlbundle'), 0o777);
    const r = runChild<FallbackRun>(RUN, { params: { bundle: small.dir, cache: link, mode: 'disk' }, env: { XDG_CACHE_HOME: xdg } });
    const e = errorOf(r.result);
    assert.equal(e.code, 'E_UNSAFE_DIR');
    assert.match(e.message, /symbolic link/);
    assert.match(e.message, /writable by group or others/);
    assert.deepEqual(r.maps, []);
    assert.deepEqual(fs.readdirSync(path.join(xdg, 'dlbundle')), []);
  });

  it('DLBUNDLE_CACHE_DIR is honoured, and read at first use, not when dlbundle is imported or the bundle opened', () => {
    const base = tempDir();
    const atSpawn = path.join(base, 'at-spawn');
    const afterRequire = path.join(base, 'after-require');
    const atFirstUse = path.join(base, 'at-first-use');
    const r = runChild<{ root: string | null; value: number; maps: string[] }>(
      `process.env.DLBUNDLE_CACHE_DIR = P.afterRequire;
       const bundle = dl.openBundle({ source: dl.fromDirectory(P.bundle) });
       const app = bundle.library('libdemo_app.so', { compute: 'int app_compute(int x)' });
       process.env.DLBUNDLE_CACHE_DIR = P.atFirstUse;
       const value = app.compute(5);
       return { root: bundle.explain().root, value, maps: demoMapped() };`,
      { params: { bundle: small.dir, afterRequire, atFirstUse }, env: { DLBUNDLE_CACHE_DIR: atSpawn } },
    );
    assert.equal(r.value, 1011);
    assert.equal(r.root, atFirstUse);
    assert.deepEqual(r.maps, inDir(path.join(atFirstUse, small.dirName), CLOSURE_OF_APP));
    assert.deepEqual(fs.readdirSync(base), ['at-first-use']);
  });
});

describe('openBundle: sources, names and variants', () => {
  it('fromBuffers: a bundle from memory (Buffers) loads and app_compute works', () => {
    const cache = freshCache();
    const r = runChild<{ value: number; report: BundleReport }>(
      `const manifest = JSON.parse(fs.readFileSync(path.join(P.bundle, 'dlbundle.json'), 'utf8'));
       const blobs = {};
       for (const f of manifest.variants[P.key].files) blobs[P.key + '/' + f.name] = fs.readFileSync(path.join(P.bundle, P.key, f.name));
       const bundle = dl.openBundle({ source: dl.fromBuffers(manifest, blobs), cacheDir: P.cache });
       const app = bundle.library('libdemo_app.so', { compute: 'int app_compute(int x)' });
       return { value: app.compute(5), report: bundle.explain() };`,
      { params: { bundle: small.dir, cache, key: KEY } },
    );
    assert.equal(r.value, 1011);
    assert.deepEqual(r.report.source, { kind: 'buffers', location: 'memory (demo)', reason: null });
    assert.equal(r.report.dir, path.join(cache, small.dirName));
  });

  it('fromBuffers: blob functions are called only when the bundle is materialized, once each, and not on a warm start', () => {
    const cache = freshCache();
    const SNIPPET = `
      const manifest = JSON.parse(fs.readFileSync(path.join(P.bundle, 'dlbundle.json'), 'utf8'));
      const calls = {};
      const blobs = {};
      for (const f of manifest.variants[P.key].files) {
        blobs[P.key + '/' + f.name] = () => { calls[f.name] = (calls[f.name] || 0) + 1; return fs.readFileSync(path.join(P.bundle, P.key, f.name)); };
      }
      const bundle = dl.openBundle({ source: dl.fromBuffers(manifest, blobs), cacheDir: P.cache });
      const app = bundle.library('libdemo_app.so', { compute: 'int app_compute(int x)' });
      const beforeUse = { ...calls };
      const value = app.compute(5);
      return { beforeUse, calls, value, reused: bundle.explain().reused };`;
    type Counts = { beforeUse: Record<string, number>; calls: Record<string, number>; value: number; reused: boolean };
    const cold = runChild<Counts>(SNIPPET, { params: { bundle: small.dir, cache, key: KEY } });
    assert.deepEqual(cold.beforeUse, {});
    assert.deepEqual(cold.calls, Object.fromEntries(SMALL_FILES.map((n) => [n, 1])));
    assert.equal(cold.value, 1011);
    assert.equal(cold.reused, false);
    const warm = runChild<Counts>(SNIPPET, { params: { bundle: small.dir, cache, key: KEY } });
    assert.deepEqual(warm.calls, {});
    assert.equal(warm.value, 1011);
    assert.equal(warm.reused, true);
  });

  it('a library the bundle does not have: E_UNKNOWN_LIBRARY listing the files; nothing extracted', () => {
    const cache = freshCache();
    const r = runChild<{ result: Caught<unknown>; cache: boolean; maps: string[] }>(
      `const bundle = dl.openBundle({ source: dl.fromDirectory(P.bundle), cacheDir: P.cache });
       const lib = bundle.library('libnothere.so', { f: 'int f(void)' });
       return { result: caught(() => typeof lib.f), cache: fs.existsSync(P.cache), maps: demoMapped() };`,
      { params: { bundle: small.dir, cache } },
    );
    const e = errorOf(r.result);
    assert.equal(e.code, 'E_UNKNOWN_LIBRARY');
    assert.equal(e.file, 'libnothere.so');
    for (const name of SMALL_FILES) assert.ok(e.message.includes(name), `the message lists ${name}: ${e.message}`);
    assert.equal(r.cache, false);
    assert.deepEqual(r.maps, []);
  });

  it('a library can be named by its soname (libdemo_codec.so.1)', () => {
    const r = runChild<{ encode: number; names: string[]; dir: string; maps: string[] }>(
      `const bundle = dl.openBundle({ source: dl.fromDirectory(P.bundle), cacheDir: P.cache });
       const codec = bundle.library('libdemo_codec.so.1', { encode: 'int codec_encode(int x)' });
       const encode = codec.encode(5);
       return { encode, names: bundle.explain().libraries.map((l) => l.name), dir: bundle.dir, maps: demoMapped() };`,
      { params: { bundle: small.dir, cache: freshCache() } },
    );
    assert.equal(r.encode, 1005);
    assert.deepEqual(r.names, ['libdemo_core.so', 'libdemo_codec.so.1.2.3']);
    assert.deepEqual(r.maps, inDir(r.dir, ['libdemo_core.so', 'libdemo_codec.so.1.2.3']));
  });

  it('a bundle with only a linux-arm64-gnu variant: E_NO_VARIANT naming both keys; nothing extracted (directory and fromBuffers)', () => {
    // pack refuses x86-64 files for an arm64 target, so the key is renamed by hand; the digest does not cover it.
    const copy = bundleCopy(small);
    const file = path.join(copy, 'dlbundle.json');
    const json = JSON.parse(fs.readFileSync(file, 'utf8')) as { variants: Record<string, unknown> };
    json.variants = { 'linux-arm64-gnu': json.variants[KEY] };
    fs.writeFileSync(file, JSON.stringify(json));
    fs.renameSync(path.join(copy, KEY), path.join(copy, 'linux-arm64-gnu'));
    const cache = freshCache();
    const r = runChild<{ fromDir: Caught<number>; fromMemory: Caught<number>; cache: boolean; maps: string[] }>(
      `const manifest = JSON.parse(fs.readFileSync(path.join(P.bundle, 'dlbundle.json'), 'utf8'));
       const blobs = {};
       for (const f of manifest.variants['linux-arm64-gnu'].files) blobs['linux-arm64-gnu/' + f.name] = fs.readFileSync(path.join(P.bundle, 'linux-arm64-gnu', f.name));
       const touch = (source) => {
         const bundle = dl.openBundle({ source, cacheDir: P.cache });
         return caught(() => bundle.library('libdemo_core.so', { add: 'int add(int a, int b)' }).add(2, 3));
       };
       return { fromDir: touch(dl.fromDirectory(P.bundle)), fromMemory: touch(dl.fromBuffers(manifest, blobs)), cache: fs.existsSync(P.cache), maps: demoMapped() };`,
      { params: { bundle: copy, cache } },
    );
    for (const c of [r.fromDir, r.fromMemory]) {
      const e = errorOf(c);
      assert.equal(e.code, 'E_NO_VARIANT');
      assert.match(e.message, /linux-x64-gnu/);
      assert.match(e.message, /linux-arm64-gnu/);
    }
    assert.equal(r.cache, false);
    assert.deepEqual(r.maps, []);
  });

  it('a symbol the library does not export: E_MISSING_SYMBOL naming it and the library', () => {
    const r = runChild<{ result: Caught<unknown> }>(
      `const bundle = dl.openBundle({ source: dl.fromDirectory(P.bundle), cacheDir: P.cache });
       const core = bundle.library('libdemo_core.so', { add: 'int add(int a, int b)', missing: 'int no_such_function(int x)' });
       return { result: caught(() => core.add(2, 3)) };`,
      { params: { bundle: small.dir, cache: freshCache() } },
    );
    const e = errorOf(r.result);
    assert.equal(e.code, 'E_MISSING_SYMBOL');
    assert.equal(e.symbol, 'no_such_function');
    assert.equal(e.file, 'libdemo_core.so');
  });
});

describe('system library lookup', () => {
  it('ldSoCacheLookup agrees with `ldconfig -p` for every x86-64 entry', () => {
    const listing = execFileSync('ldconfig', ['-p'], { encoding: 'utf8' });
    const expected = new Map<string, string>();
    for (const line of listing.split('\n')) {
      const m = /^\s+(\S+) \(libc6,x86-64[^)]*\) => (\S+)$/.exec(line);
      // ld.so takes the first entry of a name; ldconfig -p lists them in cache order.
      if (m?.[1] !== undefined && m[2] !== undefined && !expected.has(m[1])) expected.set(m[1], m[2]);
    }
    assert.ok(expected.size > 10, `parsed ${expected.size} entries from ldconfig -p`);
    const bytes = fs.readFileSync('/etc/ld.so.cache');
    const wrong: string[] = [];
    for (const [name, where] of expected) {
      const got = ldSoCacheLookup(bytes, name);
      if (got !== where) wrong.push(`${name}: ${String(got)} instead of ${where}`);
    }
    assert.deepEqual(wrong, []);
    assert.equal(ldSoCacheLookup(bytes, 'libdemo_gpu_runtime.so.1'), null);
    assert.equal(ldSoCacheLookup(Buffer.from('not a cache'), 'libc.so.6'), null);
  });

  it('resolveSystemLibrary finds libc.so.6 and returns null for libdemo_gpu_runtime.so.1', () => {
    assert.equal(process.env.LD_LIBRARY_PATH ?? '', '', 'this test expects no LD_LIBRARY_PATH');
    const libc = resolveSystemLibrary('libc.so.6', { runpath: [], origin: tempDir() });
    assert.ok(libc !== null);
    assert.equal(path.basename(libc.path), 'libc.so.6');
    assert.ok(fs.existsSync(libc.path));
    assert.equal(resolveSystemLibrary('libdemo_gpu_runtime.so.1', { runpath: [], origin: tempDir() }), null);
    // …but it is found through a RUNPATH of $ORIGIN when it sits beside the library.
    const beside = tempDir();
    fs.copyFileSync(nativeFixture('libdemo_gpu_runtime.so.1'), path.join(beside, 'libdemo_gpu_runtime.so.1'));
    assert.deepEqual(resolveSystemLibrary('libdemo_gpu_runtime.so.1', { runpath: ['$ORIGIN'], origin: beside }), { path: path.join(beside, 'libdemo_gpu_runtime.so.1'), via: 'runpath' });
  });
});

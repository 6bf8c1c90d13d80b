/**
 * Hostile and broken environments, produced for real: a cache root owned by
 * the user running the test while the program runs as another user
 * (setpriv), a root remounted noexec after extraction, every root noexec or
 * full (memory mode takes over), a tiny tmpfs, and `dlbundle cache
 * list|prune` with a live process holding a lease. Mounting needs root; the
 * tests that mount say so and skip only where mounting is refused.
 */
import { strict as assert } from 'node:assert';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { runChild } from './child';
import { packedFixtures, REPO, rootEntries, tempDir } from './fixtures';

const CLI = path.join(REPO, 'dist', 'cli.js');
const SMALL = ['libdemo_core.so', 'libdemo_codec.so.1.2.3', 'libdemo_app.so', 'libdemo_plugin.so', 'demo.node'];

interface Report {
  mode: string | null;
  root: string | null;
  dir: string | null;
  fallbacks: { root: string; code: string; reason: string }[];
  limitations: { name: string; reason: string }[];
  libraries: { name: string; path: string }[];
}
interface Run {
  compute: number;
  plugin: number;
  addon: number;
  report: Report;
  memfds: string[];
  ownLeases: string[];
}

/** Opens the bundle, calls through it, reports explain() and the memfd mappings of the process. */
const RUN = `
  const bundle = dl.openBundle({ source: dl.fromDirectory(P.bundle), cacheDir: P.cache, ...(P.mode ? { mode: P.mode } : {}) });
  const app = bundle.library('libdemo_app.so', { compute: 'int app_compute(int x)', plugin: 'int app_call_plugin(int x)' });
  const compute = app.compute(5);
  const plugin = app.plugin(2);
  const addon = bundle.addon('demo.node').add(2, 3);
  const memfds = [...new Set(fs.readFileSync('/proc/self/maps', 'utf8').split('\\n').filter((l) => l.includes('/memfd:')).map((l) => l.split(/\\s+/).slice(5).join(' ')))].sort();
  // This process's leases (tags <pid namespace>-<pid>-<start time>) in the preferred root.
  const leaseDir = path.join(P.cache, '.leases');
  const ownLeases = (fs.existsSync(leaseDir) ? fs.readdirSync(leaseDir) : []).flatMap((d) => fs.readdirSync(path.join(leaseDir, d)).filter((t) => t.split('-')[1] === String(process.pid)));
  return { compute, plugin, addon, report: bundle.explain(), memfds, ownLeases };`;

const packed = packedFixtures;

/**
 * Mounts a private (mode 0700) tmpfs at a fresh directory, or returns null
 * where mounting is refused. (A tmpfs root is 1777 by default, which dlbundle
 * rightly refuses as writable by others before it looks at anything else.)
 */
function mountTmpfs(options: string): string | null {
  const dir = tempDir('dlbundle-mnt-');
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', `mode=0700,${options}`, 'tmpfs', dir], { stdio: 'pipe' });
  } catch {
    return null;
  }
  mounted.push(dir);
  return dir;
}
const mounted: string[] = [];

function mountOrSkip(ctx: Mocha.Context, options: string): string {
  const dir = mountTmpfs(options);
  if (dir === null) {
    console.log(`      skipped: mounting a tmpfs (${options}) is not permitted here`);
    ctx.skip();
  }
  return dir as string;
}

/** Every entry under `dir`, recursively (to prove nothing was written). */
function tree(dir: string): string[] {
  if (!fs.existsSync(dir)) return [];
  return fs.readdirSync(dir, { recursive: true }).map(String).sort();
}

describe('under fire', function () {
  this.timeout(120_000);
  // Before the temporary directories are removed (a root-level hook, which runs later).
  after(() => {
    for (const m of mounted.splice(0).reverse()) spawnSync('umount', [m]);
  });

  it('a program running as another user never uses a root owned by someone else: it falls back, with the reason', () => {
    const bundle = packed(SMALL);
    // The test's user (root) owns this root; the program runs as uid 65534.
    const foreign = tempDir();
    fs.chmodSync(foreign, 0o755);
    const own = tempDir();
    fs.chownSync(own, 65534, 65534);
    // Let the other user read the bundle: its own temporary directory and what is in it, nothing above.
    fs.chmodSync(path.dirname(bundle), 0o755);
    execFileSync('chmod', ['-R', 'a+rX', bundle]);
    const script = `
      const dl = require(${JSON.stringify(path.join(REPO, 'dist', 'index.js'))});
      const b = dl.openBundle({ source: dl.fromDirectory(${JSON.stringify(bundle)}), cacheDir: ${JSON.stringify(foreign)} });
      const v = b.library('libdemo_app.so', { compute: 'int app_compute(int x)' }).compute(5);
      console.log(JSON.stringify({ uid: process.getuid(), v, report: b.explain() }));`;
    const r = spawnSync('setpriv', ['--reuid', '65534', '--regid', '65534', '--clear-groups', '--', process.execPath, '-e', script], {
      encoding: 'utf8',
      env: { PATH: process.env.PATH ?? '', HOME: own, XDG_CACHE_HOME: own },
    });
    assert.equal(r.status, 0, r.stderr);
    const out = JSON.parse(r.stdout) as { uid: number; v: number; report: Report };
    assert.equal(out.uid, 65534);
    assert.equal(out.v, 1011);
    assert.equal(out.report.root, path.join(own, 'dlbundle'));
    assert.equal(out.report.fallbacks[0]?.root, foreign);
    assert.equal(out.report.fallbacks[0]?.code, 'E_UNSAFE_DIR');
    assert.match(out.report.fallbacks[0]?.reason ?? '', /owned by uid 0, not by this user \(uid 65534\)/);
    assert.deepEqual(fs.readdirSync(foreign), [], 'nothing written into the foreign root');
  });

  it('a root remounted noexec after extraction: dlopen cannot map it (E_NOEXEC), the next root is used', function () {
    const mnt = mountOrSkip(this, 'size=64m');
    const bundle = packed(SMALL);
    const cache = path.join(mnt, 'cache');
    const first = runChild<Run>(RUN, { params: { bundle, cache } });
    assert.equal(first.compute, 1011);
    assert.equal(first.report.root, cache);
    execFileSync('mount', ['-o', 'remount,noexec', mnt]);
    const xdg = tempDir();
    const second = runChild<Run>(RUN, { params: { bundle, cache }, env: { XDG_CACHE_HOME: xdg } });
    assert.equal(second.compute, 1011);
    assert.equal(second.report.root, path.join(xdg, 'dlbundle'));
    assert.equal(second.report.fallbacks[0]?.root, cache);
    assert.equal(second.report.fallbacks[0]?.code, 'E_NOEXEC');
    assert.match(second.report.fallbacks[0]?.reason ?? '', /mounted noexec/);
    assert.deepEqual(second.ownLeases, [], 'the root given up holds no lease of the process that gave it up');
  });

  it("every root noexec: auto mode loads from memory (memfd), and nothing is written to disk", function () {
    const a = mountOrSkip(this, 'noexec,size=16m');
    const b = mountOrSkip(this, 'noexec,size=16m');
    fs.mkdirSync(path.join(b, 'dlbundle'), { mode: 0o700 });
    const bundle = packed(SMALL);
    const r = runChild<Run>(RUN, { params: { bundle, cache: a }, env: { XDG_CACHE_HOME: b } });
    assert.equal(r.compute, 1011);
    assert.equal(r.addon, 5, 'demo.node loads from memory too, after libdemo_core.so');
    assert.equal(r.report.mode, 'memory');
    assert.equal(r.report.dir, null);
    assert.deepEqual(r.report.fallbacks.map((f) => [f.root, f.code]), [[a, 'E_NOEXEC'], [path.join(b, 'dlbundle'), 'E_NOEXEC']]);
    assert.deepEqual(r.memfds, ['demo.node', 'libdemo_app.so', 'libdemo_codec.so.1.2.3', 'libdemo_core.so'].map((n) => `/memfd:dlbundle:${n} (deleted)`));
    assert.ok(r.report.libraries.every((l) => /^\/proc\/self\/fd\/\d+$/.test(l.path)), JSON.stringify(r.report.libraries));
    assert.deepEqual(tree(a), [], 'nothing written in the first root');
    assert.deepEqual(tree(path.join(b, 'dlbundle')), [], 'nothing written in the second root');
    // The plugin is opened by path from libdemo_app.so's directory, which memory mode does not have.
    assert.equal(r.plugin, -2);
    assert.deepEqual(r.report.limitations.map((l) => l.name), ['libdemo_plugin.so']);
  });

  it("mode 'memory' creates no directory at all", () => {
    const bundle = packed(SMALL);
    const cache = path.join(tempDir(), 'never');
    const xdg = tempDir();
    const r = runChild<Run>(RUN, { params: { bundle, cache, mode: 'memory' }, env: { XDG_CACHE_HOME: xdg } });
    assert.equal(r.compute, 1011);
    assert.equal(r.report.mode, 'memory');
    assert.deepEqual(r.report.fallbacks, []);
    assert.equal(fs.existsSync(cache), false);
    assert.deepEqual(tree(xdg), []);
  });

  it("a tiny tmpfs: mode 'disk' fails with E_NO_SPACE and leaves nothing partial; auto mode falls back to memory", function () {
    const a = mountOrSkip(this, 'size=1m');
    const b = mountOrSkip(this, 'size=1m');
    const bundle = packed([...SMALL, 'libdemo_big.so']);
    const disk = runChild<{ result: { ok: boolean; error?: { code: string; message: string } } }>(
      `return { result: caught(() => dl.openBundle({ source: dl.fromDirectory(P.bundle), cacheDir: P.cache, mode: 'disk' }).library('libdemo_app.so', { f: 'int app_compute(int x)' }).f(5)) };`,
      { params: { bundle, cache: a }, env: { XDG_CACHE_HOME: b } },
    );
    assert.equal(disk.result.ok, false);
    assert.equal(disk.result.error?.code, 'E_NO_SPACE');
    assert.deepEqual(rootEntries(a), [], 'no staging, no bundle directory in the first root');
    assert.deepEqual(rootEntries(path.join(b, 'dlbundle')), [], 'nor in the second');
    const auto = runChild<Run>(RUN, { params: { bundle, cache: a }, env: { XDG_CACHE_HOME: b } });
    assert.equal(auto.compute, 1011);
    assert.equal(auto.report.mode, 'memory');
    assert.deepEqual(auto.report.fallbacks.map((f) => f.code), ['E_NO_SPACE', 'E_NO_SPACE']);
  });

  describe('dlbundle cache list | prune', () => {
    interface Entry {
      dir: string;
      bundle: string;
      bytes: number;
      lastUse: number;
      users: number[];
    }
    function cli(root: string, ...args: string[]): string {
      const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', env: { ...process.env, DLBUNDLE_CACHE_DIR: root, XDG_CACHE_HOME: tempDir() } });
      assert.equal(r.status, 0, r.stderr);
      return r.stdout;
    }
    const list = (root: string): Entry[] => JSON.parse(cli(root, 'cache', 'list', '--json')) as Entry[];

    /** Two versions of the demo bundle used once each in `root`; returns their directories, older first. */
    function twoVersions(root: string): [string, string] {
      const dirs: string[] = [];
      for (const libs of [['libdemo_core.so'], ['libdemo_core.so', 'libdemo_plugin.so']]) {
        const r = runChild<{ dir: string }>(`const b = dl.openBundle({ source: dl.fromDirectory(P.bundle), cacheDir: P.cache }); b.library('libdemo_core.so', { add: 'int add(int a, int b)' }).add(1, 2); return { dir: b.dir };`, {
          params: { bundle: packed(libs), cache: root },
        });
        dirs.push(r.dir);
      }
      return [dirs[0] as string, dirs[1] as string];
    }

    it('lists every bundle directory with its size, last use and live users', () => {
      const root = tempDir();
      const [v1, v2] = twoVersions(root);
      const entries = list(root);
      assert.deepEqual(entries.map((e) => e.dir).sort(), [v1, v2].sort());
      for (const e of entries) {
        assert.equal(e.bundle, 'demo');
        assert.equal(e.bytes, fs.readdirSync(e.dir).reduce((n, f) => n + (fs.lstatSync(path.join(e.dir, f)).isFile() ? fs.statSync(path.join(e.dir, f)).size : 0), 0));
        assert.ok(Date.now() - e.lastUse < 60_000, 'used just now');
        assert.deepEqual(e.users, [], 'the processes that used it have exited');
      }
      assert.match(cli(root, 'cache', 'list'), /demo-[0-9a-f]{16}\s+[\d.]+ MiB\s+last used \d{4}-/);
    });

    it('prune never removes a directory a live process uses; once it exits, it goes', async () => {
      const root = tempDir();
      const [v1, v2] = twoVersions(root);
      // A live user of v1 (same content, so the same digest): it loads, says where from, and waits.
      const bundleV1 = packed(['libdemo_core.so']);
      const live = spawn(process.execPath, ['-e', `
        const dl = require(${JSON.stringify(path.join(REPO, 'dist', 'index.js'))});
        const b = dl.openBundle({ source: dl.fromDirectory(process.argv[1]), cacheDir: process.argv[2] });
        b.library('libdemo_core.so', { add: 'int add(int a, int b)' }).add(1, 2);
        console.log(b.dir); setTimeout(() => {}, 60000);`, bundleV1, root], { stdio: ['ignore', 'pipe', 'inherit'] });
      const usedDir = await new Promise<string>((resolve) => live.stdout.once('data', (d: Buffer) => resolve(d.toString().trim())));
      assert.equal(usedDir, v1);
      try {
        assert.deepEqual(list(root).find((e) => e.dir === v1)?.users, [live.pid]);
        const out = cli(root, 'cache', 'prune', '--keep', '0');
        assert.match(out, /in use, kept .*demo-/);
        assert.equal(fs.existsSync(v1), true, 'the directory in use stays');
        assert.equal(fs.existsSync(v2), false, 'the unused one is removed');
      } finally {
        live.kill('SIGKILL');
        await new Promise((resolve) => live.once('exit', resolve));
      }
      cli(root, 'cache', 'prune', '--keep', '0');
      assert.equal(fs.existsSync(v1), false, 'removed once its user is gone');
      assert.deepEqual(rootEntries(root), []);
    });

    it('--keep N keeps the most recently used, --older-than DAYS only removes what was not used for that long', () => {
      const root = tempDir();
      const [v1, v2] = twoVersions(root);
      cli(root, 'cache', 'prune');
      assert.equal(fs.existsSync(v2), true, 'the default keeps the most recent one');
      assert.equal(fs.existsSync(v1), false);

      const root2 = tempDir();
      const [old, recent] = twoVersions(root2);
      const fortyDaysAgo = new Date(Date.now() - 40 * 86_400_000);
      const leases = path.join(root2, '.leases', path.basename(old));
      for (const f of [path.join(old, '.dlbundle-complete'), ...fs.readdirSync(leases).map((l) => path.join(leases, l))]) fs.utimesSync(f, fortyDaysAgo, fortyDaysAgo);
      const dry = cli(root2, 'cache', 'prune', '--keep', '0', '--older-than', '30', '--dry-run');
      assert.match(dry, new RegExp(`would remove ${old.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`));
      assert.equal(fs.existsSync(old), true, 'a dry run removes nothing');
      cli(root2, 'cache', 'prune', '--keep', '0', '--older-than', '30');
      assert.equal(fs.existsSync(old), false);
      assert.equal(fs.existsSync(recent), true, 'used within 30 days');
    });
  });
});


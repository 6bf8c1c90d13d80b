/**
 * Leases and `cache prune` under real concurrency and real faults: starts
 * (fresh processes calling a native function) while another process prunes
 * the same root in a tight loop, several prunes at once, leases of dead
 * processes and of reused pids, two bundle instances of one process sharing a
 * lease, and a complete root on a file system remounted read-only.
 */
import { strict as assert } from 'node:assert';
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { pack } from '../src/pack';
import { listCache, pruneCache } from '../src/prune';
import { spawnChildAsync, runChild } from './child';
import { nativeFixture, REPO, rootEntries, tempDir } from './fixtures';

const CLI = path.join(REPO, 'dist', 'cli.js');
const PRUNE_MODULE = path.join(REPO, 'dist', 'prune.js');
const LIBS = ['libdemo_core.so', 'libdemo_codec.so.1.2.3', 'libdemo_app.so'];

function packed(libs: readonly string[] = LIBS, name = 'demo'): string {
  const out = path.join(tempDir(), 'bundle');
  pack(libs.map(nativeFixture), { name, out });
  return out;
}

function privateRoot(): string {
  const root = path.join(tempDir(), 'cache');
  fs.mkdirSync(root, { mode: 0o700 });
  fs.chmodSync(root, 0o700);
  return root;
}

function exited(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve();
    else child.once('close', () => resolve());
  });
}

/** What one start reported. */
interface Start {
  ok: boolean;
  v?: number;
  code?: string;
  message?: string;
  root?: string | null;
  dir?: string | null;
  reused?: boolean | null;
  unprotected?: string;
  fallbacks?: { root: string; code: string; reason: string }[];
}

/** In a child: `start(bundleDir)` opens the bundle with P.cache, calls app_compute(5) and reports. */
const START_FN = `
  const start = (bundle) => {
    const r = caught(() => {
      const b = dl.openBundle({ source: dl.fromDirectory(bundle), cacheDir: P.cache });
      const v = b.library('libdemo_app.so', { compute: 'int app_compute(int x)' }).compute(5);
      const rep = b.explain();
      return { v, root: rep.root, dir: rep.dir, reused: rep.reused, fallbacks: rep.fallbacks, unprotected: rep.unprotected };
    });
    return r.ok ? { ok: true, ...r.value } : { ok: false, code: r.error.code, message: r.error.message };
  };`;
const START = `${START_FN} return start(P.bundle);`;

describe('leases and cache prune', function () {
  this.timeout(200_000);

  it('a start never fails while `cache prune --keep 0` runs in a loop against the same root', async () => {
    // Ten demo bundles whose libraries differ by trailing bytes (which the
    // loader ignores): each is its own directory and, being other content,
    // its own dlopen, so each child process makes ten starts that race the prune.
    const BUNDLES = 10;
    const bundles: string[] = [];
    for (let k = 0; k < BUNDLES; k++) {
      const libs = path.join(tempDir(), 'libs');
      fs.mkdirSync(libs);
      for (const name of LIBS) fs.writeFileSync(path.join(libs, name), Buffer.concat([fs.readFileSync(nativeFixture(name)), Buffer.alloc(k + 1, k)]));
      const out = path.join(tempDir(), 'bundle');
      pack(LIBS.map((name) => path.join(libs, name)), { name: `demo${k}`, out });
      bundles.push(out);
    }
    const root = privateRoot();
    const stop = path.join(tempDir(), 'stop');
    // The pruner: pruneCache in a tight loop until told to stop; it reports its rounds and any error.
    const pruner = spawn(
      process.execPath,
      [
        '-e',
        `const { pruneCache } = require(${JSON.stringify(PRUNE_MODULE)});
         const fs = require('node:fs');
         let rounds = 0, removed = 0, inUse = 0;
         const errors = [];
         while (!fs.existsSync(process.argv[2])) {
           try {
             const r = pruneCache({ roots: [process.argv[1]], keep: 0 });
             removed += r.removed.length; inUse += r.inUse.length;
           } catch (e) {
             // Counted, and the loop goes on, so that the starts keep racing a prune.
             errors.push(String(e && e.message).split('\\n')[0]);
           }
           rounds++;
         }
         console.log(JSON.stringify({ rounds, removed, inUse, errors }));`,
        root,
        stop,
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let prunerOut = '';
    let prunerErr = '';
    pruner.stdout.setEncoding('utf8').on('data', (d: string) => (prunerOut += d));
    pruner.stderr.setEncoding('utf8').on('data', (d: string) => (prunerErr += d));

    // 1000 starts (100 processes of 10), 3 processes at a time; a loaded
    // machine stops after 150 s with what it has, at least 100.
    const STARTS = Number(process.env.DLBUNDLE_PRUNE_RACE_STARTS ?? 1000);
    const PARALLEL = 3;
    const BUDGET_MS = 150_000;
    const results: Start[] = [];
    let next = 0;
    const t0 = Date.now();
    const worker = async (): Promise<void> => {
      while (next < STARTS && Date.now() - t0 < BUDGET_MS) {
        next += BUNDLES;
        const r = await spawnChildAsync(`${START_FN} return P.bundles.map(start);`, { params: { bundles, cache: root } });
        const starts = r.result as Start[] | undefined;
        if (starts !== undefined) results.push(...starts);
        else results.push({ ok: false, code: `exit ${String(r.status)}`, message: r.stderr.slice(-400) });
      }
    };
    try {
      await Promise.all(Array.from({ length: PARALLEL }, worker));
    } finally {
      fs.writeFileSync(stop, '');
      const killer = setTimeout(() => pruner.kill('SIGKILL'), 10_000);
      await exited(pruner);
      clearTimeout(killer);
    }
    const seconds = (Date.now() - t0) / 1000;
    assert.equal(pruner.exitCode, 0, `the pruner crashed: ${prunerErr}`);
    const prunes = JSON.parse(prunerOut) as { rounds: number; removed: number; inUse: number; errors: string[] };

    const failed = results.filter((r) => !r.ok || r.v !== 1011);
    const fellBack = results.filter((r) => r.ok && (r.root !== root || (r.fallbacks?.length ?? 0) > 0));
    const cold = results.filter((r) => r.ok && r.reused === false).length;
    console.log(
      `      ${results.length} starts in ${seconds.toFixed(1)} s (${cold} cold, ${results.length - cold - failed.length} warm) against ${prunes.rounds} prune rounds ` +
        `(${prunes.removed} directories removed, ${prunes.inUse} kept in use, ${prunes.errors.length} prune errors): ${failed.length} starts failed, ${fellBack.length} fell back to another root`,
    );
    for (const e of prunes.errors.slice(0, 3)) console.log(`        prune: ${e}`);
    for (const f of failed.slice(0, 3)) console.log(`        ${String(f.code)}: ${String(f.message).split('\n')[0]}`);
    assert.ok(results.length >= Math.min(100, STARTS), `only ${results.length} starts in ${seconds.toFixed(0)} s`);
    assert.ok(prunes.removed > 0 && cold > 0, 'the prune really removed directories that starts then extracted again');
    assert.deepEqual(failed.map((f) => `${String(f.code)}: ${String(f.message).split('\n')[0]}`), []);
    assert.deepEqual(fellBack.map((f) => f.fallbacks), []);
    assert.deepEqual(prunes.errors, []);
  });

  function cliRun(root: string, ...args: string[]): Promise<{ status: number | null; stdout: string; stderr: string }> {
    return new Promise((resolve, reject) => {
      const child = spawn(process.execPath, [CLI, ...args], { env: { ...process.env, DLBUNDLE_CACHE_DIR: root, XDG_CACHE_HOME: tempDir() }, stdio: ['ignore', 'pipe', 'pipe'] });
      let stdout = '';
      let stderr = '';
      child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
      child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
      child.on('error', reject);
      child.on('close', (status) => resolve({ status, stdout, stderr }));
    });
  }

  function cli(root: string, ...args: string[]): string {
    const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', env: { ...process.env, DLBUNDLE_CACHE_DIR: root, XDG_CACHE_HOME: tempDir() } });
    assert.equal(r.status, 0, r.stderr);
    return r.stdout;
  }

  const ns = (): string => /\[(\d+)\]/.exec(fs.readlinkSync('/proc/self/ns/pid'))?.[1] ?? '0';
  const startTime = (pid: number): string => {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'latin1');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19] as string;
  };
  const DAY_S = 86_400;
  const daysAgo = (days: number): number => Date.now() / 1000 - days * DAY_S;

  it('prunes running at once never crash: what is already removed is not an error, and every directory is removed or kept as it should be', async () => {
    const ROUNDS = 5;
    const PRUNES = 4;
    const BUNDLES = 8;
    const VERSIONS = 6;
    const crashes: string[] = [];
    let removedTotal = 0;
    const left: { round: number; entries: string[]; expected: string[]; leaseDirs: string[] }[] = [];
    for (let round = 1; round <= ROUNDS; round++) {
      const root = privateRoot();
      // 8 bundles × 6 versions, 20 files each; the newest of each bundle is kept (--keep 1), and one
      // older version is in use by this test process (a lease in the tag format every version reads).
      const expected: string[] = [];
      for (let b = 0; b < BUNDLES; b++) {
        for (let v = 0; v < VERSIONS; v++) {
          const name = `app${b}-${(b * 100 + v).toString(16).padStart(16, '0')}`;
          const dir = path.join(root, name);
          fs.mkdirSync(dir);
          for (let f = 0; f < 20; f++) fs.writeFileSync(path.join(dir, `lib${f}.so`), Buffer.alloc(4096, f));
          fs.writeFileSync(path.join(dir, '.dlbundle-complete'), '');
          const t = daysAgo(VERSIONS - v);
          fs.utimesSync(path.join(dir, '.dlbundle-complete'), t, t);
          if (v === VERSIONS - 1) expected.push(name);
          if (b === 0 && v === 1) {
            fs.mkdirSync(path.join(root, '.leases', name), { recursive: true });
            // This process's lease, last written 16 days ago: not the most recent, but in use.
            const lease = path.join(root, '.leases', name, `${ns()}-${process.pid}-${startTime(process.pid)}`);
            fs.writeFileSync(lease, '');
            fs.utimesSync(lease, daysAgo(VERSIONS + 10), daysAgo(VERSIONS + 10));
            expected.push(name);
          }
        }
      }
      const runs = await Promise.all(Array.from({ length: PRUNES }, () => cliRun(root, 'cache', 'prune', '--keep', '1', '--json')));
      for (const [i, r] of runs.entries()) {
        if (r.status !== 0) crashes.push(`round ${round}, prune ${i}: status ${String(r.status)}: ${r.stderr.split('\n').find((l) => /Error|ENOENT/.test(l)) ?? r.stderr.slice(0, 200)}`);
        else removedTotal += (JSON.parse(r.stdout) as { removed: unknown[] }).removed.length;
      }
      left.push({ round, entries: rootEntries(root), expected: expected.sort(), leaseDirs: fs.readdirSync(path.join(root, '.leases')) });
    }
    console.log(`      ${ROUNDS} rounds of ${PRUNES} concurrent prunes over ${BUNDLES * VERSIONS} directories: ${crashes.length} crashed, ${removedTotal} removals reported (${ROUNDS * (BUNDLES * (VERSIONS - 1) - 1)} directories to remove)`);
    for (const c of crashes.slice(0, 3)) console.log(`        ${c}`);
    assert.deepEqual(crashes, []);
    for (const l of left) {
      assert.deepEqual(l.entries, l.expected, `round ${l.round}: what is left in the root`);
      // Nothing left of the removed ones: no lease directories, no intents.
      assert.deepEqual(l.leaseDirs, [`app0-${(1).toString(16).padStart(16, '0')}`], `round ${l.round}: lease directories`);
    }
    assert.equal(removedTotal, ROUNDS * (BUNDLES * (VERSIONS - 1) - 1), 'each directory reported removed by exactly one prune');
  });

  describe('leases of processes that are gone, and of reused pids', () => {
    let sleeper: ChildProcess;
    before(() => {
      sleeper = spawn('sleep', ['600'], { stdio: 'ignore' });
    });
    after(async () => {
      sleeper.kill('SIGKILL');
      await exited(sleeper);
    });

    it('a live pid with another start time (a reused pid) does not keep a directory; dead leases go when listing, pruning and sweeping, their last use kept', () => {
      const pid = sleeper.pid as number;
      const bundle = packed(['libdemo_core.so']);
      const root = privateRoot();
      const start = `const b = dl.openBundle({ source: dl.fromDirectory(P.bundle), cacheDir: P.cache }); b.library('libdemo_core.so', { add: 'int add(int a, int b)' }).add(1, 2); return { dir: b.dir, reused: b.explain().reused };`;
      const old = runChild<{ dir: string }>(start, { params: { bundle, cache: root } }).dir;
      const oldLeases = path.join(root, '.leases', path.basename(old));
      // Unused for 200 days: its marker and the exited process's lease; and the sleeper's pid, as a
      // lease of a process that started 200 days ago — in this version's format (a start time that is
      // not the sleeper's) and in the earlier one (no start time; written long before the sleeper started).
      const wrongStart = String(Number(startTime(pid)) - 1000);
      fs.writeFileSync(path.join(oldLeases, `${ns()}-${pid}-${wrongStart}`), '');
      fs.writeFileSync(path.join(oldLeases, `${ns()}-${pid}`), '');
      for (const f of [path.join(old, '.dlbundle-complete'), ...fs.readdirSync(oldLeases).map((l) => path.join(oldLeases, l))]) fs.utimesSync(f, daysAgo(200), daysAgo(200));
      const deadBefore = fs.readdirSync(oldLeases).sort();

      // Another directory, really in use by the sleeper (its true start time), also 200 days old.
      const used = path.join(root, `other-${'ab'.repeat(8)}`);
      fs.mkdirSync(used);
      fs.writeFileSync(path.join(used, '.dlbundle-complete'), '');
      const usedLeases = path.join(root, '.leases', path.basename(used));
      fs.mkdirSync(usedLeases);
      fs.writeFileSync(path.join(usedLeases, `${ns()}-${pid}-${startTime(pid)}`), '');
      fs.writeFileSync(path.join(usedLeases, `${ns()}-${pid}-${wrongStart}`), '');
      for (const f of [path.join(used, '.dlbundle-complete'), ...fs.readdirSync(usedLeases).map((l) => path.join(usedLeases, l))]) fs.utimesSync(f, daysAgo(200), daysAgo(200));

      // cache list: nobody uses the old one; the dead leases are gone, their last use kept.
      const listed = JSON.parse(cli(root, 'cache', 'list', '--json')) as { dir: string; users: number[]; lastUse: number }[];
      const byDir = new Map(listed.map((e) => [e.dir, e]));
      assert.deepEqual(byDir.get(old)?.users, [], 'users of the directory unused for 200 days');
      assert.deepEqual(byDir.get(used)?.users, [pid], 'users of the directory the sleeper uses');
      assert.ok(Math.abs((byDir.get(old)?.lastUse ?? 0) / 1000 - daysAgo(200)) < 60, 'the last use (200 days ago) survives the removal of the dead leases');
      const afterList = fs.readdirSync(oldLeases).sort();
      assert.deepEqual(afterList, ['.last-use'], `leases left after cache list (were ${JSON.stringify(deadBefore)})`);
      assert.deepEqual(fs.readdirSync(usedLeases).sort(), ['.last-use', `${ns()}-${pid}-${startTime(pid)}`], 'the live lease stays, the reused-pid one goes');

      // cache prune --older-than 30: the old one goes, the one in use stays.
      const out = cli(root, 'cache', 'prune', '--keep', '0', '--older-than', '30');
      assert.equal(fs.existsSync(old), false, `the directory unused for 200 days is removed:\n${out}`);
      assert.equal(fs.existsSync(oldLeases), false, 'with its lease directory');
      assert.equal(fs.existsSync(used), true, 'the directory in use stays');

      // Sweep (a warm start sweeps its root after its first call): a dead lease planted in another
      // directory's lease directory goes.
      const fresh = runChild<{ dir: string; reused: boolean }>(start, { params: { bundle, cache: root } });
      assert.equal(fresh.reused, false);
      fs.writeFileSync(path.join(usedLeases, `${ns()}-${pid}-${wrongStart}`), '');
      const warm = runChild<{ dir: string; reused: boolean }>(start, { params: { bundle, cache: root } });
      assert.equal(warm.reused, true);
      assert.deepEqual(fs.readdirSync(usedLeases).sort(), ['.last-use', `${ns()}-${pid}-${startTime(pid)}`], 'swept by the warm start');
      const freshLeases = fs.readdirSync(path.join(root, '.leases', path.basename(fresh.dir))).filter((n) => !n.startsWith('.'));
      assert.equal(freshLeases.length, 1, `one lease (the warm start's; the cold start's was swept): ${JSON.stringify(freshLeases)}`);
      console.log(`      pid ${pid} (start ${startTime(pid)}): leases ${JSON.stringify(deadBefore)} → ${JSON.stringify(afterList)} after list; removed by prune; warm start swept the planted one`);
    });
  });

  it("a prune intent left in another pid namespace (a container sharing the cache) does not stop starts: it is taken for a killed prune's once 10 s old", () => {
    const bundle = packed();
    const root = privateRoot();
    const cold = runChild<{ ok: boolean; dir: string }>(START, { params: { bundle, cache: root } });
    assert.equal(cold.ok, true);
    const pruning = path.join(root, '.leases', path.basename(cold.dir), '.pruning');
    fs.mkdirSync(pruning, { recursive: true, mode: 0o700 });
    // Namespace 1 is no pid namespace of this machine's processes: its liveness cannot be seen from here.
    for (const [tag, secondsAgo] of [['1-4242-777', 60], ['1-4243-778', 8]] as const) {
      const intent = path.join(pruning, tag);
      fs.writeFileSync(intent, '4242\n');
      fs.utimesSync(intent, Date.now() / 1000 - secondsAgo, Date.now() / 1000 - secondsAgo);
    }
    const warm = runChild<{ ok: boolean; v: number; root: string; reused: boolean; fallbacks: unknown[]; message?: string }>(START, { params: { bundle, cache: root } });
    assert.equal(warm.ok, true, warm.message);
    assert.equal(warm.v, 1011);
    assert.equal(warm.root, root, 'the root was used, not given up after waiting');
    assert.equal(warm.reused, true);
    assert.deepEqual(warm.fallbacks, []);
    assert.equal(fs.existsSync(pruning) ? fs.readdirSync(pruning).length : 0, 0, 'both stale intents were removed');
  });

  it('two bundle instances of one process share one lease: one giving the root up does not remove it while the other uses the directory', () => {
    const bundle = packed();
    // A copy whose app library has one byte changed (same size, same manifest, so the same directory).
    const tampered = path.join(tempDir(), 'tampered');
    fs.cpSync(bundle, tampered, { recursive: true });
    const lib = fs.readdirSync(tampered, { recursive: true }).map(String).find((f) => f.endsWith('libdemo_app.so')) as string;
    const bytes = fs.readFileSync(path.join(tampered, lib));
    bytes.writeUInt8(bytes.readUInt8(bytes.length - 1) ^ 0xff, bytes.length - 1);
    fs.writeFileSync(path.join(tampered, lib), bytes);
    const root = privateRoot();
    const r = runChild<{ good: { ok: boolean }; bad: { ok: boolean; error?: { code: string } }; dir: string; leases: string[]; prune: string; v: number }>(
      `const open = (dir) => dl.openBundle({ source: dl.fromDirectory(dir), cacheDir: P.cache });
       const a = open(P.bundle);
       const b = open(P.tampered);
       for (const x of [a, b]) x.library('libdemo_app.so', { compute: 'int app_compute(int x)' });
       const [good, bad] = await Promise.all([a, b].map((x) => caughtAsync(() => x.ready().then(() => null))));
       const dir = a.dir;
       const leases = fs.readdirSync(path.join(P.cache, '.leases', path.basename(dir))).sort();
       // Another process prunes while this one still uses the directory.
       const prune = require('node:child_process').execFileSync(process.execPath, [P.cli, 'cache', 'prune', '--keep', '0'], { env: { ...process.env, DLBUNDLE_CACHE_DIR: P.cache }, encoding: 'utf8' });
       const v = a.library('libdemo_app.so', { compute: 'int app_compute(int x)' }).compute(5);
       return { good, bad, dir, leases, prune, v };`,
      { params: { bundle, tampered, cache: root, cli: CLI } },
    );
    console.log(`      good ready(): ${JSON.stringify(r.good)}, tampered ready(): ${r.bad.error?.code ?? 'ok'}; leases while in use: ${JSON.stringify(r.leases)}; prune: ${r.prune.trim().split('\n').pop() ?? ''}`);
    assert.equal(r.good.ok, true);
    assert.equal(r.bad.error?.code, 'E_INTEGRITY');
    assert.equal(r.leases.filter((n) => !n.startsWith('.')).length, 1, 'one lease for the process');
    assert.match(r.prune, /in use, kept/);
    assert.equal(fs.existsSync(r.dir), true);
    assert.equal(r.v, 1011);
  });

  it('a complete root on a file system remounted read-only is reused as it is, and explain() says prune cannot protect it', function () {
    const mount = tempDir('dlbundle-ro-');
    try {
      execFileSync('mount', ['-t', 'tmpfs', '-o', 'mode=0700,size=64m', 'tmpfs', mount], { stdio: 'pipe' });
    } catch {
      console.log('      skipped: mounting a tmpfs is not permitted here');
      this.skip();
    }
    try {
      const bundle = packed();
      const cache = path.join(mount, 'cache');
      const cold = runChild<Start>(START, { params: { bundle, cache } });
      assert.equal(cold.reused, false);
      execFileSync('mount', ['-o', 'remount,ro', mount], { stdio: 'pipe' });
      const dir = cold.dir as string;
      const before = fs.readdirSync(dir).sort();
      const warm = runChild<Start>(START, { params: { bundle, cache } });
      console.log(`      read-only root: ${JSON.stringify({ ok: warm.ok, v: warm.v, root: warm.root, reused: warm.reused, fallbacks: warm.fallbacks, unprotected: warm.unprotected })}`);
      assert.equal(warm.ok, true, String(warm.message));
      assert.equal(warm.v, 1011, 'the native call works');
      assert.equal(warm.root, cache, 'the read-only root is used');
      assert.equal(warm.reused, true, 'reused, not extracted again');
      assert.deepEqual(warm.fallbacks, []);
      assert.match(warm.unprotected ?? '', /read-only.*cache prune/);
      assert.equal(warm.dir, dir);
      assert.deepEqual(fs.readdirSync(dir).sort(), before);
      // Prune cannot remove anything there: it says so and goes on (the cold start's dead lease cannot be removed either).
      const pruned = pruneCache({ roots: [cache], keep: 0 });
      assert.deepEqual(pruned.removed, []);
      assert.deepEqual(pruned.skipped.map((k) => [k.root, k.code]), [[cache, 'E_IO']]);
      assert.match(pruned.skipped[0]?.reason ?? '', /read-only file system: nothing in it can be removed/);
      assert.deepEqual(listCache([cache]).map((e) => e.dir), [dir]);
      assert.deepEqual(fs.readdirSync(dir).sort(), before);
    } finally {
      spawnSync('umount', [mount]);
    }
  });
});

/**
 * Processes killed (SIGKILL) while extracting, and the staging directories
 * they leave: a later start must work, load only complete files, and remove
 * the staging of processes that are gone — never that of live ones.
 *
 * Sizes chosen (the whole file must stay well under 90 s on 2 cores):
 * - the bundle: libdemo_core, libdemo_codec, libdemo_app and the 64 MiB
 *   libdemo_big, so that the writing phase is long enough to be hit.
 * - the killed child cold-starts (synchronous first touch or `await ready()`,
 *   chosen by the PRNG), prints its answers, then stays alive as an
 *   application would, so every kill lands (none is wasted on a child that
 *   already exited) and "after the rename" covers a running process too.
 * - T = median of the last 3 uninterrupted cold starts of the same path (spawn
 *   → answers): 3 per path first, then one more per path every 10 kills, to
 *   follow the machine's load. Measured on the 2-core build machine: T ≈
 *   180–290 ms (sync), 210–370 ms (ready()).
 * - kills: 50, delays drawn from a fixed-seed PRNG (mulberry32, seed
 *   0x5eed2bad) in [0.2·T, 1.3·T] after spawn; more (at most 80) only if
 *   fewer than 3 landed while writing or after the rename. Each kill is
 *   followed by a normal start (a child) and checks. Measured: 28–35 s;
 *   kills split about 15–18 before staging, 12–17 while writing, 15–23 after
 *   the rename.
 * - live / foreign staging: 6 starts, about 2 s.
 */
import { strict as assert } from 'node:assert';
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { performance } from 'node:perf_hooks';
import { bundleDirName, COMPLETE_MARKER } from '../src/cache';
import { stagingOwner, STALE_STAGING_MS } from '../src/leases';
import { MANIFEST_FILE, parseManifest, type ManifestFile, type ManifestVariant } from '../src/manifest';
import { pack } from '../src/pack';
import { DIST, MAPPED_REPORT, runChild, type MappedFile } from './child';
import { hashFile, nativeFixture, prng, REPO, rootEntries, stagingIn, tempDir } from './fixtures';

const SEED = 0x5eed2bad;
const KILLS = 50;
// More kills are made, past KILLS, only while fewer than 3 have landed while writing or after the rename.
const MAX_KILLS = 80;
// Delays are drawn in [DELAY_FROM·T, DELAY_TO·T]. With [0, 1.3·T] (the first
// choice) more than half the kills landed while Node was still booting, and
// 0, 4 and 6 of 50 landed after the rename in three runs; starting at 0.2·T
// (and re-measuring T as the load changes) keeps some of every kind.
const DELAY_FROM = 0.2;
const DELAY_TO = 1.3;

const FILES = ['libdemo_core.so', 'libdemo_codec.so.1.2.3', 'libdemo_app.so', 'libdemo_big.so'];
const HASH_MODULE = path.join(REPO, 'dist', 'hash.js');

interface Packed {
  readonly dir: string;
  readonly variant: ManifestVariant;
  readonly files: ReadonlyMap<string, ManifestFile>;
  readonly dirName: string;
}

let bundle: Packed;

before(function () {
  this.timeout(60_000);
  const dir = path.join(tempDir(), 'bundle');
  const r = pack(FILES.map(nativeFixture), { name: 'demo', out: dir });
  const manifest = parseManifest(fs.readFileSync(path.join(dir, MANIFEST_FILE), 'utf8'), MANIFEST_FILE);
  const variant = manifest.variants[r.target];
  assert.ok(variant !== undefined);
  bundle = { dir, variant, files: new Map(variant.files.map((f) => [f.name, f])), dirName: bundleDirName('demo', variant) };
});


function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] ?? NaN;
}

function pidNamespace(): string {
  const ns = /\[(\d+)\]/.exec(fs.readlinkSync('/proc/self/ns/pid'))?.[1];
  assert.ok(ns !== undefined, 'readlink /proc/self/ns/pid');
  return ns;
}


function privateRoot(root: string): void {
  fs.mkdirSync(root, { recursive: true, mode: 0o700 });
  fs.chmodSync(root, 0o700);
}

/**
 * Whether `<root>/<dirName>` is complete when it exists: the marker, and
 * every file with its manifest size. `hash` also compares every file's xxh64.
 * Returns false when there is no final directory.
 */
function checkFinalIfPresent(root: string, hash: boolean, when: string): boolean {
  const dir = path.join(root, bundle.dirName);
  let names: string[];
  try {
    names = fs.readdirSync(dir);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw e;
  }
  assert.ok(names.includes(COMPLETE_MARKER), `${when}: ${dir} is visible without its completion marker: ${JSON.stringify(names)}`);
  for (const f of bundle.variant.files) {
    const p = path.join(dir, f.name);
    const st = fs.statSync(p, { throwIfNoEntry: false });
    assert.ok(st !== undefined, `${when}: ${dir} has its marker but no ${f.name}`);
    assert.equal(st.size, f.size, `${when}: ${dir} has its marker but ${f.name} has ${st.size} bytes, not ${f.size}`);
    if (hash) assert.equal(hashFile(p), f.xxh64, `${when}: ${p} content`);
  }
  return true;
}

// The child that is killed: a cold start of both libraries, through the
// synchronous first touch or through `await ready()`; it prints its answers
// on one line, then stays alive for `linger` ms, as an application would.
const EXTRACTING = `
  const dl = require(process.env.DLBUNDLE_TEST_DIST);
  const [bundleDir, cacheDir, how, linger] = process.argv.slice(1);
  const b = dl.openBundle({ source: dl.fromDirectory(bundleDir), cacheDir });
  const big = b.library('libdemo_big.so', { check: 'int big_check(void)' });
  const app = b.library('libdemo_app.so', { compute: 'int app_compute(int x)' });
  (async () => {
    if (how === 'ready') await b.ready();
    process.stdout.write(JSON.stringify({ big: big.check(), app: app.compute(5) }) + '\\n');
    if (Number(linger) > 0) setTimeout(() => undefined, Number(linger));
  })();
`;

type How = 'sync' | 'ready';

interface Exit {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
  /** From spawn to the answers line, or null when it never came. */
  readonly resultMs: number | null;
  /** From spawn to exit. */
  readonly ms: number;
}

/** Spawns the extracting child; `killAfter` (ms after spawn) sends SIGKILL; `onTick` runs every 2 ms while it lives. */
function extracting(root: string, how: How, opts: { readonly killAfter?: number; readonly linger: number; readonly onTick?: () => void }): { child: ChildProcess; exit: Promise<Exit> } {
  const env: NodeJS.ProcessEnv = { ...process.env, DLBUNDLE_TEST_DIST: DIST, XDG_CACHE_HOME: tempDir('dlbundle-xdg-') };
  for (const name of ['DLBUNDLE_CACHE_DIR', 'LD_LIBRARY_PATH', 'DEBUG', 'NODE_OPTIONS']) delete env[name];
  const started = performance.now();
  const child = spawn(process.execPath, ['-e', EXTRACTING, bundle.dir, root, how, String(opts.linger)], { env, cwd: REPO, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  let resultMs: number | null = null;
  child.stdout?.setEncoding('utf8').on('data', (d: string) => {
    stdout += d;
    if (resultMs === null && stdout.includes('\n')) resultMs = performance.now() - started;
  });
  child.stderr?.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const timer = opts.killAfter === undefined ? undefined : setTimeout(() => child.kill('SIGKILL'), opts.killAfter);
  const poll = opts.onTick === undefined ? undefined : setInterval(opts.onTick, 2);
  const exit = new Promise<Exit>((resolve, reject) => {
    child.on('error', reject);
    // 'close' comes after 'exit' (the child is reaped, so its pid names nobody) and after its output.
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      clearInterval(poll);
      resolve({ code, signal, stdout, stderr, resultMs, ms: performance.now() - started });
    });
  });
  return { child, exit };
}


interface NormalRun {
  readonly big: number;
  readonly app: number;
  readonly reused: boolean | null;
  readonly dir: string | null;
  readonly libraryPaths: readonly string[];
  readonly mapped: readonly MappedFile[];
}

const NORMAL = `
  ${MAPPED_REPORT}
  const b = dl.openBundle({ source: dl.fromDirectory(P.bundle), cacheDir: P.cache, verify: P.verify });
  const big = b.library('libdemo_big.so', { check: 'int big_check(void)' });
  const app = b.library('libdemo_app.so', { compute: 'int app_compute(int x)' });
  const result = { big: big.check(), app: app.compute(5) };
  const report = b.explain();
  return { ...result, reused: report.reused, dir: b.dir, libraryPaths: report.libraries.map((l) => l.path), mapped: mappedReport() };
`;

/** A normal start in `root` (a child that exits on its own), checked: answers, and every mapped file complete and from the final directory. */
function normalStart(root: string, verify: 'size' | 'full', who: string): NormalRun {
  const r = runChild<NormalRun>(NORMAL, { params: { bundle: bundle.dir, cache: root, verify, hashModule: HASH_MODULE } });
  const dir = path.join(root, bundle.dirName);
  assert.equal(r.big, 4, `${who}: big_check()`);
  assert.equal(r.app, 1011, `${who}: app_compute(5)`);
  assert.equal(r.dir, dir, who);
  assert.deepEqual([...r.libraryPaths].sort(), FILES.map((n) => path.join(dir, n)).sort(), `${who}: explain().libraries paths`);
  assert.deepEqual(r.mapped.map((m) => path.basename(m.path)).sort(), [...FILES].sort(), `${who}: mapped ${JSON.stringify(r.mapped.map((m) => m.path))}`);
  for (const m of r.mapped) {
    assert.equal(path.dirname(m.path), dir, `${who}: ${m.path} mapped from outside the final directory`);
    assert.deepEqual(m.mappedInodes, [m.inode], `${who}: ${m.path} now names inode ${String(m.inode)}, the mapping has ${JSON.stringify(m.mappedInodes)}`);
    const f = bundle.files.get(path.basename(m.path));
    assert.ok(f !== undefined, m.path);
    assert.equal(m.size, f.size, `${who}: ${m.path} size`);
    assert.equal(m.xxh64, f.xxh64, `${who}: ${m.path} hashes to ${String(m.xxh64)}, the manifest says ${f.xxh64}`);
  }
  return r;
}

type Outcome = 'nothing' | 'writing' | 'loading' | 'running';

describe('kill: SIGKILL at random moments of a cold start (64 MiB bundle)', () => {
  it(`at least ${KILLS} kills (seed 0x${SEED.toString(16)}, delay in [${DELAY_FROM}·T, ${DELAY_TO}·T]): every later start works and loads only complete files; dead staging is removed; no final directory is ever incomplete`, async function () {
    this.timeout(240_000);
    const base = tempDir('dlbundle-kill-');
    let rootNo = 0;
    const newRoot = (): string => path.join(base, `root-${rootNo++}`);

    // T: uninterrupted cold starts (spawn → answers), per path: the median of
    // the last 3, measured 3 times first and once more every 10 kills, so that
    // the delays follow the machine's load (other suites share the 2 cores).
    const samples: Record<How, number[]> = { sync: [], ready: [] };
    const T: Record<How, number> = { sync: 0, ready: 0 };
    const measure = async (how: How): Promise<void> => {
      const root = newRoot();
      const e = await extracting(root, how, { linger: 0 }).exit;
      assert.equal(e.code, 0, `uninterrupted ${how} cold start: ${e.stderr}`);
      assert.deepEqual(JSON.parse(e.stdout), { big: 4, app: 1011 });
      assert.deepEqual(rootEntries(root), [bundle.dirName]);
      assert.ok(e.resultMs !== null);
      samples[how].push(e.resultMs);
      T[how] = median(samples[how].slice(-3));
      fs.rmSync(root, { recursive: true, force: true });
    };
    for (const how of ['sync', 'ready'] as const) for (let i = 0; i < 3; i++) await measure(how);
    const firstT = { ...T };

    const rand = prng(SEED);
    // nothing: killed before its staging directory existed; writing: staging only;
    // loading: after the rename, before its answers; running: after its answers.
    const counts: Record<Outcome, number> = { nothing: 0, writing: 0, loading: 0, running: 0 };
    let freshRoots = 0;
    let reusedRoots = 0;
    let sweptStaging = 0;
    let finalSightings = 0;
    let killChildMs = 0;
    let normalMs = 0;
    const started = performance.now();
    let root = newRoot();
    let k = 0;
    const enough = (): boolean => k >= KILLS && counts.writing >= 3 && counts.loading + counts.running >= 3;
    while (!enough() && k < MAX_KILLS) {
      k++;
      if (k % 10 === 0) for (const h of ['sync', 'ready'] as const) await measure(h);
      const how: How = rand() < 0.5 ? 'sync' : 'ready';
      const delay = (DELAY_FROM + rand() * (DELAY_TO - DELAY_FROM)) * T[how];
      const verify = rand() < 0.5 ? 'size' : 'full';
      if (rand() < 0.5) {
        // A fresh root (the previous one is removed: 64 MiB each).
        fs.rmSync(root, { recursive: true, force: true });
        root = newRoot();
        freshRoots++;
      } else {
        // The same root again, cold: its final directory removed, the leases of dead processes kept.
        fs.rmSync(path.join(root, bundle.dirName), { recursive: true, force: true });
        reusedRoots++;
      }
      const who = `kill ${k} (${how}, after ${delay.toFixed(0)} ms of T=${T[how].toFixed(0)} ms, then verify ${verify})`;
      assert.deepEqual(rootEntries(root), [], `${who}: the root is cold`);

      // While the child runs, the final directory is checked whenever it is seen.
      let sightingError: unknown = null;
      const { child, exit } = extracting(root, how, {
        killAfter: delay,
        linger: 10_000,
        onTick: () => {
          try {
            if (checkFinalIfPresent(root, false, `${who}, while running`)) finalSightings++;
          } catch (err) {
            sightingError ??= err;
          }
        },
      });
      const e = await exit;
      killChildMs += e.ms;
      if (sightingError !== null) throw sightingError;
      assert.equal(e.signal, 'SIGKILL', `${who}: the child ended by itself (status ${String(e.code)}): ${e.stderr}`);
      if (e.resultMs !== null) assert.deepEqual(JSON.parse(e.stdout), { big: 4, app: 1011 }, `${who}: the killed child's answers`);

      const left = rootEntries(root);
      const staging = stagingIn(root);
      const final = checkFinalIfPresent(root, true, `${who}, after the kill`);
      const outcome: Outcome = final ? (e.resultMs !== null ? 'running' : 'loading') : staging.length > 0 ? 'writing' : 'nothing';
      counts[outcome]++;
      // Whatever the moment, the root holds the final directory or the dead child's staging, nothing else;
      // both only when the child was killed while flushing a directory it had published (its boot-bound
      // marker is then in place, and the staging directory is the one of the marker that replaces it).
      for (const s of staging) assert.equal(stagingOwner(s)?.pid, child.pid, `${who}: ${s} is not the killed child's`);
      assert.deepEqual(left.filter((n) => n !== bundle.dirName && !n.startsWith('.staging')), [], `${who}: the root holds ${JSON.stringify(left)}`);
      assert.ok(!(final && staging.some((s) => !s.startsWith('.staging-marker-'))), `${who}: a final directory and a staging directory: ${JSON.stringify(left)}`);
      assert.ok(staging.length <= 1, `${who}: ${JSON.stringify(staging)}`);

      // A normal start: right answers, only complete files mapped from the final directory.
      const normalStarted = performance.now();
      normalStart(root, verify, `${who}, normal start after the kill (${outcome})`);
      normalMs += performance.now() - normalStarted;
      // After it exited: the dead child's staging directory is gone, nothing but the final directory remains.
      for (const s of staging) assert.ok(!fs.existsSync(path.join(root, s)), `${who}: ${s} of the dead child is still there after a normal start`);
      sweptStaging += staging.length;
      assert.deepEqual(rootEntries(root), [bundle.dirName], `${who}: after the normal start`);
      checkFinalIfPresent(root, false, `${who}, after the normal start`);
    }
    const ms = performance.now() - started;
    console.log(
      `      T (median of the last 3 uninterrupted cold starts, spawn to answers): sync ${firstT.sync.toFixed(0)} ms at first, ${T.sync.toFixed(0)} ms at the end ` +
        `[${samples.sync.map((x) => x.toFixed(0)).join(', ')}]; ready() ${firstT.ready.toFixed(0)} → ${T.ready.toFixed(0)} ms [${samples.ready.map((x) => x.toFixed(0)).join(', ')}]`,
    );
    console.log(
      `      ${k} SIGKILLs (${freshRoots} fresh roots, ${reusedRoots} reused): ${counts.nothing} before staging, ${counts.writing} while writing (staging only), ` +
        `${counts.loading + counts.running} after the rename (${counts.loading} before its answers, ${counts.running} after); ` +
        `${k} normal starts correct, ${sweptStaging} dead staging dirs removed by them, final dir seen ${finalSightings} times while a child ran, always complete; ` +
        `${(ms / 1000).toFixed(1)} s (killed children ${(killChildMs / 1000).toFixed(1)} s, normal starts ${(normalMs / 1000).toFixed(1)} s)`,
    );
    assert.ok(k >= KILLS);
    assert.ok(counts.writing >= 3, `too few kills while writing: ${JSON.stringify(counts)}`);
    assert.ok(counts.loading + counts.running >= 3, `too few kills after the rename: ${JSON.stringify(counts)}`);
  });
});

describe('kill: staging directories of live processes, and of other pid namespaces', () => {
  const DAY = STALE_STAGING_MS;

  function fakeStaging(root: string, name: string): string {
    const dir = path.join(root, name);
    fs.mkdirSync(dir, { mode: 0o700 });
    // A partly written library, as an interrupted extraction leaves it.
    fs.writeFileSync(path.join(dir, 'libdemo_big.so'), fs.readFileSync(nativeFixture('libdemo_core.so')), { mode: 0o700 });
    return name;
  }

  function exited(child: ChildProcess): Promise<void> {
    return new Promise((resolve) => {
      if (child.exitCode !== null || child.signalCode !== null) resolve();
      else child.on('close', () => resolve());
    });
  }

  it('a live process\'s staging survives cold and warm starts and is removed by the first start after it dies; another namespace\'s is kept until it is older than 24 h', async function () {
    this.timeout(60_000);
    const ns = pidNamespace();
    const root = path.join(tempDir(), 'cache');
    privateRoot(root);
    const digest = bundle.variant.digest;

    const sleeper = spawn('sleep', ['60'], { stdio: 'ignore' });
    const dead = spawn('true', [], { stdio: 'ignore' });
    try {
      assert.ok(sleeper.pid !== undefined && dead.pid !== undefined);
      await exited(dead); // reaped: its pid names no process in this namespace
      const otherNs = String(BigInt(ns) + 1n);
      const live = fakeStaging(root, `.staging-demo-${digest}-${ns}-${sleeper.pid}-abcdef123456`);
      const deadHere = fakeStaging(root, `.staging-demo-${digest}-${ns}-${dead.pid}-deadbeef0001`);
      const foreign = fakeStaging(root, `.staging-demo-${digest}-${otherNs}-${dead.pid}-fedcba654321`);
      for (const n of [live, deadHere, foreign]) assert.ok(stagingOwner(n) !== null, `stagingOwner parses ${n}`);
      const steps: string[] = [];
      const step = (what: string, verify: 'size' | 'full', expectReused: boolean, expectStaging: readonly string[]): void => {
        const r = normalStart(root, verify, what);
        assert.equal(r.reused, expectReused, `${what}: reused`);
        assert.deepEqual(stagingIn(root), [...expectStaging].sort(), `${what}: staging left`);
        steps.push(`${what}: ${stagingIn(root).length} staging kept`);
      };

      step('cold start, sleeper alive', 'size', false, [live, foreign]); // the dead one of this namespace is swept before extracting
      step('warm start, sleeper alive', 'size', true, [live, foreign]);
      step('warm start, verify full, sleeper alive', 'full', true, [live, foreign]);

      sleeper.kill('SIGKILL');
      await exited(sleeper);
      step('warm start, sleeper dead', 'size', true, [foreign]);

      // The other namespace's pid cannot be checked from here: only age removes it.
      const now = Date.now() / 1000;
      fs.utimesSync(path.join(root, foreign), now - (DAY / 1000 - 3600), now - (DAY / 1000 - 3600));
      step('warm start, foreign staging 23 h old', 'size', true, [foreign]);
      fs.utimesSync(path.join(root, foreign), now - (DAY / 1000 + 3600), now - (DAY / 1000 + 3600));
      fs.rmSync(path.join(root, bundle.dirName), { recursive: true });
      step('cold start, foreign staging 25 h old', 'size', false, []);
      assert.deepEqual(rootEntries(root), [bundle.dirName]);
      console.log(`      live pid ${sleeper.pid} / dead pid ${dead.pid} in pid ns ${ns}, foreign ns ${otherNs}: ${steps.join('; ')}`);
    } finally {
      if (sleeper.exitCode === null && sleeper.signalCode === null) sleeper.kill('SIGKILL');
    }
  });
});

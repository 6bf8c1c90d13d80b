/**
 * `dlbundle pack` under build-side faults, produced for real: a bundle packed
 * by root read by another user (setpriv), packs SIGKILLed at seeded random
 * instants while they replace a bundle, a 64 MiB input (peak RSS of the
 * packing child) and a 2.1 GiB sparse input.
 *
 * Sizes and counts (the file stays under a minute on 2 cores):
 * - kills: 30 packs of the CLI (each ~35 MiB: three demo libraries and
 *   libdemo_plugin.so with 32 MiB of random bytes appended, ELF allows
 *   trailing data), alternating between two contents whose every file
 *   differs. Half are killed after a delay drawn (mulberry32, seed
 *   0x9ac4f00d) in [0.3·T, 1.0·T], T = the median of 3 uninterrupted packs;
 *   with delays only, 30 kills split 16 before staging, 11 while writing,
 *   0 in the few milliseconds of the switch, 3 in the cleanup. So the other
 *   half are killed as soon as a 1 ms poll sees a generation directory or a
 *   replaced dlbundle.json. After each kill a child loads the bundle and
 *   calls into it, then an uninterrupted pack follows and the directory must
 *   hold nothing else. About 30 s (45 s while other suites load the machine).
 * - a death after each of the ~31 file-system changes of a small pack, by
 *   substituting the fs calls (a few seconds).
 * - the 2.1 GiB sparse input: 4–11 s to pack, depending on the load.
 */
import { strict as assert } from 'node:assert';
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
// The module object itself (a namespace import is a read-only view of it), to substitute its calls.
import fsModule from 'node:fs';
import * as path from 'node:path';
import { performance } from 'node:perf_hooks';
import { runSync, syncIo } from '../src/io';
import { MANIFEST_FILE, type ManifestVariant } from '../src/manifest';
import { pack } from '../src/pack';
import { PACK_LOCK } from '../src/pack-lock';
import { fromDirectory, parseGenerationDirName, readManifestFile } from '../src/sources/directory';
import { createXxh64 } from '../src/hash';
import { hostTarget } from '../src/variant';
import { runChild } from './child';
import { expectCode, hashFile, nativeFixture, prng, REPO, tempDir } from './fixtures';

const CLI = path.join(REPO, 'dist', 'cli.js');
const KEY = hostTarget();

function mode(p: string): string {
  return (fs.statSync(p).mode & 0o777).toString(8).padStart(4, '0');
}

/** Every entry under `dir` (relative path → mode), recursively. */
function modes(dir: string): Record<string, string> {
  const out: Record<string, string> = { '.': mode(dir) };
  for (const e of fs.readdirSync(dir, { recursive: true }).map(String).sort()) out[e] = mode(path.join(dir, e));
  return out;
}

/** Runs the CLI's pack under a shell with `umask`, as a CI job or `sudo make` would. */
function packWithUmask(umask: string, out: string, inputs: readonly string[]): void {
  const r = spawnSync('sh', ['-c', `umask ${umask} && exec "$@"`, 'sh', process.execPath, CLI, 'pack', ...inputs, '--name', 'demo', '--out', out], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
}

interface NobodyRun {
  readonly uid: number;
  readonly add?: number;
  readonly compute?: number;
  readonly error?: { code: string; message: string };
}

/** Opens the bundle as uid 65534 (setpriv) in a child and calls add(2, 3) and app_compute(5). */
function loadAsNobody(bundle: string): NobodyRun {
  const home = tempDir();
  fs.chownSync(home, 65534, 65534);
  const script = `
    const dl = require(${JSON.stringify(path.join(REPO, 'dist', 'index.js'))});
    const b = dl.openBundle({ source: dl.fromDirectory(${JSON.stringify(bundle)}), cacheDir: ${JSON.stringify(path.join(home, 'cache'))} });
    try {
      const add = b.library('libdemo_core.so', { add: 'int add(int a, int b)' }).add(2, 3);
      const compute = b.library('libdemo_app.so', { compute: 'int app_compute(int x)' }).compute(5);
      console.log(JSON.stringify({ uid: process.getuid(), add, compute }));
    } catch (e) {
      console.log(JSON.stringify({ uid: process.getuid(), error: { code: e.code, message: e.message } }));
    }`;
  const r = spawnSync('setpriv', ['--reuid', '65534', '--regid', '65534', '--clear-groups', '--', process.execPath, '-e', script], {
    encoding: 'utf8',
    env: { PATH: process.env.PATH ?? '', HOME: home, XDG_CACHE_HOME: home },
  });
  assert.equal(r.status, 0, r.stderr);
  return JSON.parse(r.stdout) as NobodyRun;
}

describe('pack: modes follow the umask', function () {
  this.timeout(60_000);
  const LIBS = ['libdemo_core.so', 'libdemo_codec.so.1.2.3', 'libdemo_app.so'];

  it('packed by root under umask 022: directories 0755, files 0644, and uid 65534 loads it and calls into it', () => {
    const parent = tempDir();
    // Only the test's own directory is opened to the other user.
    fs.chmodSync(parent, 0o755);
    const out = path.join(parent, 'bundle');
    packWithUmask('022', out, LIBS.map(nativeFixture));
    // Packed again over itself (the replace path).
    packWithUmask('022', out, LIBS.map(nativeFixture));
    const r = loadAsNobody(out);
    assert.deepEqual(r, { uid: 65534, add: 5, compute: 1011 });
    assert.deepEqual(modes(out), {
      '.': '0755',
      [MANIFEST_FILE]: '0644',
      [KEY]: '0755',
      ...Object.fromEntries(LIBS.map((n) => [path.join(KEY, n), '0644'])),
    });
  });

  it('packed under umask 077: directories 0700, files 0600, and uid 65534 is refused with E_IO (the umask decides, not dlbundle)', () => {
    const parent = tempDir();
    fs.chmodSync(parent, 0o755);
    const out = path.join(parent, 'bundle');
    packWithUmask('077', out, LIBS.map(nativeFixture));
    assert.deepEqual(modes(out), {
      '.': '0700',
      [MANIFEST_FILE]: '0600',
      [KEY]: '0700',
      ...Object.fromEntries(LIBS.map((n) => [path.join(KEY, n), '0600'])),
    });
    const r = loadAsNobody(out);
    assert.equal(r.uid, 65534);
    assert.equal(r.error?.code, 'E_IO', JSON.stringify(r));
    assert.match(r.error?.message ?? '', /EACCES/);
  });
});

// Two contents for one bundle, with the same file names and different bytes in
// every file (random bytes appended past each ELF file's end), so that new
// files under the old manifest cannot go unseen.
const KILL_LIBS = ['libdemo_core.so', 'libdemo_codec.so.1.2.3', 'libdemo_app.so', 'libdemo_plugin.so'];
const FILLER = 'libdemo_plugin.so';
const FILLER_BYTES = 32 << 20;
const KILL_SEED = 0x9ac4f00d;
const KILLS = 30;

interface Content {
  readonly label: string;
  readonly dir: string;
  /** File name → xxh64, hashed here independently of pack. */
  readonly hashes: ReadonlyMap<string, string>;
}

function makeContent(label: string, rand: () => number, fillerBytes = FILLER_BYTES): Content {
  const dir = path.join(tempDir(), label);
  fs.mkdirSync(dir);
  const hashes = new Map<string, string>();
  for (const name of KILL_LIBS) {
    const tail = Buffer.allocUnsafe(name === FILLER ? fillerBytes : 64);
    for (let i = 0; i < tail.length; i += 4) tail.writeUInt32LE(Math.floor(rand() * 2 ** 32), i);
    const p = path.join(dir, name);
    fs.writeFileSync(p, Buffer.concat([fs.readFileSync(nativeFixture(name)), tail]));
    hashes.set(name, hashFile(p));
  }
  return { label, dir, hashes };
}

type Phase = 'booting' | 'writing' | 'generation' | 'switched' | 'cleanup' | 'finished';

interface Exit {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stderr: string;
  readonly ms: number;
}

/**
 * When a pack child is killed: after a delay (ms after spawn), or as soon as
 * a poll (every millisecond) sees a generation directory or dlbundle.json
 * replaced — the short windows of the switch that random delays rarely hit —
 * with the delay as a backstop.
 */
interface KillAt {
  readonly after: number;
  readonly when?: 'generation' | 'switch';
}

/** Runs the CLI's pack of `content` into `out`, killed (SIGKILL) as `kill` says unless it ended first. */
function packChild(content: Content, out: string, kill?: KillAt): Promise<Exit> {
  const manifestIno = fs.statSync(path.join(out, MANIFEST_FILE), { throwIfNoEntry: false })?.ino;
  const started = performance.now();
  const child = spawn(process.execPath, [CLI, 'pack', content.dir, '--name', 'demo', '--out', out], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr?.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const timer = kill === undefined ? undefined : setTimeout(() => child.kill('SIGKILL'), kill.after);
  const seen = (): boolean =>
    kill?.when === 'generation'
      ? fs.readdirSync(out).some((n) => parseGenerationDirName(n) !== null)
      : fs.statSync(path.join(out, MANIFEST_FILE), { throwIfNoEntry: false })?.ino !== manifestIno;
  const poll = kill?.when === undefined ? undefined : setInterval(() => {
    if (seen()) child.kill('SIGKILL');
  }, 1);
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    // 'close' comes after the child is reaped: its pid names nobody any more.
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      clearInterval(poll);
      resolve({ code, signal, stderr, ms: performance.now() - started });
    });
  });
}

/** The variant the bundle's manifest now names, and which content it is. */
function currentVariant(out: string, contents: readonly Content[], who: string): { variant: ManifestVariant; content: Content } {
  const manifest = readManifestFile(out);
  assert.ok(manifest !== null, `${who}: ${out} has no dlbundle.json`);
  const variant = manifest.variants[KEY];
  assert.ok(variant !== undefined, `${who}: no variant ${KEY}`);
  const content = contents.find((c) => variant.files.length === c.hashes.size && variant.files.every((f) => c.hashes.get(f.name) === f.xxh64));
  assert.ok(content !== undefined, `${who}: dlbundle.json names neither content: ${JSON.stringify(variant.files.map((f) => [f.name, f.xxh64]))}`);
  return { variant, content };
}

const LOAD = `
  const b = dl.openBundle({ source: dl.fromDirectory(P.bundle), cacheDir: P.cache });
  const compute = caught(() => b.library('libdemo_app.so', { compute: 'int app_compute(int x)' }).compute(5));
  const add = caught(() => b.library('libdemo_core.so', { add: 'int add(int a, int b)' }).add(2, 3));
  return { compute, add, libraries: compute.ok ? b.explain().libraries.map((l) => [l.name, l.path]) : [] };
`;

describe('pack: SIGKILL at random instants while replacing a bundle', function () {
  this.timeout(180_000);

  it(`${KILLS} kills (seed 0x${KILL_SEED.toString(16)}): the bundle always loads, whole old or whole new; the next pack leaves nothing else behind`, async () => {
    const rand = prng(KILL_SEED);
    const contents = [makeContent('one', rand), makeContent('two', rand)] as const;
    const out = path.join(tempDir(), 'bundle');
    const caches = tempDir('dlbundle-pack-kill-cache-');

    // T: uninterrupted packs of the CLI over the existing bundle.
    const samples: number[] = [];
    for (let i = 0; i < 3; i++) {
      const e = await packChild(contents[i % 2] as Content, out);
      assert.equal(e.code, 0, e.stderr);
      samples.push(e.ms);
    }
    const T = [...samples].sort((a, b) => a - b)[1] as number;
    let current = currentVariant(out, contents, 'after the uninterrupted packs').content;

    const counts: Record<Phase, number> = { booting: 0, writing: 0, generation: 0, switched: 0, cleanup: 0, finished: 0 };
    const loaded = { old: 0, new: 0 };
    let removedLater = 0;
    let randomKills = 0;
    const started = performance.now();
    for (let k = 1; k <= KILLS; k++) {
      const next = contents[current === contents[0] ? 1 : 0];
      const draw = rand();
      const when = draw < 0.5 ? undefined : draw < 0.75 ? 'generation' : 'switch';
      const killAfter = when === undefined ? (0.3 + rand() * 0.7) * T : 2 * T;
      const who = `kill ${k} (pack of ${next.label} over ${current.label}, ${when === undefined ? `after ${killAfter.toFixed(0)} ms of T=${T.toFixed(0)} ms` : `when the ${when} is seen`})`;
      if (when === undefined) randomKills++;
      const e = await packChild(next, out, when === undefined ? { after: killAfter } : { after: killAfter, when });

      // What the kill left, before anything else touches the directory.
      const entries = fs.readdirSync(out);
      const staging = entries.filter((n) => n.includes('.staging'));
      const generations = entries.filter((n) => parseGenerationDirName(n) !== null);
      const now = currentVariant(out, contents, who);
      const switched = now.content === next;
      const phase: Phase =
        e.signal !== 'SIGKILL' ? 'finished' : !switched ? (generations.length > 0 ? 'generation' : staging.length > 0 ? 'writing' : 'booting') : generations.length > 0 || !entries.includes(KEY) ? 'switched' : 'cleanup';
      counts[phase]++;
      if (phase === 'finished') assert.equal(e.code, 0, `${who}: ${e.stderr}`);
      (switched ? loaded.new++ : loaded.old++);

      // A real start loads the bundle: every library is the content the manifest names.
      const cache = path.join(caches, `c${k}`);
      const r = runChild<{ compute: { ok: boolean; value?: number; error?: unknown }; add: { ok: boolean; value?: number; error?: unknown }; libraries: [string, string][] }>(LOAD, { params: { bundle: out, cache } });
      assert.deepEqual(r.compute, { ok: true, value: 1011 }, `${who} (${phase}): app_compute(5) after the kill: ${JSON.stringify(r.compute)}; left ${JSON.stringify(entries)}`);
      assert.deepEqual(r.add, { ok: true, value: 5 }, `${who} (${phase}): add(2, 3)`);
      for (const [name, p] of r.libraries) assert.equal(hashFile(p), now.content.hashes.get(name), `${who} (${phase}): ${name} loaded from ${p} is not ${now.content.label}'s`);
      assert.equal(r.libraries.length, KILL_LIBS.length - 1, `${who}: libraries loaded`);
      fs.rmSync(cache, { recursive: true, force: true });

      // The following pack (uninterrupted) removes what the killed one left.
      pack([next.dir], { name: 'demo', out });
      assert.deepEqual(fs.readdirSync(out).sort(), [MANIFEST_FILE, KEY].sort(), `${who} (${phase}): after the following pack; the kill had left ${JSON.stringify(entries)}`);
      removedLater += entries.filter((n) => n !== MANIFEST_FILE && n !== KEY).length;
      assert.equal(currentVariant(out, contents, who).content, next);
      for (const name of KILL_LIBS) assert.equal(hashFile(path.join(out, KEY, name)), next.hashes.get(name), `${who}: ${name} after the following pack`);
      current = next;
    }
    console.log(
      `      T = ${T.toFixed(0)} ms [${samples.map((x) => x.toFixed(0)).join(', ')}]; ${KILLS} packs (${randomKills} killed at a random delay, ${KILLS - randomKills} as soon as a generation directory or a new dlbundle.json was seen): ${counts.booting} killed before staging, ${counts.writing} while writing staging, ` +
        `${counts.generation} with the generation directory written but dlbundle.json not yet switched, ${counts.switched} after the switch before the move to ${KEY}/, ` +
        `${counts.cleanup} while cleaning up, ${counts.finished} finished before the kill; every load correct (${loaded.old} old, ${loaded.new} new); ` +
        `${removedLater} leftovers removed by the following packs; ${((performance.now() - started) / 1000).toFixed(1)} s`,
    );
  });
});

describe('pack: inputs are streamed', function () {
  this.timeout(120_000);

  /** Peak RSS (VmHWM, kB) of a child that packs `inputs`. */
  function peakRss(inputs: readonly string[]): number {
    const script = `
      const fs = require('node:fs');
      const { pack } = require(${JSON.stringify(path.join(REPO, 'dist', 'pack.js'))});
      pack(JSON.parse(process.argv[1]), { name: 'demo', out: process.argv[2] });
      process.stdout.write(/VmHWM:\\s*(\\d+)/.exec(fs.readFileSync('/proc/self/status', 'utf8'))[1]);`;
    const r = spawnSync(process.execPath, ['-e', script, JSON.stringify(inputs), path.join(tempDir(), 'out')], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    return Number(r.stdout);
  }

  it('packing a 64 MiB library costs under 16 MiB more peak memory than packing a 15 KiB one', () => {
    const small = Math.min(peakRss([nativeFixture('libdemo_core.so')]), peakRss([nativeFixture('libdemo_core.so')]));
    const big = Math.min(peakRss([nativeFixture('libdemo_big.so')]), peakRss([nativeFixture('libdemo_big.so')]));
    console.log(`      peak RSS: ${(small / 1024).toFixed(1)} MiB packing libdemo_core.so, ${(big / 1024).toFixed(1)} MiB packing libdemo_big.so (${(fs.statSync(nativeFixture('libdemo_big.so')).size / 2 ** 20).toFixed(0)} MiB)`);
    assert.ok(big - small < 16 * 1024, `packing 64 MiB took ${big - small} kB more than packing 15 KiB`);
  });

  it('a 2.1 GiB input (a real library with zeros appended past its end, sparse) packs; its hash matches an independent xxh64, and the blob stays sparse', () => {
    const dir = tempDir();
    const input = path.join(dir, 'libdemo_core.so');
    fs.copyFileSync(nativeFixture('libdemo_core.so'), input);
    const size = 2 ** 31 + 100 * 2 ** 20;
    fs.truncateSync(input, size);
    const out = path.join(dir, 'out');
    const t0 = performance.now();
    const r = pack([input], { name: 'huge', out });
    const packMs = performance.now() - t0;
    const f = r.variant.files[0];
    assert.equal(f?.name, 'libdemo_core.so');
    assert.equal(f.size, size);
    assert.equal(f.soname, 'libdemo_core.so');
    const t1 = performance.now();
    const expected = hashFile(input);
    const hashMs = performance.now() - t1;
    assert.equal(f.xxh64, expected);
    const blob = path.join(out, KEY, 'libdemo_core.so');
    const st = fs.statSync(blob);
    assert.equal(st.size, size);
    assert.ok(st.blocks * 512 < 16 * 2 ** 20, `the blob takes ${st.blocks * 512} bytes on disk`);
    assert.equal(hashFile(blob), expected, 'the blob hashes as the input');
    const head = Buffer.alloc(fs.statSync(nativeFixture('libdemo_core.so')).size);
    const fd = fs.openSync(blob, 'r');
    try {
      fs.readSync(fd, head, 0, head.length, 0);
    } finally {
      fs.closeSync(fd);
    }
    assert.deepEqual(head, fs.readFileSync(nativeFixture('libdemo_core.so')), 'the library bytes at the start of the blob');
    console.log(`      ${(size / 2 ** 30).toFixed(2)} GiB: packed in ${(packMs / 1000).toFixed(1)} s, hashed again in ${(hashMs / 1000).toFixed(1)} s; blob uses ${((st.blocks * 512) / 1024).toFixed(0)} KiB on disk`);
  });
});

// The file-system calls that change something. Each is one step of a pack; a
// process that dies after step n has made exactly the first n.
const MUTATIONS = ['mkdirSync', 'renameSync', 'linkSync', 'openSync', 'writeSync', 'writeFileSync', 'ftruncateSync', 'rmSync', 'unlinkSync', 'rmdirSync', 'copyFileSync'] as const;

/**
 * Runs `fn` with the file-system calls substituted so that the process "dies"
 * after `steps` changes: every later change throws, as if nothing more ran
 * (not even `finally` blocks). Returns whether the death came before `fn` ended.
 */
function dieAfter(steps: number, fn: () => void): boolean {
  const mutable = fsModule as unknown as Record<string, (...args: unknown[]) => unknown>;
  const originals = new Map(MUTATIONS.map((m) => [m, mutable[m] as (...args: unknown[]) => unknown]));
  let made = 0;
  for (const [name, original] of originals) {
    mutable[name] = (...args: unknown[]): unknown => {
      // Opening for reading changes nothing.
      if (name === 'openSync' && (args[1] === undefined || args[1] === 'r' || args[1] === fs.constants.O_RDONLY)) return original(...args);
      if (made >= steps) throw Object.assign(new Error(`died before ${name}(${String(args[0])})`), { code: 'EDIED' });
      made++;
      return original(...args);
    };
  }
  try {
    fn();
    return false;
  } catch (e) {
    if (made < steps) throw e;
    return true;
  } finally {
    for (const [name, original] of originals) mutable[name] = original;
  }
}

/** Reads every file of the variant through fromDirectory (the reader a start uses) and hashes it. */
function hashesThroughSource(out: string): Map<string, string> {
  const source = fromDirectory(out);
  const variant = source.manifest().variants[KEY];
  assert.ok(variant !== undefined);
  const scratch = Buffer.allocUnsafe(1 << 20);
  const hashes = new Map<string, string>();
  for (const f of variant.files) {
    const blob = runSync(source.openBlob(syncIo, KEY, f));
    const h = createXxh64();
    for (let pos = 0; ; ) {
      const bytes = runSync(blob.read(syncIo, pos, scratch));
      if (bytes.length === 0) break;
      h.update(bytes);
      pos += bytes.length;
    }
    runSync(blob.close(syncIo));
    hashes.set(f.name, h.digest());
  }
  return hashes;
}

describe('pack: a death after every single file-system step', () => {
  it('after each step the bundle reads whole old or whole new through fromDirectory; the next pack finishes or undoes the switch', function () {
    this.timeout(60_000);
    const rand = prng(0x57e95);
    const contents = [makeContent('small-one', rand, 4096), makeContent('small-two', rand, 4096)] as const;
    const out = path.join(tempDir(), 'bundle');
    pack([contents[0].dir], { name: 'demo', out });
    const seen = { old: 0, new: 0 };
    let steps = 0;
    for (let n = 0; ; n++) {
      const from = currentVariant(out, contents, `before step ${n}`).content;
      const to = contents[from === contents[0] ? 1 : 0];
      if (!dieAfter(n, () => pack([to.dir], { name: 'demo', out }))) {
        steps = n;
        break;
      }
      const who = `died after ${n} steps of a pack of ${to.label} over ${from.label}`;
      const left = fs.readdirSync(out);
      let now: Content;
      try {
        now = currentVariant(out, contents, who).content;
        const read = hashesThroughSource(out);
        assert.deepEqual(Object.fromEntries(read), Object.fromEntries(now.hashes), `${who}: the files read are not those dlbundle.json names (${now.label}); left ${JSON.stringify(left)}`);
      } catch (e) {
        throw new Error(`${who}: ${(e as Error).message}; left ${JSON.stringify(left)}`);
      }
      seen[now === to ? 'new' : 'old']++;
      // This process is alive, so its staging and its pack lock are not a dead process's: removed here by hand.
      for (const name of left.filter((e) => e.includes('.staging') || e.startsWith(PACK_LOCK))) fs.rmSync(path.join(out, name), { recursive: true });
      pack([now.dir], { name: 'demo', out });
      assert.deepEqual(fs.readdirSync(out).sort(), [MANIFEST_FILE, KEY].sort(), `${who}: after the following pack; left ${JSON.stringify(left)}`);
      assert.deepEqual(Object.fromEntries(hashesThroughSource(out)), Object.fromEntries(now.hashes), `${who}: after the following pack`);
    }
    console.log(`      a pack makes ${steps} file-system changes; a death after each of 0…${steps - 1} left a bundle that read whole (${seen.old} old, ${seen.new} new)`);
    assert.ok(steps > 10 && seen.new > 0 && seen.old > 0);
  });
});

describe('pack: an input rebuilt while it is packed', () => {
  it('is refused with E_IO (its ELF facts would be of one build, its bytes of another), and the bundle is unchanged', () => {
    const dir = tempDir();
    const input = path.join(dir, 'libdemo_core.so');
    fs.copyFileSync(nativeFixture('libdemo_core.so'), input);
    const out = path.join(tempDir(), 'bundle');
    pack([nativeFixture('libdemo_core.so')], { name: 'demo', out });
    const before = fs.readFileSync(path.join(out, MANIFEST_FILE), 'utf8');
    // A parallel build replaces the library between pack's ELF read and its copy.
    const original = fsModule.openSync;
    let rebuilt = false;
    let opens = 0;
    fsModule.openSync = ((p: fs.PathLike, ...rest: unknown[]) => {
      // The first open reads the ELF facts, the second copies.
      if (p === input && rest[0] === 'r' && ++opens === 2) {
        rebuilt = true;
        const next = path.join(dir, 'next.so');
        fs.writeFileSync(next, Buffer.concat([fs.readFileSync(input), Buffer.alloc(64, 1)]));
        fs.renameSync(next, input);
      }
      return (original as (...a: unknown[]) => number)(p, ...rest);
    }) as typeof fs.openSync;
    try {
      const e = expectCode('E_IO', () => pack([input], { name: 'demo', out }));
      assert.match(e.message, /changed while it was being packed/);
    } finally {
      fsModule.openSync = original;
    }
    assert.ok(rebuilt);
    assert.equal(fs.readFileSync(path.join(out, MANIFEST_FILE), 'utf8'), before);
    assert.deepEqual(fs.readdirSync(out).sort(), [MANIFEST_FILE, KEY].sort());
  });
});

describe('pack: one pack at a time per output directory', function () {
  this.timeout(120_000);

  it('a live pack holding the lock: E_USAGE naming its pid, and the bundle is unchanged; a killed pack\'s lock is taken over', () => {
    const out = path.join(tempDir(), 'bundle');
    pack([nativeFixture('libdemo_core.so')], { name: 'demo', out });
    const before = fs.readFileSync(path.join(out, MANIFEST_FILE), 'utf8');
    const sleeper = spawn('sleep', ['60']);
    try {
      const pid = sleeper.pid as number;
      const stat = fs.readFileSync(`/proc/${pid}/stat`, 'latin1');
      const start = stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19] as string;
      const ns = /\[(\d+)\]/.exec(fs.readlinkSync('/proc/self/ns/pid'))?.[1] ?? '0';
      fs.writeFileSync(path.join(out, PACK_LOCK), `${ns}-${pid}-${start}\n`);
      const e = expectCode('E_USAGE', () => pack([nativeFixture('libdemo_app.so'), nativeFixture('libdemo_core.so'), nativeFixture('libdemo_codec.so.1.2.3')], { name: 'demo', out }));
      assert.match(e.message, new RegExp(`Another \`dlbundle pack\` \\(pid ${pid}\\) is writing into`));
      assert.equal(fs.readFileSync(path.join(out, MANIFEST_FILE), 'utf8'), before);
      // The same pid with another start time is a process that is gone (its pid reused): the lock is
      // taken, and that pack's draft (killed between writing it and linking it) removed.
      fs.writeFileSync(path.join(out, PACK_LOCK), `${ns}-${pid}-${Number(start) - 1}\n`);
      fs.writeFileSync(path.join(out, `${PACK_LOCK}.${ns}-${pid}-${Number(start) - 1}`), `${ns}-${pid}-${Number(start) - 1}\n`);
      pack([nativeFixture('libdemo_app.so'), nativeFixture('libdemo_core.so'), nativeFixture('libdemo_codec.so.1.2.3')], { name: 'demo', out });
      assert.deepEqual(fs.readdirSync(out).sort(), [MANIFEST_FILE, KEY].sort(), 'the lock is gone after the pack');
    } finally {
      sleeper.kill();
    }
  });

  it('two real packs started together into one directory (two targets): never a manifest naming files that are not there; the loser is told why', async () => {
    const out = path.join(tempDir(), 'bundle');
    const inputs = [nativeFixture('libdemo_core.so'), nativeFixture('libdemo_codec.so.1.2.3'), nativeFixture('libdemo_app.so')];
    const run = (requires: string): Promise<{ status: number | null; stderr: string }> =>
      new Promise((resolve) => {
        const child = spawn(process.execPath, [CLI, 'pack', ...inputs, '--name', 'demo', '--out', out, '--requires', requires], { stdio: ['ignore', 'ignore', 'pipe'] });
        let stderr = '';
        child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
        child.on('close', (status) => resolve({ status, stderr }));
      });
    const counts = { both: 0, refused: 0 };
    for (let round = 0; round < 6; round++) {
      fs.rmSync(out, { recursive: true, force: true });
      const results = await Promise.all([run('avx2'), run('fma')]);
      for (const r of results) {
        if (r.status !== 0) {
          assert.match(r.stderr, /E_USAGE[\s\S]*Another `dlbundle pack`/, `round ${round}: a pack failed otherwise:\n${r.stderr}`);
          counts.refused++;
        }
      }
      if (results.every((r) => r.status === 0)) counts.both++;
      // Whatever the manifest names is on disk, byte for byte.
      const manifest = readManifestFile(out);
      assert.ok(manifest !== null, `round ${round}: a manifest`);
      // A pack that said it succeeded has its variant in the manifest: none was lost to the other's rewrite.
      ['avx2', 'fma'].forEach((feature, i) => {
        if (results[i]?.status === 0) assert.ok(`${KEY}+${feature}` in manifest.variants, `round ${round}: the ${feature} pack succeeded, but its variant is not in ${JSON.stringify(Object.keys(manifest.variants))}`);
      });
      for (const [key, variant] of Object.entries(manifest.variants)) {
        for (const f of variant.files) assert.equal(hashFile(path.join(out, key, f.name)), f.xxh64, `round ${round}: ${key}/${f.name}`);
      }
      assert.deepEqual(fs.readdirSync(out).filter((e) => e.startsWith('.')), [], `round ${round}: no lock, staging or generation left`);
    }
    console.log(`      6 rounds of two packs at once: ${counts.both} rounds with both done one after the other, ${counts.refused} packs refused (E_USAGE)`);
  });
});

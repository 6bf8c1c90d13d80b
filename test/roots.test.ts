/**
 * Which cache roots may be used, tried for real: another user (uid 65534,
 * through setpriv) plants the default root as a symlink or as a directory of
 * their own, swaps a subdirectory for a symlink while `cache prune` deletes,
 * or exchanges a whole root (renameat2 RENAME_EXCHANGE) whose parent others
 * can write; a uid with no passwd entry and no HOME; a root under /proc; and
 * `cache list | head -1`. The attackers' C sources are in test/attackers/ and
 * are compiled here with gcc.
 */
import { strict as assert } from 'node:assert';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { runSync, syncIo } from '../src/io';
import { canonicalFileList, COMPLETE_MARKER, MANIFEST_FILE, type Manifest } from '../src/manifest';
import { assessRoot, checkRoot } from '../src/roots';
import { DIST, spawnChild } from './child';
import { expectCode, packedFixtures, REPO, tempDir } from './fixtures';

const CLI = path.join(REPO, 'dist', 'cli.js');
const ATTACKER = 65534;
const SMALL = ['libdemo_core.so', 'libdemo_codec.so.1.2.3', 'libdemo_app.so', 'libdemo_plugin.so', 'demo.node'];
const me = process.geteuid?.() ?? 0;

/** The setpriv arguments that run a command as `uid` (its own group, no others). */
function asUser(uid: number, command: string, ...args: string[]): string[] {
  return ['--reuid', String(uid), '--regid', String(uid), '--clear-groups', '--', command, ...args];
}

/** Compiles one of test/attackers/*.c into a directory the attacker can read. */
function compile(source: string, out: string, ...flags: string[]): string {
  const dir = tempDir('dlbundle-attacker-');
  fs.chmodSync(dir, 0o755);
  const file = path.join(dir, out);
  execFileSync('gcc', ['-O2', '-o', file, path.join(REPO, 'test', 'attackers', source), ...flags], { stdio: 'pipe' });
  return file;
}

/** Starts the attacker's exchange program (as uid 65534) on `pairs` for at most `ms` milliseconds; `stop` ends it and says how many exchanges it made. */
function attacker(exchange: string, flags: readonly string[], ms: number, pairs: readonly (readonly [string, string])[]): { stop: () => Promise<number> } {
  const child = spawn('setpriv', asUser(ATTACKER, exchange, ...flags, String(ms), ...pairs.flat()), { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
  const closed = new Promise<void>((resolve) => child.once('close', () => resolve()));
  return {
    stop: async () => {
      child.kill('SIGTERM');
      await closed;
      return Number(out.trim());
    },
  };
}

const packed = (libs: readonly string[] = SMALL): string => packedFixtures(libs);

/** Lets other users read `bundle` (its temporary directory and what is in it, nothing above). */
function readableByAll(bundle: string): void {
  fs.chmodSync(path.dirname(bundle), 0o755);
  execFileSync('chmod', ['-R', 'a+rX', bundle]);
}

/** Runs the CLI as the victim (this test's user) with `env`; returns its status and output. */
function victimCli(env: Record<string, string>, ...args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', env: { PATH: process.env.PATH ?? '', XDG_CACHE_HOME: tempDir('dlbundle-xdg-'), ...env }, timeout: 60_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** A directory like /tmp (1777), in the test's own temporary directory. */
function stickyShared(): string {
  const dir = tempDir('dlbundle-shared-');
  fs.chmodSync(dir, 0o1777);
  return dir;
}

/** Victim files: `report-<16 hex>` directories and a `secret` directory, each holding a few files. */
function victimHome(): { home: string; files: string[] } {
  const home = tempDir('dlbundle-victim-');
  const files: string[] = [];
  for (const d of ['report-0123456789abcdef', 'report-fedcba9876543210', 'secret']) {
    fs.mkdirSync(path.join(home, d));
    for (let i = 0; i < (d === 'secret' ? 40 : 3); i++) {
      const f = path.join(home, d, `file-${i}.txt`);
      fs.writeFileSync(f, `victim data ${i}\n`);
      files.push(f);
    }
  }
  return { home, files };
}

const surviving = (files: readonly string[]): number => files.filter((f) => fs.existsSync(f)).length;

function chownTree(dir: string, uid: number): void {
  execFileSync('chown', ['-R', '-h', `${uid}:${uid}`, dir]);
}

describe('cache roots', function () {
  this.timeout(120_000);

  describe('cache list | prune never follow a planted root', () => {
    it('a symlink planted at <tmpdir>/dlbundle-<uid>: prune --keep 0 and list refuse it with the reason; the victim files survive', () => {
      const shared = stickyShared();
      const { home, files } = victimHome();
      const planted = path.join(shared, `dlbundle-${me}`);
      const ln = spawnSync('setpriv', asUser(ATTACKER, 'ln', '-s', home, planted), { encoding: 'utf8' });
      assert.equal(ln.status, 0, ln.stderr);

      const prune = victimCli({ TMPDIR: shared }, 'cache', 'prune', '--keep', '0');
      assert.equal(surviving(files), files.length, `victim files deleted through the link:\n${prune.stdout}`);
      assert.equal(prune.status, 0, prune.stderr);
      assert.match(prune.stderr, new RegExp(`skipped ${escape(planted)}: .*symbolic link`));

      const list = victimCli({ TMPDIR: shared }, 'cache', 'list', '--json');
      assert.equal(list.status, 0, list.stderr);
      assert.deepEqual(JSON.parse(list.stdout), [], 'nothing is listed through the link');
      assert.match(list.stderr, new RegExp(`skipped ${escape(planted)}: .*symbolic link`));
      assert.deepEqual(fs.readdirSync(home).sort(), ['report-0123456789abcdef', 'report-fedcba9876543210', 'secret'], 'nothing written into the victim directory');
    });

    it("a directory of another user planted at <tmpdir>/dlbundle-<uid> with look-alike entries: not listed, nothing in it deleted, the reason printed", () => {
      const shared = stickyShared();
      const planted = path.join(shared, `dlbundle-${me}`);
      const entry = path.join(planted, 'demo-0123456789abcdef');
      fs.mkdirSync(entry, { recursive: true, mode: 0o700 });
      fs.writeFileSync(path.join(entry, 'libdemo_core.so'), 'not what it seems');
      chownTree(planted, ATTACKER);

      const list = victimCli({ TMPDIR: shared }, 'cache', 'list', '--json');
      assert.equal(list.status, 0, list.stderr);
      assert.deepEqual(JSON.parse(list.stdout), []);
      assert.match(list.stderr, new RegExp(`skipped ${escape(planted)}: .*owned by uid ${ATTACKER}`));
      const prune = victimCli({ TMPDIR: shared }, 'cache', 'prune', '--keep', '0', '--json');
      assert.equal(prune.status, 0, prune.stderr);
      const result = JSON.parse(prune.stdout) as { removed: unknown[]; skipped: { root: string; code: string; reason: string }[] };
      assert.deepEqual(result.removed, []);
      assert.deepEqual(result.skipped.map((s) => [s.root, s.code]), [[planted, 'E_UNSAFE_DIR']]);
      assert.deepEqual(fs.readdirSync(planted), ['demo-0123456789abcdef'], 'the victim wrote nothing into the planted root');
      assert.equal(fs.existsSync(path.join(entry, 'libdemo_core.so')), true);
    });

    it('a subdirectory swapped for a symlink to the victim files while prune deletes (5 rounds): the victim files survive', async () => {
      const exchange = compile('exchange.c', 'exchange');
      const shared = stickyShared();
      const { home, files } = victimHome();
      const secret = path.join(home, 'secret');
      const planted = path.join(shared, `dlbundle-${me}`);
      const rounds: { status: number | null; swaps: number; left: number; refused: boolean }[] = [];
      for (let round = 0; round < 5; round++) {
        fs.rmSync(planted, { recursive: true, force: true });
        // Look-alike entries, each with a directory `sub` holding files named like the victim's. The attacker
        // watches each `sub` and, the moment the victim starts deleting in it, exchanges it with a symlink to the
        // victim's secret directory (kept outside the entry, where prune would remove the link itself): the names
        // the victim read from `sub` are then unlinked through the link.
        const entries = Array.from({ length: 8 }, (_, i) => path.join(planted, `demo-${String(i).repeat(16)}`));
        const links = entries.map((_, i) => path.join(shared, `stash-${i}`, 'lnk'));
        entries.forEach((entry, i) => {
          const link = links[i] as string;
          fs.mkdirSync(path.join(entry, 'sub'), { recursive: true });
          for (const f of fs.readdirSync(secret)) fs.writeFileSync(path.join(entry, 'sub', f), 'x');
          fs.rmSync(path.dirname(link), { recursive: true, force: true });
          fs.mkdirSync(path.dirname(link));
          fs.symlinkSync(secret, link);
          chownTree(path.dirname(link), ATTACKER);
        });
        chownTree(planted, ATTACKER);
        const attack = attacker(exchange, ['--on-change'], 20_000, entries.map((e, i) => [path.join(e, 'sub'), links[i] as string]));
        await new Promise((resolve) => setTimeout(resolve, 100));
        const prune = victimCli({ TMPDIR: shared }, 'cache', 'prune', '--keep', '0');
        const swaps = await attack.stop();
        const left = surviving(files);
        rounds.push({ status: prune.status, swaps, left, refused: new RegExp(`skipped ${escape(planted)}: .*owned by uid ${ATTACKER}`).test(prune.stderr) });
        // The victim's files are put back for the next round, so that each round counts on its own.
        for (const f of files) if (!fs.existsSync(f)) fs.writeFileSync(f, 'restored\n');
      }
      const summary = rounds.map((r, i) => `round ${i}: prune status ${String(r.status)}, ${r.swaps} swaps, ${r.left}/${files.length} victim files left${r.refused ? ', root refused' : ''}`).join('\n');
      console.log(`      ${summary.replace(/\n/g, '\n      ')}`);
      assert.equal(rounds.filter((r) => r.left < files.length).length, 0, `rounds in which victim files were deleted:\n${summary}`);
      assert.ok(rounds.every((r) => r.status === 0 && r.refused), `every prune exits 0 and names the refused root:\n${summary}`);
    });
  });

  describe('a root whose ancestors others can write', () => {
    interface Start {
      xdg: string;
      result: { ok: true; value: number } | { ok: false; error: { code?: string; message: string } };
      report: { root: string | null; mode: string | null; fallbacks: { root: string; code: string; reason: string }[] };
    }
    const START = `
      const b = dl.openBundle({ source: dl.fromDirectory(P.bundle), cacheDir: P.cache });
      const result = caught(() => b.library('libdemo_app.so', { compute: 'int app_compute(int x)' }).compute(5));
      return { xdg: process.env.XDG_CACHE_HOME, result, report: b.explain() };`;

    it('an attacker exchanging the whole root (RENAME_EXCHANGE) in a 0777 non-sticky parent never gets a library loaded: 24 starts refuse the root with the reason', async () => {
      const exchange = compile('exchange.c', 'exchange');
      const markers = tempDir('dlbundle-markers-');
      const evil = compile('marker-constructor.c', 'libevil.so', '-shared', '-fPIC', `-DMARKER_DIR="${markers}"`);
      const bundle = packed();
      const manifest = JSON.parse(fs.readFileSync(path.join(bundle, MANIFEST_FILE), 'utf8')) as Manifest;
      const variant = Object.values(manifest.variants)[0];
      assert.ok(variant !== undefined);
      // The victim's root in a directory anybody can write, without the sticky bit; a look-alike of the attacker's beside it.
      const parent = tempDir('dlbundle-open-');
      fs.chmodSync(parent, 0o777);
      const cache = path.join(parent, 'cache');
      fs.mkdirSync(cache, { mode: 0o700 });
      spawnChild(START, { params: { bundle, cache } });
      const fake = path.join(parent, 'fake', `demo-${variant.digest}`);
      fs.mkdirSync(fake, { recursive: true });
      // The completion marker is the canonical file list, which anybody can compute from the shipped manifest.
      fs.writeFileSync(path.join(fake, COMPLETE_MARKER), `${canonicalFileList(variant.files)}\n`);
      for (const f of variant.files) {
        fs.copyFileSync(evil, path.join(fake, f.name));
        if (f.soname !== null && f.soname !== f.name) fs.symlinkSync(f.name, path.join(fake, f.soname));
      }
      chownTree(path.join(parent, 'fake'), ATTACKER);

      const attack = attacker(exchange, ['--interval', '20000'], 60_000, [[cache, path.join(parent, 'fake')]]);
      const starts: Start[] = [];
      const failures: string[] = [];
      try {
        for (let i = 0; i < 24; i++) {
          const r = spawnChild(START, { params: { bundle, cache } });
          if (r.status === 0 && r.result !== undefined) starts.push(r.result as Start);
          else failures.push(`status ${String(r.status)}: ${r.stderr.trim().split('\n').slice(-1).join('')}`);
        }
      } finally {
        const swaps = await attack.stop();
        console.log(`      ${swaps} exchanges; ${fs.readdirSync(markers).length} of 24 starts ran the attacker's constructor; ${failures.length} crashed`);
      }
      assert.deepEqual(fs.readdirSync(markers), [], "the attacker's constructor ran in these victim processes");
      assert.deepEqual(failures, []);
      for (const s of starts) {
        assert.deepEqual(s.result, { ok: true, value: 1011 });
        assert.equal(s.report.root, path.join(s.xdg, 'dlbundle'));
        assert.equal(s.report.fallbacks[0]?.root, cache);
        assert.equal(s.report.fallbacks[0]?.code, 'E_UNSAFE_DIR');
        assert.match(s.report.fallbacks[0]?.reason ?? '', new RegExp(`${escape(parent)}.* is writable by others \\(mode 0777\\) and not sticky`));
      }
    });

    it('which ancestors make a root unsafe: a table', () => {
      const base = tempDir('dlbundle-ancestors-');
      fs.chmodSync(base, 0o755);
      const dir = (rel: string, mode: number, uid = me): string => {
        const p = path.join(base, rel);
        fs.mkdirSync(p, { recursive: true });
        fs.chmodSync(p, mode);
        fs.chownSync(p, uid, uid);
        return p;
      };
      const root = (parent: string, name = 'cache'): string => {
        const p = path.join(parent, name);
        fs.mkdirSync(p, { mode: 0o700 });
        return p;
      };
      const check = (r: string): unknown => runSync(checkRoot(syncIo, r, { create: false }));
      const refused = (r: string, why: RegExp): void => {
        const e = expectCode('E_UNSAFE_DIR', () => check(r));
        assert.match(e.message, why);
        assert.equal(e.dir, r);
      };
      const sticky = dir('sticky', 0o1777);
      const inSticky = root(sticky);
      assert.deepEqual(check(inSticky), { exists: true, real: inSticky }, 'a root of ours in a sticky 1777 directory (like /tmp)');
      const deep = root(dir('a/b/c', 0o755));
      assert.deepEqual(check(deep), { exists: true, real: deep }, 'root-owned 0755 ancestors');
      const inOpen = root(dir('open', 0o777));
      refused(inOpen, /"[^"]*\/open" is writable by others \(mode 0777\) and not sticky/);
      // doctor's assessment applies the same walk and says the same.
      assert.deepEqual(assessRoot(inOpen), { root: inOpen, usable: false, reason: `${JSON.stringify(path.join(base, 'open'))} is writable by others (mode 0777) and not sticky: another user could replace the root or a directory above it` });
      assert.equal(assessRoot(deep).usable, true);
      refused(root(dir('group', 0o775)), /"[^"]*\/group" is writable by its group \(mode 0775\) and not sticky/);
      refused(root(dir('theirs', 0o755, ATTACKER)), /"[^"]*\/theirs" is owned by uid 65534/);
      // In a sticky directory, the entry below it must be ours (or root's): another user's entry is theirs to swap.
      const foreign = path.join(sticky, 'foreign');
      fs.mkdirSync(foreign, { mode: 0o755 });
      fs.chownSync(foreign, ATTACKER, ATTACKER);
      refused(root(foreign), /"[^"]*\/foreign" is owned by uid 65534/);
      // A symlinked ancestor is followed, and the directories it leads to are checked as well.
      const linkToOpen = path.join(dir('links', 0o755), 'to-open');
      fs.symlinkSync(path.join(base, 'open'), linkToOpen);
      refused(path.join(linkToOpen, 'cache'), /"[^"]*\/open" is writable by others/);
      const linkToSafe = path.join(base, 'links', 'to-safe');
      fs.symlinkSync(path.join(base, 'a', 'b'), linkToSafe);
      assert.deepEqual(check(path.join(linkToSafe, 'c', 'cache')), { exists: true, real: deep }, 'the symlink-free path is reported');
      // The root itself: not a symlink, ours, not writable by others.
      fs.symlinkSync(path.join(base, 'a', 'b', 'c', 'cache'), path.join(base, 'a', 'b', 'c', 'link'));
      refused(path.join(base, 'a', 'b', 'c', 'link'), /is a symbolic link/);
      const wide = root(dir('a/b/c', 0o755), 'wide');
      fs.chmodSync(wide, 0o777);
      refused(wide, /writable by group or others/);
      // Missing roots are reported as such when not creating them.
      assert.deepEqual(check(path.join(base, 'a', 'b', 'c', 'new', 'cache')), { exists: false, existing: path.join(base, 'a', 'b', 'c') });
    });
  });

  describe('a uid with no passwd entry and no HOME (docker run --user 4242)', () => {
    const UID = 4242;
    function runAs(body: string, params: Record<string, unknown>, env: Record<string, string> = {}): { status: number | null; stdout: string; stderr: string } {
      const script = `
        const dl = require(${JSON.stringify(DIST)});
        const P = ${JSON.stringify(params)};
        const out = (() => { ${body} })();
        console.log(JSON.stringify(out));`;
      const r = spawnSync('setpriv', asUser(UID, process.execPath, '-e', script), { encoding: 'utf8', env: { PATH: process.env.PATH ?? '', ...env }, timeout: 60_000 });
      return { status: r.status, stdout: r.stdout, stderr: r.stderr };
    }
    const RUN = `
      try {
        const b = dl.openBundle({ source: dl.fromDirectory(P.bundle), ...(P.cache ? { cacheDir: P.cache } : {}) });
        const value = b.library('libdemo_app.so', { compute: 'int app_compute(int x)' }).compute(5);
        return { ok: true, uid: process.getuid(), home: process.env.HOME ?? null, value, report: b.explain() };
      } catch (e) {
        return { ok: false, name: e.name, code: e.code, message: String(e.message) };
      }`;
    interface Out {
      ok: boolean;
      uid?: number;
      home?: string | null;
      value?: number;
      name?: string;
      code?: string;
      message?: string;
      report?: { root: string | null; mode: string; fallbacks: { root: string; code: string; reason: string }[] };
    }
    const parse = (r: { status: number | null; stdout: string; stderr: string }): Out => {
      assert.equal(r.status, 0, r.stderr);
      return JSON.parse(r.stdout) as Out;
    };

    it('with cacheDir given: loads and calls a native function', () => {
      const bundle = packed();
      readableByAll(bundle);
      const work = tempDir();
      fs.chownSync(work, UID, UID);
      const out = parse(runAs(RUN, { bundle, cache: path.join(work, 'cache') }));
      assert.equal(out.ok, true, out.message);
      assert.equal(out.uid, UID);
      assert.equal(out.home, null);
      assert.equal(out.value, 1011);
      assert.equal(out.report?.root, path.join(work, 'cache'));
    });

    it('without cacheDir: the tmpdir root is used; when no root works, the missing home directory is one of the reasons given', () => {
      const bundle = packed();
      readableByAll(bundle);
      const work = tempDir();
      fs.chownSync(work, UID, UID);
      const viaTmp = parse(runAs(RUN, { bundle }, { TMPDIR: work }));
      assert.equal(viaTmp.ok, true, viaTmp.message);
      assert.equal(viaTmp.value, 1011);
      assert.equal(viaTmp.report?.root, path.join(work, `dlbundle-${UID}`));

      // A cacheDir that is not this user's: the home fallback cannot even be named, and says why; memory mode takes over.
      const foreign = tempDir();
      fs.chmodSync(foreign, 0o755);
      const noRoot = parse(runAs(RUN, { bundle, cache: foreign }));
      assert.equal(noRoot.ok, true, noRoot.message);
      assert.equal(noRoot.value, 1011);
      assert.equal(noRoot.report?.mode, 'memory');
      assert.deepEqual(noRoot.report?.fallbacks.map((f) => [f.root, f.code]), [[foreign, 'E_UNSAFE_DIR'], ['~/.cache/dlbundle', 'E_IO']]);
      assert.match(noRoot.report?.fallbacks[1]?.reason ?? '', /no home directory: HOME is not set and uid 4242 has no passwd entry/);

      // doctor lists it with the same reason.
      const doctor = spawnSync('setpriv', asUser(UID, process.execPath, CLI, 'doctor', bundle, '--json'), { encoding: 'utf8', env: { PATH: process.env.PATH ?? '', TMPDIR: work }, timeout: 60_000 });
      assert.equal(doctor.status, 0, doctor.stderr);
      const roots = (JSON.parse(doctor.stdout) as { roots: { root: string; usable: boolean; reason: string }[] }).roots;
      assert.deepEqual(roots.map((r) => [r.root, r.usable]), [[path.join(work, `dlbundle-${UID}`), true], ['~/.cache/dlbundle', false]]);
      assert.match(roots[1]?.reason ?? '', /no home directory/);
    });
  });

  describe('odd roots and pipes', () => {
    it('`cache list | head -1` ends quietly: no stack trace, exit status 0', () => {
      const root = tempDir();
      for (let i = 0; i < 2000; i++) fs.mkdirSync(path.join(root, `demo-${i.toString(16).padStart(16, '0')}`), { mode: 0o700 });
      const out = tempDir();
      const [err, status] = [path.join(out, 'stderr'), path.join(out, 'status')];
      const r = spawnSync('bash', ['--norc', '-c', `"$0" "$1" cache list 2>"$2" | head -1; echo "\${PIPESTATUS[0]}" >"$3"`, process.execPath, CLI, err, status], {
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'pipe'],
        env: { PATH: process.env.PATH ?? '', DLBUNDLE_CACHE_DIR: root, XDG_CACHE_HOME: tempDir() },
        timeout: 60_000,
      });
      assert.match(r.stdout, new RegExp(`^${escape(path.join(root, 'demo-0000000000000000'))}\\s`));
      assert.equal(fs.readFileSync(err, 'utf8'), '', 'nothing on the CLI\'s stderr');
      assert.equal(fs.readFileSync(status, 'utf8').trim(), '0', 'the CLI exits with status 0');
    });

    it('a root under /proc is refused at once with the reason; the next root is used', () => {
      const bundle = packed(['libdemo_core.so']);
      const started = Date.now();
      const r = spawnChild(
        `const b = dl.openBundle({ source: dl.fromDirectory(P.bundle) });
         const value = b.library('libdemo_core.so', { add: 'int add(int a, int b)' }).add(2, 3);
         return { value, xdg: process.env.XDG_CACHE_HOME, report: b.explain() };`,
        { params: { bundle }, env: { DLBUNDLE_CACHE_DIR: '/proc/self/foo/dlbundle' } },
      );
      const ms = Date.now() - started;
      assert.equal(r.status, 0, `status ${String(r.status)}, signal ${String(r.signal)} after ${ms} ms\n${r.stderr}`);
      const out = r.result as { value: number; xdg: string; report: { root: string; fallbacks: { root: string; code: string; reason: string }[] } };
      assert.ok(ms < 10_000, `took ${ms} ms`);
      assert.equal(out.value, 5);
      assert.equal(out.report.root, path.join(out.xdg, 'dlbundle'));
      assert.equal(out.report.fallbacks[0]?.root, '/proc/self/foo/dlbundle');
      assert.match(out.report.fallbacks[0]?.reason ?? '', /is on \/proc, a proc file system/);
    });
  });
});

function escape(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

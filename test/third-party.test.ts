/**
 * A real third-party library chain that nobody here wrote: Debian's GMP → MPFR → MPC
 * (libgmp10, libmpfr6, libmpc3), fetched with `apt-get download` and unpacked with
 * `dpkg -x` into .cache/third-party/ by scripts/fetch-third-party.js — never installed.
 *
 * The same libraries are usually installed on the system too (gcc depends on them),
 * so a call that returns the right answer proves nothing by itself: the child process
 * also reports its /proc/self/maps, and every mapping of libgmp / libmpfr / libmpc must
 * come from the bundle's cache directory, none from /usr/lib or /lib. That holds only
 * if glibc satisfied libmpfr's DT_NEEDED libgmp.so.10 (and libmpc's libmpfr.so.6) with
 * the bundled copies that dlbundle loaded first.
 *
 * If apt-get cannot download the packages, the before() hook throws and the tests fail.
 */
import { strict as assert } from 'node:assert';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { pack } from '../src/pack';
import { REPO, tempDir } from './fixtures';

interface ThirdParty {
  readonly dir: string;
  readonly libs: { readonly gmp: string; readonly mpfr: string; readonly mpc: string };
  readonly versions: Readonly<Record<'libgmp10' | 'libmpfr6' | 'libmpc3', string>>;
  readonly fetched: readonly string[];
}

interface FetchModule {
  fetchThirdParty(options?: { readonly log?: (line: string) => void }): ThirdParty;
  upstreamVersion(debianVersion: string): string;
}

/** One line of /proc/self/maps that names a file. */
interface Mapping {
  readonly perms: string;
  readonly inode: number;
  readonly path: string;
}

interface ChildReport {
  readonly mpcVersion: string | null;
  readonly mpfrVersion: string | null;
  readonly pow: string | null;
  readonly powBuffer: string;
  readonly sqrt2: string | null;
  readonly sqrt2Exp: string;
  readonly mpcSquare: string | null;
  readonly explain: {
    readonly dir: string | null;
    readonly root: string | null;
    readonly reused: boolean | null;
    readonly libraries: readonly { readonly name: string; readonly path: string }[];
  };
  readonly maps: readonly Mapping[];
  /** Inode of each bundled file in explain().dir, by file name. */
  readonly inodes: Readonly<Record<string, number>>;
}

const GMP = 'libgmp.so.10.4.1';
const MPFR = 'libmpfr.so.6.2.0';
const MPC = 'libmpc.so.3.3.1';
const CHAIN_LIB = /\/lib(gmp|mpfr|mpc)\.so[^/]*$/;
const DIST = path.join(REPO, 'dist', 'index.js');

// A fresh process, so nothing the test runner loaded can stand in for the bundle.
// It touches MPC first: dlbundle must load GMP, then MPFR, then MPC.
const CHILD = String.raw`
'use strict';
const fs = require('node:fs');
const path = require('node:path');
const { dist, out, cacheDir } = JSON.parse(process.env.DLBUNDLE_THIRD_PARTY_CHILD);
const { openBundle, fromDirectory } = require(dist);

const bundle = openBundle({ source: fromDirectory(out), cacheDir });
// By soname and by file name: the bundle knows both.
const mpc = bundle.library('libmpc.so.3', {
  version: 'const char *mpc_get_version(void)',
  init2: 'void mpc_init2(void *z, long prec)',
  setUiUi: 'int mpc_set_ui_ui(void *z, unsigned long re, unsigned long im, int rnd)',
  sqr: 'int mpc_sqr(void *rop, const void *op, int rnd)',
  getStr: 'char *mpc_get_str(int base, size_t n, const void *op, int rnd)',
  clear: 'void mpc_clear(void *z)',
});
const mpfr = bundle.library('libmpfr.so.6.2.0', {
  version: 'const char *mpfr_get_version(void)',
  init2: 'void mpfr_init2(void *x, long prec)',
  setUi: 'int mpfr_set_ui(void *rop, unsigned long op, int rnd)',
  sqrt: 'int mpfr_sqrt(void *rop, const void *op, int rnd)',
  getStr: 'char *mpfr_get_str(void *str, void *expptr, int base, size_t n, const void *op, int rnd)',
  clear: 'void mpfr_clear(void *x)',
});
const gmp = bundle.library('libgmp.so.10.4.1', {
  init: 'void __gmpz_init(void *x)',
  uiPowUi: 'void __gmpz_ui_pow_ui(void *rop, unsigned long base, unsigned long exp)',
  getStr: 'char *__gmpz_get_str(void *str, int base, const void *op)',
  clear: 'void __gmpz_clear(void *x)',
});

const RNDN = 0; // MPFR_RNDN; MPC_RNDNN is MPC_RND(MPFR_RNDN, MPFR_RNDN) = 0 too

const mpcVersion = mpc.version(); // first touch: GMP, MPFR, MPC are loaded here

// (1 + 2i)^2 = -3 + 4i through MPC (which calls MPFR, which calls GMP).
const z = Buffer.alloc(128); // mpc_t is 64 bytes on x86_64
mpc.init2(z, 64);
mpc.setUiUi(z, 1, 2, RNDN);
mpc.sqr(z, z, RNDN);
const mpcSquare = mpc.getStr(10, 2, z, RNDN);
mpc.clear(z);

// sqrt(2) to 30 significant digits through MPFR.
const x = Buffer.alloc(64); // mpfr_t is 32 bytes on x86_64
mpfr.init2(x, 200);
mpfr.setUi(x, 2, RNDN);
mpfr.sqrt(x, x, RNDN);
const digits = Buffer.alloc(64);
const exp = Buffer.alloc(8);
const sqrt2 = mpfr.getStr(digits, exp, 10, 30, x, RNDN);
mpfr.clear(x);

// 2^100 through GMP.
const n = Buffer.alloc(32); // mpz_t is 16 bytes on x86_64
gmp.init(n);
gmp.uiPowUi(n, 2, 100);
const text = Buffer.alloc(64);
const pow = gmp.getStr(text, 10, n);
gmp.clear(n);

const explain = bundle.explain();
const maps = fs.readFileSync('/proc/self/maps', 'latin1').split('\n').flatMap((line) => {
  const m = /^\S+\s+(\S+)\s+\S+\s+\S+\s+(\d+)\s+(\/.*)$/.exec(line);
  return m !== null && /\/lib(gmp|mpfr|mpc)\.so/.test(m[3]) ? [{ perms: m[1], inode: Number(m[2]), path: m[3] }] : [];
});
const inodes = {};
if (explain.dir !== null) {
  for (const f of fs.readdirSync(explain.dir)) inodes[f] = fs.statSync(path.join(explain.dir, f)).ino;
}
process.stdout.write(JSON.stringify({
  mpcVersion,
  mpfrVersion: mpfr.version(),
  pow,
  powBuffer: text.toString('latin1', 0, text.indexOf(0)),
  sqrt2,
  sqrt2Exp: exp.readBigInt64LE(0).toString(),
  mpcSquare,
  explain,
  maps,
  inodes,
}));
`;

function runChild(env: Record<string, string>, script: string): string {
  const r = spawnSync(process.execPath, ['-e', script], {
    cwd: REPO,
    encoding: 'utf8',
    env: { ...process.env, ...env, DEBUG: '' },
    timeout: 60_000,
  });
  assert.equal(r.status, 0, `child failed (status ${r.status}, signal ${r.signal}):\n${r.stderr}`);
  return r.stdout;
}

describe('a real third-party chain (Debian GMP → MPFR → MPC)', function () {
  // apt-get download on a cold cache.
  this.timeout(300_000);

  let tp: ThirdParty;
  let upstream: (v: string) => string;
  let out: string;
  let packed: ReturnType<typeof pack>;

  before(function () {
    const mod = require(path.join(REPO, 'scripts', 'fetch-third-party.js')) as FetchModule;
    upstream = mod.upstreamVersion;
    // Throws (and so fails every test here) when apt-get download or dpkg -x fails.
    tp = mod.fetchThirdParty();
    out = tempDir('dlbundle-gmpchain-');
    // Named in an order unlike the dependency order, which pack must find by itself.
    packed = pack([tp.libs.mpc, tp.libs.gmp, tp.libs.mpfr], { name: 'gmpchain', out });
  });

  it('fetched the packages without installing them', () => {
    assert.equal(path.basename(tp.libs.gmp), GMP);
    assert.equal(path.basename(tp.libs.mpfr), MPFR);
    assert.equal(path.basename(tp.libs.mpc), MPC);
    for (const lib of Object.values(tp.libs)) {
      assert.ok(lib.startsWith(path.join(REPO, '.cache', 'third-party') + path.sep), lib);
      assert.ok(fs.lstatSync(lib).isFile(), `${lib} is a regular file`);
    }
    assert.equal(upstream(tp.versions.libgmp10), '6.2.1', `libgmp10 ${tp.versions.libgmp10}`);
    assert.match(tp.versions.libmpfr6, /^[0-9]/);
    assert.match(tp.versions.libmpc3, /^[0-9]/);
  });

  it('packs the three real files in dependency order, needing only system libraries from outside', () => {
    const r = packed;
    assert.deepEqual(r.variant.order, [GMP, MPFR, MPC]);
    const byName = new Map(r.variant.files.map((f) => [f.name, f]));
    assert.equal(byName.get(GMP)?.soname, 'libgmp.so.10');
    assert.equal(byName.get(MPFR)?.soname, 'libmpfr.so.6');
    assert.equal(byName.get(MPC)?.soname, 'libmpc.so.3');
    assert.ok(byName.get(MPFR)?.needed.includes('libgmp.so.10'));
    assert.ok(byName.get(MPC)?.needed.includes('libmpfr.so.6'));
    assert.ok(byName.get(MPC)?.needed.includes('libgmp.so.10'));
    assert.deepEqual(r.variant.external, ['ld-linux-x86-64.so.2', 'libc.so.6', 'libm.so.6']);
    for (const [name, from] of [[GMP, tp.libs.gmp], [MPFR, tp.libs.mpfr], [MPC, tp.libs.mpc]] as const) {
      assert.deepEqual(fs.readFileSync(path.join(out, r.target, name)), fs.readFileSync(from), `${name} is packed byte for byte`);
    }
  });

  it('loads the bundled copies in a fresh process, computes with them, and maps nothing from the system', () => {
    assert.ok(fs.existsSync(DIST), `${DIST} is missing: run \`npm run build\` first`);
    const cacheDir = tempDir('dlbundle-gmpchain-cache-');
    const report = JSON.parse(runChild({ DLBUNDLE_THIRD_PARTY_CHILD: JSON.stringify({ dist: DIST, out, cacheDir }) }, CHILD)) as ChildReport;

    // Right answers from code nobody here wrote.
    assert.equal(report.mpcVersion, upstream(tp.versions.libmpc3));
    assert.equal(report.mpfrVersion, upstream(tp.versions.libmpfr6));
    assert.equal(report.pow, '1267650600228229401496703205376');
    assert.equal(report.powBuffer, '1267650600228229401496703205376', 'GMP wrote the digits into our buffer');
    assert.equal(report.sqrt2, '141421356237309504880168872421');
    assert.equal(report.sqrt2Exp, '1');
    assert.equal(report.mpcSquare, '(-3.0 4.0)');

    // Loaded from the bundle's cache directory, dependencies first.
    const dir = report.explain.dir;
    assert.ok(dir !== null);
    assert.equal(path.dirname(dir), cacheDir);
    assert.match(path.basename(dir), /^gmpchain-[0-9a-f]{16}$/);
    assert.equal(report.explain.reused, false);
    assert.deepEqual(report.explain.libraries.map((l) => l.name), [GMP, MPFR, MPC]);
    for (const l of report.explain.libraries) assert.equal(l.path, path.join(dir, l.name));

    // /proc/self/maps: every mapping of the chain is a bundled file, the very file in the cache directory.
    const mapped = new Set(report.maps.map((m) => m.path));
    assert.deepEqual([...mapped].sort(), [GMP, MPC, MPFR].map((n) => path.join(dir, n)), JSON.stringify(report.maps, null, 2));
    for (const m of report.maps) {
      assert.ok(CHAIN_LIB.test(m.path), m.path);
      assert.ok(!m.path.startsWith('/usr/lib/') && !m.path.startsWith('/lib/'), `system copy mapped: ${m.path}`);
      assert.equal(m.inode, report.inodes[path.basename(m.path)], `${m.path} is mapped from the cache directory's file`);
    }
    for (const name of [GMP, MPFR, MPC]) {
      assert.ok(report.maps.some((m) => m.path === path.join(dir, name) && m.perms.includes('x')), `${name} has an executable mapping`);
    }
  });

  it('control: without dlbundle the same sonames resolve to the system copies, which the maps check would catch', function () {
    const system = ['/usr/lib/x86_64-linux-gnu/libmpc.so.3', '/lib/x86_64-linux-gnu/libmpc.so.3'];
    if (!system.some((p) => fs.existsSync(p))) this.skip(); // no system MPC (no gcc installed): nothing to contrast with
    const script = String.raw`
      const koffi = require(${JSON.stringify(path.join(REPO, 'node_modules', 'koffi'))});
      const lib = koffi.load('libmpc.so.3');
      const version = lib.func('const char *mpc_get_version(void)')();
      const maps = require('node:fs').readFileSync('/proc/self/maps', 'latin1').split('\n')
        .map((l) => l.slice(l.indexOf('/'))).filter((p) => /\/lib(gmp|mpfr|mpc)\.so/.test(p));
      process.stdout.write(JSON.stringify({ version, paths: [...new Set(maps)] }));`;
    const r = JSON.parse(runChild({}, script)) as { version: string; paths: string[] };
    assert.match(r.version, /^[0-9]+\.[0-9]+/);
    assert.equal(r.paths.length, 3, r.paths.join('\n'));
    for (const p of r.paths) assert.ok(p.startsWith('/usr/lib/') || p.startsWith('/lib/'), p);
  });
});

/**
 * The right build for this machine: variant keys and the libc, CPU-feature
 * variants (a real AVX2 build beside a baseline one), musl builds loaded by
 * musl's own loader, optional libraries, `dlbundle doctor` and the
 * dependency tree of `inspect`.
 */
import { strict as assert } from 'node:assert';
import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { readInterpreterFile } from '../src/formats/elf-file';
import { pack } from '../src/pack';
import { cpuFeatures, elfTarget, elfTargetsOf, hostLibc, hostTarget, parseVariantKey, selectVariant, variantKey } from '../src/variant';
import { runChild } from './child';
import { expectCode, NATIVE_BUILD, nativeFixture, REPO, tempDir } from './fixtures';

// eslint-disable-next-line @typescript-eslint/no-require-imports
const { buildMusl } = require('../scripts/build-musl.js') as { buildMusl(): { dir: string; loader: string; files: string[] } };

const CLI = path.join(REPO, 'dist', 'cli.js');

/** Runs `fn` with environment variables set (or removed with undefined), restoring them after. */
function withEnv<T>(vars: Readonly<Record<string, string | undefined>>, fn: () => T): T {
  const saved = Object.fromEntries(Object.keys(vars).map((k) => [k, process.env[k]]));
  for (const [k, v] of Object.entries(vars)) {
    if (v === undefined) delete process.env[k];
    else process.env[k] = v;
  }
  try {
    return fn();
  } finally {
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  }
}

describe('variants', function () {
  this.timeout(120_000);

  describe('keys and the choice', () => {
    it("this machine's key comes from its C library, read from the program interpreter", () => {
      assert.equal(hostLibc(), 'gnu');
      assert.match(readInterpreterFile('/proc/self/exe') ?? '', /ld-linux/);
      assert.equal(hostTarget(), 'linux-x64-gnu');
    });

    it('parses and builds keys with CPU features, sorted', () => {
      assert.deepEqual(parseVariantKey('linux-x64-gnu+fma+avx2'), { target: 'linux-x64-gnu', features: ['avx2', 'fma'] });
      assert.equal(variantKey('linux-x64-gnu', ['fma', 'avx2', 'fma']), 'linux-x64-gnu+avx2+fma');
      expectCode('E_USAGE', () => parseVariantKey('linux-vax-gnu'));
      expectCode('E_USAGE', () => parseVariantKey('linux-x64-gnu+AVX 2'));
    });

    it("a shared object's targets come from its machine and class, narrowed by the C library it needs", () => {
      const table: { machine: string; class: 32 | 64; needed: string[]; want: string[] }[] = [
        { machine: 'x86_64', class: 64, needed: ['libstdc++.so.6', 'libc.so.6'], want: ['linux-x64-gnu'] },
        { machine: 'x86_64', class: 64, needed: ['libc.musl-x86_64.so.1'], want: ['linux-x64-musl'] },
        { machine: 'x86_64', class: 64, needed: ['libc.so'], want: ['linux-x64-musl'] },
        { machine: 'x86_64', class: 64, needed: ['libc.so.7'], want: ['freebsd-x64'] },
        // Naming no C library: every target of that machine.
        { machine: 'x86_64', class: 64, needed: ['libdemo_core.so'], want: ['linux-x64-gnu', 'linux-x64-musl', 'freebsd-x64'] },
        { machine: 'aarch64', class: 64, needed: ['libc.so.6', 'ld-linux-aarch64.so.1'], want: ['linux-arm64-gnu'] },
        { machine: 'aarch64', class: 64, needed: ['libc.musl-aarch64.so.1'], want: ['linux-arm64-musl'] },
        { machine: 'arm', class: 32, needed: ['libc.so.6'], want: ['linux-arm-gnu'] },
        { machine: 'x86_64', class: 32, needed: ['libc.so.6'], want: [] },
        { machine: 'em_9999', class: 64, needed: ['libc.so.6'], want: [] },
      ];
      for (const row of table) assert.deepEqual(elfTargetsOf(row), row.want, JSON.stringify(row));
      assert.equal(elfTarget('linux-arm64-gnu'), 'linux-arm64-gnu');
      assert.match(expectCode('E_USAGE', () => elfTarget('darwin-arm64')).message, /does not use ELF shared objects/);
      assert.match(expectCode('E_USAGE', () => elfTarget('linux-arm64-gun')).message, /^Unknown target "linux-arm64-gun"\. Did you mean "linux-arm64-gnu"\?/);
    });

    const keys = ['linux-x64-gnu', 'linux-x64-gnu+avx2', 'linux-x64-gnu+avx2+fma', 'linux-x64-gnu+avx512f', 'linux-x64-musl', 'linux-arm64-gnu', 'plan9-x64'];
    const table: { cpu: string; variant?: string; want: string }[] = [
      { cpu: '', want: 'linux-x64-gnu' },
      { cpu: 'sse4_2', want: 'linux-x64-gnu' },
      { cpu: 'avx2', want: 'linux-x64-gnu+avx2' },
      { cpu: 'avx2,fma', want: 'linux-x64-gnu+avx2+fma' },
      // Equally specific: the smaller key wins, so the choice never depends on manifest order.
      { cpu: 'avx2,avx512f', want: 'linux-x64-gnu+avx2' },
      { cpu: 'avx512f', want: 'linux-x64-gnu+avx512f' },
      { cpu: 'avx2,fma', variant: 'linux-x64-musl', want: 'linux-x64-musl' },
      { cpu: '', variant: 'linux-x64-gnu+avx512f', want: 'linux-x64-gnu+avx512f' },
    ];
    for (const row of table) {
      it(`CPU ${JSON.stringify(row.cpu)}${row.variant === undefined ? '' : `, DLBUNDLE_VARIANT=${row.variant}`} → ${row.want}, whatever the order of the variants`, () => {
        for (const order of [keys, [...keys].reverse()]) {
          const choice = withEnv({ DLBUNDLE_CPU_FEATURES: row.cpu, DLBUNDLE_VARIANT: row.variant }, () => selectVariant(order));
          assert.equal(choice.key, row.want, choice.reason);
        }
      });
    }

    it('explains the choice and what it skipped', () => {
      const choice = withEnv({ DLBUNDLE_CPU_FEATURES: 'avx2', DLBUNDLE_VARIANT: undefined }, () => selectVariant(keys));
      assert.match(choice.reason, /this machine is linux-x64-gnu; the CPU has avx2; skipped .*linux-x64-gnu\+avx2\+fma \(needs fma\)/);
    });

    it('E_NO_VARIANT lists what the bundle has and this machine key; a malformed DLBUNDLE_VARIANT is E_USAGE', () => {
      const e = withEnv({ DLBUNDLE_VARIANT: undefined }, () => expectCode('E_NO_VARIANT', () => selectVariant(['linux-arm64-gnu', 'darwin-arm64'], '"demo"')));
      assert.match(e.message, /"demo" has no build for this machine \(linux-x64-gnu\); it has linux-arm64-gnu, darwin-arm64/);
      const cpu = withEnv({ DLBUNDLE_CPU_FEATURES: 'sse4_2', DLBUNDLE_VARIANT: undefined }, () => expectCode('E_NO_VARIANT', () => selectVariant(['linux-x64-gnu+avx2'])));
      assert.match(cpu.message, /it lacks avx2/);
      withEnv({ DLBUNDLE_VARIANT: 'linux-x64-gnux' }, () => expectCode('E_USAGE', () => selectVariant(keys)));
      withEnv({ DLBUNDLE_VARIANT: 'linux-x64-gnu+sve' }, () => expectCode('E_NO_VARIANT', () => selectVariant(keys)));
    });

    it('reads the CPU flags from /proc/cpuinfo unless DLBUNDLE_CPU_FEATURES says otherwise', () => {
      const flags = /^flags\s*:\s*(.*)$/m.exec(fs.readFileSync('/proc/cpuinfo', 'utf8'))?.[1]?.split(/\s+/) ?? [];
      withEnv({ DLBUNDLE_CPU_FEATURES: undefined }, () => assert.deepEqual([...cpuFeatures()].sort(), [...new Set(flags)].filter((f) => f !== '').sort()));
      withEnv({ DLBUNDLE_CPU_FEATURES: 'avx2, fma' }, () => assert.deepEqual([...cpuFeatures()].sort(), ['avx2', 'fma']));
    });
  });

  describe('a CPU-feature variant: libdemo_simd.so built baseline and with -mavx2', () => {
    let bundle: string;
    before(() => {
      bundle = path.join(tempDir(), 'simd');
      pack([path.join(NATIVE_BUILD, 'simd-baseline', 'libdemo_simd.so')], { name: 'simd', out: bundle });
      pack([path.join(NATIVE_BUILD, 'simd-avx2', 'libdemo_simd.so')], { name: 'simd', out: bundle, requires: ['avx2'] });
    });
    const RUN = `
      const b = dl.openBundle({ source: dl.fromDirectory(P.bundle), cacheDir: P.cache });
      const simd = b.library('libdemo_simd.so', { build: 'const char *simd_build(void)', dot: 'int simd_dot8(const int *values)' });
      return { build: simd.build(), dot: simd.dot(new Int32Array([1, 2, 3, 4, 5, 6, 7, 8])), variant: b.explain().variant, reason: b.explain().variantReason };`;
    interface SimdRun {
      build: string;
      dot: number;
      variant: string;
      reason: string;
    }

    it('the avx2 build is chosen on a CPU with AVX2 (this one, per /proc/cpuinfo) and computes with it', () => {
      const hasAvx2 = withEnv({ DLBUNDLE_CPU_FEATURES: undefined }, () => cpuFeatures().has('avx2'));
      const r = runChild<SimdRun>(RUN, { params: { bundle, cache: tempDir() }, env: { DLBUNDLE_CPU_FEATURES: undefined } });
      assert.equal(r.build, hasAvx2 ? 'avx2' : 'baseline');
      assert.equal(r.variant, hasAvx2 ? 'linux-x64-gnu+avx2' : 'linux-x64-gnu');
      assert.equal(r.dot, 204);
    });

    it('the baseline build is chosen when the override removes avx2', () => {
      const r = runChild<SimdRun>(RUN, { params: { bundle, cache: tempDir() }, env: { DLBUNDLE_CPU_FEATURES: 'sse4_2,fma' } });
      assert.equal(r.build, 'baseline');
      assert.equal(r.variant, 'linux-x64-gnu');
      assert.match(r.reason, /skipped linux-x64-gnu\+avx2 \(needs avx2\)/);
      assert.equal(r.dot, 204);
    });
  });

  describe('musl builds', () => {
    let musl: { dir: string; loader: string; files: string[] };
    let bundle: string;
    before(() => {
      musl = buildMusl();
      bundle = path.join(tempDir(), 'both');
      pack(['libdemo_core.so', 'libdemo_codec.so.1.2.3', 'libdemo_app.so', 'libdemo_plugin.so'].map(nativeFixture), { name: 'demo', out: bundle });
      pack(musl.files, { name: 'demo', out: bundle, target: 'linux-x64-musl' });
    });

    it('are chosen under DLBUNDLE_VARIANT=linux-x64-musl, and every library is reachable by its soname as a file name', () => {
      const cache = tempDir();
      const r = runChild<{ variant: string; dir: string; gnu: string }>(
        `const b = dl.openBundle({ source: dl.fromDirectory(P.bundle), cacheDir: P.cache });
         await b.ready();
         process.env.DLBUNDLE_VARIANT = '';
         const g = dl.openBundle({ source: dl.fromDirectory(P.bundle), cacheDir: P.cache });
         await g.ready();
         return { variant: b.explain().variant, dir: b.dir, gnu: g.explain().variant };`,
        { params: { bundle, cache }, env: { DLBUNDLE_VARIANT: 'linux-x64-musl' } },
      );
      assert.equal(r.variant, 'linux-x64-musl');
      assert.equal(r.gnu, 'linux-x64-gnu', 'without the override, this glibc machine gets the gnu build');
      const manifest = JSON.parse(fs.readFileSync(path.join(bundle, 'dlbundle.json'), 'utf8')) as { variants: Record<string, { files: { name: string; soname: string; needed: string[] }[] }> };
      const files = manifest.variants['linux-x64-musl']?.files ?? [];
      assert.ok(files.some((f) => f.needed.includes('libc.so')), 'these are musl builds (they need musl’s libc.so)');
      for (const f of files) assert.equal(fs.realpathSync(path.join(r.dir, f.soname)), path.join(r.dir, f.name), `${f.soname} reaches ${f.name}`);
      // musl's own loader, loading in dependency order from the bundle directory.
      const ok = spawnSync(musl.loader, ['libdemo_core.so', 'libdemo_codec.so.1.2.3', 'libdemo_app.so'].map((n) => path.join(r.dir, n)), { encoding: 'utf8' });
      assert.equal(ok.stdout.trim(), '1011', ok.stdout + ok.stderr);
    });

    it('without the soname links musl cannot resolve libdemo_codec.so.1 (why the links matter)', () => {
      const plain = tempDir();
      for (const f of musl.files) fs.copyFileSync(f, path.join(plain, path.basename(f)));
      const r = spawnSync(musl.loader, ['libdemo_core.so', 'libdemo_codec.so.1.2.3', 'libdemo_app.so'].map((n) => path.join(plain, n)), { encoding: 'utf8' });
      assert.equal(r.status, 2);
      assert.match(r.stdout, /Error loading shared library libdemo_codec\.so\.1/);
    });
  });

  describe('optional libraries', () => {
    interface Answer {
      ok: boolean;
      code?: string;
      reason?: string;
      missing?: string[];
      value?: number;
      again?: boolean;
      mapped?: string[];
    }
    const ASK = `
      const b = dl.openBundle({ source: dl.fromDirectory(P.bundle), cacheDir: P.cache });
      const a = b.optional(P.name, P.symbols);
      const again = b.optional(P.name, P.symbols) === a && dl.openBundle({ source: dl.fromDirectory(P.bundle), cacheDir: P.cache }).optional(P.name, P.symbols) === a;
      const { lib, ...rest } = a;
      return { ...rest, again, value: a.ok && P.call ? lib[P.call](3) : undefined, mapped: demoMapped().map((p) => path.basename(p)) };`;
    let bundle: string;
    before(() => {
      bundle = path.join(tempDir(), 'demo');
      pack(['libdemo_core.so', 'libdemo_accel.so'].map(nativeFixture), { name: 'demo', out: bundle, optional: ['libdemo_accel.so'] });
    });

    it('a missing GPU runtime: ok false, naming it, checked before any dlopen, remembered for the process', () => {
      const r = runChild<Answer>(ASK, { params: { bundle, cache: tempDir(), name: 'libdemo_accel.so', symbols: { run: 'int accel_run(int x)' } } });
      assert.equal(r.ok, false);
      assert.equal(r.code, 'E_MISSING_DEP');
      assert.match(r.reason ?? '', /"libdemo_accel\.so" needs "libdemo_gpu_runtime\.so\.1"/);
      assert.deepEqual(r.missing, ['libdemo_gpu_runtime.so.1']);
      assert.equal(r.again, true, 'the same answer, remembered');
      assert.deepEqual(r.mapped, [], 'nothing was dlopened');
    });

    it('with a stand-in runtime on LD_LIBRARY_PATH of the child: ok true, and the call works', () => {
      const runtime = tempDir();
      fs.copyFileSync(nativeFixture('libdemo_gpu_runtime.so.1'), path.join(runtime, 'libdemo_gpu_runtime.so.1'));
      const r = runChild<Answer>(ASK, { params: { bundle, cache: tempDir(), name: 'libdemo_accel.so', symbols: { run: 'int accel_run(int x)' }, call: 'run' }, env: { LD_LIBRARY_PATH: runtime } });
      assert.equal(r.ok, true);
      assert.equal(r.value, 10, 'accel_run(3) = 3² + 1 through the runtime');
    });

    it('a missing symbol: ok false, E_MISSING_SYMBOL naming it', () => {
      const r = runChild<Answer>(ASK, { params: { bundle, cache: tempDir(), name: 'libdemo_core.so', symbols: { add: 'int add(int a, int b)', fast: 'int add_fast(int a, int b)' } } });
      assert.deepEqual([r.ok, r.code, r.missing], [false, 'E_MISSING_SYMBOL', ['add_fast']]);
    });

    it('a failed dlopen (an undefined symbol at RTLD_NOW): ok false, E_LOAD_FAILED', () => {
      const dir = tempDir();
      fs.writeFileSync(path.join(dir, 'broken.c'), 'int nowhere(void);\nint broken(void) { return nowhere(); }\n');
      execFileSync('gcc', ['-shared', '-fPIC', '-o', path.join(dir, 'libbroken.so'), path.join(dir, 'broken.c')]);
      const out = path.join(tempDir(), 'broken');
      pack([path.join(dir, 'libbroken.so')], { name: 'broken', out });
      const r = runChild<Answer>(ASK, { params: { bundle: out, cache: tempDir(), name: 'libbroken.so', symbols: { f: 'int broken(void)' } } });
      assert.deepEqual([r.ok, r.code], [false, 'E_LOAD_FAILED']);
      assert.match(r.reason ?? '', /undefined symbol: nowhere/);
    });

    it('a library for another machine: ok false, E_WRONG_ARCH', () => {
      const out = path.join(tempDir(), 'arm');
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      const foreign = (require('../scripts/fetch-foreign-arch.js') as { fetchForeignArch(): { lib: string } }).fetchForeignArch().lib;
      pack([foreign], { name: 'arm', out, target: 'linux-arm64-gnu' });
      const file = path.join(out, 'dlbundle.json');
      fs.writeFileSync(file, fs.readFileSync(file, 'utf8').replace('"linux-arm64-gnu"', '"linux-x64-gnu"'));
      fs.renameSync(path.join(out, 'linux-arm64-gnu'), path.join(out, 'linux-x64-gnu'));
      const r = runChild<Answer>(ASK, { params: { bundle: out, cache: tempDir(), name: path.basename(foreign), symbols: {} } });
      assert.deepEqual([r.ok, r.code], [false, 'E_WRONG_ARCH']);
    });
  });

  describe('dlbundle doctor and inspect', () => {
    function run(...args: string[]): { status: number | null; stdout: string } {
      const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', env: { ...process.env, DLBUNDLE_CACHE_DIR: path.join(tempDir(), 'cache'), XDG_CACHE_HOME: tempDir() } });
      return { status: r.status, stdout: r.stdout + r.stderr };
    }
    const DEMO = ['libdemo_core.so', 'libdemo_codec.so.1.2.3', 'libdemo_app.so', 'libdemo_plugin.so', 'libdemo_accel.so', 'demo.node'];

    it('doctor on the demo bundle (accelerator optional) reports everything and exits 0', () => {
      const out = path.join(tempDir(), 'demo');
      pack(DEMO.map(nativeFixture), { name: 'demo', out, optional: ['libdemo_accel.so'] });
      const r = run('doctor', out);
      assert.equal(r.status, 0, r.stdout);
      assert.match(r.stdout, /^machine {5}linux-x64-gnu \(C library: gnu\)/m);
      assert.match(r.stdout, /^variant {5}linux-x64-gnu: this machine is linux-x64-gnu/m);
      assert.match(r.stdout, /^cache root {2}.*\/cache: would be used — would be created \(mode 0700\)/m);
      assert.match(r.stdout, /libdemo_gpu_runtime\.so\.1 {2}not on this system: fine, the library needing it is optional/);
      assert.match(r.stdout, /libc\.so\.6 {2}system: \/\S+\/libc\.so\.6 \(ld\.so\.cache\)/);
      assert.match(r.stdout, /absent {2}libdemo_accel\.so \(optional\): E_MISSING_DEP/);
      assert.doesNotMatch(r.stdout, /MISSING: |FAIL  /);
      for (const name of ['libdemo_core.so', 'libdemo_codec.so.1.2.3', 'libdemo_app.so', 'demo.node']) assert.match(r.stdout, new RegExp(`ok {4}${name.replace(/\./g, '\\.')}`));
      assert.match(r.stdout, /result: the bundle loads here \(1 optional library is unavailable\)/);
      const json = JSON.parse(run('doctor', out, '--json').stdout) as { loads: boolean; variant: { key: string }; trial: { name: string; ok: boolean }[] };
      assert.equal(json.loads, true);
      assert.equal(json.variant.key, 'linux-x64-gnu');
    });

    it('doctor exits 1 when a required library cannot load, and says why a root is skipped', () => {
      const out = path.join(tempDir(), 'demo');
      pack(['libdemo_core.so', 'libdemo_accel.so'].map(nativeFixture), { name: 'demo', out });
      const open = tempDir();
      fs.chmodSync(open, 0o777);
      const r = spawnSync(process.execPath, [CLI, 'doctor', out], { encoding: 'utf8', env: { ...process.env, DLBUNDLE_CACHE_DIR: open, XDG_CACHE_HOME: tempDir() } });
      assert.equal(r.status, 1, r.stdout);
      assert.match(r.stdout, new RegExp(`${open}: skipped — it is writable by group or others \\(mode 0777\\)`));
      assert.match(r.stdout, /FAIL {2}libdemo_accel\.so: E_MISSING_DEP/);
      assert.match(r.stdout, /result: the bundle does NOT load here/);
    });

    it('inspect prints the dependency tree: bundled, system with its path, missing', () => {
      const out = path.join(tempDir(), 'demo');
      pack(DEMO.map(nativeFixture), { name: 'demo', out });
      const r = run('inspect', out);
      assert.equal(r.status, 0);
      const tree = r.stdout.slice(r.stdout.indexOf('dependencies on this machine:'));
      assert.match(tree, /libdemo_app\.so\n {6}├─ libdemo_codec\.so\.1 {2}bundled: libdemo_codec\.so\.1\.2\.3\n/);
      assert.match(tree, /libdemo_accel\.so\n {6}└─ libdemo_gpu_runtime\.so\.1 {2}MISSING: not bundled, not on this system/);
      assert.match(tree, /└─ libc\.so\.6 {2}system: \/\S+\/libc\.so\.6 \(ld\.so\.cache\)/);
      // Packed as optional, the same absence is what is expected here, and reads so.
      const optional = path.join(tempDir(), 'demo');
      pack(DEMO.map(nativeFixture), { name: 'demo', out: optional, optional: ['libdemo_accel.so'] });
      const quiet = run('inspect', optional).stdout;
      assert.match(quiet, /libdemo_accel\.so {2}\(optional\)\n {6}└─ libdemo_gpu_runtime\.so\.1 {2}not on this system: fine, the library needing it is optional and is left out here/);
      assert.doesNotMatch(quiet, /MISSING: /);
    });
  });
});

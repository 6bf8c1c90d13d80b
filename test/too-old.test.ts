/**
 * A library built for a newer system than this one (E_SYSTEM_TOO_OLD): said
 * before any dlopen, from the symbol versions recorded at pack time.
 *
 * The fixtures are real cases, crafted (binding.gyp): libtoo_new_glibc.so
 * was linked against a stand-in libc.so.6 that defines GLIBC_2.99, and
 * libtoo_new_cxx.so against a stand-in libstdc++.so.6 that defines
 * GLIBCXX_3.4.99 and CXXABI_1.3.99, so their .gnu.version_r need versions no
 * real library defines. Neither stand-in is packed (except where a test packs
 * the libstdc++ one on purpose). Each test first shows that a plain dlopen of
 * the same file fails with glibc's own "version … not found".
 */
import { strict as assert } from 'node:assert';
import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseManifest } from '../src/manifest';
import { pack } from '../src/pack';
import { resolveSystemLibrary } from '../src/system-libs';
import { runningGlibcVersion } from '../src/loader';
import { GLIBC_FLOOR, loadedLibrary, systemVersionOracle } from '../src/system-versions';
import { runChild } from './child';
import { nativeFixture, REPO, tempDir } from './fixtures';

const CLI = path.join(REPO, 'dist', 'cli.js');
const KOFFI = require.resolve('koffi');

/** This machine's glibc version as glibc itself reports it (getconf GNU_LIBC_VERSION: "glibc 2.36"). */
function hostGlibc(): string {
  const text = execFileSync('getconf', ['GNU_LIBC_VERSION'], { encoding: 'utf8' }).trim();
  const m = /^glibc (\d+\.\d+)/.exec(text);
  assert.ok(m !== null, `getconf GNU_LIBC_VERSION said ${JSON.stringify(text)}`);
  return m[1] as string;
}

/** The highest version of `family` that readelf -V lists among the definitions of `file` (an independent reading). */
function readelfHighest(file: string, family: string): string {
  const text = execFileSync('readelf', ['-V', '-W', file], { encoding: 'utf8' });
  const defs = text.slice(text.indexOf('Version definition section'), text.indexOf('Version needs section') >>> 0);
  const versions = [...defs.matchAll(new RegExp(`Name: ${family}_([0-9.]+)$`, 'gm'))].map((m) => m[1] as string);
  assert.ok(versions.length > 0, `readelf lists no ${family} version in ${file}`);
  const cmp = (a: string, b: string): number => {
    const x = a.split('.').map(Number);
    const y = b.split('.').map(Number);
    for (let i = 0; i < Math.max(x.length, y.length); i++) if ((x[i] ?? -1) !== (y[i] ?? -1)) return (x[i] ?? -1) - (y[i] ?? -1);
    return 0;
  };
  return versions.sort(cmp).at(-1) as string;
}

/** What a plain koffi.load (dlopen) of `files`, in order, says in a fresh process. */
function plainDlopen(files: readonly string[]): string {
  const script = `const koffi = require(${JSON.stringify(KOFFI)});
    try { for (const f of ${JSON.stringify(files)}) koffi.load(f); console.log('loaded'); } catch (e) { console.log(e.message); }`;
  return execFileSync(process.execPath, ['-e', script], { encoding: 'utf8' }).trim();
}

function cli(...args: string[]): { status: number | null; stdout: string; stderr: string } {
  return spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', env: { ...process.env, DLBUNDLE_CACHE_DIR: tempDir() } });
}

interface Refusal {
  code: string;
  file: string;
  dependency: string;
  requiredVersion: string;
  presentVersion: string;
  message: string;
}

// In the child: the call's error facts, and which of the bundle's libraries are mapped afterwards.
const LOAD_AND_REPORT = `
  const bundle = dl.openBundle({ source: dl.fromDirectory(P.bundle), cacheDir: P.cache });
  const facts = (e) => ({ code: e.code, file: e.file, dependency: e.dependency, requiredVersion: e.requiredVersion, presentVersion: e.presentVersion, message: e.message });
  let error = null;
  // Reading a symbol binds it, which loads the library and what it needs.
  try { void bundle.library(P.lib, { f: P.proto }).f; } catch (e) { error = facts(e); }
  const mine = mapped().filter((p) => /libtoo_new|libdemo_core/.test(p));
  const optional = bundle.optional(P.lib, { f: P.proto });
  return { error, mine, optional: { ok: optional.ok, code: optional.code, missing: optional.missing, reason: optional.reason }, mineAfter: mapped().filter((p) => /libtoo_new|libdemo_core/.test(p)) };`;

interface LoadReport {
  error: Refusal | null;
  mine: string[];
  optional: { ok: boolean; code?: string; missing?: string[]; reason?: string };
  mineAfter: string[];
}

describe('a library built for a newer glibc than this system has', function () {
  this.timeout(60_000);
  let bundle: string;
  const glibc = hostGlibc();
  const libc = resolveSystemLibrary('libc.so.6', { runpath: [], origin: '/' })?.path as string;

  before(() => {
    bundle = path.join(tempDir(), 'bundle');
    pack([nativeFixture('libdemo_core.so'), nativeFixture('libtoo_new_glibc.so')], { name: 'too-new', out: bundle });
  });

  it('is a real case: a plain dlopen fails with glibc\'s own "version `GLIBC_2.99\' not found"', () => {
    const said = plainDlopen([nativeFixture('libdemo_core.so'), nativeFixture('libtoo_new_glibc.so')]);
    assert.match(said, /libc\.so\.6: version `GLIBC_2\.99' not found \(required by .*libtoo_new_glibc\.so\)/);
  });

  it('pack records the highest GLIBC version each file needs', () => {
    const manifest = parseManifest(fs.readFileSync(path.join(bundle, 'dlbundle.json'), 'utf8'));
    const files = Object.values(manifest.variants)[0]?.files ?? [];
    const byName = new Map(files.map((f) => [f.name, f.requiresVersions]));
    assert.deepEqual(byName.get('libtoo_new_glibc.so'), { GLIBC: '2.99' });
    // libdemo_core.so needs only glibc's oldest x86-64 version; readelf agrees.
    assert.deepEqual(byName.get('libdemo_core.so'), { GLIBC: '2.2.5' });
    assert.match(execFileSync('readelf', ['-V', '-W', nativeFixture('libtoo_new_glibc.so')], { encoding: 'utf8' }), /Name: GLIBC_2\.99 /);
  });

  it('loading it is E_SYSTEM_TOO_OLD naming the library, GLIBC_2.99, this machine\'s glibc and its file, before any dlopen of its closure', () => {
    const r = runChild<LoadReport>(LOAD_AND_REPORT, { params: { bundle, cache: path.join(tempDir(), 'cache'), lib: 'libtoo_new_glibc.so', proto: 'int too_new_glibc_run(const char *s)' } });
    const e = r.error as Refusal;
    assert.ok(e !== null, 'the call threw');
    assert.equal(e.code, 'E_SYSTEM_TOO_OLD');
    assert.equal(e.file, 'libtoo_new_glibc.so');
    assert.equal(e.dependency, 'libc.so.6');
    assert.equal(e.requiredVersion, 'GLIBC_2.99');
    assert.equal(e.presentVersion, `GLIBC_${glibc}`, 'the version getconf reports for this machine');
    assert.ok(e.message.includes('"libtoo_new_glibc.so" needs GLIBC_2.99'), e.message);
    assert.ok(e.message.includes(`${libc} defines versions up to GLIBC_${glibc}`), e.message);
    assert.match(e.message, /\nUse a build of libtoo_new_glibc\.so made for an older system .*, or run on a system whose glibc is newer/);
    // Nothing of the closure was opened: not the library, not libdemo_core.so that it needs (loaded first otherwise).
    assert.deepEqual(r.mine, []);
    assert.equal(r.optional.ok, false);
    assert.equal(r.optional.code, 'E_SYSTEM_TOO_OLD');
    assert.deepEqual(r.optional.missing, ['GLIBC_2.99']);
    assert.match(r.optional.reason ?? '', /needs GLIBC_2\.99/);
    assert.deepEqual(r.mineAfter, [], 'optional() did not dlopen it either');
  });

  it('an addon that needs it is refused the same way before process.dlopen', () => {
    const dir = tempDir();
    fs.copyFileSync(nativeFixture('libtoo_new_glibc.so'), path.join(dir, 'too_new.node'));
    const out = path.join(tempDir(), 'bundle');
    pack([nativeFixture('libdemo_core.so'), path.join(dir, 'too_new.node')], { name: 'too-new-addon', out });
    const r = runChild<{ code: string; message: string; mine: string[] }>(
      `const bundle = dl.openBundle({ source: dl.fromDirectory(P.bundle), cacheDir: P.cache });
       try { bundle.addon('too_new.node'); return { code: 'none', message: '', mine: [] }; }
       catch (e) { return { code: e.code, message: e.message, mine: mapped().filter((p) => p.endsWith('too_new.node')) }; }`,
      { params: { bundle: out, cache: path.join(tempDir(), 'cache') } },
    );
    assert.equal(r.code, 'E_SYSTEM_TOO_OLD', r.message);
    assert.match(r.message, /"too_new\.node" needs GLIBC_2\.99/);
    assert.deepEqual(r.mine, []);
  });

  it('a manifest packed before versions were recorded still loads its other libraries, and ld.so\'s refusal is E_SYSTEM_TOO_OLD too', () => {
    const old = path.join(tempDir(), 'bundle');
    fs.cpSync(bundle, old, { recursive: true });
    const manifestPath = path.join(old, 'dlbundle.json');
    const text = fs.readFileSync(manifestPath, 'utf8');
    const json = JSON.parse(text) as { variants: Record<string, { files: Record<string, unknown>[] }> };
    for (const v of Object.values(json.variants)) for (const f of v.files) delete f.requiresVersions;
    fs.writeFileSync(manifestPath, JSON.stringify(json, null, 2));
    assert.ok(!fs.readFileSync(manifestPath, 'utf8').includes('requiresVersions'));
    const r = runChild<{ add: number; code: string; required: string; message: string }>(
      `const bundle = dl.openBundle({ source: dl.fromDirectory(P.bundle), cacheDir: P.cache });
       const add = bundle.library('libdemo_core.so', { add: 'int add(int a, int b)' }).add(2, 3);
       try { bundle.library('libtoo_new_glibc.so', { f: 'int too_new_glibc_run(const char *s)' }).f('ab'); return { add, code: 'none' }; }
       catch (e) { return { add, code: e.code, required: e.requiredVersion, message: e.message }; }`,
      { params: { bundle: old, cache: path.join(tempDir(), 'cache') } },
    );
    assert.equal(r.add, 5);
    assert.equal(r.code, 'E_SYSTEM_TOO_OLD');
    assert.equal(r.required, 'GLIBC_2.99');
    assert.match(r.message, /the dynamic linker said: .*version `GLIBC_2\.99' not found/);
  });

  it('doctor shows it (text and --json) and says the bundle does not load here', () => {
    const text = cli('doctor', bundle);
    assert.equal(text.status, 1, text.stderr);
    assert.match(text.stdout, new RegExp(`glibc / libstdc\\+\\+ versions on this machine:\\n  libdemo_core\\.so +GLIBC_2\\.2\\.5: ok \\(${libc.replace(/[.+]/g, '\\$&')} defines versions up to GLIBC_${glibc.replace('.', '\\.')}\\)\\n  libtoo_new_glibc\\.so +GLIBC_2\\.99: TOO OLD here: `));
    assert.match(text.stdout, /FAIL {2}libtoo_new_glibc\.so: E_SYSTEM_TOO_OLD "libtoo_new_glibc\.so" needs GLIBC_2\.99/);
    assert.match(text.stdout, /result: the bundle does NOT load here/);
    const json = cli('doctor', '--json', bundle);
    const report = JSON.parse(json.stdout) as { loads: boolean; libraries: { name: string; versions: unknown[] }[]; trial: { name: string; code?: string }[] };
    assert.equal(report.loads, false);
    assert.deepEqual(report.libraries.find((l) => l.name === 'libtoo_new_glibc.so')?.versions, [{ family: 'GLIBC', needed: '2.99', status: 'too-old', present: glibc, file: libc }]);
    assert.equal(report.trial.find((t) => t.name === 'libtoo_new_glibc.so')?.code, 'E_SYSTEM_TOO_OLD');
  });

  it('doctor counts it as absent, not a failure, when it was packed --optional', () => {
    const out = path.join(tempDir(), 'bundle');
    pack([nativeFixture('libdemo_core.so'), nativeFixture('libtoo_new_glibc.so')], { name: 'too-new', out, optional: ['libtoo_new_glibc.so'] });
    const text = cli('doctor', out);
    assert.equal(text.status, 0, text.stdout);
    assert.match(text.stdout, /libtoo_new_glibc\.so +GLIBC_2\.99: too old here: fine, the library is optional/);
    assert.match(text.stdout, /absent {2}libtoo_new_glibc\.so \(optional\): E_SYSTEM_TOO_OLD/);
  });

  it('inspect prints it, for the bundle (text and --json) and for the file itself', () => {
    const text = cli('inspect', bundle);
    assert.equal(text.status, 0, text.stderr);
    assert.match(text.stdout, /\d\. libtoo_new_glibc\.so {2}\(soname libtoo_new_glibc\.so, \d+ bytes, x86_64\) {2}needs libc\.so\.6, libdemo_core\.so; versions GLIBC_2\.99\n/);
    assert.match(text.stdout, new RegExp(`symbol versions on this machine:\\n(.*\\n)*    libtoo_new_glibc\\.so +GLIBC_2\\.99: TOO OLD here: ${libc.replace(/[.+]/g, '\\$&')} defines versions up to GLIBC_${glibc.replace('.', '\\.')}`));
    const json = JSON.parse(cli('inspect', '--json', bundle).stdout) as { variants: Record<string, { files: { name: string; requiresVersions?: unknown }[] }> };
    const files = Object.values(json.variants)[0]?.files ?? [];
    assert.deepEqual(files.find((f) => f.name === 'libtoo_new_glibc.so')?.requiresVersions, { GLIBC: '2.99' });
    const file = cli('inspect', nativeFixture('libtoo_new_glibc.so'));
    assert.match(file.stdout, /\n {2}versions: GLIBC_2\.99\n?$/);
    const fileJson = JSON.parse(cli('inspect', '--json', nativeFixture('libtoo_new_glibc.so')).stdout) as { requiresVersions: unknown }[];
    assert.deepEqual(fileJson[0]?.requiresVersions, { GLIBC: '2.99' });
  });
});

describe('a library built with a newer libstdc++ than this system has', function () {
  this.timeout(60_000);
  const libstdcxx = resolveSystemLibrary('libstdc++.so.6', { runpath: [], origin: '/' })?.path as string;

  it('is a real case: a plain dlopen fails with "version `GLIBCXX_3.4.99\' not found"', () => {
    assert.match(plainDlopen([nativeFixture('libtoo_new_cxx.so')]), /libstdc\+\+\.so\.6: version `(GLIBCXX_3\.4\.99|CXXABI_1\.3\.99)' not found \(required by .*libtoo_new_cxx\.so\)/);
  });

  it('pack records GLIBCXX 3.4.99 and CXXABI 1.3.99; loading is E_SYSTEM_TOO_OLD naming both, the system libstdc++ and its versions, before dlopen', () => {
    const bundle = path.join(tempDir(), 'bundle');
    const r0 = pack([nativeFixture('libtoo_new_cxx.so')], { name: 'too-new-cxx', out: bundle });
    assert.deepEqual(r0.variant.files[0]?.requiresVersions, { GLIBCXX: '3.4.99', CXXABI: '1.3.99' });
    const r = runChild<LoadReport>(LOAD_AND_REPORT, { params: { bundle, cache: path.join(tempDir(), 'cache'), lib: 'libtoo_new_cxx.so', proto: 'int too_new_cxx_run(void)' } });
    const e = r.error as Refusal;
    const glibcxx = readelfHighest(libstdcxx, 'GLIBCXX');
    const cxxabi = readelfHighest(libstdcxx, 'CXXABI');
    assert.equal(e.code, 'E_SYSTEM_TOO_OLD');
    assert.equal(e.dependency, 'libstdc++.so.6');
    assert.equal(e.requiredVersion, 'GLIBCXX_3.4.99');
    assert.equal(e.presentVersion, `GLIBCXX_${glibcxx}`);
    assert.ok(e.message.startsWith(`"libtoo_new_cxx.so" needs GLIBCXX_3.4.99 and CXXABI_1.3.99, newer than this system's libstdc++: ${libstdcxx} defines versions up to GLIBCXX_${glibcxx} and CXXABI_${cxxabi}.`), e.message);
    assert.deepEqual(r.mine, []);
    assert.deepEqual({ ok: r.optional.ok, code: r.optional.code, missing: r.optional.missing }, { ok: false, code: 'E_SYSTEM_TOO_OLD', missing: ['GLIBCXX_3.4.99'] });
  });

  it('a bundle that carries its own libstdc++.so.6 is still refused when the process already has one: ld.so gives the library that one', () => {
    // The precondition: this node links libstdc++ (Debian's and the official builds do), so it is loaded before any bundle.
    assert.ok(runChild<string[]>('return mapped();').some((p) => /\/libstdc\+\+\.so\.6/.test(p)), 'node has libstdc++.so.6 loaded');
    // What the dynamic linker does: the bundled copy loads, and the library is still given the process's own.
    const stub = nativeFixture('libtoo_new_cxx_stub.so');
    assert.match(plainDlopen([stub, nativeFixture('libtoo_new_cxx.so')]), /version `(GLIBCXX_3\.4\.99|CXXABI_1\.3\.99)' not found/);
    const bundle = path.join(tempDir(), 'bundle');
    pack([stub, nativeFixture('libtoo_new_cxx.so')], { name: 'too-new-cxx', out: bundle });
    const r = runChild<LoadReport>(LOAD_AND_REPORT, { params: { bundle, cache: path.join(tempDir(), 'cache'), lib: 'libtoo_new_cxx.so', proto: 'int too_new_cxx_run(void)' } });
    const e = r.error as Refusal;
    assert.equal(e.code, 'E_SYSTEM_TOO_OLD', e.message);
    assert.match(e.message, /the bundle carries its own libstdc\+\+\.so\.6, but this process had already loaded \/\S+\/libstdc\+\+\.so\.6[.0-9]*, and the dynamic linker gives every library that needs libstdc\+\+\.so\.6 the copy already loaded/);
    assert.deepEqual(r.mine, [], 'neither the bundled libstdc++ nor the library was opened');
  });
});

describe('musl builds', function () {
  this.timeout(120_000);
  it('need no symbol versions (musl defines none): pack records no requiresVersions for them', () => {
    const { buildMusl } = require('../scripts/build-musl.js') as { buildMusl(): { files: string[] } };
    const musl = buildMusl();
    const r = pack(musl.files, { name: 'demo', out: path.join(tempDir(), 'bundle'), target: 'linux-x64-musl' });
    assert.ok(r.variant.files.some((f) => f.needed.includes('libc.so')), 'musl builds, needing musl\'s libc.so');
    assert.deepEqual(r.variant.files.filter((f) => f.requiresVersions !== undefined).map((f) => f.name), []);
  });
});

describe('the version the system offers', () => {
  it('is read from the copy this process has loaded when the search finds another file that would refuse a library', () => {
    // A stand-in for a stray older libc.so.6 on the search path: libpthread.so.0 defines GLIBC versions only up to 2.3x.
    const stray = resolveSystemLibrary('libpthread.so.0', { runpath: [], origin: '/' })?.path as string;
    const offered = systemVersionOracle<null>({ bundled: () => false, resolve: () => stray });
    const glibc = hostGlibc();
    const answer = offered('GLIBC', null, glibc);
    assert.equal(answer?.version, glibc, JSON.stringify(answer));
    assert.equal(fs.statSync(answer?.file as string).ino, fs.statSync(loadedLibrary('libc.so.6') as string).ino);
    assert.match(answer?.note ?? '', /this process has \S+libc\.so\.6 loaded, which the dynamic linker uses instead of/);
  });

  it('a start looks nothing up for GLIBC versions every glibc that runs Node has, and for a newer one reads the hashes once', () => {
    const asked: string[] = [];
    const libc = resolveSystemLibrary('libc.so.6', { runpath: [], origin: '/' })?.path as string;
    const quick = systemVersionOracle<null>({ bundled: () => false, resolve: (soname) => (asked.push(soname), libc) }, { quick: true });
    assert.deepEqual(quick('GLIBC', null, GLIBC_FLOOR), { version: GLIBC_FLOOR, file: 'libc.so.6' });
    assert.deepEqual(quick('GLIBC', null, '2.2.5'), { version: '2.2.5', file: 'libc.so.6' });
    assert.deepEqual(asked, [], 'not even resolved');
    const glibc = hostGlibc();
    assert.deepEqual(quick('GLIBC', null, glibc), { version: glibc, file: libc }, 'found by hash: the version asked about');
    assert.deepEqual(asked, ['libc.so.6']);
    // A version the hashes lack is read in full, to name the highest.
    assert.deepEqual(quick('GLIBC', null, '2.99'), { version: glibc, file: libc });
  });

  it("a start compares a newer GLIBC version with the running glibc's (gnu_get_libc_version), without resolving or reading libc.so.6", () => {
    const glibc = hostGlibc();
    assert.equal(runningGlibcVersion(), glibc, 'what getconf GNU_LIBC_VERSION says');
    const asked: string[] = [];
    const libc = resolveSystemLibrary('libc.so.6', { runpath: [], origin: '/' })?.path as string;
    const quick = systemVersionOracle<null>({ bundled: () => false, resolve: (soname) => (asked.push(soname), libc), runningGlibc: runningGlibcVersion }, { quick: true });
    assert.deepEqual(quick('GLIBC', null, glibc), { version: glibc, file: 'libc.so.6' });
    assert.deepEqual(quick('GLIBC', null, '2.18'), { version: glibc, file: 'libc.so.6' });
    assert.deepEqual(asked, []);
    // Too old: the file is read, to name it and the highest version it defines.
    assert.deepEqual(quick('GLIBC', null, '2.99'), { version: glibc, file: libc });
    assert.deepEqual(asked, ['libc.so.6']);
  });

  it('the loaded copy is found by soname in /proc/self/maps; a library the process does not have is null', () => {
    const loaded = loadedLibrary('libc.so.6') as string;
    const maps = fs.readFileSync('/proc/self/maps', 'latin1');
    assert.ok(maps.includes(` ${loaded}\n`), loaded);
    assert.equal(loadedLibrary('libdemo_gpu_runtime.so.1'), null);
  });
});

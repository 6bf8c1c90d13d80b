/**
 * `dlbundle pack --package`: a package's `.node` addons for the target and the
 * libraries they need, found the way the dynamic linker would from where each
 * file sits, with the reason each was taken.
 *
 * First on a fake package laid out from the demo libraries (no network):
 * demo_runpath.node (RUNPATH $ORIGIN/../../lib) needs libdemo_codec.so.1 — a
 * link in lib/ to libdemo_codec.so.1.2.3 — and libdemo_core.so, which sits
 * beside the addon; other platforms' addons are hand-made ELF and Mach-O files.
 * Then on three real packages installed from the npm registry by
 * scripts/fetch-npm-apps.js (onnxruntime-node 1.30.0, sharp 0.35.5,
 * @duckdb/node-api 1.5.6-r.1): the exact files taken, a closure that the
 * dynamic linker would find complete, and each bundle's addon loaded from the
 * bundle's cache directory in a fresh process.
 */
import { strict as assert } from 'node:assert';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { readElfFile } from '../src/formats/elf-file';
import { MANIFEST_FILE, type Manifest } from '../src/manifest';
import { packPackage } from '../src/pack';
import { packageNativeFiles, type PackageNativeFiles } from '../src/package-files';
import { resolveSystemLibrary } from '../src/system-libs';
import { hostTarget } from '../src/variant';
import { buildElf } from './elf-builder';
import { expectCode, nativeFixture, REPO, tempDir } from './fixtures';

const CLI = path.join(REPO, 'dist', 'cli.js');
const DIST = path.join(REPO, 'dist', 'index.js');
const EM_AARCH64 = 183;

interface NpmApp {
  readonly dir: string;
  readonly package: string;
  readonly version: string;
  readonly check: unknown;
}

interface FetchModule {
  fetchNpmApps(options?: { readonly log?: (line: string) => void }): { readonly root: string; readonly apps: Readonly<Record<'onnxruntime-node' | 'sharp' | 'duckdb', NpmApp>>; readonly fetched: readonly string[] };
}

/** `dlbundle pack …` in `cwd`. */
function cli(cwd: string, ...args: string[]): { status: number | null; stdout: string; stderr: string } {
  return spawnSync(process.execPath, [CLI, ...args], { cwd, encoding: 'utf8', env: { ...process.env, DLBUNDLE_CACHE_DIR: tempDir() } });
}

function write(file: string, bytes: string | Buffer): void {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, bytes);
}

function packageJson(dir: string, json: Record<string, unknown>): void {
  write(path.join(dir, 'package.json'), JSON.stringify(json));
}

/**
 * An application with the fake package `demo-pkg`, whose native half is its
 * optional dependency `demo-pkg-linux-x64` (as sharp's is @img/sharp-linux-x64):
 *
 *   node_modules/demo-pkg/prebuilds/linux-arm64/demo.node       aarch64, RUNPATH $ORIGIN, needs libdemo_core.so
 *   node_modules/demo-pkg/prebuilds/linux-arm64/libdemo_core.so aarch64
 *   node_modules/demo-pkg/prebuilds/linux-x64-musl/demo.node    x86_64, needs musl's libc
 *   node_modules/demo-pkg/prebuilds/darwin-arm64/demo.node      Mach-O
 *   node_modules/demo-pkg-linux-x64/build/Release/demo_runpath.node  (built from native/)
 *   node_modules/demo-pkg-linux-x64/build/Release/libdemo_core.so    beside the addon
 *   node_modules/demo-pkg-linux-x64/lib/libdemo_codec.so.1 -> libdemo_codec.so.1.2.3
 */
function fakeApp(options: { readonly withCore?: boolean } = {}): string {
  const app = tempDir('dlbundle-fake-app-');
  packageJson(app, { name: 'fake-app', private: true, dependencies: { 'demo-pkg': '1.0.0' } });
  const pkg = path.join(app, 'node_modules', 'demo-pkg');
  packageJson(pkg, { name: 'demo-pkg', version: '1.0.0', optionalDependencies: { 'demo-pkg-linux-x64': '1.0.0', 'demo-pkg-darwin-arm64': '1.0.0' } });
  write(path.join(pkg, 'index.js'), "module.exports = require('demo-pkg-linux-x64/build/Release/demo_runpath.node');\n");
  write(path.join(pkg, 'prebuilds', 'linux-arm64', 'demo.node'), buildElf({ class: 64, endian: 'little', machine: EM_AARCH64, soname: 'demo.node', needed: ['libdemo_core.so', 'libc.so.6'], runpath: '$ORIGIN' }).bytes);
  write(path.join(pkg, 'prebuilds', 'linux-arm64', 'libdemo_core.so'), buildElf({ class: 64, endian: 'little', machine: EM_AARCH64, soname: 'libdemo_core.so', needed: ['libc.so.6'] }).bytes);
  write(path.join(pkg, 'prebuilds', 'linux-x64-musl', 'demo.node'), buildElf({ class: 64, endian: 'little', soname: 'demo.node', needed: ['libc.musl-x86_64.so.1'] }).bytes);
  write(path.join(pkg, 'prebuilds', 'darwin-arm64', 'demo.node'), Buffer.from([0xcf, 0xfa, 0xed, 0xfe, 0x0c, 0x00, 0x00, 0x01, ...Buffer.alloc(56)]));
  const native = path.join(app, 'node_modules', 'demo-pkg-linux-x64');
  packageJson(native, { name: 'demo-pkg-linux-x64', version: '1.0.0', os: ['linux'], cpu: ['x64'] });
  fs.mkdirSync(path.join(native, 'build', 'Release'), { recursive: true });
  fs.mkdirSync(path.join(native, 'lib'));
  fs.copyFileSync(nativeFixture('demo_runpath.node'), path.join(native, 'build', 'Release', 'demo_runpath.node'));
  if (options.withCore !== false) fs.copyFileSync(nativeFixture('libdemo_core.so'), path.join(native, 'build', 'Release', 'libdemo_core.so'));
  fs.copyFileSync(nativeFixture('libdemo_codec.so.1.2.3'), path.join(native, 'lib', 'libdemo_codec.so.1.2.3'));
  fs.symlinkSync('libdemo_codec.so.1.2.3', path.join(native, 'lib', 'libdemo_codec.so.1'));
  return app;
}

/** Every DT_NEEDED of every file of the bundle's variant is met by another file of it (by soname) or by this system. */
function assertClosed(out: string, target: string): void {
  const manifest = JSON.parse(fs.readFileSync(path.join(out, MANIFEST_FILE), 'utf8')) as Manifest;
  const variant = manifest.variants[target];
  assert.ok(variant !== undefined, `no variant ${target} in ${out}`);
  const provided = new Set(variant.files.map((f) => f.soname ?? f.name));
  for (const f of variant.files) {
    // Read from the packed file itself, not from the report.
    const elf = readElfFile(path.join(out, target, f.name));
    for (const dep of elf.needed) {
      const met = provided.has(dep) || (target === hostTarget() && resolveSystemLibrary(dep, { runpath: [], origin: '/nonexistent' }) !== null);
      assert.ok(met, `${f.name} needs ${dep}: neither packed nor on this system`);
    }
  }
}

/** Loads `addon` from the bundle in `out` in a fresh process; returns the mappings of the bundle's files and the bundle's directory. */
function loadInChild(out: string, addon: string, call = ''): { dir: string; mapped: string[]; result: unknown } {
  const script = `
    const fs = require('node:fs');
    const { openBundle, fromDirectory } = require(${JSON.stringify(DIST)});
    const bundle = openBundle({ source: fromDirectory(${JSON.stringify(out)}) });
    const addon = bundle.addon(${JSON.stringify(addon)});
    const result = (${call === '' ? '() => Object.getOwnPropertyNames(addon).length' : call})(addon);
    const dir = bundle.explain().dir;
    const mapped = [...new Set(fs.readFileSync('/proc/self/maps', 'latin1').split('\\n').map((l) => l.split(/\\s+/).slice(5).join(' ')).filter((p) => p.startsWith(dir + '/')))];
    process.stdout.write(JSON.stringify({ dir, mapped, result }));
  `;
  const r = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8', env: { ...process.env, DLBUNDLE_CACHE_DIR: tempDir(), DEBUG: '' }, timeout: 120_000 });
  assert.equal(r.status, 0, `child failed (status ${r.status}, signal ${r.signal}):\n${r.stderr}`);
  return JSON.parse(r.stdout) as { dir: string; mapped: string[]; result: unknown };
}

function reasons(found: PackageNativeFiles): Record<string, string> {
  return Object.fromEntries(found.files.map((f) => [f.name, f.reason]));
}

describe('pack --package: a fake package built from native/', () => {
  it('takes the addon of the platform package, its RUNPATH library (through the link) and the library beside it, and says why', () => {
    const app = fakeApp();
    const found = packageNativeFiles('demo-pkg', { cwd: app });
    const native = fs.realpathSync(path.join(app, 'node_modules', 'demo-pkg-linux-x64'));
    assert.deepEqual(found.files.map((f) => f.name), ['demo_runpath.node', 'libdemo_codec.so.1.2.3', 'libdemo_core.so']);
    assert.deepEqual(reasons(found), {
      'demo_runpath.node': '.node of demo-pkg-linux-x64',
      'libdemo_codec.so.1.2.3': 'needed by demo_runpath.node, found in its RUNPATH $ORIGIN/../../lib',
      'libdemo_core.so': 'needed by demo_runpath.node, found beside it (not in its RUNPATH $ORIGIN/../../lib, not on this system)',
    });
    const codec = found.files[1];
    assert.equal(codec?.foundAt, path.join(native, 'lib', 'libdemo_codec.so.1'));
    assert.equal(codec?.path, path.join(native, 'lib', 'libdemo_codec.so.1.2.3'));
    assert.equal(codec?.soname, 'libdemo_codec.so.1');
    assert.deepEqual(found.files[2]?.neededBy, ['demo_runpath.node', 'libdemo_codec.so.1.2.3']);
    assert.equal(found.packages[1]?.via, 'optional dependency of demo-pkg');
    assert.deepEqual(found.system.map((s) => s.name), ['libc.so.6']);
    assert.deepEqual(found.missing, []);
    const pkg = fs.realpathSync(path.join(app, 'node_modules', 'demo-pkg'));
    assert.deepEqual(found.passedOver, [
      { path: path.join(pkg, 'prebuilds', 'darwin-arm64', 'demo.node'), reason: 'a Mach-O file (macOS), not ELF' },
      { path: path.join(pkg, 'prebuilds', 'linux-arm64', 'demo.node'), reason: 'for linux-arm64-gnu' },
      { path: path.join(pkg, 'prebuilds', 'linux-x64-musl', 'demo.node'), reason: 'for linux-x64-musl' },
    ]);
  });

  it('the packed bundle loads the addon, and the addon calls into the packed libraries', () => {
    const app = fakeApp();
    const out = path.join(tempDir(), 'bundle');
    const r = packPackage('demo-pkg', { name: 'demo-pkg', out, cwd: app });
    assert.deepEqual(r.variant.order, ['libdemo_core.so', 'libdemo_codec.so.1.2.3', 'demo_runpath.node']);
    assert.deepEqual(r.variant.external, ['libc.so.6']);
    assertClosed(out, hostTarget());
    const child = loadInChild(out, 'demo_runpath.node', '(a) => [a.add(2, 3), a.version()]');
    assert.deepEqual(child.result, [5, 'demo-core 1.0.0']);
    assert.deepEqual(child.mapped.map((p) => path.basename(p)).sort(), ['demo_runpath.node', 'libdemo_codec.so.1.2.3', 'libdemo_core.so']);
  });

  it('--target linux-arm64-gnu takes the arm64 addon and its library, and leaves the rest to that system unchecked', () => {
    const app = fakeApp();
    const found = packageNativeFiles('demo-pkg', { cwd: app, target: 'linux-arm64-gnu' });
    const arm = path.join(fs.realpathSync(path.join(app, 'node_modules', 'demo-pkg')), 'prebuilds', 'linux-arm64');
    assert.deepEqual(found.files.map((f) => [f.name, f.path, f.reason]), [
      ['demo.node', path.join(arm, 'demo.node'), '.node of demo-pkg'],
      ['libdemo_core.so', path.join(arm, 'libdemo_core.so'), 'needed by demo.node, found in its RUNPATH $ORIGIN'],
    ]);
    assert.deepEqual(found.system, [{ name: 'libc.so.6', path: null, neededBy: ['demo.node', 'libdemo_core.so'] }]);
    const out = path.join(tempDir(), 'bundle');
    const r = packPackage('demo-pkg', { name: 'demo-pkg', out, cwd: app, target: 'linux-arm64-gnu' });
    assert.equal(r.target, 'linux-arm64-gnu');
    assert.deepEqual(r.variant.files.map((f) => [f.name, f.machine]), [['demo.node', 'aarch64'], ['libdemo_core.so', 'aarch64']]);
  });

  it('a library that neither the package nor the system has is a warning by default, and E_MISSING_DEP with strict, before anything is written', () => {
    const app = fakeApp({ withCore: false });
    const out = path.join(tempDir(), 'bundle');
    const r = packPackage('demo-pkg', { name: 'demo-pkg', out, cwd: app });
    assert.deepEqual(r.missing, [
      { file: 'demo_runpath.node', dependency: 'libdemo_core.so' },
      { file: 'libdemo_codec.so.1.2.3', dependency: 'libdemo_core.so' },
    ]);
    assert.match(r.found.missing[0]?.reason ?? '', /^not in its RUNPATH \$ORIGIN\/\.\.\/\.\.\/lib, not on this system, not beside it in \//);
    assert.ok(fs.existsSync(path.join(out, MANIFEST_FILE)));
    const strictOut = path.join(tempDir(), 'strict');
    const e = expectCode('E_MISSING_DEP', () => packPackage('demo-pkg', { name: 'demo-pkg', out: strictOut, cwd: app, strict: true }));
    assert.equal(e.file, 'demo_runpath.node');
    assert.equal(e.dependency, 'libdemo_core.so');
    assert.match(e.message, /Nothing was written\./);
    assert.equal(fs.existsSync(strictOut), false);
    // A file marked optional may miss what it needs.
    const optionalOut = path.join(tempDir(), 'optional');
    const o = packPackage('demo-pkg', { name: 'demo-pkg', out: optionalOut, cwd: app, strict: true, optional: ['demo_runpath.node', 'libdemo_codec.so.1.2.3'] });
    assert.deepEqual(o.missing, []);
  });

  it('an RPATH is searched for the libraries that those found through it need (glibc), a soname that differs from the need is refused, and a library without soname is packed under the name asked for', () => {
    const dir = tempDir('dlbundle-rpath-pkg-');
    packageJson(dir, { name: 'rpath-pkg', version: '2.0.0' });
    const elf = (spec: { soname?: string; needed: string[]; rpath?: string; runpath?: string }): Buffer => buildElf({ class: 64, endian: 'little', ...spec }).bytes;
    write(path.join(dir, 'x.node'), elf({ soname: 'x.node', needed: ['liba.so', 'libwrong.so', 'libplain.so', 'libc.so.6'], rpath: '$ORIGIN/lib' }));
    // liba.so's own RPATH leads nowhere; x.node's, searched after it, finds libb.so.
    write(path.join(dir, 'lib', 'liba.so'), elf({ soname: 'liba.so', needed: ['libb.so'], rpath: '$ORIGIN/nowhere' }));
    write(path.join(dir, 'lib', 'libb.so'), elf({ soname: 'libb.so', needed: ['libc.so.6'] }));
    write(path.join(dir, 'lib', 'libwrong.so'), elf({ soname: 'libwrong.so.3', needed: [] }));
    write(path.join(dir, 'lib', 'libplain-1.0.so'), elf({ needed: [] }));
    fs.symlinkSync('libplain-1.0.so', path.join(dir, 'lib', 'libplain.so'));
    const found = packageNativeFiles(dir);
    assert.deepEqual(found.files.map((f) => [f.name, path.basename(f.path), f.reason]), [
      ['x.node', 'x.node', '.node of rpath-pkg'],
      ['liba.so', 'liba.so', 'needed by x.node, found in its RPATH $ORIGIN/lib'],
      ['libplain.so', 'libplain-1.0.so', 'needed by x.node, found in its RPATH $ORIGIN/lib'],
      ['libb.so', 'libb.so', 'needed by liba.so, found in the RPATH of x.node, $ORIGIN/lib'],
    ]);
    assert.deepEqual(found.missing.map((m) => [m.file, m.dependency]), [['x.node', 'libwrong.so']]);
    assert.match(found.missing[0]?.reason ?? '', /its soname is libwrong\.so\.3, and a bundle matches a library by its soname/);
    // The name in the bundle is what the need names; the file read is the link's target.
    const out = path.join(tempDir(), 'bundle');
    const r = packPackage(dir, { name: 'rpath-pkg', out });
    assert.ok(r.variant.files.some((f) => f.name === 'libplain.so' && f.soname === null));
    assert.ok(fs.lstatSync(path.join(out, hostTarget(), 'libplain.so')).isFile());
  });

  it('a package name is resolved from the current directory as require would, from a subdirectory too', () => {
    const app = fakeApp();
    const sub = path.join(app, 'src', 'deep');
    fs.mkdirSync(sub, { recursive: true });
    assert.equal(packageNativeFiles('demo-pkg', { cwd: sub }).package.dir, fs.realpathSync(path.join(app, 'node_modules', 'demo-pkg')));
    // A directory is taken as a package directory, relative to cwd.
    assert.equal(packageNativeFiles('./node_modules/demo-pkg', { cwd: app }).package.name, 'demo-pkg');
  });

  it('not a package, a package not installed, no .node file, none for the target, a target that is not ELF: each refused with its code', () => {
    const app = fakeApp();
    const empty = tempDir('dlbundle-not-a-package-');
    assert.match(expectCode('E_NOT_PACKAGE', () => packageNativeFiles(empty)).message, /has no package\.json: it is not an npm package\./);
    assert.match(expectCode('E_NOT_PACKAGE', () => packageNativeFiles('./nowhere', { cwd: empty })).message, /"\.\/nowhere" is not there/);
    assert.match(expectCode('E_NOT_PACKAGE', () => packageNativeFiles('demo-pkg', { cwd: empty })).message, /^No package "demo-pkg" is installed where /);
    const plain = path.join(app, 'node_modules', 'plain-js');
    packageJson(plain, { name: 'plain-js', version: '1.0.0' });
    write(path.join(plain, 'index.js'), 'module.exports = 1;\n');
    const none = expectCode('E_NO_ADDON', () => packageNativeFiles('plain-js', { cwd: app }));
    assert.match(none.message, /^plain-js \(.*\) carries no \.node file\.\npack --package packs the native addons of a package; to pack shared objects, name them/);
    const other = expectCode('E_NO_ADDON', () => packageNativeFiles('demo-pkg', { cwd: app, target: 'linux-riscv64-gnu' }));
    assert.match(other.message, /carry no \.node file for linux-riscv64-gnu; demo-pkg\/prebuilds\/darwin-arm64\/demo\.node \(a Mach-O file \(macOS\), not ELF\), demo-pkg\/prebuilds\/linux-arm64\/demo\.node \(for linux-arm64-gnu\)/);
    assert.match(other.message, /npm install --os=linux --cpu=riscv64 --libc=glibc/);
    assert.match(expectCode('E_USAGE', () => packageNativeFiles('demo-pkg', { cwd: app, target: 'darwin-arm64' })).message, /does not use ELF shared objects/);
  });

  it('the CLI prints what it took and why, --json gives the same as data, and refuses files with --package', () => {
    const app = fakeApp();
    const out = path.join(tempDir(), 'bundle');
    const r = cli(app, 'pack', '--package', 'demo-pkg', '--name', 'demo-pkg', '--out', out);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stderr, '');
    const lines = r.stdout.split('\n');
    assert.match(lines[0] ?? '', /^package demo-pkg 1\.0\.0 \(.*\/node_modules\/demo-pkg\), for linux-x64-gnu$/);
    assert.ok(lines.includes('took 3 files:'), r.stdout);
    assert.ok(lines.includes('  demo_runpath.node       .node of demo-pkg-linux-x64: demo-pkg-linux-x64/build/Release/demo_runpath.node'), r.stdout);
    assert.ok(lines.includes('  libdemo_codec.so.1.2.3  needed by demo_runpath.node, found in its RUNPATH $ORIGIN/../../lib: demo-pkg-linux-x64/lib/libdemo_codec.so.1 → demo-pkg-linux-x64/lib/libdemo_codec.so.1.2.3'), r.stdout);
    assert.ok(lines.includes('left to the system:'), r.stdout);
    assert.match(r.stdout, /^ {2}libc\.so\.6 {2}\/\S+\/libc\.so\.6 \(needed by libdemo_core\.so\)$/m);
    assert.match(r.stdout, /^packed 3 files as linux-x64-gnu into .* \(digest [0-9a-f]{16}\)\nload order: libdemo_core\.so → libdemo_codec\.so\.1\.2\.3 → demo_runpath\.node$/m);

    const j = cli(app, 'pack', '--package', 'demo-pkg', '--name', 'demo-pkg', '--out', out, '--json');
    assert.equal(j.status, 0, j.stderr);
    const report = JSON.parse(j.stdout) as { files: string[]; order: string[]; package: PackageNativeFiles };
    assert.deepEqual(report.files, ['demo_runpath.node', 'libdemo_codec.so.1.2.3', 'libdemo_core.so']);
    assert.deepEqual(report.package.files.map((f) => f.because.kind), ['addon', 'runpath', 'beside']);

    const missing = cli(fakeApp({ withCore: false }), 'pack', '--package', 'demo-pkg', '--name', 'demo-pkg', '--out', path.join(tempDir(), 'm'));
    assert.equal(missing.status, 0);
    assert.match(missing.stderr, /^dlbundle: warning: demo_runpath\.node needs libdemo_core\.so, which neither demo-pkg nor this system provides \(not in its RUNPATH .*\): install it here .*--strict refuses instead\.$/m);
    const strict = cli(fakeApp({ withCore: false }), 'pack', '--package', 'demo-pkg', '--name', 'demo-pkg', '--out', path.join(tempDir(), 's'), '--strict', '--json');
    assert.equal(strict.status, 1);
    assert.equal(strict.stdout, '');
    assert.equal((JSON.parse(strict.stderr) as { error: { code: string } }).error.code, 'E_MISSING_DEP');

    const both = cli(app, 'pack', 'x.so', '--package', 'demo-pkg', '--name', 'n', '--out', out);
    assert.equal(both.status, 2);
    assert.match(both.stderr, /^dlbundle: E_USAGE: pack takes files or --package, not both/);
    const strictAlone = cli(app, 'pack', 'x.so', '--strict', '--name', 'n', '--out', out);
    assert.equal(strictAlone.status, 2);
    assert.match(strictAlone.stderr, /--strict goes with --package/);
    const notPackage = cli(app, 'pack', '--package', 'no-such-pkg', '--name', 'n', '--out', out);
    assert.equal(notPackage.status, 1);
    assert.match(notPackage.stderr, /^dlbundle: E_NOT_PACKAGE: No package "no-such-pkg" is installed/);
  });
});

describe('pack --package: koffi, a dependency of dlbundle installed by npm ci', () => {
  it('takes the glibc build of its platform package and passes over the musl one beside it; --target linux-x64-musl takes that one', () => {
    const gnu = packageNativeFiles('koffi', { cwd: REPO });
    const nodeModules = path.join(REPO, 'node_modules');
    assert.deepEqual(gnu.files.map((f) => [f.name, path.relative(nodeModules, f.path), f.reason]), [['koffi.node', '@koromix/koffi-linux-x64/linux_x64/koffi.node', '.node of @koromix/koffi-linux-x64']]);
    assert.deepEqual(gnu.passedOver.map((p) => [path.relative(nodeModules, p.path), p.reason]), [['@koromix/koffi-linux-x64/musl_x64/koffi.node', 'for linux-x64-musl']]);
    const musl = packageNativeFiles('koffi', { cwd: REPO, target: 'linux-x64-musl' });
    assert.deepEqual(musl.files.map((f) => path.relative(nodeModules, f.path)), ['@koromix/koffi-linux-x64/musl_x64/koffi.node']);
    assert.ok(musl.system.every((s) => s.path === null));
  });
});

describe('pack --package: real packages from the npm registry (onnxruntime-node, sharp, duckdb)', function () {
  // npm install of about 380 MB on a cold cache.
  this.timeout(600_000);

  let apps: Readonly<Record<'onnxruntime-node' | 'sharp' | 'duckdb', NpmApp>>;

  before(function () {
    const mod = require(path.join(REPO, 'scripts', 'fetch-npm-apps.js')) as FetchModule;
    // Throws (and so fails every test here) when the registry cannot be reached or a package does not work as installed.
    apps = mod.fetchNpmApps().apps;
  });

  it('a second fetch re-uses the stamped apps without asking the registry', () => {
    const mod = require(path.join(REPO, 'scripts', 'fetch-npm-apps.js')) as FetchModule;
    const again = mod.fetchNpmApps();
    assert.deepEqual(again.fetched, []);
    assert.deepEqual(Object.values(again.apps).map((a) => a.dir), Object.values(apps).map((a) => a.dir));
  });

  it('an unreachable registry is said so by name, and leaves no app directory behind', () => {
    const root = tempDir('dlbundle-npm-apps-');
    // A closed port on the loopback address, a cache of its own, and retries that do not wait.
    const env: NodeJS.ProcessEnv = { ...process.env, npm_config_registry: 'http://127.0.0.1:9/', npm_config_cache: path.join(root, 'npm-cache'), npm_config_fetch_retry_mintimeout: '10', npm_config_fetch_retry_maxtimeout: '20' };
    const script = `
      const { fetchNpmApp, FetchError } = require(${JSON.stringify(path.join(REPO, 'scripts', 'fetch-npm-apps.js'))});
      try { fetchNpmApp('sharp', { root: ${JSON.stringify(path.join(root, 'apps'))} }); } catch (e) { process.stdout.write(JSON.stringify({ fetchError: e instanceof FetchError, message: e.message })); }
    `;
    const r = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8', env, timeout: 120_000 });
    assert.equal(r.status, 0, r.stderr);
    const { fetchError, message } = JSON.parse(r.stdout) as { fetchError: boolean; message: string };
    assert.ok(fetchError);
    assert.match(message, /^The npm registry \(http:\/\/127\.0\.0\.1:9\/\) could not be reached \(ECONNREFUSED\) while installing sharp@0\.35\.5\./);
    assert.deepEqual(fs.readdirSync(path.join(root, 'apps')), []);
  });

  it('each package works as installed, through its own API in plain node', () => {
    assert.deepEqual((apps.sharp.check as { width: number; height: number; firstPixel: number[] }), { width: 5, height: 3, channels: 3, firstPixel: [255, 0, 0], libvips: '8.18.7' });
    assert.deepEqual(apps.duckdb.check, { rows: [[42]] });
    assert.ok((apps['onnxruntime-node'].check as { backends: string[] }).backends.includes('cpu'));
    for (const app of Object.values(apps)) assert.ok(app.dir.startsWith(path.join(REPO, '.cache', 'npm-apps') + path.sep), app.dir);
  });

  const cases = [
    {
      app: 'onnxruntime-node',
      spec: 'onnxruntime-node',
      files: ['onnxruntime_binding.node', 'libonnxruntime.so.1'],
      from: ['onnxruntime-node/bin/napi-v6/linux/x64/onnxruntime_binding.node', 'onnxruntime-node/bin/napi-v6/linux/x64/libonnxruntime.so.1'],
      reasons: ['.node of onnxruntime-node', 'needed by onnxruntime_binding.node, found in its RUNPATH $ORIGIN/'],
      order: ['libonnxruntime.so.1', 'onnxruntime_binding.node'],
      passedOver: 4,
    },
    {
      app: 'sharp',
      spec: 'sharp',
      files: ['sharp-linux-x64-0.35.5.node', 'libvips-cpp.so.8.18.7'],
      from: ['@img/sharp-linux-x64/lib/sharp-linux-x64-0.35.5.node', '@img/sharp-libvips-linux-x64/lib/libvips-cpp.so.8.18.7'],
      reasons: ['.node of @img/sharp-linux-x64', 'needed by sharp-linux-x64-0.35.5.node, found in its RPATH $ORIGIN/../../sharp-libvips-linux-x64/lib'],
      order: ['libvips-cpp.so.8.18.7', 'sharp-linux-x64-0.35.5.node'],
      passedOver: 0,
    },
    {
      app: 'duckdb',
      spec: '@duckdb/node-api',
      files: ['duckdb.node', 'libduckdb.so'],
      from: ['@duckdb/node-bindings-linux-x64/duckdb.node', '@duckdb/node-bindings-linux-x64/libduckdb.so'],
      reasons: ['.node of @duckdb/node-bindings-linux-x64', 'needed by duckdb.node, found in its RUNPATH $ORIGIN'],
      order: ['libduckdb.so', 'duckdb.node'],
      passedOver: 0,
    },
  ] as const;

  for (const c of cases) {
    it(`${c.spec}: packs exactly ${c.files.join(' and ')}, says why, leaves only system libraries outside, and the addon loads from the bundle`, () => {
      const app = apps[c.app];
      const out = path.join(tempDir(), 'bundle');
      const r = cli(app.dir, 'pack', '--package', c.spec, '--name', c.app, '--out', out, '--json');
      assert.equal(r.status, 0, r.stderr);
      assert.equal(r.stderr, '');
      const report = JSON.parse(r.stdout) as { files: string[]; order: string[]; external: string[]; missing: unknown[]; package: PackageNativeFiles };
      const found = report.package;
      assert.deepEqual(found.files.map((f) => f.name), [...c.files]);
      assert.deepEqual(found.files.map((f) => f.reason), [...c.reasons]);
      const nodeModules = path.join(fs.realpathSync(app.dir), 'node_modules');
      assert.deepEqual(found.files.map((f) => path.relative(nodeModules, f.path)), [...c.from]);
      assert.deepEqual(report.order, [...c.order]);
      assert.deepEqual(report.missing, []);
      assert.equal(found.passedOver.length, c.passedOver);
      // Everything outside the bundle is a system library, found here.
      for (const s of found.system) assert.ok(s.path !== null && fs.existsSync(s.path), `${s.name}: ${String(s.path)}`);
      assert.deepEqual([...report.external].sort(), found.system.map((s) => s.name).sort());
      assertClosed(out, hostTarget());
      const child = loadInChild(out, c.files[0]);
      assert.ok((child.result as number) > 0, 'the addon exports something');
      assert.deepEqual(child.mapped.map((p) => path.basename(p)).sort(), [...c.files].sort());
    });
  }

  it('the text report of sharp names the platform package and the RPATH that found libvips', () => {
    const r = cli(apps.sharp.dir, 'pack', '--package', 'sharp', '--name', 'sharp', '--out', path.join(tempDir(), 'bundle'));
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /^ {2}@img\/sharp-linux-x64 0\.35\.5: optional dependency of sharp \(.*\/node_modules\/@img\/sharp-linux-x64\)$/m);
    assert.match(r.stdout, /^ {2}libvips-cpp\.so\.8\.18\.7 +needed by sharp-linux-x64-0\.35\.5\.node, found in its RPATH \$ORIGIN\/\.\.\/\.\.\/sharp-libvips-linux-x64\/lib: @img\/sharp-libvips-linux-x64\/lib\/libvips-cpp\.so\.8\.18\.7$/m);
    assert.match(r.stdout, /^ {2}libresolv\.so\.2 +\/\S+ \(needed by libvips-cpp\.so\.8\.18\.7\)$/m);
  });

  it('onnxruntime-node for linux-arm64-gnu: the arm64 addon and library it ships, the system left unchecked', () => {
    const out = path.join(tempDir(), 'bundle');
    const r = cli(apps['onnxruntime-node'].dir, 'pack', '--package', 'onnxruntime-node', '--name', 'ort', '--out', out, '--target', 'linux-arm64-gnu', '--json');
    assert.equal(r.status, 0, r.stderr);
    const report = JSON.parse(r.stdout) as { target: string; package: PackageNativeFiles };
    assert.equal(report.target, 'linux-arm64-gnu');
    const nodeModules = path.join(fs.realpathSync(apps['onnxruntime-node'].dir), 'node_modules');
    assert.deepEqual(report.package.files.map((f) => [f.name, path.relative(nodeModules, f.path)]), [
      ['onnxruntime_binding.node', 'onnxruntime-node/bin/napi-v6/linux/arm64/onnxruntime_binding.node'],
      ['libonnxruntime.so.1', 'onnxruntime-node/bin/napi-v6/linux/arm64/libonnxruntime.so.1'],
    ]);
    assert.ok(report.package.system.every((s) => s.path === null));
    assert.ok(report.package.system.some((s) => s.name === 'ld-linux-aarch64.so.1'));
    const manifest = JSON.parse(fs.readFileSync(path.join(out, MANIFEST_FILE), 'utf8')) as Manifest;
    assert.deepEqual(manifest.variants['linux-arm64-gnu']?.files.map((f) => [f.name, f.machine]), [['libonnxruntime.so.1', 'aarch64'], ['onnxruntime_binding.node', 'aarch64']]);
    assert.ok(report.package.passedOver.some((p) => p.path.endsWith('/linux/x64/onnxruntime_binding.node') && p.reason === 'for linux-x64-gnu'));
  });

  it('sharp for linux-arm64-gnu is refused: its arm64 platform package is not installed, and the error says how to install it', () => {
    const r = cli(apps.sharp.dir, 'pack', '--package', 'sharp', '--name', 'sharp', '--out', path.join(tempDir(), 'bundle'), '--target', 'linux-arm64-gnu');
    assert.equal(r.status, 1);
    assert.match(r.stderr, /^dlbundle: E_NO_ADDON: sharp \(.*\) and the \d+ installed packages it depends on carry no \.node file for linux-arm64-gnu; @img\/sharp-linux-x64\/lib\/sharp-linux-x64-0\.35\.5\.node \(for linux-x64-gnu\)\.\n/);
    assert.match(r.stderr, /npm install --os=linux --cpu=arm64 --libc=glibc/);
  });

  it('a package of the app with no .node file (onnxruntime-common) is E_NO_ADDON', () => {
    const r = cli(apps['onnxruntime-node'].dir, 'pack', '--package', 'onnxruntime-common', '--name', 'x', '--out', path.join(tempDir(), 'bundle'), '--json');
    assert.equal(r.status, 1);
    assert.equal((JSON.parse(r.stderr) as { error: { code: string } }).error.code, 'E_NO_ADDON');
  });
});

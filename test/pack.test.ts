import { strict as assert } from 'node:assert';
import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { xxh64 } from '../src/hash';
import { BUNDLE_NAME_MAX_BYTES, parseManifest, type Manifest } from '../src/manifest';
import { pack } from '../src/pack';
import { hostTarget } from '../src/variant';
import { DEMO_LIBS, expectCode, nativeFixture, REPO, tempDir } from './fixtures';

const CLI = path.join(REPO, 'dist', 'cli.js');

function cli(...args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8' });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

function readManifest(dir: string): Manifest {
  return parseManifest(fs.readFileSync(path.join(dir, 'dlbundle.json'), 'utf8'));
}

/** Every file under `dir` with its bytes' hash, to prove a refused pack changed nothing. */
function snapshot(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (d: string): void => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      else out[path.relative(dir, p)] = xxh64(fs.readFileSync(p));
    }
  };
  walk(dir);
  return out;
}

describe('dlbundle pack', () => {
  it('packs the demo libraries with dependencies ordered first and blobs copied byte for byte', () => {
    const out = tempDir();
    const r = cli('pack', ...DEMO_LIBS.map(nativeFixture), '--name', 'demo', '--out', out);
    assert.equal(r.status, 0, r.stderr);
    const m = readManifest(out);
    assert.equal(m.name, 'demo');
    assert.equal(hostTarget(), 'linux-x64-gnu');
    const v = m.variants['linux-x64-gnu'];
    assert.ok(v);
    const at = (n: string): number => v.order.indexOf(n);
    assert.ok(at('libdemo_core.so') < at('libdemo_codec.so.1.2.3'));
    assert.ok(at('libdemo_codec.so.1.2.3') < at('libdemo_app.so'));
    assert.ok(at('libdemo_core.so') < at('demo.node'));
    assert.deepEqual(v.external, ['libc.so.6', 'libdemo_gpu_runtime.so.1']);
    for (const f of v.files) {
      const blob = fs.readFileSync(path.join(out, 'linux-x64-gnu', f.name));
      assert.deepEqual(blob, fs.readFileSync(nativeFixture(f.name)));
      assert.equal(f.size, blob.length);
      assert.equal(f.xxh64, xxh64(blob));
      assert.equal(f.machine, 'x86_64');
    }
    const codec = v.files.find((f) => f.name === 'libdemo_codec.so.1.2.3');
    assert.equal(codec?.soname, 'libdemo_codec.so.1');
    assert.deepEqual(codec?.needed, ['libdemo_core.so']);
    assert.deepEqual(v.files.find((f) => f.name === 'demo.node')?.needed, ['libdemo_core.so']);
  });

  it('takes the shared objects of a directory and ignores other files and symlinks', () => {
    const src = tempDir();
    fs.copyFileSync(nativeFixture('libdemo_core.so'), path.join(src, 'libdemo_core.so'));
    fs.copyFileSync(nativeFixture('libdemo_codec.so.1.2.3'), path.join(src, 'libdemo_codec.so.1.2.3'));
    fs.symlinkSync('libdemo_codec.so.1.2.3', path.join(src, 'libdemo_codec.so.1'));
    fs.writeFileSync(path.join(src, 'README.txt'), 'not a library');
    const out = tempDir();
    const result = pack([src], { name: 'dirpack', out });
    assert.deepEqual(result.variant.order, ['libdemo_core.so', 'libdemo_codec.so.1.2.3']);
    assert.deepEqual(fs.readdirSync(path.join(out, 'linux-x64-gnu')).sort(), ['libdemo_codec.so.1.2.3', 'libdemo_core.so']);
  });

  it('adds a second target beside the first and replaces a target packed again', () => {
    const out = tempDir();
    pack([nativeFixture('libdemo_core.so'), nativeFixture('libdemo_codec.so.1.2.3')], { name: 'demo', out });
    const musl = pack([nativeFixture('libdemo_core.so')], { name: 'demo', out, target: 'linux-x64-musl' });
    assert.deepEqual(Object.keys(musl.manifest.variants).sort(), ['linux-x64-gnu', 'linux-x64-musl']);
    pack([nativeFixture('libdemo_plugin.so')], { name: 'demo', out });
    const m = readManifest(out);
    assert.deepEqual(m.variants['linux-x64-gnu']?.order, ['libdemo_plugin.so']);
    assert.deepEqual(fs.readdirSync(path.join(out, 'linux-x64-gnu')), ['libdemo_plugin.so']);
    assert.deepEqual(m.variants['linux-x64-musl']?.order, ['libdemo_core.so']);
    assert.deepEqual(fs.readdirSync(out).sort(), ['dlbundle.json', 'linux-x64-gnu', 'linux-x64-musl'], 'no staging leftovers');
  });

  describe('refuses bad input and leaves the existing bundle as it was', () => {
    let out: string;
    let before: Record<string, string>;
    beforeEach(() => {
      out = tempDir();
      pack([nativeFixture('libdemo_core.so')], { name: 'demo', out });
      before = snapshot(out);
    });
    afterEach(() => assert.deepEqual(snapshot(out), before, 'the bundle directory changed'));

    it('a file that is not ELF: E_NOT_ELF', () => {
      const txt = path.join(tempDir(), 'libnotes.so');
      fs.writeFileSync(txt, 'INPUT(-lc)\n');
      const e = expectCode('E_NOT_ELF', () => pack([nativeFixture('libdemo_codec.so.1.2.3'), txt], { name: 'demo', out }));
      assert.equal(e.file, txt);
    });

    it('a library for another machine than the target: E_WRONG_ARCH', () => {
      const e = expectCode('E_WRONG_ARCH', () => pack([nativeFixture('libdemo_plugin.so')], { name: 'demo', out, target: 'linux-arm64-gnu' }));
      assert.match(e.message, /x86_64.*aarch64/);
    });

    it('two files with one name: E_DUPLICATE_NAME', () => {
      const copy = path.join(tempDir(), 'libdemo_core.so');
      fs.copyFileSync(nativeFixture('libdemo_core.so'), copy);
      const e = expectCode('E_DUPLICATE_NAME', () => pack([nativeFixture('libdemo_core.so'), copy], { name: 'demo', out }));
      assert.match(e.message, /both be packed as "libdemo_core\.so"/);
    });

    it('an object file that is not a shared object: E_NOT_SHARED_OBJECT', () => {
      const dir = tempDir();
      fs.writeFileSync(path.join(dir, 'x.c'), 'int x(void) { return 1; }\n');
      execFileSync('gcc', ['-c', '-o', path.join(dir, 'libx.so'), path.join(dir, 'x.c')]);
      expectCode('E_NOT_SHARED_OBJECT', () => pack([path.join(dir, 'libx.so')], { name: 'demo', out }));
    });

    it('two files with one soname: E_DUPLICATE_SONAME', () => {
      const renamed = path.join(tempDir(), 'libdemo_core_copy.so');
      fs.copyFileSync(nativeFixture('libdemo_core.so'), renamed);
      expectCode('E_DUPLICATE_SONAME', () => pack([nativeFixture('libdemo_core.so'), renamed], { name: 'demo', out }));
    });

    it('an unknown target or a bundle of another name: E_USAGE', () => {
      expectCode('E_USAGE', () => pack([nativeFixture('libdemo_core.so')], { name: 'demo', out, target: 'linux-vax-gnu' }));
      expectCode('E_USAGE', () => pack([nativeFixture('libdemo_core.so')], { name: 'other', out }));
      expectCode('E_USAGE', () => pack([nativeFixture('libdemo_core.so')], { name: '../demo', out }));
      // One byte too long for the cache's staging directory name: refused before anything is written.
      const long = expectCode('E_USAGE', () => pack([nativeFixture('libdemo_core.so')], { name: 'n'.repeat(BUNDLE_NAME_MAX_BYTES + 1), out: path.join(out, 'long') }));
      assert.match(long.message, new RegExp(`more than the ${BUNDLE_NAME_MAX_BYTES} allowed`));
      assert.equal(fs.existsSync(path.join(out, 'long')), false);
    });

    it('a missing input: E_IO', () => {
      expectCode('E_IO', () => pack([path.join(out, 'nope.so')], { name: 'demo', out }));
    });
  });

  it('reports refusals on the command line with the code and exit status 1', () => {
    const txt = path.join(tempDir(), 'libnotes.so');
    fs.writeFileSync(txt, 'not elf');
    const r = cli('pack', txt, '--name', 'demo', '--out', tempDir());
    assert.equal(r.status, 1);
    assert.match(r.stderr, /^dlbundle: E_NOT_ELF: ".*libnotes\.so" is not an ELF, PE or Mach-O file/);
    const u = cli('pack', '--name', 'demo');
    assert.equal(u.status, 2);
    assert.match(u.stderr, /E_USAGE/);
    assert.equal(cli('frobnicate').status, 2);
    assert.equal(cli('inspect', '--bogus').status, 2);
  });
});

describe('dlbundle inspect', () => {
  it('prints a bundle with its load order and external dependencies', () => {
    const out = tempDir();
    pack(DEMO_LIBS.map(nativeFixture), { name: 'demo', out });
    const r = cli('inspect', out);
    assert.equal(r.status, 0, r.stderr);
    const core = r.stdout.indexOf('libdemo_core.so  (');
    const codec = r.stdout.indexOf('libdemo_codec.so.1.2.3  (');
    const app = r.stdout.indexOf('libdemo_app.so  (');
    assert.ok(core > 0 && core < codec && codec < app, r.stdout);
    assert.match(r.stdout, /external: libc\.so\.6, libdemo_gpu_runtime\.so\.1/);
    assert.match(r.stdout, new RegExp(`digest ${readManifest(out).variants['linux-x64-gnu']?.digest}`));
    const json = JSON.parse(cli('inspect', out, '--json').stdout) as Manifest;
    assert.deepEqual(json, readManifest(out));
  });

  it('prints each file\'s ELF facts, in argument order with --json', () => {
    const files = [nativeFixture('libdemo_codec.so.1.2.3'), nativeFixture('libdemo_core.so')];
    const r = cli('inspect', '--json', ...files);
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(JSON.parse(r.stdout), [
      { file: files[0], format: 'elf', class: 64, machine: 'x86_64', soname: 'libdemo_codec.so.1', needed: ['libdemo_core.so'], runpath: [], rpath: [], interp: null, requiresVersions: {} },
      { file: files[1], format: 'elf', class: 64, machine: 'x86_64', soname: 'libdemo_core.so', needed: ['libc.so.6'], runpath: [], rpath: [], interp: null, requiresVersions: { GLIBC: '2.2.5' } },
    ]);
    const text = cli('inspect', files[0] as string);
    assert.match(text.stdout, /soname:  libdemo_codec\.so\.1/);
  });

  it('refuses a directory without a manifest and a non-ELF file with their codes', () => {
    const r = cli('inspect', tempDir());
    assert.equal(r.status, 2);
    assert.match(r.stderr, /E_USAGE: .* is not a bundle directory/);
    const txt = path.join(tempDir(), 'x.so');
    fs.writeFileSync(txt, '');
    assert.match(cli('inspect', txt).stderr, /E_NOT_ELF/);
  });
});

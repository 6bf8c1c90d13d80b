/**
 * What `pack` refuses or warns about before a bundle ships: executables
 * (a position-independent one is ET_DYN too), CPU features no CPU has,
 * targets that are not ELF, and a packed file that needs a library neither
 * packed nor on this system — the README's old `*.so` recipe left out
 * `libdemo_codec.so.1.2.3`, which `libdemo_app.so` needs.
 */
import { strict as assert } from 'node:assert';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { readElfFile } from '../src/formats/elf-file';
import { pack } from '../src/pack';
import { expectCode, nativeFixture, REPO, tempDir } from './fixtures';

const CLI = path.join(REPO, 'dist', 'cli.js');

describe('pack: checks before a bundle ships', () => {
  it('refuses a position-independent executable (ET_DYN with a program interpreter and no soname) with E_NOT_SHARED_OBJECT', () => {
    const exe = '/usr/bin/ls';
    const elf = readElfFile(exe);
    assert.equal(elf.type, 'dyn', 'this test needs a PIE executable');
    assert.notEqual(elf.interp, null);
    const out = tempDir();
    const e = expectCode('E_NOT_SHARED_OBJECT', () => pack([exe], { name: 'ls', out }));
    assert.match(e.message, /is an executable \(position-independent: it names the program interpreter .* and has no soname\)/);
    assert.deepEqual(fs.readdirSync(out), [], 'nothing written');
  });

  it('packs a library that also names a program interpreter (libc.so.6 runs as a program too)', () => {
    const libc = ['/lib/x86_64-linux-gnu/libc.so.6', '/usr/lib/x86_64-linux-gnu/libc.so.6'].find((p) => fs.existsSync(p)) as string;
    const elf = readElfFile(libc);
    assert.ok(elf.interp !== null && elf.soname === 'libc.so.6');
    assert.equal(pack([libc], { name: 'libc', out: tempDir() }).variant.files[0]?.soname, 'libc.so.6');
  });

  it('refuses a CPU feature that is not one, naming the nearest; takes real ones', () => {
    const e = expectCode('E_USAGE', () => pack([nativeFixture('libdemo_core.so')], { name: 'demo', out: tempDir(), requires: ['avx9'] }));
    assert.match(e.message, /"avx9" is not a CPU feature of linux-x64-gnu's architecture; did you mean "avx2?"\?/);
    assert.equal(pack([nativeFixture('libdemo_core.so')], { name: 'demo', out: tempDir(), requires: ['fma', 'avx2'] }).target, 'linux-x64-gnu+avx2+fma');
  });

  it('refuses an unknown target with the nearest key and every target; an ELF file for a macOS or Windows target is E_WRONG_ARCH naming both formats', () => {
    const e = expectCode('E_USAGE', () => pack([nativeFixture('libdemo_core.so')], { name: 'demo', out: tempDir(), target: 'linux-x64-gn' }));
    assert.match(e.message, /Did you mean "linux-x64-gnu"\?/);
    assert.match(e.message, /Use one of: linux-x64-gnu, .*darwin-arm64.*win32-x64/);
    for (const [target, format] of [['darwin-arm64', 'a Mach-O file'], ['win32-x64', 'a PE file']] as const) {
      const out = tempDir();
      const w = expectCode('E_WRONG_ARCH', () => pack([nativeFixture('libdemo_core.so')], { name: 'demo', out, target }));
      assert.match(w.message, new RegExp(`libdemo_core\\.so" is an ELF file \\(Linux, FreeBSD\\), but target "${target}" loads ${format}`));
      assert.deepEqual(fs.readdirSync(out), [], 'nothing written');
    }
  });

  it('reports a dependency that is neither packed nor on this system, unless the file is optional', () => {
    const core = nativeFixture('libdemo_core.so');
    const app = nativeFixture('libdemo_app.so');
    const codec = nativeFixture('libdemo_codec.so.1.2.3');
    const accel = nativeFixture('libdemo_accel.so');
    assert.deepEqual(pack([core, app], { name: 'demo', out: tempDir() }).missing, [{ file: 'libdemo_app.so', dependency: 'libdemo_codec.so.1' }]);
    assert.deepEqual(pack([core, codec, app], { name: 'demo', out: tempDir() }).missing, []);
    assert.deepEqual(pack([core, accel], { name: 'demo', out: tempDir() }).missing, [{ file: 'libdemo_accel.so', dependency: 'libdemo_gpu_runtime.so.1' }]);
    assert.deepEqual(pack([core, accel], { name: 'demo', out: tempDir(), optional: ['libdemo_accel.so'] }).missing, []);
    const r = spawnSync(process.execPath, [CLI, 'pack', core, app, '--name', 'demo', '--out', tempDir()], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stderr, new RegExp(`^dlbundle: warning: libdemo_app\\.so needs libdemo_codec\\.so\\.1, which is neither packed nor on this system: pack ${codec.replace(/\./g, '\\.')} too, or mark libdemo_app\\.so --optional`));
  });
});

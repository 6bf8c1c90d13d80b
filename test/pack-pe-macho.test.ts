/**
 * `pack --target win32-*|darwin-*` with real Windows and macOS libraries from
 * npm (scripts/fetch-npm-binaries.js): sharp's libvips chain and its `.node`,
 * node-llama-cpp's ggml → llama chains, koffi's builds; universal files
 * split into one variant per architecture; load order from imports and
 * install names; system libraries recorded as external; the wrong format or
 * machine refused. Hand-built files (test/pe-builder.ts, macho-builder.ts)
 * show what the real ones do not: a DLL imported in another case, weak and
 * re-exported dylibs, install names that collide.
 */
import { strict as assert } from 'node:assert';
import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseManifest, sonameLink, type ManifestFile, type ManifestVariant } from '../src/manifest';
import { pack } from '../src/pack';
import { expectCode, hashFile, nativeFixture, REPO, tempDir } from './fixtures';
import { llvmTool } from './llvm-tools';
import { buildFat, buildMachO, CPU_TYPE_ARM64, CPU_TYPE_X86_64, LC_LOAD_DYLIB, LC_LOAD_WEAK_DYLIB, LC_REEXPORT_DYLIB, MH_BUNDLE, MH_DYLIB, MH_EXECUTE } from './macho-builder';
import { buildPe, IMAGE_FILE_MACHINE_AMD64 } from './pe-builder';

// eslint-disable-next-line @typescript-eslint/no-require-imports
const { fetchNpmBinaries } = require('../scripts/fetch-npm-binaries.js') as { fetchNpmBinaries(): { packages: Record<string, { dir: string }> } };

const CLI = path.join(REPO, 'dist', 'cli.js');

function readManifest(out: string): ReturnType<typeof parseManifest> {
  const file = path.join(out, 'dlbundle.json');
  return parseManifest(fs.readFileSync(file, 'utf8'), file);
}

function file(v: ManifestVariant, name: string): ManifestFile {
  const f = v.files.find((x) => x.name === name);
  assert.ok(f !== undefined, `${name} is not in the variant: ${v.files.map((x) => x.name).join(', ')}`);
  return f;
}

/** Asserts that every file of `names` comes after each of its `deps` in the order. */
function assertBefore(order: readonly string[], first: string, then: string): void {
  assert.ok(order.indexOf(first) >= 0 && order.indexOf(first) < order.indexOf(then), `${first} before ${then} in ${order.join(', ')}`);
}

function write(dir: string, name: string, bytes: Buffer): string {
  const p = path.join(dir, name);
  fs.writeFileSync(p, bytes);
  return p;
}

describe('pack --target win32-* and darwin-*: real Windows and macOS libraries', function () {
  this.timeout(120_000);
  let pkg: (name: string) => string;

  before(function () {
    this.timeout(900_000);
    const { packages } = fetchNpmBinaries();
    pkg = (name) => {
      const p = packages[name];
      assert.ok(p !== undefined, `${name} was not fetched`);
      return p.dir;
    };
  });

  it("a directory of several platforms' files gives each target its own kind: .so for Linux, .dll for Windows, .dylib for macOS", () => {
    const dir = tempDir();
    fs.copyFileSync(nativeFixture('libdemo_core.so'), path.join(dir, 'libdemo_core.so'));
    write(dir, 'demo_core.dll', buildPe({ class: 64, machine: IMAGE_FILE_MACHINE_AMD64, exportName: 'demo_core.dll', imports: ['KERNEL32.dll'] }).bytes);
    write(dir, 'libdemo_core.dylib', buildMachO({ class: 64, endian: 'little', cputype: CPU_TYPE_X86_64, cpusubtype: 3, filetype: MH_DYLIB, commands: [{ kind: 'id', name: '@rpath/libdemo_core.dylib' }] }).bytes);
    const out = tempDir();
    for (const [target, name] of [['linux-x64-gnu', 'libdemo_core.so'], ['win32-x64', 'demo_core.dll'], ['darwin-x64', 'libdemo_core.dylib']] as const) {
      pack([dir], { name: 'demo', out, target });
      assert.deepEqual(readManifest(out).variants[target]?.order, [name]);
    }
  });

  describe('Windows (PE)', () => {
    it("sharp's chain: libvips-42.dll, then libvips-cpp-8.18.7.dll, then sharp's .node; the system DLLs, the API sets and node.exe external; blobs byte for byte", () => {
      const lib = path.join(pkg('@img/sharp-win32-x64'), 'lib');
      const out = tempDir();
      const r = pack([lib], { name: 'sharp', out, target: 'win32-x64' });
      assert.equal(r.target, 'win32-x64');
      const v = readManifest(out).variants['win32-x64'] as ManifestVariant;
      assert.deepEqual(v.order, ['libvips-42.dll', 'libvips-cpp-8.18.7.dll', 'sharp-win32-x64-0.35.5.node']);
      for (const f of v.files) {
        assert.equal(f.format, 'pe');
        assert.equal(f.machine, 'x86_64');
        assert.equal(f.soname, f.name, 'the export name of each is its file name');
        assert.equal(hashFile(path.join(out, 'win32-x64', f.name)), hashFile(path.join(lib, f.name)));
      }
      const node = file(v, 'sharp-win32-x64-0.35.5.node');
      assert.deepEqual(node.needed, ['KERNEL32.dll', 'libvips-42.dll', 'libvips-cpp-8.18.7.dll', 'node.exe']);
      assert.deepEqual(node.weakNeeded, ['node.exe'], 'the delay-loaded node.exe is not needed at load time');
      assert.ok(v.external.includes('KERNEL32.dll') && v.external.includes('node.exe'));
      assert.ok(v.external.some((e) => e.startsWith('api-ms-win-crt-')), v.external.join(', '));
      assert.ok(!v.external.some((e) => /libvips/i.test(e)), 'the bundled DLLs are not external');
      assert.deepEqual(r.missing, [], 'every external DLL is one Windows provides');
    });

    it("node-llama-cpp's ggml → llama chain: ggml-base.dll first, every CPU backend after it, llama-addon.node last; MSVCP140 / VCRUNTIME140 external", () => {
      const dir = path.join(pkg('@node-llama-cpp/win-x64'), 'bins', 'win-x64');
      const out = tempDir();
      const r = pack([dir], { name: 'llama', out, target: 'win32-x64' });
      const v = readManifest(out).variants['win32-x64'] as ManifestVariant;
      assert.ok(v.files.length >= 18, `${v.files.length} files`);
      assert.equal(v.order[0], 'ggml-base.dll');
      assertBefore(v.order, 'ggml-base.dll', 'ggml.v0.4.0.dll');
      assertBefore(v.order, 'ggml.v0.4.0.dll', 'llama.v0.4.0.dll');
      assertBefore(v.order, 'llama.v0.4.0.dll', 'llama-common.dll');
      assertBefore(v.order, 'llama-common.dll', 'llama-addon.node');
      for (const cpu of v.files.filter((f) => f.name.startsWith('ggml-cpu-'))) assertBefore(v.order, 'ggml-base.dll', cpu.name);
      for (const e of ['MSVCP140.dll', 'VCRUNTIME140.dll', 'KERNEL32.dll']) assert.ok(v.external.includes(e), `${e} external: ${v.external.join(', ')}`);
      assert.deepEqual(r.missing, []);
    });

    it('a DLL left out is reported as missing by name; the system DLLs and the C++ runtime are not', () => {
      const dir = path.join(pkg('@node-llama-cpp/win-x64'), 'bins', 'win-x64');
      const r = pack([path.join(dir, 'llama-addon.node'), path.join(dir, 'ggml-base.dll')], { name: 'llama', out: tempDir(), target: 'win32-x64' });
      assert.deepEqual(
        r.missing.map((m) => `${m.file}: ${m.dependency}`),
        ['llama-addon.node: llama-common.dll', 'llama-addon.node: llama.v0.4.0.dll', 'llama-addon.node: ggml.v0.4.0.dll'],
      );
      const optional = pack([path.join(dir, 'llama-addon.node'), path.join(dir, 'ggml-base.dll')], { name: 'llama', out: tempDir(), target: 'win32-x64', optional: ['llama-addon.node'] });
      assert.deepEqual(optional.missing, []);
    });

    it('a DLL imported in another case than its file name is the bundled one (Windows matches names in any case), and KERNEL32 in two spellings is one external', () => {
      const dir = tempDir();
      const lib = path.join(pkg('@img/sharp-win32-x64'), 'lib', 'libvips-42.dll');
      const user = write(dir, 'user.dll', buildPe({ class: 64, machine: IMAGE_FILE_MACHINE_AMD64, exportName: 'user.dll', imports: ['LIBVIPS-42.DLL', 'kernel32.dll'] }).bytes);
      const out = tempDir();
      pack([user, lib], { name: 'case', out, target: 'win32-x64' });
      const v = readManifest(out).variants['win32-x64'] as ManifestVariant;
      assert.deepEqual(v.order, ['libvips-42.dll', 'user.dll']);
      assert.equal(v.external.filter((e) => e.toLowerCase() === 'kernel32.dll').length, 1, v.external.join(', '));
    });

    it("koffi's builds: win32-x64 and win32-arm64 each under its own target, the other machine refused with E_WRONG_ARCH, nothing written", () => {
      const x64 = path.join(pkg('@koromix/koffi-win32-x64'), 'win32_x64', 'koffi.node');
      const arm = path.join(pkg('@koromix/koffi-win32-arm64'), 'win32_arm64', 'koffi.node');
      const out = tempDir();
      pack([x64], { name: 'koffi', out, target: 'win32-x64' });
      pack([arm], { name: 'koffi', out, target: 'win32-arm64' });
      const m = readManifest(out);
      assert.equal(m.variants['win32-x64']?.files[0]?.machine, 'x86_64');
      assert.equal(m.variants['win32-arm64']?.files[0]?.machine, 'aarch64');
      assert.deepEqual(m.variants['win32-arm64']?.external, ['ADVAPI32.dll', 'KERNEL32.dll', 'NODE.EXE']);
      const refused = tempDir();
      const e = expectCode('E_WRONG_ARCH', () => pack([x64], { name: 'koffi', out: refused, target: 'win32-arm64' }));
      assert.match(e.message, /is built for x86_64, but target "win32-arm64" runs aarch64/);
      assert.deepEqual(fs.readdirSync(refused), []);
    });

    it('a Windows executable is E_NOT_SHARED_OBJECT; a DLL for a Linux or macOS target is E_WRONG_ARCH naming both formats', () => {
      const exe = write(tempDir(), 'tool.dll', buildPe({ class: 64, machine: IMAGE_FILE_MACHINE_AMD64, dll: false, imports: ['KERNEL32.dll'] }).bytes);
      expectCode('E_NOT_SHARED_OBJECT', () => pack([exe], { name: 'x', out: tempDir(), target: 'win32-x64' }));
      const dll = path.join(pkg('@img/sharp-win32-x64'), 'lib', 'libvips-42.dll');
      for (const [target, wants] of [['linux-x64-gnu', 'an ELF file'], ['darwin-x64', 'a Mach-O file']] as const) {
        const e = expectCode('E_WRONG_ARCH', () => pack([dll], { name: 'x', out: tempDir(), target }));
        assert.match(e.message, new RegExp(`is a PE file \\(Windows\\), but target "${target}" loads ${wants}`));
      }
    });

    it('dlbundle pack --target win32-x64 on the command line, and inspect of the bundle', () => {
      const out = tempDir();
      const lib = path.join(pkg('@img/sharp-win32-x64'), 'lib');
      const r = spawnSync(process.execPath, [CLI, 'pack', lib, '--name', 'sharp', '--out', out, '--target', 'win32-x64'], { encoding: 'utf8' });
      assert.equal(r.status, 0, r.stderr);
      assert.match(r.stdout, /packed 3 files as win32-x64/);
      const text = execFileSync(process.execPath, [CLI, 'inspect', out], { encoding: 'utf8' });
      assert.match(text, /variant win32-x64 .* 3 files/);
      assert.match(text, /1\. libvips-42\.dll/);
      assert.match(text, /3\. sharp-win32-x64-0\.35\.5\.node/);
    });
  });

  describe('macOS (Mach-O)', () => {
    it("node-llama-cpp's Apple-silicon chain: libggml-base.dylib first, the metal and CPU bundles after it, llama-addon.node last; /usr/lib and /System external", () => {
      const dir = path.join(pkg('@node-llama-cpp/mac-arm64-metal'), 'bins', 'mac-arm64-metal');
      const out = tempDir();
      const r = pack([dir], { name: 'llama', out, target: 'darwin-arm64' });
      const v = readManifest(out).variants['darwin-arm64'] as ManifestVariant;
      assert.equal(v.order[0], 'libggml-base.dylib');
      assertBefore(v.order, 'libggml.metal.v0.4.0.dylib', 'libllama.metal.v0.4.0.dylib');
      assertBefore(v.order, 'libllama.metal.v0.4.0.dylib', 'libllama-common.dylib');
      assertBefore(v.order, 'libllama-common.dylib', 'llama-addon.node');
      for (const b of ['libggml-metal.so', 'libggml-blas.so', 'libggml-cpu-apple_m1.so']) assertBefore(v.order, 'libggml-base.dylib', b);
      assert.equal(file(v, 'libggml-metal.so').soname, null, 'a bundle has no install name');
      assert.equal(file(v, 'libggml-base.dylib').soname, '@rpath/libggml-base.dylib');
      assert.ok(v.external.every((e) => e.startsWith('/usr/lib/') || e.startsWith('/System/')), v.external.join(', '));
      assert.ok(v.external.includes('/usr/lib/libSystem.B.dylib'));
      assert.deepEqual(r.missing, []);
      for (const f of v.files) assert.equal(f.format, 'macho');
    });

    it("sharp's macOS addon and libvips-cpp: @rpath/libvips-cpp.8.18.7.dylib is the bundled dylib whatever the addon's rpaths say", () => {
      const out = tempDir();
      const node = path.join(pkg('@img/sharp-darwin-arm64'), 'lib', 'sharp-darwin-arm64-0.35.5.node');
      const vips = path.join(pkg('@img/sharp-libvips-darwin-arm64'), 'lib', 'libvips-cpp.8.18.7.dylib');
      const r = pack([node, vips], { name: 'sharp', out, target: 'darwin-arm64' });
      const v = readManifest(out).variants['darwin-arm64'] as ManifestVariant;
      assert.deepEqual(v.order, ['libvips-cpp.8.18.7.dylib', 'sharp-darwin-arm64-0.35.5.node']);
      assert.equal(file(v, 'sharp-darwin-arm64-0.35.5.node').runpath.length, 6, 'the rpaths are recorded, unexpanded');
      assert.deepEqual(r.missing, []);
      const e = expectCode('E_WRONG_ARCH', () => pack([node], { name: 'sharp', out: tempDir(), target: 'darwin-x64' }));
      assert.match(e.message, /is built for aarch64, but target "darwin-x64" runs x86_64/);
    });

    it('a universal file (llvm-lipo, FAT_MAGIC; by hand, FAT_MAGIC_64) is split: each darwin target gets its architecture, byte for byte the thin file', () => {
      const x64 = path.join(pkg('@koromix/koffi-darwin-x64'), 'darwin_x64', 'koffi.node');
      const arm = path.join(pkg('@koromix/koffi-darwin-arm64'), 'darwin_arm64', 'koffi.node');
      const dir = tempDir();
      const lipo = path.join(dir, 'lipo', 'koffi.node');
      fs.mkdirSync(path.dirname(lipo));
      execFileSync(llvmTool('llvm-lipo'), ['-create', x64, arm, '-output', lipo]);
      const slice = (f: string): { bytes: Buffer; cputype: number; cpusubtype: number } => {
        const bytes = fs.readFileSync(f);
        return { bytes, cputype: bytes.readInt32LE(4), cpusubtype: bytes.readInt32LE(8) };
      };
      const fat64 = path.join(dir, 'fat64', 'koffi.node');
      fs.mkdirSync(path.dirname(fat64));
      fs.writeFileSync(fat64, buildFat([slice(arm), slice(x64)], { magic64: true }).bytes);
      for (const universal of [lipo, fat64]) {
        const out = tempDir();
        pack([universal], { name: 'koffi', out, target: 'darwin-x64' });
        pack([universal], { name: 'koffi', out, target: 'darwin-arm64' });
        const m = readManifest(out);
        for (const [target, thin, machine] of [['darwin-x64', x64, 'x86_64'], ['darwin-arm64', arm, 'aarch64']] as const) {
          const f = m.variants[target]?.files[0] as ManifestFile;
          assert.equal(f.machine, machine);
          assert.equal(f.size, fs.statSync(thin).size);
          assert.equal(hashFile(path.join(out, target, 'koffi.node')), hashFile(thin), `${target}: the slice, byte for byte`);
        }
        assert.notEqual(m.variants['darwin-x64']?.digest, m.variants['darwin-arm64']?.digest);
      }
    });

    it('weak, re-exported and @loader_path dylibs: needed as written (a LOAD and a REEXPORT of one name both kept), the weak one not missing when absent, bundled ones found by install name or file name', () => {
      const dir = tempDir();
      const mk = (name: string, filetype: number, commands: Parameters<typeof buildMachO>[0]['commands']): string =>
        write(dir, name, buildMachO({ class: 64, endian: 'little', cputype: CPU_TYPE_ARM64, filetype, commands }).bytes);
      mk('libbase.dylib', MH_DYLIB, [{ kind: 'id', name: '@rpath/libbase.1.dylib' }, { kind: 'dylib', cmd: LC_LOAD_DYLIB, name: '/usr/lib/libSystem.B.dylib' }]);
      mk('libmid.dylib', MH_DYLIB, [
        { kind: 'id', name: '@rpath/libmid.dylib' },
        { kind: 'dylib', cmd: LC_LOAD_DYLIB, name: '@rpath/libbase.1.dylib' },
        { kind: 'dylib', cmd: LC_REEXPORT_DYLIB, name: '@rpath/libbase.1.dylib' },
        { kind: 'dylib', cmd: LC_LOAD_WEAK_DYLIB, name: '@rpath/libgpu.dylib' },
        { kind: 'rpath', path: '@loader_path' },
      ]);
      mk('plugin.so', MH_BUNDLE, [{ kind: 'dylib', cmd: LC_LOAD_DYLIB, name: '@loader_path/libmid.dylib' }, { kind: 'dylib', cmd: LC_LOAD_DYLIB, name: '@executable_path/../Frameworks/libbase.1.dylib' }]);
      const out = tempDir();
      const r = pack([dir], { name: 'chain', out, target: 'darwin-arm64' });
      const v = readManifest(out).variants['darwin-arm64'] as ManifestVariant;
      assert.deepEqual(v.order, ['libbase.dylib', 'libmid.dylib', 'plugin.so']);
      const mid = file(v, 'libmid.dylib');
      assert.deepEqual(mid.needed, ['@rpath/libbase.1.dylib', '@rpath/libbase.1.dylib', '@rpath/libgpu.dylib']);
      assert.deepEqual(mid.weakNeeded, ['@rpath/libgpu.dylib']);
      assert.deepEqual(mid.runpath, ['@loader_path']);
      assert.deepEqual(v.external, ['/usr/lib/libSystem.B.dylib', '@rpath/libgpu.dylib']);
      assert.deepEqual(r.missing, [], 'a weak dylib may be absent');
      // Extracted, libbase.dylib also gets the name its install name asks for beside it.
      assert.equal(sonameLink(file(v, 'libbase.dylib')), 'libbase.1.dylib');
      assert.equal(sonameLink(mid), null);
    });

    it('two dylibs with one install name are E_DUPLICATE_SONAME; an executable is E_NOT_SHARED_OBJECT; a universal file without the architecture is E_WRONG_ARCH naming those it has', () => {
      const dir = tempDir();
      const dylib = (id: string): Buffer => buildMachO({ class: 64, endian: 'little', cputype: CPU_TYPE_X86_64, cpusubtype: 3, filetype: MH_DYLIB, commands: [{ kind: 'id', name: id }] }).bytes;
      const a = write(dir, 'liba.dylib', dylib('@rpath/libsame.dylib'));
      const b = write(dir, 'libb.dylib', dylib('@rpath/libsame.dylib'));
      expectCode('E_DUPLICATE_SONAME', () => pack([a, b], { name: 'x', out: tempDir(), target: 'darwin-x64' }));
      const exe = write(dir, 'tool.dylib', buildMachO({ class: 64, endian: 'little', cputype: CPU_TYPE_X86_64, filetype: MH_EXECUTE, commands: [] }).bytes);
      expectCode('E_NOT_SHARED_OBJECT', () => pack([exe], { name: 'x', out: tempDir(), target: 'darwin-x64' }));
      const fat = write(dir, 'libfat.dylib', buildFat([{ bytes: dylib('@rpath/libfat.dylib'), cputype: CPU_TYPE_X86_64, cpusubtype: 3 }]).bytes);
      const e = expectCode('E_WRONG_ARCH', () => pack([fat], { name: 'x', out: tempDir(), target: 'darwin-arm64' }));
      assert.match(e.message, /is built for x86_64, but target "darwin-arm64" runs aarch64/);
    });
  });
});

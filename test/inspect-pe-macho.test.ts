/**
 * `dlbundle inspect --json` against LLVM's readers on every Windows and
 * macOS binary of real npm packages — sharp's and libvips' Windows and macOS
 * builds, node-llama-cpp's Windows and Apple-silicon builds, koffi's Windows
 * and macOS builds — fetched with `npm pack` into .cache/npm-binaries/
 * (scripts/fetch-npm-binaries.js). PE files are checked with
 * `llvm-readobj --file-headers --coff-imports` (machine, class, DLL flag,
 * imports, delay-load imports) and `llvm-objdump -p` (the export
 * directory's DLL name); Mach-O files with `llvm-otool -h -l` (CPU type and
 * subtype, file type, LC_ID_DYLIB, every dylib load command in order,
 * LC_RPATH). Universal files are made from the thin ones with llvm-lipo
 * (FAT_MAGIC) and by hand (FAT_MAGIC_64, which llvm-lipo 14 cannot write),
 * and every slice is compared, listed by `llvm-lipo -archs` and read with
 * `llvm-objdump --macho --arch`.
 */
import { strict as assert } from 'node:assert';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { binaryFormatOf } from '../src/formats/binary';
import type { FileReport, MachOFileReport, PeFileReport } from '../src/inspect';
import { REPO, tempDir } from './fixtures';
import { llvmTool } from './llvm-tools';
import { buildFat } from './macho-builder';

// eslint-disable-next-line @typescript-eslint/no-require-imports
const { fetchNpmBinaries } = require('../scripts/fetch-npm-binaries.js') as { fetchNpmBinaries(): { packages: Record<string, { dir: string; name: string; version: string }> } };

const CLI = path.join(REPO, 'dist', 'cli.js');

/** Every file under `dir` whose first bytes are PE or Mach-O, sorted. */
function binariesUnder(dir: string): { pe: string[]; macho: string[] } {
  const out = { pe: [] as string[], macho: [] as string[] };
  const walk = (d: string): void => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.isFile()) {
        const fd = fs.openSync(p, 'r');
        const head = Buffer.alloc(8);
        const n = fs.readSync(fd, head, 0, 8, 0);
        fs.closeSync(fd);
        const format = binaryFormatOf(head.subarray(0, n));
        if (format === 'pe' || format === 'macho') out[format].push(p);
      }
    }
  };
  walk(dir);
  out.pe.sort();
  out.macho.sort();
  return out;
}

function inspectJson(files: readonly string[]): FileReport[] {
  return JSON.parse(execFileSync(process.execPath, [CLI, 'inspect', '--json', ...files], { encoding: 'utf8', maxBuffer: 256 << 20 })) as FileReport[];
}

// ---------------------------------------------------------------------------
// PE: llvm-readobj and llvm-objdump.

interface PeFacts {
  class: number;
  machine: string;
  dll: boolean;
  soname: string | null;
  needed: string[];
  delayNeeded: string[];
}

// llvm-readobj's "Arch:" for each COFF machine.
const READOBJ_ARCH: Readonly<Record<string, string>> = { x86_64: 'x86_64', aarch64: 'aarch64', i386: 'i386', thumb: 'arm' };

/** Splits tool output into per-file blocks at lines `<prefix><file><suffix>`. */
function blocks(text: string, header: RegExp): Map<string, string> {
  const out = new Map<string, string>();
  const marks = [...text.matchAll(header)];
  marks.forEach((m, i) => {
    const end = i + 1 < marks.length ? (marks[i + 1] as RegExpMatchArray).index : text.length;
    out.set(m[1] as string, text.slice((m.index as number) + m[0].length, end));
  });
  return out;
}

function llvmPeFacts(files: readonly string[]): Map<string, PeFacts> {
  const readobj = llvmTool('llvm-readobj');
  const objdump = llvmTool('llvm-objdump');
  const result = new Map<string, PeFacts>();
  for (let i = 0; i < files.length; i += 50) {
    const chunk = files.slice(i, i + 50);
    const headers = blocks(execFileSync(readobj, ['--file-headers', '--coff-imports', ...chunk], { encoding: 'utf8', maxBuffer: 256 << 20 }), /^File: (.*)$/gm);
    const privates = blocks(execFileSync(objdump, ['-p', ...chunk], { encoding: 'utf8', maxBuffer: 256 << 20 }), /^(.*):\s+file format \S+$/gm);
    for (const file of chunk) {
      const b = headers.get(file);
      const p = privates.get(file);
      assert.ok(b !== undefined && p !== undefined, `no llvm output for ${file}`);
      const arch = /^Arch: (\S+)$/m.exec(b)?.[1] ?? '';
      const imports = [...b.matchAll(/^Import \{\n {2}Name: (.*)$/gm)].map((m) => m[1] as string);
      const delay = [...b.matchAll(/^DelayImport \{\n {2}Name: (.*)$/gm)].map((m) => m[1] as string);
      result.set(file, {
        class: /^\s*Magic: 0x20B$/m.test(b) ? 64 : /^\s*Magic: 0x10B$/m.test(b) ? 32 : 0,
        machine: READOBJ_ARCH[arch] ?? `unmapped llvm-readobj arch ${arch}`,
        dll: /IMAGE_FILE_DLL \(0x2000\)/.test(b),
        soname: /^ DLL name: (.*)$/m.exec(p)?.[1] ?? null,
        needed: [...imports, ...delay],
        delayNeeded: delay,
      });
    }
  }
  return result;
}

// ---------------------------------------------------------------------------
// Mach-O: llvm-otool and llvm-lipo.

interface MachOFacts {
  class: number;
  machine: string;
  cputype: number;
  cpusubtype: number;
  filetype: string;
  soname: string | null;
  needed: string[];
  neededCommands: string[];
  runpath: string[];
}

// <mach-o/loader.h> and <mach/machine.h> values, as otool prints them (decimal).
const OTOOL_CPUTYPE: Readonly<Record<number, string>> = { 7: 'i386', 16777223: 'x86_64', 12: 'arm', 16777228: 'aarch64', 33554444: 'arm64_32', 18: 'ppc', 16777234: 'ppc64' };
const OTOOL_FILETYPE: Readonly<Record<number, string>> = { 1: 'object', 2: 'execute', 6: 'dylib', 8: 'bundle', 9: 'dylib_stub', 11: 'kext_bundle' };
const DYLIB_COMMANDS = new Set(['LC_LOAD_DYLIB', 'LC_LOAD_WEAK_DYLIB', 'LC_REEXPORT_DYLIB', 'LC_LAZY_LOAD_DYLIB', 'LC_LOAD_UPWARD_DYLIB']);

/** The facts of one image from `llvm-otool -h -l` output for it. */
function parseOtool(text: string): MachOFacts {
  const header = /^\s*magic\s+cputype\s+cpusubtype\s+caps\s+filetype.*\n\s*(0x[0-9a-f]+)\s+(-?\d+)\s+(-?\d+)\s+\S+\s+(\d+)/m.exec(text);
  assert.ok(header !== null, `no Mach header in:\n${text.slice(0, 500)}`);
  const facts: MachOFacts = {
    class: header[1] === '0xfeedfacf' ? 64 : 32,
    machine: OTOOL_CPUTYPE[Number(header[2])] ?? `unmapped cputype ${header[2] as string}`,
    cputype: Number(header[2]),
    cpusubtype: Number(header[3]),
    filetype: OTOOL_FILETYPE[Number(header[4])] ?? `unmapped filetype ${header[4] as string}`,
    soname: null,
    needed: [],
    neededCommands: [],
    runpath: [],
  };
  for (const command of text.split(/^Load command \d+$/m).slice(1)) {
    const cmd = /^\s*cmd (\S+)$/m.exec(command)?.[1] ?? '';
    if (cmd === 'LC_ID_DYLIB' || DYLIB_COMMANDS.has(cmd)) {
      const name = /^\s*name (.*) \(offset \d+\)$/m.exec(command)?.[1];
      assert.ok(name !== undefined, `no name in ${cmd}:\n${command}`);
      if (cmd === 'LC_ID_DYLIB') facts.soname = name;
      else {
        facts.needed.push(name);
        facts.neededCommands.push(cmd);
      }
    } else if (cmd === 'LC_RPATH') {
      const p = /^\s*path (.*) \(offset \d+\)$/m.exec(command)?.[1];
      assert.ok(p !== undefined, `no path in LC_RPATH:\n${command}`);
      facts.runpath.push(p);
    }
  }
  // dyld ignores an install name in anything but a dylib; so does dlbundle's soname.
  if (facts.filetype !== 'dylib') facts.soname = null;
  return facts;
}

function otoolThin(files: readonly string[]): Map<string, MachOFacts> {
  const otool = llvmTool('llvm-otool');
  const result = new Map<string, MachOFacts>();
  for (let i = 0; i < files.length; i += 50) {
    const chunk = files.slice(i, i + 50);
    // With one file, otool prints no "<file>:" line of its own: the file is named twice.
    const args = chunk.length === 1 ? [...chunk, ...chunk] : chunk;
    const out = blocks(execFileSync(otool, ['-h', '-l', ...args], { encoding: 'utf8', maxBuffer: 256 << 20 }), /^(\/.*):$/gm);
    for (const file of chunk) {
      const b = out.get(file);
      assert.ok(b !== undefined, `no llvm-otool output for ${file}`);
      result.set(file, parseOtool(b));
    }
  }
  return result;
}

/**
 * Every slice of a universal file, in header order, as llvm-lipo lists them,
 * each read with llvm-objdump's otool mode (llvm-otool 14 ignores -arch and
 * always shows the host's slice).
 */
function otoolFat(file: string): MachOFacts[] {
  const archs = execFileSync(llvmTool('llvm-lipo'), [file, '-archs'], { encoding: 'utf8' }).trim().split(/\s+/);
  const objdump = llvmTool('llvm-objdump');
  return archs.map((arch) => parseOtool(execFileSync(objdump, ['--macho', `--arch=${arch}`, '--private-headers', '--non-verbose', file], { encoding: 'utf8', maxBuffer: 256 << 20 })));
}

function machOReportFacts(r: MachOFileReport): MachOFacts {
  return { class: r.class, machine: r.machine, cputype: r.cputype, cpusubtype: r.cpusubtype, filetype: r.filetype, soname: r.soname, needed: [...r.needed], neededCommands: [...r.neededCommands], runpath: [...r.runpath] };
}

function peReportFacts(r: PeFileReport): PeFacts {
  return { class: r.class, machine: r.machine, dll: r.dll, soname: r.soname, needed: [...r.needed], delayNeeded: [...r.delayNeeded] };
}

/** Compares, and returns a line per file that differs. */
function differences<T>(pairs: readonly { file: string; ours: T; theirs: T }[]): string[] {
  const out: string[] = [];
  for (const p of pairs) {
    try {
      assert.deepEqual(p.ours, p.theirs);
    } catch {
      out.push(`${p.file}:\n    ours ${JSON.stringify(p.ours)}\n    llvm ${JSON.stringify(p.theirs)}`);
    }
  }
  return out;
}

describe('inspect --json agrees with llvm-readobj and llvm-otool on the Windows and macOS binaries of real npm packages', function () {
  this.timeout(600_000);
  const pe: string[] = [];
  const macho: string[] = [];
  const tally = { compared: 0, differed: 0 };

  before(function () {
    this.timeout(900_000);
    const { packages } = fetchNpmBinaries();
    for (const p of Object.values(packages)) {
      const found = binariesUnder(p.dir);
      pe.push(...found.pe);
      macho.push(...found.macho);
    }
  });

  after(() => {
    console.log(`      in all: ${tally.compared} files and slices compared with LLVM's readers, ${tally.differed} differed`);
  });

  it('on every DLL and .node of @img/sharp-win32-x64, @node-llama-cpp/win-x64 and koffi\'s Windows builds: class, machine, DLL flag, DLL name, imports then delay-load imports', () => {
    assert.ok(pe.length >= 20, `expected the Windows packages' DLLs, found ${pe.length}: ${pe.join(', ')}`);
    for (const name of ['libvips-42.dll', 'libvips-cpp-8.18.7.dll', 'sharp-win32-x64-0.35.5.node', 'ggml-base.dll', 'llama.v0.4.0.dll', 'llama-addon.node', 'koffi.node']) {
      assert.ok(pe.some((f) => path.basename(f) === name), `${name} is not among the files compared`);
    }
    const reference = llvmPeFacts(pe);
    const ours = inspectJson(pe);
    assert.deepEqual(ours.map((o) => o.file), pe, 'one report per file, in argument order');
    for (const o of ours) assert.deepEqual(Object.keys(o), ['file', 'format', 'class', 'machine', 'soname', 'needed', 'delayNeeded', 'runpath', 'dll']);
    const differing = differences(ours.map((o) => ({ file: o.file, ours: peReportFacts(o as PeFileReport), theirs: reference.get(o.file) as PeFacts })));
    const delayed = ours.filter((o) => (o as PeFileReport).delayNeeded.length > 0).length;
    tally.compared += ours.length;
    tally.differed += differing.length;
    console.log(`      compared ${ours.length} PE files with llvm-readobj --coff-imports and llvm-objdump -p (${delayed} with delay-load imports): ${differing.length} differed`);
    assert.deepEqual(differing, []);
  });

  it('on every dylib, bundle and .node of @img/sharp-libvips-darwin-*, @img/sharp-darwin-*, @node-llama-cpp/mac-arm64-metal and koffi\'s macOS builds: CPU, file type, install name, each dylib load command in order, rpaths', () => {
    assert.ok(macho.length >= 15, `expected the macOS packages' dylibs, found ${macho.length}: ${macho.join(', ')}`);
    for (const name of ['libvips-cpp.8.18.7.dylib', 'libggml-base.dylib', 'libllama.metal.v0.4.0.dylib', 'llama-addon.node', 'libggml-metal.so', 'koffi.node']) {
      assert.ok(macho.some((f) => path.basename(f) === name), `${name} is not among the files compared`);
    }
    const reference = otoolThin(macho);
    const ours = inspectJson(macho);
    assert.deepEqual(ours.map((o) => o.file), macho, 'one report per thin file, in argument order');
    for (const o of ours) {
      assert.deepEqual(Object.keys(o), ['file', 'format', 'class', 'machine', 'soname', 'needed', 'neededCommands', 'runpath', 'filetype', 'cputype', 'cpusubtype', 'slice']);
      assert.equal((o as MachOFileReport).slice, null);
    }
    const differing = differences(ours.map((o) => ({ file: o.file, ours: machOReportFacts(o as MachOFileReport), theirs: reference.get(o.file) as MachOFacts })));
    const bundles = ours.filter((o) => (o as MachOFileReport).filetype === 'bundle').length;
    tally.compared += ours.length;
    tally.differed += differing.length;
    console.log(`      compared ${ours.length} Mach-O files with llvm-otool -h -l (${bundles} bundles, ${ours.length - bundles} dylibs): ${differing.length} differed`);
    assert.deepEqual(differing, []);
  });

  it('on universal files made of them (llvm-lipo: FAT_MAGIC; by hand: FAT_MAGIC_64): one report per slice, in header order, each agreeing with llvm-objdump --macho --arch', () => {
    const dir = tempDir();
    const pairs = [
      ['koffi.node', 'koromix+koffi-darwin-x64', 'koromix+koffi-darwin-arm64'],
      ['libvips-cpp.8.18.7.dylib', 'img+sharp-libvips-darwin-x64', 'img+sharp-libvips-darwin-arm64'],
      ['sharp-darwin-x64-0.35.5.node', 'img+sharp-darwin-x64', 'img+sharp-darwin-arm64'],
    ] as const;
    const fat: string[] = [];
    for (const [name, x64Package, armPackage] of pairs) {
      const x64 = macho.find((f) => f.includes(`/${x64Package}@`) && path.basename(f) === name);
      const arm = macho.find((f) => f.includes(`/${armPackage}@`) && path.basename(f) === (name.startsWith('sharp-') ? name.replace('x64', 'arm64') : name));
      assert.ok(x64 !== undefined && arm !== undefined, `the two builds of ${name}`);
      const lipo = path.join(dir, `lipo-${name}`);
      execFileSync(llvmTool('llvm-lipo'), ['-create', x64, arm, '-output', lipo]);
      const byHand = path.join(dir, `fat64-${name}`);
      const slice = (f: string): { bytes: Buffer; cputype: number; cpusubtype: number } => {
        const bytes = fs.readFileSync(f);
        return { bytes, cputype: bytes.readInt32LE(4), cpusubtype: bytes.readInt32LE(8) };
      };
      fs.writeFileSync(byHand, buildFat([slice(arm), slice(x64)], { magic64: true, align: 14 }).bytes);
      fat.push(lipo, byHand);
    }
    const ours = inspectJson(fat) as MachOFileReport[];
    const pairsCompared: { file: string; ours: MachOFacts; theirs: MachOFacts }[] = [];
    for (const file of fat) {
      const mine = ours.filter((o) => o.file === file);
      const theirs = otoolFat(file);
      assert.equal(mine.length, 2, `${file}: two slices reported`);
      assert.equal(theirs.length, 2, `${file}: two slices listed by llvm-lipo`);
      mine.forEach((m, i) => {
        assert.deepEqual(m.slice === null ? null : { index: m.slice.index, count: m.slice.count }, { index: i, count: 2 });
        pairsCompared.push({ file: `${file} (slice ${i})`, ours: machOReportFacts(m), theirs: theirs[i] as MachOFacts });
      });
    }
    // The slices are the thin files' bytes: the same facts as each thin file.
    const differing = differences(pairsCompared);
    tally.compared += pairsCompared.length;
    tally.differed += differing.length;
    console.log(`      compared ${pairsCompared.length} slices of ${fat.length} universal files with llvm-lipo -archs and llvm-objdump --macho --arch: ${differing.length} differed`);
    assert.deepEqual(differing, []);
  });
});

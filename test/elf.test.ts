import { strict as assert } from 'node:assert';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { bufferSource, machineName, neededLibraries, readElf, sonameOf, type ElfByteSource, type ElfInfo } from '../src/formats/elf';
import { readElfFile } from '../src/formats/elf-file';
import { DlbundleError, type DlbundleErrorCode } from '../src/errors';
import {
  BASE_VADDR,
  buildElf,
  DT_DEBUG,
  DT_NEEDED,
  DT_NULL,
  DT_SONAME,
  DT_STRSZ,
  DT_STRTAB,
  ET_CORE,
  ET_DYN,
  ET_EXEC,
  ET_REL,
  patch,
  phdrFields,
  dynamicEntry,
  type BuiltElf,
  type ElfSpec,
} from './elf-builder';
import { nativeFixture, prng, tempDir } from './fixtures';

/** What readElf must say about one file: every field of ElfInfo. */
type Expected = ElfInfo;

/** Runs `fn`, which must throw; returns what it threw. */
function thrown(fn: () => unknown): unknown {
  try {
    fn();
  } catch (e) {
    return e;
  }
  assert.fail('expected an error, but the call returned normally');
}

/** Asserts that `fn` throws a DlbundleError with `code` and `offset` (and `file`, when given). */
function assertElfError(fn: () => unknown, code: DlbundleErrorCode, offset: number, file?: string): DlbundleError {
  const e = thrown(fn);
  assert.ok(e instanceof DlbundleError, `expected a DlbundleError, got ${String(e)}`);
  assert.equal(e.code, code, e.message);
  assert.equal(e.offset, offset, `offset: ${e.message}`);
  if (file !== undefined) assert.equal(e.file, file);
  return e;
}


/** A copy of an ELF64-LE file with e_shoff, e_shnum and e_shstrndx zeroed: what a section-stripping tool leaves. */
function withoutSectionHeaders(bytes: Buffer): Buffer {
  const copy = Buffer.from(bytes);
  copy.writeBigUInt64LE(0n, 40); // e_shoff
  copy.writeUInt16LE(0, 60); // e_shnum
  copy.writeUInt16LE(0, 62); // e_shstrndx
  return copy;
}

const demo = (soname: string, needed: readonly string[]): Expected => ({
  class: 64,
  endian: 'little',
  type: 'dyn',
  machine: 'x86_64',
  machineCode: 62,
  interp: null,
  soname,
  needed,
  runpath: [],
  rpath: [],
});

// One row per demo library built from native/, with everything readElf reports.
const DEMO_TABLE: readonly { file: string; want: Expected }[] = [
  { file: 'libdemo_core.so', want: demo('libdemo_core.so', ['libc.so.6']) },
  { file: 'libdemo_codec.so.1.2.3', want: demo('libdemo_codec.so.1', ['libdemo_core.so']) },
  { file: 'libdemo_app.so', want: demo('libdemo_app.so', ['libdemo_codec.so.1', 'libdemo_core.so', 'libc.so.6']) },
  { file: 'libdemo_plugin.so', want: demo('libdemo_plugin.so', []) },
  { file: 'libdemo_accel.so', want: demo('libdemo_accel.so', ['libdemo_gpu_runtime.so.1']) },
  { file: 'libdemo_gpu_runtime.so.1', want: demo('libdemo_gpu_runtime.so.1', []) },
  { file: 'demo.node', want: demo('demo.node', ['libdemo_core.so']) },
];

describe('readElf on the demo libraries', () => {
  for (const { file, want } of DEMO_TABLE) {
    describe(file, () => {
      it('reads the expected header and dynamic facts from a Buffer', () => {
        assert.deepEqual(readElf(fs.readFileSync(nativeFixture(file)), file), want);
      });

      it('reads the same through readElfFile with positioned reads', () => {
        assert.deepEqual(readElfFile(nativeFixture(file)), want);
      });

      it('reads the same without section headers', () => {
        const stripped = withoutSectionHeaders(fs.readFileSync(nativeFixture(file)));
        assert.deepEqual(readElf(stripped, file), want);
        const copy = path.join(tempDir(), file);
        fs.writeFileSync(copy, stripped);
        assert.deepEqual(readElfFile(copy), want);
      });

      it('answers neededLibraries and sonameOf like readElf', () => {
        const bytes = fs.readFileSync(nativeFixture(file));
        assert.deepEqual(neededLibraries(bytes), want.needed);
        assert.equal(sonameOf(bytes), want.soname);
      });
    });
  }

  it('reads a library from a Uint8Array view that does not start at its ArrayBuffer\'s byte 0', () => {
    const bytes = fs.readFileSync(nativeFixture('libdemo_core.so'));
    const padded = new Uint8Array(bytes.length + 13);
    padded.set(bytes, 13);
    assert.deepEqual(readElf(padded.subarray(13)), demo('libdemo_core.so', ['libc.so.6']));
  });
});

// The four layouts: both classes, both byte orders, each on a machine that uses it.
const FORMATS: readonly { name: string; spec: ElfSpec; machine: string }[] = [
  { name: 'ELF64 little-endian (x86_64)', spec: { class: 64, endian: 'little', machine: 62 }, machine: 'x86_64' },
  { name: 'ELF32 little-endian (i386)', spec: { class: 32, endian: 'little', machine: 3 }, machine: 'i386' },
  { name: 'ELF64 big-endian (ppc64)', spec: { class: 64, endian: 'big', machine: 21 }, machine: 'ppc64' },
  { name: 'ELF32 big-endian (mips)', spec: { class: 32, endian: 'big', machine: 8 }, machine: 'mips' },
];

/** A library with every dynamic fact set, in the given layout. */
const fullSpec = (format: ElfSpec): ElfSpec => ({
  ...format,
  interp: '/lib/ld-test.so.1',
  soname: 'libfull.so.2',
  needed: ['libc.so.6', 'libm.so.6', 'libdep.so'],
  runpath: '$ORIGIN:$ORIGIN/../lib',
  rpath: '/opt/old/lib',
});

describe('readElf on hand-built ELF files', () => {
  for (const { name, spec, machine } of FORMATS) {
    describe(name, () => {
      it('reads class, byte order, machine, interp, soname, needed, runpath and rpath', () => {
        const elf = buildElf(fullSpec(spec));
        assert.deepEqual(readElf(elf.bytes), {
          class: spec.class,
          endian: spec.endian,
          type: 'dyn',
          machine,
          machineCode: spec.machine,
          interp: '/lib/ld-test.so.1',
          soname: 'libfull.so.2',
          needed: ['libc.so.6', 'libm.so.6', 'libdep.so'],
          runpath: ['$ORIGIN', '$ORIGIN/../lib'],
          rpath: ['/opt/old/lib'],
        });
      });

      it('splits DT_RUNPATH and DT_RPATH at ":"', () => {
        const info = readElf(buildElf({ ...spec, runpath: 'a:b', rpath: '/x:/y:/z' }).bytes);
        assert.deepEqual(info.runpath, ['a', 'b']);
        assert.deepEqual(info.rpath, ['/x', '/y', '/z']);
      });

      it('reports null soname and interp and empty lists when the file declares none', () => {
        const info = readElf(buildElf({ ...spec, needed: ['libc.so.6'] }).bytes);
        assert.equal(info.soname, null);
        assert.equal(info.interp, null);
        assert.deepEqual(info.runpath, []);
        assert.deepEqual(info.rpath, []);
        assert.deepEqual(info.needed, ['libc.so.6']);
      });

      it('gives empty lists for a file without PT_DYNAMIC', () => {
        const info = readElf(buildElf({ ...spec, dynamic: false, soname: 'ignored.so', needed: ['ignored.so'] }).bytes);
        assert.deepEqual({ soname: info.soname, needed: info.needed, runpath: info.runpath, rpath: info.rpath }, { soname: null, needed: [], runpath: [], rpath: [] });
      });

      it('does not need DT_STRTAB when the dynamic array names no strings', () => {
        const elf = buildElf(spec);
        patch(elf).word(dynamicEntry(elf, DT_STRTAB).offset, DT_DEBUG);
        assert.deepEqual(readElf(elf.bytes).needed, []);
      });

      it('reads the string table up to the end of its segment when DT_STRSZ is absent', () => {
        const elf = buildElf(fullSpec(spec));
        patch(elf).word(dynamicEntry(elf, DT_STRSZ).offset, DT_DEBUG);
        assert.deepEqual(readElf(elf.bytes).needed, ['libc.so.6', 'libm.so.6', 'libdep.so']);
      });

      it('reads the same with section headers as without', () => {
        const withSections = buildElf({ ...fullSpec(spec), sections: true });
        assert.notEqual(withSections.shoff, 0);
        assert.deepEqual(readElf(withSections.bytes), readElf(buildElf(fullSpec(spec)).bytes));
      });

      it('takes the program header count from section 0 when e_phnum is PN_XNUM', () => {
        const elf = buildElf({ ...fullSpec(spec), sections: true });
        const want = readElf(elf.bytes);
        const p = patch(elf);
        p.u16(elf.fields.phnum, 0xffff);
        p.u32(elf.shoff + (spec.class === 64 ? 44 : 28), 3); // sh_info of section 0
        assert.deepEqual(readElf(elf.bytes), want);
      });

      it('reads the same from a plain Uint8Array and from a file', () => {
        const elf = buildElf(fullSpec(spec));
        const want = readElf(elf.bytes);
        assert.deepEqual(readElf(new Uint8Array(elf.bytes)), want);
        const file = path.join(tempDir(), 'lib.so');
        fs.writeFileSync(file, elf.bytes);
        assert.deepEqual(readElfFile(file), want);
      });
    });
  }

  it('names e_type values and keeps unknown ones as "other"', () => {
    const rows: readonly [number, ElfInfo['type']][] = [
      [0, 'none'],
      [ET_REL, 'rel'],
      [ET_EXEC, 'exec'],
      [ET_DYN, 'dyn'],
      [ET_CORE, 'core'],
      [0xfe00, 'other'],
      [0xffff, 'other'],
    ];
    for (const [type, want] of rows) {
      assert.equal(readElf(buildElf({ class: 64, endian: 'little', type }).bytes).type, want, `e_type ${type}`);
    }
  });

  it('names known machines and reports unknown ones as em_<n>', () => {
    const rows: readonly [number, string][] = [
      [3, 'i386'],
      [40, 'arm'],
      [62, 'x86_64'],
      [183, 'aarch64'],
      [243, 'riscv'],
      [0x1234, 'em_4660'],
    ];
    for (const [code, want] of rows) {
      const info = readElf(buildElf({ class: 64, endian: 'little', machine: code }).bytes);
      assert.equal(info.machine, want);
      assert.equal(info.machineCode, code);
      assert.equal(machineName(code), want);
    }
  });

  it('reads DT_STRTAB as a virtual address, not as a file offset', () => {
    const elf = buildElf(fullSpec({ class: 64, endian: 'little' }));
    assert.equal(elf.strtabVaddr, BASE_VADDR + elf.strtabOffset);
    assert.equal(dynamicEntry(elf, DT_STRTAB).value, elf.strtabVaddr);
    assert.equal(readElf(elf.bytes).soname, 'libfull.so.2');
  });
});

// readelf's names for the machines the builder is checked on.
const READELF_MACHINE: Readonly<Record<number, string>> = {
  3: 'Intel 80386',
  8: 'MIPS R3000',
  21: 'PowerPC64',
  62: 'Advanced Micro Devices X86-64',
};

describe('the test ELF builder', () => {
  // The builder is the only source of ELF32 and big-endian inputs, so its
  // output is checked once against an independent reader: binutils' readelf.
  for (const { name, spec } of FORMATS) {
    for (const sections of [false, true]) {
      it(`writes ${name}${sections ? ' with section headers' : ''} that readelf reads without complaint`, () => {
        const full = { ...fullSpec(spec), sections };
        const file = path.join(tempDir(), 'built.so');
        fs.writeFileSync(file, buildElf(full).bytes);
        const args = ['-h', '-d', '-l', '-W', ...(sections ? ['-S'] : []), file];
        const run = spawnSync('readelf', args, { encoding: 'utf8' });
        assert.ifError(run.error);
        assert.equal(run.status, 0, run.stderr);
        assert.equal(run.stderr, '', 'readelf printed warnings');
        const out = run.stdout;
        const one = (re: RegExp): string | null => re.exec(out)?.[1] ?? null;
        const all = (re: RegExp): string[] => [...out.matchAll(re)].map((m) => m[1] ?? '');
        assert.equal(one(/^\s*Class:\s+ELF(\d+)$/m), String(full.class));
        assert.equal(one(/^\s*Data:\s+2's complement, (\w+) endian$/m), full.endian);
        assert.equal(one(/^\s*Type:\s+(\w+)/m), 'DYN');
        assert.equal(one(/^\s*Machine:\s+(.+)$/m), READELF_MACHINE[full.machine ?? 62]);
        assert.equal(one(/\[Requesting program interpreter: (.*)\]/), full.interp);
        assert.equal(one(/\(SONAME\)\s+Library soname: \[(.*)\]/), full.soname);
        assert.deepEqual(all(/\(NEEDED\)\s+Shared library: \[(.*)\]/g), full.needed);
        assert.equal(one(/\(RUNPATH\)\s+Library runpath: \[(.*)\]/), full.runpath);
        assert.equal(one(/\(RPATH\)\s+Library rpath: \[(.*)\]/), full.rpath);
      });
    }
  }
});

/** One way to damage a built file, and the byte offset the reader must report. */
interface Corruption {
  readonly name: string;
  /** Damages `elf.bytes` in place, or returns a damaged (shorter) copy to read instead. */
  readonly damage: (elf: BuiltElf) => Buffer | void;
  /** The byte offset the error must carry, computed on the undamaged layout. */
  readonly offset: (elf: BuiltElf) => number;
  /** Only for this class (64-bit fields above 2^53 exist only in ELF64). */
  readonly only?: 32 | 64;
}

const TWO_POW_60 = 1n << 60n;

const CORRUPTIONS: readonly Corruption[] = [
  { name: 'an invalid class', damage: (e) => { e.bytes[4] = 3; }, offset: () => 4 },
  { name: 'class 0 (ELFCLASSNONE)', damage: (e) => { e.bytes[4] = 0; }, offset: () => 4 },
  { name: 'an invalid byte order', damage: (e) => { e.bytes[5] = 3; }, offset: () => 5 },
  { name: 'byte order 0 (ELFDATANONE)', damage: (e) => { e.bytes[5] = 0; }, offset: () => 5 },
  { name: 'an unknown EI_VERSION', damage: (e) => { e.bytes[6] = 2; }, offset: () => 6 },
  { name: 'a header cut short after the identification', damage: (e) => e.bytes.subarray(0, 16), offset: () => 0 },
  { name: 'a header one byte short', damage: (e) => e.bytes.subarray(0, e.ehsize - 1), offset: () => 0 },
  { name: 'an unknown e_version', damage: (e) => { patch(e).u32(e.fields.version, 2); }, offset: () => 20 },
  { name: 'e_version 0', damage: (e) => { patch(e).u32(e.fields.version, 0); }, offset: () => 20 },
  { name: 'an e_phentsize that does not match the class', damage: (e) => { patch(e).u16(e.fields.phentsize, e.class === 64 ? 32 : 56); }, offset: (e) => e.fields.phentsize },
  { name: 'e_phentsize 0', damage: (e) => { patch(e).u16(e.fields.phentsize, 0); }, offset: (e) => e.fields.phentsize },
  {
    name: 'a program header table that starts inside the file and runs past its end',
    damage: (e) => {
      patch(e).word(e.fields.phoff, e.bytes.length - 10);
    },
    offset: (e) => e.bytes.length - 10,
  },
  { name: 'a program header table cut off by truncation', damage: (e) => e.bytes.subarray(0, e.phoff + e.phentsize + 1), offset: (e) => e.phoff },
  { name: 'an e_phnum far larger than the file', damage: (e) => { patch(e).u16(e.fields.phnum, 0xfffe); }, offset: (e) => e.phoff },
  { name: 'e_phnum PN_XNUM without section headers', damage: (e) => { patch(e).u16(e.fields.phnum, 0xffff); }, offset: (e) => e.fields.phnum },
  { name: 'a PT_LOAD segment one byte longer than the file', damage: (e) => { patch(e).word(e.loadPhdr + phdrFields(e.class).filesz, e.bytes.length + 1); }, offset: (e) => e.loadPhdr },
  { name: 'a PT_LOAD segment starting past the end of the file', damage: (e) => { patch(e).word(e.loadPhdr + phdrFields(e.class).offset, e.bytes.length + 0x1000); }, offset: (e) => e.loadPhdr },
  { name: 'a PT_DYNAMIC segment extending past the end of the file', damage: (e) => { patch(e).word(dynPhdr(e) + phdrFields(e.class).offset, e.bytes.length - 4); }, offset: (e) => dynPhdr(e) },
  { name: 'a PT_INTERP segment extending past the end of the file', damage: (e) => { patch(e).word(interpPhdr(e) + phdrFields(e.class).filesz, e.bytes.length); }, offset: (e) => interpPhdr(e) },
  { name: 'a PT_INTERP string without its NUL', damage: (e) => { e.bytes[interpOffset(e) + '/lib/ld-test.so.1'.length] = 0x78; }, offset: (e) => interpOffset(e) },
  { name: 'an empty PT_INTERP segment', damage: (e) => { patch(e).word(interpPhdr(e) + phdrFields(e.class).filesz, 0); }, offset: (e) => interpOffset(e) },
  { name: 'a DT_STRTAB address below every PT_LOAD', damage: (e) => { patch(e).word(valueAt(e, DT_STRTAB), 0x100); }, offset: (e) => dynOffset(e) },
  { name: 'a DT_STRTAB address just past the PT_LOAD', damage: (e) => { patch(e).word(valueAt(e, DT_STRTAB), BASE_VADDR + e.bytes.length); }, offset: (e) => dynOffset(e) },
  { name: 'a DT_STRTAB that is the file offset instead of the address', damage: (e) => { patch(e).word(valueAt(e, DT_STRTAB), e.strtabOffset); }, offset: (e) => dynOffset(e) },
  { name: 'dynamic strings without any DT_STRTAB', damage: (e) => { patch(e).word(dynamicEntry(e, DT_STRTAB).offset, DT_DEBUG); }, offset: (e) => dynOffset(e) },
  { name: 'a DT_STRSZ running one byte past its segment', damage: (e) => { patch(e).word(valueAt(e, DT_STRSZ), e.bytes.length - e.strtabOffset + 1); }, offset: (e) => dynOffset(e) },
  { name: 'a DT_NEEDED offset equal to DT_STRSZ', damage: (e) => { patch(e).word(valueAt(e, DT_NEEDED), e.strtabSize); }, offset: (e) => dynamicEntry(e, DT_NEEDED).offset },
  { name: 'a DT_SONAME offset far outside the string table', damage: (e) => { patch(e).word(valueAt(e, DT_SONAME), 0xfffffff0); }, offset: (e) => dynamicEntry(e, DT_SONAME).offset },
  {
    name: 'a dynamic string whose NUL lies past DT_STRSZ',
    // The string that ends the table loses its terminator when DT_STRSZ shrinks by one.
    damage: (e) => {
      patch(e).word(valueAt(e, DT_STRSZ), e.strtabSize - 1);
    },
    offset: (e) => e.dynamicEntries.filter((d) => d.tag !== DT_STRTAB && d.tag !== DT_STRSZ && d.tag !== DT_NULL).reduce((a, b) => (b.value > a.value ? b : a)).offset,
  },
  { name: 'a PT_DYNAMIC file offset above 2^53', only: 64, damage: (e) => { patch(e).word(dynPhdr(e) + phdrFields(64).offset, TWO_POW_60); }, offset: (e) => dynPhdr(e) },
  { name: 'a PT_LOAD size above 2^53', only: 64, damage: (e) => { patch(e).word(e.loadPhdr + phdrFields(64).filesz, TWO_POW_60); }, offset: (e) => e.loadPhdr },
  { name: 'a DT_STRTAB address above 2^53', only: 64, damage: (e) => { patch(e).word(valueAt(e, DT_STRTAB), TWO_POW_60); }, offset: (e) => dynOffset(e) },
  { name: 'a DT_STRSZ above 2^53', only: 64, damage: (e) => { patch(e).word(valueAt(e, DT_STRSZ), TWO_POW_60); }, offset: (e) => dynOffset(e) },
  { name: 'a DT_NEEDED offset above 2^53', only: 64, damage: (e) => { patch(e).word(valueAt(e, DT_NEEDED), TWO_POW_60 + 1n); }, offset: (e) => dynamicEntry(e, DT_NEEDED).offset },
];

function dynPhdr(e: BuiltElf): number {
  assert.ok(e.dynamicPhdr !== null);
  return e.dynamicPhdr;
}
function interpPhdr(e: BuiltElf): number {
  assert.ok(e.interpPhdr !== null);
  return e.interpPhdr;
}
function interpOffset(e: BuiltElf): number {
  assert.ok(e.interpOffset !== null);
  return e.interpOffset;
}
function dynOffset(e: BuiltElf): number {
  assert.ok(e.dynamicOffset !== null);
  return e.dynamicOffset;
}
/** File offset of the d_val of the first entry with `tag`. */
function valueAt(e: BuiltElf, tag: number): number {
  return dynamicEntry(e, tag).offset + e.wordSize;
}

describe('readElf rejects input that is not ELF', () => {
  const rows: readonly { name: string; bytes: Uint8Array }[] = [
    { name: 'empty input', bytes: new Uint8Array(0) },
    { name: 'one byte', bytes: Uint8Array.of(0x7f) },
    { name: 'three bytes of the magic', bytes: Uint8Array.of(0x7f, 0x45, 0x4c) },
    { name: 'a shell script', bytes: Buffer.from('#!/bin/sh\necho hello\n') },
    { name: 'a GNU ld linker script', bytes: Buffer.from('/* GNU ld script */\nGROUP ( /lib/x86_64-linux-gnu/libc.so.6 )\n') },
    { name: 'a lower-case magic', bytes: Buffer.from('\x7felf\x02\x01\x01\0\0\0\0\0\0\0\0\0', 'latin1') },
  ];
  for (const { name, bytes } of rows) {
    it(`${name} is E_NOT_ELF at offset 0`, () => {
      assertElfError(() => readElf(bytes, 'input.so'), 'E_NOT_ELF', 0, 'input.so');
    });
  }

  it('a truncated identification with a valid magic is E_BAD_ELF at the end of what is there', () => {
    for (const n of [4, 5, 10, 15]) {
      const bytes = buildElf({ class: 64, endian: 'little' }).bytes.subarray(0, n);
      assertElfError(() => readElf(bytes), 'E_BAD_ELF', n);
    }
  });
});

describe('readElf rejects damaged ELF files with the offset of the damage', () => {
  for (const { name: format, spec } of FORMATS) {
    describe(format, () => {
      for (const c of CORRUPTIONS) {
        if (c.only !== undefined && c.only !== spec.class) continue;
        it(`${c.name} is E_BAD_ELF`, () => {
          const elf = buildElf(fullSpec(spec));
          assert.doesNotThrow(() => readElf(elf.bytes), 'the undamaged file must read');
          const offset = c.offset(elf);
          const bytes = c.damage(elf) ?? elf.bytes;
          assertElfError(() => readElf(bytes, 'damaged.so'), 'E_BAD_ELF', offset, 'damaged.so');
        });
      }
    });
  }

  // 64-bit offsets past 2^53 are read as Infinity; the error must still name
  // the byte where that offset was read.
  it('an e_phoff above 2^53 is E_BAD_ELF at the e_phoff field', () => {
    const elf = buildElf(fullSpec({ class: 64, endian: 'little' }));
    patch(elf).word(elf.fields.phoff, TWO_POW_60);
    const e = assertElfError(() => readElf(elf.bytes, 'huge.so'), 'E_BAD_ELF', elf.fields.phoff);
    assert.doesNotMatch(e.message, /Infinity/);
  });

  it('an e_phoff above 2^53 is E_BAD_ELF (not a RangeError or a huge read)', () => {
    const elf = buildElf(fullSpec({ class: 64, endian: 'little' }));
    patch(elf).word(elf.fields.phoff, TWO_POW_60);
    const e = thrown(() => readElf(elf.bytes));
    assert.ok(e instanceof DlbundleError);
    assert.equal(e.code, 'E_BAD_ELF');
  });

  it('a PN_XNUM count larger than the file is E_BAD_ELF at e_phoff', () => {
    const elf = buildElf({ ...fullSpec({ class: 32, endian: 'big' }), sections: true });
    const p = patch(elf);
    p.u16(elf.fields.phnum, 0xffff);
    p.u32(elf.shoff + 28, 0x10000);
    assertElfError(() => readElf(elf.bytes), 'E_BAD_ELF', elf.phoff);
  });

  it('a byte source that delivers fewer bytes than it promised is E_BAD_ELF at the short read', () => {
    const bytes = fs.readFileSync(nativeFixture('libdemo_core.so'));
    const shortAfterHeader: ElfByteSource = {
      size: bytes.length,
      read: (offset, length) => bytes.subarray(offset, offset < 64 ? offset + length : offset + length - 1),
    };
    assertElfError(() => readElf(shortAfterHeader), 'E_BAD_ELF', 64);
  });
});

describe('readElf on a truncated demo library', () => {
  const file = 'libdemo_core.so';
  const full = () => fs.readFileSync(nativeFixture(file));

  const rows: readonly { label: string; length: (size: number) => number; code: DlbundleErrorCode; offset: number | 'a program header' }[] = [
    { label: '0 bytes', length: () => 0, code: 'E_NOT_ELF', offset: 0 },
    { label: '3 bytes', length: () => 3, code: 'E_NOT_ELF', offset: 0 },
    { label: '4 bytes', length: () => 4, code: 'E_BAD_ELF', offset: 4 },
    { label: '15 bytes', length: () => 15, code: 'E_BAD_ELF', offset: 15 },
    { label: '20 bytes', length: () => 20, code: 'E_BAD_ELF', offset: 0 },
    { label: '63 bytes', length: () => 63, code: 'E_BAD_ELF', offset: 0 },
    { label: '64 bytes', length: () => 64, code: 'E_BAD_ELF', offset: 64 },
    { label: '100 bytes', length: () => 100, code: 'E_BAD_ELF', offset: 64 },
    { label: 'half its size', length: (size) => Math.floor(size / 2), code: 'E_BAD_ELF', offset: 'a program header' },
  ];
  for (const row of rows) {
    it(`cut at ${row.label} is ${row.code}`, () => {
      const bytes = full();
      const cut = bytes.subarray(0, row.length(bytes.length));
      if (row.offset === 'a program header') {
        const e = thrown(() => readElf(cut, file));
        assert.ok(e instanceof DlbundleError);
        assert.equal(e.code, row.code);
        // The first segment that no longer fits is reported at its program header.
        assert.ok(e.offset !== undefined && e.offset >= 64 && (e.offset - 64) % 56 === 0, `offset ${String(e.offset)}`);
      } else {
        assertElfError(() => readElf(cut, file), row.code, row.offset, file);
      }
    });
  }

  it('at every length either reads the same facts as the whole file or throws E_NOT_ELF / E_BAD_ELF', () => {
    const bytes = full();
    const want = readElf(bytes, file);
    const lengths = new Set<number>();
    for (let n = 0; n <= bytes.length; n += 37) lengths.add(n);
    for (let n = Math.max(0, bytes.length - 300); n <= bytes.length; n++) lengths.add(n);
    for (const n of lengths) {
      let got: ElfInfo | undefined;
      try {
        got = readElf(bytes.subarray(0, n), file);
      } catch (e) {
        assert.ok(e instanceof DlbundleError, `length ${n}: ${String(e)}`);
        assert.ok(e.code === (n < 4 ? 'E_NOT_ELF' : 'E_BAD_ELF'), `length ${n}: ${e.code}`);
        assert.equal(typeof e.offset, 'number');
        continue;
      }
      assert.deepEqual(got, want, `length ${n} read without error but differently`);
    }
  });
});

describe('readElf on randomly damaged files', () => {
  // Like a fuzzer with a fixed seed: overwrite bytes in the headers and the
  // dynamic section; the reader may succeed, but may only ever fail with a code.
  const inputs: readonly { name: string; bytes: () => Buffer; span: number }[] = [
    { name: 'the demo core library', bytes: () => withoutSectionHeaders(fs.readFileSync(nativeFixture('libdemo_core.so'))), span: 64 + 9 * 56 },
    ...FORMATS.map(({ name, spec }) => ({ name, bytes: () => buildElf(fullSpec(spec)).bytes, span: Number.POSITIVE_INFINITY })),
  ];
  for (const { name, bytes, span } of inputs) {
    it(`${name} never throws anything but a DlbundleError`, () => {
      const original = bytes();
      const random = prng(0x5eed);
      const limit = Math.min(span, original.length);
      for (let round = 0; round < 2000; round++) {
        const damaged = Buffer.from(original);
        const edits = 1 + Math.floor(random() * 4);
        for (let k = 0; k < edits; k++) damaged[Math.floor(random() * limit)] = Math.floor(random() * 256);
        try {
          readElf(damaged);
        } catch (e) {
          assert.ok(e instanceof DlbundleError, `round ${round}: ${String(e)}`);
          assert.ok(e.code === 'E_BAD_ELF' || e.code === 'E_NOT_ELF', `round ${round}: ${e.code}`);
          assert.equal(typeof e.offset, 'number', `round ${round}`);
        }
      }
    });
  }
});

describe('readElf error messages', () => {
  it('name the file and the hex offset of the damage', () => {
    const elf = buildElf(fullSpec({ class: 32, endian: 'big' }));
    const at = dynamicEntry(elf, DT_NEEDED).offset;
    patch(elf).word(at + elf.wordSize, 0xffff);
    const e = assertElfError(() => readElf(elf.bytes, 'libbroken.so'), 'E_BAD_ELF', at, 'libbroken.so');
    assert.ok(e.message.includes('"libbroken.so"'), e.message);
    assert.ok(e.message.includes(`0x${at.toString(16)}`), e.message);
  });

  it('name the path when read through readElfFile', () => {
    const file = path.join(tempDir(), 'libcut.so');
    fs.writeFileSync(file, fs.readFileSync(nativeFixture('libdemo_core.so')).subarray(0, 100));
    const e = assertElfError(() => readElfFile(file), 'E_BAD_ELF', 64, file);
    assert.ok(e.message.includes(JSON.stringify(file)), e.message);
    assert.ok(e.message.includes('0x40'), e.message);
  });

  it('name the file when it is not ELF at all', () => {
    const file = path.join(tempDir(), 'notes.txt');
    fs.writeFileSync(file, 'just text\n');
    const e = assertElfError(() => readElfFile(file), 'E_NOT_ELF', 0, file);
    assert.ok(e.message.includes(JSON.stringify(file)), e.message);
  });

  it('say <buffer> when no file name is given', () => {
    const e = assertElfError(() => readElf(bufferSource(Buffer.from('nope'))), 'E_NOT_ELF', 0, '<buffer>');
    assert.ok(e.message.includes('"<buffer>"'), e.message);
  });

  it('a directory is E_IO naming the path, not a plain EISDIR Error', () => {
    const dir = tempDir();
    const e = thrown(() => readElfFile(dir));
    assert.ok(e instanceof DlbundleError, String(e));
    assert.equal(e.code, 'E_IO');
    assert.equal(e.file, dir);
  });

  it('a missing file is E_IO naming the path', () => {
    const file = path.join(tempDir(), 'absent.so');
    const e = thrown(() => readElfFile(file));
    assert.ok(e instanceof DlbundleError);
    assert.equal(e.code, 'E_IO');
    assert.equal(e.file, file);
  });
});

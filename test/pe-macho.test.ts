/**
 * The PE and Mach-O readers (src/formats/) on hand-built files: every field
 * they report, the layouts the real npm files do not show (PE32, delay
 * descriptors with virtual addresses, 32-bit big-endian Mach-O, universal
 * files with 32- and 64-bit headers), and damage at known offsets — each an
 * E_BAD_PE / E_BAD_MACHO naming the byte. readBinary's dispatch, and every
 * truncation of a built file.
 */
import { strict as assert } from 'node:assert';
import { bufferSource, type ByteSource } from '../src/formats/byte-reader';
import { binaryFormatOf, readBinary } from '../src/formats/binary';
import { readMachO } from '../src/formats/macho';
import { readPe, type PeInfo } from '../src/formats/pe';
import { DlbundleError, type DlbundleErrorCode } from '../src/errors';
import { buildElf } from './elf-builder';
import {
  buildFat,
  buildMachO,
  CPU_TYPE_ARM64,
  CPU_TYPE_POWERPC,
  CPU_TYPE_X86_64,
  LC_LAZY_LOAD_DYLIB,
  LC_LOAD_DYLIB,
  LC_LOAD_UPWARD_DYLIB,
  LC_LOAD_WEAK_DYLIB,
  LC_REEXPORT_DYLIB,
  MH_BUNDLE,
  MH_DYLIB,
  type MachOSpec,
} from './macho-builder';
import { buildPe, IMAGE_FILE_MACHINE_AMD64, IMAGE_FILE_MACHINE_ARM64, IMAGE_FILE_MACHINE_I386, type PeSpec } from './pe-builder';

function thrown(fn: () => unknown): unknown {
  try {
    fn();
  } catch (e) {
    return e;
  }
  assert.fail('expected an error, but the call returned normally');
}

function assertError(fn: () => unknown, code: DlbundleErrorCode, offset: number, file?: string): DlbundleError {
  const e = thrown(fn);
  assert.ok(e instanceof DlbundleError, `expected a DlbundleError, got ${String(e)}`);
  assert.equal(e.code, code, e.message);
  assert.equal(e.offset, offset, `offset: ${e.message}`);
  if (file !== undefined) {
    assert.equal(e.file, file);
    assert.ok(e.message.includes(JSON.stringify(file)), e.message);
  }
  return e;
}

/** Positioned reads over a copy, as readBinaryFile does over a descriptor. */
function copyingSource(bytes: Uint8Array): ByteSource {
  return { size: bytes.length, read: (offset, length) => Buffer.from(bytes.subarray(offset, Math.min(bytes.length, offset + length))) };
}

const DLL: PeSpec = { class: 64, machine: IMAGE_FILE_MACHINE_AMD64, exportName: 'libfoo-1.dll', imports: ['KERNEL32.dll', 'libbar.dll', 'api-ms-win-crt-heap-l1-1-0.dll'], delayImports: ['node.exe', 'USER32.dll'] };

describe('readPe', () => {
  const rows: readonly { label: string; spec: PeSpec; expected: Omit<PeInfo, 'format' | 'needed'> }[] = [
    {
      label: 'a PE32+ x86-64 DLL',
      spec: DLL,
      expected: { class: 64, machine: 'x86_64', machineCode: 0x8664, dll: true, soname: 'libfoo-1.dll', imports: ['KERNEL32.dll', 'libbar.dll', 'api-ms-win-crt-heap-l1-1-0.dll'], delayImports: ['node.exe', 'USER32.dll'] },
    },
    {
      label: 'a PE32 i386 DLL',
      spec: { ...DLL, class: 32, machine: IMAGE_FILE_MACHINE_I386 },
      expected: { class: 32, machine: 'i386', machineCode: 0x14c, dll: true, soname: 'libfoo-1.dll', imports: ['KERNEL32.dll', 'libbar.dll', 'api-ms-win-crt-heap-l1-1-0.dll'], delayImports: ['node.exe', 'USER32.dll'] },
    },
    {
      label: 'a PE32+ ARM64 DLL',
      spec: { ...DLL, machine: IMAGE_FILE_MACHINE_ARM64 },
      expected: { class: 64, machine: 'aarch64', machineCode: 0xaa64, dll: true, soname: 'libfoo-1.dll', imports: ['KERNEL32.dll', 'libbar.dll', 'api-ms-win-crt-heap-l1-1-0.dll'], delayImports: ['node.exe', 'USER32.dll'] },
    },
    {
      label: 'a PE32 file whose delay descriptors hold virtual addresses (Visual C++ 6)',
      spec: { ...DLL, class: 32, machine: IMAGE_FILE_MACHINE_I386, delayUsesVirtualAddresses: true },
      expected: { class: 32, machine: 'i386', machineCode: 0x14c, dll: true, soname: 'libfoo-1.dll', imports: ['KERNEL32.dll', 'libbar.dll', 'api-ms-win-crt-heap-l1-1-0.dll'], delayImports: ['node.exe', 'USER32.dll'] },
    },
    {
      label: 'an executable without exports or delay-load imports',
      spec: { class: 64, machine: IMAGE_FILE_MACHINE_AMD64, dll: false, imports: ['KERNEL32.dll'] },
      expected: { class: 64, machine: 'x86_64', machineCode: 0x8664, dll: false, soname: null, imports: ['KERNEL32.dll'], delayImports: [] },
    },
    {
      label: 'a DLL whose last name ends in the zero fill past its section\'s file data',
      spec: { ...DLL, lastNameInZeroFill: true },
      expected: { class: 64, machine: 'x86_64', machineCode: 0x8664, dll: true, soname: 'libfoo-1.dll', imports: ['KERNEL32.dll', 'libbar.dll', 'api-ms-win-crt-heap-l1-1-0.dll'], delayImports: ['node.exe', 'USER32.dll'] },
    },
    {
      label: 'a DLL that imports nothing',
      spec: { class: 64, machine: IMAGE_FILE_MACHINE_AMD64, exportName: 'pure.dll' },
      expected: { class: 64, machine: 'x86_64', machineCode: 0x8664, dll: true, soname: 'pure.dll', imports: [], delayImports: [] },
    },
  ];
  for (const row of rows) {
    it(`${row.label}: every field, the same through a Buffer, positioned reads and readBinary`, () => {
      const { bytes } = buildPe(row.spec);
      const expected: PeInfo = { format: 'pe', ...row.expected, needed: [...row.expected.imports, ...row.expected.delayImports] };
      assert.deepEqual(readPe(bytes, 'x.dll'), expected);
      assert.deepEqual(readPe(copyingSource(bytes), 'x.dll'), expected);
      assert.deepEqual(readBinary(bytes, 'x.dll'), expected);
    });
  }

  it('an unknown COFF machine is named pe_0x<hex>', () => {
    const pe = buildPe({ ...DLL, machine: 0x9041 });
    assert.equal(readPe(pe.bytes).machine, 'pe_0x9041');
  });

  it('a file name (a Windows path) and duplicate imports are kept verbatim', () => {
    const pe = buildPe({ ...DLL, imports: ['A.dll', 'a.DLL', 'A.dll'], delayImports: [] });
    assert.deepEqual(readPe(pe.bytes).needed, ['A.dll', 'a.DLL', 'A.dll']);
  });
});

describe('readPe refuses damaged files with E_BAD_PE at the damaged byte', () => {
  type Damage = { label: string; offset: (f: ReturnType<typeof buildPe>['fields'], b: Buffer) => number; damage: (f: ReturnType<typeof buildPe>['fields'], b: Buffer) => Buffer | void };
  const cases: readonly Damage[] = [
    { label: 'no "MZ"', offset: () => 0, damage: (_, b) => void b.write('ZM', 0, 'latin1') },
    { label: 'a file shorter than the DOS header', offset: () => 0, damage: (_, b) => b.subarray(0, 0x30) },
    { label: 'e_lfanew past the end of the file', offset: (f) => f.lfanew, damage: (f, b) => void b.writeUInt32LE(0x7fffffff, f.lfanew) },
    { label: 'no "PE\\0\\0" where e_lfanew points', offset: (f, b) => b.readUInt32LE(f.lfanew), damage: (f, b) => void b.write('PX', b.readUInt32LE(f.lfanew), 'latin1') },
    { label: 'an unknown optional header magic (a ROM image)', offset: (f) => f.optionalMagic, damage: (f, b) => void b.writeUInt16LE(0x107, f.optionalMagic) },
    { label: 'a SizeOfOptionalHeader too small for the directories', offset: (f) => f.optionalSize, damage: (f, b) => void b.writeUInt16LE(64, f.optionalSize) },
    { label: 'a section table that runs past the end of the file', offset: (f) => f.sectionTable, damage: (f, b) => void b.writeUInt16LE(0xffff, f.sectionCount) },
    { label: "a section whose file data runs past the end", offset: (f) => f.sectionTable + 16, damage: (f, b) => void b.writeUInt32LE(0x10000000, f.sectionTable + 16) },
    { label: 'an import directory at an RVA no section holds', offset: (f) => f.directories + 8, damage: (f, b) => void b.writeUInt32LE(0x900000, f.directories + 8) },
    { label: 'an import name at an RVA no section holds', offset: (f) => f.importDescriptors + 12, damage: (f, b) => void b.writeUInt32LE(0x700000, f.importDescriptors + 12) },
    { label: 'a delay-load name below the image base (virtual-address style)', offset: (f) => f.delayDescriptors + 4, damage: (f, b) => void b.writeUInt32LE(0, f.delayDescriptors) },
    { label: 'an export name at an RVA no section holds', offset: (f) => f.exportDirectory + 12, damage: (f, b) => void b.writeUInt32LE(0x12345678, f.exportDirectory + 12) },
  ];
  for (const c of cases) {
    it(c.label, () => {
      const pe = buildPe(DLL);
      assert.doesNotThrow(() => readPe(pe.bytes));
      const offset = c.offset(pe.fields, pe.bytes);
      const bytes = c.damage(pe.fields, pe.bytes) ?? pe.bytes;
      assertError(() => readPe(bytes, 'damaged.dll'), 'E_BAD_PE', offset, 'damaged.dll');
      assertError(() => readPe(copyingSource(bytes), 'damaged.dll'), 'E_BAD_PE', offset, 'damaged.dll');
    });
  }

  it('an import table without its terminating descriptor is E_BAD_PE where the section data ends, not a read elsewhere', () => {
    const pe = buildPe({ class: 64, machine: IMAGE_FILE_MACHINE_AMD64, imports: ['A.dll'] });
    // Every byte after the first descriptor made non-zero: no terminator until the section ends.
    pe.bytes.fill(0x41, pe.fields.importDescriptors + 20);
    const e = thrown(() => readPe(pe.bytes, 'x.dll'));
    assert.ok(e instanceof DlbundleError && e.code === 'E_BAD_PE', String(e));
  });

  it('a name with no NUL before its section ends is E_BAD_PE', () => {
    const pe = buildPe({ class: 64, machine: IMAGE_FILE_MACHINE_AMD64, imports: ['LAST.dll'] });
    const at = pe.bytes.lastIndexOf(Buffer.from('LAST.dll\0', 'latin1'));
    pe.bytes.fill(0x41, at);
    assertError(() => readPe(pe.bytes, 'x.dll'), 'E_BAD_PE', pe.fields.importDescriptors + 12);
  });
});

const MACHO: MachOSpec = {
  class: 64,
  endian: 'little',
  cputype: CPU_TYPE_ARM64,
  filetype: MH_DYLIB,
  commands: [
    { kind: 'uuid' },
    { kind: 'id', name: '@rpath/libfoo.1.dylib' },
    { kind: 'dylib', cmd: LC_LOAD_DYLIB, name: '@rpath/libbar.dylib' },
    { kind: 'dylib', cmd: LC_REEXPORT_DYLIB, name: '@rpath/libbar.dylib' },
    { kind: 'dylib', cmd: LC_LOAD_WEAK_DYLIB, name: '@loader_path/../lib/libgpu.dylib' },
    { kind: 'rpath', path: '@loader_path/../lib' },
    { kind: 'dylib', cmd: LC_LAZY_LOAD_DYLIB, name: '/usr/lib/libz.1.dylib' },
    { kind: 'dylib', cmd: LC_LOAD_UPWARD_DYLIB, name: '@executable_path/libup.dylib' },
    { kind: 'rpath', path: '@executable_path/../Frameworks' },
    { kind: 'dylib', cmd: LC_LOAD_DYLIB, name: '/usr/lib/libSystem.B.dylib' },
  ],
};
const MACHO_NEEDED = ['@rpath/libbar.dylib', '@rpath/libbar.dylib', '@loader_path/../lib/libgpu.dylib', '/usr/lib/libz.1.dylib', '@executable_path/libup.dylib', '/usr/lib/libSystem.B.dylib'];
const MACHO_COMMANDS = ['LC_LOAD_DYLIB', 'LC_REEXPORT_DYLIB', 'LC_LOAD_WEAK_DYLIB', 'LC_LAZY_LOAD_DYLIB', 'LC_LOAD_UPWARD_DYLIB', 'LC_LOAD_DYLIB'];

describe('readMachO', () => {
  it('a 64-bit little-endian dylib: install name, one entry per dylib command in command order (a LOAD and a REEXPORT of one name both), rpaths unexpanded; the same through positioned reads', () => {
    const { bytes } = buildMachO(MACHO);
    const expected = {
      format: 'macho',
      fat: null,
      images: [{ class: 64, endian: 'little', machine: 'aarch64', cputype: CPU_TYPE_ARM64, cpusubtype: 0, filetype: 'dylib', soname: '@rpath/libfoo.1.dylib', needed: MACHO_NEEDED, neededCommands: MACHO_COMMANDS, runpath: ['@loader_path/../lib', '@executable_path/../Frameworks'], offset: 0, size: bytes.length }],
    };
    assert.deepEqual(readMachO(bytes, 'libfoo.dylib'), expected);
    assert.deepEqual(readMachO(copyingSource(bytes), 'libfoo.dylib'), expected);
    assert.deepEqual(readBinary(bytes, 'libfoo.dylib'), expected);
  });

  it('a 32-bit big-endian PowerPC bundle: soname null even with an LC_ID_DYLIB (only a dylib can be named)', () => {
    const { bytes } = buildMachO({ ...MACHO, class: 32, endian: 'big', cputype: CPU_TYPE_POWERPC, cpusubtype: 0, filetype: MH_BUNDLE });
    const [image] = readMachO(bytes).images;
    assert.ok(image !== undefined);
    assert.deepEqual([image.class, image.endian, image.machine, image.filetype, image.soname], [32, 'big', 'ppc', 'bundle', null]);
    assert.deepEqual(image.needed, MACHO_NEEDED);
  });

  for (const magic64 of [false, true]) {
    it(`a universal file (${magic64 ? 'FAT_MAGIC_64' : 'FAT_MAGIC'}): every slice in header order, with its offset and size in the file`, () => {
      const x64 = buildMachO({ ...MACHO, cputype: CPU_TYPE_X86_64, cpusubtype: 3 }).bytes;
      const arm = buildMachO({ ...MACHO, cputype: CPU_TYPE_ARM64, cpusubtype: 0, commands: MACHO.commands.slice(0, 3) }).bytes;
      const fat = buildFat([{ bytes: x64, cputype: CPU_TYPE_X86_64, cpusubtype: 3 }, { bytes: arm, cputype: CPU_TYPE_ARM64 }], { magic64 }).bytes;
      const info = readMachO(fat);
      assert.deepEqual(info.fat, { magic64 });
      assert.deepEqual(info.images.map((i) => [i.machine, i.cpusubtype, i.offset, i.size, i.needed.length]), [['x86_64', 3, 4096, x64.length, 6], ['aarch64', 0, 8192, arm.length, 1]]);
      assert.deepEqual(readMachO(copyingSource(fat)), info);
      assert.equal(binaryFormatOf(fat), 'macho');
    });
  }
});

describe('readMachO refuses damaged files with E_BAD_MACHO at the damaged byte', () => {
  const built = () => buildMachO(MACHO);
  const at = (k: number): number => built().commandOffsets[k] as number;
  const rows: readonly { label: string; offset: number; damage: (b: Buffer) => Buffer | void }[] = [
    { label: 'no magic number', offset: 0, damage: (b) => void b.writeUInt32LE(0x12345678, 0) },
    { label: 'a header cut short', offset: 0, damage: (b) => b.subarray(0, 20) },
    { label: 'sizeofcmds past the end of the file', offset: 20, damage: (b) => void b.writeUInt32LE(0x7fffffff, 20) },
    { label: 'more commands than sizeofcmds can hold', offset: 16, damage: (b) => void b.writeUInt32LE(100000, 16) },
    { label: 'a command of cmdsize 4', offset: at(1) + 4, damage: (b) => void b.writeUInt32LE(4, at(1) + 4) },
    { label: 'a command of cmdsize not a multiple of 4', offset: at(1) + 4, damage: (b) => void b.writeUInt32LE(50, at(1) + 4) },
    { label: 'a command running past sizeofcmds', offset: at(9) + 4, damage: (b) => void b.writeUInt32LE(0x10000, at(9) + 4) },
    { label: 'a dylib name offset inside the dylib structure', offset: at(2) + 8, damage: (b) => void b.writeUInt32LE(8, at(2) + 8) },
    { label: 'a dylib name offset past the command', offset: at(2) + 8, damage: (b) => void b.writeUInt32LE(4096, at(2) + 8) },
    { label: 'an rpath with no NUL inside its command', offset: at(5) + 12, damage: (b) => void b.fill(0x41, at(5) + 12, at(6)) },
    { label: 'a dylib command too small for its structure', offset: at(2) + 4, damage: (b) => void b.writeUInt32LE(16, at(2) + 4) },
    { label: 'a second LC_ID_DYLIB', offset: at(2), damage: (b) => void b.writeUInt32LE(0xd, at(2)) },
  ];
  for (const r of rows) {
    it(r.label, () => {
      const { bytes } = built();
      assert.doesNotThrow(() => readMachO(bytes));
      const damaged = r.damage(bytes) ?? bytes;
      assertError(() => readMachO(damaged, 'damaged.dylib'), 'E_BAD_MACHO', r.offset, 'damaged.dylib');
      assertError(() => readMachO(copyingSource(damaged), 'damaged.dylib'), 'E_BAD_MACHO', r.offset, 'damaged.dylib');
    });
  }

  const slice = (cputype: number, cpusubtype = 0): Buffer => buildMachO({ ...MACHO, cputype, cpusubtype }).bytes;
  const fatRows: readonly { label: string; offset: number; make: () => Buffer }[] = [
    { label: 'a universal file with no architectures', offset: 4, make: () => buildFat([]).bytes },
    { label: 'a count of architectures no universal file has (a Java class file)', offset: 4, make: () => Buffer.from('cafebabe00000034', 'hex') },
    {
      label: 'an architecture past the end of the file',
      offset: 8 + 20,
      make: () => {
        const b = buildFat([{ bytes: slice(CPU_TYPE_X86_64, 3), cputype: CPU_TYPE_X86_64, cpusubtype: 3 }, { bytes: slice(CPU_TYPE_ARM64), cputype: CPU_TYPE_ARM64 }]).bytes;
        b.writeUInt32BE(0x7ffffff0, 8 + 20 + 12);
        return b;
      },
    },
    {
      label: 'two architectures of one CPU',
      offset: 8 + 20,
      make: () => buildFat([{ bytes: slice(CPU_TYPE_ARM64), cputype: CPU_TYPE_ARM64 }, { bytes: slice(CPU_TYPE_ARM64), cputype: CPU_TYPE_ARM64 }]).bytes,
    },
    {
      label: 'overlapping architectures',
      offset: 8 + 20,
      make: () => {
        const b = buildFat([{ bytes: slice(CPU_TYPE_X86_64, 3), cputype: CPU_TYPE_X86_64, cpusubtype: 3 }, { bytes: slice(CPU_TYPE_ARM64), cputype: CPU_TYPE_ARM64 }]).bytes;
        b.writeUInt32BE(b.readUInt32BE(8 + 8) + 16, 8 + 20 + 8);
        return b;
      },
    },
    {
      label: 'an architecture whose header names another CPU than the table',
      offset: 8,
      make: () => buildFat([{ bytes: slice(CPU_TYPE_X86_64, 3), cputype: CPU_TYPE_ARM64 }]).bytes,
    },
    {
      label: 'a universal file inside a universal file (at the slice, in whole-file offsets)',
      offset: 4096,
      make: () => buildFat([{ bytes: buildFat([{ bytes: slice(CPU_TYPE_ARM64), cputype: CPU_TYPE_ARM64 }]).bytes, cputype: CPU_TYPE_ARM64 }]).bytes,
    },
    {
      label: 'damage inside the second slice (reported in whole-file offsets)',
      offset: 8192 + 20,
      make: () => {
        const b = buildFat([{ bytes: slice(CPU_TYPE_X86_64, 3), cputype: CPU_TYPE_X86_64, cpusubtype: 3 }, { bytes: slice(CPU_TYPE_ARM64), cputype: CPU_TYPE_ARM64 }]).bytes;
        b.writeUInt32LE(0x7fffffff, 8192 + 20);
        return b;
      },
    },
  ];
  for (const r of fatRows) {
    it(r.label, () => {
      assertError(() => readMachO(r.make(), 'fat.dylib'), 'E_BAD_MACHO', r.offset, 'fat.dylib');
    });
  }
});

describe('readBinary', () => {
  it('dispatches on the magic number: ELF, PE, Mach-O thin and universal', () => {
    assert.equal(readBinary(buildElf({ class: 64, endian: 'little', soname: 'liba.so' }).bytes).format, 'elf');
    assert.equal(readBinary(buildPe(DLL).bytes).format, 'pe');
    assert.equal(readBinary(buildMachO(MACHO).bytes).format, 'macho');
    assert.equal(readBinary(buildMachO({ ...MACHO, endian: 'big' }).bytes).format, 'macho');
  });

  for (const [label, bytes] of [
    ['empty input', Buffer.alloc(0)],
    ['a script', Buffer.from('#!/bin/sh\n')],
    ['a Java class file (0xcafebabe, version 52)', Buffer.from('cafebabe00000034', 'hex')],
    ['a COFF import library (an ar archive)', Buffer.from('!<arch>\n', 'latin1')],
    ['one byte "M"', Buffer.from('M')],
  ] as const) {
    it(`${label}: E_NOT_ELF at 0, naming the three formats`, () => {
      const e = assertError(() => readBinary(bytes, 'x.bin'), 'E_NOT_ELF', 0, 'x.bin');
      assert.match(e.message, /is not an ELF, PE or Mach-O file/);
    });
  }

  it('every truncation of a built PE, Mach-O and universal file (each ending where its last structure ends) is E_BAD_PE / E_BAD_MACHO / E_NOT_ELF, nothing else', () => {
    const files: readonly [string, Buffer][] = [
      ['pe', buildPe(DLL).bytes],
      ['macho', buildMachO({ ...MACHO, tail: 0 }).bytes],
      ['fat', buildFat([{ bytes: buildMachO({ ...MACHO, cputype: CPU_TYPE_X86_64, tail: 0 }).bytes, cputype: CPU_TYPE_X86_64 }], { align: 6 }).bytes],
    ];
    for (const [kind, bytes] of files) {
      assert.doesNotThrow(() => readBinary(bytes));
      for (let n = 0; n < bytes.length; n++) {
        const e = thrown(() => readBinary(bufferSource(bytes.subarray(0, n)), 'cut'));
        assert.ok(e instanceof DlbundleError && ['E_BAD_PE', 'E_BAD_MACHO', 'E_NOT_ELF'].includes(e.code), `${kind} cut at ${n}: ${String(e)}`);
      }
    }
  });
});

/**
 * Builds small PE files byte by byte, independently of src/formats/pe.ts:
 * PE32 and PE32+, with an export directory, an import directory and a
 * delay-load directory naming the DLLs given. What the tests need that the
 * real DLLs from npm (all PE32+) do not show: PE32, delay descriptors that
 * hold virtual addresses (Visual C++ 6), names in unusual places.
 */

export const IMAGE_FILE_MACHINE_I386 = 0x014c;
export const IMAGE_FILE_MACHINE_AMD64 = 0x8664;
export const IMAGE_FILE_MACHINE_ARM64 = 0xaa64;

/** What to build. */
export interface PeSpec {
  readonly class: 32 | 64;
  readonly machine: number;
  /** IMAGE_FILE_DLL in the characteristics (default true). */
  readonly dll?: boolean;
  /** The export directory's Name; null or absent: no export directory. */
  readonly exportName?: string | null;
  readonly imports?: readonly string[];
  readonly delayImports?: readonly string[];
  /** Delay descriptors with the attribute bit clear and virtual addresses (ImageBase + RVA) for names. */
  readonly delayUsesVirtualAddresses?: boolean;
  /** The section's VirtualSize exceeds its file data, and the last name runs into that zero fill (no NUL in the file). */
  readonly lastNameInZeroFill?: boolean;
}

/** Where the interesting fields of a built file are, for tests that damage them. */
export interface BuiltPe {
  readonly bytes: Buffer;
  readonly fields: {
    readonly lfanew: number;
    readonly machine: number;
    readonly sectionCount: number;
    readonly optionalSize: number;
    readonly optionalMagic: number;
    readonly directoryCount: number;
    /** The RVA field of data directory i is at directories + 8 * i. */
    readonly directories: number;
    readonly sectionTable: number;
    /** The data of the one section: its file offset and RVA. */
    readonly dataOffset: number;
    readonly dataRva: number;
    readonly importDescriptors: number;
    readonly delayDescriptors: number;
    readonly exportDirectory: number;
  };
}

const FILE_ALIGN = 0x200;
const SECTION_RVA = 0x1000;
const PE_AT = 0x80;

/**
 * A PE file with the given facts.
 *
 * @example
 * buildPe({ class: 32, machine: IMAGE_FILE_MACHINE_I386, exportName: 'a.dll', imports: ['KERNEL32.dll'] }).bytes
 */
export function buildPe(spec: PeSpec): BuiltPe {
  const is64 = spec.class === 64;
  const imageBase = is64 ? 0x180000000 : 0x10000000;
  const imports = spec.imports ?? [];
  const delays = spec.delayImports ?? [];
  const optionalSize = is64 ? 240 : 224;

  // The section's data: export directory, import descriptors (+ terminator),
  // delay descriptors (+ terminator), an 8-byte empty thunk list, then names.
  const exportAt = 0;
  const importAt = 40;
  const delayAt = importAt + 20 * (imports.length + 1);
  const thunkAt = delayAt + 32 * (delays.length + 1);
  let namesAt = thunkAt + 8;
  const names: { text: string; at: number }[] = [];
  const place = (text: string): number => {
    const at = namesAt;
    names.push({ text, at });
    namesAt += Buffer.byteLength(text) + 1;
    return at;
  };
  const exportNameAt = spec.exportName == null ? -1 : place(spec.exportName);
  const importNameAt = imports.map(place);
  const delayNameAt = delays.map(place);
  let dataLength = namesAt;
  if (spec.lastNameInZeroFill === true) dataLength -= 1; // the last NUL is left to the zero fill
  const data = Buffer.alloc(dataLength);
  const rva = (at: number): number => SECTION_RVA + at;
  if (exportNameAt >= 0) {
    data.writeUInt32LE(rva(exportNameAt), exportAt + 12);
    data.writeUInt32LE(1, exportAt + 16); // Base
  }
  importNameAt.forEach((at, i) => {
    const d = importAt + 20 * i;
    data.writeUInt32LE(rva(thunkAt), d); // OriginalFirstThunk
    data.writeUInt32LE(rva(at), d + 12); // Name
    data.writeUInt32LE(rva(thunkAt), d + 16); // FirstThunk
  });
  delayNameAt.forEach((at, i) => {
    const d = delayAt + 32 * i;
    const va = spec.delayUsesVirtualAddresses === true;
    data.writeUInt32LE(va ? 0 : 1, d); // Attributes: dlattrRva
    data.writeUInt32LE(va ? imageBase + rva(at) : rva(at), d + 4);
    data.writeUInt32LE(rva(thunkAt), d + 12); // ImportAddressTable
    data.writeUInt32LE(rva(thunkAt), d + 16); // ImportNameTable
  });
  for (const n of names) if (n.at + Buffer.byteLength(n.text) <= data.length) data.write(n.text, n.at, 'utf8');

  const rawSize = Math.ceil(data.length / FILE_ALIGN) * FILE_ALIGN;
  const virtualSize = spec.lastNameInZeroFill === true ? rawSize + 0x100 : data.length;
  // A name in zero fill needs the file data to end right after it: no padding.
  const fileRawSize = spec.lastNameInZeroFill === true ? data.length : rawSize;
  const headerSize = FILE_ALIGN;
  const bytes = Buffer.alloc(headerSize + (spec.lastNameInZeroFill === true ? data.length : rawSize));
  bytes.write('MZ', 0, 'latin1');
  bytes.writeUInt32LE(PE_AT, 0x3c);
  bytes.write('PE\0\0', PE_AT, 'latin1');
  const coff = PE_AT + 4;
  bytes.writeUInt16LE(spec.machine, coff);
  bytes.writeUInt16LE(1, coff + 2);
  bytes.writeUInt16LE(optionalSize, coff + 16);
  bytes.writeUInt16LE((spec.dll ?? true) ? 0x2022 : 0x0022, coff + 18);
  const opt = coff + 20;
  bytes.writeUInt16LE(is64 ? 0x20b : 0x10b, opt);
  if (is64) bytes.writeBigUInt64LE(BigInt(imageBase), opt + 24);
  else bytes.writeUInt32LE(imageBase, opt + 28);
  bytes.writeUInt32LE(0x1000, opt + 32); // SectionAlignment
  bytes.writeUInt32LE(FILE_ALIGN, opt + 36); // FileAlignment
  bytes.writeUInt32LE(SECTION_RVA + Math.ceil(virtualSize / 0x1000) * 0x1000, opt + 56); // SizeOfImage
  bytes.writeUInt32LE(headerSize, opt + 60); // SizeOfHeaders
  const countAt = opt + (is64 ? 108 : 92);
  bytes.writeUInt32LE(16, countAt);
  const dirs = opt + (is64 ? 112 : 96);
  if (exportNameAt >= 0) {
    bytes.writeUInt32LE(rva(exportAt), dirs);
    bytes.writeUInt32LE(40, dirs + 4);
  }
  if (imports.length > 0) {
    bytes.writeUInt32LE(rva(importAt), dirs + 8);
    bytes.writeUInt32LE(20 * (imports.length + 1), dirs + 12);
  }
  if (delays.length > 0) {
    bytes.writeUInt32LE(rva(delayAt), dirs + 8 * 13);
    bytes.writeUInt32LE(32 * (delays.length + 1), dirs + 8 * 13 + 4);
  }
  const section = opt + optionalSize;
  bytes.write('.rdata', section, 'latin1');
  bytes.writeUInt32LE(virtualSize, section + 8);
  bytes.writeUInt32LE(SECTION_RVA, section + 12);
  bytes.writeUInt32LE(fileRawSize, section + 16);
  bytes.writeUInt32LE(headerSize, section + 20);
  bytes.writeUInt32LE(0x40000040, section + 36); // initialised data, readable
  data.copy(bytes, headerSize);
  return {
    bytes,
    fields: {
      lfanew: 0x3c,
      machine: coff,
      sectionCount: coff + 2,
      optionalSize: coff + 16,
      optionalMagic: opt,
      directoryCount: countAt,
      directories: dirs,
      sectionTable: section,
      dataOffset: headerSize,
      dataRva: SECTION_RVA,
      importDescriptors: headerSize + importAt,
      delayDescriptors: headerSize + delayAt,
      exportDirectory: headerSize + exportAt,
    },
  };
}

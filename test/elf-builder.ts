/**
 * Hand-assembles minimal, valid ELF shared objects in memory, so the ELF
 * reader can be tested on ELF32, big-endian and foreign-machine inputs without
 * cross compilers or committed binaries. The layout is what a linker would
 * emit for a library with nothing but a dynamic section:
 *
 *   ELF header | program headers (PT_LOAD, PT_DYNAMIC, PT_INTERP?) | interp? |
 *   .dynstr | .gnu.version_r? | .gnu.version_d? | .dynamic | [.shstrtab + section headers]
 *
 * One PT_LOAD maps the whole file at BASE_VADDR + file offset, so every
 * virtual address differs from its file offset: a reader that mistakes
 * DT_STRTAB for a file offset reads the wrong bytes.
 *
 * @example
 * const elf = buildElf({ class: 32, endian: 'big', machine: 8, soname: 'libx.so', needed: ['libc.so.6'] });
 * fs.writeFileSync(path, elf.bytes);
 */

/** Where the single PT_LOAD segment maps file offset 0. */
export const BASE_VADDR = 0x10000;

export const ET_REL = 1;
export const ET_EXEC = 2;
export const ET_DYN = 3;
export const ET_CORE = 4;

export const PT_LOAD = 1;
export const PT_DYNAMIC = 2;
export const PT_INTERP = 3;

export const DT_NULL = 0;
export const DT_NEEDED = 1;
export const DT_STRTAB = 5;
export const DT_STRSZ = 10;
export const DT_SONAME = 14;
export const DT_RPATH = 15;
export const DT_DEBUG = 21;
export const DT_RUNPATH = 29;
export const DT_VERDEF = 0x6ffffffc;
export const DT_VERDEFNUM = 0x6ffffffd;
export const DT_VERNEED = 0x6ffffffe;
export const DT_VERNEEDNUM = 0x6fffffff;

/** One entry of `.gnu.version_r`: the versions needed from one library. */
export interface VersionNeedSpec {
  readonly file: string;
  readonly versions: readonly { readonly name: string; readonly flags?: number; readonly index: number }[];
}

/** One entry of `.gnu.version_d`; the first is the file's own (flags 1, VER_FLG_BASE). */
export interface VersionDefinitionSpec {
  readonly name: string;
  readonly flags?: number;
  readonly index: number;
  readonly parents?: readonly string[];
}

/** What to put in the ELF file. Everything but `class` and `endian` has a default. */
export interface ElfSpec {
  readonly class: 32 | 64;
  readonly endian: 'little' | 'big';
  /** `e_machine`; defaults to 62 (x86_64). */
  readonly machine?: number;
  /** `e_type`; defaults to ET_DYN. */
  readonly type?: number;
  /** PT_INTERP contents (without the NUL); no PT_INTERP when absent. */
  readonly interp?: string;
  /** DT_SONAME; none when absent. */
  readonly soname?: string;
  /** DT_NEEDED entries, in order. */
  readonly needed?: readonly string[];
  /** One DT_RUNPATH entry (a `:`-separated list); none when absent. */
  readonly runpath?: string;
  /** One DT_RPATH entry (a `:`-separated list); none when absent. */
  readonly rpath?: string;
  /** Emit PT_DYNAMIC (and the dynamic array); defaults to true. */
  readonly dynamic?: boolean;
  /** Emit section headers (NULL, .interp?, .dynstr, .gnu.version_r?, .gnu.version_d?, .dynamic, .shstrtab); defaults to false. */
  readonly sections?: boolean;
  /** `.gnu.version_r` (DT_VERNEED, DT_VERNEEDNUM); none when absent. */
  readonly versionNeeds?: readonly VersionNeedSpec[];
  /** `.gnu.version_d` (DT_VERDEF, DT_VERDEFNUM); none when absent. */
  readonly versionDefinitions?: readonly VersionDefinitionSpec[];
}

/** One entry of the dynamic array: its tag and where the entry starts in the file. */
export interface DynamicEntry {
  readonly tag: number;
  readonly value: number;
  /** File offset of `d_tag`; `d_val` follows at `offset + wordSize`. */
  readonly offset: number;
}

/** The bytes, plus the file offsets of every structure a test may want to corrupt. */
export interface BuiltElf {
  readonly bytes: Buffer;
  readonly class: 32 | 64;
  readonly endian: 'little' | 'big';
  /** 4 in ELF32, 8 in ELF64: the width of addresses, offsets and dynamic entries' halves. */
  readonly wordSize: 4 | 8;
  /** 52 or 64. */
  readonly ehsize: number;
  /** `e_phoff`. */
  readonly phoff: number;
  /** 32 or 56. */
  readonly phentsize: number;
  /** File offsets of the PT_LOAD, PT_DYNAMIC and PT_INTERP program headers (null when not emitted). */
  readonly loadPhdr: number;
  readonly dynamicPhdr: number | null;
  readonly interpPhdr: number | null;
  /** File offset of the interpreter string, or null. */
  readonly interpOffset: number | null;
  /** File offset, virtual address and size (DT_STRSZ) of .dynstr. */
  readonly strtabOffset: number;
  readonly strtabVaddr: number;
  readonly strtabSize: number;
  /** File offset of the dynamic array, or null without PT_DYNAMIC. */
  readonly dynamicOffset: number | null;
  /** The dynamic array's entries in file order, DT_NULL last. */
  readonly dynamicEntries: readonly DynamicEntry[];
  /** File offsets of `.gnu.version_r` and `.gnu.version_d` (null when not emitted). */
  readonly verneedOffset: number | null;
  readonly verdefOffset: number | null;
  /** `e_shoff`, 0 without section headers. */
  readonly shoff: number;
  /** Byte offsets of header fields, for corrupting them. */
  readonly fields: ElfHeaderFields;
}

/** Offsets of the ELF header fields whose position depends on the class. */
export interface ElfHeaderFields {
  readonly version: 20;
  readonly phoff: number;
  readonly shoff: number;
  readonly phentsize: number;
  readonly phnum: number;
  readonly shentsize: number;
  readonly shnum: number;
  readonly shstrndx: number;
}

/** Offsets of the ELF header fields for one class. */
export function headerFields(cls: 32 | 64): ElfHeaderFields {
  return cls === 64
    ? { version: 20, phoff: 32, shoff: 40, phentsize: 54, phnum: 56, shentsize: 58, shnum: 60, shstrndx: 62 }
    : { version: 20, phoff: 28, shoff: 32, phentsize: 42, phnum: 44, shentsize: 46, shnum: 48, shstrndx: 50 };
}

/** Offsets of the program header fields for one class; ELF64 moves p_flags to second place. */
export function phdrFields(cls: 32 | 64): { type: number; flags: number; offset: number; vaddr: number; paddr: number; filesz: number; memsz: number; align: number } {
  return cls === 64
    ? { type: 0, flags: 4, offset: 8, vaddr: 16, paddr: 24, filesz: 32, memsz: 40, align: 48 }
    : { type: 0, offset: 4, vaddr: 8, paddr: 12, filesz: 16, memsz: 20, flags: 24, align: 28 };
}

/** Writes fixed-width unsigned fields in one byte order. */
class FieldWriter {
  constructor(
    readonly buf: Buffer,
    readonly little: boolean,
  ) {}

  u8(at: number, v: number): void {
    this.buf.writeUInt8(v, at);
  }

  u16(at: number, v: number): void {
    if (this.little) this.buf.writeUInt16LE(v, at);
    else this.buf.writeUInt16BE(v, at);
  }

  u32(at: number, v: number): void {
    if (this.little) this.buf.writeUInt32LE(v, at);
    else this.buf.writeUInt32BE(v, at);
  }

  u64(at: number, v: number | bigint): void {
    const b = BigInt(v);
    if (this.little) this.buf.writeBigUInt64LE(b, at);
    else this.buf.writeBigUInt64BE(b, at);
  }

  /** An address/offset-sized field: 4 bytes in ELF32, 8 in ELF64. */
  word(at: number, v: number | bigint, size: 4 | 8): void {
    if (size === 8) this.u64(at, v);
    else this.u32(at, Number(v));
  }
}

/** .dynstr contents: a leading NUL, then each distinct string once. */
class StringTableBuilder {
  private readonly parts: Buffer[] = [Buffer.alloc(1)];
  private readonly offsets = new Map<string, number>();
  private size = 1;

  add(s: string): number {
    const known = this.offsets.get(s);
    if (known !== undefined) return known;
    const at = this.size;
    const bytes = Buffer.from(`${s}\0`, 'utf8');
    this.parts.push(bytes);
    this.offsets.set(s, at);
    this.size += bytes.length;
    return at;
  }

  bytes(): Buffer {
    return Buffer.concat(this.parts);
  }
}

const align = (n: number, to: number): number => Math.ceil(n / to) * to;

/** The System V ABI's ELF hash (vna_hash, vd_hash). */
function elfHash(name: string): number {
  let h = 0;
  for (const c of Buffer.from(name, 'utf8')) {
    h = ((h << 4) + c) >>> 0;
    const g = h & 0xf0000000;
    if (g !== 0) h ^= g >>> 24;
    h &= ~g >>> 0;
  }
  return h >>> 0;
}

/**
 * Builds one ELF file from `spec`.
 *
 * @example
 * buildElf({ class: 64, endian: 'little', soname: 'liba.so', needed: ['libc.so.6'] }).bytes
 */
export function buildElf(spec: ElfSpec): BuiltElf {
  const is64 = spec.class === 64;
  const wordSize: 4 | 8 = is64 ? 8 : 4;
  const ehsize = is64 ? 64 : 52;
  const phentsize = is64 ? 56 : 32;
  const shentsize = is64 ? 64 : 40;
  const withDynamic = spec.dynamic ?? true;
  const hasInterp = spec.interp !== undefined;
  const phnum = 1 + (withDynamic ? 1 : 0) + (hasInterp ? 1 : 0);

  // Layout, front to back.
  const phoff = ehsize;
  let cursor = phoff + phnum * phentsize;
  const interpBytes = hasInterp ? Buffer.from(`${spec.interp}\0`, 'utf8') : Buffer.alloc(0);
  const interpOffset = hasInterp ? cursor : null;
  cursor += interpBytes.length;

  const strtab = new StringTableBuilder();
  const dyn: { tag: number; value: number }[] = [];
  for (const n of spec.needed ?? []) dyn.push({ tag: DT_NEEDED, value: strtab.add(n) });
  if (spec.soname !== undefined) dyn.push({ tag: DT_SONAME, value: strtab.add(spec.soname) });
  if (spec.runpath !== undefined) dyn.push({ tag: DT_RUNPATH, value: strtab.add(spec.runpath) });
  if (spec.rpath !== undefined) dyn.push({ tag: DT_RPATH, value: strtab.add(spec.rpath) });
  const needs = spec.versionNeeds ?? [];
  const defs = spec.versionDefinitions ?? [];
  for (const n of needs) [n.file, ...n.versions.map((v) => v.name)].forEach((t) => strtab.add(t));
  for (const d of defs) [d.name, ...(d.parents ?? [])].forEach((t) => strtab.add(t));
  const strtabBytes = strtab.bytes();
  const strtabOffset = cursor;
  const strtabVaddr = BASE_VADDR + strtabOffset;
  cursor += strtabBytes.length;
  // Elf_Verneed and Elf_Vernaux are 16 bytes each, Elf_Verdef 20 and Elf_Verdaux 8, in both classes.
  const verneedOffset = needs.length > 0 ? align(cursor, 4) : null;
  if (verneedOffset !== null) cursor = verneedOffset + needs.reduce((n, e) => n + 16 + 16 * e.versions.length, 0);
  const verdefOffset = defs.length > 0 ? align(cursor, 4) : null;
  if (verdefOffset !== null) cursor = verdefOffset + defs.reduce((n, d) => n + 20 + 8 * (1 + (d.parents?.length ?? 0)), 0);
  if (verneedOffset !== null) dyn.push({ tag: DT_VERNEED, value: BASE_VADDR + verneedOffset }, { tag: DT_VERNEEDNUM, value: needs.length });
  if (verdefOffset !== null) dyn.push({ tag: DT_VERDEF, value: BASE_VADDR + verdefOffset }, { tag: DT_VERDEFNUM, value: defs.length });
  dyn.push({ tag: DT_STRTAB, value: strtabVaddr }, { tag: DT_STRSZ, value: strtabBytes.length }, { tag: DT_NULL, value: 0 });

  const dynEntSize = 2 * wordSize;
  const dynamicOffset = withDynamic ? align(cursor, wordSize) : null;
  if (dynamicOffset !== null) cursor = dynamicOffset + dyn.length * dynEntSize;

  // Section names and headers come last, outside nothing the reader needs.
  const sectionNames = ['', ...(hasInterp ? ['.interp'] : []), '.dynstr', ...(verneedOffset !== null ? ['.gnu.version_r'] : []), ...(verdefOffset !== null ? ['.gnu.version_d'] : []), ...(withDynamic ? ['.dynamic'] : []), '.shstrtab'];
  const shstrtab = new StringTableBuilder();
  const nameOffsets = sectionNames.map((n) => (n === '' ? 0 : shstrtab.add(n)));
  const shstrtabBytes = spec.sections === true ? shstrtab.bytes() : Buffer.alloc(0);
  const shstrtabOffset = cursor;
  cursor += shstrtabBytes.length;
  const shoff = spec.sections === true ? align(cursor, wordSize) : 0;
  if (spec.sections === true) cursor = shoff + sectionNames.length * shentsize;

  const fileSize = cursor;
  const buf = Buffer.alloc(fileSize);
  const w = new FieldWriter(buf, spec.endian === 'little');
  const fields = headerFields(spec.class);

  // ELF header.
  buf.set([0x7f, 0x45, 0x4c, 0x46], 0);
  w.u8(4, is64 ? 2 : 1); // EI_CLASS
  w.u8(5, spec.endian === 'little' ? 1 : 2); // EI_DATA
  w.u8(6, 1); // EI_VERSION
  w.u16(16, spec.type ?? ET_DYN);
  w.u16(18, spec.machine ?? 62);
  w.u32(fields.version, 1);
  w.word(24, 0, wordSize); // e_entry
  w.word(fields.phoff, phoff, wordSize);
  w.word(fields.shoff, shoff, wordSize);
  w.u32(is64 ? 48 : 36, 0); // e_flags
  w.u16(is64 ? 52 : 40, ehsize);
  w.u16(fields.phentsize, phentsize);
  w.u16(fields.phnum, phnum);
  w.u16(fields.shentsize, spec.sections === true ? shentsize : 0);
  w.u16(fields.shnum, spec.sections === true ? sectionNames.length : 0);
  w.u16(fields.shstrndx, spec.sections === true ? sectionNames.length - 1 : 0);

  // Program headers.
  const pf = phdrFields(spec.class);
  const PF_R = 4;
  const PF_W = 2;
  let ph = phoff;
  // p_paddr is left 0 and PT_LOAD gets a .bss tail (memsz > filesz), so a reader
  // that takes p_paddr for p_vaddr or p_memsz for p_filesz fails the tests.
  const writePhdr = (type: number, flags: number, offset: number, size: number, alignment: number, bss = 0): number => {
    const at = ph;
    w.u32(at + pf.type, type);
    w.u32(at + pf.flags, flags);
    w.word(at + pf.offset, offset, wordSize);
    w.word(at + pf.vaddr, BASE_VADDR + offset, wordSize);
    w.word(at + pf.paddr, 0, wordSize);
    w.word(at + pf.filesz, size, wordSize);
    w.word(at + pf.memsz, size + bss, wordSize);
    w.word(at + pf.align, alignment, wordSize);
    ph += phentsize;
    return at;
  };
  // PT_INTERP must precede PT_LOAD (System V ABI), so readelf does not complain.
  const interpPhdr = interpOffset !== null ? writePhdr(PT_INTERP, PF_R, interpOffset, interpBytes.length, 1) : null;
  const loadPhdr = writePhdr(PT_LOAD, PF_R | PF_W, 0, fileSize, 0x1000, 0x100);
  const dynamicPhdr = dynamicOffset !== null ? writePhdr(PT_DYNAMIC, PF_R | PF_W, dynamicOffset, dyn.length * dynEntSize, wordSize) : null;

  if (interpOffset !== null) interpBytes.copy(buf, interpOffset);
  strtabBytes.copy(buf, strtabOffset);
  const nameAt = (t: string): number => strtab.add(t);
  if (verneedOffset !== null) {
    let at = verneedOffset;
    needs.forEach((n, i) => {
      const size = 16 + 16 * n.versions.length;
      w.u16(at, 1);
      w.u16(at + 2, n.versions.length);
      w.u32(at + 4, nameAt(n.file));
      w.u32(at + 8, 16);
      w.u32(at + 12, i === needs.length - 1 ? 0 : size);
      n.versions.forEach((v, k) => {
        const aux = at + 16 + 16 * k;
        w.u32(aux, elfHash(v.name));
        w.u16(aux + 4, v.flags ?? 0);
        w.u16(aux + 6, v.index);
        w.u32(aux + 8, nameAt(v.name));
        w.u32(aux + 12, k === n.versions.length - 1 ? 0 : 16);
      });
      at += size;
    });
  }
  if (verdefOffset !== null) {
    let at = verdefOffset;
    defs.forEach((d, i) => {
      const names = [d.name, ...(d.parents ?? [])];
      const size = 20 + 8 * names.length;
      w.u16(at, 1);
      w.u16(at + 2, d.flags ?? 0);
      w.u16(at + 4, d.index);
      w.u16(at + 6, names.length);
      w.u32(at + 8, elfHash(d.name));
      w.u32(at + 12, 20);
      w.u32(at + 16, i === defs.length - 1 ? 0 : size);
      names.forEach((t, k) => {
        w.u32(at + 20 + 8 * k, nameAt(t));
        w.u32(at + 20 + 8 * k + 4, k === names.length - 1 ? 0 : 8);
      });
      at += size;
    });
  }

  const dynamicEntries: DynamicEntry[] = [];
  if (dynamicOffset !== null) {
    dyn.forEach((e, i) => {
      const at = dynamicOffset + i * dynEntSize;
      w.word(at, e.tag, wordSize);
      w.word(at + wordSize, e.value, wordSize);
      dynamicEntries.push({ tag: e.tag, value: e.value, offset: at });
    });
  }

  if (spec.sections === true) {
    shstrtabBytes.copy(buf, shstrtabOffset);
    const SHT_PROGBITS = 1;
    const SHT_STRTAB = 3;
    const SHT_DYNAMIC = 6;
    const SHF_WRITE = 1;
    const SHF_ALLOC = 2;
    const dynstrIndex = sectionNames.indexOf('.dynstr');
    const writeShdr = (index: number, s: { type: number; flags: number; offset: number; addr: number; size: number; link: number; align: number; entsize: number; info?: number }): void => {
      const at = shoff + index * shentsize;
      const name = nameOffsets[index] ?? 0;
      w.u32(at, name);
      w.u32(at + 4, s.type);
      if (is64) {
        w.u64(at + 8, s.flags);
        w.u64(at + 16, s.addr);
        w.u64(at + 24, s.offset);
        w.u64(at + 32, s.size);
        w.u32(at + 40, s.link);
        w.u32(at + 44, s.info ?? 0);
        w.u64(at + 48, s.align);
        w.u64(at + 56, s.entsize);
      } else {
        w.u32(at + 8, s.flags);
        w.u32(at + 12, s.addr);
        w.u32(at + 16, s.offset);
        w.u32(at + 20, s.size);
        w.u32(at + 24, s.link);
        w.u32(at + 28, s.info ?? 0);
        w.u32(at + 32, s.align);
        w.u32(at + 36, s.entsize);
      }
    };
    sectionNames.forEach((name, index) => {
      if (name === '.interp' && interpOffset !== null) {
        writeShdr(index, { type: SHT_PROGBITS, flags: SHF_ALLOC, offset: interpOffset, addr: BASE_VADDR + interpOffset, size: interpBytes.length, link: 0, align: 1, entsize: 0 });
      } else if (name === '.dynstr') {
        writeShdr(index, { type: SHT_STRTAB, flags: SHF_ALLOC, offset: strtabOffset, addr: strtabVaddr, size: strtabBytes.length, link: 0, align: 1, entsize: 0 });
      } else if (name === '.gnu.version_r' && verneedOffset !== null) {
        writeShdr(index, { type: 0x6ffffffe, flags: SHF_ALLOC, offset: verneedOffset, addr: BASE_VADDR + verneedOffset, size: needs.reduce((n, e) => n + 16 + 16 * e.versions.length, 0), link: dynstrIndex, align: 4, entsize: 0, info: needs.length });
      } else if (name === '.gnu.version_d' && verdefOffset !== null) {
        writeShdr(index, { type: 0x6ffffffd, flags: SHF_ALLOC, offset: verdefOffset, addr: BASE_VADDR + verdefOffset, size: defs.reduce((n, d) => n + 20 + 8 * (1 + (d.parents?.length ?? 0)), 0), link: dynstrIndex, align: 4, entsize: 0, info: defs.length });
      } else if (name === '.dynamic' && dynamicOffset !== null) {
        writeShdr(index, { type: SHT_DYNAMIC, flags: SHF_ALLOC | SHF_WRITE, offset: dynamicOffset, addr: BASE_VADDR + dynamicOffset, size: dyn.length * dynEntSize, link: dynstrIndex, align: wordSize, entsize: dynEntSize });
      } else if (name === '.shstrtab') {
        writeShdr(index, { type: SHT_STRTAB, flags: 0, offset: shstrtabOffset, addr: 0, size: shstrtabBytes.length, link: 0, align: 1, entsize: 0 });
      }
      // Index 0 is the all-zero SHT_NULL header, already zero.
    });
  }

  return {
    bytes: buf,
    class: spec.class,
    endian: spec.endian,
    wordSize,
    ehsize,
    phoff,
    phentsize,
    loadPhdr,
    dynamicPhdr,
    interpPhdr,
    interpOffset,
    strtabOffset,
    strtabVaddr,
    strtabSize: strtabBytes.length,
    dynamicOffset,
    dynamicEntries,
    verneedOffset,
    verdefOffset,
    shoff,
    fields,
  };
}

/**
 * Overwrites fields of a built ELF file in its own byte order, for corrupting
 * exactly one structure in a test.
 *
 * @example
 * patch(elf).word(elf.fields.phoff, 1n << 60n);
 */
export function patch(elf: BuiltElf): { u8(at: number, v: number): void; u16(at: number, v: number): void; u32(at: number, v: number): void; word(at: number, v: number | bigint): void } {
  const w = new FieldWriter(elf.bytes, elf.endian === 'little');
  return {
    u8: (at, v) => w.u8(at, v),
    u16: (at, v) => w.u16(at, v),
    u32: (at, v) => w.u32(at, v),
    word: (at, v) => w.word(at, v, elf.wordSize),
  };
}

/** The dynamic entry with `tag` (the first one), or a thrown Error naming the tag. */
export function dynamicEntry(elf: BuiltElf, tag: number): DynamicEntry {
  const e = elf.dynamicEntries.find((d) => d.tag === tag);
  if (e === undefined) throw new Error(`the built ELF file has no dynamic entry with tag ${tag}`);
  return e;
}

/**
 * Reads what dlbundle needs from an ELF file: identity (class, byte order,
 * type, machine), PT_INTERP, the dynamic section's DT_NEEDED, DT_SONAME,
 * DT_RUNPATH and DT_RPATH, and the symbol versions a file needs and defines
 * (`.gnu.version_r` / `.gnu.version_d`, found through DT_VERNEED and
 * DT_VERDEF as ld.so finds them). No I/O: the bytes come from a Buffer or from a
 * caller-supplied random-access reader, so a 100 MB library costs a few reads.
 *
 * Validation follows a fixed order (magic, class, byte order, version, file
 * header, program headers, dynamic segment), and every offset, count and size
 * is checked against the input before anything is read.
 */
import { DlbundleError } from '../errors';
import { bufferSource, ByteReader, hex, type ByteSource, type FormatErrors } from './byte-reader';

export { bufferSource };

/** Random access to the bytes of one file (the one kind of source every format's reader takes). */
export type ElfByteSource = ByteSource;

/** The file types of `e_type`, by name. */
export type ElfType = 'none' | 'rel' | 'exec' | 'dyn' | 'core' | 'other';

/** What the reader learned about one ELF file. */
export interface ElfInfo {
  /** 32 or 64 (EI_CLASS). */
  readonly class: 32 | 64;
  /** Byte order (EI_DATA). */
  readonly endian: 'little' | 'big';
  /** `e_type` by name; `dyn` for shared objects and PIE executables. */
  readonly type: ElfType;
  /** `e_machine` by name (`x86_64`, `aarch64`, …), or `em_<number>` when unknown. */
  readonly machine: string;
  /** The raw `e_machine` value. */
  readonly machineCode: number;
  /** The program interpreter (PT_INTERP), or null. */
  readonly interp: string | null;
  /** DT_SONAME, or null. */
  readonly soname: string | null;
  /** DT_NEEDED entries in file order. */
  readonly needed: readonly string[];
  /** DT_RUNPATH directories in file order (each entry split at `:`). */
  readonly runpath: readonly string[];
  /** DT_RPATH directories in file order (each entry split at `:`). */
  readonly rpath: readonly string[];
}

const ELF_MAGIC = [0x7f, 0x45, 0x4c, 0x46] as const;

// e_machine values (from the System V ABI and <elf.h>), named the way
// `uname -m` and readelf's users know them.
const MACHINES: Readonly<Record<number, string>> = {
  2: 'sparc',
  3: 'i386',
  4: 'm68k',
  8: 'mips',
  20: 'ppc',
  21: 'ppc64',
  22: 's390',
  40: 'arm',
  43: 'sparcv9',
  50: 'ia64',
  62: 'x86_64',
  183: 'aarch64',
  243: 'riscv',
  258: 'loongarch',
};

const TYPES: readonly ElfType[] = ['none', 'rel', 'exec', 'dyn', 'core'];

/** Program header types (p_type) that dlbundle reads or writes. */
export const PT_LOAD = 1;
export const PT_DYNAMIC = 2;
export const PT_INTERP = 3;
export const PT_NOTE = 4;
export const PT_PHDR = 6;

const DT_NULL = 0;
const DT_NEEDED = 1;
const DT_STRTAB = 5;
const DT_STRSZ = 10;
const DT_SONAME = 14;
const DT_RPATH = 15;
const DT_RUNPATH = 29;
// DT_VERDEFNUM (0x6ffffffd) and DT_VERNEEDNUM (0x6fffffff) are not read: ld.so does not.
const DT_VERDEF = 0x6ffffffc;
const DT_VERNEED = 0x6ffffffe;

// e_phnum's escape value: the real count is in section header 0's sh_info.
const PN_XNUM = 0xffff;

// Upper bound on how much of a string table is read at once when DT_STRSZ is
// absent; real tables are a few KB, this stops a corrupt file from forcing a
// read of gigabytes.
const MAX_STRTAB = 64 * 1024 * 1024;

/**
 * Reads the identity and dynamic-linking facts of an ELF file.
 * Throws `E_NOT_ELF` when the magic number is absent and `E_BAD_ELF` (with the
 * byte offset) for any inconsistent or truncated structure.
 *
 * @example
 * const { soname, needed } = readElf(fs.readFileSync('libdemo_codec.so.1.2.3'), 'libdemo_codec.so.1.2.3');
 * // soname === 'libdemo_codec.so.1', needed includes 'libdemo_core.so'
 */
export function readElf(input: Uint8Array | ElfByteSource, file = '<buffer>'): ElfInfo {
  const src = input instanceof Uint8Array ? bufferSource(input) : input;
  const r = new Reader(src, file);
  const header = readHeader(r);
  const phdrs = readProgramHeaders(r, header);
  const interp = readInterp(r, phdrs);
  const dyn = readDynamic(r, header, phdrs);
  return {
    class: header.is64 ? 64 : 32,
    endian: r.little ? 'little' : 'big',
    type: TYPES[header.type] ?? 'other',
    machine: machineName(header.machine),
    machineCode: header.machine,
    interp,
    ...dyn,
  };
}

/** `vd_flags` / `vna_flags` bits: the definition that names the file itself, and a need ld.so may leave unmet. */
export const VER_FLG_BASE = 1;
export const VER_FLG_WEAK = 2;

/** One version a file needs from a library: an auxiliary entry of `.gnu.version_r`. */
export interface NeededVersion {
  /** The version's name (vna_name), e.g. `GLIBC_2.34`. */
  readonly name: string;
  /** vna_flags; {@link VER_FLG_WEAK} marks a version whose absence ld.so tolerates. */
  readonly flags: number;
  /** vna_other: the index `.gnu.version` gives symbols of this version. */
  readonly index: number;
}

/** The versions a file needs from one library: an entry of `.gnu.version_r`. */
export interface VersionNeed {
  /** The library (vn_file): a DT_NEEDED name such as `libc.so.6`. */
  readonly file: string;
  readonly versions: readonly NeededVersion[];
}

/** One version a file defines: an entry of `.gnu.version_d`. */
export interface VersionDefinition {
  /** Its name (the first vda_name), e.g. `GLIBC_2.36`; the file's soname for the {@link VER_FLG_BASE} entry. */
  readonly name: string;
  /** vd_flags. */
  readonly flags: number;
  /** vd_ndx: the index `.gnu.version` gives its symbols. */
  readonly index: number;
  /** The names of the further vda entries (the versions it inherits from). */
  readonly parents: readonly string[];
}

/** The symbol versions of a file: what it needs (DT_VERNEED) and what it defines (DT_VERDEF). */
export interface SymbolVersions {
  readonly needed: readonly VersionNeed[];
  readonly defined: readonly VersionDefinition[];
}

/**
 * The symbol versions a file needs and defines, found through the dynamic
 * section (DT_VERNEED, DT_VERDEF, DT_STRTAB) as ld.so finds them, so stripped
 * files read the same. The lists are walked as ld.so walks them, by their
 * next offsets until one is 0 (the counts DT_VERNEEDNUM, DT_VERDEFNUM and
 * vn_cnt are for tools; ld.so does not read them), at most
 * {@link MAX_VERSION_ENTRIES} entries. A file without them has empty lists.
 * Throws `E_NOT_ELF` / `E_BAD_ELF` (with the byte offset) like {@link readElf}.
 *
 * @example
 * readSymbolVersions(fs.readFileSync('libfoo.so')).needed
 * // [{ file: 'libc.so.6', versions: [{ name: 'GLIBC_2.34', flags: 0, index: 2 }, …] }]
 */
export function readSymbolVersions(input: Uint8Array | ElfByteSource, file = '<buffer>'): SymbolVersions {
  const src = input instanceof Uint8Array ? bufferSource(input) : input;
  const r = new Reader(src, file);
  const header = readHeader(r);
  const phdrs = readProgramHeaders(r, header);
  const dyn = readDynamicArray(r, header, phdrs);
  if (dyn === null) return { needed: [], defined: [] };
  const verneed = dyn.entries.find((e) => e.tag === DT_VERNEED);
  const verdef = dyn.entries.find((e) => e.tag === DT_VERDEF);
  if (verneed === undefined && verdef === undefined) return { needed: [], defined: [] };
  const strings = dynamicStrings(r, phdrs, dyn, VERSION_WINDOW, true);
  const budget = { left: MAX_VERSION_ENTRIES };
  return {
    needed: verneed === undefined ? [] : readVersionNeeds(r, phdrs, verneed, strings, budget),
    defined: verdef === undefined ? [] : readVersionDefinitions(r, phdrs, verdef, strings, budget),
  };
}

/**
 * The ELF hashes (vd_hash) of every symbol version the file defines
 * (`.gnu.version_d`): what ld.so compares first when it looks a needed
 * version up. No name is read, so this is the cheapest way to learn, once per
 * file, whether it defines a version: `versionHashes(src).has(elfHash('GLIBC_2.34'))`.
 * Two names with one hash are told apart by ld.so by name; here they are not
 * (see {@link readSymbolVersions} for the names). Throws `E_NOT_ELF` /
 * `E_BAD_ELF` like {@link readElf}.
 *
 * @example
 * versionHashes(libcSource).has(elfHash('GLIBC_2.34')) // true on glibc 2.34 and later
 */
export function versionHashes(input: Uint8Array | ElfByteSource, file = '<buffer>'): ReadonlySet<number> {
  const src = input instanceof Uint8Array ? bufferSource(input) : input;
  const r = new Reader(src, file);
  const header = readHeader(r);
  const phdrs = readProgramHeaders(r, header);
  const verdef = readDynamicArray(r, header, phdrs)?.entries.find((e) => e.tag === DT_VERDEF);
  const hashes = new Set<number>();
  if (verdef !== undefined) {
    walkVersionDefinitions(r, phdrs, verdef, { left: MAX_VERSION_ENTRIES }, (v) => hashes.add(r.u32(v, 8)));
  }
  return hashes;
}

/**
 * Only the program interpreter (PT_INTERP), without reading the dynamic
 * section: what libc detection needs from `/proc/self/exe`.
 *
 * @example
 * readInterpreter(exeSource) // '/lib64/ld-linux-x86-64.so.2'
 */
export function readInterpreter(input: Uint8Array | ElfByteSource, file = '<buffer>'): string | null {
  const src = input instanceof Uint8Array ? bufferSource(input) : input;
  const r = new Reader(src, file);
  return readInterp(r, readProgramHeaders(r, readHeader(r)));
}

/** The layout facts of an ELF file: what a tool that edits its segments needs. */
export interface ElfLayout {
  readonly class: 32 | 64;
  readonly endian: 'little' | 'big';
  readonly type: ElfType;
  readonly machine: string;
  /** e_phoff and the size of one entry (e_phentsize). */
  readonly phoff: number;
  readonly phentsize: number;
  /** The program headers in table order, each checked to lie inside the file when it is loadable. */
  readonly segments: readonly ProgramHeader[];
}

/**
 * The ELF header's layout fields and every program header, validated like
 * {@link readElf} (E_NOT_ELF, E_BAD_ELF with the byte offset).
 *
 * @example
 * readLayout(exeSource).segments.filter((s) => s.type === 1) // the PT_LOADs
 */
export function readLayout(input: Uint8Array | ElfByteSource, file = '<buffer>'): ElfLayout {
  const src = input instanceof Uint8Array ? bufferSource(input) : input;
  const r = new Reader(src, file);
  const header = readHeader(r);
  return {
    class: header.is64 ? 64 : 32,
    endian: r.little ? 'little' : 'big',
    type: TYPES[header.type] ?? 'other',
    machine: machineName(header.machine),
    phoff: header.phoff,
    phentsize: header.phentsize,
    segments: readProgramHeaders(r, header),
  };
}

/**
 * Only the DT_NEEDED entries; an ELF file without a dynamic section has none.
 *
 * @example
 * neededLibraries(buf) // ['libdemo_core.so', 'libc.so.6']
 */
export function neededLibraries(input: Uint8Array | ElfByteSource, file?: string): readonly string[] {
  return readElf(input, file).needed;
}

/**
 * Only DT_SONAME, or null when the file declares none.
 *
 * @example
 * sonameOf(buf) // 'libdemo_codec.so.1'
 */
export function sonameOf(input: Uint8Array | ElfByteSource, file?: string): string | null {
  return readElf(input, file).soname;
}

/**
 * The name of an `e_machine` value, `em_<n>` when it is not one dlbundle knows.
 *
 * @example
 * machineName(62) // 'x86_64'
 */
export function machineName(code: number): string {
  return MACHINES[code] ?? `em_${code}`;
}

const ELF_ERRORS: FormatErrors = { code: 'E_BAD_ELF', name: 'ELF' };

/** Bounds-checked reads in the file's byte order, failing with E_BAD_ELF. */
class Reader extends ByteReader {
  constructor(src: ElfByteSource, file: string) {
    super(src, file, ELF_ERRORS);
  }

  /** Any non-negative offset itself, even past the end: ELF's reports have always named it. */
  protected override reportedOffset(offset: number, at: number): number {
    return Number.isSafeInteger(offset) && offset >= 0 ? offset : at;
  }

  /** An address-sized field: 4 bytes in ELF32, 8 in ELF64. */
  word(v: DataView, at: number, is64: boolean): number {
    return is64 ? this.u64(v, at) : this.u32(v, at);
  }
}

interface Header {
  readonly is64: boolean;
  readonly type: number;
  readonly machine: number;
  readonly phoff: number;
  readonly phentsize: number;
  readonly phnum: number;
}

function readHeader(r: Reader): Header {
  const size = r.src.size;
  const ident = r.src.read(0, Math.min(16, size));
  if (ident.length < 4 || ELF_MAGIC.some((b, i) => ident[i] !== b)) {
    throw new DlbundleError(
      'E_NOT_ELF',
      `${JSON.stringify(r.file)} is not an ELF file (it does not start with 0x7f "ELF").`,
      'Pass shared objects (.so files or .node addons) built for Linux; scripts, archives and linker scripts cannot be loaded.',
      { file: r.file, offset: 0 },
    );
  }
  if (ident.length < 16) r.fail(ident.length, 'the ELF identification is truncated');
  const cls = ident[4];
  if (cls !== 1 && cls !== 2) r.fail(4, `invalid class ${cls}`);
  const data = ident[5];
  if (data !== 1 && data !== 2) r.fail(5, `invalid byte order ${data}`);
  r.little = data === 1;
  if (ident[6] !== 1) r.fail(6, `unknown ELF version ${ident[6]}`);

  const is64 = cls === 2;
  const ehsize = is64 ? 64 : 52;
  const h = r.view(0, ehsize, 'the ELF header');
  const version = r.u32(h, 20);
  if (version !== 1) r.fail(20, `unknown e_version ${version}`);
  const phoff = r.word(h, is64 ? 32 : 28, is64);
  const phentsize = r.u16(h, is64 ? 54 : 42);
  let phnum = r.u16(h, is64 ? 56 : 44);
  if (phnum === PN_XNUM) phnum = extendedPhnum(r, h, is64);
  if (phnum > 0 && phentsize !== (is64 ? 56 : 32)) r.fail(is64 ? 54 : 42, `invalid e_phentsize ${phentsize}`);
  return { is64, type: r.u16(h, 16), machine: r.u16(h, 18), phoff, phentsize, phnum };
}

// With more than 0xfffe program headers, the count lives in sh_info of section 0.
function extendedPhnum(r: Reader, h: DataView, is64: boolean): number {
  const shoff = r.word(h, is64 ? 40 : 32, is64);
  if (shoff === 0) r.fail(is64 ? 56 : 44, 'e_phnum is PN_XNUM but there is no section header');
  const sh0 = r.view(shoff, is64 ? 64 : 40, 'section header 0', is64 ? 40 : 32);
  return r.u32(sh0, is64 ? 44 : 28);
}

/** One program header, every field (64-bit values past 2^53 read as Infinity). */
export interface ProgramHeader {
  readonly type: number;
  readonly flags: number;
  readonly offset: number;
  readonly vaddr: number;
  readonly paddr: number;
  readonly filesz: number;
  readonly memsz: number;
  readonly align: number;
  /** Its index in the table, and the file offset of the header itself. */
  readonly index: number;
  readonly at: number;
}

function readProgramHeaders(r: Reader, h: Header): ProgramHeader[] {
  if (h.phnum === 0) return [];
  const table = r.view(h.phoff, h.phnum * h.phentsize, `the table of ${h.phnum} program headers`, h.is64 ? 32 : 28);
  const out: ProgramHeader[] = [];
  for (let i = 0; i < h.phnum; i++) {
    const base = i * h.phentsize;
    const at = h.phoff + base;
    // ELF64 moves p_flags before p_offset; the field order differs, not just the widths.
    const ph = h.is64
      ? { type: r.u32(table, base), flags: r.u32(table, base + 4), offset: r.u64(table, base + 8), vaddr: r.u64(table, base + 16), paddr: r.u64(table, base + 24), filesz: r.u64(table, base + 32), memsz: r.u64(table, base + 40), align: r.u64(table, base + 48), index: i, at }
      : { type: r.u32(table, base), offset: r.u32(table, base + 4), vaddr: r.u32(table, base + 8), paddr: r.u32(table, base + 12), filesz: r.u32(table, base + 16), memsz: r.u32(table, base + 20), flags: r.u32(table, base + 24), align: r.u32(table, base + 28), index: i, at };
    if (ph.type === PT_LOAD || ph.type === PT_DYNAMIC || ph.type === PT_INTERP) {
      if (ph.offset + ph.filesz > r.src.size) r.fail(at, `segment ${i} (file offset ${hex(ph.offset)}, ${hex(ph.filesz)} bytes) extends past the end of the file`);
    }
    out.push(ph);
  }
  return out;
}

function readInterp(r: Reader, phdrs: readonly ProgramHeader[]): string | null {
  const ph = phdrs.find((p) => p.type === PT_INTERP);
  if (ph === undefined) return null;
  const v = r.view(ph.offset, ph.filesz, 'the PT_INTERP segment');
  const bytes = new Uint8Array(v.buffer, v.byteOffset, v.byteLength);
  const end = bytes.indexOf(0);
  if (end < 0) r.fail(ph.offset, 'the PT_INTERP string is not NUL-terminated');
  return Buffer.from(bytes.buffer, bytes.byteOffset, end).toString('utf8');
}

interface DynamicFacts {
  soname: string | null;
  needed: string[];
  runpath: string[];
  rpath: string[];
}

/** The dynamic array as ld.so sees it: every entry up to DT_NULL, with the file offset of each. */
interface DynamicArray {
  readonly segment: ProgramHeader;
  readonly entries: readonly { readonly tag: number; readonly value: number; readonly at: number }[];
}

function readDynamicArray(r: Reader, h: Header, phdrs: readonly ProgramHeader[]): DynamicArray | null {
  const dynamic = phdrs.find((p) => p.type === PT_DYNAMIC);
  if (dynamic === undefined) return null;
  const entsize = h.is64 ? 16 : 8;
  const count = Math.floor(dynamic.filesz / entsize);
  const v = r.view(dynamicOffset(r, phdrs, dynamic, count * entsize), count * entsize, 'the dynamic segment');
  const entries: { tag: number; value: number; at: number }[] = [];
  for (let i = 0; i < count; i++) {
    const tag = r.word(v, i * entsize, h.is64);
    if (tag === DT_NULL) break;
    entries.push({ tag, value: r.word(v, i * entsize + entsize / 2, h.is64), at: dynamic.offset + i * entsize });
  }
  return { segment: dynamic, entries };
}

function readDynamic(r: Reader, h: Header, phdrs: readonly ProgramHeader[]): DynamicFacts {
  const facts: DynamicFacts = { soname: null, needed: [], runpath: [], rpath: [] };
  const dyn = readDynamicArray(r, h, phdrs);
  if (dyn === null) return facts;
  const strings = dyn.entries.filter((e) => e.tag === DT_NEEDED || e.tag === DT_SONAME || e.tag === DT_RPATH || e.tag === DT_RUNPATH);
  if (strings.length === 0) return facts;
  const table = dynamicStrings(r, phdrs, dyn, STRING_WINDOW, false);
  for (const s of strings) {
    const text = table.at(s.value);
    if (text === undefined || text === null) r.fail(s.at, `dynamic string offset ${hex(s.value)} is outside the ${table.size}-byte string table`);
    if (s.tag === DT_NEEDED) facts.needed.push(text);
    else if (s.tag === DT_SONAME) facts.soname = text;
    else if (s.tag === DT_RUNPATH) facts.runpath.push(...text.split(':'));
    else facts.rpath.push(...text.split(':'));
  }
  return facts;
}

/** The string table DT_STRTAB (and DT_STRSZ) of a dynamic array name; E_BAD_ELF when there is none. */
function dynamicStrings(r: Reader, phdrs: readonly ProgramHeader[], dyn: DynamicArray, window: number, cached: boolean): StringTable {
  let strtab = -1;
  let strsz = -1;
  for (const e of dyn.entries) {
    if (e.tag === DT_STRTAB) strtab = e.value;
    else if (e.tag === DT_STRSZ) strsz = e.value;
  }
  if (strtab < 0) r.fail(dyn.segment.offset, 'the dynamic segment names strings but has no DT_STRTAB');
  return readStringTable(r, phdrs, strtab, strsz, dyn.segment.offset, window, cached);
}

// The smallest page size of any Linux port: segments are mapped at least this coarsely.
const MIN_PAGE = 0x1000;

/**
 * Where the dynamic array that ld.so uses is in the file. ld.so finds it by
 * PT_DYNAMIC's p_vaddr in the mapped image, never by its p_offset; a file
 * whose two values disagree would have the reader list other DT_NEEDED
 * entries than the ones loaded, so it is refused, as is one whose address is
 * not plainly file-backed by a single PT_LOAD (a later segment's pages, mapped
 * over an earlier one, could hold other bytes there).
 */
function dynamicOffset(r: Reader, phdrs: readonly ProgramHeader[], dynamic: ProgramHeader, length: number): number {
  const { vaddr } = dynamic;
  const ph = `PT_DYNAMIC (program header ${dynamic.index})`;
  const loads = phdrs.filter((p) => p.type === PT_LOAD);
  const load = loads.find((p) => vaddr >= p.vaddr && vaddr + length <= p.vaddr + p.filesz);
  if (load === undefined) {
    r.fail(dynamic.at, `${ph} p_vaddr ${hex(vaddr)} (${hex(length)} bytes) is not inside the file-backed part of any PT_LOAD segment`);
  }
  const mapped = load.offset + (vaddr - load.vaddr);
  if (mapped !== dynamic.offset) {
    r.fail(dynamic.at, `${ph} p_offset ${hex(dynamic.offset)} disagrees with its p_vaddr ${hex(vaddr)}, which PT_LOAD segment ${load.index} maps from file offset ${hex(mapped)}`);
  }
  for (const other of loads) {
    if (other === load || other.vaddr - other.offset === load.vaddr - load.offset) continue;
    const page = Number.isFinite(other.align) && other.align > MIN_PAGE ? other.align : MIN_PAGE;
    const start = Math.floor(other.vaddr / page) * page;
    const end = Math.ceil((other.vaddr + other.memsz) / page) * page;
    if (start < vaddr + length && vaddr < end) {
      r.fail(dynamic.at, `${ph} p_vaddr ${hex(vaddr)} is mapped by both PT_LOAD segment ${load.index} and the pages of PT_LOAD segment ${other.index}, from different file offsets`);
    }
  }
  return mapped;
}

interface StringTable {
  readonly size: number;
  /**
   * The NUL-terminated string at `offset`, or undefined when it is not inside
   * the table; null when no NUL ends it within `limit` bytes.
   */
  at(offset: number, limit?: number): string | null | undefined;
}

// Strings are read one at a time, in small windows: a process's own table can
// be megabytes (node exports all of V8), and only a handful of names are wanted.
const STRING_WINDOW = 256;

// DT_STRTAB is a virtual address; the PT_LOAD segment that maps it tells where
// those bytes are in the file. Section headers are not consulted, so stripped
// files (no section table) read the same. Each string is read in windows of
// `window` bytes from where it starts; with `cached`, windows are aligned
// blocks kept for the next string (version names sit together in the table,
// so a library's forty of them cost one or two reads).
function readStringTable(r: Reader, phdrs: readonly ProgramHeader[], vaddr: number, strsz: number, dynOffset: number, window = STRING_WINDOW, cached = false): StringTable {
  const load = phdrs.find((p) => p.type === PT_LOAD && vaddr >= p.vaddr && vaddr < p.vaddr + p.filesz);
  if (load === undefined) r.fail(dynOffset, `DT_STRTAB address ${hex(vaddr)} is not inside any loaded segment`);
  const offset = load.offset + (vaddr - load.vaddr);
  const available = load.offset + load.filesz - offset;
  const size = strsz >= 0 ? strsz : Math.min(available, MAX_STRTAB);
  if (size > available) r.fail(dynOffset, `DT_STRSZ ${hex(strsz)} runs past the segment that holds the string table`);
  const blocks = new Map<number, Buffer>();
  const block = (from: number): Buffer => {
    let bytes = cached ? blocks.get(from) : undefined;
    if (bytes === undefined) {
      const v = r.view(offset + from, Math.min(window, size - from), 'the dynamic string table');
      bytes = Buffer.from(v.buffer, v.byteOffset, v.byteLength);
      if (cached) {
        if (blocks.size >= MAX_CACHED_BLOCKS) blocks.delete(blocks.keys().next().value as number);
        blocks.set(from, bytes);
      }
    }
    return bytes;
  };
  return {
    size,
    at(pos, limit = Infinity) {
      if (pos < 0 || pos >= size) return undefined;
      const parts: Buffer[] = [];
      for (let from = cached ? pos - (pos % window) : pos, skip = pos - from; from < size; from += window, skip = 0) {
        if (from - pos > limit) return null;
        const bytes = block(from);
        const end = bytes.indexOf(0, skip);
        if (end >= 0 && from + end - pos > limit) return null;
        // The common case, a string inside one window, is decoded in place.
        if (end >= 0 && parts.length === 0) return bytes.toString('utf8', skip, end);
        parts.push(bytes.subarray(skip, end < 0 ? bytes.length : end));
        if (end >= 0) return Buffer.concat(parts).toString('utf8');
      }
      return undefined;
    },
  };
}

// How many blocks a cached string table or version window keeps: enough for
// every version name of a library, little memory for a damaged one.
const MAX_CACHED_BLOCKS = 16;

/**
 * The most entries (version-needed or -definition entries and their
 * auxiliary entries, together) read from one file. Real libraries have tens
 * (glibc's libc.so.6 defines about 45 versions); next offsets as small as 1
 * could otherwise make a damaged file of a few megabytes list millions.
 */
export const MAX_VERSION_ENTRIES = 4096;

// Version tables are read in blocks of this size: libc.so.6's definitions
// (≈ 1.6 KiB) take one read.
const VERSION_WINDOW = 4096;

/** Reads inside the file-backed part of one PT_LOAD segment, in cached blocks. */
class SegmentWindow {
  private readonly blocks = new Map<number, DataView>();

  constructor(
    private readonly r: Reader,
    private readonly load: ProgramHeader,
  ) {}

  /** `length` bytes at file offset `offset`; E_BAD_ELF at `at` (the field that pointed there) when they leave the segment. */
  view(offset: number, length: number, what: string, at: number): DataView {
    const lo = this.load.offset;
    const hi = lo + this.load.filesz;
    if (offset < lo || offset + length > hi) {
      this.r.fail(at, `${what} (${length} bytes at ${hex(offset)}) is not inside PT_LOAD segment ${this.load.index} (file offsets ${hex(lo)} to ${hex(hi)})`);
    }
    const start = offset - ((offset - lo) % VERSION_WINDOW);
    if (offset + length > start + VERSION_WINDOW) return this.r.view(offset, length, what);
    let block = this.blocks.get(start);
    if (block === undefined) {
      block = this.r.view(start, Math.min(VERSION_WINDOW, hi - start), what);
      if (this.blocks.size >= MAX_CACHED_BLOCKS) this.blocks.delete(this.blocks.keys().next().value as number);
      this.blocks.set(start, block);
    }
    return new DataView(block.buffer, block.byteOffset + (offset - start), length);
  }
}

/** The PT_LOAD segment and file offset of the table a dynamic entry (DT_VERNEED, DT_VERDEF) points at. */
function versionTable(r: Reader, phdrs: readonly ProgramHeader[], entry: { value: number; at: number }, name: string): { window: SegmentWindow; offset: number } {
  const vaddr = entry.value;
  const load = phdrs.find((p) => p.type === PT_LOAD && vaddr >= p.vaddr && vaddr < p.vaddr + p.filesz);
  if (load === undefined) r.fail(entry.at, `${name} address ${hex(vaddr)} is not inside the file-backed part of any PT_LOAD segment`);
  return { window: new SegmentWindow(r, load), offset: load.offset + (vaddr - load.vaddr) };
}

function spend(r: Reader, budget: { left: number }, at: number): void {
  if (--budget.left < 0) r.fail(at, `the version tables hold more than ${MAX_VERSION_ENTRIES} entries`);
}

// Version and library names are short; a name that runs on for kilobytes is
// damage, and reading thousands of them to the table's end would not be bounded.
const MAX_VERSION_NAME = 4096;

function versionString(r: Reader, strings: StringTable, offset: number, at: number, field: string): string {
  const text = strings.at(offset, MAX_VERSION_NAME);
  if (text === undefined) r.fail(at, `${field} ${hex(offset)} is outside the ${strings.size}-byte string table`);
  if (text === null) r.fail(at, `${field} ${hex(offset)} names a string not ended within ${MAX_VERSION_NAME} bytes`);
  return text;
}

// Elf32_Verneed and Elf64_Verneed are the same 16 bytes: vn_version u16,
// vn_cnt u16, vn_file u32, vn_aux u32, vn_next u32; Elf_Vernaux is vna_hash
// u32, vna_flags u16, vna_other u16, vna_name u32, vna_next u32.
function readVersionNeeds(r: Reader, phdrs: readonly ProgramHeader[], entry: { value: number; at: number }, strings: StringTable, budget: { left: number }): VersionNeed[] {
  const { window, offset: first } = versionTable(r, phdrs, entry, 'DT_VERNEED');
  const out: VersionNeed[] = [];
  for (let offset = first, pointer = entry.at, i = 0; ; i++) {
    spend(r, budget, pointer);
    const v = window.view(offset, 16, `version-needed entry ${i}`, pointer);
    const version = r.u16(v, 0);
    // ld.so refuses any other revision ("unsupported version of Verneed record").
    if (version !== 1) r.fail(offset, `version-needed entry ${i} has vn_version ${version}, not 1`);
    const file = versionString(r, strings, r.u32(v, 4), offset + 4, 'vn_file');
    const versions: NeededVersion[] = [];
    for (let aux = offset + r.u32(v, 8), auxPointer = offset + 8, k = 0; ; k++) {
      spend(r, budget, auxPointer);
      const a = window.view(aux, 16, `version ${k} of version-needed entry ${i}`, auxPointer);
      versions.push({ name: versionString(r, strings, r.u32(a, 8), aux + 8, 'vna_name'), flags: r.u16(a, 4), index: r.u16(a, 6) });
      const next = r.u32(a, 12);
      if (next === 0) break;
      auxPointer = aux + 12;
      aux += next;
    }
    out.push({ file, versions });
    const next = r.u32(v, 12);
    if (next === 0) return out;
    pointer = offset + 12;
    offset += next;
  }
}

// Elf_Verdef is vd_version u16, vd_flags u16, vd_ndx u16, vd_cnt u16,
// vd_hash u32, vd_aux u32, vd_next u32 (20 bytes); Elf_Verdaux is vda_name
// u32, vda_next u32. ld.so reads only the first name; the others (parents,
// vd_cnt of them in all) are read as readelf reads them.
function readVersionDefinitions(r: Reader, phdrs: readonly ProgramHeader[], entry: { value: number; at: number }, strings: StringTable, budget: { left: number }): VersionDefinition[] {
  const out: VersionDefinition[] = [];
  walkVersionDefinitions(r, phdrs, entry, budget, (v, offset, window) => {
    const names = readDefinitionNames(r, window, v, offset, strings, budget, Math.max(r.u16(v, 6), 1));
    out.push({ name: names[0] as string, flags: r.u16(v, 2), index: r.u16(v, 4), parents: names.slice(1) });
  });
  return out;
}

/** Calls `visit` with each Elf_Verdef (checked: version 1, inside its segment), in chain order. */
function walkVersionDefinitions(r: Reader, phdrs: readonly ProgramHeader[], entry: { value: number; at: number }, budget: { left: number }, visit: (v: DataView, offset: number, window: SegmentWindow) => void): void {
  const { window, offset: first } = versionTable(r, phdrs, entry, 'DT_VERDEF');
  for (let offset = first, pointer = entry.at, i = 0; ; i++) {
    spend(r, budget, pointer);
    const v = window.view(offset, 20, 'a version definition', pointer);
    const version = r.u16(v, 0);
    if (version !== 1) r.fail(offset, `version definition ${i} has vd_version ${version}, not 1`);
    visit(v, offset, window);
    const next = r.u32(v, 16);
    if (next === 0) return;
    pointer = offset + 16;
    offset += next;
  }
}

// The names of the Elf_Verdef at `offset` (viewed as `v`): its own, then its parents', at most `count`.
function readDefinitionNames(r: Reader, window: SegmentWindow, v: DataView, offset: number, strings: StringTable, budget: { left: number }, count: number): string[] {
  const names: string[] = [];
  for (let aux = offset + r.u32(v, 12), auxPointer = offset + 12, k = 0; k < count; k++) {
    spend(r, budget, auxPointer);
    const a = window.view(aux, 8, 'a version definition\'s name', auxPointer);
    names.push(versionString(r, strings, r.u32(a, 0), aux, 'vda_name'));
    const next = r.u32(a, 4);
    if (next === 0) break;
    auxPointer = aux + 4;
    aux += next;
  }
  return names;
}

/**
 * The System V ABI's ELF hash, which vd_hash and vna_hash hold.
 *
 * @example
 * elfHash('GLIBC_2.2.5') // 0x09691a75
 */
export function elfHash(name: string): number {
  let h = 0;
  for (const c of Buffer.from(name, 'utf8')) {
    h = ((h << 4) + c) >>> 0;
    const g = h & 0xf0000000;
    if (g !== 0) h ^= g >>> 24;
    h = (h & ~g) >>> 0;
  }
  return h;
}

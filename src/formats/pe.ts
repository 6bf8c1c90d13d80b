/**
 * Reads what dlbundle needs from a PE file (a Windows DLL, `.node` addon or
 * executable): machine, PE32 or PE32+, the DLL name its export directory
 * declares, and the DLLs it imports — the import directory in file order,
 * then the delay-load directory in order. No I/O: the bytes come from a
 * Buffer or a random-access source, so a 100 MB DLL costs a few small reads.
 *
 * Validation follows a fixed order (DOS header, PE signature, COFF header,
 * optional header, section table, data directories), and every offset and
 * count is checked against the input before anything is read. Addresses
 * (RVAs) are turned into file offsets through the section table, as the
 * Windows loader maps them; an address no section backs with file bytes is
 * damage, never a read elsewhere.
 */
import { ByteReader, bufferSource, hex, type ByteSource } from './byte-reader';

/** What the reader learned about one PE file. */
export interface PeInfo {
  readonly format: 'pe';
  /** 32 for PE32, 64 for PE32+ (the optional header's magic). */
  readonly class: 32 | 64;
  /** The COFF machine by dlbundle's names (`x86_64`, `aarch64`, `i386`, `arm`, `arm64ec`), or `pe_0x<hex>` when unknown. */
  readonly machine: string;
  /** The raw COFF `Machine` value (0x8664, 0xaa64, …). */
  readonly machineCode: number;
  /** True when the COFF characteristics say IMAGE_FILE_DLL (every DLL and `.node` addon). */
  readonly dll: boolean;
  /** The export directory's Name (the DLL's own name), or null when it has no export directory. */
  readonly soname: string | null;
  /** The import directory's DLL names in file order, as written (case kept, duplicates kept). */
  readonly imports: readonly string[];
  /** The delay-load import directory's DLL names in order, as written. */
  readonly delayImports: readonly string[];
  /** `imports` then `delayImports`: every DLL the file names. */
  readonly needed: readonly string[];
}

// IMAGE_FILE_MACHINE_* values, named like the ELF machines of the same
// processors so that one target table serves every format.
const MACHINES: Readonly<Record<number, string>> = {
  0x014c: 'i386',
  0x8664: 'x86_64',
  0xaa64: 'aarch64',
  0xa641: 'arm64ec',
  0x01c0: 'arm',
  0x01c2: 'arm',
  0x01c4: 'arm',
  0x0200: 'ia64',
  0x5064: 'riscv',
};

/**
 * The name of a COFF machine value, `pe_0x<hex>` when dlbundle does not know it.
 *
 * @example
 * peMachineName(0xaa64) // 'aarch64'
 */
export function peMachineName(code: number): string {
  return MACHINES[code] ?? `pe_0x${code.toString(16).padStart(4, '0')}`;
}

const DOS_HEADER = 0x40;
const COFF_HEADER = 20;
const SECTION_HEADER = 40;
const IMPORT_DESCRIPTOR = 20;
const DELAY_DESCRIPTOR = 32;
const EXPORT_DIRECTORY = 40;
const IMAGE_FILE_DLL = 0x2000;
const PE32 = 0x10b;
const PE32_PLUS = 0x20b;
const EXPORT_TABLE = 0;
const IMPORT_TABLE = 1;
const DELAY_IMPORT_TABLE = 13;
// The loader reads at most 16 data directories whatever NumberOfRvaAndSizes says.
const MAX_DIRECTORIES = 16;
// The longest name Windows can load: a UNICODE_STRING holds 32,767 characters.
const MAX_NAME = 32_768;
// dlattrRva: the delay descriptor's fields are RVAs (else, in Visual C++ 6 files, virtual addresses).
const DLATTR_RVA = 1;

const ERRORS = { code: 'E_BAD_PE', name: 'PE' } as const;

/**
 * Reads the identity and imports of a PE file. Throws `E_BAD_PE` (with the
 * byte offset) for a missing signature or any inconsistent or truncated
 * structure.
 *
 * @example
 * const { soname, needed } = readPe(fs.readFileSync('libvips-cpp-8.18.7.dll'), 'libvips-cpp-8.18.7.dll');
 * // soname === 'libvips-cpp-8.18.7.dll', needed includes 'libvips-42.dll'
 */
export function readPe(input: Uint8Array | ByteSource, file = '<buffer>'): PeInfo {
  const r = new ByteReader(input instanceof Uint8Array ? bufferSource(input) : input, file, ERRORS);
  const h = readHeaders(r);
  const image = new Image(r, h);
  const soname = readExportName(image, h.directories[EXPORT_TABLE]);
  const imports = readImports(image, h.directories[IMPORT_TABLE]);
  const delayImports = readDelayImports(image, h, h.directories[DELAY_IMPORT_TABLE]);
  return {
    format: 'pe',
    class: h.is64 ? 64 : 32,
    machine: peMachineName(h.machine),
    machineCode: h.machine,
    dll: (h.characteristics & IMAGE_FILE_DLL) !== 0,
    soname,
    imports,
    delayImports,
    needed: [...imports, ...delayImports],
  };
}

interface Directory {
  readonly rva: number;
  readonly size: number;
  /** The file offset of the directory entry itself, for messages. */
  readonly at: number;
}

interface Section {
  readonly index: number;
  readonly virtualAddress: number;
  /** How much of the image the section spans from its address (VirtualSize, or SizeOfRawData when that is 0). */
  readonly span: number;
  readonly rawSize: number;
  readonly rawOffset: number;
}

interface Headers {
  readonly machine: number;
  readonly characteristics: number;
  readonly is64: boolean;
  readonly imageBase: number;
  readonly sizeOfHeaders: number;
  readonly sections: readonly Section[];
  readonly directories: readonly (Directory | undefined)[];
}

function readHeaders(r: ByteReader): Headers {
  const size = r.src.size;
  const magic = r.src.read(0, Math.min(2, size));
  if (magic.length < 2 || magic[0] !== 0x4d || magic[1] !== 0x5a) r.fail(0, 'the DOS signature "MZ" is missing');
  const dos = r.view(0, DOS_HEADER, 'the DOS header');
  const peAt = r.u32(dos, 0x3c);
  const pe = r.view(peAt, 4 + COFF_HEADER, 'the PE signature and COFF header', 0x3c);
  if (r.u32(pe, 0) !== 0x4550) r.fail(peAt, 'the signature "PE\\0\\0" is missing');
  const machine = r.u16(pe, 4);
  const sectionCount = r.u16(pe, 6);
  const optionalSize = r.u16(pe, 20);
  const characteristics = r.u16(pe, 22);
  const optAt = peAt + 4 + COFF_HEADER;
  if (optionalSize < 2) r.fail(peAt + 20, `SizeOfOptionalHeader ${optionalSize} leaves no room for the optional header's magic`);
  const opt = r.view(optAt, optionalSize, 'the optional header', peAt + 20);
  const optMagic = r.u16(opt, 0);
  if (optMagic !== PE32 && optMagic !== PE32_PLUS) r.fail(optAt, `unknown optional header magic ${hex(optMagic)} (PE32 is 0x10b, PE32+ 0x20b)`);
  const is64 = optMagic === PE32_PLUS;
  // Offsets of ImageBase, SizeOfHeaders, NumberOfRvaAndSizes and the directories in each layout.
  const layout = is64 ? { imageBase: 24, sizeOfHeaders: 60, count: 108, dirs: 112 } : { imageBase: 28, sizeOfHeaders: 60, count: 92, dirs: 96 };
  if (optionalSize < layout.dirs) r.fail(peAt + 20, `SizeOfOptionalHeader ${optionalSize} is smaller than the ${layout.dirs}-byte ${is64 ? 'PE32+' : 'PE32'} optional header`);
  const imageBase = is64 ? r.u64(opt, layout.imageBase) : r.u32(opt, layout.imageBase);
  const sizeOfHeaders = r.u32(opt, layout.sizeOfHeaders);
  const declared = r.u32(opt, layout.count);
  const count = Math.min(declared, MAX_DIRECTORIES, Math.floor((optionalSize - layout.dirs) / 8));
  const directories: (Directory | undefined)[] = [];
  for (let i = 0; i < count; i++) {
    const at = layout.dirs + i * 8;
    directories.push({ rva: r.u32(opt, at), size: r.u32(opt, at + 4), at: optAt + at });
  }
  const tableAt = optAt + optionalSize;
  const table = r.view(tableAt, sectionCount * SECTION_HEADER, `the table of ${sectionCount} section headers`, peAt + 6);
  const sections: Section[] = [];
  for (let i = 0; i < sectionCount; i++) {
    const base = i * SECTION_HEADER;
    const virtualSize = r.u32(table, base + 8);
    const rawSize = r.u32(table, base + 16);
    const rawOffset = r.u32(table, base + 20);
    if (rawSize > 0 && rawOffset + rawSize > size) {
      r.fail(tableAt + base + 16, `section ${i} (file offset ${hex(rawOffset)}, ${hex(rawSize)} bytes) extends past the end of the file`);
    }
    sections.push({ index: i, virtualAddress: r.u32(table, base + 12), span: virtualSize === 0 ? rawSize : virtualSize, rawSize, rawOffset });
  }
  return { machine, characteristics, is64, imageBase, sizeOfHeaders, sections, directories };
}

/** The mapped image: relative virtual addresses resolved to file bytes through the section table. */
class Image {
  constructor(
    readonly r: ByteReader,
    private readonly h: Headers,
  ) {}

  /**
   * The file offset of `rva`, and where the file bytes that back it end (the
   * section's raw data, cut to its span), with whether the image goes on past
   * that end in zero fill. `at` is the byte that holds the address.
   */
  locate(rva: number, what: string, at: number): { offset: number; end: number; zeroFilled: boolean } {
    for (const s of this.h.sections) {
      if (rva < s.virtualAddress || rva - s.virtualAddress >= s.span) continue;
      const delta = rva - s.virtualAddress;
      const backed = Math.min(s.span, s.rawSize);
      if (delta >= backed) this.r.fail(at, `${what} at RVA ${hex(rva)} lies in section ${s.index} beyond its ${hex(backed)} bytes of file data`);
      return { offset: s.rawOffset + delta, end: s.rawOffset + backed, zeroFilled: s.span > s.rawSize };
    }
    // The headers are mapped at RVA 0 too: a name may live there.
    if (rva < Math.min(this.h.sizeOfHeaders, this.r.src.size)) return { offset: rva, end: Math.min(this.h.sizeOfHeaders, this.r.src.size), zeroFilled: false };
    return this.r.fail(at, `${what} at RVA ${hex(rva)} is not inside any section`);
  }

  /** `length` bytes at `rva`, all backed by one section's file data. */
  view(rva: number, length: number, what: string, at: number): DataView {
    const { offset, end } = this.locate(rva, what, at);
    if (offset + length > end) this.r.fail(at, `${what} (${hex(length)} bytes at RVA ${hex(rva)}) runs past the end of its section's file data`);
    return this.r.view(offset, length, what, at);
  }

  /** The NUL-terminated name at `rva`, at most {@link MAX_NAME} bytes. */
  name(rva: number, what: string, at: number): string {
    const { offset, end, zeroFilled } = this.locate(rva, what, at);
    const limit = Math.min(end, offset + MAX_NAME);
    return this.r.cString(offset, limit, what, at, zeroFilled && limit === end);
  }
}

function readExportName(image: Image, dir: Directory | undefined): string | null {
  if (dir === undefined || dir.rva === 0) return null;
  const v = image.view(dir.rva, EXPORT_DIRECTORY, 'the export directory', dir.at);
  const nameRva = image.r.u32(v, 12);
  if (nameRva === 0) return null;
  const { offset } = image.locate(dir.rva, 'the export directory', dir.at);
  return image.name(nameRva, "the export directory's DLL name", offset + 12);
}

/**
 * The import directory's DLL names. The list ends, as the loader reads it,
 * at the first descriptor without a name or an address table; its recorded
 * size is not trusted (linkers round it).
 */
function readImports(image: Image, dir: Directory | undefined): string[] {
  if (dir === undefined || dir.rva === 0) return [];
  const names: string[] = [];
  const cache = new Map<number, string>();
  for (let i = 0; ; i++) {
    const rva = dir.rva + i * IMPORT_DESCRIPTOR;
    const what = `import descriptor ${i}`;
    const v = image.view(rva, IMPORT_DESCRIPTOR, what, dir.at);
    const nameRva = image.r.u32(v, 12);
    const firstThunk = image.r.u32(v, 16);
    if (nameRva === 0 || firstThunk === 0) return names;
    const at = image.locate(rva, what, dir.at).offset + 12;
    names.push(cachedName(cache, nameRva, () => image.name(nameRva, `the DLL name of import descriptor ${i}`, at)));
  }
}

/**
 * The delay-load directory's DLL names, in order, up to the first descriptor
 * without a name. Visual C++ 6 wrote virtual addresses instead of RVAs (the
 * attribute bit clear): those are turned into RVAs with the image base.
 */
function readDelayImports(image: Image, h: Headers, dir: Directory | undefined): string[] {
  if (dir === undefined || dir.rva === 0) return [];
  const names: string[] = [];
  const cache = new Map<number, string>();
  for (let i = 0; ; i++) {
    const rva = dir.rva + i * DELAY_DESCRIPTOR;
    const what = `delay-load descriptor ${i}`;
    const v = image.view(rva, DELAY_DESCRIPTOR, what, dir.at);
    const attributes = image.r.u32(v, 0);
    const nameField = image.r.u32(v, 4);
    if (nameField === 0) return names;
    const at = image.locate(rva, what, dir.at).offset + 4;
    const nameRva = (attributes & DLATTR_RVA) !== 0 ? nameField : nameField - h.imageBase;
    if (!Number.isSafeInteger(nameRva) || nameRva < 0) image.r.fail(at, `delay-load descriptor ${i}'s name address ${hex(nameField)} is below the image base ${hex(h.imageBase)}`);
    names.push(cachedName(cache, nameRva, () => image.name(nameRva, `the DLL name of delay-load descriptor ${i}`, at)));
  }
}

// A damaged file may point thousands of descriptors at one name: it is read once.
function cachedName(cache: Map<number, string>, rva: number, read: () => string): string {
  let name = cache.get(rva);
  if (name === undefined) {
    name = read();
    cache.set(rva, name);
  }
  return name;
}

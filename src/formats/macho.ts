/**
 * Reads what dlbundle needs from a Mach-O file (a macOS dylib, bundle or
 * `.node` addon), thin or universal ("fat"): per architecture the CPU type,
 * the file type, the install name (LC_ID_DYLIB), the dylibs it loads — one
 * entry per LC_LOAD_DYLIB, LC_LOAD_WEAK_DYLIB, LC_REEXPORT_DYLIB,
 * LC_LAZY_LOAD_DYLIB and LC_LOAD_UPWARD_DYLIB command, in command order, as
 * written — and its LC_RPATH entries, unexpanded. No I/O: the bytes come from
 * a Buffer or a random-access source, and only the headers and load commands
 * are read, so a 100 MB dylib costs a few small reads.
 *
 * Validation follows a fixed order (fat header and architectures, then per
 * slice: magic, header, load commands) and every offset, count and size is
 * checked against the input before anything is read.
 */
import { ByteReader, bufferSource, hex, sliceSource, type ByteSource } from './byte-reader';

/** The load commands that name a dylib another one needs. */
export type DylibCommand = 'LC_LOAD_DYLIB' | 'LC_LOAD_WEAK_DYLIB' | 'LC_REEXPORT_DYLIB' | 'LC_LAZY_LOAD_DYLIB' | 'LC_LOAD_UPWARD_DYLIB';

/** One architecture's image: the whole file when it is thin, one slice of a universal file. */
export interface MachOImage {
  /** 32 or 64 (MH_MAGIC or MH_MAGIC_64). */
  readonly class: 32 | 64;
  readonly endian: 'little' | 'big';
  /** The CPU by dlbundle's names, as for ELF (`x86_64`, `aarch64`, `i386`, `arm`, `arm64_32`, `ppc`, `ppc64`), or `cpu_<n>` when unknown. */
  readonly machine: string;
  /** The raw `cputype`. */
  readonly cputype: number;
  /** `cpusubtype` without its capability bits (the top byte): 2 is arm64e. */
  readonly cpusubtype: number;
  /** `filetype` by name: `dylib`, `bundle`, `execute`, … or `mh_<n>` when unknown. */
  readonly filetype: string;
  /** The LC_ID_DYLIB install name of a dylib; null for a bundle or executable, which no other image can name. */
  readonly soname: string | null;
  /** One entry per dylib load command, in command order, names as written (`@rpath/libggml-base.dylib`), duplicates kept. */
  readonly needed: readonly string[];
  /** The command of each `needed` entry, index for index. */
  readonly neededCommands: readonly DylibCommand[];
  /** LC_RPATH paths in command order, unexpanded (`@loader_path/../lib`). */
  readonly runpath: readonly string[];
  /** Where the image is in the file: 0 and the file's size when thin. */
  readonly offset: number;
  readonly size: number;
}

/** What the reader learned about one Mach-O file. */
export interface MachOInfo {
  readonly format: 'macho';
  /** Null for a thin file; for a universal file, whether its header is FAT_MAGIC_64 (64-bit offsets). */
  readonly fat: null | { readonly magic64: boolean };
  /** The images: one for a thin file, one per architecture in header order for a universal one. */
  readonly images: readonly MachOImage[];
}

const MH_MAGIC = 0xfeedface;
const MH_CIGAM = 0xcefaedfe;
const MH_MAGIC_64 = 0xfeedfacf;
const MH_CIGAM_64 = 0xcffaedfe;
const FAT_MAGIC = 0xcafebabe;
const FAT_MAGIC_64 = 0xcafebabf;

/**
 * The number of architectures above which 0xcafebabe starts a Java class file
 * (whose next word holds its version, 45 and up), not a universal binary.
 */
export const FAT_ARCH_LIMIT = 45;

// Commands dyld must understand carry LC_REQ_DYLD (0x80000000); written out
// whole, because `|` in JavaScript makes them negative 32-bit numbers.
const LC_LOAD_DYLIB = 0xc;
const LC_ID_DYLIB = 0xd;
const LC_LAZY_LOAD_DYLIB = 0x20;
const LC_LOAD_WEAK_DYLIB = 0x80000018;
const LC_RPATH = 0x8000001c;
const LC_REEXPORT_DYLIB = 0x8000001f;
const LC_LOAD_UPWARD_DYLIB = 0x80000023;

const DYLIB_COMMANDS: ReadonlyMap<number, DylibCommand> = new Map([
  [LC_LOAD_DYLIB, 'LC_LOAD_DYLIB'],
  [LC_LOAD_WEAK_DYLIB, 'LC_LOAD_WEAK_DYLIB'],
  [LC_REEXPORT_DYLIB, 'LC_REEXPORT_DYLIB'],
  [LC_LAZY_LOAD_DYLIB, 'LC_LAZY_LOAD_DYLIB'],
  [LC_LOAD_UPWARD_DYLIB, 'LC_LOAD_UPWARD_DYLIB'],
]);

const MH_DYLIB = 6;
const MH_DYLIB_STUB = 9;
const FILETYPES: readonly string[] = ['none', 'object', 'execute', 'fvmlib', 'core', 'preload', 'dylib', 'dylinker', 'bundle', 'dylib_stub', 'dsym', 'kext_bundle', 'fileset'];

const CPU_ARCH_ABI64 = 0x01000000;
const CPU_ARCH_ABI64_32 = 0x02000000;
const CPU_TYPES: Readonly<Record<number, string>> = {
  7: 'i386',
  [7 | CPU_ARCH_ABI64]: 'x86_64',
  12: 'arm',
  [12 | CPU_ARCH_ABI64]: 'aarch64',
  [12 | CPU_ARCH_ABI64_32]: 'arm64_32',
  18: 'ppc',
  [18 | CPU_ARCH_ABI64]: 'ppc64',
};
const CPU_SUBTYPE_MASK = 0x00ffffff;

/**
 * The name of a Mach-O `cputype`, `cpu_<n>` when dlbundle does not know it.
 *
 * @example
 * machOMachineName(0x0100000c) // 'aarch64'
 */
export function machOMachineName(cputype: number): string {
  return CPU_TYPES[cputype] ?? `cpu_${cputype >>> 0}`;
}

const ERRORS = { code: 'E_BAD_MACHO', name: 'Mach-O' } as const;

/**
 * Reads every image of a Mach-O file, thin or universal. Throws
 * `E_BAD_MACHO` (with the byte offset) for a missing magic number or any
 * inconsistent or truncated structure.
 *
 * @example
 * const [image] = readMachO(fs.readFileSync('libggml.dylib'), 'libggml.dylib').images;
 * // image.soname === '@rpath/libggml.dylib', image.needed includes '@rpath/libggml-base.dylib'
 */
export function readMachO(input: Uint8Array | ByteSource, file = '<buffer>'): MachOInfo {
  const src = input instanceof Uint8Array ? bufferSource(input) : input;
  const r = new ByteReader(src, file, ERRORS);
  r.little = false;
  const magic = src.size >= 4 ? r.u32(r.view(0, 4, 'the magic number'), 0) : -1;
  if (magic === FAT_MAGIC || magic === FAT_MAGIC_64) return readFat(r, magic === FAT_MAGIC_64);
  return { format: 'macho', fat: null, images: [readImage(src, file, 0)] };
}

function readFat(r: ByteReader, magic64: boolean): MachOInfo {
  // The fat header and its table are big-endian whatever the slices are.
  const count = r.u32(r.view(0, 8, 'the universal header'), 4);
  const entry = magic64 ? 32 : 20;
  if (count === 0) r.fail(4, 'a universal file with no architectures');
  if (count >= FAT_ARCH_LIMIT) r.fail(4, `${count} architectures, more than any universal file holds (0xcafebabe also starts Java class files)`);
  const table = r.view(8, count * entry, `the table of ${count} architectures`, 4);
  const images: MachOImage[] = [];
  const seen = new Map<string, number>();
  for (let i = 0; i < count; i++) {
    const base = i * entry;
    const at = 8 + base;
    const cputype = r.i32(table, base);
    const cpusubtype = r.i32(table, base + 4);
    const offset = magic64 ? r.u64(table, base + 8) : r.u32(table, base + 8);
    const size = magic64 ? r.u64(table, base + 16) : r.u32(table, base + 12);
    if (!(offset + size <= r.src.size)) r.fail(at, `architecture ${i} (file offset ${hex(offset)}, ${hex(size)} bytes) extends past the end of the file`);
    const key = `${cputype}/${cpusubtype & CPU_SUBTYPE_MASK}`;
    const twin = seen.get(key);
    if (twin !== undefined) r.fail(at, `architectures ${twin} and ${i} are both ${machOMachineName(cputype)} (cpusubtype ${cpusubtype & CPU_SUBTYPE_MASK})`);
    seen.set(key, i);
    for (const [k, other] of images.entries()) {
      if (offset < other.offset + other.size && other.offset < offset + size) r.fail(at, `architecture ${i} overlaps architecture ${k}`);
    }
    const image = readImage(sliceSource(r.src, offset, size), r.file, offset);
    // dyld picks a slice by the table's CPU type: a header that says otherwise would load other code than was read.
    if (image.cputype !== cputype || image.cpusubtype !== (cpusubtype & CPU_SUBTYPE_MASK)) {
      r.fail(at, `architecture ${i} is listed as ${machOMachineName(cputype)} (cpusubtype ${cpusubtype & CPU_SUBTYPE_MASK}) but its header says ${image.machine} (cpusubtype ${image.cpusubtype})`);
    }
    images.push(image);
  }
  return { format: 'macho', fat: { magic64 }, images };
}

/** Reads one thin image; `base` is where it starts in the file, for offsets in messages. */
function readImage(src: ByteSource, file: string, base: number): MachOImage {
  const r = new ByteReader(src, file, ERRORS, base);
  r.little = false;
  const magic = src.size >= 4 ? r.u32(r.view(0, 4, 'the magic number'), 0) : -1;
  if (magic !== MH_MAGIC && magic !== MH_CIGAM && magic !== MH_MAGIC_64 && magic !== MH_CIGAM_64) {
    r.fail(0, magic === FAT_MAGIC || magic === FAT_MAGIC_64 ? 'a universal file nested inside a universal file' : `no Mach-O magic number (found ${magic < 0 ? 'fewer than 4 bytes' : hex(magic)})`);
  }
  const is64 = magic === MH_MAGIC_64 || magic === MH_CIGAM_64;
  r.little = magic === MH_CIGAM || magic === MH_CIGAM_64;
  const headerSize = is64 ? 32 : 28;
  const h = r.view(0, headerSize, 'the Mach-O header');
  const cputype = r.i32(h, 4);
  const cpusubtype = r.i32(h, 8) & CPU_SUBTYPE_MASK;
  const filetype = r.u32(h, 12);
  const ncmds = r.u32(h, 16);
  const sizeofcmds = r.u32(h, 20);
  const end = headerSize + sizeofcmds;
  if (end > src.size) r.fail(20, `sizeofcmds ${hex(sizeofcmds)} runs past the end of the ${src.size}-byte image`);
  if (ncmds > sizeofcmds / 8) r.fail(16, `ncmds ${ncmds} cannot fit in sizeofcmds ${hex(sizeofcmds)} (a load command takes at least 8 bytes)`);

  let soname: string | null = null;
  let idAt = -1;
  const needed: string[] = [];
  const neededCommands: DylibCommand[] = [];
  const runpath: string[] = [];
  const commands = new CommandWindow(r, end);
  let at = headerSize;
  for (let i = 0; i < ncmds; i++) {
    if (at + 8 > end) r.fail(at, `load command ${i} starts past the ${hex(sizeofcmds)} bytes of load commands`);
    const head = commands.view(at, 8, `load command ${i}`);
    const cmd = r.u32(head, 0);
    const cmdsize = r.u32(head, 4);
    if (cmdsize < 8 || cmdsize % 4 !== 0) r.fail(at + 4, `load command ${i} has cmdsize ${cmdsize} (at least 8, a multiple of 4)`);
    if (at + cmdsize > end) r.fail(at + 4, `load command ${i} (cmdsize ${hex(cmdsize)}) runs past the ${hex(sizeofcmds)} bytes of load commands`);
    const dylib = DYLIB_COMMANDS.get(cmd);
    if (dylib !== undefined || cmd === LC_ID_DYLIB) {
      const name = commandString(r, commands, at, cmdsize, 24, `load command ${i} (${dylib ?? 'LC_ID_DYLIB'})`);
      if (dylib !== undefined) {
        needed.push(name);
        neededCommands.push(dylib);
      } else {
        if (idAt >= 0) r.fail(at, `a second LC_ID_DYLIB (load command ${i}; the first is at byte ${hex(base + idAt)})`);
        idAt = at;
        soname = name;
      }
    } else if (cmd === LC_RPATH) {
      runpath.push(commandString(r, commands, at, cmdsize, 12, `load command ${i} (LC_RPATH)`));
    }
    at += cmdsize;
  }
  return {
    class: is64 ? 64 : 32,
    endian: r.little ? 'little' : 'big',
    machine: machOMachineName(cputype),
    cputype,
    cpusubtype,
    filetype: FILETYPES[filetype] ?? `mh_${filetype}`,
    // Only a dylib can be named by another image; dyld ignores an ID in anything else.
    soname: filetype === MH_DYLIB || filetype === MH_DYLIB_STUB ? soname : null,
    needed,
    neededCommands,
    runpath,
    offset: base,
    size: src.size,
  };
}

/**
 * The string a load command carries (a dylib's name, an rpath): its offset
 * is the command's third word, past the command's fixed part (`fixed` bytes),
 * and the string must end, with a NUL, inside the command.
 */
function commandString(r: ByteReader, commands: CommandWindow, at: number, cmdsize: number, fixed: number, what: string): string {
  if (cmdsize < fixed) r.fail(at + 4, `${what} has cmdsize ${cmdsize}, less than its ${fixed}-byte structure`);
  const offset = r.u32(commands.view(at + 8, 4, what), 0);
  if (offset < fixed || offset >= cmdsize) r.fail(at + 8, `${what} puts its name at ${hex(offset)}, outside the ${hex(fixed)}..${hex(cmdsize)} bytes after its structure`);
  const v = commands.view(at + offset, cmdsize - offset, what);
  const bytes = Buffer.from(v.buffer, v.byteOffset, v.byteLength);
  const nul = bytes.indexOf(0);
  if (nul < 0) r.fail(at + offset, `the name in ${what} is not NUL-terminated inside the command`);
  return bytes.toString('utf8', 0, nul);
}

// Load commands are read through one window of this size, moved as needed:
// a few reads for any real file, however many commands it has.
const WINDOW = 64 * 1024;

/** Views of the load-command area, served from a window read in large pieces. */
class CommandWindow {
  private start = 0;
  private bytes: DataView | null = null;

  constructor(
    private readonly r: ByteReader,
    private readonly end: number,
  ) {}

  view(offset: number, length: number, what: string): DataView {
    const w = this.bytes;
    if (w === null || offset < this.start || offset + length > this.start + w.byteLength) {
      this.start = offset;
      this.bytes = this.r.view(offset, Math.max(length, Math.min(WINDOW, this.end - offset)), what);
    }
    const b = this.bytes as DataView;
    return new DataView(b.buffer, b.byteOffset + (offset - this.start), length);
  }
}

/**
 * Builds small Mach-O files byte by byte, independently of
 * src/formats/macho.ts: thin images (32 or 64-bit, either byte order) with
 * LC_ID_DYLIB, dylib load commands and LC_RPATH in the order given, and
 * universal files (FAT_MAGIC or FAT_MAGIC_64) around them. What the tests need
 * that the real dylibs from npm (all thin, 64-bit, little-endian) do not show.
 */

export const CPU_TYPE_X86 = 7;
export const CPU_TYPE_X86_64 = 0x01000007;
export const CPU_TYPE_ARM = 12;
export const CPU_TYPE_ARM64 = 0x0100000c;
export const CPU_TYPE_POWERPC = 18;

export const MH_EXECUTE = 2;
export const MH_DYLIB = 6;
export const MH_BUNDLE = 8;

export const LC_LOAD_DYLIB = 0xc;
export const LC_ID_DYLIB = 0xd;
export const LC_UUID = 0x1b;
export const LC_LAZY_LOAD_DYLIB = 0x20;
export const LC_LOAD_WEAK_DYLIB = 0x80000018;
export const LC_RPATH = 0x8000001c;
export const LC_REEXPORT_DYLIB = 0x8000001f;
export const LC_LOAD_UPWARD_DYLIB = 0x80000023;

/** One load command, in file order. */
export type MachOCommand =
  | { readonly kind: 'id'; readonly name: string }
  | { readonly kind: 'dylib'; readonly cmd: number; readonly name: string }
  | { readonly kind: 'rpath'; readonly path: string }
  | { readonly kind: 'uuid' };

/** What to build. */
export interface MachOSpec {
  readonly class: 32 | 64;
  readonly endian: 'little' | 'big';
  readonly cputype: number;
  readonly cpusubtype?: number;
  readonly filetype: number;
  readonly commands: readonly MachOCommand[];
  /** Bytes after the load commands (default 64): stands for the segments' contents. */
  readonly tail?: number;
}

/** A built image and where its load commands start. */
export interface BuiltMachO {
  readonly bytes: Buffer;
  readonly headerSize: number;
  /** File offset of each load command, in order. */
  readonly commandOffsets: readonly number[];
}

/**
 * A thin Mach-O image.
 *
 * @example
 * buildMachO({ class: 64, endian: 'little', cputype: CPU_TYPE_ARM64, filetype: MH_DYLIB, commands: [{ kind: 'id', name: '@rpath/liba.dylib' }] })
 */
export function buildMachO(spec: MachOSpec): BuiltMachO {
  const little = spec.endian === 'little';
  const align = spec.class === 64 ? 8 : 4;
  const u32 = (b: Buffer, v: number, at: number): void => {
    if (little) b.writeUInt32LE(v >>> 0, at);
    else b.writeUInt32BE(v >>> 0, at);
  };
  const pad = (n: number): number => Math.ceil(n / align) * align;
  const stringCommand = (cmd: number, fixed: number, text: string, fill: (b: Buffer) => void): Buffer => {
    const size = pad(fixed + Buffer.byteLength(text) + 1);
    const b = Buffer.alloc(size);
    u32(b, cmd, 0);
    u32(b, size, 4);
    u32(b, fixed, 8);
    fill(b);
    b.write(text, fixed, 'utf8');
    return b;
  };
  const dylib = (cmd: number, name: string): Buffer =>
    stringCommand(cmd, 24, name, (b) => {
      u32(b, 2, 12); // timestamp
      u32(b, 0x10000, 16); // current version 1.0.0
      u32(b, 0x10000, 20); // compatibility version 1.0.0
    });
  const commands = spec.commands.map((c) => {
    if (c.kind === 'id') return dylib(LC_ID_DYLIB, c.name);
    if (c.kind === 'dylib') return dylib(c.cmd, c.name);
    if (c.kind === 'rpath') return stringCommand(LC_RPATH, 12, c.path, () => {});
    const b = Buffer.alloc(24);
    u32(b, LC_UUID, 0);
    u32(b, 24, 4);
    for (let k = 8; k < 24; k++) b[k] = k * 7;
    return b;
  });
  const headerSize = spec.class === 64 ? 32 : 28;
  const sizeofcmds = commands.reduce((n, c) => n + c.length, 0);
  const header = Buffer.alloc(headerSize);
  u32(header, spec.class === 64 ? 0xfeedfacf : 0xfeedface, 0);
  u32(header, spec.cputype, 4);
  u32(header, spec.cpusubtype ?? 0, 8);
  u32(header, spec.filetype, 12);
  u32(header, commands.length, 16);
  u32(header, sizeofcmds, 20);
  u32(header, 0x00200085, 24); // NOUNDEFS | DYLDLINK | TWOLEVEL | NO_REEXPORTED_DYLIBS
  const offsets: number[] = [];
  let at = headerSize;
  for (const c of commands) {
    offsets.push(at);
    at += c.length;
  }
  const tail = Buffer.alloc(spec.tail ?? 64, 0x90);
  return { bytes: Buffer.concat([header, ...commands, tail]), headerSize, commandOffsets: offsets };
}

/** One architecture of a universal file. */
export interface FatSlice {
  readonly bytes: Buffer;
  readonly cputype: number;
  readonly cpusubtype?: number;
}

/**
 * A universal file holding `slices`, each aligned to 2^`align` bytes (4 KiB
 * by default, as lipo does for small files), with a FAT_MAGIC or FAT_MAGIC_64
 * header (big-endian, as always).
 *
 * @example
 * buildFat([{ bytes: x64.bytes, cputype: CPU_TYPE_X86_64, cpusubtype: 3 }, { bytes: arm.bytes, cputype: CPU_TYPE_ARM64 }], { magic64: true })
 */
export function buildFat(slices: readonly FatSlice[], options: { readonly magic64?: boolean; readonly align?: number } = {}): { bytes: Buffer; entries: number; entrySize: number } {
  const magic64 = options.magic64 === true;
  const alignBits = options.align ?? 12;
  const entrySize = magic64 ? 32 : 20;
  const header = Buffer.alloc(8 + entrySize * slices.length);
  header.writeUInt32BE(magic64 ? 0xcafebabf : 0xcafebabe, 0);
  header.writeUInt32BE(slices.length, 4);
  const parts: Buffer[] = [header];
  let at = header.length;
  slices.forEach((s, i) => {
    const start = Math.ceil(at / 2 ** alignBits) * 2 ** alignBits;
    parts.push(Buffer.alloc(start - at));
    parts.push(s.bytes);
    const e = 8 + i * entrySize;
    header.writeInt32BE(s.cputype | 0, e);
    header.writeInt32BE((s.cpusubtype ?? 0) | 0, e + 4);
    if (magic64) {
      header.writeBigUInt64BE(BigInt(start), e + 8);
      header.writeBigUInt64BE(BigInt(s.bytes.length), e + 16);
      header.writeUInt32BE(alignBits, e + 24);
    } else {
      header.writeUInt32BE(start, e + 8);
      header.writeUInt32BE(s.bytes.length, e + 12);
      header.writeUInt32BE(alignBits, e + 16);
    }
    at = start + s.bytes.length;
  });
  return { bytes: Buffer.concat(parts), entries: 8, entrySize };
}

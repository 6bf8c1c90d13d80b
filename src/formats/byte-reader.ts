/**
 * Bounded reads for the binary-format readers: every offset and length is
 * checked against the input before anything is read, and every failure is a
 * `DlbundleError` with the format's code, the file and the byte offset.
 */
import { DlbundleError, type DlbundleErrorCode } from '../errors';

/** Random access to the bytes of one file. `read` may return fewer bytes only at the end of the file. */
export interface ByteSource {
  /** Total size of the file in bytes. */
  readonly size: number;
  /** The bytes at `[offset, offset + length)`; callers never ask past `size`. */
  read(offset: number, length: number): Uint8Array;
}

/**
 * Wraps a Buffer (or any Uint8Array) as a {@link ByteSource}.
 *
 * @example
 * const info = readBinary(bufferSource(fs.readFileSync('libfoo.dylib')));
 * const elf = readElf(bufferSource(fs.readFileSync('libfoo.so')));
 */
export function bufferSource(bytes: Uint8Array): ByteSource {
  return { size: bytes.length, read: (offset, length) => bytes.subarray(offset, offset + length) };
}

/**
 * The bytes `[start, start + size)` of `src` as a source of their own: one
 * slice of a universal Mach-O file, read with the offsets of a thin file.
 *
 * @example
 * readMachOImage(sliceSource(src, arch.offset, arch.size), file)
 */
export function sliceSource(src: ByteSource, start: number, size: number): ByteSource {
  return { size, read: (offset, length) => src.read(start + offset, length) };
}

/** A number in hex for messages; 64-bit values past 2^53 are read as Infinity and shown as such. */
export function hex(n: number): string {
  return Number.isFinite(n) ? `0x${n.toString(16)}` : 'a value above 2^53';
}

/** How one format names itself in messages and which code its damage gets. */
export interface FormatErrors {
  /** `E_BAD_PE`, `E_BAD_MACHO`. */
  readonly code: DlbundleErrorCode;
  /** `PE`, `Mach-O`: as in "a damaged or truncated PE file". */
  readonly name: string;
}

/**
 * Bounds-checked reads of one file in one byte order. `base` is added to
 * every offset in messages: a slice of a universal file reports offsets in
 * the whole file.
 */
export class ByteReader {
  little = true;

  constructor(
    readonly src: ByteSource,
    readonly file: string,
    private readonly errors: FormatErrors,
    private readonly base = 0,
  ) {}

  /** Throws the format's damage code naming `what` at `offset` (relative to this reader's source). */
  fail(offset: number, what: string): never {
    const at = this.base + offset;
    throw new DlbundleError(
      this.errors.code,
      `${JSON.stringify(this.file)} is a damaged or truncated ${this.errors.name} file: ${what} at byte ${hex(at)}.`,
      'Rebuild or re-download the library; a copy that was cut short or edited cannot be loaded.',
      { file: this.file, offset: at },
    );
  }

  /**
   * A view of `[offset, offset+length)`, or a failure naming `what` when it
   * does not fit in the file. `at` is where the offset itself was read, the
   * byte reported when the offset is beyond any file.
   */
  view(offset: number, length: number, what: string, at = offset): DataView {
    if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0 || offset + length > this.src.size) {
      this.fail(this.reportedOffset(offset, at), `${what} (${hex(length)} bytes at ${hex(offset)}) lies outside the ${this.src.size}-byte file`);
    }
    const bytes = this.src.read(offset, length);
    if (bytes.length < length) this.fail(offset, `${what} could not be read in full`);
    return new DataView(bytes.buffer, bytes.byteOffset, length);
  }

  /**
   * The byte a failed {@link view} reports: the offset itself while it lies
   * in the file, else `at`, where the offset was read.
   */
  protected reportedOffset(offset: number, at: number): number {
    return Number.isSafeInteger(offset) && offset >= 0 && offset <= this.src.size ? offset : at;
  }

  u16(v: DataView, at: number): number {
    return v.getUint16(at, this.little);
  }

  u32(v: DataView, at: number): number {
    return v.getUint32(at, this.little);
  }

  i32(v: DataView, at: number): number {
    return v.getInt32(at, this.little);
  }

  /** A 64-bit field as a number; values past 2^53 are returned as Infinity so bounds checks reject them. */
  u64(v: DataView, at: number): number {
    const lo = v.getUint32(at + (this.little ? 0 : 4), this.little);
    const hi = v.getUint32(at + (this.little ? 4 : 0), this.little);
    return hi >= 0x200000 ? Infinity : hi * 0x1_0000_0000 + lo;
  }

  /**
   * The NUL-terminated string at `offset`, read in small windows, which must
   * end before `end`; `endsAtLimit` accepts a string cut by `end` itself (the
   * zero fill that follows a section's file bytes in memory). Decoded as UTF-8.
   */
  cString(offset: number, end: number, what: string, at = offset, endsAtLimit = false): string {
    const parts: Buffer[] = [];
    for (let from = offset; from < end; from += STRING_WINDOW) {
      const v = this.view(from, Math.min(STRING_WINDOW, end - from), what, at);
      const bytes = Buffer.from(v.buffer, v.byteOffset, v.byteLength);
      const nul = bytes.indexOf(0);
      parts.push(nul < 0 ? bytes : bytes.subarray(0, nul));
      if (nul >= 0) return Buffer.concat(parts).toString('utf8');
    }
    if (endsAtLimit) return Buffer.concat(parts).toString('utf8');
    return this.fail(at, `${what} is not NUL-terminated before byte ${hex(this.base + end)}`);
  }
}

// Names are short: a few hundred bytes at a time finds their end in one read.
const STRING_WINDOW = 256;

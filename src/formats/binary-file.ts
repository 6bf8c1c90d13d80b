/**
 * The facts of a library on disk in any format, read with a few positioned
 * reads instead of loading the whole file (see elf-file.ts for ELF alone).
 */
import { withFileSource } from './elf-file';
import { binaryFormatOf, readBinary, type BinaryFormat, type BinaryInfo } from './binary';

/**
 * Reads `file` as ELF, PE or Mach-O (see {@link readBinary}); `E_IO` when it cannot be opened.
 *
 * @example
 * readBinaryFile('node_modules/@img/sharp-win32-x64/lib/libvips-42.dll').format // 'pe'
 */
export function readBinaryFile(file: string): BinaryInfo {
  return withFileSource(file, (src) => readBinary(src, file));
}

/**
 * The format `file`'s first bytes announce (see {@link binaryFormatOf}), or
 * null; `E_IO` when it cannot be read.
 *
 * @example
 * binaryFormatOfFile('bins/mac-arm64-metal/libggml-metal.so') // 'macho'
 */
export function binaryFormatOfFile(file: string): BinaryFormat | null {
  return withFileSource(file, (src) => binaryFormatOf(src.read(0, Math.min(8, src.size))));
}

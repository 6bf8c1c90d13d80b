/**
 * The facts of a library on disk in any format, read with a few positioned
 * reads instead of loading the whole file (see elf-file.ts for ELF alone).
 */
import fs = require('node:fs');
import { DlbundleError } from '../errors';
import { fdSource } from '../elf-file';
import { ioError, readRange } from '../file-io';
import { binaryFormatOf, readBinary, type BinaryFormat, type BinaryInfo } from './binary';

/**
 * Reads `file` as ELF, PE or Mach-O (see {@link readBinary}); `E_IO` when it cannot be opened.
 *
 * @example
 * readBinaryFile('node_modules/@img/sharp-win32-x64/lib/libvips-42.dll').format // 'pe'
 */
export function readBinaryFile(file: string): BinaryInfo {
  let fd: number;
  try {
    fd = fs.openSync(file, 'r');
  } catch (e) {
    throw ioError(file, e);
  }
  try {
    const st = fs.fstatSync(fd);
    if (!st.isFile()) throw new DlbundleError('E_IO', `${JSON.stringify(file)} is not a regular file.`, 'Name shared library files, not directories or devices.', { file });
    return readBinary(fdSource(fd, file, st.size), file);
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * The format `file`'s first bytes announce (see {@link binaryFormatOf}), or
 * null; `E_IO` when it cannot be read.
 *
 * @example
 * binaryFormatOfFile('bins/mac-arm64-metal/libggml-metal.so') // 'macho'
 */
export function binaryFormatOfFile(file: string): BinaryFormat | null {
  let fd: number;
  try {
    fd = fs.openSync(file, 'r');
  } catch (e) {
    throw ioError(file, e);
  }
  try {
    return binaryFormatOf(readRange(fd, file, 0, 8));
  } finally {
    fs.closeSync(fd);
  }
}

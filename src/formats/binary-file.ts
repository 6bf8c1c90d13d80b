/**
 * The facts of a library on disk in any format, read with a few positioned
 * reads instead of loading the whole file (see elf-file.ts for ELF alone).
 */
import fs = require('node:fs');
import { DlbundleError } from '../errors';
import { fdSource } from '../elf-file';
import { ioError } from '../file-io';
import { readBinary, type BinaryInfo } from './binary';

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

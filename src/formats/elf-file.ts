/**
 * ELF facts of a file on disk (and the file source every format's reader
 * uses there), read with a few positioned reads instead of
 * loading the whole file: `inspect` over hundreds of libraries stays fast,
 * and a 100 MB library costs a few kilobytes of I/O.
 */
import fs = require('node:fs');
import { DlbundleError } from '../errors';
import { openFile, readRange } from '../file-io';
import { readElf, readInterpreter, readSymbolVersions, type ElfByteSource, type ElfInfo, type SymbolVersions, versionHashes } from './elf';

/**
 * Reads the ELF facts of `file`. Throws `E_NOT_ELF` / `E_BAD_ELF` like
 * {@link readElf}, and `E_IO` when the file cannot be opened.
 *
 * @example
 * readElfFile('/usr/lib/x86_64-linux-gnu/libz.so.1').soname // 'libz.so.1'
 */
export function readElfFile(file: string): ElfInfo {
  return withFileSource(file, (src) => readElf(src, file));
}

/**
 * Only the program interpreter of `file` (see {@link readInterpreter}).
 *
 * @example
 * readInterpreterFile('/proc/self/exe') // '/lib64/ld-linux-x86-64.so.2'
 */
export function readInterpreterFile(file: string): string | null {
  return withFileSource(file, (src) => readInterpreter(src, file));
}

/**
 * The symbol versions `file` needs and defines (see {@link readSymbolVersions}):
 * for libc.so.6, nine reads of about 17 KiB in all.
 *
 * @example
 * readSymbolVersionsFile('/lib/x86_64-linux-gnu/libc.so.6').defined.at(-1)?.name // 'GLIBC_2.36'
 */
export function readSymbolVersionsFile(file: string): SymbolVersions {
  return withFileSource(file, (src) => readSymbolVersions(src, file));
}

/**
 * The hashes of the symbol versions `file` defines (see {@link versionHashes}):
 * for libc.so.6, four reads of about 6 KiB.
 *
 * @example
 * versionHashesFile('/lib/x86_64-linux-gnu/libc.so.6').has(elfHash('GLIBC_2.34')) // true
 */
export function versionHashesFile(file: string): ReadonlySet<number> {
  return withFileSource(file, (src) => versionHashes(src, file));
}

/**
 * Runs `read` over a positioned-read source of `file` (a regular file, else
 * `E_IO`), and closes it: what every reader of a file on disk goes through.
 *
 * @example
 * withFileSource('libvips-42.dll', (src) => readPe(src, 'libvips-42.dll'))
 */
export function withFileSource<T>(file: string, read: (src: ElfByteSource) => T): T {
  const fd = openFile(file, 'r');
  try {
    const st = fs.fstatSync(fd);
    if (!st.isFile()) throw new DlbundleError('E_IO', `${JSON.stringify(file)} is not a regular file.`, 'Name shared object files, not directories or devices.', { file });
    return read(fdSource(fd, file, st.size));
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * An {@link ElfByteSource} over an open file: positioned reads, so only the
 * headers and tables asked for are read.
 *
 * @example
 * readLayout(fdSource(fd, 'app', fs.fstatSync(fd).size))
 */
export function fdSource(fd: number, file: string, size: number): ElfByteSource {
  return { size, read: (offset, length) => readRange(fd, file, offset, length) };
}

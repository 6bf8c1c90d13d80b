/**
 * Small synchronous file helpers shared by the readers: positioned reads that
 * fill their buffer, and Node errors turned into DlbundleErrors.
 */
import fs = require('node:fs');
import { DlbundleError } from './errors';

/**
 * Up to `length` bytes of `fd` at `position` (fewer only at the end of the
 * file); a failed read is `E_IO` naming `file`. `from` is the fs module to
 * read with (Electron's `original-fs` for asar archives).
 *
 * @example
 * const header = readRange(fd, 'libfoo.so', 0, 64);
 */
export function readRange(fd: number, file: string, position: number, length: number, from: Pick<typeof fs, 'readSync'> = fs): Buffer {
  const buf = Buffer.allocUnsafe(length);
  let got = 0;
  while (got < length) {
    let n: number;
    try {
      n = from.readSync(fd, buf, got, length - got, position + got);
    } catch (e) {
      throw ioError(file, e);
    }
    if (n === 0) break;
    got += n;
  }
  return buf.subarray(0, got);
}

/**
 * Wraps a failed file-system call as `E_IO` (or `E_NO_SPACE` for ENOSPC), keeping the cause.
 *
 * @example
 * try { fs.readFileSync(p); } catch (e) { throw ioError(p, e); }
 */
export function ioError(file: string, cause: unknown, doing = 'read'): DlbundleError {
  const code = (cause as NodeJS.ErrnoException | undefined)?.code;
  if (code === 'ENOSPC' || code === 'EDQUOT') {
    return new DlbundleError('E_NO_SPACE', `No space left to write ${JSON.stringify(file)}.`, 'Free space on that file system, or point dlbundle at another directory.', { file, cause });
  }
  return new DlbundleError('E_IO', `Could not ${doing} ${JSON.stringify(file)}: ${(cause as Error).message}`, 'Check that the path exists and that this user may access it.', { file, cause });
}

/**
 * Small synchronous file helpers shared by the readers: positioned reads that
 * fill their buffer, and Node errors turned into DlbundleErrors.
 */
import fs = require('node:fs');
import path = require('node:path');
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

/**
 * `fs.openSync`, with a failure as `E_IO` (or `E_NO_SPACE`) naming `file`.
 *
 * @example
 * const fd = openFile('app', 'r+');
 */
export function openFile(file: string, flags: string, mode?: number): number {
  try {
    return fs.openSync(file, flags, mode);
  } catch (e) {
    throw ioError(file, e, flags === 'r' ? 'read' : 'open for writing');
  }
}

/**
 * Writes all of `bytes` at `position` (short writes continued); a failure is `E_IO` / `E_NO_SPACE`.
 *
 * @example
 * writeAllAt(fd, 'app', header, 0);
 */
export function writeAllAt(fd: number, file: string, bytes: Uint8Array, position: number): void {
  for (let done = 0; done < bytes.length; ) {
    try {
      done += fs.writeSync(fd, bytes, done, bytes.length - done, position + done);
    } catch (e) {
      throw ioError(file, e, 'write');
    }
  }
}

/**
 * Fills `buffer` with `length` bytes of `fd` at `position`, returning
 * `length`; a file that ends sooner changed while it was read (`E_IO`).
 * Unlike {@link readRange}, the caller's buffer is reused: a file of any size
 * is read through one chunk.
 *
 * @example
 * const n = readExactly(fd, 'blob', chunk, offset, chunk.length);
 */
export function readExactly(fd: number, file: string, buffer: Buffer, position: number, length: number): number {
  let got = 0;
  while (got < length) {
    let n: number;
    try {
      n = fs.readSync(fd, buffer, got, length - got, position + got);
    } catch (e) {
      throw ioError(file, e);
    }
    if (n === 0) throw new DlbundleError('E_IO', `${JSON.stringify(file)} became shorter while it was read.`, 'Run the command again; nothing else may write its files meanwhile.', { file });
    got += n;
  }
  return got;
}

/**
 * Writes `file` through `fill(tmp)` at a temporary path and renames it into
 * place, so that a reader never sees half of it. The temporary path is in a
 * fresh private directory (mkdtemp: an unpredictable name, mode 0700) beside
 * `file`, on the same file system: another user of a shared directory such
 * as /tmp cannot plant a link at a name guessed in advance (`out.tmp-<pid>`)
 * and have it written through.
 *
 * @example
 * replaceFile('app', (tmp) => fs.copyFileSync(process.execPath, tmp));
 */
export function replaceFile(file: string, fill: (tmp: string) => void): void {
  let dir: string;
  try {
    dir = fs.mkdtempSync(path.join(path.dirname(file), '.dlbundle-'));
  } catch (e) {
    throw ioError(path.dirname(file), e, 'create a temporary directory in');
  }
  try {
    const tmp = path.join(dir, path.basename(file));
    fill(tmp);
    try {
      fs.renameSync(tmp, file);
    } catch (e) {
      throw ioError(file, e, 'write');
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

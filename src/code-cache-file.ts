/**
 * V8's code cache of dlbundle's own run time, kept in the default cache root
 * as `<root>/.code-cache/<key>`: the bytecode of every function a start ran,
 * so that the next process does not parse and compile them again (about half
 * of what a warm start cost beyond the floor).
 *
 * A code cache is code: V8 runs what it holds. It is read only from a file
 * that this user owns, that nobody else can write, and that is not a
 * symbolic link; it is written only into a root that passes the root check
 * (code-cache.ts), atomically (flushed, then renamed into place). Its first
 * line names the key it was made for and its length, so a file moved or cut
 * short is not taken for another. V8 itself refuses a cache made by another
 * V8 version, with other flags, or for another source.
 */
import fs = require('node:fs');
import path = require('node:path');
import { effectiveUid } from './default-root';
import { runtimePlatform } from './platform';

/** The directory in a cache root that holds code caches. */
export const CODE_CACHE_DIR = '.code-cache';

const MAGIC = 'dlbundle-code-cache-v1';

/** Where the loader leaves what the run time needs to save the code cache (code-cache.ts). */
export const PENDING_CODE_CACHE = Symbol.for('dlbundle.codeCache.v1');

/** A code cache to save once the first start has run. */
export interface PendingCodeCache {
  readonly key: string;
  /** V8's cache of the run time as compiled so far. */
  produce(): Buffer;
}

/**
 * The name of the code cache of the run time with build id `runtimeId` under
 * this V8 and architecture.
 *
 * @example
 * codeCacheKey('1a2b3c4d5e6f7a8b') // '1a2b3c4d5e6f7a8b-11.3.244.8-node.35-x64'
 */
export function codeCacheKey(runtimeId: string): string {
  return `${runtimeId}-${process.versions.v8}-${process.arch}`.replace(/[^A-Za-z0-9._-]/g, '_');
}

/**
 * The first line of a code cache file: what it is, its key, the length of the data after it.
 *
 * @example
 * codeCacheHeader('1a2b…-x64', 118000) // 'dlbundle-code-cache-v1 1a2b…-x64 118000\n'
 */
export function codeCacheHeader(key: string, length: number): string {
  return `${MAGIC} ${key} ${length}\n`;
}

/**
 * The data of the code cache `key` in `root`, or null when there is none or
 * it cannot be trusted (not a regular file of this user, writable by others,
 * a symbolic link, another key, the wrong length). Never throws: without a
 * cache, the run time is compiled as usual.
 *
 * @example
 * readCodeCache('/tmp/dlbundle-1000', codeCacheKey(id)) // <Buffer c0 de …> | null
 */
export function readCodeCache(root: string, key: string): Buffer | null {
  let fd: number;
  try {
    fd = fs.openSync(path.join(root, CODE_CACHE_DIR, key), fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW);
  } catch {
    return null;
  }
  try {
    const st = fs.fstatSync(fd);
    // Windows reports no owner or permission bits: the root's ACL is what keeps others out (roots.ts).
    const posix = runtimePlatform().privacy === 'posix';
    if (!st.isFile() || (posix && (st.uid !== effectiveUid() || (st.mode & 0o022) !== 0)) || st.size > 64 << 20) return null;
    const bytes = Buffer.allocUnsafe(st.size);
    let size = 0;
    while (size < bytes.length) {
      const n = fs.readSync(fd, bytes, size, bytes.length - size, null);
      if (n === 0) break;
      size += n;
    }
    const newline = bytes.indexOf(10);
    if (newline < 0) return null;
    const data = bytes.subarray(newline + 1, size);
    return bytes.toString('latin1', 0, newline + 1) === codeCacheHeader(key, data.length) ? data : null;
  } catch {
    return null;
  } finally {
    fs.closeSync(fd);
  }
}

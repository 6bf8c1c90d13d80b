/**
 * What tells the two ways of writing a single executable apart from the file
 * alone: the injector (src/build/sea-inject.ts) leaves every byte of the node
 * it copied as it was except e_phoff, e_phnum and the fuse, and appends;
 * node's own `--build-sea` rewrites the ELF structure.
 */
import * as fs from 'node:fs';
import { SEA_FUSE } from '../src/build/sea-inject';

/** The byte offsets at which two files differ within the first `length` bytes, compared a chunk at a time. */
export function differences(a: string, b: string, length: number): number[] {
  const out: number[] = [];
  const fa = fs.openSync(a, 'r');
  const fb = fs.openSync(b, 'r');
  try {
    const chunk = 16 * 1024 * 1024;
    const ba = Buffer.alloc(chunk);
    const bb = Buffer.alloc(chunk);
    for (let at = 0; at < length; at += chunk) {
      const n = Math.min(chunk, length - at);
      fs.readSync(fa, ba, 0, n, at);
      fs.readSync(fb, bb, 0, n, at);
      if (ba.subarray(0, n).equals(bb.subarray(0, n))) continue;
      for (let i = 0; i < n; i++) if (ba[i] !== bb[i]) out.push(at + i);
    }
  } finally {
    fs.closeSync(fa);
    fs.closeSync(fb);
  }
  return out;
}

/** The offset of the flipped fuse's last byte in `exe`. */
export function fuseOffset(exe: string): number {
  return fs.readFileSync(exe).indexOf(`${SEA_FUSE}:1`) + SEA_FUSE.length + 1;
}

/**
 * The offsets before `node`'s end where the single executable `exe` differs
 * from that node, other than e_phoff (bytes 32–39), e_phnum (56–57) and the
 * fuse: none when the injector wrote it.
 */
export function changedBeyondHeaderAndFuse(exe: string, node: string = process.execPath): number[] {
  const fuseAt = fuseOffset(exe);
  return differences(node, exe, fs.statSync(node).size).filter((at) => !((at >= 32 && at < 40) || at === 56 || at === 57 || at === fuseAt));
}

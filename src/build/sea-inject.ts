/**
 * Puts a SEA preparation blob into a copy of an ELF `node` where Node's
 * single-executable support looks for it on Linux: a note named
 * `NODE_SEA_BLOB` in a PT_NOTE segment of the running executable (found
 * through dl_iterate_phdr, so the note must be loaded), with the SEA fuse
 * string flipped from `:0` to `:1`.
 *
 * It appends instead of rebuilding: the program header table is copied to the
 * end of the file with two more entries (a read-only PT_LOAD over the copy and
 * the note, and the PT_NOTE itself), PT_PHDR and e_phoff point at the copy,
 * and the blob is streamed in after it. Apart from the ELF header and the fuse
 * byte, nothing before the old end of the file changes, and memory stays at
 * one chunk whatever the sizes; postject reads the executable and the blob
 * into LIEF's heap and rewrites the whole file (0.7 GB for an empty app).
 */
import fs = require('node:fs');
import { DlbundleError } from '../errors';
import { PT_LOAD, PT_NOTE, PT_PHDR, readLayout, type ProgramHeader } from '../formats/elf';
import { fdSource } from '../formats/elf-file';
import { openFile, readExactly, readRange, writeAllAt } from '../file-io';

/** The fuse Node's SEA support checks; written in two parts so that no program built from this file carries it whole. */
export const SEA_FUSE = ['NODE_SEA_FUSE', 'fce680ab2cc467b6e072b8b5df1996b2'].join('_');

const NOTE_NAME = 'NODE_SEA_BLOB';
const PF_R = 4;
// An ELF64 program header; 32-bit executables are refused before any write.
const PHENTSIZE = 56;
const NHDR_SIZE = 12;
// The note's name, NUL-terminated and padded to 4 bytes as notes are.
const NAME_FIELD = 16;
const CHUNK = 8 * 1024 * 1024;
const MAX_DESC = 0xffff_ffff;

/** Options of {@link injectSeaBlob}. */
export interface InjectOptions {
  /** Called as the blob is copied in: bytes done of the blob's size. */
  readonly onProgress?: (done: number, total: number) => void;
}

/**
 * Injects `blobFile` (written by `node --experimental-sea-config`) into
 * `executable`, a copy of the `node` that wrote it, in place. Throws
 * `E_USAGE` when the file is not a 64-bit ELF `node` with an unflipped SEA
 * fuse (32-bit, already a single executable, not node), `E_NOT_ELF` /
 * `E_BAD_ELF` for what is not ELF or is damaged, and `E_IO` / `E_NO_SPACE`
 * when the file cannot be written.
 *
 * @example
 * fs.copyFileSync(process.execPath, 'app');
 * injectSeaBlob('app', 'sea-prep.blob');
 */
export function injectSeaBlob(executable: string, blobFile: string, options: InjectOptions = {}): void {
  const fd = openFile(executable, 'r+');
  try {
    const size = fs.fstatSync(fd).size;
    const layout = readLayout(fdSource(fd, executable, size), executable);
    if (layout.class !== 64 || (layout.type !== 'exec' && layout.type !== 'dyn')) {
      throw usage(executable, `is a ${layout.class}-bit ELF ${layout.type === 'dyn' || layout.type === 'exec' ? 'executable' : `${layout.type} file`}, not a 64-bit node executable`);
    }
    const fuse = findFuse(fd, executable, size);
    const blobFd = openFile(blobFile, 'r');
    try {
      const blobSize = fs.fstatSync(blobFd).size;
      if (blobSize > MAX_DESC) {
        throw new DlbundleError('E_USAGE', `The SEA blob ${JSON.stringify(blobFile)} is ${blobSize} bytes; an ELF note holds at most 4 GiB.`, 'Carry fewer or smaller libraries in the executable, or ship them beside it in a bundle directory.', { file: blobFile });
      }
      const plan = planAppend(layout.segments, size, blobSize, executable);
      const little = layout.endian === 'little';
      writeAllAt(fd, executable, headBytes(plan, layout.segments, blobSize, little), plan.start);
      const chunk = Buffer.allocUnsafe(Math.min(CHUNK, blobSize));
      for (let done = 0; done < blobSize; ) {
        const n = readExactly(blobFd, blobFile, chunk, done, Math.min(CHUNK, blobSize - done));
        writeAllAt(fd, executable, chunk.subarray(0, n), plan.descAt + done);
        done += n;
        options.onProgress?.(done, blobSize);
      }
      const padding = align(blobSize, 4) - blobSize;
      if (padding > 0) writeAllAt(fd, executable, Buffer.alloc(padding), plan.descAt + blobSize);
      // Last, the ELF header and the fuse: until they change, the file is the
      // node it was copied from, with data nothing reads after its end.
      const header = Buffer.alloc(2);
      new DataView(header.buffer).setUint16(0, plan.phnum, little);
      const phoff = Buffer.alloc(8);
      new DataView(phoff.buffer).setBigUint64(0, BigInt(plan.start), little);
      writeAllAt(fd, executable, phoff, 32);
      writeAllAt(fd, executable, header, 56);
      writeAllAt(fd, executable, Buffer.from('1'), fuse);
    } finally {
      fs.closeSync(blobFd);
    }
  } finally {
    fs.closeSync(fd);
  }
}

interface AppendPlan {
  /** File offset (and, past the first segment's bias, address) of the new segment: the table, then the note. */
  readonly start: number;
  readonly base: number;
  readonly align: number;
  readonly phnum: number;
  readonly noteAt: number;
  readonly descAt: number;
  readonly end: number;
}

/**
 * Where the new segment goes. Its file offset is its address minus the first
 * PT_LOAD's (vaddr − offset): the kernel's AT_PHDR is that bias plus e_phoff
 * before Linux 5.18 and, since, the address of e_phoff inside the PT_LOAD
 * that holds it; the two agree only when the segment keeps that bias. It
 * starts past both the file's end and the highest address any segment
 * reaches (.bss included), on the largest PT_LOAD alignment.
 */
function planAppend(segments: readonly ProgramHeader[], size: number, blobSize: number, file: string): AppendPlan {
  const loads = segments.filter((s) => s.type === PT_LOAD);
  const first = loads[0];
  if (first === undefined) throw usage(file, 'has no loadable segment');
  if (!segments.some((s) => s.type === PT_PHDR)) throw usage(file, 'has no PT_PHDR program header');
  const segmentAlign = Math.max(4096, ...loads.map((s) => s.align));
  const base = first.vaddr - first.offset;
  if (!Number.isSafeInteger(base) || base < 0 || base % segmentAlign !== 0) throw usage(file, 'maps its first segment at an address dlbundle cannot extend from');
  const highest = Math.max(...loads.map((s) => s.vaddr + s.memsz)) - base;
  if (!Number.isSafeInteger(highest)) throw usage(file, 'has a segment past 2^53');
  const phnum = segments.length + 2;
  // Linux before 5.x reads at most one page of program headers.
  if (phnum * PHENTSIZE > 4096) throw usage(file, 'has too many program headers to add two within a page');
  const start = align(Math.max(size, highest), segmentAlign);
  // The note header at 4 past a 16-byte boundary puts the blob (after the
  // 12-byte header and the 16-byte name) on a 16-byte boundary.
  const noteAt = align(start + phnum * PHENTSIZE, 16) + 4;
  const descAt = noteAt + NHDR_SIZE + NAME_FIELD;
  return { start, base, align: segmentAlign, phnum, noteAt, descAt, end: descAt + align(blobSize, 4) };
}

/** The new program header table and the note's header and name, as they sit at `plan.start`. */
function headBytes(plan: AppendPlan, segments: readonly ProgramHeader[], blobSize: number, little: boolean): Buffer {
  const bytes = Buffer.alloc(plan.descAt - plan.start);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.length);
  const lastLoad = segments.filter((s) => s.type === PT_LOAD).at(-1);
  const table: Omit<ProgramHeader, 'index' | 'at'>[] = [];
  const tableSize = plan.phnum * PHENTSIZE;
  for (const s of segments) {
    table.push(s.type === PT_PHDR ? { ...s, offset: plan.start, vaddr: plan.base + plan.start, paddr: plan.base + plan.start, filesz: tableSize, memsz: tableSize } : s);
    // PT_LOADs stay in ascending address order, as the ELF specification requires.
    if (s === lastLoad) {
      const length = plan.end - plan.start;
      table.push({ type: PT_LOAD, flags: PF_R, offset: plan.start, vaddr: plan.base + plan.start, paddr: plan.base + plan.start, filesz: length, memsz: length, align: plan.align });
    }
  }
  const noteLength = plan.end - plan.noteAt;
  table.push({ type: PT_NOTE, flags: PF_R, offset: plan.noteAt, vaddr: plan.base + plan.noteAt, paddr: plan.base + plan.noteAt, filesz: noteLength, memsz: noteLength, align: 4 });
  table.forEach((s, i) => {
    const at = i * PHENTSIZE;
    view.setUint32(at, s.type, little);
    view.setUint32(at + 4, s.flags, little);
    for (const [k, field] of [[8, s.offset], [16, s.vaddr], [24, s.paddr], [32, s.filesz], [40, s.memsz], [48, s.align]] as const) view.setBigUint64(at + k, BigInt(field), little);
  });
  const note = plan.noteAt - plan.start;
  view.setUint32(note, NOTE_NAME.length + 1, little);
  view.setUint32(note + 4, blobSize, little);
  view.setUint32(note + 8, 0, little);
  bytes.write(NOTE_NAME, note + NHDR_SIZE, 'latin1');
  return bytes;
}

/**
 * The file offset of the fuse's last character. Exactly one fuse, ending in
 * `:0`, is what a node with SEA support that is not yet a single executable
 * holds; anything else is refused rather than guessed at. (Shared with the
 * PE injector, sea-inject-pe.ts.)
 *
 * @example
 * writeAll(fd, file, Buffer.from('1'), findFuse(fd, file, size));
 */
export function findFuse(fd: number, file: string, size: number): number {
  const needle = Buffer.from(`${SEA_FUSE}:`, 'latin1');
  const found: number[] = [];
  // Chunks overlap by the needle's length, so a fuse that straddles two
  // chunks is found whole in the second; its flag byte is read on its own.
  const buffer = Buffer.allocUnsafe(CHUNK + needle.length);
  for (let at = 0; at < size; at += CHUNK) {
    const chunk = buffer.subarray(0, readExactly(fd, file, buffer, at, Math.min(buffer.length, size - at)));
    for (let i = chunk.indexOf(needle); i !== -1 && i < CHUNK; i = chunk.indexOf(needle, i + 1)) found.push(at + i + needle.length);
  }
  if (found.length !== 1) throw usage(file, found.length === 0 ? "has no SEA fuse (it is not a node with single-executable support, Node 20.12 or newer)" : `has the SEA fuse ${found.length} times`);
  const flag = readRange(fd, file, found[0] as number, 1).toString('latin1');
  if (flag === '1') throw usage(file, 'is already a single executable (its SEA fuse is set)');
  if (flag !== '0') throw usage(file, `has an SEA fuse ending in ${JSON.stringify(flag)}`);
  return found[0] as number;
}

function usage(file: string, what: string): DlbundleError {
  return new DlbundleError('E_USAGE', `${JSON.stringify(file)} ${what}; a SEA blob goes into a copy of a plain 64-bit node executable.`, 'Build with the node executable itself (process.execPath, or node.exe for Windows), not a single executable or a script that wraps node.', { file });
}

function align(n: number, to: number): number {
  return Math.ceil(n / to) * to;
}

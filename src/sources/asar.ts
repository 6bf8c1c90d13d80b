/**
 * A bundle inside an Electron asar archive, read directly: no Electron and no
 * @electron/asar at run time.
 *
 * The archive, as @electron/asar writes it and Electron's
 * shell/common/asar/archive.cc reads it (Chromium Pickle framing, little-endian):
 *
 *   [0, 4)       uint32 4      payload size of the "size" pickle
 *   [4, 8)       uint32 H      byte size of the header pickle that follows
 *   [8, 8 + H)   header pickle: uint32 payload size, int32 string length,
 *                the JSON tree as UTF-8, zero padding to 4 bytes
 *   [8 + H, …)   file data; a file's `offset` (a decimal string) counts from 8 + H
 *
 * The tree is `{ files: { <name>: node } }`, where a node is a directory
 * (`files`), a link (`link`: a path from the archive's root), or a file
 * (`size`, and `offset` unless `unpacked`). Unpacked files live on disk at
 * `<archive>.unpacked/<path inside the archive>`.
 */
import fs = require('node:fs');
import path = require('node:path');
import { logger } from '../log';
import { ioError, readRange } from '../file-io';
import { DlbundleError, isDlbundleError } from '../errors';
import { runSync, syncIo, type Io, type Step } from '../io';
import { MANIFEST_FILE, parseManifest, type Manifest } from '../manifest';
import type { BlobReader, Source } from './source';

const debug = logger('dlbundle:asar');

/** A JSON object as JSON.parse returns it. */
type JsonObject = { readonly [key: string]: unknown };

/** Bytes before the header pickle: the size pickle (payload size 4, then the header size). */
const SIZE_PICKLE_BYTES = 8;

/** Links followed in one lookup before it is called a loop (the kernel's MAXSYMLINKS). */
const MAX_LINK_HOPS = 40;

/** Chunk size of streamed copies, as the cache uses. */
const COPY_CHUNK = 64 * 1024;

/** An archive's parsed header. */
export interface AsarHeader {
  /** Absolute path of the archive. */
  readonly archive: string;
  /** The archive's size in bytes when the header was read; every packed file lies inside it. */
  readonly archiveSize: number;
  /** Byte size of the header pickle (the uint32 at byte 4), as @electron/asar's `getRawHeader` reports it. */
  readonly headerSize: number;
  /** Where file data starts, 8 + headerSize: packed files' offsets count from here. */
  readonly dataOffset: number;
  /** The JSON tree, `{ files: { … } }`. Nodes are checked when a lookup reaches them. */
  readonly tree: JsonObject;
}

/**
 * A path inside an archive, after following links. `path` is where the entry
 * really is ('/'-separated, no leading '/').
 */
export type AsarEntry =
  | { readonly kind: 'directory'; readonly path: string; readonly names: readonly string[] }
  /** Bytes `[offset, offset + size)` of `archive`. */
  | { readonly kind: 'packed'; readonly path: string; readonly size: number; readonly archive: string; readonly offset: number }
  /** A file on disk in `<archive>.unpacked`; `size` is what the header says. */
  | { readonly kind: 'unpacked'; readonly path: string; readonly size: number; readonly file: string };

/** An entry that holds bytes. */
export type AsarFileEntry = Exclude<AsarEntry, { kind: 'directory' }>;

/**
 * The bundle in directory `innerDir` of the asar archive `archive` (the
 * directory holding `dlbundle.json`). The header is read on first use, once.
 * Throws `E_USAGE` at once when `innerDir` climbs out with `..`.
 *
 * @example
 * openBundle({ source: fromAsar(path.join(process.resourcesPath, 'app.asar'), 'native') });
 */
export function fromAsar(archive: string, innerDir: string): Source {
  const file = path.resolve(archive);
  const inner = innerParts(innerDir, file);
  const location = `${file}:/${inner.join('/')}`;
  let header: AsarHeader | undefined;
  let manifest: Manifest | undefined;
  const readHeader = (): AsarHeader => (header ??= readAsarHeader(file));

  function blobEntry(variant: string, name: string): AsarFileEntry {
    const parts = [...inner, variant, name];
    const entry = lookup(readHeader(), parts);
    if (entry === null || entry.kind === 'directory') {
      throw new DlbundleError(
        'E_MISSING_BLOB',
        `The bundle in ${location} lists ${JSON.stringify(name)} for ${variant}, but the archive has ${entry === null ? 'no' : 'a directory at'} ${JSON.stringify(`/${parts.join('/')}`)}.`,
        'Put the whole bundle directory, as `dlbundle pack` wrote it, into the archive, or pack it again.',
        { file: name, dir: location },
      );
    }
    return entry;
  }

  function* openBlob(io: Io, variant: string, name: string): Step<BlobReader> {
    const entry = blobEntry(variant, name);
    try {
      return yield* openAsarFile(io, entry);
    } catch (e) {
      if (isMissing(e) && entry.kind === 'unpacked') throw missingUnpacked('E_MISSING_BLOB', entry, location, e);
      throw isDlbundleError(e) ? e : ioError(entry.kind === 'unpacked' ? entry.file : file, e);
    }
  }

  return {
    kind: 'asar',
    location,
    manifest() {
      if (manifest !== undefined) return manifest;
      const h = readHeader();
      const dir = lookup(h, inner);
      if (dir === null || dir.kind !== 'directory') {
        const top = lookup(h, []);
        const names = top !== null && top.kind === 'directory' ? top.names.slice(0, 20) : [];
        throw new DlbundleError(
          'E_IO',
          `The asar archive ${JSON.stringify(file)} has ${dir === null ? 'no' : 'a file, not a directory, at'} ${JSON.stringify(`/${inner.join('/')}`)}; its top level holds ${JSON.stringify(names)}.`,
          'Pass the path, inside the archive, of the directory that holds dlbundle.json (e.g. fromAsar(archive, "native")), and check that the build put that directory into the archive.',
          { file, dir: location },
        );
      }
      const entry = lookup(h, [...inner, MANIFEST_FILE]);
      if (entry === null || entry.kind === 'directory') {
        throw new DlbundleError(
          'E_IO',
          `The directory ${location} of the asar archive holds no ${MANIFEST_FILE}.`,
          'Pack the bundle into that directory (`dlbundle pack --out`) before the archive is built, or name the directory that holds dlbundle.json.',
          { file, dir: location },
        );
      }
      let text: string;
      try {
        text = runSync(readAsarFile(syncIo, entry)).toString('utf8');
      } catch (e) {
        if (isMissing(e) && entry.kind === 'unpacked') throw missingUnpacked('E_IO', entry, location, e);
        throw isDlbundleError(e) ? e : ioError(entry.kind === 'unpacked' ? entry.file : file, e);
      }
      manifest = parseManifest(text, `${location}/${MANIFEST_FILE}`, { checkDigest: false, variants: 'on-use' });
      return manifest;
    },
    openBlob: (io, variant, f) => openBlob(io, variant, f.name),
  };
}

/**
 * Splits a path that runs through an asar archive into the archive and the
 * path inside it: the first component ending in `.asar` that is a file on
 * disk. Null when no component is one.
 *
 * @example
 * asarLocation('/opt/app/resources/app.asar/native') // { archive: '/opt/app/resources/app.asar', inner: 'native' }
 */
export function asarLocation(dir: string): { archive: string; inner: string } | null {
  const abs = path.resolve(dir);
  const parts = abs.split(path.sep).filter((p) => p !== '');
  let prefix = path.parse(abs).root;
  for (let i = 0; i < parts.length; i++) {
    const part = parts[i] as string;
    prefix = path.join(prefix, part);
    // Electron compares the extension without regard to case.
    if (/\.asar$/i.test(part) && isFile(prefix)) return { archive: prefix, inner: parts.slice(i + 1).join('/') };
  }
  return null;
}

/**
 * `<archive>.unpacked/<inner>` when that directory exists and holds a
 * `dlbundle.json` (the bundle was unpacked whole and can be used in place),
 * null otherwise. Throws `E_USAGE` when `inner` climbs out with `..`.
 *
 * @example
 * unpackedTwin('/opt/app/resources/app.asar', 'native') // '/opt/app/resources/app.asar.unpacked/native'
 */
export function unpackedTwin(archive: string, inner: string): string | null {
  const twin = path.join(`${path.resolve(archive)}.unpacked`, ...innerParts(inner));
  return isDirectory(twin) && isFile(path.join(twin, MANIFEST_FILE)) ? twin : null;
}

/**
 * Reads and checks an archive's header (synchronously: it is needed before
 * the first symbol call). `E_IO` when the archive cannot be read,
 * `E_BAD_MANIFEST` when it is damaged or truncated.
 *
 * @example
 * readAsarHeader('app.asar').dataOffset // 8 + the header pickle's size
 */
export function readAsarHeader(archive: string): AsarHeader {
  const file = path.resolve(archive);
  const afs = archiveFs();
  let fd: number;
  try {
    fd = afs.openSync(file, 'r');
  } catch (e) {
    throw ioError(file, e);
  }
  try {
    let archiveSize: number;
    try {
      const st = afs.fstatSync(fd);
      if (!st.isFile()) {
        throw new DlbundleError('E_IO', `${JSON.stringify(file)} is not a file, so not an asar archive.`, 'An archive extracted into a directory is read with fromDirectory.', { file });
      }
      archiveSize = st.size;
    } catch (e) {
      throw isDlbundleError(e) ? e : ioError(file, e);
    }
    const sizePickle = picklePayload(readRange(fd, file, 0, SIZE_PICKLE_BYTES, afs));
    if (sizePickle === null || sizePickle.length < 4) {
      throw damaged(file, `it does not start with the ${SIZE_PICKLE_BYTES}-byte pickle that holds the header size (the file has ${archiveSize} bytes)`, 0);
    }
    const headerSize = sizePickle.readUInt32LE(0);
    const dataOffset = SIZE_PICKLE_BYTES + headerSize;
    if (dataOffset > archiveSize) {
      throw damaged(file, `the header size ${headerSize} runs past the end of the ${archiveSize}-byte file`, 4);
    }
    const payload = picklePayload(readRange(fd, file, SIZE_PICKLE_BYTES, headerSize, afs));
    if (payload === null || payload.length < 4) throw damaged(file, `the header pickle (${headerSize} bytes) is malformed`, SIZE_PICKLE_BYTES);
    const length = payload.readInt32LE(0);
    if (length < 0 || length > payload.length - 4) {
      throw damaged(file, `the header string length ${length} does not fit the ${payload.length}-byte pickle payload`, dataOffset - payload.length);
    }
    const text = payload.toString('utf8', 4, 4 + length);
    let tree: unknown;
    try {
      tree = JSON.parse(text);
    } catch (e) {
      throw damaged(file, `the header is not valid JSON (${(e as Error).message})`, dataOffset - payload.length + 4);
    }
    if (!isObject(tree) || !isObject(tree.files)) throw damaged(file, 'the header is not a {"files": {…}} tree', dataOffset - payload.length + 4);
    debug('%s: %d-byte header, data from byte %d of %d', file, headerSize, dataOffset, archiveSize);
    return { archive: file, archiveSize, headerSize, dataOffset, tree };
  } finally {
    afs.closeSync(fd);
  }
}

/**
 * The entry at `inner` (a '/'-separated path inside the archive), following
 * links within the archive; null when there is none. `E_BAD_MANIFEST` when a
 * node on the way is damaged (wrong shape, data outside the archive, a link
 * out of the archive or in a loop); `E_USAGE` when `inner` has `..`.
 *
 * @example
 * findAsarEntry(readAsarHeader('app.asar'), 'native/dlbundle.json') // { kind: 'packed', … }
 */
export function findAsarEntry(header: AsarHeader, inner: string): AsarEntry | null {
  return lookup(header, innerParts(inner));
}

/**
 * Opens a file entry for chunked reads: positioned reads of the archive for a
 * packed file (never past its end), the file in `<archive>.unpacked` for an
 * unpacked one. Failures to open are Node's errors (`code` ENOENT, …).
 *
 * @example
 * const reader = runSync(openAsarFile(syncIo, entry));
 */
export function* openAsarFile(io: Io, entry: AsarFileEntry): Step<BlobReader> {
  if (entry.kind === 'unpacked') return rangeReader(entry.file, yield* io.openRead(entry.file), 0, Infinity);
  return rangeReader(entry.archive, yield* openArchive(io, entry.archive), entry.offset, entry.offset + entry.size);
}

/**
 * A whole file entry's bytes (for small files: the manifest, tests).
 *
 * @example
 * const text = runSync(readAsarFile(syncIo, entry)).toString('utf8');
 */
export function* readAsarFile(io: Io, entry: AsarFileEntry): Step<Buffer> {
  const reader = yield* openAsarFile(io, entry);
  try {
    const scratch = Buffer.allocUnsafe(Math.min(COPY_CHUNK, Math.max(entry.size, 1)));
    const chunks: Buffer[] = [];
    for (let position = 0; ; ) {
      const chunk = yield* reader.read(io, position, scratch);
      if (chunk.length === 0) return Buffer.concat(chunks);
      chunks.push(Buffer.from(chunk)); // the scratch buffer is reused
      position += chunk.length;
    }
  } finally {
    yield* reader.close(io);
  }
}

/**
 * The fs module that sees an asar archive as the file it is. Inside Electron
 * `fs` is patched to show `app.asar` as a directory; `original-fs` is the
 * unpatched module. (`<archive>.unpacked` paths are plain paths either way.)
 */
function archiveFs(): typeof fs {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  return process.versions.electron === undefined ? fs : (require('original-fs') as typeof fs);
}

function* openArchive(io: Io, archive: string): Step<number> {
  const afs = archiveFs();
  return yield* io.either(
    () => afs.openSync(archive, 'r'),
    () => new Promise<number>((resolve, reject) => afs.open(archive, 'r', (e, fd) => (e === null ? resolve(fd) : reject(e)))),
  );
}

/** Reads `[start + position, …)` of `fd`, never at or past `end`. */
function rangeReader(file: string, fd: number, start: number, end: number): BlobReader {
  return {
    *read(io, position, scratch) {
      const want = Math.min(scratch.length, end - start - position);
      if (want <= 0) return scratch.subarray(0, 0);
      let n: number;
      try {
        n = yield* io.read(fd, scratch.subarray(0, want), start + position);
      } catch (e) {
        throw ioError(file, e);
      }
      return scratch.subarray(0, n);
    },
    close: (io) => io.close(fd),
  };
}


/** Resolves `parts` from the root, following links; null when something on the way is absent. */
function lookup(header: AsarHeader, parts: readonly string[]): AsarEntry | null {
  let pending = [...parts];
  let node: JsonObject = header.tree;
  let at: string[] = [];
  let hops = 0;
  for (let name = pending.shift(); name !== undefined; name = pending.shift()) {
    const files = node.files;
    if (files === undefined) return null; // a file where a directory was expected
    if (!isObject(files)) throw damaged(header.archive, `the "files" of ${display(at)} is not an object`);
    if (!Object.hasOwn(files, name)) return null;
    const child = files[name];
    at = [...at, name];
    if (!isObject(child)) throw damaged(header.archive, `the entry ${display(at)} is ${JSON.stringify(child)}, not an object`);
    if (child.link !== undefined) {
      // As in Electron, a link is followed wherever it appears, and its target
      // is a path from the archive's root.
      if (typeof child.link !== 'string') throw damaged(header.archive, `the link ${display(at)} has target ${JSON.stringify(child.link)}`);
      if (++hops > MAX_LINK_HOPS) throw damaged(header.archive, `looking up ${display(parts)} follows more than ${MAX_LINK_HOPS} links (a loop at ${display(at)})`);
      pending = [...linkTarget(header.archive, child.link, at), ...pending];
      node = header.tree;
      at = [];
      continue;
    }
    node = child;
  }
  return entryOf(header, node, at);
}

/** A link's target as components from the root; refuses one that climbs out of the archive. */
function linkTarget(archive: string, link: string, at: readonly string[]): string[] {
  const out: string[] = [];
  // Archives built on Windows write links with backslashes.
  for (const part of link.split(/[/\\]/)) {
    if (part === '' || part === '.') continue;
    if (part === '..') {
      if (out.pop() === undefined) throw damaged(archive, `the link ${display(at)} points outside the archive (${JSON.stringify(link)})`);
      continue;
    }
    out.push(part);
  }
  return out;
}

function entryOf(header: AsarHeader, node: JsonObject, at: readonly string[]): AsarEntry {
  const where = at.join('/');
  if (node.files !== undefined) {
    if (!isObject(node.files)) throw damaged(header.archive, `the "files" of ${display(at)} is not an object`);
    return { kind: 'directory', path: where, names: Object.keys(node.files) };
  }
  const size = node.size;
  if (typeof size !== 'number' || !Number.isSafeInteger(size) || size < 0) {
    throw damaged(header.archive, `the file ${display(at)} has size ${JSON.stringify(size)}, not a non-negative integer`);
  }
  if (node.unpacked !== undefined && typeof node.unpacked !== 'boolean') {
    throw damaged(header.archive, `the file ${display(at)} has "unpacked": ${JSON.stringify(node.unpacked)}`);
  }
  if (node.unpacked === true) {
    // `at` holds names matched one by one (no '/', no '..'), so the join stays inside `.unpacked`.
    return { kind: 'unpacked', path: where, size, file: path.join(`${header.archive}.unpacked`, ...at) };
  }
  const offset = node.offset;
  // Electron reads the offset as a decimal string (it may exceed 2^32).
  if (typeof offset !== 'string' || !/^[0-9]{1,16}$/.test(offset)) {
    throw damaged(header.archive, `the file ${display(at)} has offset ${JSON.stringify(offset)}, not a decimal string`);
  }
  const start = header.dataOffset + Number(offset);
  if (!Number.isSafeInteger(start + size) || start + size > header.archiveSize) {
    throw damaged(header.archive, `the file ${display(at)} (${size} bytes at data offset ${offset}) runs past the end of the ${header.archiveSize}-byte archive`, start);
  }
  return { kind: 'packed', path: where, size, archive: header.archive, offset: start };
}

/**
 * The payload of a Chromium Pickle that fills `buf`: the leading uint32 is the
 * payload size, and the header before the payload must be 4-byte aligned.
 */
function picklePayload(buf: Buffer): Buffer | null {
  if (buf.length < 4) return null;
  const payloadSize = buf.readUInt32LE(0);
  if (payloadSize > buf.length - 4 || (buf.length - payloadSize) % 4 !== 0) return null;
  return buf.subarray(buf.length - payloadSize);
}


/** Checks an `innerDir`: '/'-separated, a leading '/' allowed, no '..'. */
function innerParts(inner: string, archive?: string): string[] {
  const usage = (why: string, next: string): DlbundleError => new DlbundleError('E_USAGE', `The path inside the asar archive ${JSON.stringify(inner)} ${why}.`, next);
  if (typeof inner !== 'string') throw usage('is not a string', 'Pass the bundle directory\'s path inside the archive, e.g. "native".');
  if (archive !== undefined && path.isAbsolute(inner) && (inner === archive || inner.startsWith(archive + path.sep))) {
    throw usage('is a path on disk, not a path inside the archive', 'Pass only the part after the archive (asarLocation() splits such a path).');
  }
  const parts = inner.split('/').filter((p) => p !== '' && p !== '.');
  if (parts.some((p) => p === '..' || p.includes('\\') || p.includes('\0'))) {
    throw usage('has a ".." component, a backslash or a NUL', 'Name a directory inside the archive with "/" between components and no "..".');
  }
  return parts;
}

function isFile(p: string): boolean {
  return statOrNull(p)?.isFile() ?? false;
}

function isDirectory(p: string): boolean {
  return statOrNull(p)?.isDirectory() ?? false;
}

function statOrNull(p: string): fs.Stats | null {
  try {
    return archiveFs().statSync(p);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return null;
    throw ioError(p, e, 'inspect');
  }
}

function isObject(value: unknown): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function isMissing(e: unknown): boolean {
  return (e as NodeJS.ErrnoException | undefined)?.code === 'ENOENT';
}

function display(parts: readonly string[]): string {
  return JSON.stringify(`/${parts.join('/')}`);
}

function damaged(archive: string, what: string, offset?: number): DlbundleError {
  return new DlbundleError(
    'E_BAD_MANIFEST',
    `${JSON.stringify(archive)} is not a valid asar archive: ${what}.`,
    'The archive is damaged or truncated; build it again (or reinstall the application).',
    offset === undefined ? { file: archive } : { file: archive, offset },
  );
}

function missingUnpacked(code: 'E_IO' | 'E_MISSING_BLOB', entry: Extract<AsarEntry, { kind: 'unpacked' }>, location: string, cause: unknown): DlbundleError {
  return new DlbundleError(
    code,
    `${JSON.stringify(`/${entry.path}`)} of the bundle in ${location} is marked unpacked, but ${JSON.stringify(entry.file)} does not exist.`,
    'Ship the ".asar.unpacked" directory beside the archive, as the packager wrote it.',
    { file: path.basename(entry.file), dir: location, cause },
  );
}

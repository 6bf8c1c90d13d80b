/**
 * The SEA blob injector (src/build/sea-inject.ts): the executable it writes
 * runs as a single executable and reads its assets, the file is the node it
 * was copied from plus an appended segment (only the ELF header's e_phoff and
 * e_phnum and the fuse byte change before the old end), memory stays at a
 * chunk for a large blob, and what is not a fresh 64-bit node is refused
 * with a code.
 */
import { strict as assert } from 'node:assert';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { injectSeaBlob, SEA_FUSE } from '../src/build/sea-inject';
import { writeSeaExecutable } from '../src/build/single-file';
import { readLayout } from '../src/elf';
import { fdSource } from '../src/elf-file';
import { expectCode, nativeFixture, REPO, tempDir } from './fixtures';

const PT_LOAD = 1;
const PT_NOTE = 4;
const PT_PHDR = 6;

function layoutOf(file: string): ReturnType<typeof readLayout> {
  const fd = fs.openSync(file, 'r');
  try {
    return readLayout(fdSource(fd, file, fs.fstatSync(fd).size), file);
  } finally {
    fs.closeSync(fd);
  }
}

/** The byte offsets at which two files differ within the first `length` bytes, compared a chunk at a time. */
function differences(a: string, b: string, length: number): number[] {
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

describe('SEA blob injection', function () {
  this.timeout(120_000);

  it('writes an executable that runs as a SEA and reads its asset; only the header and the fuse change before the old end', () => {
    const work = tempDir();
    const main = path.join(work, 'main.cjs');
    fs.writeFileSync(main, "const sea = require('node:sea'); console.log(JSON.stringify({ isSea: sea.isSea(), asset: sea.getAsset('greeting', 'utf8') }));\n");
    fs.writeFileSync(path.join(work, 'greeting.txt'), 'hello from the blob');
    const exe = path.join(work, 'app');
    const progress: number[] = [];
    writeSeaExecutable({ main, assets: { greeting: path.join(work, 'greeting.txt') }, out: exe, work, onProgress: (done) => progress.push(done) });

    assert.deepEqual(JSON.parse(execFileSync(exe, { cwd: tempDir(), encoding: 'utf8' })), { isSea: true, asset: 'hello from the blob' });
    const blob = fs.readFileSync(path.join(work, 'sea-prep.blob'));
    assert.equal(progress.at(-1), blob.length);
    assert.deepEqual(fs.readdirSync(work).filter((f) => f.includes('.tmp-')), [], 'no temporary file left');

    // Before the node's end: e_phoff (bytes 32–39), e_phnum (56–57) and the fuse's last byte, nothing else.
    const original = fs.statSync(process.execPath).size;
    const fuseAt = fs.readFileSync(exe).indexOf(`${SEA_FUSE}:1`) + SEA_FUSE.length + 1;
    const changed = differences(process.execPath, exe, original);
    assert.ok(changed.every((at) => (at >= 32 && at < 40) || at === 56 || at === 57 || at === fuseAt), `changed bytes at ${changed.slice(0, 20).join(', ')}`);
    assert.ok(changed.includes(fuseAt), 'the fuse was flipped');

    const before = layoutOf(process.execPath).segments;
    const after = layoutOf(exe);
    assert.equal(after.segments.length, before.length + 2);
    const firstLoad = after.segments.find((s) => s.type === PT_LOAD);
    const added = after.segments.filter((s) => s.type === PT_LOAD).at(-1);
    const phdr = after.segments.find((s) => s.type === PT_PHDR);
    const note = after.segments.filter((s) => s.type === PT_NOTE).at(-1);
    assert.ok(firstLoad && added && phdr && note);
    assert.ok(added.offset >= original, 'the new segment lies past the old end');
    assert.equal(added.vaddr - added.offset, firstLoad.vaddr - firstLoad.offset, 'the new segment keeps the first one’s bias');
    assert.equal(phdr.offset, added.offset, 'PT_PHDR points at the moved table');
    assert.ok(note.offset + note.filesz <= added.offset + added.filesz, 'the note is loaded');
    // The note itself: NODE_SEA_BLOB, and the blob byte for byte.
    const bytes = fs.readFileSync(exe).subarray(note.offset, note.offset + note.filesz);
    assert.equal(bytes.readUInt32LE(0), 14);
    assert.equal(bytes.readUInt32LE(4), blob.length);
    assert.equal(bytes.subarray(12, 26).toString('latin1'), 'NODE_SEA_BLOB\0');
    assert.ok(bytes.subarray(28, 28 + blob.length).equals(blob));
  });

  it('streams a 300 MB blob in bounded memory', () => {
    const work = tempDir();
    const exe = path.join(work, 'app');
    fs.copyFileSync(process.execPath, exe);
    const blob = path.join(work, 'big.blob');
    fs.writeFileSync(blob, 'not read by anything but the injector');
    fs.truncateSync(blob, 300e6);
    // The growth of the peak RSS over the child's own before the call: node's
    // resident size varies with what of its binary is in the page cache.
    const script = `const { injectSeaBlob } = require(${JSON.stringify(path.join(REPO, 'dist', 'build', 'sea-inject.js'))});
      const before = process.resourceUsage().maxRSS;
      injectSeaBlob(${JSON.stringify(exe)}, ${JSON.stringify(blob)});
      console.log(JSON.stringify([before / 1024, process.resourceUsage().maxRSS / 1024]));`;
    const [beforeMiB, afterMiB] = JSON.parse(execFileSync(process.execPath, ['-e', script], { encoding: 'utf8' })) as [number, number];
    const grownMiB = afterMiB - beforeMiB;
    console.log(`      injecting 300 MB: peak RSS ${beforeMiB.toFixed(0)} MiB before, ${afterMiB.toFixed(0)} MiB after`);
    // Two 8 MiB buffers and what V8 allocates around them; postject held the
    // executable and the blob several times over (0.7 GB for an empty app).
    assert.ok(grownMiB < 64, `peak RSS grew by ${grownMiB} MiB`);
    const note = layoutOf(exe).segments.filter((s) => s.type === PT_NOTE).at(-1);
    assert.equal(note?.filesz, 28 + 300e6);
  });

  it('refuses an executable that is already a SEA, a library, a script and a 32-bit file, and leaves each unchanged', () => {
    const work = tempDir();
    const blob = path.join(work, 'b.blob');
    fs.writeFileSync(blob, 'x');
    const twice = path.join(work, 'app');
    fs.copyFileSync(process.execPath, twice);
    injectSeaBlob(twice, blob);
    const lib = path.join(work, 'lib.so');
    fs.copyFileSync(nativeFixture('libdemo_core.so'), lib);
    const script = path.join(work, 'run.sh');
    fs.writeFileSync(script, '#!/bin/sh\nexec node "$@"\n');
    // An ELF32 header and nothing else: readLayout accepts it, the injector does not.
    const elf32 = path.join(work, 'elf32');
    const h = Buffer.alloc(52);
    Buffer.from([0x7f, 0x45, 0x4c, 0x46, 1, 1, 1]).copy(h);
    h.writeUInt16LE(2, 16);
    h.writeUInt16LE(3, 18);
    h.writeUInt32LE(1, 20);
    fs.writeFileSync(elf32, h);

    for (const [file, code, text] of [
      [twice, 'E_USAGE', /already a single executable/],
      [lib, 'E_USAGE', /no SEA fuse/],
      [script, 'E_NOT_ELF', /not an ELF file/],
      [elf32, 'E_USAGE', /32-bit/],
    ] as const) {
      const before = fs.readFileSync(file);
      const err = expectCode(code, () => injectSeaBlob(file, blob));
      assert.match(err.message, text);
      assert.ok(fs.readFileSync(file).equals(before), `${path.basename(file)} was changed`);
    }
  });

  it('refuses a blob past what an ELF note can hold (4 GiB) before writing', () => {
    const work = tempDir();
    const exe = path.join(work, 'app');
    fs.copyFileSync(process.execPath, exe);
    const blob = path.join(work, 'huge.blob');
    fs.writeFileSync(blob, '');
    fs.truncateSync(blob, 2 ** 32 + 1);
    const size = fs.statSync(exe).size;
    expectCode('E_USAGE', () => injectSeaBlob(exe, blob));
    assert.equal(fs.statSync(exe).size, size);
  });
});

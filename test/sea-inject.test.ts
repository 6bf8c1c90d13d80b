/**
 * The SEA blob injector (src/build/sea-inject.ts): the executable it writes
 * runs as a single executable and reads its assets, the file is the node it
 * was copied from plus an appended segment (only the ELF header's e_phoff and
 * e_phnum and the fuse byte change before the old end), memory stays at a
 * chunk for a large blob, and what is not a fresh 64-bit node is refused
 * with a code. And the route writeSeaExecutable takes: the running node's
 * own `--build-sea` where it has one (Node 25.5 and newer), the injector
 * elsewhere — this file runs on Node 20 in `npm test` and on 22, 24 and 26 in
 * `npm run test:node-versions`.
 */
import { strict as assert } from 'node:assert';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { injectSeaBlob } from '../src/build/sea-inject';
import { defaultSeaRoute, writeSeaExecutable } from '../src/build/single-file';
import { readLayout } from '../src/formats/elf';
import { fdSource } from '../src/formats/elf-file';
import { expectCode, nativeFixture, REPO, tempDir } from './fixtures';
import { changedBeyondHeaderAndFuse, differences, fuseOffset } from './sea-layout';

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

describe('SEA blob injection', function () {
  this.timeout(120_000);

  it('writes an executable that runs as a SEA and reads its asset; only the header and the fuse change before the old end', () => {
    const work = tempDir();
    const main = path.join(work, 'main.cjs');
    fs.writeFileSync(main, "const sea = require('node:sea'); console.log(JSON.stringify({ isSea: sea.isSea(), asset: sea.getAsset('greeting', 'utf8') }));\n");
    fs.writeFileSync(path.join(work, 'greeting.txt'), 'hello from the blob');
    const exe = path.join(work, 'app');
    const progress: number[] = [];
    writeSeaExecutable({ main, assets: { greeting: path.join(work, 'greeting.txt') }, out: exe, work, onProgress: (done) => progress.push(done), route: 'inject' });

    assert.deepEqual(JSON.parse(execFileSync(exe, { cwd: tempDir(), encoding: 'utf8' })), { isSea: true, asset: 'hello from the blob' });
    const blob = fs.readFileSync(path.join(work, 'sea-prep.blob'));
    assert.equal(progress.at(-1), blob.length);
    assert.deepEqual(fs.readdirSync(work).filter((f) => f.includes('.tmp-')), [], 'no temporary file left');

    // Before the node's end: e_phoff (bytes 32–39), e_phnum (56–57) and the fuse's last byte, nothing else.
    const original = fs.statSync(process.execPath).size;
    const fuseAt = fuseOffset(exe);
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

describe('the route a single executable is written by', function () {
  this.timeout(120_000);

  /** A main that reports isSea() and its asset, and that asset, in a fresh work directory. */
  function seaInputs(): { work: string; main: string; assets: Record<string, string> } {
    const work = tempDir();
    const main = path.join(work, 'main.cjs');
    fs.writeFileSync(main, "const sea = require('node:sea'); console.log(JSON.stringify({ isSea: sea.isSea(), asset: sea.getAsset('greeting', 'utf8') }));\n");
    fs.writeFileSync(path.join(work, 'greeting.txt'), 'hello from the blob');
    return { work, main, assets: { greeting: path.join(work, 'greeting.txt') } };
  }

  it('is --build-sea from Node 25.5 on and the injector before, and the running node has --build-sea exactly when that says so', () => {
    const table = [['20.12.0', 'inject'], ['22.23.5', 'inject'], ['24.22.3', 'inject'], ['25.4.9', 'inject'], ['25.5.0', 'build-sea'], ['25.10.1', 'build-sea'], ['26.0.0', 'build-sea'], ['30.1.2', 'build-sea']] as const;
    assert.deepEqual(table.map(([v]) => [v, defaultSeaRoute(v)]), table);
    const help = execFileSync(process.execPath, ['--help'], { encoding: 'utf8' });
    assert.equal(defaultSeaRoute(), /^\s*--build-sea\b/m.test(help) ? 'build-sea' : 'inject', `${process.version}: --build-sea in its --help, or not`);
  });

  it(`by default, node's own --build-sea where it has one (a rewritten file that runs as a SEA); elsewhere the injector, and asking for --build-sea is E_USAGE (here: Node ${process.versions.node})`, () => {
    const { work, main, assets } = seaInputs();
    const exe = path.join(work, 'app');
    const progress: number[] = [];
    if (defaultSeaRoute() === 'build-sea') {
      writeSeaExecutable({ main, assets, out: exe, work, onProgress: (done) => progress.push(done) });
      assert.deepEqual(JSON.parse(execFileSync(exe, { cwd: tempDir(), encoding: 'utf8' })), { isSea: true, asset: 'hello from the blob' });
      // Not the injector's layout: node's builder rewrites the ELF structure, not only the header and the fuse.
      assert.ok(changedBeyondHeaderAndFuse(exe).length > 0, 'the executable is the node plus an appended segment, as the injector writes it');
      assert.equal(fs.existsSync(path.join(work, 'sea-prep.blob')), false, 'no blob was prepared apart');
      assert.deepEqual(progress, [], 'nothing injected, so no progress');
      assert.equal((JSON.parse(fs.readFileSync(path.join(work, 'sea-config.json'), 'utf8')) as { executable: string }).executable, process.execPath);
    } else {
      const err = expectCode('E_USAGE', () => writeSeaExecutable({ main, assets, out: exe, work, route: 'build-sea' }));
      assert.match(err.message, /needs Node 25\.5 or newer/);
      assert.equal(fs.existsSync(exe), false);
      writeSeaExecutable({ main, assets, out: exe, work, onProgress: (done) => progress.push(done) });
      assert.deepEqual(JSON.parse(execFileSync(exe, { cwd: tempDir(), encoding: 'utf8' })), { isSea: true, asset: 'hello from the blob' });
      assert.deepEqual(changedBeyondHeaderAndFuse(exe), [], "the injector's layout");
      assert.equal(progress.at(-1), fs.statSync(path.join(work, 'sea-prep.blob')).size);
    }
    assert.deepEqual(fs.readdirSync(work).filter((f) => f.includes('.tmp-')), [], 'no temporary file left');
  });

  it(`a node that fails (an asset that is not there) is E_IO with node's own message, and leaves nothing under the name or beside it (here: ${defaultSeaRoute()})`, () => {
    const { work, main } = seaInputs();
    const out = path.join(tempDir(), 'app');
    const missing = path.join(work, 'not-there.bin');
    const err = expectCode('E_IO', () => writeSeaExecutable({ main, assets: { gone: missing }, out, work }));
    assert.match(err.message, new RegExp(`node --${defaultSeaRoute() === 'build-sea' ? 'build-sea' : 'experimental-sea-config'}\` failed`));
    assert.ok(err.message.includes('not-there.bin'), err.message);
    assert.deepEqual(fs.readdirSync(path.dirname(out)), []);
  });
});

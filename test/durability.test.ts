import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { bundleDirName, COMPLETE_MARKER, materialize, type CacheRequest } from '../src/cache';
import { runSync, syncIo } from '../src/io';
import type { ManifestVariant } from '../src/manifest';
import { pack } from '../src/pack';
import { fromDirectory } from '../src/sources/directory';
import { runChild, spawnChild } from './child';
import { nativeFixture, REPO, tempDir } from './fixtures';

// A first start publishes its directory before the files are flushed (the
// disk is waited for on the thread pool, not by the first native call). What
// keeps that safe is the marker: until the flush is done it is valid only in
// the boot that wrote it, so after a crash or power cut the files are hashed
// before they are trusted. A real power cut cannot be produced here; what can
// be is its effect on disk — a file whose metadata (size, mtime, ctime, inode)
// survived but whose data did not — under a marker of another boot.
const KEY = 'linux-x64-gnu';
const FILES = ['libdemo_core.so', 'libdemo_codec.so.1.2.3', 'libdemo_app.so'];
const BOOT_ID = fs.readFileSync('/proc/sys/kernel/random/boot_id', 'latin1').trim();

let bundle: string;
let variant: ManifestVariant;

before(() => {
  bundle = path.join(tempDir(), 'bundle');
  variant = pack(FILES.map(nativeFixture), { name: 'durable', out: bundle }).variant;
});

function request(root: string, more: Partial<CacheRequest> = {}): CacheRequest {
  return { bundleName: 'durable', variantKey: KEY, variant, source: fromDirectory(bundle), roots: [root], verify: 'size', ...more };
}

function marker(dir: string): string {
  return fs.readFileSync(path.join(dir, COMPLETE_MARKER), 'utf8');
}

/**
 * A published directory as a power cut could leave it: core's data lost
 * (zeros) while its size, inode and times stay what the marker recorded, the
 * marker bound to `boot`.
 */
function lostWrites(root: string, boot: string): string {
  const dir = runSync(materialize(syncIo, request(root))).dir;
  const core = path.join(dir, 'libdemo_core.so');
  const before = fs.lstatSync(core);
  const fd = fs.openSync(core, 'r+');
  fs.writeSync(fd, Buffer.alloc(4096), 0, 4096, 0);
  fs.closeSync(fd);
  const after = fs.lstatSync(core);
  // The marker records the damaged file's identity: as if the metadata had been flushed and the data not.
  const text = marker(dir)
    .replace(`${before.dev}:${before.ino}:${before.size}:${before.mtimeMs}:${before.ctimeMs}`, `${after.dev}:${after.ino}:${after.size}:${after.mtimeMs}:${after.ctimeMs}`)
    .replace(/\n$/, `\nunflushed in boot ${boot}\n`);
  fs.writeFileSync(path.join(dir, COMPLETE_MARKER), text);
  return dir;
}

describe('durability: a first start does not wait for the disk, and a crash before the flush is caught', () => {
  it('the first start publishes with a marker bound to this boot, and the flush afterwards replaces it with one valid in every boot', () => {
    const root = path.join(tempDir(), 'root');
    const { answer, dir, first, last } = runChild<{ answer: number; dir: string; first: string; last: string }>(
      `const b = dl.openBundle({ source: dl.fromDirectory(${JSON.stringify(bundle)}), cacheDir: ${JSON.stringify(root)} });
       const answer = b.library('libdemo_app.so', { compute: 'int app_compute(int x)' }).compute(5);
       const dir = b.explain().dir;
       const read = () => fs.readFileSync(dir + '/${COMPLETE_MARKER}', 'utf8');
       const first = read();
       // The flush runs when the event loop does.
       let last = first;
       for (let i = 0; i < 1000 && last === first; i++) { await new Promise((r) => setTimeout(r, 10)); last = read(); }
       return { answer, dir, first, last };`,
    );
    assert.equal(answer, 1011);
    assert.equal(dir, path.join(root, bundleDirName('durable', variant)));
    assert.ok(first.endsWith(`\nunflushed in boot ${BOOT_ID}\n`), `the marker at the first call: ${first}`);
    assert.equal(last, first.replace(`unflushed in boot ${BOOT_ID}\n`, ''), 'the marker once the event loop ran');
    assert.equal(marker(dir), last);
  });

  it('a process that exits right after its first call flushes nothing and leaves the boot-bound marker (it never waits for the disk)', () => {
    const root = path.join(tempDir(), 'root');
    // strace -f: every thread, libuv's pool included, where an fsync would run.
    const r = spawnChild(
      `const b = dl.openBundle({ source: dl.fromDirectory(P.bundle), cacheDir: P.root });
       return b.library('libdemo_app.so', { compute: 'int app_compute(int x)' }).compute(5);`,
      { params: { bundle, root }, under: ['strace', '-f', '-qq', '-e', 'trace=fsync,fdatasync,sync_file_range', '-o', path.join(root + '-strace')] },
    );
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.result, 1011);
    // Node's own fsync of stdout and stderr at exit fails on pipes (EINVAL): only flushes that did something count.
    const flushes = fs.readFileSync(`${root}-strace`, 'utf8').split('\n').filter((l) => /\b(fsync|fdatasync|sync_file_range)\(.*= 0$/.test(l));
    assert.deepEqual(flushes, [], 'no flush at all in a process that ends at once');
    const dir = path.join(root, bundleDirName('durable', variant));
    assert.ok(marker(dir).endsWith(`\nunflushed in boot ${BOOT_ID}\n`), marker(dir));

    // Control: the same start with the directory flushed before use (what materialize does by default) does flush.
    const root2 = path.join(tempDir(), 'root');
    const r2 = spawnChild(
      `const cache = require(P.cache); const io = require(P.io); const { fromDirectory } = require(P.dir);
       const req = { bundleName: 'durable', variantKey: 'linux-x64-gnu', variant: P.variant, source: fromDirectory(P.bundle), roots: [P.root], verify: 'size' };
       return io.runSync(cache.materialize(io.syncIo, req)).reused;`,
      { params: { bundle, root: root2, variant, cache: path.join(REPO, 'dist', 'cache.js'), io: path.join(REPO, 'dist', 'io.js'), dir: path.join(REPO, 'dist', 'sources', 'directory.js') }, under: ['strace', '-f', '-qq', '-e', 'trace=fsync,fdatasync', '-o', `${root2}-strace`] },
    );
    assert.equal(r2.status, 0, r2.stderr);
    assert.ok(fs.readFileSync(`${root2}-strace`, 'utf8').split('\n').some((l) => /\bf(data)?sync\(.*= 0$/.test(l)), 'the control flushed');
  });

  it('a directory whose marker is of another boot has its files hashed: lost writes are found and the directory is rebuilt', () => {
    const root = path.join(tempDir(), 'root');
    const dir = lostWrites(root, '00000000-0000-4000-8000-000000000000');
    const again = runSync(materialize(syncIo, request(root)));
    assert.equal(again.dir, dir);
    assert.equal(again.reused, false, 'rebuilt');
    assert.ok(fs.readFileSync(path.join(dir, 'libdemo_core.so')).equals(fs.readFileSync(path.join(bundle, KEY, 'libdemo_core.so'))));
    assert.ok(!marker(dir).includes('unflushed in boot'), 'the rebuilt directory is flushed before use (materialize default)');
  });

  it('control: the same damage under a marker of this boot is trusted (the defence is the boot id, not the identities)', () => {
    const root = path.join(tempDir(), 'root');
    const dir = lostWrites(root, BOOT_ID);
    const again = runSync(materialize(syncIo, request(root)));
    assert.equal(again.reused, true);
    assert.ok(fs.readFileSync(path.join(dir, 'libdemo_core.so')).subarray(0, 4096).equals(Buffer.alloc(4096)), 'the zeros are still there');
  });

  it('a marker of another boot over intact files: hashed once, then trusted again with a marker valid in every boot', () => {
    const root = path.join(tempDir(), 'root');
    const dir = runSync(materialize(syncIo, request(root))).dir;
    fs.writeFileSync(path.join(dir, COMPLETE_MARKER), marker(dir).replace(/\n$/, '\nunflushed in boot 00000000-0000-4000-8000-000000000000\n'));
    const inode = fs.lstatSync(path.join(dir, 'libdemo_core.so')).ino;
    const again = runSync(materialize(syncIo, request(root)));
    assert.equal(again.reused, true);
    assert.equal(fs.lstatSync(path.join(dir, 'libdemo_core.so')).ino, inode, 'the same files');
    assert.ok(!marker(dir).includes('unflushed in boot'), marker(dir));
  });
});

/**
 * xxh64: the WebAssembly implementation, the plain JavaScript one that takes
 * over where WebAssembly cannot be instantiated, and a real cold start in a
 * process whose address space is limited (`ulimit -v`), where V8 cannot
 * reserve a wasm memory.
 */
import { strict as assert } from 'node:assert';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { createXxh64, hashScratch, xxh64Implementation } from '../src/hash';
import { pack } from '../src/pack';
import { createXxh64Js } from '../src/xxh64';
import { DIST } from './child';
import { hashFile, nativeFixture, prng, REPO, tempDir } from './fixtures';

// Published xxh64 values (seed 0): the empty input, the xxHash README's and
// python-xxhash's examples; the last one is longer than a 32-byte stripe.
const VECTORS: readonly (readonly [string, string])[] = [
  ['', 'ef46db3751d8e999'],
  ['a', 'd24ec4f1a98c6e5b'],
  ['abc', '44bc2cf5ad770999'],
  ['xxhash', '32dd38952c4bc720'],
  ['Nobody inspects the spammish repetition', 'fbcea83c8a378bf1'],
];

describe('xxh64', () => {
  it('this process hashes with WebAssembly (the reference the JavaScript one is checked against)', () => {
    assert.equal(xxh64Implementation(), 'wasm');
  });

  it('both implementations give the published values', () => {
    for (const [input, expected] of VECTORS) {
      const bytes = Buffer.from(input, 'latin1');
      assert.equal(createXxh64().update(bytes).digest(), expected, `wasm, ${JSON.stringify(input)}`);
      assert.equal(createXxh64Js().update(bytes).digest(), expected, `js, ${JSON.stringify(input)}`);
    }
  });

  it('the JavaScript one equals the WebAssembly one on 600 seeded random inputs of 0..100 KiB, at every alignment, fed in random pieces', () => {
    const random = prng(0x5eed_0009);
    const pool = Buffer.alloc(100 * 1024 + 8);
    for (let i = 0; i < pool.length; i++) pool[i] = Math.floor(random() * 256);
    for (let round = 0; round < 600; round++) {
      // Mostly short inputs (every tail length), some up to 100 KiB.
      const length = round % 3 === 0 ? Math.floor(random() * 100 * 1024) : Math.floor(random() * 200);
      const offset = round % 8;
      const input = pool.subarray(offset, offset + length);
      const expected = createXxh64().update(input).digest();
      const js = createXxh64Js();
      for (let p = 0; p < length; ) {
        const piece = Math.max(1, Math.floor(random() * (round % 2 === 0 ? 70 : 9000)));
        js.update(input.subarray(p, p + piece));
        p += piece;
      }
      assert.equal(js.digest(), expected, `seed round ${round}: ${length} bytes at offset ${offset}`);
      assert.equal(createXxh64Js().update(input).digest(), expected, `round ${round}, whole`);
    }
  });

  it('input read into hashScratch is hashed where it lies, with other streams hashing in between, as the JavaScript one hashes a copy', () => {
    const rand = prng(0x5c4a7c);
    const data = Buffer.alloc(3 << 20);
    for (let i = 0; i < data.length; i++) data[i] = Math.floor(rand() * 256);
    const scratch = hashScratch(1 << 20);
    assert.ok(scratch !== null && scratch.length === 1 << 20);
    const inPlace = createXxh64();
    const other = createXxh64();
    const reference = createXxh64Js();
    const otherReference = createXxh64Js();
    for (let at = 0; at < data.length; ) {
      const n = Math.min(data.length - at, 1 + Math.floor(rand() * (1 << 20)));
      data.copy(scratch, 0, at, at + n);
      inPlace.update(scratch.subarray(0, n));
      reference.update(data.subarray(at, at + n));
      // Another stream's input passes through the same wasm bytes: the scratch is refilled before its next use.
      const piece = data.subarray(0, Math.floor(rand() * 70000));
      other.update(piece);
      otherReference.update(piece);
      at += n;
    }
    assert.equal(inPlace.digest(), reference.digest());
    assert.equal(other.digest(), otherReference.digest());
  });

  it('a cold start under `ulimit -v 4000000` (no WebAssembly memory) hashes in JavaScript, extracts, loads and calls the demo bundle', function () {
    this.timeout(60_000);
    const dir = tempDir();
    const bundle = path.join(dir, 'bundle');
    const packed = pack(['libdemo_core.so', 'libdemo_codec.so.1.2.3', 'libdemo_app.so'].map(nativeFixture), { name: 'demo', out: bundle });
    const cache = path.join(dir, 'cache');
    const script = `
      const dl = require(${JSON.stringify(DIST)});
      const hash = require(${JSON.stringify(path.join(REPO, 'dist', 'hash.js'))});
      const run = (verify) => {
        try {
          const b = dl.openBundle({ source: dl.fromDirectory(${JSON.stringify(bundle)}), cacheDir: ${JSON.stringify(cache)}, verify });
          const compute = b.library('libdemo_app.so', { compute: 'int app_compute(int x)' }).compute(5);
          const r = b.explain();
          return { ok: true, compute, mode: r.mode, dir: r.dir, reused: r.reused };
        } catch (e) {
          return { ok: false, name: e.name, code: e.code, message: String(e.message) };
        }
      };
      const cold = run('size');
      const warm = run('full');
      let wasm = 'instantiated';
      try { new WebAssembly.Memory({ initial: 1 }); } catch (e) { wasm = String(e.message); }
      let implementation;
      try { implementation = hash.xxh64Implementation(); } catch (e) { implementation = String(e); }
      console.log(JSON.stringify({ cold, warm, implementation, wasm }));`;
    const r = spawnSync('bash', ['-c', 'ulimit -v 4000000 && exec "$0" -e "$1"', process.execPath, script], {
      encoding: 'utf8',
      env: { PATH: process.env.PATH ?? '', HOME: dir, XDG_CACHE_HOME: dir, TMPDIR: dir },
      timeout: 30_000,
    });
    assert.equal(r.status, 0, r.stderr);
    const out = JSON.parse(r.stdout.trim().split('\n').pop() as string) as {
      cold: { ok: boolean; compute?: number; mode?: string; dir?: string; reused?: boolean; message?: string };
      warm: { ok: boolean; compute?: number; reused?: boolean; message?: string };
      implementation: string;
      wasm: string;
    };
    // The limit really denies WebAssembly memory in that process.
    assert.match(out.wasm, /out of memory|could not allocate|cannot allocate/i);
    assert.equal(out.cold.ok, true, `cold start failed: ${JSON.stringify(out.cold)}`);
    assert.equal(out.cold.compute, 1011);
    assert.equal(out.cold.mode, 'disk');
    assert.equal(out.cold.reused, false);
    assert.equal(out.warm.ok, true, `warm start with verify 'full' failed: ${JSON.stringify(out.warm)}`);
    assert.equal(out.warm.reused, true);
    assert.equal(out.implementation, 'js');
    // What the JavaScript hash let through is exactly what was packed.
    for (const file of packed.variant.files) assert.equal(hashFile(path.join(out.cold.dir as string, file.name)), file.xxh64, file.name);
    assert.ok(fs.existsSync(path.join(out.cold.dir as string, '.dlbundle-complete')));
  });
});

/**
 * The fixtures of `npm run bench` checked for what the bench relies on: the
 * chain of 50 libraries (native/chain.c) packs, loads through dlbundle from
 * the bundle directory in dependency order and returns the value only the
 * whole chain computes; the 944 KiB library makes a bundle of about 1 MiB.
 */
import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { pack } from '../src/pack';
import { runChild } from './child';
import { nativeFixture, tempDir } from './fixtures';

const { CHAIN_LENGTH, CHAIN_TOP, chainLibraries } = require('../scripts/native-chain.js') as {
  CHAIN_LENGTH: number;
  CHAIN_TOP: { file: string; prototype: string; expected(x: number): number };
  chainLibraries(): string[];
};

describe('bench fixtures', () => {
  it('the 50-library chain packs in dependency order, loads from the bundle directory and chain_49(7) adds up all 50', () => {
    const libs = chainLibraries();
    assert.equal(libs.length, 50);
    assert.equal(CHAIN_LENGTH, 50);
    const out = path.join(tempDir(), 'bundle');
    // Packed shuffled: the order must come from the DT_NEEDED entries, not from the argument list.
    const r = pack([...libs].reverse().map(nativeFixture), { name: 'chain', out });
    assert.deepEqual(r.variant.order, libs);
    for (const [k, f] of r.variant.files.entries()) assert.deepEqual(f.needed, k === 0 ? [] : [libs[k - 1]], f.name);

    const got = runChild<{ dir: string; value: number; maps: string[]; order: string[]; alone: string }>(
      `const koffi = require('koffi');
       // The top library alone, outside the bundle, cannot load: nothing but the loading order finds its dependencies.
       let alone = '';
       try { koffi.load(P.builtTop); } catch (e) { alone = String(e.message); }
       const bundle = dl.openBundle({ source: dl.fromDirectory(P.bundle), cacheDir: P.cache });
       const top = bundle.library(P.top, { f: P.prototype });
       const value = top.f(7);
       const maps = mapped().filter((p) => /^libchain_/.test(path.basename(p))).sort();
       return { dir: bundle.dir, value, maps, order: bundle.explain().libraries.map((l) => l.name), alone };`,
      { params: { bundle: out, cache: path.join(tempDir(), 'cache'), top: CHAIN_TOP.file, prototype: CHAIN_TOP.prototype, builtTop: nativeFixture(CHAIN_TOP.file) } },
    );
    assert.match(got.alone, /libchain_48\.so/);
    assert.equal(got.value, 7 + 1275);
    assert.equal(CHAIN_TOP.expected(7), got.value);
    assert.deepEqual(got.maps, libs.map((l) => path.join(got.dir, l)));
    assert.deepEqual(got.order, libs);
  });

  it('the 944 KiB library makes a bundle of about 1 MiB with core, codec, app and plugin, and big_check() reads both ends of its table', () => {
    const files = ['libdemo_core.so', 'libdemo_codec.so.1.2.3', 'libdemo_app.so', 'libdemo_plugin.so', 'libdemo_big_1m.so'];
    const out = path.join(tempDir(), 'bundle');
    const r = pack(files.map(nativeFixture), { name: 'one-mib', out });
    const bytes = r.variant.files.reduce((n, f) => n + f.size, 0);
    assert.ok(Math.abs(bytes - 2 ** 20) < 2 ** 20 / 20, `${bytes} bytes`);
    assert.equal(fs.statSync(nativeFixture('libdemo_big_1m.so')).size > 944 * 1024, true);
    const check = runChild<number>(
      `const bundle = dl.openBundle({ source: dl.fromDirectory(P.bundle), cacheDir: P.cache });
       return bundle.library('libdemo_big_1m.so', { check: 'int big_check(void)' }).check();`,
      { params: { bundle: out, cache: path.join(tempDir(), 'cache') } },
    );
    assert.equal(check, 4);
  });
});

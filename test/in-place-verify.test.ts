/**
 * In-place sources (an `app.asar.unpacked` twin, `inPlaceDirectory`) are
 * loaded where they are, with no copy whose hash was checked on the way:
 * `verify: 'full'` must hash them there.
 */
import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { pack } from '../src/pack';
import { runChild, type Caught } from './child';
import { nativeFixture, tempDir } from './fixtures';

const KEY = 'linux-x64-gnu';
const FILES = ['libdemo_core.so', 'libdemo_codec.so.1.2.3', 'libdemo_app.so', 'libdemo_plugin.so'];

interface InPlaceRun {
  readonly result: Caught<number>;
  readonly maps: string[];
  readonly mode: string | null;
}

const RUN_IN_PLACE = `
  const bundle = dl.openBundle({ source: dl.inPlaceDirectory(P.bundle), cacheDir: P.cache, verify: P.verify });
  const app = bundle.library('libdemo_app.so', { compute: 'int app_compute(int x)' });
  const result = caught(() => app.compute(5));
  return { result, maps: demoMapped(), mode: bundle.explain().mode };
`;

function tamperedBundle(): { dir: string; codec: string } {
  const dir = path.join(tempDir(), 'unpacked');
  pack(FILES.map(nativeFixture), { name: 'demo', out: dir });
  const codec = path.join(dir, KEY, 'libdemo_codec.so.1.2.3');
  const bytes = fs.readFileSync(codec);
  // A letter of gcc's version note in .comment, which nothing maps: the
  // library still loads, so only a hash can tell.
  const at = bytes.indexOf('GCC: (');
  assert.ok(at > 0, 'the codec carries a .comment section');
  bytes[at] = 'X'.charCodeAt(0);
  fs.writeFileSync(codec, bytes);
  return { dir, codec };
}

describe('in-place sources', () => {
  it("verify: 'full' hashes in place: a same-size tampered library is refused with E_INTEGRITY before anything is loaded", () => {
    const { dir } = tamperedBundle();
    const cache = path.join(tempDir(), 'cache');
    const r = runChild<InPlaceRun>(RUN_IN_PLACE, { params: { bundle: dir, cache, verify: 'full' } });
    assert.equal(r.result.ok, false, 'the tampered bundle was loaded');
    if (r.result.ok) return;
    assert.equal(r.result.error.code, 'E_INTEGRITY');
    assert.equal(r.result.error.file, 'libdemo_codec.so.1.2.3');
    assert.match(r.result.error.message, /has xxh64 [0-9a-f]{16} instead of [0-9a-f]{16}; it is loaded in place/);
    assert.deepEqual(r.maps, [], 'no demo library was mapped');
    assert.equal(fs.existsSync(cache), false, 'nothing was copied to the cache');
  });

  it("verify: 'full' loads an intact in-place bundle from where it is; 'size' (the default) checks sizes only, as documented", () => {
    const intact = path.join(tempDir(), 'unpacked');
    pack(FILES.map(nativeFixture), { name: 'demo', out: intact });
    const cache = path.join(tempDir(), 'cache');
    const full = runChild<InPlaceRun>(RUN_IN_PLACE, { params: { bundle: intact, cache, verify: 'full' } });
    assert.deepEqual(full.result, { ok: true, value: 1011 });
    assert.equal(full.mode, 'in-place');
    assert.ok(full.maps.every((m) => m.startsWith(path.join(intact, KEY) + path.sep)), JSON.stringify(full.maps));

    const { dir } = tamperedBundle();
    const bySize = runChild<InPlaceRun>(RUN_IN_PLACE, { params: { bundle: dir, cache, verify: 'size' } });
    assert.deepEqual(bySize.result, { ok: true, value: 1011 });
  });
});

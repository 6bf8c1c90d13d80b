/**
 * What a start does with a manifest.
 *
 * Names it may hold, checked against what really holds them: a directory
 * entry (NAME_MAX, 255 bytes), the cache's staging directory name
 * (`.staging-<name>-<digest>-<ns>-<pid>-<random>`), and memory mode's memfd
 * label `dlbundle:<file name>`, which memfd_create refuses past 249 bytes.
 * And what it validates: the variant it loads, in depth; of the others, only
 * what choosing needs.
 *
 * Bundles are packed from the demo libraries, then dlbundle.json is rewritten
 * (pack itself refuses these names now). Loading happens in child processes
 * (dlopen is per process); they load dist/, so run `npm run build` first.
 */
import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { variantDigest, type ManifestFile } from '../src/manifest';
import { pack } from '../src/pack';
import { runChild, type Caught } from './child';
import { nativeFixture, REPO, tempDir } from './fixtures';

const KEY = 'linux-x64-gnu';
// memfd_create's 249 bytes less the 9 of "dlbundle:"; 255 less the 80 bytes a staging directory name can add.
const FILE_NAME_MAX_BYTES = 240;
const BUNDLE_NAME_MAX_BYTES = 175;

interface ManifestJson {
  name: string;
  variants: Record<string, { digest: string; files: ManifestFile[]; order: string[]; external: string[] }>;
}

/**
 * The demo core, codec and app packed as a bundle whose libdemo_core.so blob
 * is renamed to `coreName` (its soname stays libdemo_core.so, so the others
 * still find it) and whose bundle name is `bundleName`.
 */
function bundleWith(coreName: string, bundleName = 'demo'): string {
  const out = path.join(tempDir(), 'bundle');
  pack(['libdemo_core.so', 'libdemo_codec.so.1.2.3', 'libdemo_app.so'].map(nativeFixture), { name: 'demo', out });
  const file = path.join(out, 'dlbundle.json');
  const m = JSON.parse(fs.readFileSync(file, 'utf8')) as ManifestJson;
  const v = m.variants[KEY] as ManifestJson['variants'][string];
  fs.renameSync(path.join(out, KEY, 'libdemo_core.so'), path.join(out, KEY, coreName));
  v.files = v.files.map((f) => (f.name === 'libdemo_core.so' ? { ...f, name: coreName } : f));
  v.order = v.order.map((n) => (n === 'libdemo_core.so' ? coreName : n));
  v.digest = variantDigest(v.files);
  m.name = bundleName;
  fs.writeFileSync(file, JSON.stringify(m, null, 2));
  return out;
}

interface Started {
  readonly call: Caught<number>;
  readonly mode: string | null;
  readonly dir: string | null;
  readonly memfds: string[];
}

// Opens the bundle, calls app_compute(5) = 1011 (through core and codec), and reports.
const START = `
  const bundle = dl.openBundle({ source: dl.fromDirectory(P.bundle), mode: P.mode, cacheDir: P.cache });
  const call = caught(() => bundle.library('libdemo_app.so', { compute: 'int app_compute(int x)' }).compute(5));
  const report = caught(() => bundle.explain());
  return {
    call,
    mode: report.ok ? report.value.mode : null,
    dir: report.ok ? report.value.dir : null,
    memfds: mapped().filter((p) => p.startsWith('/memfd:')),
  };`;

function start(bundle: string, mode: 'memory' | 'disk' | 'auto'): Started {
  return runChild<Started>(START, { params: { bundle, mode, cache: path.join(tempDir(), 'cache') } });
}

describe('manifest names that a directory entry or a memfd cannot hold', () => {
  before(() => {
    assert.ok(fs.existsSync(path.join(REPO, 'dist', 'index.js')), 'run `npm run build` first: the children load dist/');
  });

  it(`a bundled file name of 245 bytes in memory mode: E_BAD_MANIFEST naming the field and the limit (${FILE_NAME_MAX_BYTES}), not E_NOEXEC from memfd_create`, () => {
    const name = `libdemo_core${'x'.repeat(230)}.so`;
    assert.equal(Buffer.byteLength(name), 245);
    const r = start(bundleWith(name), 'memory');
    assert.equal(r.call.ok, false, `the call succeeded: ${JSON.stringify(r.call)}`);
    const e = (r.call as Extract<Caught<number>, { ok: false }>).error;
    assert.equal(e.code, 'E_BAD_MANIFEST', e.message);
    assert.match(e.message, /files\[\d\]\.name .* is 245 bytes long in UTF-8, more than the 240 allowed; memory mode loads each file from a memfd named "dlbundle:<file name>"/);
    assert.deepEqual(r.memfds, [], 'no memory file was created');
  });

  it(`a bundled file name of exactly ${FILE_NAME_MAX_BYTES} bytes loads in memory mode: its memfd is named "memfd:dlbundle:<name>" (255 bytes)`, () => {
    const name = `libdemo_core${'x'.repeat(FILE_NAME_MAX_BYTES - 15)}.so`;
    assert.equal(Buffer.byteLength(name), FILE_NAME_MAX_BYTES);
    const r = start(bundleWith(name), 'memory');
    assert.deepEqual(r.call, { ok: true, value: 1011 });
    assert.equal(r.mode, 'memory');
    const label = `/memfd:dlbundle:${name}`;
    assert.equal(Buffer.byteLength(label) - 1, 255, 'the kernel name is NAME_MAX bytes');
    assert.ok(r.memfds.some((p) => p === label || p === `${label} (deleted)`), `no mapping of ${label} in ${JSON.stringify(r.memfds)}`);
  });

  it('the limit is the kernel\'s: memfd_create takes a 249-byte name and refuses 250 (EINVAL), which memory.ts reported as E_NOEXEC', () => {
    const r = runChild<{ fits: Caught<number>; over: Caught<number> }>(
      `const { createMemoryFile } = require(P.memory);
       return { fits: caught(() => createMemoryFile('m'.repeat(P.max))), over: caught(() => createMemoryFile('m'.repeat(P.max + 1))) };`,
      { params: { memory: path.join(REPO, 'dist', 'memory.js'), max: FILE_NAME_MAX_BYTES } },
    );
    assert.equal(r.fits.ok, true, JSON.stringify(r.fits));
    assert.equal(r.over.ok, false);
    assert.equal((r.over as Extract<Caught<number>, { ok: false }>).error.code, 'E_NOEXEC');
  });

  it(`a bundle name of exactly ${BUNDLE_NAME_MAX_BYTES} bytes is staged, published and loaded from disk; one byte more and 220 bytes are E_BAD_MANIFEST (220 fell to memory mode, every root failing with ENAMETOOLONG)`, () => {
    const longest = 'b'.repeat(BUNDLE_NAME_MAX_BYTES);
    const r = start(bundleWith('libdemo_core.so', longest), 'disk');
    assert.deepEqual(r.call, { ok: true, value: 1011 });
    assert.equal(r.mode, 'disk');
    assert.match(path.basename(r.dir ?? ''), new RegExp(`^${longest}-[0-9a-f]{16}$`));
    for (const length of [BUNDLE_NAME_MAX_BYTES + 1, 220]) {
      const over = start(bundleWith('libdemo_core.so', 'b'.repeat(length)), 'auto');
      assert.equal(over.call.ok, false, `a ${length}-byte bundle name was loaded (mode ${String(over.mode)})`);
      const e = (over.call as Extract<Caught<number>, { ok: false }>).error;
      assert.equal(e.code, 'E_BAD_MANIFEST', e.message);
      assert.match(e.message, new RegExp(`field name .* is ${length} bytes long in UTF-8, more than the ${BUNDLE_NAME_MAX_BYTES} allowed; the cache stages a bundle in "\\.staging-`));
      assert.deepEqual(over.memfds, []);
    }
  });
});

describe('a start validates in depth only the variant it loads', () => {
  /** The demo bundle with a second variant, for another machine, whose order is broken. */
  function withBrokenOther(breakChosen: boolean): string {
    const bundle = bundleWith('libdemo_core.so');
    const file = path.join(bundle, 'dlbundle.json');
    const m = JSON.parse(fs.readFileSync(file, 'utf8')) as ManifestJson;
    const chosen = m.variants[KEY] as ManifestJson['variants'][string];
    m.variants['linux-arm64-gnu'] = { ...chosen, order: chosen.order.slice(1) };
    if (breakChosen) chosen.order = chosen.order.slice(1);
    fs.writeFileSync(file, JSON.stringify(m, null, 2));
    return bundle;
  }

  it('a broken variant for another machine does not stop this one from loading (it was E_BAD_MANIFEST)', () => {
    const r = start(withBrokenOther(false), 'disk');
    assert.deepEqual(r.call, { ok: true, value: 1011 });
    assert.equal(r.mode, 'disk');
  });

  it('the same break in the variant it loads is still E_BAD_MANIFEST naming the field', () => {
    const r = start(withBrokenOther(true), 'disk');
    assert.equal(r.call.ok, false);
    const e = (r.call as Extract<Caught<number>, { ok: false }>).error;
    assert.equal(e.code, 'E_BAD_MANIFEST', e.message);
    assert.match(e.message, /field variants\["linux-x64-gnu"\]\.order is not a permutation of the file names/);
  });
});

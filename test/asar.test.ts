/**
 * fromAsar against real archives built by the real @electron/asar (the
 * devDependency): the header reader must agree with it byte for byte, the
 * cache must extract the bundle from packed and unpacked archives alike, and
 * damaged archives must fail with DlbundleErrors only.
 */
import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as asar from '@electron/asar';
import { materialize, type CacheRequest, type CacheResult } from '../src/cache';
import { DlbundleError, isDlbundleError, type DlbundleErrorCode } from '../src/errors';
import { asyncIo, runAsync, runSync, syncIo, type Io, type Step } from '../src/io';
import type { ManifestVariant } from '../src/manifest';
import { pack } from '../src/pack';
import { asarLocation, findAsarEntry, fromAsar, readAsarFile, readAsarHeader, unpackedTwin, type AsarFileEntry } from '../src/sources/asar';
import type { Source } from '../src/sources/source';
import { runChild } from './child';
import { DEMO_LIBS, expectCode, nativeFixture, REPO, tempDir } from './fixtures';

const KEY = 'linux-x64-gnu';

/** The app directory that every archive is built from (see before()). */
let app: string;
let variant: ManifestVariant;

/** Archives of the same app, by how @electron/asar was told to unpack. */
const archives = {} as Record<'packed' | 'soUnpacked' | 'subdirsUnpacked' | 'bundleUnpacked', string>;
const UNPACK_OPTIONS: Record<keyof typeof archives, asar.CreateOptions> = {
  packed: {},
  soUnpacked: { unpack: '*.so*' },
  subdirsUnpacked: { unpackDir: 'native/**' },
  bundleUnpacked: { unpackDir: 'native' },
};

async function buildArchive(from: string, options: asar.CreateOptions): Promise<string> {
  const dest = path.join(tempDir('dlbundle-asar-'), 'resources', 'app.asar');
  await asar.createPackageWithOptions(from, dest, options);
  return dest;
}

/** An Electron-like app: main.js, package.json, a nested file, an empty file, the bundle, and a link to it. */
function makeApp(): string {
  const dir = path.join(tempDir(), 'app');
  fs.mkdirSync(path.join(dir, 'lib'), { recursive: true });
  fs.writeFileSync(path.join(dir, 'main.js'), "require('./lib/util.js');\n");
  fs.writeFileSync(path.join(dir, 'package.json'), JSON.stringify({ name: 'demo-app', main: 'main.js' }));
  fs.writeFileSync(path.join(dir, 'lib', 'util.js'), 'module.exports = 42;\n'.repeat(1000));
  fs.writeFileSync(path.join(dir, 'lib', 'empty.txt'), '');
  variant = pack(DEMO_LIBS.map(nativeFixture), { name: 'demo', out: path.join(dir, 'native') }).variant;
  fs.symlinkSync('native', path.join(dir, 'current'));
  return dir;
}

before(async function () {
  this.timeout(60_000);
  app = makeApp();
  for (const [name, options] of Object.entries(UNPACK_OPTIONS)) archives[name as keyof typeof archives] = await buildArchive(app, options);
});

function blob(name: string): Buffer {
  return fs.readFileSync(path.join(app, 'native', KEY, name));
}

function request(source: Source, root = path.join(tempDir(), 'cache')): CacheRequest {
  return { bundleName: 'demo', variantKey: KEY, variant, source, roots: [root], verify: 'size' };
}

function assertExtracted(result: CacheResult): void {
  for (const file of variant.files) {
    assert.ok(fs.readFileSync(path.join(result.dir, file.name)).equals(blob(file.name)), `${file.name} is byte-identical to its blob`);
  }
}

/** Every path that @electron/asar lists, without the leading '/'. */
function listed(archive: string): string[] {
  return asar.listPackage(archive, { isPack: false }).map((p) => p.slice(1));
}

/**
 * Writes an archive the way @electron/asar does: the size pickle, the header
 * pickle (payload size, string length, JSON, zero padding), then the data.
 */
function writeArchive(file: string, headerJson: string, data: Buffer): string {
  const json = Buffer.from(headerJson, 'utf8');
  const payload = Buffer.alloc(4 + Math.ceil(json.length / 4) * 4);
  payload.writeInt32LE(json.length, 0);
  json.copy(payload, 4);
  const headerPickle = Buffer.alloc(4 + payload.length);
  headerPickle.writeUInt32LE(payload.length, 0);
  payload.copy(headerPickle, 4);
  const sizePickle = Buffer.alloc(8);
  sizePickle.writeUInt32LE(4, 0);
  sizePickle.writeUInt32LE(headerPickle.length, 4);
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, Buffer.concat([sizePickle, headerPickle, data]));
  return file;
}

/** The data section of a real archive (everything after the header). */
function dataOf(archive: string): Buffer {
  return fs.readFileSync(archive).subarray(8 + asar.getRawHeader(archive).headerSize);
}

type Tree = { files: Record<string, Tree> } & Record<string, unknown>;

/** A copy of the packed archive whose header tree `edit` changed; the data section is kept. */
function editedArchive(edit: (tree: Tree) => void, from = archives.packed): string {
  const tree = structuredClone(asar.getRawHeader(from).header) as Tree;
  edit(tree);
  return writeArchive(path.join(tempDir(), 'app.asar'), JSON.stringify(tree), dataOf(from));
}

function node(tree: Tree, inner: string): Tree {
  return inner.split('/').reduce<Tree>((n, name) => n.files[name] as Tree, tree);
}

async function expectCodeAsync(code: DlbundleErrorCode, promise: Promise<unknown>): Promise<DlbundleError> {
  try {
    await promise;
  } catch (e) {
    assert.ok(e instanceof DlbundleError, `expected a DlbundleError ${code}, got ${String(e)}`);
    assert.equal(e.code, code, `expected ${code}, got ${e.code}: ${e.message}`);
    return e;
  }
  assert.fail(`expected ${code}, but nothing was thrown`);
}

/** A blob's bytes through source.openBlob, in chunks of scratch.length. */
function* readBlob(io: Io, source: Source, name: string, scratch: Buffer): Step<Buffer> {
  const file = variant.files.find((f) => f.name === name);
  assert.ok(file !== undefined, name);
  const reader = yield* source.openBlob(io, KEY, file);
  const chunks: Buffer[] = [];
  try {
    for (let pos = 0; ; ) {
      const chunk = yield* reader.read(io, pos, scratch);
      if (chunk.length === 0) return Buffer.concat(chunks);
      chunks.push(Buffer.from(chunk));
      pos += chunk.length;
    }
  } finally {
    yield* reader.close(io);
  }
}

/** An Io that records the paths it opens for reading, around syncIo or asyncIo. */
function recordingIo(base: Io): { io: Io; opened: string[] } {
  const opened: string[] = [];
  const io: Io = { ...base, openRead: (p) => (opened.push(p), base.openRead(p)) };
  return { io, opened };
}

describe('asar: the header reader agrees with @electron/asar', () => {
  it('an archive written by the test writer is byte-identical to the one @electron/asar wrote (the format is understood)', () => {
    for (const archive of Object.values(archives)) {
      const raw = asar.getRawHeader(archive);
      const copy = writeArchive(path.join(tempDir(), 'app.asar'), JSON.stringify(raw.header), dataOf(archive));
      assert.ok(fs.readFileSync(copy).equals(fs.readFileSync(archive)), archive);
    }
  });

  it('header size, data offset and tree are those of getRawHeader', () => {
    for (const archive of Object.values(archives)) {
      const raw = asar.getRawHeader(archive);
      const header = readAsarHeader(archive);
      assert.equal(header.archive, archive);
      assert.equal(header.headerSize, raw.headerSize);
      assert.equal(header.dataOffset, 8 + raw.headerSize);
      assert.equal(header.archiveSize, fs.statSync(archive).size);
      assert.deepEqual(header.tree, raw.header);
    }
  });

  it('every listed path is found, with the kind and size statFile reports, and every file reads as extractFile gives it (sync and async)', async () => {
    for (const archive of Object.values(archives)) {
      const header = readAsarHeader(archive);
      const paths = listed(archive);
      assert.ok(paths.includes('main.js') && paths.includes('lib/empty.txt') && paths.includes(`native/${KEY}/libdemo_core.so`), 'the app is in the archive');
      for (const p of paths) {
        const entry = findAsarEntry(header, p);
        assert.ok(entry !== null, `${p} found`);
        const stat = asar.statFile(archive, p, false) as { files?: object; link?: string; size?: number; unpacked?: boolean };
        if (stat.link !== undefined) {
          assert.equal(entry.path, stat.link, `${p} is followed to its target`);
          continue;
        }
        if (stat.files !== undefined) {
          assert.equal(entry.kind, 'directory', p);
          if (entry.kind === 'directory') assert.deepEqual([...entry.names].sort(), Object.keys(stat.files).sort(), p);
          continue;
        }
        assert.equal(entry.kind, stat.unpacked === true ? 'unpacked' : 'packed', p);
        const file = entry as AsarFileEntry;
        assert.equal(file.size, stat.size, p);
        const expected = asar.extractFile(archive, p);
        assert.ok(runSync(readAsarFile(syncIo, file)).equals(expected), `${p} (sync) equals extractFile`);
        assert.ok((await runAsync(readAsarFile(asyncIo, file))).equals(expected), `${p} (async) equals extractFile`);
      }
    }
  });

  it('unpacked entries point into <archive>.unpacked at their path in the archive', () => {
    const header = readAsarHeader(archives.soUnpacked);
    const so = findAsarEntry(header, `/native/${KEY}/libdemo_core.so`);
    assert.deepEqual(so, { kind: 'unpacked', path: `native/${KEY}/libdemo_core.so`, size: blob('libdemo_core.so').length, file: path.join(`${archives.soUnpacked}.unpacked`, 'native', KEY, 'libdemo_core.so') });
    // '*.so*' does not match demo.node, nor the manifest.
    assert.equal(findAsarEntry(header, `native/${KEY}/demo.node`)?.kind, 'packed');
    assert.equal(findAsarEntry(header, 'native/dlbundle.json')?.kind, 'packed');
  });

  it('links are followed from the archive root, also in the middle of a path; absent paths are null', () => {
    const header = readAsarHeader(archives.packed);
    assert.equal(findAsarEntry(header, 'current')?.path, 'native');
    assert.equal(findAsarEntry(header, `current/${KEY}/libdemo_app.so`)?.path, `native/${KEY}/libdemo_app.so`);
    assert.equal(findAsarEntry(header, 'nope'), null);
    assert.equal(findAsarEntry(header, 'main.js/below'), null, 'a file is no directory');
    assert.equal(findAsarEntry(header, 'native/constructor'), null, 'no prototype names');
    assert.equal(findAsarEntry(header, '/')?.kind, 'directory');
  });
});

describe('asar: fromAsar feeds the cache', () => {
  for (const [name, archive] of [
    ['a packed archive', () => archives.packed],
    ['an archive with the .so files unpacked', () => archives.soUnpacked],
    ['an archive with the variant directory unpacked', () => archives.subdirsUnpacked],
    ['an archive with the whole bundle unpacked', () => archives.bundleUnpacked],
  ] as const) {
    it(`${name}: materializes byte-identical files, sync and async`, async () => {
      const source = fromAsar(archive(), 'native');
      assert.equal(source.kind, 'asar');
      assert.equal(source.location, `${archive()}:/native`);
      assert.deepEqual(source.manifest().variants[KEY], variant);
      assertExtracted(runSync(materialize(syncIo, request(source))));
      assertExtracted(await runAsync(materialize(asyncIo, request(source))));
    });
  }

  it('unpacked blobs are read from <archive>.unpacked; packed ones from the archive', () => {
    const { io, opened } = recordingIo(syncIo);
    runSync(materialize(io, request(fromAsar(archives.soUnpacked, 'native'))));
    const unpacked = path.join(`${archives.soUnpacked}.unpacked`, 'native', KEY);
    const soFiles = variant.files.map((f) => f.name).filter((n) => n.includes('.so'));
    const resources = path.dirname(archives.soUnpacked);
    // demo.node is packed: it is read from the archive, which is opened outside the Io (original-fs in Electron).
    assert.deepEqual(opened.filter((p) => p.startsWith(resources)).sort(), soFiles.map((n) => path.join(unpacked, n)).sort());
  });

  it('openBlob reads in chunks of any size, with the same bytes sync and async', async () => {
    for (const archive of [archives.packed, archives.soUnpacked]) {
      const source = fromAsar(archive, '/native/');
      source.manifest();
      for (const file of variant.files) {
        const scratch = Buffer.alloc(4093); // odd, so chunk ends never meet the blob's
        const sync = runSync(readBlob(syncIo, source, file.name, scratch));
        const async = await runAsync(readBlob(asyncIo, source, file.name, scratch));
        assert.ok(sync.equals(blob(file.name)), `${file.name} sync`);
        assert.ok(sync.equals(asar.extractFile(archive, `native/${KEY}/${file.name}`)), `${file.name} as extractFile gives it`);
        assert.ok(async.equals(sync), `${file.name} async`);
      }
    }
  });

  it('a bundle reached through a link in the archive is found', () => {
    const source = fromAsar(archives.packed, 'current');
    assertExtracted(runSync(materialize(syncIo, request(source))));
  });

  it('does no I/O until first used, and reads the header once', () => {
    const missing = fromAsar(path.join(tempDir(), 'nothing.asar'), 'native');
    expectCode('E_IO', () => missing.manifest());

    // With the whole bundle unpacked, the archive is not needed after its header was read.
    const dir = path.dirname(archives.bundleUnpacked);
    const copy = path.join(tempDir(), 'resources');
    fs.cpSync(dir, copy, { recursive: true });
    const archive = path.join(copy, 'app.asar');
    const source = fromAsar(archive, 'native');
    source.manifest();
    fs.writeFileSync(archive, 'garbage');
    assertExtracted(runSync(materialize(syncIo, request(source))));
  });

  it('in a child process, openBundle loads libdemo_app.so from the archive and app_compute(5) is 1011', () => {
    const cache = path.join(tempDir(), 'cache');
    const r = runChild<{ value: number; kind: string; location: string; maps: string[] }>(
      `const source = require(P.asar).fromAsar(P.archive, 'native');
       const bundle = dl.openBundle({ source, cacheDir: P.cache });
       const app = bundle.library('libdemo_app.so', { compute: 'int app_compute(int x)' });
       const value = app.compute(5);
       const report = bundle.explain();
       return { value, kind: report.source.kind, location: report.source.location, maps: demoMapped() };`,
      { params: { asar: path.join(REPO, 'dist', 'sources', 'asar.js'), archive: archives.packed, cache } },
    );
    assert.equal(r.value, 1011);
    assert.equal(r.kind, 'asar');
    assert.equal(r.location, `${archives.packed}:/native`);
    assert.deepEqual(r.maps.map((p) => path.basename(p)), ['libdemo_app.so', 'libdemo_codec.so.1.2.3', 'libdemo_core.so']);
    assert.ok(r.maps.every((p) => p.startsWith(cache + path.sep)), `loaded from the cache: ${JSON.stringify(r.maps)}`);
  });

  it('inside Electron, every access to the archive goes through original-fs (a child with Electron\'s fs patch simulated)', () => {
    const cache = path.join(tempDir(), 'cache');
    const r = runChild<{ value: number; asyncFiles: string[]; location: { archive: string; inner: string } | null; twin: string | null; used: string[] }>(
      `const Module = require('node:module');
       const realFs = require('node:fs');
       const unpatched = { ...realFs };
       const used = [];
       const isArchivePath = (p) => typeof p === 'string' && /\\.asar(\\/|$)/.test(p);
       // original-fs: the unpatched functions, recording what they are used on.
       const originalFs = {};
       for (const [name, fn] of Object.entries(unpatched)) {
         originalFs[name] = typeof fn !== 'function' ? fn : function (...args) {
           if (isArchivePath(args[0])) used.push(name);
           return fn.apply(realFs, args);
         };
       }
       // Electron's patched fs shows an archive as a directory; here plain fs refuses archive paths outright.
       for (const name of ['openSync', 'open', 'statSync', 'stat', 'lstatSync', 'readFileSync', 'existsSync']) {
         realFs[name] = function (...args) {
           if (isArchivePath(args[0])) throw Object.assign(new Error('patched fs used on ' + args[0]), { code: 'EPATCHED' });
           return unpatched[name].apply(realFs, args);
         };
       }
       const load = Module._load;
       Module._load = function (request, ...rest) { return request === 'original-fs' ? originalFs : load.call(this, request, ...rest); };
       Object.defineProperty(process.versions, 'electron', { value: '99.0.0', enumerable: true, configurable: true });

       const asar = require(P.asar);
       const location = asar.asarLocation(P.archive + '/native');
       const twin = asar.unpackedTwin(P.archive, 'native');
       const bundle = dl.openBundle({ source: asar.fromAsar(location.archive, location.inner), cacheDir: P.cache });
       const value = bundle.library('libdemo_app.so', { compute: 'int app_compute(int x)' }).compute(5);
       // The asynchronous path opens the archive with original-fs too.
       const { materialize } = require(P.dist + '/cache.js');
       const { asyncIo, runAsync } = require(P.dist + '/io.js');
       const source = asar.fromAsar(P.archive, 'native');
       const manifest = source.manifest();
       const variant = manifest.variants[P.key];
       const placed = await runAsync(materialize(asyncIo, { bundleName: 'demo', variantKey: P.key, variant, source, roots: [P.cache + '-async'], verify: 'size' }));
       return { value, location, twin, asyncFiles: fs.readdirSync(placed.dir).sort(), used: [...new Set(used)].sort() };`,
      { params: { asar: path.join(REPO, 'dist', 'sources', 'asar.js'), dist: path.join(REPO, 'dist'), archive: archives.packed, cache, key: KEY } },
    );
    assert.equal(r.value, 1011);
    assert.deepEqual(r.location, { archive: archives.packed, inner: 'native' });
    assert.equal(r.twin, null);
    assert.ok(variant.files.every((f) => r.asyncFiles.includes(f.name)), JSON.stringify(r.asyncFiles));
    // openSync: the header and sync copies; open: async copies; statSync: asarLocation.
    assert.deepEqual(r.used, ['open', 'openSync', 'statSync']);
  });
});

describe('asar: locating archives on disk', () => {
  it('asarLocation splits at the first .asar component that is a file', () => {
    const archive = archives.packed;
    assert.deepEqual(asarLocation(path.join(archive, 'native')), { archive, inner: 'native' });
    assert.deepEqual(asarLocation(path.join(archive, 'native', KEY, 'libdemo_core.so')), { archive, inner: `native/${KEY}/libdemo_core.so` });
    assert.deepEqual(asarLocation(archive), { archive, inner: '' });
    assert.deepEqual(asarLocation(path.join(archive, 'not', 'in', 'it')), { archive, inner: 'not/in/it' }, 'the inner path need not exist');
    assert.equal(asarLocation(path.join(app, 'native')), null, 'no .asar component');
    assert.equal(asarLocation(path.join(`${archive}.unpacked`, 'native')), null, 'app.asar.unpacked is not an archive');

    // A directory named like an archive (an extracted one) is passed over; the case of ".asar" does not matter.
    const outer = path.join(tempDir(), 'extracted.asar');
    fs.mkdirSync(outer);
    const inner = path.join(outer, 'APP.ASAR');
    fs.copyFileSync(archive, inner);
    assert.equal(asarLocation(path.join(outer, 'native')), null);
    assert.deepEqual(asarLocation(path.join(inner, 'native')), { archive: inner, inner: 'native' });
    assert.deepEqual(asarLocation(`${inner}/./x/../native`), { archive: inner, inner: 'native' });
  });

  it('unpackedTwin finds <archive>.unpacked/<inner> only when it holds a whole bundle', () => {
    assert.equal(unpackedTwin(archives.bundleUnpacked, 'native'), path.join(`${archives.bundleUnpacked}.unpacked`, 'native'));
    assert.equal(unpackedTwin(archives.bundleUnpacked, '/native/'), path.join(`${archives.bundleUnpacked}.unpacked`, 'native'));
    // 'native/**' unpacks what is below native/, but not native/dlbundle.json.
    assert.ok(fs.existsSync(path.join(`${archives.subdirsUnpacked}.unpacked`, 'native', KEY)));
    assert.equal(unpackedTwin(archives.subdirsUnpacked, 'native'), null);
    assert.equal(unpackedTwin(archives.soUnpacked, 'native'), null);
    assert.equal(unpackedTwin(archives.packed, 'native'), null);
    assert.equal(unpackedTwin(archives.bundleUnpacked, 'lib'), null);
    expectCode('E_USAGE', () => unpackedTwin(archives.bundleUnpacked, '../resources'));
  });
});

describe('asar: damaged archives and wrong arguments fail with codes', () => {
  it('innerDir with "..", a backslash or an on-disk path is refused at once with E_USAGE', () => {
    for (const inner of ['..', '../native', 'native/../..', 'native/..', 'a\\b', path.join(archives.packed, 'native')]) {
      expectCode('E_USAGE', () => fromAsar(archives.packed, inner));
    }
    expectCode('E_USAGE', () => findAsarEntry(readAsarHeader(archives.packed), 'native/../../etc'));
  });

  it('a missing archive, or a directory in its place, is E_IO', () => {
    expectCode('E_IO', () => fromAsar(path.join(tempDir(), 'missing.asar'), 'native').manifest());
    const dir = path.join(tempDir(), 'dir.asar');
    fs.mkdirSync(dir);
    expectCode('E_IO', () => fromAsar(dir, 'native').manifest());
  });

  it('a missing bundle directory, a file in its place, or no dlbundle.json in it is E_IO naming what is there', () => {
    const missing = expectCode('E_IO', () => fromAsar(archives.packed, 'nope').manifest());
    assert.match(missing.message, /"\/nope"; its top level holds \[.*"native".*\]/);
    expectCode('E_IO', () => fromAsar(archives.packed, 'main.js').manifest());
    assert.match(expectCode('E_IO', () => fromAsar(archives.packed, 'lib').manifest()).message, /holds no dlbundle\.json/);
  });

  it('a truncated header is E_BAD_MANIFEST', () => {
    const whole = fs.readFileSync(archives.packed);
    const dataOffset = readAsarHeader(archives.packed).dataOffset;
    for (const length of [0, 3, 7, 8, 12, dataOffset - 1]) {
      const file = path.join(tempDir(), 'app.asar');
      fs.writeFileSync(file, whole.subarray(0, length));
      const e = expectCode('E_BAD_MANIFEST', () => fromAsar(file, 'native').manifest());
      assert.equal(e.file, file);
      assert.match(e.message, /not a valid asar archive/);
    }
  });

  it('a header that is not JSON, or not a tree, or whose pickle lies, is E_BAD_MANIFEST', () => {
    const data = dataOf(archives.packed);
    for (const json of ['{"files": {', 'garbage', '[]', '{"files": []}', '{"files": null}', '{}', '"files"']) {
      const file = writeArchive(path.join(tempDir(), 'app.asar'), json, data);
      expectCode('E_BAD_MANIFEST', () => fromAsar(file, 'native').manifest());
    }
    // A string length beyond the pickle's payload, and a payload size beyond the pickle.
    const good = fs.readFileSync(archives.packed);
    for (const [at, value] of [[12, 0x7fffffff], [12, -1], [8, 0xffffff00]] as const) {
      const bad = Buffer.from(good);
      if (value < 0) bad.writeInt32LE(value, at);
      else bad.writeUInt32LE(value, at);
      const file = path.join(tempDir(), 'app.asar');
      fs.writeFileSync(file, bad);
      expectCode('E_BAD_MANIFEST', () => fromAsar(file, 'native').manifest());
    }
  });

  it('an entry whose data lies past the end of the archive is E_BAD_MANIFEST, sync and async, before anything is read', async () => {
    const file = editedArchive((tree) => {
      node(tree, `native/${KEY}/libdemo_core.so`).offset = String(fs.statSync(archives.packed).size);
    });
    const source = fromAsar(file, 'native');
    source.manifest(); // the manifest itself is intact
    const root = path.join(tempDir(), 'cache');
    const e = expectCode('E_BAD_MANIFEST', () => runSync(materialize(syncIo, request(source, root))));
    assert.match(e.message, /libdemo_core\.so.*runs past the end/);
    await expectCodeAsync('E_BAD_MANIFEST', runAsync(materialize(asyncIo, request(source, root))));
    assert.deepEqual(fs.readdirSync(root).filter((n) => !n.startsWith('.')), [], 'nothing was published');

    // The same when the archive is cut short in the middle of a blob.
    const core = findAsarEntry(readAsarHeader(archives.packed), `native/${KEY}/libdemo_core.so`);
    assert.ok(core?.kind === 'packed');
    const cut = path.join(tempDir(), 'app.asar');
    fs.writeFileSync(cut, fs.readFileSync(archives.packed).subarray(0, core.offset + 10));
    expectCode('E_BAD_MANIFEST', () => runSync(materialize(syncIo, request(fromAsar(cut, 'native')))));
  });

  it('entries of the wrong shape are E_BAD_MANIFEST', () => {
    const core = `native/${KEY}/libdemo_core.so`;
    const edits: ((tree: Tree) => void)[] = [
      (t) => void (node(t, core).offset = 16627), // a number, where Electron reads a string
      (t) => void (node(t, core).offset = '-1'),
      (t) => void (node(t, core).offset = '99999999999999999999'),
      (t) => void (node(t, core).size = -1),
      (t) => void (node(t, core).size = '100'),
      (t) => void delete node(t, core).size,
      (t) => void (node(t, core).unpacked = 'yes'),
      (t) => void ((node(t, `native/${KEY}`).files as unknown) = 'x'),
      (t) => void ((node(t, 'native').files[KEY] as unknown) = 7),
    ];
    for (const edit of edits) {
      const source = fromAsar(editedArchive(edit), 'native');
      expectCode('E_BAD_MANIFEST', () => {
        source.manifest();
        runSync(materialize(syncIo, request(source)));
      });
    }
  });

  it('links that loop or point out of the archive are E_BAD_MANIFEST; links are bounded', () => {
    const loop = editedArchive((t) => {
      t.files.a = { link: 'b' } as unknown as Tree;
      t.files.b = { link: 'a' } as unknown as Tree;
    });
    assert.match(expectCode('E_BAD_MANIFEST', () => fromAsar(loop, 'a').manifest()).message, /more than 40 links/);
    const out = editedArchive((t) => void (t.files.out = { link: '../outside' } as unknown as Tree));
    assert.match(expectCode('E_BAD_MANIFEST', () => fromAsar(out, 'out').manifest()).message, /outside the archive/);
    const badTarget = editedArchive((t) => void (t.files.n = { link: 5 } as unknown as Tree));
    expectCode('E_BAD_MANIFEST', () => fromAsar(badTarget, 'n').manifest());
    // A chain of 40 links is followed.
    const chain = editedArchive((t) => {
      for (let i = 0; i < 40; i++) t.files[`l${i}`] = { link: i === 39 ? 'native' : `l${i + 1}` } as unknown as Tree;
    });
    assert.equal(fromAsar(chain, 'l0').manifest().name, 'demo');
  });

  it('a blob absent from the archive, or from <archive>.unpacked, is E_MISSING_BLOB, sync and async', async () => {
    const withoutPlugin = editedArchive((t) => void delete node(t, `native/${KEY}`).files['libdemo_plugin.so']);
    const source = fromAsar(withoutPlugin, 'native');
    const e = expectCode('E_MISSING_BLOB', () => runSync(materialize(syncIo, request(source))));
    assert.equal(e.file, 'libdemo_plugin.so');
    await expectCodeAsync('E_MISSING_BLOB', runAsync(materialize(asyncIo, request(source))));

    const copy = path.join(tempDir(), 'resources');
    fs.cpSync(path.dirname(archives.soUnpacked), copy, { recursive: true });
    fs.rmSync(path.join(copy, 'app.asar.unpacked', 'native', KEY, 'libdemo_core.so'));
    const unpacked = fromAsar(path.join(copy, 'app.asar'), 'native');
    assert.match(expectCode('E_MISSING_BLOB', () => runSync(materialize(syncIo, request(unpacked)))).message, /marked unpacked/);
    await expectCodeAsync('E_MISSING_BLOB', runAsync(materialize(asyncIo, request(unpacked))));
    // The manifest unpacked but missing on disk is E_IO, like a missing dlbundle.json.
    const bundleCopy = path.join(tempDir(), 'resources');
    fs.cpSync(path.dirname(archives.bundleUnpacked), bundleCopy, { recursive: true });
    fs.rmSync(path.join(bundleCopy, 'app.asar.unpacked', 'native', 'dlbundle.json'));
    expectCode('E_IO', () => fromAsar(path.join(bundleCopy, 'app.asar'), 'native').manifest());
  });

  it('any truncation or corruption of the header gives a DlbundleError or the right bytes, nothing else', () => {
    const good = fs.readFileSync(archives.packed);
    const dataOffset = readAsarHeader(archives.packed).dataOffset;
    const damagedCopies: Buffer[] = [];
    for (let length = 0; length < dataOffset + 64; length += length < 24 ? 1 : 37) damagedCopies.push(good.subarray(0, length));
    for (let at = 0; at < dataOffset; at += 11) {
      for (const byte of [0x00, 0x22, 0xff]) {
        const bad = Buffer.from(good);
        bad[at] = byte;
        damagedCopies.push(bad);
      }
    }
    const file = path.join(tempDir(), 'app.asar');
    const codes = new Set<string>();
    let intact = 0;
    for (const bytes of damagedCopies) {
      fs.writeFileSync(file, bytes);
      try {
        const source = fromAsar(file, 'native');
        source.manifest();
        for (const f of variant.files) {
          const bytesRead = runSync(readBlob(syncIo, source, f.name, Buffer.alloc(65536)));
          if (bytesRead.equals(blob(f.name))) intact++;
        }
      } catch (e) {
        assert.ok(isDlbundleError(e), `only DlbundleErrors: ${(e as Error).stack}`);
        codes.add(e.code);
      }
    }
    assert.ok(codes.has('E_BAD_MANIFEST') && codes.has('E_MISSING_BLOB'), JSON.stringify([...codes]));
    assert.ok(intact > 0);
  });
});

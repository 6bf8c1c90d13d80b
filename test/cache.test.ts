import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { bundleDirName, COMPLETE_MARKER, materialize, type CacheRequest, type CacheResult } from '../src/cache';
import { candidateRoots } from '../src/roots';
import { isDlbundleError } from '../src/errors';
import { xxh64 } from '../src/hash';
import { asyncIo, runAsync, runSync, syncIo, type Io } from '../src/io';
import { canonicalFileList, parseManifest, type Manifest, type ManifestVariant } from '../src/manifest';
import { pack } from '../src/pack';
import { fromBuffers, type BlobInput } from '../src/sources/buffers';
import { fromDirectory } from '../src/sources/directory';
import type { Source } from '../src/sources/source';
import { spawnChild } from './child';
import { expectCode, identities, nativeFixture, REPO, rootEntries, stagingIn, tempDir } from './fixtures';

// The cache works on files only (it never dlopens), so it is exercised here,
// in the mocha process, on the real demo libraries packed into a temp bundle.
const KEY = 'linux-x64-gnu';
const FILES = ['libdemo_core.so', 'libdemo_codec.so.1.2.3', 'libdemo_app.so', 'libdemo_plugin.so', 'libdemo_accel.so'];
const FOREIGN_UID = 65534; // nobody

let bundle: string; // a packed bundle directory: dlbundle.json + linux-x64-gnu/
let manifest: Manifest;
let variant: ManifestVariant;
let dirName: string; // demo-<digest>

before(() => {
  bundle = path.join(tempDir(), 'bundle');
  const packed = pack(FILES.map(nativeFixture), { name: 'demo', out: bundle });
  manifest = packed.manifest;
  variant = packed.variant;
  dirName = bundleDirName('demo', variant);
});

function blob(name: string, from = bundle): Buffer {
  return fs.readFileSync(path.join(from, KEY, name));
}

function request(roots: readonly string[], more: Partial<CacheRequest> = {}): CacheRequest {
  return { bundleName: 'demo', variantKey: KEY, variant, source: fromDirectory(bundle), roots, verify: 'size', ...more };
}

function materializeSync(roots: readonly string[], more: Partial<CacheRequest> = {}): CacheResult {
  return runSync(materialize(syncIo, request(roots, more)));
}

/** A fresh root path inside a fresh temp dir (not created). */
function freshRoot(): string {
  return path.join(tempDir(), 'root');
}

/** A copy of the packed bundle directory, to be tampered with. */
function bundleCopy(): string {
  const copy = path.join(tempDir(), 'bundle');
  fs.cpSync(bundle, copy, { recursive: true });
  return copy;
}

function mode(p: string): number {
  return fs.lstatSync(p).mode & 0o7777;
}

/** Asserts that `dir` holds exactly the variant: byte-identical private files, soname link, marker. */
function assertComplete(dir: string): void {
  assert.equal(mode(dir), 0o700, `${dir} mode`);
  assert.deepEqual(fs.readdirSync(dir).sort(), [COMPLETE_MARKER, ...FILES, 'libdemo_codec.so.1'].sort());
  for (const name of FILES) {
    const p = path.join(dir, name);
    const st = fs.lstatSync(p);
    assert.ok(st.isFile(), `${name} is a regular file`);
    assert.equal(st.mode & 0o777, 0o700, `${name} mode`);
    assert.ok(fs.readFileSync(p).equals(blob(name)), `${name} is byte-identical to its blob`);
  }
  assert.equal(fs.readlinkSync(path.join(dir, 'libdemo_codec.so.1')), 'libdemo_codec.so.1.2.3');
  // The marker: the file list, then each file's identity (device, inode, size, mtime, ctime) as published.
  const [list, ids, end] = fs.readFileSync(path.join(dir, COMPLETE_MARKER), 'utf8').split(/\n(?=[{]|$)/);
  assert.equal(list, canonicalFileList(variant.files));
  assert.equal(end, '');
  const recorded = JSON.parse(ids ?? '') as Record<string, string>;
  assert.deepEqual(Object.keys(recorded).sort(), [...FILES].sort());
  for (const name of FILES) {
    const st = fs.lstatSync(path.join(dir, name));
    assert.equal(recorded[name], `${st.dev}:${st.ino}:${st.size}:${st.mtimeMs}:${st.ctimeMs}`, `${name}'s recorded identity`);
  }
}

type Call = { readonly op: string; readonly args: readonly unknown[] };

/**
 * An Io that records every operation and lets a test replace some of them —
 * failures are injected by substituting file-system calls, not by hoping for a race.
 */
function watchedIo(base: Io, calls: Call[], replace: Partial<Io> = {}): Io {
  return new Proxy(base, {
    get(target, prop, receiver) {
      const own = (replace as Record<string | symbol, unknown>)[prop];
      const original: unknown = own ?? Reflect.get(target, prop, receiver);
      if (typeof original !== 'function') return original;
      return (...args: unknown[]): unknown => {
        calls.push({ op: String(prop), args });
        return (original as (...a: unknown[]) => unknown).apply(target, args);
      };
    },
  });
}

function errnoError(code: string): NodeJS.ErrnoException {
  return Object.assign(new Error(`${code}: injected by the test`), { code });
}

function isRoot(): boolean {
  return process.geteuid?.() === 0;
}

describe('cache: roots', () => {
  const saved = { DLBUNDLE_CACHE_DIR: process.env.DLBUNDLE_CACHE_DIR, XDG_CACHE_HOME: process.env.XDG_CACHE_HOME };
  afterEach(() => {
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  });

  it('prefers cacheDir, then $DLBUNDLE_CACHE_DIR, then <tmpdir>/dlbundle-<uid>; $XDG_CACHE_HOME/dlbundle is the fallback', () => {
    process.env.XDG_CACHE_HOME = '/xdg';
    process.env.DLBUNDLE_CACHE_DIR = '/from-env';
    assert.deepEqual(candidateRoots('/given').roots, ['/given', '/xdg/dlbundle']);
    assert.deepEqual(candidateRoots().roots, ['/from-env', '/xdg/dlbundle']);
    process.env.DLBUNDLE_CACHE_DIR = '';
    assert.deepEqual(candidateRoots().roots, [path.join(os.tmpdir(), `dlbundle-${process.geteuid?.() ?? os.userInfo().uid}`), '/xdg/dlbundle']);
  });

  it('reads the environment at each call, ignores a relative XDG_CACHE_HOME, resolves and de-duplicates roots', () => {
    delete process.env.DLBUNDLE_CACHE_DIR;
    process.env.XDG_CACHE_HOME = 'relative/cache';
    assert.deepEqual(candidateRoots('/a/../b').roots, ['/b', path.join(os.homedir(), '.cache', 'dlbundle')]);
    process.env.XDG_CACHE_HOME = '/same';
    assert.deepEqual(candidateRoots('/same/dlbundle').roots, ['/same/dlbundle']);
    process.env.DLBUNDLE_CACHE_DIR = '/later';
    assert.deepEqual(candidateRoots().roots, ['/later', '/same/dlbundle']);
  });
});

describe('cache: materialize', () => {
  it('a cold start writes <root>/<name>-<digest>/ with every file byte for byte, private, with the soname link and the marker', () => {
    const root = path.join(tempDir(), 'parent', 'root'); // the parent is missing too
    const r = materializeSync([root]);
    assert.deepEqual(r, { root, dir: path.join(root, dirName), reused: false, fallbacks: [] });
    assert.equal(dirName, `demo-${variant.digest}`);
    assert.equal(mode(root), 0o700);
    assert.deepEqual(rootEntries(root), [dirName], 'nothing but the bundle directory in the root (no staging leftovers)');
    assertComplete(r.dir);
  });

  it('the asynchronous path writes the same directory as the synchronous one', async () => {
    const root = freshRoot();
    const r = await runAsync(materialize(asyncIo, request([root])));
    assert.equal(r.reused, false);
    assert.equal(r.dir, path.join(root, dirName));
    assertComplete(r.dir);
    assert.deepEqual(rootEntries(root), [dirName]);
  });

  it('a bundle from memory is hashed while it is written and lands the same way', () => {
    const root = freshRoot();
    const blobs: Record<string, BlobInput> = {};
    for (const name of FILES) blobs[`${KEY}/${name}`] = blob(name);
    const r = materializeSync([root], { source: fromBuffers(manifest, blobs) });
    assert.equal(r.reused, false);
    assertComplete(r.dir);
  });

  it('a warm start reuses the directory with a few lstats: no file is opened, read, written or renamed, but its lease', () => {
    const root = freshRoot();
    const cold = materializeSync([root]);
    const before = identities(cold.dir);
    const calls: Call[] = [];
    const warm = runSync(materialize(watchedIo(syncIo, calls), request([root])));
    assert.deepEqual(warm, { ...cold, reused: true });
    assert.deepEqual(identities(cold.dir), before);
    // The lease (<root>/.leases/<dir>/<pid tag>) is the one thing a warm start writes.
    const leases = path.join(root, '.leases');
    const outsideLeases = calls.filter((c) => !String(c.args[0]).startsWith(leases + path.sep) && String(c.args[0]) !== leases);
    const ops = new Set(outsideLeases.map((c) => c.op));
    for (const op of ['openRead', 'read', 'create', 'write', 'rename', 'mkdtemp', 'rm', 'fsync', 'symlink', 'chmod', 'mkdir']) {
      assert.ok(!ops.has(op), `a warm start called ${op} outside ${leases}`);
    }
    // Named <pid namespace>-<pid>-<start time (field 22 of /proc/self/stat)>.
    const stat = fs.readFileSync('/proc/self/stat', 'latin1');
    const started = stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
    assert.deepEqual(fs.readdirSync(path.join(leases, path.basename(cold.dir))), [`${fs.readlinkSync('/proc/self/ns/pid').replace(/\D/g, '')}-${process.pid}-${started}`]);
    // The one file read is the small marker.
    assert.deepEqual(calls.filter((c) => c.op === 'readFile').map((c) => c.args[0]), [path.join(cold.dir, COMPLETE_MARKER)]);
  });

  it("verify: 'full' re-hashes every file on a warm start; 'size' does not read them", () => {
    const root = freshRoot();
    materializeSync([root]);
    const full: Call[] = [];
    const r = runSync(materialize(watchedIo(syncIo, full), request([root], { verify: 'full' })));
    assert.equal(r.reused, true);
    const opened = full.filter((c) => c.op === 'openRead').map((c) => path.basename(String(c.args[0]))).sort();
    assert.deepEqual(opened, [...FILES].sort());
  });

  it("verify: 'full' on the asynchronous path detects a same-size tampered file too", async () => {
    const root = freshRoot();
    const { dir } = materializeSync([root]);
    const core = path.join(dir, 'libdemo_core.so');
    const bytes = fs.readFileSync(core);
    bytes[100] = (bytes[100] ?? 0) ^ 0x10;
    fs.writeFileSync(core, bytes);
    const r = await runAsync(materialize(asyncIo, request([root], { verify: 'full' })));
    assert.equal(r.reused, false);
    assertComplete(dir);
    assert.deepEqual(rootEntries(root), [dirName]);
  });

  describe('a damaged directory is rebuilt and swapped in', () => {
    const damages: ReadonlyArray<{ readonly what: string; readonly damage: (dir: string) => void; readonly root?: true }> = [
      { what: 'the completion marker deleted', damage: (d) => fs.rmSync(path.join(d, COMPLETE_MARKER)) },
      { what: 'a file truncated', damage: (d) => fs.truncateSync(path.join(d, 'libdemo_core.so'), 100) },
      { what: 'a file grown', damage: (d) => fs.appendFileSync(path.join(d, 'libdemo_app.so'), 'x') },
      { what: 'a file deleted', damage: (d) => fs.rmSync(path.join(d, 'libdemo_plugin.so')) },
      { what: 'an extra file planted', damage: (d) => fs.writeFileSync(path.join(d, 'libevil.so'), 'x', { mode: 0o700 }) },
      {
        what: 'the soname link pointing elsewhere',
        damage: (d) => {
          fs.rmSync(path.join(d, 'libdemo_codec.so.1'));
          fs.symlinkSync('libdemo_core.so', path.join(d, 'libdemo_codec.so.1'));
        },
      },
      { what: 'the soname link deleted', damage: (d) => fs.rmSync(path.join(d, 'libdemo_codec.so.1')) },
      {
        what: 'the soname link replaced by a copy',
        damage: (d) => {
          fs.rmSync(path.join(d, 'libdemo_codec.so.1'));
          fs.copyFileSync(path.join(d, 'libdemo_codec.so.1.2.3'), path.join(d, 'libdemo_codec.so.1'));
        },
      },
      {
        what: 'the marker written for another file list',
        damage: (d) => fs.writeFileSync(path.join(d, COMPLETE_MARKER), `${canonicalFileList(variant.files.slice(1))}\n`),
      },
      { what: 'the marker empty', damage: (d) => fs.writeFileSync(path.join(d, COMPLETE_MARKER), '') },
      {
        what: 'a file replaced by a symlink to a same-size file',
        damage: (d) => {
          fs.rmSync(path.join(d, 'libdemo_core.so'));
          fs.symlinkSync(path.join(bundle, KEY, 'libdemo_core.so'), path.join(d, 'libdemo_core.so'));
        },
      },
      { what: 'a file made group-writable', damage: (d) => fs.chmodSync(path.join(d, 'libdemo_core.so'), 0o770) },
      { what: 'a file owned by another user', damage: (d) => fs.chownSync(path.join(d, 'libdemo_core.so'), FOREIGN_UID, FOREIGN_UID), root: true },
    ];
    for (const { what, damage, root: needsRoot } of damages) {
      it(`${what}: the next start rebuilds it (reused false) with the right content`, function () {
        if (needsRoot === true && !isRoot()) this.skip();
        const root = freshRoot();
        const { dir } = materializeSync([root]);
        const oldDirIno = fs.statSync(dir).ino;
        damage(dir);
        const r = materializeSync([root]);
        assert.equal(r.dir, dir);
        assert.equal(r.reused, false);
        assertComplete(dir);
        // Swapped in by rename, not repaired in place: a process that has the old files mapped keeps them.
        assert.notEqual(fs.statSync(dir).ino, oldDirIno);
        assert.deepEqual(rootEntries(root), [dirName], 'no staging or moved-aside leftovers');
        assert.equal(materializeSync([root]).reused, true, 'and the start after that reuses it');
      });
    }

    it("a same-size rewrite in place is seen by verify: 'size' too (its ctime moved), confirmed by hashing that file alone, and rebuilt", () => {
      const root = freshRoot();
      const { dir } = materializeSync([root]);
      const plugin = path.join(dir, 'libdemo_plugin.so');
      const bytes = fs.readFileSync(plugin);
      bytes[bytes.length - 1] = (bytes[bytes.length - 1] ?? 0) ^ 0xff;
      const ino = fs.statSync(plugin).ino;
      // Rewritten through the same inode, size kept, mtime put back: only ctime tells.
      const { atime, mtime } = fs.statSync(plugin);
      fs.writeFileSync(plugin, bytes);
      fs.utimesSync(plugin, atime, mtime);
      assert.equal(fs.statSync(plugin).ino, ino);
      const calls: Call[] = [];
      const r = runSync(materialize(watchedIo(syncIo, calls), request([root], { verify: 'size' })));
      assert.equal(r.reused, false);
      assertComplete(dir);
      // Seen from the warm start's own lstat: only the file whose identity moved was read before the rebuild.
      const firstCreate = calls.findIndex((c) => c.op === 'mkdtemp');
      assert.deepEqual(calls.slice(0, firstCreate).filter((c) => c.op === 'openRead').map((c) => c.args[0]), [plugin]);
    });

    it('a directory copied whole (new inodes, same bytes: a cache baked into an image) is reused after hashing its files once; its marker then records the new identities', () => {
      const root = freshRoot();
      const { dir } = materializeSync([root]);
      const copy = path.join(tempDir(), 'copy');
      fs.cpSync(dir, copy, { recursive: true, preserveTimestamps: true, verbatimSymlinks: true });
      fs.rmSync(dir, { recursive: true });
      fs.renameSync(copy, dir);
      fs.chmodSync(dir, 0o700);
      const first: Call[] = [];
      const r = runSync(materialize(watchedIo(syncIo, first), request([root])));
      assert.equal(r.reused, true, 'reused, not extracted again');
      // Each file opened twice: hashed once, then flushed before the marker that trusts it in every boot.
      assert.deepEqual(first.filter((c) => c.op === 'openRead').map((c) => path.basename(String(c.args[0]))).sort(), [...FILES, ...FILES].sort(), 'each file hashed once and flushed once');
      assert.equal(first.filter((c) => c.op === 'fsync').length, FILES.length + 1, 'the files, then the new marker');
      assertComplete(dir);
      assert.deepEqual(rootEntries(root), [dirName], 'the marker was replaced without leftovers');
      const second: Call[] = [];
      assert.equal(runSync(materialize(watchedIo(syncIo, second), request([root]))).reused, true);
      assert.deepEqual(second.filter((c) => c.op === 'openRead'), [], 'the next start reads no file');
    });

    it("a file replaced by another of the same size (new inode) is seen by verify: 'size', and rebuilt", () => {
      const root = freshRoot();
      const { dir } = materializeSync([root]);
      const core = path.join(dir, 'libdemo_core.so');
      const bytes = fs.readFileSync(core);
      bytes[200] = (bytes[200] ?? 0) ^ 0x01;
      fs.writeFileSync(`${core}.new`, bytes, { mode: 0o700 });
      fs.renameSync(`${core}.new`, core);
      assert.equal(materializeSync([root]).reused, false);
      assertComplete(dir);
    });
  });

  describe('content that does not match the manifest is refused before anything is published', () => {
    const flipByte = (file: string): void => {
      const b = fs.readFileSync(file);
      b[4000] = (b[4000] ?? 0) ^ 0x01;
      fs.writeFileSync(file, b);
    };
    const tamperings: ReadonlyArray<{ readonly what: string; readonly tamper: (file: string) => void; readonly says: RegExp }> = [
      { what: 'a flipped byte (same size)', tamper: flipByte, says: /xxh64 [0-9a-f]{16} instead of / },
      { what: 'a truncated blob', tamper: (f) => fs.truncateSync(f, 1000), says: /1000 bytes instead of / },
      { what: 'a longer blob', tamper: (f) => fs.appendFileSync(f, Buffer.alloc(10)), says: /more than \d+ bytes/ },
    ];
    for (const { what, tamper, says } of tamperings) {
      it(`fromDirectory, ${what}: E_INTEGRITY naming the file; no bundle directory, no staging, the next root is not tried`, () => {
        const copy = bundleCopy();
        tamper(path.join(copy, KEY, 'libdemo_codec.so.1.2.3'));
        const root = freshRoot();
        const second = freshRoot();
        const err = expectCode('E_INTEGRITY', () => materializeSync([root, second], { source: fromDirectory(copy) }));
        assert.equal(err.file, 'libdemo_codec.so.1.2.3');
        assert.match(err.message, says);
        assert.deepEqual(rootEntries(root), [], 'nothing published, no staging leftovers');
        assert.equal(fs.existsSync(second), false, 'another root would not fix the source, so it is not touched');
      });

      it(`fromBuffers, ${what}: E_INTEGRITY naming the file; nothing published`, () => {
        const scratch = path.join(tempDir(), 'libdemo_app.so');
        fs.writeFileSync(scratch, blob('libdemo_app.so'));
        tamper(scratch);
        const blobs: Record<string, BlobInput> = {};
        for (const name of FILES) blobs[`${KEY}/${name}`] = name === 'libdemo_app.so' ? fs.readFileSync(scratch) : blob(name);
        const root = freshRoot();
        const err = expectCode('E_INTEGRITY', () => materializeSync([root], { source: fromBuffers(manifest, blobs) }));
        assert.equal(err.file, 'libdemo_app.so');
        assert.match(err.message, says);
        assert.deepEqual(rootEntries(root), []);
      });
    }

    it('a blob deleted from the bundle directory: E_MISSING_BLOB naming it; nothing published', () => {
      const copy = bundleCopy();
      fs.rmSync(path.join(copy, KEY, 'libdemo_plugin.so'));
      const root = freshRoot();
      const err = expectCode('E_MISSING_BLOB', () => materializeSync([root, freshRoot()], { source: fromDirectory(copy) }));
      assert.equal(err.file, 'libdemo_plugin.so');
      assert.deepEqual(rootEntries(root), []);
    });

    it('a blob missing from fromBuffers: E_MISSING_BLOB naming it and listing the keys given', () => {
      const blobs: Record<string, BlobInput> = {};
      for (const name of FILES.filter((n) => n !== 'libdemo_accel.so')) blobs[`${KEY}/${name}`] = blob(name);
      const root = freshRoot();
      const err = expectCode('E_MISSING_BLOB', () => materializeSync([root], { source: fromBuffers(manifest, blobs) }));
      assert.equal(err.file, 'libdemo_accel.so');
      assert.match(err.message, /linux-x64-gnu\/libdemo_core\.so/);
      assert.deepEqual(rootEntries(root), []);
    });

    it('a manifest whose digest does not match its files: read without complaint at run time, E_BAD_MANIFEST before extracting', () => {
      const copy = bundleCopy();
      const file = path.join(copy, 'dlbundle.json');
      const json = JSON.parse(fs.readFileSync(file, 'utf8')) as { variants: Record<string, { digest: string }> };
      const v = json.variants[KEY];
      assert.ok(v);
      v.digest = '0123456789abcdef';
      fs.writeFileSync(file, JSON.stringify(json));
      const source = fromDirectory(copy);
      const read = source.manifest(); // the run-time reader skips the digest check (warm starts must not hash)
      const bad = read.variants[KEY];
      assert.ok(bad);
      const root = freshRoot();
      const calls: Call[] = [];
      const err = expectCode('E_BAD_MANIFEST', () => runSync(materialize(watchedIo(syncIo, calls), { ...request([root]), source, variant: bad })));
      assert.match(err.message, /digest/);
      assert.deepEqual(rootEntries(root), []);
      assert.ok(!calls.some((c) => c.op === 'mkdtemp' || c.op === 'create'), 'refused before any staging directory or copy');
      // The offline reader (pack, inspect) checks it at once.
      assert.throws(() => parseManifest(fs.readFileSync(file, 'utf8')), (e: unknown) => isDlbundleError(e, 'E_BAD_MANIFEST'));
    });

    it('a file list changed under an old digest is refused even though a complete directory of that name exists', () => {
      const root = freshRoot();
      const { dir } = materializeSync([root]);
      const before = identities(dir);
      // Same digest, a different core: the marker's file list no longer matches, and the digest check refuses to extract.
      const changed: ManifestVariant = {
        ...variant,
        files: variant.files.map((f) => (f.name === 'libdemo_core.so' ? { ...f, xxh64: '0000000000000000' } : f)),
      };
      expectCode('E_BAD_MANIFEST', () => materializeSync([root], { variant: changed }));
      assert.deepEqual(identities(dir), before, 'the old directory is left as it was');
      assert.deepEqual(stagingIn(root), []);
    });
  });

  describe('roots and bundle directories that are not private to this user are skipped with a reason', () => {
    /** A complete bundle directory elsewhere, to show that even a perfectly good one in a bad place is not used. */
    function goodDirElsewhere(): { root: string; dir: string } {
      const root = freshRoot();
      return { root, dir: materializeSync([root]).dir };
    }
    const cases: ReadonlyArray<{ readonly what: string; readonly reason: RegExp; readonly make: () => string; readonly root?: true }> = [
      {
        what: 'a root that is a symbolic link (to a private directory holding the bundle)',
        reason: /cache root is a symbolic link/,
        make: () => {
          const link = freshRoot();
          fs.symlinkSync(goodDirElsewhere().root, link);
          return link;
        },
      },
      {
        what: 'a group-writable root (0770)',
        reason: /cache root is writable by group or others \(mode 0770\)/,
        make: () => {
          const { root } = goodDirElsewhere();
          fs.chmodSync(root, 0o770);
          return root;
        },
      },
      {
        what: 'a world-writable root (0777)',
        reason: /cache root is writable by group or others \(mode 0777\)/,
        make: () => {
          const { root } = goodDirElsewhere();
          fs.chmodSync(root, 0o777);
          return root;
        },
      },
      {
        what: 'a sticky world-writable root (1777, like /tmp)',
        reason: /writable by group or others/,
        make: () => {
          const { root } = goodDirElsewhere();
          fs.chmodSync(root, 0o1777);
          return root;
        },
      },
      {
        what: 'a root owned by another user',
        reason: new RegExp(`cache root is owned by uid ${FOREIGN_UID}, not by this user`),
        root: true,
        make: () => {
          const { root } = goodDirElsewhere();
          fs.chownSync(root, FOREIGN_UID, FOREIGN_UID);
          return root;
        },
      },
      {
        what: 'a root that is a regular file',
        reason: /cache root is not a directory/,
        make: () => {
          const file = freshRoot();
          fs.mkdirSync(path.dirname(file), { recursive: true });
          fs.writeFileSync(file, 'not a directory');
          return file;
        },
      },
      {
        what: 'a bundle directory that is a symbolic link (to a complete bundle directory)',
        reason: /bundle directory is a symbolic link/,
        make: () => {
          const root = freshRoot();
          fs.mkdirSync(root, { mode: 0o700 });
          fs.symlinkSync(goodDirElsewhere().dir, path.join(root, dirName));
          return root;
        },
      },
      {
        what: 'a bundle directory owned by another user',
        reason: new RegExp(`bundle directory is owned by uid ${FOREIGN_UID}`),
        root: true,
        make: () => {
          const { root, dir } = goodDirElsewhere();
          fs.chownSync(dir, FOREIGN_UID, FOREIGN_UID);
          return root;
        },
      },
      {
        what: 'a group-writable bundle directory',
        reason: /bundle directory is writable by group or others/,
        make: () => {
          const { root, dir } = goodDirElsewhere();
          fs.chmodSync(dir, 0o770);
          return root;
        },
      },
    ];
    for (const { what, reason, make, root: needsRoot } of cases) {
      it(`${what}: the next root is used and the fallback is recorded`, function () {
        if (needsRoot === true && !isRoot()) this.skip();
        const bad = make();
        const badTarget = fs.realpathSync(bad);
        const untouched = fs.statSync(badTarget).isDirectory() ? identities(badTarget) : null;
        const good = freshRoot();
        const r = materializeSync([bad, good]);
        assert.equal(r.root, good);
        assert.equal(r.dir, path.join(good, dirName));
        assert.equal(r.reused, false);
        assertComplete(r.dir);
        assert.equal(r.fallbacks.length, 1);
        const fb = r.fallbacks[0];
        assert.equal(fb?.root, bad);
        assert.equal(fb?.code, 'E_UNSAFE_DIR');
        assert.match(fb?.reason ?? '', reason);
        assert.ok(!(fb?.reason ?? '').includes('\n'), 'the reason is one line');
        if (untouched !== null) assert.deepEqual(identities(badTarget), untouched, 'nothing in the bad place was written');
      });
    }

    it('when every root is bad: E_UNSAFE_DIR naming each root and its reason', () => {
      const link = freshRoot();
      fs.mkdirSync(path.dirname(link), { recursive: true });
      fs.symlinkSync(tempDir(), link);
      const open = freshRoot();
      fs.mkdirSync(open, { recursive: true });
      fs.chmodSync(open, 0o777);
      const err = expectCode('E_UNSAFE_DIR', () => materializeSync([link, open]));
      assert.equal(err.dir, link);
      assert.match(err.message, new RegExp(`${link}: .*symbolic link`));
      assert.match(err.message, new RegExp(`${open}: .*writable by group or others`));
      assert.match(err.message, /DLBUNDLE_CACHE_DIR/);
    });
  });

  describe('failures part-way leave nothing loadable', () => {
    /** syncIo, whose writes into files created under `root` fail with ENOSPC from the `nth` on. */
    function fullFrom(root: string, nth: number): Io {
      const inRoot = new Set<number>();
      let writes = 0;
      return watchedIo(syncIo, [], {
        *create(p, mode) {
          const fd = yield* syncIo.create(p, mode);
          if (p.startsWith(root + path.sep)) inRoot.add(fd);
          return fd;
        },
        write: (fd, bytes) => {
          if (inRoot.has(fd) && ++writes >= nth) throw errnoError('ENOSPC');
          return syncIo.write(fd, bytes);
        },
        // Descriptor numbers are reused once closed.
        close: (fd) => (inRoot.delete(fd), syncIo.close(fd)),
      });
    }

    it('a write that fails part-way (ENOSPC) leaves no bundle directory and no staging, and the next root is used', () => {
      const full = freshRoot();
      const good = freshRoot();
      const r = runSync(materialize(fullFrom(full, 3), request([full, good])));
      assert.equal(r.root, good);
      assertComplete(r.dir);
      assert.equal(r.fallbacks[0]?.code, 'E_NO_SPACE');
      assert.equal(r.fallbacks[0]?.root, full);
      assert.deepEqual(rootEntries(full), [], 'the full root holds nothing');
      const leases = path.join(full, '.leases', path.basename(r.dir));
      assert.deepEqual(fs.existsSync(leases) ? fs.readdirSync(leases) : [], [], 'and no lease of this process');
    });

    // Reading the source and writing the cache happen together; a full cache must be reported as the cache, not as the read-only source.
    it('a write that fails for lack of space names the cache root it was writing to, not the source blob', () => {
      const full = freshRoot();
      const good = freshRoot();
      const r = runSync(materialize(fullFrom(full, 1), request([full, good])));
      assert.equal(r.fallbacks[0]?.code, 'E_NO_SPACE');
      const reason = r.fallbacks[0]?.reason ?? '';
      assert.ok(!reason.includes(path.join(bundle, KEY)), `the reason blames the source blob: ${reason}`);
      assert.ok(reason.includes(full), `the reason does not name the full cache root: ${reason}`);
    });

    it('a write that fails part-way with one root: E_NO_SPACE, nothing published', () => {
      const root = freshRoot();
      let writes = 0;
      const blobs: Record<string, BlobInput> = {};
      for (const name of FILES) blobs[`${KEY}/${name}`] = blob(name);
      const io = watchedIo(syncIo, [], {
        write: (fd, bytes) => {
          if (++writes === 2) throw errnoError('ENOSPC');
          return syncIo.write(fd, bytes);
        },
      });
      const err = expectCode('E_NO_SPACE', () => runSync(materialize(io, request([root], { source: fromBuffers(manifest, blobs) }))));
      assert.match(err.message, /No cache directory could be used/);
      assert.deepEqual(rootEntries(root), []);
    });

    it('a process killed during extraction leaves only its staging directory; the next start publishes a complete one', () => {
      const root = freshRoot();
      const child = spawnChild(
        `const { materialize } = require(P.repo + '/dist/cache.js');
         const { runSync, syncIo } = require(P.repo + '/dist/io.js');
         const { fromBuffers } = require(P.repo + '/dist/sources/buffers.js');
         const manifest = JSON.parse(fs.readFileSync(P.bundle + '/dlbundle.json', 'utf8'));
         const blobs = {};
         let n = 0;
         for (const f of manifest.variants[P.key].files) {
           blobs[P.key + '/' + f.name] = () => {
             if (++n === 3) process.kill(process.pid, 'SIGKILL');
             return fs.readFileSync(path.join(P.bundle, P.key, f.name));
           };
         }
         const m = fromBuffers(manifest, blobs).manifest();
         runSync(materialize(syncIo, { bundleName: 'demo', variantKey: P.key, variant: m.variants[P.key], source: fromBuffers(manifest, blobs), roots: [P.root], verify: 'size' }));
         return 'not killed';`,
        { params: { repo: REPO, bundle, key: KEY, root } },
      );
      assert.equal(child.signal, 'SIGKILL', child.stderr);
      const left = rootEntries(root);
      assert.ok(!left.includes(dirName), 'no bundle directory under the final name');
      assert.ok(left.every((e) => e.startsWith(`.staging-${dirName}-`)), JSON.stringify(left));
      const r = materializeSync([root]);
      assert.equal(r.reused, false);
      assertComplete(r.dir);
      // Note: the dead process's staging directory is not swept (there is no sweep in cache.ts yet); it is never loaded.
    });

    it('a process that loses the publish race uses the winner\'s directory and removes its own staging copy', () => {
      const root = freshRoot();
      let winner: Record<string, string> | undefined;
      const calls: Call[] = [];
      const io = watchedIo(syncIo, calls, {
        rename: (from, to) => {
          if (winner === undefined && path.basename(from).startsWith('.staging-')) {
            // Another process publishes between our extraction and our rename.
            const w = materializeSync([root]);
            assert.equal(w.reused, false);
            winner = identities(w.dir);
          }
          return syncIo.rename(from, to);
        },
      });
      const r = runSync(materialize(io, request([root])));
      assert.equal(r.reused, true);
      assert.ok(winner !== undefined);
      assert.deepEqual(identities(r.dir), winner, "the winner's files are the ones in place");
      assert.deepEqual(rootEntries(root), [dirName], 'the loser removed its staging directory');
    });

    it('a directory that keeps changing under the publish gives E_IO after three attempts, leaving no staging', () => {
      const root = freshRoot();
      const { dir } = materializeSync([root]);
      fs.rmSync(path.join(dir, COMPLETE_MARKER));
      const io = watchedIo(syncIo, [], {
        rename: (from, to) => {
          if (path.basename(from).startsWith(`.staging-${dirName}`)) throw errnoError('ENOTEMPTY');
          return syncIo.rename(from, to);
        },
      });
      const err = expectCode('E_IO', () => runSync(materialize(io, request([root]))));
      assert.match(err.message, /kept changing/);
      assert.deepEqual(stagingIn(root), []);
    });
  });
});

describe('cache: sources', () => {
  it('fromBuffers calls a blob function only when that blob is extracted, once, and not at all on a warm start', () => {
    const calls = new Map<string, number>();
    const blobs: Record<string, BlobInput> = {};
    for (const name of FILES) {
      blobs[`${KEY}/${name}`] = () => {
        calls.set(name, (calls.get(name) ?? 0) + 1);
        return blob(name);
      };
    }
    const source: Source = fromBuffers(manifest, blobs);
    assert.equal(calls.size, 0, 'not at fromBuffers');
    const root = freshRoot();
    materializeSync([root], { source });
    assert.deepEqual(Object.fromEntries(calls), Object.fromEntries(FILES.map((n) => [n, 1])));
    calls.clear();
    assert.equal(materializeSync([root], { source }).reused, true);
    assert.equal(calls.size, 0);
  });

  it('the bytes on disk hash to the manifest (xxh64) for every file', () => {
    const { dir } = materializeSync([freshRoot()]);
    for (const f of variant.files) assert.equal(xxh64(fs.readFileSync(path.join(dir, f.name))), f.xxh64, f.name);
  });
});

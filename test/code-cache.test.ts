import { strict as assert } from 'node:assert';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { CODE_CACHE_DIR, codeCacheHeader, codeCacheKey } from '../src/code-cache-file';
import { pack } from '../src/pack';
import { spawnChild, type ChildExit } from './child';
import { nativeFixture, REPO, tempDir } from './fixtures';

// dlbundle keeps V8's code cache of its own run time in the default cache
// root, and compiles the run time from it on later starts. A code cache is
// code: these tests plant caches where dlbundle looks and check which it runs.
const FOREIGN_UID = 65534;
const RUNTIME = path.join(REPO, 'dist', 'runtime.js');

let bundle: string;
let key: string;

before(() => {
  bundle = path.join(tempDir(), 'bundle');
  pack(['libdemo_core.so', 'libdemo_codec.so.1.2.3', 'libdemo_app.so'].map(nativeFixture), { name: 'cc', out: bundle });
  const id = /^\/\*dlbundle-runtime:([0-9a-f]{16})\*\//.exec(fs.readFileSync(RUNTIME, 'utf8'))?.[1];
  assert.ok(id !== undefined, 'dist/runtime.js names its build id (npm run build with esbuild)');
  key = codeCacheKey(id);
});

/** A start in a child with `root` as the default cache root; the bundle's own files go to a separate cacheDir. */
function start(root: string, env: NodeJS.ProcessEnv = {}): ChildExit & { compiled: string } {
  const r = spawnChild(
    `const b = dl.openBundle({ source: dl.fromDirectory(P.bundle), cacheDir: P.cacheDir });
     return b.library('libdemo_app.so', { compute: 'int app_compute(int x)' }).compute(5);`,
    { params: { bundle, cacheDir: path.join(tempDir(), 'cache') }, env: { DLBUNDLE_CACHE_DIR: root, DEBUG: 'dlbundle:code-cache', ...env } },
  );
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.result, 1011);
  return { ...r, compiled: /run time compiled (.*)$/m.exec(r.stderr)?.[1] ?? 'not through the loader' };
}

function cacheFile(root: string): string {
  return path.join(root, CODE_CACHE_DIR, key);
}

/** A root holding a code cache that dlbundle itself saved (its bytes, to plant elsewhere). */
function savedCache(): Buffer {
  const root = path.join(tempDir(), 'root');
  start(root);
  return fs.readFileSync(cacheFile(root));
}

describe('code cache of the run time', () => {
  it('the first start saves it (private, flushed, named for this build and V8), the next compiles from it', () => {
    const root = path.join(tempDir(), 'root');
    const first = start(root);
    assert.equal(first.compiled, 'without a code cache');
    assert.match(first.stderr, /saved \d+ bytes of code cache/);
    const st = fs.lstatSync(cacheFile(root));
    assert.ok(st.isFile());
    assert.equal(st.mode & 0o777, 0o600);
    assert.equal(fs.lstatSync(path.join(root, CODE_CACHE_DIR)).mode & 0o777, 0o700);
    const bytes = fs.readFileSync(cacheFile(root));
    const newline = bytes.indexOf(10);
    assert.equal(bytes.toString('latin1', 0, newline + 1), codeCacheHeader(key, bytes.length - newline - 1));
    assert.deepEqual(fs.readdirSync(root).sort(), ['.code-cache'], 'nothing else in the root: no staging left');

    const second = start(root);
    assert.equal(second.compiled, 'from its code cache');
    assert.doesNotMatch(second.stderr, /saved/, 'an accepted cache is not written again');
  });

  it('a cache planted by another user is not run, and nothing is saved into a root that user controls', () => {
    const data = savedCache();
    // The attack: another user created the default root before this one ever ran, and put a valid-looking cache in it.
    const parent = tempDir();
    fs.chmodSync(parent, 0o1777);
    const root = path.join(parent, 'root');
    const staged = path.join(tempDir(), 'planted');
    fs.writeFileSync(staged, data);
    fs.chmodSync(path.dirname(staged), 0o755);
    fs.chmodSync(staged, 0o644);
    execFileSync('setpriv', ['--reuid', String(FOREIGN_UID), '--regid', String(FOREIGN_UID), '--clear-groups', 'sh', '-c', `mkdir -m 777 "$1" "$1/${CODE_CACHE_DIR}" && cp "$2" "$1/${CODE_CACHE_DIR}/${key}" && chmod 644 "$1/${CODE_CACHE_DIR}/${key}"`, 'sh', root, staged]);
    assert.equal(fs.lstatSync(cacheFile(root)).uid, FOREIGN_UID);
    const before = fs.readFileSync(cacheFile(root));

    const r = start(root);
    assert.equal(r.compiled, 'without a code cache', 'the planted cache was read');
    assert.match(r.stderr, /code cache not saved/);
    assert.ok(fs.readFileSync(cacheFile(root)).equals(before), 'the planted file is untouched');
    assert.deepEqual(fs.readdirSync(path.join(root, CODE_CACHE_DIR)), [key], 'and nothing was added');
  });

  it('control: the same bytes as this user’s own file in a private root are run (the test above can fail)', () => {
    const data = savedCache();
    const root = path.join(tempDir(), 'root');
    fs.mkdirSync(path.join(root, CODE_CACHE_DIR), { recursive: true, mode: 0o700 });
    fs.writeFileSync(cacheFile(root), data, { mode: 0o600 });
    assert.equal(start(root).compiled, 'from its code cache');
  });

  it('a symbolic link, a file writable by others, a cut-short file or another key is not run; the start works and saves its own', () => {
    const data = savedCache();
    const elsewhere = path.join(tempDir(), 'elsewhere');
    fs.writeFileSync(elsewhere, data, { mode: 0o600 });
    const newline = data.indexOf(10);
    const cases: Record<string, (file: string) => void> = {
      'a symbolic link to a good cache': (file) => fs.symlinkSync(elsewhere, file),
      'writable by others': (file) => {
        fs.writeFileSync(file, data);
        fs.chmodSync(file, 0o666);
      },
      'cut short': (file) => fs.writeFileSync(file, data.subarray(0, data.length - 100), { mode: 0o600 }),
      'made for another key': (file) => fs.writeFileSync(file, Buffer.concat([Buffer.from(codeCacheHeader(`0000000000000000${key.slice(16)}`, data.length - newline - 1)), data.subarray(newline + 1)]), { mode: 0o600 }),
    };
    for (const [what, plant] of Object.entries(cases)) {
      const root = path.join(tempDir(), 'root');
      fs.mkdirSync(path.join(root, CODE_CACHE_DIR), { recursive: true, mode: 0o700 });
      plant(cacheFile(root));
      const r = start(root);
      assert.equal(r.compiled, 'without a code cache', what);
      assert.match(r.stderr, /saved \d+ bytes/, `${what}: replaced by a good one`);
      assert.ok(fs.readFileSync(cacheFile(root)).length > 1000 && !fs.lstatSync(cacheFile(root)).isSymbolicLink(), what);
      assert.ok(fs.readFileSync(elsewhere).equals(data), `${what}: the link's target is untouched`);
    }
  });

  it('a cache V8 refuses (other bytes under the right header) is compiled anew and replaced', () => {
    const root = path.join(tempDir(), 'root');
    fs.mkdirSync(path.join(root, CODE_CACHE_DIR), { recursive: true, mode: 0o700 });
    const junk = Buffer.alloc(4096, 0x5a);
    fs.writeFileSync(cacheFile(root), Buffer.concat([Buffer.from(codeCacheHeader(key, junk.length)), junk]), { mode: 0o600 });
    const r = start(root);
    assert.equal(r.compiled, 'anew: V8 refused its code cache');
    assert.equal(start(root).compiled, 'from its code cache');
  });

  it('saving a cache removes caches of other builds not written for 30 days, and keeps newer ones', () => {
    const root = path.join(tempDir(), 'root');
    const dir = path.join(root, CODE_CACHE_DIR);
    fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
    const old = path.join(dir, `0000000000000000${key.slice(16)}`);
    const recent = path.join(dir, `1111111111111111${key.slice(16)}`);
    for (const f of [old, recent]) fs.writeFileSync(f, 'another build', { mode: 0o600 });
    const days = (n: number): Date => new Date(Date.now() - n * 24 * 60 * 60 * 1000);
    fs.utimesSync(old, days(31), days(31));
    fs.utimesSync(recent, days(29), days(29));
    const r = start(root);
    assert.match(r.stderr, /removed the stale code cache 0000000000000000/);
    assert.deepEqual(fs.readdirSync(dir).sort(), [key, path.basename(recent)].sort());
  });

  it('DLBUNDLE_CODE_CACHE=0: compiled by require, nothing read or written', () => {
    const root = path.join(tempDir(), 'root');
    const r = start(root, { DLBUNDLE_CODE_CACHE: '0' });
    assert.equal(r.compiled, 'not through the loader');
    assert.ok(!fs.existsSync(root), 'the default root was not even created');
  });
});

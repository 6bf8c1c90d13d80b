/**
 * Paths of the demo libraries built from native/ by `npm run build:native`
 * (run by `npm install` / `npm ci`). Tests never use committed binaries.
 */
import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { DlbundleError, type DlbundleErrorCode } from '../src/errors';
import { COMPLETE_MARKER } from '../src/manifest';
import { createXxh64 } from '../src/hash';
import { pack } from '../src/pack';

export const REPO = path.resolve(__dirname, '..');
export const NATIVE_BUILD = path.join(REPO, 'build', 'Release');

/** The demo libraries that form the demo bundle, by file name. */
export const DEMO_LIBS = ['libdemo_core.so', 'libdemo_codec.so.1.2.3', 'libdemo_app.so', 'libdemo_plugin.so', 'libdemo_accel.so', 'demo.node'] as const;

/** Absolute path of a built native fixture; throws with the command to run when it is missing. */
export function nativeFixture(name: string): string {
  const p = path.join(NATIVE_BUILD, name);
  if (!fs.existsSync(p)) {
    throw new Error(`${p} is missing: run \`npm run build:native\` (npm install does it) before the tests.`);
  }
  return p;
}

/** The named demo libraries packed as bundle `name` into a fresh temporary directory; returns the bundle directory. */
export function packedFixtures(libs: readonly string[], name = 'demo'): string {
  const out = path.join(tempDir(), 'bundle');
  pack(libs.map(nativeFixture), { name, out });
  return out;
}

/** A fresh private temporary directory, removed after the current mocha file. */
export function tempDir(prefix = 'dlbundle-test-'): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  created.push(dir);
  return dir;
}

const created: string[] = [];
after(() => {
  for (const d of created.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

/** Runs `fn`, asserts that it throws a DlbundleError with `code`, and returns that error. */
export function expectCode(code: DlbundleErrorCode, fn: () => unknown): DlbundleError {
  try {
    fn();
  } catch (e) {
    assert.ok(e instanceof DlbundleError, `expected a DlbundleError ${code}, got ${String(e)}`);
    assert.equal(e.code, code, `expected ${code}, got ${e.code}: ${e.message}`);
    return e;
  }
  assert.fail(`expected ${code}, but nothing was thrown`);
}

/** (inode, mtime) of every entry of `dir`, to show that nothing was rewritten. */
export function identities(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const e of fs.readdirSync(dir).sort()) {
    const st = fs.lstatSync(path.join(dir, e), { bigint: true });
    out[e] = `${st.ino}@${st.mtimeNs}`;
  }
  return out;
}

/** The entries of a cache root, sorted, without the `.leases` bookkeeping directory; [] when it does not exist. */
export function rootEntries(root: string): string[] {
  return fs.existsSync(root) ? fs.readdirSync(root).filter((e) => e !== '.leases').sort() : [];
}

/** Deterministic pseudo-random numbers in [0, 1) (mulberry32), so that fuzzing and kill timings reproduce from a seed. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** The staging directories in a cache root, sorted; [] when the root does not exist. */
export function stagingIn(root: string): string[] {
  return fs.existsSync(root) ? fs.readdirSync(root).filter((e) => e.startsWith('.staging')).sort() : [];
}

const hashScratch = Buffer.allocUnsafe(1 << 20);

/** xxh64 of a file, read in 1 MiB chunks (one whole 64 MiB buffer costs three times as long). */
export function hashFile(p: string): string {
  const h = createXxh64();
  const fd = fs.openSync(p, 'r');
  try {
    for (let pos = 0, n = 0; (n = fs.readSync(fd, hashScratch, 0, hashScratch.length, pos)) > 0; pos += n) h.update(hashScratch.subarray(0, n));
  } finally {
    fs.closeSync(fd);
  }
  return h.digest();
}

/**
 * The file list a bundle directory's completion marker was written for (its
 * first part; the rest records each file's identity as published).
 */
export function markerFileList(dir: string): string {
  const text = fs.readFileSync(path.join(dir, COMPLETE_MARKER), 'utf8');
  const at = text.indexOf('\n{');
  return at < 0 ? text : text.slice(0, at);
}

/**
 * Long work on the command line: progress on stderr when it is a terminal
 * (and nothing when it is not), and a 400 MB bundle carried by a generated
 * module (`pack --module`) that packs in bounded memory and loads — past the
 * size at which one JavaScript source (Node reads a module into one string)
 * would exceed V8's string limit, so its chunks go into part files.
 */
import { strict as assert } from 'node:assert';
import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { nativeFixture, REPO, tempDir } from './fixtures';

const CLI = path.join(REPO, 'dist', 'cli.js');
// V8's longest string on 64-bit (2^29 − 24 characters): the most one module file may hold.
const V8_MAX_STRING = 2 ** 29 - 24;

/** A real library with zeros appended (a sparse file), `bytes` long. */
function bigLibrary(bytes: number): string {
  const file = path.join(tempDir(), 'libdemo_core.so');
  fs.copyFileSync(nativeFixture('libdemo_core.so'), file);
  fs.truncateSync(file, bytes);
  return file;
}

describe('large packs: progress and --module', function () {
  this.timeout(300_000);

  it('pack shows its progress on a terminal, and prints nothing of it into a pipe', () => {
    const lib = bigLibrary(160e6);
    const out = tempDir();
    // script(1) gives the command a terminal, and copies what it writes to stdout.
    const tty = execFileSync('script', ['-qec', `${process.execPath} ${CLI} pack ${lib} --name big --out ${path.join(out, 'tty')}`, '/dev/null'], { encoding: 'utf8' });
    assert.match(tty, /packing big: [\d.]+ of 160\.0 MB \(\d+ %\), [\d.]+ MB\/s/);
    assert.match(tty, /packed 1 file as linux-x64-gnu/);
    const piped = spawnSync(process.execPath, [CLI, 'pack', lib, '--name', 'big', '--out', path.join(out, 'pipe')], { encoding: 'utf8' });
    assert.equal(piped.status, 0, piped.stderr);
    assert.equal(piped.stderr, '');
  });

  it('a 400 MB bundle: pack --module writes it in bounded memory, in files V8 can read, and it loads', () => {
    const lib = bigLibrary(400e6);
    const work = tempDir();
    const module = path.join(work, 'native.cjs');
    // In a child, to read its own peak RSS.
    const script = `const { main } = require(${JSON.stringify(CLI)});
      main(['pack', ${JSON.stringify(lib)}, '--name', 'big', '--out', ${JSON.stringify(path.join(work, 'native'))}, '--module', ${JSON.stringify(module)}], () => {}, (t) => process.stderr.write(t + '\\n'))
        .then((status) => { console.log(JSON.stringify({ status, maxRssMiB: process.resourceUsage().maxRSS / 1024 })); });`;
    const packed = JSON.parse(execFileSync(process.execPath, ['-e', script], { encoding: 'utf8' }).trim().split('\n').pop() as string) as { status: number; maxRssMiB: number };
    console.log(`      pack --module of 400 MB: peak RSS ${packed.maxRssMiB.toFixed(0)} MiB`);
    assert.equal(packed.status, 0);
    // About 200 MiB here (node itself and koffi.node packed too): a 400 MB bundle is never held whole, nor its base64.
    assert.ok(packed.maxRssMiB < 320, `peak RSS ${packed.maxRssMiB} MiB`);
    const files = fs.readdirSync(work).filter((f) => f.startsWith('native.cjs'));
    assert.ok(files.length >= 3, `the module and its parts: ${files.join(', ')}`);
    for (const f of files) assert.ok(fs.statSync(path.join(work, f)).size < V8_MAX_STRING, `${f} is larger than V8 reads as one string`);

    fs.rmSync(path.join(work, 'native'), { recursive: true });
    const app = path.join(work, 'app.cjs');
    fs.writeFileSync(app, `const { openBundle, fromBuffers } = require(${JSON.stringify(path.join(REPO, 'dist', 'index.js'))});
const native = require('./native.cjs');
const core = openBundle({ source: fromBuffers(native.manifest, native.blobs), cacheDir: ${JSON.stringify(path.join(work, 'cache'))} }).library('libdemo_core.so', { add: 'int add(int a, int b)' });
console.log(core.add(2, 3));`);
    const r = spawnSync(process.execPath, [app], { encoding: 'utf8', maxBuffer: 1 << 20 });
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout.trim(), '5');
    const [dir] = fs.readdirSync(path.join(work, 'cache')).filter((d) => d.startsWith('big-'));
    assert.equal(fs.statSync(path.join(work, 'cache', dir as string, 'libdemo_core.so')).size, 400e6);
  });
});

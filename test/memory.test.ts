/**
 * Memory mode across bundle instances: one memory file per library per
 * process, whatever the number of `openBundle` calls, and a disk-mode bundle
 * that is handed libraries a memory-mode bundle loaded says so in explain().
 */
import { strict as assert } from 'node:assert';
import * as path from 'node:path';
import { pack } from '../src/pack';
import { runChild } from './child';
import { nativeFixture, tempDir } from './fixtures';

const LIBS = ['libdemo_core.so', 'libdemo_codec.so.1.2.3', 'libdemo_app.so', 'libdemo_plugin.so'];
const APP_CLOSURE = ['libdemo_app.so', 'libdemo_codec.so.1.2.3', 'libdemo_core.so'];

interface LibReport {
  name: string;
  path: string;
  from: string;
  shared: boolean;
}

function packed(): string {
  const out = path.join(tempDir(), 'bundle');
  pack(LIBS.map(nativeFixture), { name: 'demo', out });
  return out;
}

/** In the child: the descriptors of the process, and which of them are dlbundle's memory files. */
const FDS = `
  const fds = () => fs.readdirSync('/proc/self/fd').map((fd) => { try { return fs.readlinkSync('/proc/self/fd/' + fd); } catch { return ''; } });
  const memoryFiles = () => fds().filter((l) => l.startsWith('/memfd:dlbundle:')).sort();`;

describe('memory mode, many bundles', function () {
  this.timeout(60_000);

  it('2000 openBundle instances in memory mode share one memory file per library: the descriptors grow by 3, not 6000', () => {
    const r = runChild<{ before: number; after: number; memory: string[]; results: number[]; first: LibReport[]; last: LibReport[] }>(
      `${FDS}
      const before = fds().length;
      const results = new Set();
      let first, last;
      for (let i = 0; i < 2000; i++) {
        const b = dl.openBundle({ source: dl.fromDirectory(P.bundle), mode: 'memory' });
        results.add(b.library('libdemo_app.so', { compute: 'int app_compute(int x)' }).compute(5));
        const libs = b.explain().libraries.map((l) => ({ name: l.name, path: l.path, from: l.from, shared: l.shared }));
        if (i === 0) first = libs; else last = libs;
      }
      return { before, after: fds().length, memory: memoryFiles(), results: [...results], first, last };`,
      { params: { bundle: packed() } },
    );
    assert.deepEqual(r.results, [1011]);
    assert.deepEqual(r.memory, APP_CLOSURE.map((n) => `/memfd:dlbundle:${n} (deleted)`).sort(), 'one memory file per library');
    assert.equal(r.after - r.before, APP_CLOSURE.length, `descriptors: ${r.before} before, ${r.after} after`);
    assert.ok(r.first.every((l) => l.from === 'memory' && !l.shared), JSON.stringify(r.first));
    assert.ok(r.last.every((l) => l.from === 'memory' && l.shared), JSON.stringify(r.last));
    assert.deepEqual(r.last.map((l) => l.path).sort(), r.first.map((l) => l.path).sort(), 'the later bundles use the first one’s memory files');
  });

  it("a disk-mode bundle handed libraries that a memory-mode bundle loaded says so in explain(): from 'memory', shared, and a limitation each", () => {
    const bundle = packed();
    const cache = path.join(tempDir(), 'cache');
    interface Report {
      mode: string;
      dir: string | null;
      libraries: LibReport[];
      limitations: { name: string; reason: string }[];
    }
    const r = runChild<{ memory: Report; disk: Report; compute: number; plugin: number; mapped: string[] }>(
      `const mem = dl.openBundle({ source: dl.fromDirectory(P.bundle), mode: 'memory' });
      mem.library('libdemo_app.so', { compute: 'int app_compute(int x)' }).compute(5);
      const disk = dl.openBundle({ source: dl.fromDirectory(P.bundle), mode: 'disk', cacheDir: P.cache });
      const app = disk.library('libdemo_app.so', { compute: 'int app_compute(int x)', plugin: 'int app_call_plugin(int x)' });
      const compute = app.compute(5);
      const plugin = app.plugin(2);
      const pick = (b) => { const e = b.explain(); return { mode: e.mode, dir: e.dir, limitations: e.limitations,
        libraries: e.libraries.map((l) => ({ name: l.name, path: l.path, from: l.from, shared: l.shared })) }; };
      return { memory: pick(mem), disk: pick(disk), compute, plugin, mapped: demoMapped() };`,
      { params: { bundle, cache } },
    );
    assert.equal(r.compute, 1011);
    assert.equal(r.disk.mode, 'disk');
    assert.ok(r.disk.dir !== null && r.disk.dir.startsWith(cache), String(r.disk.dir));
    assert.deepEqual(r.disk.libraries.map((l) => l.name).sort(), [...APP_CLOSURE].sort());
    for (const lib of r.disk.libraries) {
      assert.equal(lib.from, 'memory', `${lib.name} is the memory copy`);
      assert.equal(lib.shared, true);
      assert.match(lib.path, /^\/proc\/self\/fd\/\d+$/);
    }
    assert.deepEqual(r.disk.limitations.map((l) => l.name).sort(), [...APP_CLOSURE].sort());
    assert.ok(r.disk.limitations.every((l) => /already loaded it from a memory file/.test(l.reason)), JSON.stringify(r.disk.limitations));
    // What the limitation says, for real: libdemo_app.so looks for its plugin beside itself, in /proc/self/fd.
    assert.equal(r.plugin, -2);
    // Nothing of the disk bundle's directory was mapped: the process has the memory copies only.
    assert.ok(r.mapped.every((p) => !p.startsWith(cache)), JSON.stringify(r.mapped));
    assert.ok(r.memory.libraries.every((l) => l.from === 'memory' && !l.shared));
  });
});

import { strict as assert } from 'node:assert';
import { expectCode } from './fixtures';
import { dependencyClosure, dependencyGraph, externalDependencies, loadOrder, type GraphNode } from '../src/plan';

const lib = (name: string, needed: string[] = [], soname: string | null = name): GraphNode => ({ name, soname, needed });

const DEMO: GraphNode[] = [
  lib('libdemo_app.so', ['libdemo_codec.so.1', 'libdemo_core.so', 'libc.so.6']),
  lib('libdemo_codec.so.1.2.3', ['libdemo_core.so'], 'libdemo_codec.so.1'),
  lib('libdemo_core.so', ['libc.so.6']),
  lib('libdemo_plugin.so'),
  lib('libdemo_accel.so', ['libdemo_gpu_runtime.so.1']),
];

// A fixed-seed shuffle, so the "any input order" claim is checked on many orders.
function shuffled<T>(xs: readonly T[], seed: number): T[] {
  const out = [...xs];
  let s = seed;
  for (let i = out.length - 1; i > 0; i--) {
    s = (s * 1103515245 + 12345) & 0x7fffffff;
    const j = s % (i + 1);
    [out[i], out[j]] = [out[j] as T, out[i] as T];
  }
  return out;
}

describe('plan', () => {
  it('orders dependencies before their users, matching by soname', () => {
    const order = loadOrder(DEMO);
    assert.deepEqual(order, ['libdemo_accel.so', 'libdemo_core.so', 'libdemo_codec.so.1.2.3', 'libdemo_app.so', 'libdemo_plugin.so']);
  });

  it('gives the same order whatever order the files come in', () => {
    const expected = loadOrder(DEMO);
    for (let seed = 1; seed <= 50; seed++) assert.deepEqual(loadOrder(shuffled(DEMO, seed)), expected);
  });

  it('matches a library without a soname by its file name', () => {
    const files = [lib('libuser.so', ['libplain.so']), lib('libplain.so', [], null)];
    assert.deepEqual(loadOrder(files), ['libplain.so', 'libuser.so']);
  });

  it('does not treat a library that needs itself as a cycle', () => {
    assert.deepEqual(loadOrder([lib('libself.so', ['libself.so'])]), ['libself.so']);
  });

  it('lists the dependencies nothing in the bundle provides', () => {
    assert.deepEqual(externalDependencies(DEMO), ['libc.so.6', 'libdemo_gpu_runtime.so.1']);
    const graph = dependencyGraph(DEMO);
    assert.deepEqual(graph.externalDeps.get('libdemo_accel.so'), ['libdemo_gpu_runtime.so.1']);
  });

  it('loads only the closure of the requested library', () => {
    const graph = dependencyGraph(DEMO);
    const order = loadOrder(graph);
    assert.deepEqual(dependencyClosure(graph, order, 'libdemo_app.so'), ['libdemo_core.so', 'libdemo_codec.so.1.2.3', 'libdemo_app.so']);
    assert.deepEqual(dependencyClosure(graph, order, 'libdemo_plugin.so'), ['libdemo_plugin.so']);
  });

  it('names the cycle with E_CYCLE', () => {
    const files = [lib('liba.so', ['libb.so']), lib('libb.so', ['libc.so']), lib('libc.so', ['liba.so']), lib('libz.so')];
    const e = expectCode('E_CYCLE', () => loadOrder(files));
    assert.match(e.message, /liba\.so → libb\.so → libc\.so → liba\.so/);
  });

  it('names both files with E_DUPLICATE_SONAME', () => {
    const e = expectCode('E_DUPLICATE_SONAME', () => dependencyGraph([lib('libx.so.1.0', [], 'libx.so.1'), lib('libx.so.1.1', [], 'libx.so.1')]));
    assert.match(e.message, /"libx\.so\.1\.0" and "libx\.so\.1\.1" both provide "libx\.so\.1"/);
    assert.equal(e.dependency, 'libx.so.1');
  });
});

import { strict as assert } from 'node:assert';
import { expectCode, prng } from './fixtures';
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

// Large generated graphs: correctness at the size of the manifest benchmark
// (scripts/bench-manifest.js). No timing is asserted here.
describe('plan: 32,000 files', () => {
  const N = 32_000;
  const name = (i: number): string => `libgen${String(i).padStart(6, '0')}.so`;
  /**
   * File i needs up to `fanIn` of the 50 files after it (a DAG whose names
   * run against the load order), sometimes one of them twice. Some file names
   * differ from their sonames; some files have no soname, so what needs them
   * by that name finds them only when it is the file name.
   */
  function generated(n: number, seed: number, fanIn: number): GraphNode[] {
    const random = prng(seed);
    const files: GraphNode[] = [];
    for (let i = 0; i < n; i++) {
      const needed = ['libc.so.6'];
      for (let k = Math.floor(random() * (fanIn + 1)); k > 0 && i < n - 1; k--) needed.push(name(i + 1 + Math.floor(random() * Math.min(50, n - i - 1))));
      if (needed.length > 1 && random() < 0.1) needed.push(needed[1] as string);
      files.push(lib(i % 7 === 0 ? `${name(i)}.1.2.3` : name(i), needed, i % 11 === 0 ? null : name(i)));
    }
    return files;
  }

  function assertTopological(files: readonly GraphNode[], order: readonly string[]): void {
    const graph = dependencyGraph(files);
    assert.equal(order.length, files.length);
    const position = new Map(order.map((n, i) => [n, i]));
    assert.equal(position.size, files.length, 'every file once');
    let edges = 0;
    for (const [user, deps] of graph.bundledDeps) {
      for (const dep of deps) {
        edges++;
        assert.ok((position.get(dep) as number) < (position.get(user) as number), `${dep} is ordered after its user ${user}`);
      }
    }
    assert.ok(edges > files.length / 2, `the generated graph has ${edges} edges`);
  }

  it('orders a generated chain-like graph of 32,000 files topologically, the same for shuffled input', () => {
    const files = generated(N, 7, 3);
    const order = loadOrder(files);
    assertTopological(files, order);
    assert.deepEqual(loadOrder(shuffled(files, 3)), order);
  });

  it('orders 32,000 independent files by name, and a single 32,000-long chain from its end', () => {
    const flat = Array.from({ length: N }, (_, i) => lib(name(i), ['libc.so.6']));
    assert.deepEqual(loadOrder(shuffled(flat, 5)), flat.map((f) => f.name));
    const chain = Array.from({ length: N }, (_, i) => lib(name(i), i + 1 < N ? [name(i + 1)] : []));
    assert.deepEqual(loadOrder(shuffled(chain, 9)), chain.map((f) => f.name).reverse());
  });

  it('gives, on 2,000 files, exactly the order of "sort the ready names, take the smallest" (the order pack recorded before)', () => {
    const files = generated(2000, 11, 3);
    const graph = dependencyGraph(files);
    const waiting = new Map([...graph.bundledDeps].map(([n, deps]) => [n, new Set(deps)]));
    const reference: string[] = [];
    while (waiting.size > 0) {
      const next = [...waiting].filter(([, deps]) => deps.size === 0).map(([n]) => n).sort()[0] as string;
      reference.push(next);
      waiting.delete(next);
      for (const deps of waiting.values()) deps.delete(next);
    }
    assert.deepEqual(loadOrder(graph), reference);
  });

  it('finds a cycle closed at the far end of 32,000 files: E_CYCLE naming it', () => {
    const chain = Array.from({ length: N }, (_, i) => lib(name(i), i + 1 < N ? [name(i + 1)] : [name(N - 3)]));
    const e = expectCode('E_CYCLE', () => loadOrder(chain));
    assert.equal(e.message.split('\n')[0], `The bundled libraries depend on each other in a circle: ${name(N - 3)} → ${name(N - 2)} → ${name(N - 1)} → ${name(N - 3)}.`);
  });
});

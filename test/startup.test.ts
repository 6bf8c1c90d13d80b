/**
 * What a start loads: the warm path runs what it needs and nothing else
 * (`debug` only when `DEBUG` asks for logs; the staging helpers only on a cold
 * start), with the same logs as before when `DEBUG` names dlbundle.
 */
import { strict as assert } from 'node:assert';
import * as path from 'node:path';
import { pack } from '../src/pack';
import { spawnChild } from './child';
import { nativeFixture, tempDir } from './fixtures';

const START = `
  const bundle = dl.openBundle({ source: dl.fromDirectory(P.bundle), cacheDir: P.cache });
  const v = bundle.library('libdemo_app.so', { compute: 'int app_compute(int x)' }).compute(5);
  const modules = Object.keys(require.cache).filter((k) => k.includes('/node_modules/')).map((k) => k.split('/node_modules/').pop().split('/')[0]);
  return { v, reused: bundle.explain().reused, modules: [...new Set(modules)].sort() };`;

interface Started {
  readonly v: number;
  readonly reused: boolean;
  readonly modules: string[];
}

describe('start-up: what a start loads', () => {
  let bundle: string;
  before(() => {
    bundle = path.join(tempDir(), 'bundle');
    pack(['libdemo_core.so', 'libdemo_codec.so.1.2.3', 'libdemo_app.so'].map(nativeFixture), { name: 'demo', out: bundle });
  });

  it('without DEBUG, cold and warm starts never load `debug` (nor its tty, net and stream)', () => {
    const cache = path.join(tempDir(), 'cache');
    for (const want of [false, true]) {
      const r = spawnChild(START, { params: { bundle, cache }, env: { DEBUG: undefined } });
      const out = r.result as Started;
      assert.equal(out.v, 1011);
      assert.equal(out.reused, want);
      assert.ok(!out.modules.includes('debug'), `debug was loaded: ${JSON.stringify(out.modules)}`);
      assert.equal(r.stderr, '');
    }
  });

  it("with DEBUG=dlbundle:*, the same logs as before: each step under its namespace on stderr", () => {
    const cache = path.join(tempDir(), 'cache');
    const cold = spawnChild(START, { params: { bundle, cache }, env: { DEBUG: 'dlbundle:*' } });
    assert.equal((cold.result as Started).v, 1011);
    assert.ok((cold.result as Started).modules.includes('debug'));
    for (const line of [/dlbundle:plan bundle demo: variant linux-x64-gnu/, /dlbundle:cache extracted linux-x64-gnu in /, /dlbundle:load loaded .*libdemo_app\.so in /, /dlbundle:symbols bound 1 symbols of libdemo_app\.so/]) {
      assert.match(cold.stderr, line);
    }
    const quiet = spawnChild(START, { params: { bundle, cache }, env: { DEBUG: 'other:*' } });
    assert.equal((quiet.result as Started).reused, true);
    assert.equal(quiet.stderr, '', 'a DEBUG naming other namespaces prints nothing of dlbundle');
  });
});

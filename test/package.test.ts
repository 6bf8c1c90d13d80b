import { strict as assert } from 'node:assert';
import { execFileSync } from 'node:child_process';
import { REPO } from './fixtures';

function node(args: string[]): string {
  return execFileSync(process.execPath, args, { cwd: REPO, encoding: 'utf8' });
}

describe('the package', () => {
  it('serves require and import from one module instance', () => {
    const out = node([
      '--input-type=module',
      '-e',
      `import { createRequire } from 'node:module';
       import * as esm from 'dlbundle';
       const cjs = createRequire(process.cwd() + '/x.js')('dlbundle');
       const names = Object.keys(esm).sort();
       console.log(JSON.stringify({ names, same: names.every((n) => esm[n] === cjs[n]), missing: Object.keys(cjs).filter((n) => !(n in esm)) }));`,
    ]);
    const r = JSON.parse(out) as { names: string[]; same: boolean; missing: string[] };
    assert.ok(r.names.includes('openBundle') && r.names.includes('fromSea') && r.names.includes('DlbundleError'), out);
    assert.ok(!r.names.includes('buildSea'), 'build tools stay out of the run-time entry point');
    assert.equal(r.same, true);
    assert.deepEqual(r.missing.filter((n) => n !== '__esModule'), []);
  });

  it('does no work at import: no native module, no WebAssembly, no file reads beyond its own code', () => {
    const out = node([
      '-e',
      `const fs = require('node:fs');
       const opened = [];
       const orig = fs.openSync;
       fs.openSync = (p, ...rest) => { opened.push(String(p)); return orig(p, ...rest); };
       const before = new Set(Object.keys(require.cache));
       require('dlbundle');
       const loaded = Object.keys(require.cache).filter((k) => !before.has(k));
       console.log(JSON.stringify({ loaded, opened }));`,
    ]);
    const r = JSON.parse(out) as { loaded: string[]; opened: string[] };
    assert.ok(r.loaded.some((p) => p.endsWith('dist/index.js')));
    assert.deepEqual(r.loaded.filter((p) => /node_modules\/(koffi|xxhash-wasm|tmp)\/|\.node$/.test(p)), []);
    assert.deepEqual(r.opened, []);
  });
});

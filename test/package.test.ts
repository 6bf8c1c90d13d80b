import { strict as assert } from 'node:assert';
import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { REPO, tempDir } from './fixtures';

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

  it('npm publish stops until package.json names a repository URL (there is no public one yet, and none is invented)', () => {
    const published = spawnSync('npm', ['publish', '--dry-run'], { cwd: REPO, encoding: 'utf8' });
    assert.notEqual(published.status, 0);
    assert.match(published.stderr, /has no repository URL, and a published package must say where its code lives/);
    const pkg = JSON.parse(fs.readFileSync(path.join(REPO, 'package.json'), 'utf8')) as Record<string, unknown>;
    const withUrl = path.join(tempDir(), 'package.json');
    fs.writeFileSync(withUrl, JSON.stringify({ ...pkg, repository: { type: 'git', url: 'git+https://example.org/team/dlbundle.git' } }));
    assert.equal(spawnSync(process.execPath, [path.join(REPO, 'scripts', 'check-publish.js'), withUrl]).status, 0);
  });
});

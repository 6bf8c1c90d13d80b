/**
 * A newcomer's first commands read clean: the native build gives make no two
 * rules for one file (make's "overriding recipe" warnings), and the demo says
 * that its accelerator is optional and absent on purpose instead of printing
 * MISSING or FAIL.
 */
import { strict as assert } from 'node:assert';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { REPO } from './fixtures';

describe('build and demo output', () => {
  it('the generated makefiles give every file one rule (no "overriding recipe" from make)', () => {
    const build = path.join(REPO, 'build');
    const owners = new Map<string, string>();
    const clashes: string[] = [];
    for (const mk of fs.readdirSync(build).filter((f) => f.endsWith('.target.mk'))) {
      for (const line of fs.readFileSync(path.join(build, mk), 'utf8').split('\n')) {
        // A rule with a recipe: "$(builddir)/x.so: deps", not a variable assignment ("x: TOOLSET := …").
        const m = /^(\$\(builddir\)\/\S+): (?!\S+ :?=)/.exec(line);
        if (m === null) continue;
        const other = owners.get(m[1] as string);
        if (other !== undefined && other !== mk) clashes.push(`${m[1] as string} in ${other} and ${mk}`);
        owners.set(m[1] as string, mk);
      }
    }
    assert.ok(owners.size > 10, 'no makefiles read: is the native build there?');
    assert.deepEqual(clashes, []);
  });

  it('the demo says the accelerator is optional and absent on purpose', function () {
    this.timeout(60_000);
    const r = spawnSync(process.execPath, [path.join(REPO, 'scripts', 'demo.js')], { cwd: REPO, encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /libdemo_gpu_runtime\.so\.1 {2}not on this system: fine, the library needing it is optional/);
    assert.match(r.stdout, /accelerator {9}absent, as intended: it is optional and needs libdemo_gpu_runtime\.so\.1/);
    assert.doesNotMatch(r.stdout, /MISSING: |FAIL {2}/);
    assert.equal(r.stderr, '');
  });
});

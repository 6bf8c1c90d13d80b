/**
 * The suite's first step (scripts/check-prerequisites.js): on a machine
 * without the tools the tests use, `npm test` stops at once with the line
 * that installs them — the line README.md gives and .ci/run runs.
 */
import { strict as assert } from 'node:assert';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { REPO, tempDir } from './fixtures';

const SCRIPT = path.join(REPO, 'scripts', 'check-prerequisites.js');
// eslint-disable-next-line @typescript-eslint/no-require-imports
const { INSTALL_LINE, PACKAGES } = require(SCRIPT) as { INSTALL_LINE: string; PACKAGES: { pkg: string; commands: string[] }[] };

describe('prerequisites: npm test stops at once when a tool is missing', () => {
  it('with nothing but node on PATH: exit 1 within a second or two, naming every missing command and printing the install line', () => {
    const bin = tempDir();
    fs.symlinkSync(process.execPath, path.join(bin, 'node'));
    const started = Date.now();
    const r = spawnSync(path.join(bin, 'node'), [SCRIPT], { env: { PATH: bin }, encoding: 'utf8' });
    const ms = Date.now() - started;
    assert.equal(r.status, 1);
    assert.ok(ms < 3000, `took ${ms} ms`);
    assert.ok(r.stderr.includes(`\n  ${INSTALL_LINE}\n`), r.stderr);
    for (const p of PACKAGES) for (const c of p.commands) assert.ok(r.stderr.includes(c), `${c} not named`);
  });

  it('one missing command is named with its package; the rest are not', () => {
    // A PATH of links to everything the check looks for but strace.
    const bin = tempDir();
    fs.symlinkSync(process.execPath, path.join(bin, 'node'));
    for (const p of PACKAGES) {
      for (const c of p.commands) {
        if (c === 'strace') continue;
        const real = spawnSync('sh', ['-c', `command -v ${c}`], { encoding: 'utf8' }).stdout.trim();
        assert.ok(real !== '', `${c} is not installed here`);
        fs.symlinkSync(real, path.join(bin, c));
      }
    }
    const r = spawnSync(path.join(bin, 'node'), [SCRIPT], { env: { PATH: bin }, encoding: 'utf8' });
    assert.equal(r.status, 1);
    assert.match(r.stderr, /- strace \(Debian package strace: /);
    assert.doesNotMatch(r.stderr, /- gcc|- musl-gcc|- setpriv/);
  });

  it('on this machine (everything installed, root, package lists present): exit 0, nothing printed', () => {
    const r = spawnSync(process.execPath, [SCRIPT], { encoding: 'utf8' });
    assert.equal(r.stderr, '');
    assert.equal(r.status, 0);
  });

  it('README.md gives the same line, and .ci/run installs the same packages', () => {
    const readme = fs.readFileSync(path.join(REPO, 'README.md'), 'utf8');
    assert.ok(readme.includes(`\`\`\`sh\n${INSTALL_LINE}\n\`\`\``), 'README.md lacks the install line in a sh block');
    const ci = fs.readFileSync(path.join(REPO, '.ci', 'run'), 'utf8');
    // Every `apt-get install` of .ci/run, its options left out.
    const installed = [...ci.matchAll(/apt-get install -y -qq ([^>\n]+)/g)].flatMap((m) => (m[1] as string).trim().split(/\s+/)).filter((w) => !w.startsWith('-'));
    assert.deepEqual(installed, PACKAGES.map((p) => p.pkg));
    assert.match(ci, /apt-get update/);
    const pkg = JSON.parse(fs.readFileSync(path.join(REPO, 'package.json'), 'utf8')) as { scripts: { test: string } };
    assert.match(pkg.scripts.test, /^node scripts\/check-prerequisites\.js && /);
  });
});

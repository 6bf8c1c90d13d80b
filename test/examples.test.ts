/**
 * The README's code: every JavaScript example it shows is a file under
 * `examples/` (the README gives the file verbatim, after a
 * `<!-- example: examples/<file> -->` line), and each file runs here as a
 * user would run it — CommonJS and ESM — in an application directory with
 * dlbundle installed and the demo bundle packed beside it.
 */
import { strict as assert } from 'node:assert';
import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { nativeFixture, REPO, tempDir } from './fixtures';

const EXAMPLES = path.join(REPO, 'examples');
const CLI = path.join(REPO, 'dist', 'cli.js');
const LIBS = ['libdemo_core.so', 'libdemo_codec.so.1.2.3', 'libdemo_app.so', 'libdemo_plugin.so', 'libdemo_accel.so', 'demo.node'];

/** README blocks that name their example file, as { file, code }. */
function readmeExamples(): { file: string; code: string }[] {
  const readme = fs.readFileSync(path.join(REPO, 'README.md'), 'utf8');
  return [...readme.matchAll(/<!-- example: (\S+) -->\n```[a-z]*\n([\s\S]*?)```/g)].map((m) => ({ file: m[1] as string, code: m[2] as string }));
}

describe('examples: the README code, run', () => {
  let app: string;
  before(function () {
    this.timeout(60_000);
    app = tempDir('dlbundle-examples-');
    fs.mkdirSync(path.join(app, 'node_modules'));
    fs.symlinkSync(REPO, path.join(app, 'node_modules', 'dlbundle'));
    execFileSync(process.execPath, [CLI, 'pack', ...LIBS.map(nativeFixture), '--name', 'demo', '--out', path.join(app, 'native')], { stdio: 'pipe' });
    execFileSync(process.execPath, [CLI, 'pack', ...LIBS.map(nativeFixture), '--name', 'demo', '--out', path.join(app, 'native-module'), '--module', path.join(app, 'native.cjs')], { stdio: 'pipe' });
    for (const f of fs.readdirSync(EXAMPLES)) fs.copyFileSync(path.join(EXAMPLES, f), path.join(app, f));
  });

  /** Runs an example twice (cold, then warm), in a cache of its own; returns the stdout lines of each run. */
  function run(file: string): string[][] {
    const env = { PATH: process.env.PATH, HOME: app, DLBUNDLE_CACHE_DIR: path.join(app, `cache-${file}`) };
    return [1, 2].map(() => {
      const r = spawnSync(process.execPath, [path.join(app, file)], { cwd: app, env, encoding: 'utf8' });
      assert.equal(r.status, 0, `${file}: ${r.stderr}`);
      assert.equal(r.stderr, '', `${file} wrote to stderr`);
      return r.stdout.trim().split('\n');
    });
  }

  it('every example file is shown verbatim in README.md, and every README example names a file that exists', () => {
    const shown = readmeExamples();
    const files = fs.readdirSync(EXAMPLES).sort();
    assert.deepEqual([...new Set(shown.map((e) => e.file))].sort(), files.map((f) => `examples/${f}`));
    for (const e of shown) assert.equal(e.code, fs.readFileSync(path.join(REPO, e.file), 'utf8'), `README.md's copy of ${e.file} differs from the file`);
  });

  it('addon.cjs: demo.node loaded after libdemo_core.so, which is only in the bundle', () => {
    for (const out of run('addon.cjs')) assert.deepEqual(out, ['5 demo-core 1.0.0']);
  });

  for (const file of ['use-it.mjs', 'use-it.cjs']) {
    it(`${file}: add(2, 3) = 5, the version string, what is loaded, and the optional accelerator reported missing`, () => {
      for (const out of run(file)) {
        assert.deepEqual(out, ['5', 'demo-core 1.0.0', "[ 'libdemo_core.so' ]", "E_MISSING_DEP [ 'libdemo_gpu_runtime.so.1' ]"]);
      }
    });
  }

  for (const file of ['auto-source.mjs', 'auto-source.cjs']) {
    it(`${file}: app_compute(5) = 1011 from the plain directory, and why that source`, () => {
      for (const out of run(file)) {
        assert.equal(out[0], '1011');
        assert.match(out[1] as string, /is a plain directory$/);
      }
    });
  }

  for (const file of ['koffi-types.cjs', 'koffi-types.mjs']) {
    it(`${file}: a struct returned by value, out-parameters, a buffer, a pointer handed back to C — real results`, () => {
      for (const out of run(file)) assert.deepEqual(out, ['{ x: 3, y: 4, len2: 25 }', '0 3 2', '256', '10 11']);
    });
  }

  it('from-buffers.cjs: the generated module (pack --module) loads without the bundle directory', () => {
    fs.rmSync(path.join(app, 'native-module'), { recursive: true, force: true });
    for (const out of run('from-buffers.cjs')) assert.deepEqual(out, ['5']);
  });
});

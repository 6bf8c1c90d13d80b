/**
 * Single-file builds of a package that requires its own `.node` file, with
 * the demo addon (no network): literal and computed requires go to
 * provideAddons in the built file, esbuild no longer fails on them, the file
 * runs alone, a build without a providing bundle says what to do, and extra
 * esbuild plugins come in through `--config`.
 */
import { strict as assert } from 'node:assert';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { nativeFixture, REPO, tempDir } from './fixtures';

const CLI = path.join(REPO, 'dist', 'cli.js');

function cli(cwd: string, ...args: string[]): { status: number | null; stdout: string; stderr: string } {
  return spawnSync(process.execPath, [CLI, ...args], { cwd, encoding: 'utf8' });
}

/**
 * An app whose package `demo-pkg` finds its addon two ways, as real packages
 * do: a literal relative path, and a path computed from the platform and
 * architecture (onnxruntime's pattern, which esbuild turns into a glob).
 * The addon is not in node_modules at all: only the bundle has it.
 */
function makeApp(main: string): string {
  const app = tempDir('dlbundle-app-');
  const pkg = path.join(app, 'node_modules', 'demo-pkg');
  fs.mkdirSync(pkg, { recursive: true });
  fs.symlinkSync(REPO, path.join(app, 'node_modules', 'dlbundle'));
  fs.writeFileSync(path.join(pkg, 'package.json'), JSON.stringify({ name: 'demo-pkg', main: 'index.js' }));
  fs.writeFileSync(
    path.join(pkg, 'index.js'),
    "exports.literal = () => require('./build/Release/demo.node');\nexports.computed = () => require(`./bin/${process.platform}-${process.arch}/demo.node`);\nexports.joined = () => require('./bin/' + process.arch + '/demo.node');\n",
  );
  const packed = cli(app, 'pack', nativeFixture('libdemo_core.so'), nativeFixture('demo.node'), '--name', 'demo', '--out', path.join(app, 'native'));
  assert.equal(packed.status, 0, packed.stderr);
  fs.writeFileSync(path.join(app, 'main.js'), main);
  return app;
}

const MAIN = `const path = require('node:path');
const { openBundle, autoSource } = require('dlbundle');
openBundle({ source: autoSource(path.join(__dirname, 'native')) }).provideAddons();
const pkg = require('demo-pkg');
const [a, b, c] = [pkg.literal(), pkg.computed(), pkg.joined()];
console.log(JSON.stringify({ sums: [a.add(1, 1), b.add(2, 2), c.add(3, 3)], one: a === b && b === c }));
`;

describe('single-file builds of packages that load their own .node file', function () {
  this.timeout(120_000);

  it('send literal and computed .node requires to provideAddons; the built file runs alone', () => {
    const app = makeApp(MAIN);
    const out = path.join(tempDir(), 'app.cjs');
    const built = cli(app, 'bundle', 'main.js', '--bundle', 'native', '--out', out);
    assert.equal(built.status, 0, built.stderr);
    const text = fs.readFileSync(out, 'utf8');
    assert.ok(!/require\(`\.\/bin\//.test(text), 'the computed require was rewritten');
    const alone = tempDir('dlbundle-empty-');
    fs.copyFileSync(out, path.join(alone, 'app.cjs'));
    const r = spawnSync(process.execPath, ['app.cjs'], { cwd: alone, encoding: 'utf8', env: { PATH: process.env.PATH ?? '', HOME: tempDir(), TMPDIR: tempDir() } });
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stderr, '');
    assert.deepEqual(JSON.parse(r.stdout), { sums: [2, 4, 6], one: true });
  });

  it('without a bundle providing the addon, the built file says which bundle call is missing (E_USAGE), not a dlopen error', () => {
    const app = makeApp("const pkg = require('demo-pkg');\ntry { pkg.computed(); } catch (e) { console.log(JSON.stringify({ code: e.code, message: e.message })); }\n");
    const out = path.join(tempDir(), 'app.cjs');
    assert.equal(cli(app, 'bundle', 'main.js', '--out', out).status, 0);
    const r = spawnSync(process.execPath, [out], { encoding: 'utf8' });
    const e = JSON.parse(r.stdout) as { code: string; message: string };
    assert.equal(e.code, 'E_USAGE');
    assert.match(e.message, /no bundle provides "demo\.node"/);
  });

  it('--config adds esbuild plugins after dlbundle’s, from CommonJS or ESM; a bad config is E_USAGE naming it', () => {
    const app = makeApp("console.log(require('virtual:greeting'));\n");
    // A plugin that serves a module esbuild could not otherwise resolve.
    const plugin = `{ name: 'greeting', setup(build) {
      build.onResolve({ filter: /^virtual:greeting$/ }, () => ({ path: 'greeting', namespace: 'greeting' }));
      build.onLoad({ filter: /.*/, namespace: 'greeting' }, () => ({ contents: 'module.exports = "hello from a plugin";', loader: 'js' }));
    } }`;
    fs.writeFileSync(path.join(app, 'build.cjs'), `module.exports = { plugins: [${plugin}] };\n`);
    fs.writeFileSync(path.join(app, 'build.mjs'), `export default { plugins: [${plugin}] };\n`);
    fs.writeFileSync(path.join(app, 'bad.cjs'), 'module.exports = { plugins: [42] };\n');
    for (const config of ['build.cjs', 'build.mjs']) {
      const out = path.join(tempDir(), 'app.cjs');
      const built = cli(app, 'bundle', 'main.js', '--out', out, '--config', config);
      assert.equal(built.status, 0, built.stderr);
      assert.equal(spawnSync(process.execPath, [out], { encoding: 'utf8' }).stdout, 'hello from a plugin\n');
    }
    const without = cli(app, 'bundle', 'main.js', '--out', path.join(tempDir(), 'x.cjs'));
    assert.notEqual(without.status, 0, 'the module needs the plugin');
    const bad = cli(app, 'bundle', 'main.js', '--out', path.join(tempDir(), 'x.cjs'), '--config', 'bad.cjs');
    assert.equal(bad.status, 2, 'a usage error');
    assert.match(bad.stderr, /E_USAGE/);
    assert.match(bad.stderr, /bad\.cjs" has no valid "plugins"/);
  });
});

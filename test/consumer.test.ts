/**
 * What a consumer installs: the packed tarball (`npm pack`) installed with
 * `npm install` into a fresh project whose PATH has no compiler, then used
 * from CommonJS, from ESM, and type-checked by a strict TypeScript project
 * (TypeScript 5 and 7, no `types` option naming node) — and what the
 * package leaves out: install-time scripts, build tools, source maps.
 */
import { strict as assert } from 'node:assert';
import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { nativeFixture, REPO, tempDir } from './fixtures';

const NPM_CLI = path.join(path.dirname(process.execPath), '..', 'lib', 'node_modules', 'npm', 'bin', 'npm-cli.js');

describe('consumer: the packed package in a fresh project', function () {
  this.timeout(180_000);
  let project: string;
  let env: NodeJS.ProcessEnv;

  before(() => {
    project = tempDir('dlbundle-consumer-');
    // node and a shell (npm runs scripts through sh), nothing else: no gcc, make or python3 to build anything with.
    const bin = path.join(project, '.bin-node-only');
    fs.mkdirSync(bin);
    fs.symlinkSync(process.execPath, path.join(bin, 'node'));
    fs.symlinkSync('/bin/sh', path.join(bin, 'sh'));
    env = { PATH: bin, HOME: process.env.HOME, npm_config_cache: process.env.npm_config_cache ?? path.join(process.env.HOME ?? '/root', '.npm'), DLBUNDLE_CACHE_DIR: path.join(project, 'cache') };
    const npm = (args: string[], cwd: string): string => execFileSync(process.execPath, [NPM_CLI, ...args, '--no-audit', '--no-fund', '--loglevel=error'], { cwd, env, encoding: 'utf8' });
    const tarball = npm(['pack', '--ignore-scripts', '--pack-destination', project, REPO], REPO).trim().split('\n').pop() as string;
    fs.writeFileSync(path.join(project, 'package.json'), JSON.stringify({ name: 'consumer', version: '1.0.0', private: true }));
    npm(['install', path.join(project, tarball)], project);
    execFileSync(process.execPath, [path.join(project, 'node_modules', 'dlbundle', 'dist', 'cli.js'), 'pack', nativeFixture('libdemo_core.so'), '--name', 'demo', '--out', path.join(project, 'native')], { env, stdio: 'pipe' });
  });

  it('installs without build tools, install scripts or source maps, with its LICENSE', () => {
    const installed = path.join(project, 'node_modules');
    assert.ok(!fs.existsSync(path.join(installed, 'esbuild')), 'esbuild was installed');
    assert.ok(!fs.existsSync(path.join(installed, 'postject')), 'postject was installed');
    const pkg = JSON.parse(fs.readFileSync(path.join(installed, 'dlbundle', 'package.json'), 'utf8')) as { scripts?: Record<string, string>; peerDependenciesMeta?: Record<string, { optional?: boolean }> };
    for (const s of ['preinstall', 'install', 'postinstall', 'prepare']) assert.equal(pkg.scripts?.[s], undefined, `the published package.json has a ${s} script`);
    assert.equal(pkg.peerDependenciesMeta?.esbuild?.optional, true);
    assert.ok(fs.existsSync(path.join(installed, 'dlbundle', 'LICENSE')));
    const maps = execFileSync('find', [path.join(installed, 'dlbundle'), '-name', '*.map'], { encoding: 'utf8' }).trim();
    assert.equal(maps, '', 'source maps were shipped');
  });

  it('works from CommonJS', () => {
    fs.writeFileSync(path.join(project, 'cjs.cjs'), `const { openBundle, fromDirectory } = require('dlbundle');
const core = openBundle({ source: fromDirectory(__dirname + '/native') }).library('libdemo_core.so', { add: 'int add(int a, int b)' });
console.log(core.add(2, 3));`);
    assert.equal(execFileSync(process.execPath, [path.join(project, 'cjs.cjs')], { env, encoding: 'utf8' }).trim(), '5');
  });

  it('works from ESM', () => {
    fs.writeFileSync(path.join(project, 'esm.mjs'), `import { openBundle, fromDirectory } from 'dlbundle';
const core = openBundle({ source: fromDirectory(new URL('./native', import.meta.url).pathname) }).library('libdemo_core.so', { add: 'int add(int a, int b)' });
console.log(core.add(2, 3));`);
    assert.equal(execFileSync(process.execPath, [path.join(project, 'esm.mjs')], { env, encoding: 'utf8' }).trim(), '5');
  });

  for (const [label, tsc] of [
    ['TypeScript 5', path.join(REPO, 'node_modules', 'typescript', 'bin', 'tsc')],
    ['TypeScript 7', path.join(REPO, 'node_modules', 'typescript7', 'bin', 'tsc')],
  ] as const) {
    it(`type-checks clean under ${label}, strict, without naming node in types`, () => {
      const dir = path.join(project, label.replace(' ', '-'));
      fs.mkdirSync(dir, { recursive: true });
      fs.symlinkSync(path.join(project, 'node_modules'), path.join(dir, 'node_modules'));
      fs.writeFileSync(path.join(dir, 'tsconfig.json'), JSON.stringify({ compilerOptions: { strict: true, module: 'nodenext', moduleResolution: 'nodenext', target: 'es2022', noEmit: true, types: [], skipLibCheck: false }, files: ['consumer.ts'] }));
      fs.writeFileSync(
        path.join(dir, 'consumer.ts'),
        `import { openBundle, fromDirectory, isDlbundleError, type Bundle } from 'dlbundle';
import { pack } from 'dlbundle/build';
const bundle: Bundle = openBundle({ source: fromDirectory('./native') });
const core = bundle.library('libdemo_core.so', { add: 'int add(int a, int b)' });
const sum: number = core.add(2, 3);
// @ts-expect-error: add takes numbers
core.add('2', 3);
try { bundle.explain(); } catch (e) { if (isDlbundleError(e, 'E_IO')) console.log(e.code); }
void pack; void sum;
`,
      );
      const version = execFileSync(process.execPath, [tsc, '--version'], { encoding: 'utf8' }).trim();
      assert.match(version, label === 'TypeScript 5' ? /^Version 5\./ : /^Version 7\./);
      const r = spawnSync(process.execPath, [tsc, '-p', dir], { cwd: dir, encoding: 'utf8' });
      assert.equal(r.status, 0, `${version}:\n${r.stdout}${r.stderr}`);
    });
  }

  it('a build command whose tool is not installed says exactly what to install', () => {
    fs.writeFileSync(path.join(project, 'main.js'), "require('dlbundle');\n");
    const r = spawnSync(process.execPath, [path.join(project, 'node_modules', 'dlbundle', 'dist', 'cli.js'), 'bundle', 'main.js', '--out', 'app.cjs'], { cwd: project, env, encoding: 'utf8' });
    assert.equal(r.status, 2);
    const range = (JSON.parse(fs.readFileSync(path.join(REPO, 'package.json'), 'utf8')) as { peerDependencies: Record<string, string> }).peerDependencies.esbuild;
    assert.match(r.stderr, new RegExp(`needs the package "esbuild", which is not installed\\.\\nInstall it next to dlbundle: npm install --save-dev "esbuild@${(range as string).replace(/[.^]/g, '\\$&')}"`));
  });
});

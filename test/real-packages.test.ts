/**
 * Real npm packages that load their own `.node` file, unchanged, through
 * their own public APIs, with their native files only in a dlbundle bundle:
 * onnxruntime-node (an inference on a model written here), sharp (an image
 * made and resized), DuckDB through @duckdb/node-api (a query).
 *
 * The packages are installed by scripts/fetch-npm-apps.js into the ignored
 * .cache/npm-apps/ (from the npm registry; the before() hook fails when it
 * cannot reach it). Each app is then copied with every native file left out
 * (.node, .so*, .dylib, .dll), so that nothing but the bundle can provide
 * them, and run three ways: plain node with the bundle in the cache, memory
 * mode (memfd: no directory at all, so only dlbundle's load order satisfies
 * the addon's dependencies), and a single executable copied alone into an
 * empty directory, cold then warm.
 */
import { strict as assert } from 'node:assert';
import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { REPO, tempDir } from './fixtures';

// eslint-disable-next-line @typescript-eslint/no-require-imports
const { fetchNpmApps } = require('../scripts/fetch-npm-apps.js') as { fetchNpmApps(): { apps: Record<string, { dir: string }> } };
// eslint-disable-next-line @typescript-eslint/no-require-imports
const { matMulAddModel } = require('../scripts/onnx-model.js') as { matMulAddModel(): Uint8Array };

const CLI = path.join(REPO, 'dist', 'cli.js');

/** What each app prints: its package's answer, and what explain() says. */
interface AppOutput {
  readonly answer: unknown;
  readonly mode: string;
  readonly reused: boolean;
  readonly libraries: readonly { readonly name: string; readonly from: string; readonly addon: boolean }[];
  readonly limitations: readonly unknown[];
}

interface Case {
  /** The directory name under .cache/npm-apps/. */
  readonly app: string;
  /** The installed package whose native files `dlbundle pack --package` takes. */
  readonly package: string;
  /** The application: CommonJS, reports through `done(answer)`. */
  readonly main: string;
  readonly answer: unknown;
  /** The files the bundle loads, dependencies first, with whether each is an addon. */
  readonly loaded: readonly (readonly [string, boolean])[];
}

// Every app opens the bundle beside it with autoSource, in the mode MODE
// names, lets it provide the addons, then uses the package as its README says.
const PRELUDE = `'use strict';
const path = require('node:path');
const { openBundle, autoSource } = require('dlbundle');
const bundle = openBundle({ source: autoSource(path.join(__dirname, 'native')), mode: process.env.MODE || 'auto' });
bundle.provideAddons();
const done = (answer) => {
  const e = bundle.explain();
  console.log(JSON.stringify({ answer, mode: e.mode, reused: e.reused, libraries: e.libraries.map(({ name, from, addon }) => ({ name, from, addon })), limitations: e.limitations }));
};
`;

const CASES: readonly Case[] = [
  {
    app: 'onnxruntime-node',
    package: 'onnxruntime-node',
    main: `const ort = require('onnxruntime-node');
(async () => {
  const session = await ort.InferenceSession.create(require('node:fs').readFileSync(path.join(__dirname, 'model.onnx')));
  const T = ort.Tensor;
  const out = await session.run({ A: new T('float32', [1, 2], [1, 2]), B: new T('float32', [3, 4, 5, 6], [2, 2]), C: new T('float32', [0.5, 1], [1, 2]) });
  done([...out.Y.data]);
})();`,
    // [1 2]·[[3 4] [5 6]] + [0.5 1]
    answer: [13.5, 17],
    loaded: [
      ['libonnxruntime.so.1', false],
      ['onnxruntime_binding.node', true],
    ],
  },
  {
    app: 'sharp',
    package: 'sharp',
    main: `const sharp = require('sharp');
(async () => {
  const png = await sharp({ create: { width: 40, height: 30, channels: 3, background: { r: 200, g: 10, b: 10 } } }).png().toBuffer();
  const { data, info } = await sharp(png).resize(10, 5).raw().toBuffer({ resolveWithObject: true });
  done({ size: [info.width, info.height], pixel: [...data.subarray(0, 3)], vips: sharp.versions.vips });
})();`,
    answer: { size: [10, 5], pixel: [200, 10, 10], vips: '8.18.7' },
    loaded: [
      ['libvips-cpp.so.8.18.7', false],
      ['sharp-linux-x64-0.35.5.node', true],
    ],
  },
  {
    app: 'duckdb',
    package: '@duckdb/node-api',
    main: `const { DuckDBInstance } = require('@duckdb/node-api');
(async () => {
  const connection = await (await DuckDBInstance.create(':memory:')).connect();
  const reader = await connection.runAndReadAll('SELECT 42 AS answer, sum(i)::INTEGER AS total FROM range(10) t(i)');
  done(reader.getRowObjectsJson());
})();`,
    answer: [{ answer: 42, total: 45 }],
    loaded: [
      ['libduckdb.so', false],
      ['duckdb.node', true],
    ],
  },
];

/** Copies `from` to `to` without native files: what is left cannot load the package by itself. */
function copyWithoutNative(from: string, to: string): void {
  fs.cpSync(from, to, { recursive: true, verbatimSymlinks: true, filter: (src) => !/\.(node|dylib|dll)$|\.so(\.[\d.]+)?$/.test(src) });
}

/** A fresh app: the package's JavaScript, dlbundle, the bundle of its native files, the main script. */
function makeApp(c: Case, installed: string): string {
  const dir = path.join(tempDir(), c.app);
  copyWithoutNative(installed, dir);
  fs.symlinkSync(REPO, path.join(dir, 'node_modules', 'dlbundle'));
  // As a user would: the package named, from the installed application.
  execFileSync(process.execPath, [CLI, 'pack', '--package', c.package, '--name', c.app, '--out', path.join(dir, 'native')], { cwd: installed, stdio: 'pipe' });
  fs.writeFileSync(path.join(dir, 'main.js'), `${PRELUDE}${c.main}\n`);
  fs.writeFileSync(path.join(dir, 'model.onnx'), matMulAddModel());
  return dir;
}

/** Runs `command` in `cwd` with a private temporary directory (the cache's root); its output parsed, stderr asserted empty. */
function run(command: string, args: readonly string[], cwd: string, env: Record<string, string> = {}): AppOutput {
  const r = spawnSync(command, args, { cwd, encoding: 'utf8', env: { ...process.env, DLBUNDLE_CACHE_DIR: '', TMPDIR: env.TMPDIR ?? tempDir(), ...env }, timeout: 60_000 });
  assert.equal(r.status, 0, `${command} ${args.join(' ')}: ${r.stderr}`);
  assert.equal(r.stderr, '', 'nothing on stderr');
  return JSON.parse(r.stdout.trim().split('\n').pop() as string) as AppOutput;
}

/** The commands of README.md's recipe block `name`, without the npm installs (the app is fetched) and comments. */
function readmeRecipe(name: string): string[] {
  const readme = fs.readFileSync(path.join(REPO, 'README.md'), 'utf8');
  const block = new RegExp(`<!-- recipe: ${name} -->\n\`\`\`sh\n([\\s\\S]*?)\`\`\``).exec(readme)?.[1];
  assert.ok(block !== undefined, `README.md has no recipe ${name}`);
  return block
    .split('\n')
    .map((l) => l.replace(/\s+#.*$/, '').trim())
    .filter((l) => l !== '' && !l.startsWith('npm install'));
}

describe('real npm packages through their own APIs, native files only in the bundle', function () {
  this.timeout(600_000);
  let apps: Record<string, { dir: string }>;

  before(function () {
    this.timeout(900_000);
    apps = fetchNpmApps().apps;
  });

  for (const c of CASES) {
    describe(c.app, () => {
      let dir: string;
      before(() => {
        dir = makeApp(c, (apps[c.app] as { dir: string }).dir);
      });

      it('cannot load without dlbundle once its native files are gone', () => {
        const r = spawnSync(process.execPath, ['-e', `require(${JSON.stringify(c.main.match(/require\('([^']+)'\)/)?.[1])})`], { cwd: dir, encoding: 'utf8' });
        assert.notEqual(r.status, 0);
        assert.match(r.stderr, /Cannot find module|Could not load|cannot open shared object/);
      });

      it('works from the cache, the addon loaded after its library', () => {
        const out = run(process.execPath, ['main.js'], dir);
        assert.deepEqual(out.answer, c.answer);
        assert.equal(out.mode, 'disk');
        assert.deepEqual(
          out.libraries.map((l) => [l.name, l.addon]),
          c.loaded.map(([n, a]) => [n, a]),
        );
        assert.deepEqual(out.limitations, []);
      });

      it('works in memory mode (memfd), with no limitation reported', () => {
        const out = run(process.execPath, ['main.js'], dir, { MODE: 'memory' });
        assert.deepEqual(out.answer, c.answer);
        assert.equal(out.mode, 'memory');
        assert.ok(out.libraries.every((l) => l.from === 'memory'));
        assert.deepEqual(out.limitations, []);
      });

      it('works as a single executable alone in an empty directory, cold then warm', () => {
        const exe = path.join(dir, 'app');
        execFileSync(process.execPath, [CLI, 'sea', 'main.js', '--bundle', 'native', '--out', exe], { cwd: dir, stdio: 'pipe' });
        const alone = tempDir();
        fs.copyFileSync(exe, path.join(alone, 'app'));
        fs.chmodSync(path.join(alone, 'app'), 0o755);
        fs.writeFileSync(path.join(alone, 'model.onnx'), matMulAddModel());
        const tmp = tempDir();
        const cold = run(path.join(alone, 'app'), [], alone, { TMPDIR: tmp });
        const warm = run(path.join(alone, 'app'), [], alone, { TMPDIR: tmp });
        for (const out of [cold, warm]) {
          assert.deepEqual(out.answer, c.answer);
          assert.deepEqual(
            out.libraries.map((l) => [l.name, l.from, l.addon]),
            c.loaded.map(([n, a]) => [n, 'disk', a]),
          );
        }
        assert.equal(cold.reused, false);
        assert.equal(warm.reused, true);
        assert.deepEqual(fs.readdirSync(alone).sort(), ['app', 'model.onnx'], 'nothing written beside the executable');
      });
    });
  }

  it("README's sharp recipe, as written: pack --package, run, sea, run alone", () => {
    // As installed, native files included: the recipe packs them from there.
    const dir = path.join(tempDir(), 'sharp-recipe');
    fs.cpSync((apps.sharp as { dir: string }).dir, dir, { recursive: true, verbatimSymlinks: true });
    fs.symlinkSync(REPO, path.join(dir, 'node_modules', 'dlbundle'));
    fs.copyFileSync(path.join(REPO, 'examples', 'sharp-app.cjs'), path.join(dir, 'sharp-app.cjs'));
    const expected = "10 5\n[ 'libvips-cpp.so.8.18.7', 'sharp-linux-x64-0.35.5.node' ]\n";
    const env = { ...process.env, TMPDIR: tempDir(), DLBUNDLE_CACHE_DIR: '' };
    const commands = readmeRecipe('sharp');
    assert.deepEqual(commands.map((c) => c.split(' ').slice(0, 2).join(' ')), ['npx dlbundle', 'node sharp-app.cjs', 'npx dlbundle', './sharp-app']);
    for (const command of commands) {
      const [program, ...args] = command.split(/\s+/) as [string, ...string[]];
      const argv = program === 'npx' ? [process.execPath, CLI, ...args.slice(1)] : program === 'node' ? [process.execPath, ...args] : [path.join(dir, program), ...args];
      const r = spawnSync(argv[0] as string, argv.slice(1), { cwd: dir, env, encoding: 'utf8' });
      assert.equal(r.status, 0, `${command}: ${r.stderr}`);
      if (program !== 'npx') {
        assert.equal(r.stdout, expected, command);
        assert.equal(r.stderr, '', command);
      }
    }
    const alone = tempDir();
    fs.copyFileSync(path.join(dir, 'sharp-app'), path.join(alone, 'sharp-app'));
    fs.chmodSync(path.join(alone, 'sharp-app'), 0o755);
    const r = spawnSync(path.join(alone, 'sharp-app'), { cwd: alone, env: { PATH: process.env.PATH, TMPDIR: tempDir() }, encoding: 'utf8' });
    assert.equal(r.stdout, expected, r.stderr);
  });
});

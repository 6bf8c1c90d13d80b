#!/usr/bin/env node
'use strict';
// `npm run bench:packages`: a real package's single executable against the
// same application run by plain `node` from node_modules — what a user who
// ships onnxruntime-node as one file gains or pays. Whole processes, timed
// from spawn to exit (the user waits for all of it): the SEA cold (a fresh
// TMPDIR, so dlbundle extracts the 45 MB libonnxruntime.so.1 and the addon)
// and warm (the directory reused), each paired with a plain run, the two
// sides alternating, BENCH_RUNS pairs (default 21). Prints one JSON line per
// scenario: medians in ms, and the median of per-pair ratios with its spread.
const { execFileSync, spawnSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { fetchNpmApps } = require('./fetch-npm-apps.js');
const { matMulAddModel } = require('./onnx-model.js');

const repo = path.resolve(__dirname, '..');
const cli = path.join(repo, 'dist', 'cli.js');
const runs = Number(process.env.BENCH_RUNS ?? 21);
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'dlbundle-bench-packages-'));

// The application: one inference on a 153-byte MatMul+Add model.
const MODEL = matMulAddModel();
const INFER = `const ort = require('onnxruntime-node');
(async () => {
  const session = await ort.InferenceSession.create(require('node:fs').readFileSync(require('node:path').join(__dirname, 'model.onnx')));
  const T = ort.Tensor;
  const out = await session.run({ A: new T('float32', [1, 2], [1, 2]), B: new T('float32', [3, 4, 5, 6], [2, 2]), C: new T('float32', [0.5, 1], [1, 2]) });
  if (out.Y.data[0] !== 13.5 || out.Y.data[1] !== 17) process.exit(1);
})();
`;

function quantile(xs, q) {
  const s = [...xs].sort((a, b) => a - b);
  const i = (s.length - 1) * q;
  const lo = Math.floor(i);
  return s[lo] + (s[Math.ceil(i)] - s[lo]) * (i - lo);
}
const round = (x, d = 1) => Math.round(x * 10 ** d) / 10 ** d;
const spread = (xs, d) => ({ median: round(quantile(xs, 0.5), d), p25: round(quantile(xs, 0.25), d), p75: round(quantile(xs, 0.75), d) });

function timed(command, args, cwd, env) {
  const start = process.hrtime.bigint();
  const r = spawnSync(command, args, { cwd, env: { ...process.env, ...env }, stdio: ['ignore', 'ignore', 'pipe'] });
  const ms = Number(process.hrtime.bigint() - start) / 1e6;
  if (r.status !== 0) throw new Error(`${command} failed: ${r.stderr}`);
  return ms;
}

function main() {
  const installed = fetchNpmApps().apps['onnxruntime-node'].dir;
  fs.writeFileSync(path.join(installed, 'model.onnx'), MODEL);
  fs.writeFileSync(path.join(installed, 'bench-plain.js'), `'use strict';\n${INFER}`);

  // The dlbundle app: the package's JavaScript, its two native files in a bundle.
  const app = path.join(work, 'app');
  fs.mkdirSync(app);
  const bin = path.join(installed, 'node_modules', 'onnxruntime-node', 'bin', 'napi-v6', 'linux', 'x64');
  execFileSync(process.execPath, [cli, 'pack', path.join(bin, 'onnxruntime_binding.node'), path.join(bin, 'libonnxruntime.so.1'), '--name', 'ort', '--out', path.join(app, 'native')], { stdio: 'pipe' });
  fs.writeFileSync(
    path.join(app, 'main.js'),
    `'use strict';\nconst { openBundle, autoSource } = require(${JSON.stringify(repo)});\nopenBundle({ source: autoSource(require('node:path').join(__dirname, 'native')) }).provideAddons();\n${INFER}`,
  );
  fs.symlinkSync(path.join(installed, 'node_modules'), path.join(app, 'node_modules'));
  const exeDir = path.join(work, 'alone');
  fs.mkdirSync(exeDir);
  const exe = path.join(exeDir, 'app');
  execFileSync(process.execPath, [cli, 'sea', 'main.js', '--bundle', 'native', '--out', exe], { cwd: app, stdio: 'pipe' });
  fs.writeFileSync(path.join(exeDir, 'model.onnx'), MODEL);

  const plain = () => timed(process.execPath, ['bench-plain.js'], installed, {});
  const warmTmp = path.join(work, 'warm-tmp');
  fs.mkdirSync(warmTmp);
  timed(exe, [], exeDir, { TMPDIR: warmTmp });
  let n = 0;
  const scenarios = {
    warm: () => timed(exe, [], exeDir, { TMPDIR: warmTmp }),
    cold: () => {
      const tmp = path.join(work, `cold-${n++}`);
      fs.mkdirSync(tmp);
      const ms = timed(exe, [], exeDir, { TMPDIR: tmp });
      fs.rmSync(tmp, { recursive: true, force: true });
      return ms;
    },
  };
  plain();
  const results = { warm: { sea: [], plain: [] }, cold: { sea: [], plain: [] } };
  for (let i = 0; i < runs; i++) {
    for (const [name, sea] of Object.entries(scenarios)) {
      // Alternate which side goes first.
      if (i % 2 === 0) {
        results[name].sea.push(sea());
        results[name].plain.push(plain());
      } else {
        results[name].plain.push(plain());
        results[name].sea.push(sea());
      }
    }
  }
  console.log(JSON.stringify({ bench: 'machine', cpu: os.cpus()[0]?.model.trim(), cores: os.cpus().length, load1: round(os.loadavg()[0]), node: process.version }));
  for (const [name, r] of Object.entries(results)) {
    const ratios = r.sea.map((s, i) => s / r.plain[i]);
    console.log(JSON.stringify({ bench: `onnxruntime-sea-${name}-vs-plain-node`, runs, sea_ms: spread(r.sea), plain_node_ms: spread(r.plain), ratio: spread(ratios, 2) }));
  }
}

try {
  main();
} finally {
  fs.rmSync(work, { recursive: true, force: true });
}

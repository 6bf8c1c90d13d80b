#!/usr/bin/env node
'use strict';
// `npm run bench:sea`: builds the demo application as a single executable
// with `dlbundle sea`, then times whole runs of it (spawn to exit) — cold,
// with a fresh TMPDIR each time, and warm, reusing one — and, for scale, the
// same program run by plain `node` from its directory. Medians over fresh
// processes; one JSON object per line.
const { execFileSync, spawnSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { performance } = require('node:perf_hooks');

const repo = path.resolve(__dirname, '..');
const runs = Number(process.env.BENCH_RUNS ?? 21);
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'dlbundle-bench-sea-'));
const app = path.join(work, 'app');
fs.mkdirSync(path.join(app, 'node_modules'), { recursive: true });
fs.symlinkSync(repo, path.join(app, 'node_modules', 'dlbundle'));
const libs = ['libdemo_core.so', 'libdemo_codec.so.1.2.3', 'libdemo_app.so', 'libdemo_plugin.so'].map((n) => path.join(repo, 'build', 'Release', n));
const cli = path.join(repo, 'dist', 'cli.js');
execFileSync(process.execPath, [cli, 'pack', ...libs, '--name', 'demo', '--out', path.join(app, 'native')]);
fs.writeFileSync(
  path.join(app, 'main.js'),
  `const path = require('node:path');
const { openBundle, autoSource } = require('dlbundle');
const app = openBundle({ source: autoSource(path.join(__dirname, 'native')) }).library('libdemo_app.so', { compute: 'int app_compute(int x)' });
if (app.compute(5) !== 1011) process.exit(1);
`,
);
const exe = path.join(work, 'demo-sea');
const buildStart = performance.now();
execFileSync(process.execPath, [cli, 'sea', path.join(app, 'main.js'), '--bundle', path.join(app, 'native'), '--out', exe], { stdio: 'pipe' });
const buildMs = performance.now() - buildStart;

function timed(argv, tmp) {
  const start = performance.now();
  const r = spawnSync(argv[0], argv.slice(1), { env: { PATH: process.env.PATH, HOME: work, TMPDIR: tmp }, cwd: work });
  const ms = performance.now() - start;
  if (r.status !== 0) throw new Error(`${argv.join(' ')} failed: ${r.stderr}`);
  return ms;
}
const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 === 1 ? s[m] : (s[m - 1] + s[m]) / 2;
};
const round = (x) => Math.round(x * 10) / 10;

const warmTmp = path.join(work, 'warm-tmp');
fs.mkdirSync(warmTmp);
timed([exe], warmTmp);
const samples = { cold: [], warm: [], plainNodeWarm: [] };
for (let i = 0; i < runs; i++) {
  const coldTmp = path.join(work, `cold-${i}`);
  fs.mkdirSync(coldTmp);
  samples.cold.push(timed([exe], coldTmp));
  fs.rmSync(coldTmp, { recursive: true, force: true });
  samples.warm.push(timed([exe], warmTmp));
  samples.plainNodeWarm.push(timed([process.execPath, path.join(app, 'main.js')], warmTmp));
}
console.log(JSON.stringify({ bench: 'machine', cpu: os.cpus()[0]?.model, cores: os.cpus().length, node: process.version, kernel: os.release() }));
console.log(JSON.stringify({ bench: 'sea-build', ms: round(buildMs), bytes: fs.statSync(exe).size, MiB: round(fs.statSync(exe).size / 2 ** 20), node_binary_MiB: round(fs.statSync(process.execPath).size / 2 ** 20) }));
for (const [name, xs] of Object.entries(samples)) console.log(JSON.stringify({ bench: `sea-run-${name}`, runs: xs.length, median_ms: round(median(xs)), min_ms: round(Math.min(...xs)), max_ms: round(Math.max(...xs)) }));
fs.rmSync(work, { recursive: true, force: true });

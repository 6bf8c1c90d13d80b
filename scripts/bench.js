#!/usr/bin/env node
'use strict';
// `npm run bench`: start-up figures of dlbundle against the floor of doing the
// same work by hand, each measured in fresh child processes (dlopen is per
// process). Prints one JSON object per line; the last lines compare medians
// with the targets in BENCHMARKS.md.
const { execFileSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const repo = path.resolve(__dirname, '..');
const dist = path.join(repo, 'dist', 'index.js');
const built = path.join(repo, 'build', 'Release');
const runs = Number(process.env.BENCH_RUNS ?? 21);
const { pack } = require(path.join(repo, 'dist', 'build', 'index.js'));

const work = fs.mkdtempSync(path.join(os.tmpdir(), 'dlbundle-bench-'));
const demo = ['libdemo_core.so', 'libdemo_codec.so.1.2.3', 'libdemo_app.so', 'libdemo_plugin.so'];
const warmBundle = path.join(work, 'warm-bundle');
const coldBundle = path.join(work, 'cold-bundle');
pack(demo.map((n) => path.join(built, n)), { name: 'bench-warm', out: warmBundle });
pack([...demo, 'libdemo_big.so'].map((n) => path.join(built, n)), { name: 'bench-cold', out: coldBundle });
const variant = 'linux-x64-gnu';

function child(scenario, config) {
  const out = execFileSync(process.execPath, [path.join(__dirname, 'bench-child.js'), scenario, JSON.stringify({ dist, ...config })], { encoding: 'utf8' });
  const r = JSON.parse(out.trim().split('\n').pop());
  if (r.result !== 1011) throw new Error(`${scenario} returned ${r.result}, expected app_compute(5) = 1011`);
  return r;
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 === 1 ? s[m] : (s[m - 1] + s[m]) / 2;
};
const quantile = (xs, q) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(q * xs.length))];
const round = (x) => Math.round(x * 1000) / 1000;

// Warm: the cache directory exists (materialized once, outside the measurement).
const warmCache = path.join(work, 'warm-cache');
child('warm-dlbundle', { bundle: warmBundle, cacheDir: warmCache });
const samples = { 'warm-dlbundle': [], 'warm-floor': [], 'cold-dlbundle': [], 'cold-floor': [] };
const memory = [];
for (let i = 0; i < runs; i++) {
  // Interleaved, so drift in machine load affects both sides alike.
  samples['warm-floor'].push(child('warm-floor', { dir: path.join(warmBundle, variant) }).ms);
  samples['warm-dlbundle'].push(child('warm-dlbundle', { bundle: warmBundle, cacheDir: warmCache }).ms);
  const coldCache = path.join(work, `cold-cache-${i}`);
  const cold = child('cold-dlbundle', { bundle: coldBundle, cacheDir: coldCache });
  samples['cold-dlbundle'].push(cold.ms);
  memory.push((cold.peakRss - cold.rssBefore) / (1 << 20));
  fs.rmSync(coldCache, { recursive: true, force: true });
  const freshDir = path.join(work, `floor-${i}`);
  samples['cold-floor'].push(child('cold-floor', { from: path.join(coldBundle, variant), freshDir }).ms);
  fs.rmSync(freshDir, { recursive: true, force: true });
}

const machine = { cpu: os.cpus()[0]?.model, cores: os.cpus().length, memGiB: Math.round(os.totalmem() / 2 ** 30), node: process.version, kernel: os.release(), tmpdir: os.tmpdir() };
console.log(JSON.stringify({ bench: 'machine', ...machine }));
for (const [name, xs] of Object.entries(samples)) {
  console.log(JSON.stringify({ bench: name, runs: xs.length, median_ms: round(median(xs)), p25_ms: round(quantile(xs, 0.25)), p75_ms: round(quantile(xs, 0.75)) }));
}
const ratio = (a, b) => round(median(samples[a]) / median(samples[b]));
console.log(JSON.stringify({ bench: 'warm-start', ratio: ratio('warm-dlbundle', 'warm-floor'), target: 1.1, pass: ratio('warm-dlbundle', 'warm-floor') <= 1.1 }));
console.log(JSON.stringify({ bench: 'cold-start-64MB', ratio: ratio('cold-dlbundle', 'cold-floor'), target: 1.5, pass: ratio('cold-dlbundle', 'cold-floor') <= 1.5 }));
const mem = round(median(memory));
console.log(JSON.stringify({ bench: 'cold-start-peak-rss-over-baseline', median_MiB: mem, max_MiB: round(Math.max(...memory)), target_MiB: 32, pass: Math.max(...memory) <= 32 }));
fs.rmSync(work, { recursive: true, force: true });

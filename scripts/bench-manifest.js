#!/usr/bin/env node
'use strict';
// `npm run bench` (after bench.js): how long a start spends on a large
// dlbundle.json — JSON.parse, validation and the load-order check — for a
// variant of 32,000 files. Each run is a fresh process, as a start is: the
// parser's code is not warmed up by earlier runs. Prints one JSON object per
// line; the last line compares the medians with the target in BENCHMARKS.md.
//
//   node scripts/bench-manifest.js [files]      (BENCH_RUNS runs per case, default 7)
const { execFileSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const repo = path.resolve(__dirname, '..');
// BENCH_DIST: another build to measure (an older checkout's dist/, for comparison).
const dist = process.env.BENCH_DIST ?? path.join(repo, 'dist');
const runs = Number(process.env.BENCH_RUNS ?? 7);
const count = Number(process.argv[2] ?? 32000);
const TARGET_MS = 500;

if (process.argv[2] === '--child') {
  // One measured parse, in this fresh process.
  const [, , , file, checkDigest] = process.argv;
  const { parseManifest } = require(path.join(dist, 'manifest.js'));
  const text = fs.readFileSync(file, 'utf8');
  const started = process.hrtime.bigint();
  const cpuBefore = process.cpuUsage();
  // Without the digest check, as a start parses (sources never hash); with it, as pack and inspect do.
  const m = parseManifest(text, file, checkDigest === 'true' ? {} : { checkDigest: false, variants: 'on-use' });
  // Touch the variant, so a parser that validates on use is measured doing it.
  const files = Object.values(m.variants).reduce((n, v) => n + v.files.length, 0);
  const ms = Number(process.hrtime.bigint() - started) / 1e6;
  // CPU time too: on a shared machine the wall clock also counts other processes' turns.
  const cpu = process.cpuUsage(cpuBefore);
  process.stdout.write(`${JSON.stringify({ ms, cpuMs: (cpu.user + cpu.system) / 1000, files })}\n`);
  process.exit(0);
}

const { loadOrder, externalDependencies } = require(path.join(dist, 'plan.js'));
const { variantDigest } = require(path.join(dist, 'manifest.js'));

const name = (i) => `libbench${String(i).padStart(6, '0')}.so.1`;
// A fixed-seed generator, so every run and every checkout measures the same manifest.
function rng(seed) {
  let s = seed;
  return () => ((s = (s * 1103515245 + 12345) & 0x7fffffff) / 0x80000000);
}

// flat: 32,000 independent libraries, every one ready at once (the shape that took 27 s).
// layered: each library needs up to three earlier ones, so the order really constrains.
const SHAPES = {
  flat: () => [],
  layered: (i, r) => (i === 0 ? [] : [...new Set([0, 1, 2].map(() => name(Math.floor(r() * i))))].slice(0, 1 + Math.floor(r() * 3))),
};

function manifestText(shape) {
  const r = rng(42);
  const files = [];
  // Listed in reverse, so neither the file list nor the names are already in load order.
  for (let i = count - 1; i >= 0; i--) {
    files.push({ name: name(i), size: 4096 + i, xxh64: (0x1000000 + i).toString(16).padStart(16, '0'), soname: name(i), needed: [...SHAPES[shape](i, r), 'libc.so.6'], runpath: [], machine: 'x86_64' });
  }
  const variant = { digest: variantDigest(files), files, order: loadOrder(files), external: externalDependencies(files) };
  return JSON.stringify({ format: 1, name: 'bench-manifest', variants: { 'linux-x64-gnu': variant } }, null, 2);
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 === 1 ? s[m] : (s[m - 1] + s[m]) / 2;
};
const round = (x) => Math.round(x * 10) / 10;

const work = fs.mkdtempSync(path.join(os.tmpdir(), 'dlbundle-bench-manifest-'));
try {
  const medians = [];
  for (const shape of Object.keys(SHAPES)) {
    const file = path.join(work, `${shape}.json`);
    fs.writeFileSync(file, manifestText(shape));
    for (const checkDigest of [false, true]) {
      const xs = [];
      const cpu = [];
      for (let i = 0; i < runs; i++) {
        const out = execFileSync(process.execPath, [__filename, '--child', file, String(checkDigest)], { encoding: 'utf8' });
        const r = JSON.parse(out.trim().split('\n').pop());
        if (r.files !== count) throw new Error(`the parse of ${file} returned ${r.files} files, expected ${count}`);
        xs.push(r.ms);
        cpu.push(r.cpuMs);
      }
      const bench = `manifest-${count}-${shape}${checkDigest ? '-with-digest' : ''}`;
      console.log(JSON.stringify({ bench, bytes: fs.statSync(file).size, runs, median_ms: round(median(xs)), median_cpu_ms: round(median(cpu)), min_ms: round(Math.min(...xs)), max_ms: round(Math.max(...xs)) }));
      if (!checkDigest) medians.push(median(xs));
    }
  }
  const worst = Math.max(...medians);
  console.log(JSON.stringify({ bench: `manifest-${count}-start`, worst_median_ms: round(worst), target_ms: TARGET_MS, pass: worst <= TARGET_MS }));
} finally {
  fs.rmSync(work, { recursive: true, force: true });
}

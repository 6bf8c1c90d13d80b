#!/usr/bin/env node
'use strict';
// `npm run bench`: start-up of dlbundle against the floor of doing the same
// work by hand, from before `require('dlbundle')` (the floor: before
// `require('koffi')`) to the first native call returning, each start in a
// fresh child process (dlopen is per process).
//
// Every scenario is a pair (dlbundle, floor) run BENCH_RUNS times (default
// 21), the two sides in alternating order, and the scenarios interleaved, so
// that drift in the load of a shared machine hits both sides of a pair alike.
// The figure is the median of the per-pair ratios dlbundle / floor, with its
// spread. Prints one JSON line per scenario, then one for memory and one for
// the machine:
//   {bench, runs, dlbundle_ms: {median,p25,p75}, floor_ms: {…}, ratio: {median,p25,p75,min,max}, target, pass,
//    cpu_ratio: {median,p25,p75}}
// pass compares the median wall-clock ratio with the target. cpu_ratio (CPU
// time of the child from the same instant, user + system) is there to read a
// run on a loaded machine, where wall clocks also count other processes'
// turns; it leaves out waiting for the disk (a cold start's fsync).
// BENCH_DIST: another dist/ directory to measure (an older build, for comparison).
const { execFileSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { CHAIN_TOP, chainLibraries } = require('./native-chain.js');

const repo = path.resolve(__dirname, '..');
const dist = path.resolve(process.env.BENCH_DIST ?? path.join(repo, 'dist'));
const built = path.join(repo, 'build', 'Release');
const runs = Number(process.env.BENCH_RUNS ?? 21);
const { pack } = require(path.join(repo, 'dist', 'build', 'index.js'));
const { mountOf } = require(path.join(repo, 'dist', 'mounts.js'));

const started = Date.now();
const loadBefore = os.loadavg();
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'dlbundle-bench-'));

const DEMO = ['libdemo_core.so', 'libdemo_codec.so.1.2.3', 'libdemo_app.so', 'libdemo_plugin.so'];
// What library('libdemo_app.so') loads, in dependency order (the plugin is dlopen()ed by app only when called).
const APP = { top: 'libdemo_app.so', prototype: 'int app_compute(int x)', arg: 5, expected: 1011, load: DEMO.slice(0, 3) };
const CHAIN = { top: CHAIN_TOP.file, prototype: CHAIN_TOP.prototype, arg: 5, expected: CHAIN_TOP.expected(5), load: chainLibraries() };

function packed(name, files) {
  const out = path.join(work, name);
  const { variant, target } = pack(files.map((n) => path.join(built, n)), { name, out });
  return { out, dir: path.join(out, target), bytes: variant.files.reduce((n, f) => n + f.size, 0), files: files.length };
}

const scenarios = [
  // byHand: also time warmChecksByHand (bench-child.js), the least a start that keeps the checks can do.
  { bench: 'warm-start-demo', kind: 'warm', target: 1.1, bundle: packed('bench-demo', DEMO), call: APP, byHand: true },
  { bench: 'warm-start-chain-50', kind: 'warm', target: 1.1, bundle: packed('bench-chain', chainLibraries()), call: CHAIN },
  { bench: 'cold-start-1MiB', kind: 'cold', target: 1.5, bundle: packed('bench-1mib', [...DEMO, 'libdemo_big_1m.so']), call: APP },
  { bench: 'cold-start-64MiB', kind: 'cold', target: 1.5, bundle: packed('bench-64mib', [...DEMO, 'libdemo_big.so']), call: APP, rss: true },
];

// dlbundle keeps V8's code cache of its run time in the default cache root,
// made by the first start of a build: here a root of the bench's own, so that,
// as for an application's first run, the first start below (a cold one) makes
// it — not whatever process happened to run this build first on this machine,
// which decides what the cache holds and so what every start of it costs.
const codeCacheRoot = path.join(work, 'default-root');
function child(config) {
  const out = execFileSync(process.execPath, [path.join(__dirname, 'bench-child.js'), JSON.stringify(config)], {
    encoding: 'utf8',
    timeout: 120_000,
    env: { ...process.env, DLBUNDLE_CACHE_DIR: codeCacheRoot },
  });
  return JSON.parse(out.trim().split('\n').pop());
}

let fresh = 0;
// One start of one side; checks the native call's result, removes what a cold start wrote.
function start(s, side) {
  const { top, prototype, arg, expected, load } = s.call;
  const config = { side, dist: path.join(dist, 'index.js'), top, prototype, arg };
  const scratch = path.join(work, `fresh-${fresh++}`);
  if (side === 'dlbundle') Object.assign(config, { bundle: s.bundle.out, cacheDir: s.kind === 'warm' ? path.join(work, `${s.bench}-cache`) : scratch });
  else if (side === 'by-hand') Object.assign(config, { bundle: s.bundle.out, cacheDir: path.join(work, `${s.bench}-cache`), load });
  else Object.assign(config, { load }, s.kind === 'warm' ? { dir: s.bundle.dir } : { copyFrom: s.bundle.dir, freshDir: scratch });
  const r = child(config);
  fs.rmSync(scratch, { recursive: true, force: true });
  if (r.result !== expected) throw new Error(`${s.bench} (${side}) returned ${r.result}, expected ${expected}`);
  return r;
}

// Nearest rank on the sorted samples, interpolated (p50 of an odd count is its middle sample).
function quantile(xs, q) {
  const s = [...xs].sort((a, b) => a - b);
  const at = (s.length - 1) * q;
  const lo = Math.floor(at);
  return s[lo] + (s[Math.min(lo + 1, s.length - 1)] - s[lo]) * (at - lo);
}
const round = (x, digits = 3) => Math.round(x * 10 ** digits) / 10 ** digits;
const spread = (xs) => ({ median: round(quantile(xs, 0.5)), p25: round(quantile(xs, 0.25)), p75: round(quantile(xs, 0.75)) });

// One unmeasured pair per scenario first: it materializes the warm caches and
// brings koffi, dist/ and the bundles into the page cache for both sides.
for (const s of scenarios) {
  start(s, 'dlbundle');
  start(s, 'floor');
  Object.assign(s, { dlbundle: [], floor: [], ratio: [], cpuRatio: [], rssOver: [], byHandRatio: [] });
}
for (let i = 0; i < runs; i++) {
  for (const s of scenarios) {
    const sides = i % 2 === 0 ? ['dlbundle', 'floor'] : ['floor', 'dlbundle'];
    if (s.byHand) sides.splice(i % 3, 0, 'by-hand');
    const pair = {};
    for (const side of sides) pair[side] = start(s, side);
    if (s.byHand) s.byHandRatio.push(pair['by-hand'].ms / pair.floor.ms);
    s.dlbundle.push(pair.dlbundle.ms);
    s.floor.push(pair.floor.ms);
    s.ratio.push(pair.dlbundle.ms / pair.floor.ms);
    s.cpuRatio.push(pair.dlbundle.cpuMs / pair.floor.cpuMs);
    if (s.rss) s.rssOver.push((pair.dlbundle.peakRss - pair.dlbundle.rssBefore) / 2 ** 20);
  }
}

for (const s of scenarios) {
  const ratio = { ...spread(s.ratio), min: round(Math.min(...s.ratio)), max: round(Math.max(...s.ratio)) };
  console.log(JSON.stringify({
    bench: s.bench,
    runs,
    bundle: { files: s.bundle.files, MiB: round(s.bundle.bytes / 2 ** 20, 2) },
    dlbundle_ms: spread(s.dlbundle),
    floor_ms: spread(s.floor),
    ratio,
    target: s.target,
    pass: ratio.median <= s.target,
    cpu_ratio: spread(s.cpuRatio),
  }));
}
for (const s of scenarios.filter((x) => x.byHand)) {
  // No target: this is the floor of any implementation that keeps the checks, not dlbundle.
  console.log(JSON.stringify({ bench: `${s.bench}-checks-by-hand`, runs, ratio: { ...spread(s.byHandRatio), min: round(Math.min(...s.byHandRatio)), max: round(Math.max(...s.byHandRatio)) } }));
}
for (const s of scenarios.filter((x) => x.rss)) {
  const over = { ...spread(s.rssOver), min: round(Math.min(...s.rssOver)), max: round(Math.max(...s.rssOver)) };
  // Every run must stay under the target, not only the median: memory is a limit, not an average.
  console.log(JSON.stringify({ bench: `${s.bench}-peak-rss-over-baseline`, runs, MiB: over, target: 32, pass: over.max <= 32 }));
}

const tmp = fs.realpathSync(os.tmpdir());
const mount = mountOf(tmp, fs.readFileSync('/proc/self/mountinfo', 'utf8'));
console.log(JSON.stringify({
  bench: 'machine',
  cpu: os.cpus()[0]?.model,
  cores: os.cpus().length,
  memory_GiB: round(os.totalmem() / 2 ** 30, 1),
  kernel: os.release(),
  node: process.version,
  tmpdir: tmp,
  tmpdir_fs: mount === null ? null : `${mount.fsType} on ${mount.mountPoint}`,
  loadavg_before: loadBefore.map((x) => round(x, 2)),
  loadavg_after: os.loadavg().map((x) => round(x, 2)),
  dist,
  seconds: round((Date.now() - started) / 1000, 1),
}));
fs.rmSync(work, { recursive: true, force: true });

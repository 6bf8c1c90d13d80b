#!/usr/bin/env node
'use strict';
// `npm run bench:sea`: whole runs of single executables, spawn to exit, in
// fresh processes, rounds of three in rotating order:
// - empty: a SEA whose main does nothing, built the same way (the same node
//   binary, the same sea-config options, through the same writeSeaExecutable);
// - warm:  the demo application built by `dlbundle sea` with the demo chain and
//   the 64 MiB libdemo_big.so (≈ 67 MB of libraries, plus koffi.node), its cache
//   already in place;
// - cold:  the same executable with a fresh, empty TMPDIR each run;
// - by-hand: a lower bound, not a target: an executable without assets whose
//   main does the warm checks by hand on the directories the warm runs use,
//   then opens koffi.node and the libraries itself (writeByHand below).
// Prints JSON lines: the medians with p25/p75, then warm − empty and cold − warm
// (the median of each round's difference, with its p25/p75) against the
// targets of issue 10, and whether any run wrote to stderr (none may; the
// process exits 1 if one did). A few untimed runs with DEBUG=dlbundle:* check
// that no Node warning appears when debug is loaded either, and with
// NODE_OPTIONS=--max-old-space-size (other V8 flags than the build's) that no
// "Code cache data rejected" appears. Each run's CPU time (user + system, from
// getrusage of the children) is reported beside the wall time: on a shared
// machine it moves far less. BENCH_SEA_TMPDIR puts the work directory (and so
// every cache) on another file system, e.g. a tmpfs, where fsync is free.
const { execFileSync, spawnSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { performance } = require('node:perf_hooks');

const koffi = require('koffi');

const repo = path.resolve(__dirname, '..');
const { writeSeaExecutable } = require(path.join(repo, 'dist', 'build', 'single-file.js'));
const runs = Math.max(21, Number(process.env.BENCH_RUNS ?? 21));
const TARGET_WARM_OVER_EMPTY_MS = 10;
const TARGET_COLD_OVER_WARM_MS = 60;

const work = fs.mkdtempSync(path.join(process.env.BENCH_SEA_TMPDIR ?? os.tmpdir(), 'dlbundle-bench-sea-'));

// getrusage(RUSAGE_CHILDREN): user + system time of every child waited for, in ms.
const getrusage = koffi.load('libc.so.6').func('int getrusage(int who, _Out_ uint8_t *usage)');
function childrenCpuMs() {
  const usage = Buffer.alloc(144); // struct rusage; ru_utime and ru_stime are its first two timevals
  if (getrusage(-1, usage) !== 0) throw new Error('getrusage failed');
  const tv = (at) => Number(usage.readBigInt64LE(at)) * 1e3 + Number(usage.readBigInt64LE(at + 8)) / 1e3;
  return tv(0) + tv(16);
}
const app = path.join(work, 'app');
fs.mkdirSync(path.join(app, 'node_modules'), { recursive: true });
fs.symlinkSync(repo, path.join(app, 'node_modules', 'dlbundle'));
const built = path.join(repo, 'build', 'Release');
const libs = ['libdemo_core.so', 'libdemo_codec.so.1.2.3', 'libdemo_app.so', 'libdemo_plugin.so', 'libdemo_big.so'].map((n) => path.join(built, n));
const cli = path.join(repo, 'dist', 'cli.js');
execFileSync(process.execPath, [cli, 'pack', ...libs, '--name', 'demo', '--out', path.join(app, 'native')]);
const libraryBytes = libs.reduce((sum, f) => sum + fs.statSync(f).size, 0);
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

// The empty executable: a main that does nothing, no assets, otherwise as `dlbundle sea` builds.
const emptyExe = path.join(work, 'empty-sea');

function timed(argv, tmp, extraEnv = {}) {
  const cpu = childrenCpuMs();
  const start = performance.now();
  const r = spawnSync(argv[0], argv.slice(1), { env: { PATH: process.env.PATH, HOME: work, TMPDIR: tmp, ...extraEnv }, cwd: work, encoding: 'utf8' });
  const ms = performance.now() - start;
  const cpuMs = childrenCpuMs() - cpu;
  if (r.status !== 0) throw new Error(`${argv.join(' ')} failed (${r.status ?? r.signal}): ${r.stderr}`);
  return { ms, cpuMs, stderr: r.stderr };
}
const quantile = (xs, q) => {
  const s = [...xs].sort((a, b) => a - b);
  const i = (s.length - 1) * q;
  const lo = Math.floor(i);
  return s[lo] + (s[Math.ceil(i)] - s[lo]) * (i - lo);
};
const round = (x) => Math.round(x * 10) / 10;
const spread = (xs) => ({ median: round(quantile(xs, 0.5)), p25: round(quantile(xs, 0.25)), p75: round(quantile(xs, 0.75)) });

async function main() {
  const emptyWork = fs.mkdtempSync(path.join(work, 'empty-'));
  fs.writeFileSync(path.join(emptyWork, 'main.cjs'), '');
  writeSeaExecutable({ main: path.join(emptyWork, 'main.cjs'), assets: {}, out: emptyExe, work: emptyWork });

  const warmTmp = path.join(work, 'warm-tmp');
  fs.mkdirSync(warmTmp);
  let coldCount = 0;
  const cold = (extraEnv) => {
    const tmp = path.join(work, `cold-${coldCount++}`);
    fs.mkdirSync(tmp);
    try {
      return timed([exe], tmp, extraEnv);
    } finally {
      fs.rmSync(tmp, { recursive: true, force: true });
    }
  };
  // Untimed: the cache in place, the page cache filled, each executable run once.
  for (const run of [() => cold(), () => timed([exe], warmTmp), () => timed([emptyExe], warmTmp)]) run();
  const byHandExe = writeByHand(warmTmp);
  timed([byHandExe], warmTmp);
  const kinds = {
    empty: () => timed([emptyExe], warmTmp),
    warm: () => timed([exe], warmTmp),
    cold: () => cold(),
    'by-hand': () => timed([byHandExe], warmTmp),
  };
  const samples = { empty: [], warm: [], cold: [], 'by-hand': [] };
  const cpu = { empty: [], warm: [], cold: [], 'by-hand': [] };
  const stderr = [];
  const order = Object.keys(kinds);
  for (let i = 0; i < runs; i++) {
    for (let j = 0; j < order.length; j++) {
      const k = order[(i + j) % order.length];
      const r = kinds[k]();
      samples[k].push(r.ms);
      cpu[k].push(r.cpuMs);
      if (r.stderr !== '') stderr.push({ kind: k, run: i, stderr: r.stderr });
    }
  }
  // With DEBUG naming dlbundle, debug is loaded and logs to stderr: no line of it may be a Node warning.
  const debugEnv = { DEBUG: 'dlbundle:*' };
  const debugRuns = [cold(debugEnv), timed([exe], warmTmp, debugEnv), cold(debugEnv), timed([exe], warmTmp, debugEnv)];
  const debugWarnings = debugRuns.flatMap((r) => r.stderr.split('\n').filter((l) => /\(node:\d+\)|Warning:/.test(l)));
  const debugLogged = debugRuns.every((r) => /dlbundle:cache/.test(r.stderr));
  // Other V8 flags than the build's: a code cache that V8 refuses must not make Node print anything.
  const flagsEnv = { NODE_OPTIONS: '--max-old-space-size=300' };
  for (const r of [cold(flagsEnv), timed([exe], warmTmp, flagsEnv)]) if (r.stderr !== '') stderr.push({ kind: 'NODE_OPTIONS', stderr: r.stderr });

  const diff = (a, b, of = samples) => of[a].map((x, i) => x - of[b][i]);
  const warmOverEmpty = spread(diff('warm', 'empty'));
  const coldOverWarm = spread(diff('cold', 'warm'));
  const cpuOf = (a, b) => ({ cpu_median: round(quantile(diff(a, b, cpu), 0.5)), cpu_p25: round(quantile(diff(a, b, cpu), 0.25)), cpu_p75: round(quantile(diff(a, b, cpu), 0.75)) });
  console.log(JSON.stringify({ bench: 'machine', cpu: os.cpus()[0]?.model, cores: os.cpus().length, load1: round(os.loadavg()[0]), node: process.version, kernel: os.release() }));
  console.log(JSON.stringify({ bench: 'sea-build', ms: round(buildMs), MiB: round(fs.statSync(exe).size / 2 ** 20), empty_MiB: round(fs.statSync(emptyExe).size / 2 ** 20), libraries_MB: round(libraryBytes / 1e6) }));
  for (const [name, xs] of Object.entries(samples)) {
    const c = spread(cpu[name]);
    console.log(JSON.stringify({ bench: `sea-run-${name}`, runs: xs.length, ...spread(xs), cpu_median: c.median, cpu_p25: c.p25, cpu_p75: c.p75 }));
  }
  console.log(JSON.stringify({ bench: 'sea-warm-over-empty-ms', ...warmOverEmpty, target: TARGET_WARM_OVER_EMPTY_MS, pass: warmOverEmpty.median <= TARGET_WARM_OVER_EMPTY_MS, ...cpuOf('warm', 'empty') }));
  // No target: the least a warm start that keeps the checks can cost in a single executable on this machine.
  const byHand = spread(diff('by-hand', 'empty'));
  console.log(JSON.stringify({ bench: 'sea-checks-by-hand-over-empty-ms', ...byHand, ...cpuOf('by-hand', 'empty') }));
  console.log(JSON.stringify({ bench: 'sea-cold-over-warm-ms', ...coldOverWarm, target: TARGET_COLD_OVER_WARM_MS, pass: coldOverWarm.median <= TARGET_COLD_OVER_WARM_MS, ...cpuOf('cold', 'warm') }));
  console.log(JSON.stringify({ bench: 'sea-stderr', runs_with_stderr: stderr.length, debug_runs: debugRuns.length, debug_logged: debugLogged, debug_warnings: debugWarnings, pass: stderr.length === 0 && debugWarnings.length === 0 && debugLogged }));
  if (stderr.length > 0) console.error(`stderr of ${stderr.length} run(s), first: ${JSON.stringify(stderr[0])}`);
  fs.rmSync(work, { recursive: true, force: true });
  if (stderr.length > 0 || debugWarnings.length > 0 || !debugLogged) process.exitCode = 1;
}

/**
 * A lower bound, not an implementation: a single executable built as the
 * empty one is (no assets), whose main does by hand, in the fewest calls, the
 * checks a warm start keeps on both directories the demo's warm runs left in
 * `tmp` (koffi.node's and the application's: root walk from /, lease with
 * this process's start time, prune intent, listing, marker, each file's
 * identity; libc in ld.so.cache), then opens koffi.node with process.dlopen,
 * loads core, codec and app and calls app_compute(5). No validation, no
 * variant choice, no errors worth the name.
 */
function writeByHand(tmp) {
  const root = path.join(tmp, `dlbundle-${process.getuid()}`);
  const dirOf = (prefix) => path.join(root, fs.readdirSync(root).find((n) => n.startsWith(prefix)));
  const dir = fs.mkdtempSync(path.join(work, 'by-hand-'));
  const main = `'use strict';
const fs = require('node:fs');
const root = ${JSON.stringify(root)};
let tag = null;
function check(dir) {
  let p = '';
  fs.lstatSync('/');
  for (const part of root.split('/').filter(Boolean)) fs.lstatSync((p += '/' + part));
  fs.lstatSync(dir);
  if (tag === null) {
    const fd = fs.openSync('/proc/self/stat', 'r');
    const buf = Buffer.allocUnsafe(1024);
    const stat = buf.latin1Slice(0, fs.readSync(fd, buf, 0, 1024, null));
    fs.closeSync(fd);
    tag = fs.readlinkSync('/proc/self/ns/pid').replace(/\\D/g, '') + '-' + process.pid + '-' + stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
  }
  const name = dir.slice(root.length + 1);
  const lease = fs.openSync(root + '/.leases/' + name + '/' + tag, 'w', 0o600);
  fs.writeSync(lease, process.pid + '\\n');
  fs.closeSync(lease);
  fs.lstatSync(root + '/.leases/' + name + '/.pruning', { throwIfNoEntry: false });
  const ids = JSON.parse(fs.readFileSync(dir + '/.dlbundle-complete', 'utf8').split('\\n').find((l) => l.startsWith('{')));
  for (const entry of fs.readdirSync(dir)) {
    const st = fs.lstatSync(dir + '/' + entry);
    if (st.isFile() && entry in ids && ids[entry] !== st.dev + ':' + st.ino + ':' + st.size + ':' + st.mtimeMs + ':' + st.ctimeMs) throw new Error(entry + ' moved');
  }
}
const koffiDir = ${JSON.stringify(dirOf('koffi-native-'))};
const appDir = ${JSON.stringify(dirOf('demo-'))};
check(koffiDir);
check(appDir);
if (fs.readFileSync('/etc/ld.so.cache').indexOf('libc.so.6') < 0) throw new Error('no libc.so.6 in ld.so.cache');
const koffi = { exports: {} };
process.dlopen(koffi, koffiDir + '/koffi.node');
let top;
for (const n of ['libdemo_core.so', 'libdemo_codec.so.1.2.3', 'libdemo_app.so']) top = koffi.exports.load(appDir + '/' + n);
if (top.func('int app_compute(int x)')(5) !== 1011) process.exit(1);
`;
  fs.writeFileSync(path.join(dir, 'main.cjs'), main);
  const out = path.join(work, 'by-hand-sea');
  writeSeaExecutable({ main: path.join(dir, 'main.cjs'), assets: {}, out, work: dir });
  return out;
}

main().catch((e) => {
  fs.rmSync(work, { recursive: true, force: true });
  throw e;
});

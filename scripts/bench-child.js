'use strict';
// One measured start, in a fresh process (dlopen is per process, so a second
// measurement in the same process would measure nothing). Prints one JSON line.
//   node bench-child.js <json config>
// config: { side: 'dlbundle' | 'floor', dist, top, prototype, arg, and
//   dlbundle: bundle, cacheDir — openBundle with default options, then the call;
//   floor: load (file names in dependency order) from dir, or, when copyFrom
//          is set, from freshDir after copying every file of copyFrom into it. }
const fs = require('node:fs');
const path = require('node:path');

const config = JSON.parse(process.argv[2]);
// The clock starts before `require('dlbundle')`, as a user feels a start:
// the floor's clock likewise starts before `require('koffi')`.
const rssBefore = process.memoryUsage().rss;
// process.hrtime, not performance.now(): loading perf_hooks here would take
// its cost (≈ 1.6 ms) off whichever side needs it later.
const t0 = process.hrtime.bigint();
const cpu0 = process.cpuUsage();
let result;
if (config.side === 'dlbundle') {
  const dlbundle = require(config.dist);
  const bundle = dlbundle.openBundle({ source: dlbundle.fromDirectory(config.bundle), cacheDir: config.cacheDir });
  result = bundle.library(config.top, { f: config.prototype }).f(config.arg);
} else {
  const koffi = require('koffi');
  let dir = config.dir;
  if (config.copyFrom !== undefined) {
    dir = config.freshDir;
    fs.mkdirSync(dir, { mode: 0o700 });
    for (const name of fs.readdirSync(config.copyFrom)) fs.copyFileSync(path.join(config.copyFrom, name), path.join(dir, name));
  }
  let top;
  for (const name of config.load) top = koffi.load(path.join(dir, name));
  result = top.func(config.prototype)(config.arg);
}
const ms = Number(process.hrtime.bigint() - t0) / 1e6;
const cpu = process.cpuUsage(cpu0);
const peakRss = process.resourceUsage().maxRSS * 1024;
process.stdout.write(`${JSON.stringify({ side: config.side, ms, cpuMs: (cpu.user + cpu.system) / 1000, result, rssBefore, peakRss })}\n`);

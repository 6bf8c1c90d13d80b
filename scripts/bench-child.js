'use strict';
// One measured start, in a fresh process (dlopen is per process, so a second
// measurement in the same process would measure nothing). Prints one JSON line.
//   node bench-child.js <scenario> <json config>
const fs = require('node:fs');
const path = require('node:path');
const { performance } = require('node:perf_hooks');

const [scenario, configJson] = process.argv.slice(2);
const config = JSON.parse(configJson);
// The clock starts before `require('dlbundle')`, as a user feels a start:
// the floor's clock likewise starts before `require('koffi')`.
const rssBefore = process.memoryUsage().rss;
const t0 = performance.now();
const dlbundle = scenario.endsWith('dlbundle') ? require(config.dist) : null;
let result;
if (scenario === 'warm-dlbundle' || scenario === 'cold-dlbundle') {
  const bundle = dlbundle.openBundle({ source: dlbundle.fromDirectory(config.bundle), cacheDir: config.cacheDir });
  const app = bundle.library('libdemo_app.so', { compute: 'int app_compute(int x)' });
  result = app.compute(5);
} else {
  const koffi = require('koffi');
  let dir = config.dir;
  if (scenario === 'cold-floor') {
    dir = config.freshDir;
    fs.mkdirSync(dir, { mode: 0o700 });
    for (const name of fs.readdirSync(config.from)) fs.copyFileSync(path.join(config.from, name), path.join(dir, name));
  }
  const libs = ['libdemo_core.so', 'libdemo_codec.so.1.2.3', 'libdemo_app.so'].map((n) => koffi.load(path.join(dir, n)));
  result = libs[2].func('int app_compute(int x)')(5);
}
const ms = performance.now() - t0;
const peakRss = process.resourceUsage().maxRSS * 1024;
process.stdout.write(`${JSON.stringify({ scenario, ms, result, rssBefore, peakRss })}\n`);

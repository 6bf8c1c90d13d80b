'use strict';
// The demo application: opens the demo bundle and calls into it through
// typed symbols. `npm run demo` runs it twice, in fresh processes: a cold
// start (empty cache) and a warm one.
const path = require('node:path');
const { performance } = require('node:perf_hooks');
const { openBundle, fromDirectory } = require('../dist/index.js');

const [bundleDir, cacheDir] = process.argv.slice(2);
const started = performance.now();
const bundle = openBundle({ source: fromDirectory(bundleDir), cacheDir });

const app = bundle.library('libdemo_app.so', {
  compute: 'int app_compute(int x)',
  callPlugin: 'int app_call_plugin(int x)',
  pluginError: 'const char *app_plugin_error(void)',
});
const codec = bundle.library('libdemo_codec.so.1', { name: 'const char *codec_name(void)', encode: 'int codec_encode(int x)' });
const core = bundle.library('libdemo_core.so', { add: 'int add(int a, int b)', version: 'const char *demo_version(void)' });

const compute = app.compute(5); // first touch: materialize → load core, codec, app in order → bind
const firstCallMs = performance.now() - started;
console.log(`  app_compute(5)      = ${compute}   (2·5 + 1001, through codec and core)`);
console.log(`  app_call_plugin(2)  = ${app.callPlugin(2)}     (libdemo_plugin.so found beside libdemo_app.so${app.pluginError() === null ? '' : `: ${app.pluginError()}`})`);
console.log(`  codec_encode(1)     = ${codec.encode(1)}   (${codec.name()})`);
console.log(`  add(2, 3)           = ${core.add(2, 3)}      (${core.version()})`);
// The accelerator needs a GPU runtime that this demo deliberately does not ship: optional() answers instead of throwing.
const accel = bundle.optional('libdemo_accel.so', { run: 'int accel_run(int x)' });
console.log(accel.ok ? `  accel_run(3)        = ${accel.lib.run(3)}     (the optional accelerator is available here)` : `  accelerator         absent, as intended: it is optional and needs ${accel.missing.join(', ')}, which no machine of the demo has; the app runs without it`);

const report = bundle.explain();
console.log(`  ${report.reused ? 'reused' : 'extracted into'} ${report.dir}`);
console.log(`  variant ${report.variant} (${report.variantReason}); source ${report.source.kind} ${path.relative(process.cwd(), report.source.location)}`);
for (const lib of report.libraries) {
  console.log(`    loaded ${lib.name.padEnd(24)} ${lib.ms.toFixed(2).padStart(6)} ms  needed by ${lib.neededBy.length === 0 ? '(the app)' : lib.neededBy.join(', ')}`);
}
console.log(`  openBundle → first call returned: ${firstCallMs.toFixed(1)} ms`);

#!/usr/bin/env node
'use strict';
// `npm run test:node-versions`: the demo and the tests that build and run
// single files — a SEA by `dlbundle sea`, the SEA injector, third-party
// libraries, the README's examples — on other Nodes than the one that runs the
// whole suite: by default the latest 22, 24 and 26 (asked of the registry at
// each run, so CI follows their releases), or the majors or exact versions
// given as arguments:
//
//   node scripts/test-node-versions.js              latest 22, 24 and 26
//   node scripts/test-node-versions.js 26.12.1 24   these
//
// For each: the official build from npm (scripts/fetch-node.js, kept in
// .cache/node/), the native test libraries rebuilt against its headers, then
// the demo and mocha run by that node, with its bin/ first on PATH (the tests
// spawn process.execPath, and anything that runs `node` gets the same one).
// Every version is run even when one fails; the exit status is 1 if any did.
// The native libraries are rebuilt for the node running this script at the
// end, so the tree is left as `npm run build:native` leaves it.
const { spawnSync } = require('node:child_process');
const path = require('node:path');
const { performance } = require('node:perf_hooks');
const { fetchNode, FetchError } = require('./fetch-node.js');

const REPO = path.resolve(__dirname, '..');
const DEFAULT_VERSIONS = ['22', '24', '26'];
// Single files and SEAs; third-party code: Debian's libraries and real npm
// packages that load their own addons (onnxruntime-node, sharp, DuckDB).
const TESTS = ['test/single-file.test.ts', 'test/sea-inject.test.ts', 'test/third-party.test.ts', 'test/examples.test.ts', 'test/provide-addons.test.ts', 'test/addon-plugin.test.ts', 'test/real-packages.test.ts'];

/** Runs `node args…` in the repository with `env`, output shown; returns whether it exited 0. */
function step(what, node, args, env) {
  console.log(`\n--- ${what}: ${node.startsWith(REPO + path.sep) ? path.relative(REPO, node) : node} ${args.join(' ')}`);
  const r = spawnSync(node, args, { cwd: REPO, env, stdio: 'inherit' });
  if (r.error !== undefined) console.error(`${what} could not be started: ${r.error.message}`);
  return r.status === 0;
}

/** The environment of the tests under `dir`'s node: its bin/ first on PATH, and its headers for node-gyp. */
function envFor(dir) {
  const env = { ...process.env, PATH: `${path.join(dir, 'bin')}${path.delimiter}${process.env.PATH ?? ''}` };
  // npm exports a machine-level `nodedir` (an .npmrc) as npm_config_nodedir, which node-gyp takes over --nodedir.
  env.npm_config_nodedir = dir;
  return env;
}

function testVersion(spec) {
  const start = performance.now();
  let fetched;
  try {
    fetched = fetchNode(spec, { log: (line) => console.log(line) });
  } catch (e) {
    console.error(e instanceof FetchError ? `fetch-node: ${e.message}` : e);
    return { spec, version: spec, ok: false, failed: ['fetch'], seconds: (performance.now() - start) / 1000 };
  }
  const { version, dir, node } = fetched;
  console.log(`\n=== Node ${version} (${spec === version ? 'as given' : `latest ${spec}`})`);
  const env = envFor(dir);
  const failed = [];
  if (!step('native test libraries', node, [path.join('scripts', 'build-native.js')], env)) {
    failed.push('build:native');
  } else {
    if (!step('demo', node, [path.join('scripts', 'demo.js')], env)) failed.push('demo');
    if (!step('tests', node, [require.resolve('mocha/bin/mocha.js'), ...TESTS], env)) failed.push('mocha');
  }
  return { spec, version, ok: failed.length === 0, failed, seconds: (performance.now() - start) / 1000 };
}

function main() {
  const specs = process.argv.slice(2);
  const results = (specs.length > 0 ? specs : DEFAULT_VERSIONS).map(testVersion);
  // Back to the libraries of the node that runs this script (the suite's).
  const restored = step('native test libraries, back', process.execPath, [path.join('scripts', 'build-native.js')], process.env);
  console.log('\nNode versions:');
  for (const r of results) console.log(`  ${r.version.padEnd(8)} ${r.ok ? 'passed' : `FAILED (${r.failed.join(', ')})`} in ${r.seconds.toFixed(0)} s`);
  if (!restored) console.log(`  the native libraries could not be rebuilt for ${process.version}: run \`npm run build:native\``);
  return results.every((r) => r.ok) && restored ? 0 : 1;
}

process.exitCode = main();

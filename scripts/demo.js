#!/usr/bin/env node
'use strict';
// `npm run demo`: packs the demo libraries built from native/ into a bundle,
// prints what `dlbundle inspect` says about it, then runs the demo app twice
// in fresh processes — a cold start with an empty cache, then a warm one.
const { execFileSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');
const { main } = require('../dist/cli.js');

const repo = path.resolve(__dirname, '..');
const built = path.join(repo, 'build', 'Release');
const out = path.join(repo, 'build', 'demo-bundle');
const cache = path.join(repo, 'build', 'demo-cache');
const libs = ['libdemo_core.so', 'libdemo_codec.so.1.2.3', 'libdemo_app.so', 'libdemo_plugin.so', 'libdemo_accel.so', 'demo.node'];

async function demo() {
  let status = await main(['pack', ...libs.map((l) => path.join(built, l)), '--name', 'demo', '--out', out, '--optional', 'libdemo_accel.so']);
  if (status === 0) {
    console.log('');
    status = await main(['inspect', out]);
  }
  if (status === 0) {
    fs.rmSync(cache, { recursive: true, force: true });
    for (const start of ['cold start (empty cache)', 'warm start']) {
      console.log(`\n${start}:`);
      execFileSync(process.execPath, [path.join(__dirname, 'demo-app.js'), out, cache], { stdio: 'inherit', cwd: repo });
    }
  }
  return status;
}

void demo().then((status) => {
  process.exitCode = status;
});

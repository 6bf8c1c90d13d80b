#!/usr/bin/env node
'use strict';
// `npm run demo`: packs the demo libraries built from native/ into a bundle
// directory and prints what `dlbundle inspect` says about it.
const path = require('node:path');
const { main } = require('../dist/cli.js');

const repo = path.resolve(__dirname, '..');
const built = path.join(repo, 'build', 'Release');
const out = path.join(repo, 'build', 'demo-bundle');
const libs = ['libdemo_core.so', 'libdemo_codec.so.1.2.3', 'libdemo_app.so', 'libdemo_plugin.so', 'libdemo_accel.so', 'demo.node'];

let status = main(['pack', ...libs.map((l) => path.join(built, l)), '--name', 'demo', '--out', out]);
if (status === 0) {
  console.log('');
  status = main(['inspect', out]);
}
process.exitCode = status;

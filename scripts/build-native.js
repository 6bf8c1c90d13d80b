#!/usr/bin/env node
'use strict';
// Builds the demo and test libraries in native/ with node-gyp.
// Node's headers are taken from the running node's own install prefix when it
// ships them (Debian's nodejs does, under /usr/include/node), because node-gyp
// would otherwise try to download them and these machines reach only npm.
//
// Not `node-gyp rebuild`: its clean step would delete build/chain.gypi (the
// generated targets of the 50-library chain, see native-chain.js), which
// binding.gyp includes; so clean, write it, then configure and build.
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');
const { chainGypi } = require('./native-chain.js');

const repo = path.resolve(__dirname, '..');
const prefix = path.resolve(path.dirname(process.execPath), '..');
const hasHeaders = fs.existsSync(path.join(prefix, 'include', 'node', 'node_api.h'));
const nodedir = hasHeaders ? [`--nodedir=${prefix}`] : [];
// node-gyp takes npm_config_* variables over its own arguments, and npm
// exports every config it read: a machine-level `nodedir` in an .npmrc would
// silently win over --nodedir (and build against another Node's headers).
const env = hasHeaders ? { ...process.env, npm_config_nodedir: prefix } : process.env;
const nodeGyp = require.resolve('node-gyp/bin/node-gyp.js');

function nodeGypRun(args) {
  const result = spawnSync(process.execPath, [nodeGyp, ...args], { cwd: repo, stdio: 'inherit', env });
  if (result.status !== 0) process.exit(result.status ?? 1);
}

nodeGypRun(['clean']);
fs.mkdirSync(path.join(repo, 'build'), { recursive: true });
fs.writeFileSync(path.join(repo, 'build', 'chain.gypi'), chainGypi());
nodeGypRun(['configure', 'build', ...nodedir]);
// The avx2 build of libdemo_simd.so has a name of its own in gyp (binding.gyp says why).
const release = path.join(repo, 'build', 'Release');
fs.renameSync(path.join(release, 'simd-avx2', 'libdemo_simd_avx2.so'), path.join(release, 'simd-avx2', 'libdemo_simd.so'));
fs.rmSync(path.join(release, 'libdemo_simd_avx2.so'), { force: true });

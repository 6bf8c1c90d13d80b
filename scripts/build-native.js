#!/usr/bin/env node
'use strict';
// Builds the demo and test libraries in native/ with node-gyp.
// Node's headers are taken from the running node's own install prefix when it
// ships them (Debian's nodejs does, under /usr/include/node), because node-gyp
// would otherwise try to download them and these machines reach only npm.
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const prefix = path.resolve(path.dirname(process.execPath), '..');
const args = ['rebuild'];
if (fs.existsSync(path.join(prefix, 'include', 'node', 'node_api.h'))) {
  args.push(`--nodedir=${prefix}`);
}
const nodeGyp = require.resolve('node-gyp/bin/node-gyp.js');
const result = spawnSync(process.execPath, [nodeGyp, ...args], {
  cwd: path.resolve(__dirname, '..'),
  stdio: 'inherit',
});
process.exit(result.status ?? 1);

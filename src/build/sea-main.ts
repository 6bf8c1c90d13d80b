/**
 * The main script of a single executable built by `dlbundle sea`, and its
 * code cache.
 *
 * Node's own `useCodeCache` caches only what V8 compiles before the script
 * runs (its top level, ≈ 7 KB for the demo application), and when the V8
 * flags of a run differ from the build's — `NODE_OPTIONS=--max-old-space-size=…`
 * is enough — Node prints "Code cache data rejected" on every start. So the
 * application's bundle is carried as an asset with a cache made here, and a
 * small main compiles it with `vm.Script`: a rejected cache is then silently
 * a plain compile. The cache is made with every function compiled eagerly
 * (V8's `--no-lazy` while compiling, set back before serializing so that the
 * cache's flag hash is that of a default run), and checked in a fresh
 * process to be accepted; if it is not, a cache of the top level only is
 * used.
 */
import { execFileSync } from 'node:child_process';
import fs = require('node:fs');
import path = require('node:path');
import { SEA_ASSET_PREFIX } from '../sources/sea';

/** The asset holding the application's bundle, wrapped as a CommonJS function. */
export const SEA_MAIN_SOURCE_ASSET = `${SEA_ASSET_PREFIX}/main.js`;
/** The asset holding V8's code cache of {@link SEA_MAIN_SOURCE_ASSET}. */
export const SEA_MAIN_CACHE_ASSET = `${SEA_ASSET_PREFIX}/main.cache`;

/** What {@link writeSeaMain} made: the main script for the sea-config, the assets it reads, and which cache they carry. */
export interface SeaMain {
  readonly main: string;
  readonly assets: Readonly<Record<string, string>>;
  /** 'eager': every function compiled; 'top-level': the eager cache was refused, so only what V8 compiles up front. */
  readonly cache: 'eager' | 'top-level';
}

// Run in a fresh `node` (argv: source file, cache file, mode): the flags of
// this build process (NODE_OPTIONS, a flag flipped once) must not reach the cache.
const MAKE_CACHE = `'use strict';
const fs = require('node:fs'), vm = require('node:vm'), v8 = require('node:v8');
const [file, out, mode] = process.argv.slice(1);
const source = fs.readFileSync(file, 'utf8');
if (mode === 'eager') v8.setFlagsFromString('--no-lazy');
const script = new vm.Script(source, { filename: file });
if (mode === 'eager') v8.setFlagsFromString('--lazy');
fs.writeFileSync(out, script.createCachedData());`;

// Run in another fresh `node` (argv: source file, cache file): prints whether V8 accepts the cache.
const CHECK_CACHE = `'use strict';
const fs = require('node:fs'), vm = require('node:vm');
const [file, cache] = process.argv.slice(1);
const script = new vm.Script(fs.readFileSync(file, 'utf8'), { filename: file, cachedData: fs.readFileSync(cache) });
process.stdout.write(script.cachedDataRejected ? 'rejected' : 'accepted');`;

// The executable's main: compiles the bundle with its cache (a rejected cache
// is a plain compile, without a warning) and runs it as Node runs a CommonJS
// main, with the single executable's module and file names. Its require
// serves Node's built-in modules only, like the SEA's own, but answers any
// other name with MODULE_NOT_FOUND instead of the SEA's warning, which
// packages that probe for optional modules in a try (sharp's
// require('@img/sharp-linux-x64/versions')) would print on every start.
// Nothing is looked up on disk: the application is all in the executable,
// and a node_modules beside it (in /tmp, say) may be anyone's.
const MAIN = `'use strict';
const sea = require('node:sea');
const { Script } = require('node:vm');
const { isBuiltin } = require('node:module');
const missing = (id) => Object.assign(new Error("Cannot find module '" + id + "' (a single executable loads only what it carries and Node's built-in modules)"), { code: 'MODULE_NOT_FOUND' });
const builtinRequire = Object.assign((id) => { if (isBuiltin(id)) return require(id); throw missing(id); }, { resolve: (id) => { if (isBuiltin(id)) return id; throw missing(id); }, cache: Object.create(null), main: module });
const script = new Script(sea.getAsset(${JSON.stringify(SEA_MAIN_SOURCE_ASSET)}, 'utf8'), { filename: __filename, cachedData: new Uint8Array(sea.getRawAsset(${JSON.stringify(SEA_MAIN_CACHE_ASSET)})) });
script.runInThisContext()(exports, builtinRequire, module, __filename, __dirname);
`;

/**
 * Writes, in the private directory `work`, the main script of a single
 * executable that runs the CommonJS bundle `bundle`, with the bundle and its
 * code cache as the assets that main reads.
 *
 * @example
 * const m = writeSeaMain('work/app.cjs', work); // m.main for the sea-config, m.assets among its assets
 */
export function writeSeaMain(bundle: string, work: string): SeaMain {
  const source = path.join(work, 'main-source.js');
  // The CommonJS wrapper, parenthesized: V8 compiles it, the bundle's top level, eagerly.
  // A hashbang (esbuild keeps an entry's `#!/usr/bin/env node`) is valid only
  // at the very start of a script: inside the wrapper it becomes a comment.
  const text = fs.readFileSync(bundle, 'utf8').replace(/^#!/, '//');
  fs.writeFileSync(source, `(function (exports, require, module, __filename, __dirname) {${text}\n})`);
  const cache = path.join(work, 'main.cache');
  // Fresh processes with node's default flags, as the executable runs without NODE_OPTIONS.
  const env = { ...process.env };
  delete env.NODE_OPTIONS;
  const node = (script: string, ...args: string[]): string => execFileSync(process.execPath, ['-e', script, ...args], { env, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  let mode: SeaMain['cache'] = 'eager';
  node(MAKE_CACHE, source, cache, mode);
  if (node(CHECK_CACHE, source, cache) !== 'accepted') {
    mode = 'top-level';
    node(MAKE_CACHE, source, cache, mode);
  }
  const main = path.join(work, 'main.cjs');
  fs.writeFileSync(main, MAIN);
  return { main, assets: { [SEA_MAIN_SOURCE_ASSET]: source, [SEA_MAIN_CACHE_ASSET]: cache }, cache: mode };
}

/**
 * Loads dlbundle's run time (dist/runtime.js) on the first call of a public
 * function, through V8's code cache when one was saved by an earlier process
 * (code-cache-file.ts says where and why it can be trusted).
 *
 * `require('dlbundle')` loads only the small file in front of this one
 * (index.ts): no work at import time. The run time is compiled as a
 * CommonJS module would be, with `vm.Script` instead of `require` so that V8
 * can take the cached bytecode and, when there was none or V8 refused it,
 * produce it once the first start has run (code-cache.ts writes it).
 *
 * Where dist/runtime.js is not beside this file as this build wrote it (an
 * application bundled by esbuild or webpack, a single executable, tsc's
 * output without esbuild), the run time is an ordinary `require`, which a
 * bundler follows.
 */
import fs = require('node:fs');
import path = require('node:path');
import type * as Runtime from './runtime';
import { codeCacheKey, PENDING_CODE_CACHE, readCodeCache, type PendingCodeCache } from './code-cache-file';
import { defaultRoot } from './default-root';
import { DlbundleError, isDlbundleError } from './errors';
import { logger } from './log';

const debug = logger('dlbundle:code-cache');

/** The run time's exports. */
export type RuntimeModule = typeof Runtime;

// Set by scripts/build-runtime.js to the build id of dist/runtime.js (the first
// 16 hex digits of its sha256), which its first line names too; absent in
// tsc's output.
declare const DLBUNDLE_RUNTIME_ID: string | undefined;

let loaded: RuntimeModule | undefined;

/**
 * dlbundle's run time, loaded on first use.
 *
 * @example
 * runtime().openBundle(options)
 */
export function runtime(): RuntimeModule {
  loaded ??= compiled() ?? (require('./runtime.js') as RuntimeModule);
  return loaded;
}

/** The run time compiled here with V8's code cache, or null when dist/runtime.js is not this build's. */
function compiled(): RuntimeModule | null {
  const id = typeof DLBUNDLE_RUNTIME_ID === 'string' ? DLBUNDLE_RUNTIME_ID : null;
  if (id === null || process.env.DLBUNDLE_CODE_CACHE === '0') return null;
  const file = path.join(__dirname, 'runtime.js');
  // In a bundle or a single executable there is no runtime.js beside this
  // code; a failed read would build an error and its stack (≈ 1 ms) to say so.
  if (!fs.existsSync(file)) return null;
  let source: string;
  try {
    source = fs.readFileSync(file, 'utf8');
  } catch {
    return null;
  }
  if (!source.startsWith(`/*dlbundle-runtime:${id}*/`)) return null;
  const key = codeCacheKey(id);
  const cachedData = readCodeCache(defaultRoot(), key);
  // The same wrapper as CommonJS modules get, so the run time sees what require would give it.
  // Required here, not at the top: importing dlbundle loads nothing it does not use.
  const vm = require('node:vm') as typeof import('node:vm');
  const script = new vm.Script(`(function (exports, require, module, __filename, __dirname) {${source}\n})`, {
    filename: file,
    ...(cachedData === null ? {} : { cachedData }),
  });
  debug('run time compiled %s', cachedData === null ? 'without a code cache' : script.cachedDataRejected === true ? 'anew: V8 refused its code cache' : 'from its code cache');
  if (cachedData === null || script.cachedDataRejected === true) {
    const pending: PendingCodeCache = { key, produce: () => script.createCachedData() };
    (globalThis as Record<symbol, unknown>)[PENDING_CODE_CACHE] = pending;
  }
  const mod = { exports: {} as RuntimeModule };
  (script.runInThisContext() as (e: object, r: NodeJS.Require, m: object, f: string, d: string) => void)(mod.exports, runtimeRequire(), mod, file, __dirname);
  return mod.exports;
}

/**
 * The run time's `require`: this file's own, since runtime.js sits beside it
 * and so resolves every name alike — except the run time's one request for
 * the front, `./index.js` (for the error class, so that `instanceof
 * DlbundleError` holds), answered without resolving it. A `createRequire`
 * and that resolution cost ≈ 1 ms of every start.
 */
function runtimeRequire(): NodeJS.Require {
  const front = { DlbundleError, isDlbundleError };
  return Object.assign((id: string): unknown => (id === './index.js' ? front : require(id)), {
    resolve: require.resolve,
    cache: require.cache,
    main: require.main,
    extensions: require.extensions,
  });
}

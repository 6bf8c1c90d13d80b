/**
 * dlbundle's public surface. What `require('dlbundle')` compiles: this file,
 * the error class, and the loader of the run time (runtime-loader.ts). Every
 * function here forwards to the run time, which is loaded on the first call —
 * through V8's code cache when an earlier process saved one — so importing
 * dlbundle does no work. The types, and the documentation of each function,
 * are those of runtime.ts (dist/index.d.ts re-exports them).
 *
 * The exports are one object literal given to `module.exports`, not ES
 * exports: a bundler turns those into a getter per name (≈ 0.5 ms of every
 * start for thirty names).
 */
import { DlbundleError, isDlbundleError } from './errors';
import { MANIFEST_FILE, MANIFEST_FORMAT } from './manifest-format';
import { runtime, type RuntimeModule } from './runtime-loader';

type Forwarded = { [K in keyof RuntimeModule]: RuntimeModule[K] extends (...args: never[]) => unknown ? K : never }[keyof RuntimeModule];

/** A function that calls the run time's function `name`, loading the run time first. */
function forward<K extends Forwarded>(name: K): RuntimeModule[K] {
  return ((...args: unknown[]) => (runtime()[name] as (...a: unknown[]) => unknown)(...args)) as RuntimeModule[K];
}

module.exports = {
  DlbundleError,
  isDlbundleError,
  MANIFEST_FILE,
  MANIFEST_FORMAT,

  // Opening a bundle.
  openBundle: forward('openBundle'),
  // The koffi instance that binds the symbols (structs, callbacks, koffi's own types).
  koffi: forward('koffi'),

  // Where a bundle comes from.
  autoSource: forward('autoSource'),
  fromDirectory: forward('fromDirectory'),
  inPlaceDirectory: forward('inPlaceDirectory'),
  fromBuffers: forward('fromBuffers'),
  fromSea: forward('fromSea'),
  fromAsar: forward('fromAsar'),
  // koffi's own native module in single-file builds: what a bundler's replacement of koffi's loader calls.
  loadKoffiNative: forward('loadKoffiNative'),

  // Which build fits this machine.
  hostTarget: forward('hostTarget'),
  targetFacts: forward('targetFacts'),
  knownTargets: forward('knownTargets'),
  cpuFeatures: forward('cpuFeatures'),
  parseVariantKey: forward('parseVariantKey'),
  selectVariant: forward('selectVariant'),

  // The building blocks: ELF facts, manifests, dependency order, hashes.
  readElf: forward('readElf'),
  bufferSource: forward('bufferSource'),
  machineName: forward('machineName'),
  readElfFile: forward('readElfFile'),
  parseManifest: forward('parseManifest'),
  variantDigest: forward('variantDigest'),
  dependencyGraph: forward('dependencyGraph'),
  loadOrder: forward('loadOrder'),
  externalDependencies: forward('externalDependencies'),
  dependencyClosure: forward('dependencyClosure'),
  xxh64: forward('xxh64'),
  createXxh64: forward('createXxh64'),
} satisfies { [K in keyof RuntimeModule]: RuntimeModule[K] };

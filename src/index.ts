/**
 * dlbundle's public surface. What `require('dlbundle')` compiles: this file,
 * the error class, and the loader of the run time (runtime-loader.ts). Every
 * function here forwards to the run time, which is loaded on the first call —
 * through V8's code cache when an earlier process saved one — so importing
 * dlbundle does no work. The types, and the documentation of each function,
 * are those of runtime.ts (dist/index.d.ts re-exports them).
 */
import { runtime, type RuntimeModule } from './runtime-loader';

export type * from './runtime';
export { DlbundleError, isDlbundleError, type DlbundleErrorCode, type DlbundleErrorDetails } from './errors';
export { MANIFEST_FILE, MANIFEST_FORMAT } from './manifest-format';

type Forwarded = { [K in keyof RuntimeModule]: RuntimeModule[K] extends (...args: never[]) => unknown ? K : never }[keyof RuntimeModule];

/** A function that calls the run time's function `name`, loading the run time first. */
function forward<K extends Forwarded>(name: K): RuntimeModule[K] {
  return ((...args: unknown[]) => (runtime()[name] as (...a: unknown[]) => unknown)(...args)) as RuntimeModule[K];
}

// Opening a bundle.
export const openBundle = forward('openBundle');

// Where a bundle comes from.
export const autoSource = forward('autoSource');
export const fromDirectory = forward('fromDirectory');
export const inPlaceDirectory = forward('inPlaceDirectory');
export const fromBuffers = forward('fromBuffers');
export const fromSea = forward('fromSea');
export const fromAsar = forward('fromAsar');
// koffi's own native module in single-file builds: what a bundler's replacement of koffi's loader calls.
export const loadKoffiNative = forward('loadKoffiNative');

// Which build fits this machine.
export const hostTarget = forward('hostTarget');
export const targetFacts = forward('targetFacts');
export const knownTargets = forward('knownTargets');
export const cpuFeatures = forward('cpuFeatures');
export const parseVariantKey = forward('parseVariantKey');
export const selectVariant = forward('selectVariant');

// The building blocks: ELF facts, manifests, dependency order, hashes.
export const readElf = forward('readElf');
export const bufferSource = forward('bufferSource');
export const machineName = forward('machineName');
export const readElfFile = forward('readElfFile');
export const parseManifest = forward('parseManifest');
export const variantDigest = forward('variantDigest');
export const dependencyGraph = forward('dependencyGraph');
export const loadOrder = forward('loadOrder');
export const externalDependencies = forward('externalDependencies');
export const dependencyClosure = forward('dependencyClosure');
export const xxh64 = forward('xxh64');
export const createXxh64 = forward('createXxh64');

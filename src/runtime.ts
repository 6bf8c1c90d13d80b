/// <reference types="node" preserve="true" />
// The declarations use Node's types (Buffer, fs.Stats): a consumer's compiler gets
// them from @types/node, a dependency, whatever its `types` option says.
/**
 * dlbundle's run time: everything `require('dlbundle')` offers, as index.ts
 * forwards it. This file only re-exports; importing it does no work.
 * Build-time tools (pack, single-file builds, the esbuild plugin) are in
 * `dlbundle/build`.
 */

// The koffi instance dlbundle loads libraries with: for structs, callbacks and
// other types of koffi's, declared on the instance that binds the symbols.
export { koffi, type KoffiModule } from './koffi';

// Opening a bundle, typed symbols, what happened.
export { openBundle, type Bundle, type OpenBundleOptions, type BundleReport, type LibraryReport, type OptionalLibrary } from './bundle';
export type { Pointer, PointerArgument, FunctionFromPrototype, SymbolDeclarations, BoundLibrary } from './symbols';
export type { VerifyMode } from './cache';
export type { RootFallback } from './roots';

// Where a bundle comes from.
export { autoSource } from './sources/auto';
export { fromDirectory, inPlaceDirectory } from './sources/directory';
export { fromBuffers, type BlobInput } from './sources/buffers';
export { fromSea } from './sources/sea';
export { fromAsar } from './sources/asar';
// koffi's own native module in single-file builds: what a bundler's replacement of koffi's loader calls.
export { loadKoffiNative } from './koffi-native';
export type { Source, SourceKind, BlobReader } from './sources/source';

// Which build fits this machine.
export { hostTarget, targetFacts, knownTargets, cpuFeatures, parseVariantKey, selectVariant, type TargetFacts, type Libc, type VariantKey, type VariantChoice } from './variant';

// Errors.
export { DlbundleError, isDlbundleError, type DlbundleErrorCode, type DlbundleErrorDetails } from './errors';

// The building blocks: ELF facts, manifests, dependency order, hashes.
export { readElf, bufferSource, machineName, type ElfInfo, type ElfByteSource, type ElfType } from './formats/elf';
export { readElfFile } from './formats/elf-file';
export { parseManifest, variantDigest, MANIFEST_FILE, MANIFEST_FORMAT, type Manifest, type ManifestFile, type ManifestVariant } from './manifest';
export { dependencyGraph, loadOrder, externalDependencies, dependencyClosure, type GraphNode, type DependencyGraph } from './plan';
export { xxh64, createXxh64, type Xxh64Stream } from './hash';

/**
 * dlbundle's public surface. This file only re-exports; importing it does no work.
 */
export { DlbundleError, isDlbundleError, type DlbundleErrorCode, type DlbundleErrorDetails } from './errors';
export { readElf, bufferSource, machineName, type ElfInfo, type ElfByteSource, type ElfType } from './elf';
export { readElfFile } from './elf-file';
export { parseManifest, variantDigest, MANIFEST_FILE, MANIFEST_FORMAT, type Manifest, type ManifestFile, type ManifestVariant } from './manifest';
export { dependencyGraph, loadOrder, externalDependencies, dependencyClosure, type GraphNode, type DependencyGraph } from './plan';
export { hostTarget, targetFacts, knownTargets, type TargetFacts, type Libc } from './variant';
export { xxh64, createXxh64, type Xxh64Stream } from './hash';
export { openBundle, type Bundle, type OpenBundleOptions, type BundleReport, type LibraryReport, type OptionalLibrary } from './bundle';
export { fromDirectory } from './sources/directory';
export { fromBuffers, type BlobInput } from './sources/buffers';
export type { Source, SourceKind, BlobReader } from './sources/source';
export type { RootFallback, VerifyMode } from './cache';
export type { Pointer, PointerArgument, FunctionFromPrototype, SymbolDeclarations, BoundLibrary } from './symbols';
export { fromSea } from './sources/sea';
export { autoSource } from './sources/auto';
export { fromAsar } from './sources/asar';
export { inPlaceDirectory } from './sources/directory';

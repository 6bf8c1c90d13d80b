/// <reference types="node" preserve="true" />
// The declarations use Node's types (Buffer, fs.Stats): a consumer's compiler gets
// them from @types/node, a dependency, whatever its `types` option says.
/**
 * dlbundle's build-time surface (`dlbundle/build`): packing and single-file
 * builds. Kept apart from the run-time entry point so that an application
 * bundled into one file does not carry the build tools.
 */
export { pack, packPackage, type NamedInput, type PackOptions, type PackResult, type PackPackageOptions, type PackPackageResult } from '../pack';
export { readBinary, binaryFormatOf, binaryImages, type BinaryInfo, type BinaryFormat, type ElfBinary } from '../formats/binary';
export { readBinaryFile } from '../formats/binary-file';
export type { PeInfo } from '../formats/pe';
export type { MachOInfo, MachOImage, DylibCommand } from '../formats/macho';
export type { ByteSource } from '../formats/byte-reader';
export { packageNativeFiles, type PackageNativeFiles, type PackageFilesOptions, type PackageRef, type TakenFile, type TakenBecause, type SystemDependency, type MissingDependency, type PassedOverFile } from '../package-files';
export { koffiPlugin, type EsbuildPluginLike } from './koffi-plugin';
export { addonPlugin } from './addon-plugin';
export { bundleApplication, buildSea, addToSeaConfig, seaAssets, defaultSeaRoute, type BundleOptions, type EsbuildPlugin, type SeaOptions, type SeaRoute } from './single-file';
export { writeEmbeddedModule } from './embed';

/// <reference types="node" preserve="true" />
// The declarations use Node's types (Buffer, fs.Stats): a consumer's compiler gets
// them from @types/node, a dependency, whatever its `types` option says.
/**
 * dlbundle's build-time surface (`dlbundle/build`): packing and single-file
 * builds. Kept apart from the run-time entry point so that an application
 * bundled into one file does not carry the build tools.
 */
export { pack, type PackOptions, type PackResult } from '../pack';
export { koffiPlugin, type EsbuildPluginLike } from './koffi-plugin';
export { bundleApplication, buildSea, addToSeaConfig, seaAssets, defaultSeaRoute, type SeaOptions, type SeaRoute } from './single-file';
export { writeEmbeddedModule } from './embed';

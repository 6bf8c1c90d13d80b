/**
 * The build configuration file of `dlbundle bundle` and `dlbundle sea`
 * (`--config FILE`): a CommonJS or ES module whose exports (or default
 * export) are `{ plugins: [...] }`, esbuild plugins run after dlbundle's.
 * Only what a CLI cannot take as a flag (functions) lives there.
 */
import path = require('node:path');
import { pathToFileURL } from 'node:url';
import { DlbundleError } from '../errors';
import type { EsbuildPlugin } from './single-file';

/** What a configuration file gives. */
export interface BuildConfig {
  readonly plugins: readonly EsbuildPlugin[];
}

/**
 * Loads `file` (relative to the working directory). `E_USAGE` names the file
 * when it cannot be loaded or does not have the expected shape.
 *
 * @example
 * const { plugins } = await loadBuildConfig('dlbundle.config.mjs');
 */
export async function loadBuildConfig(file: string): Promise<BuildConfig> {
  const at = path.resolve(file);
  let loaded: Record<string, unknown>;
  try {
    // import() takes CommonJS and ES modules alike; a CommonJS module's exports are its default.
    loaded = (await import(pathToFileURL(at).href)) as Record<string, unknown>;
  } catch (e) {
    throw new DlbundleError('E_USAGE', `Could not load the build configuration ${JSON.stringify(file)}: ${(e as Error).message}`, 'Pass a .js, .cjs or .mjs file that exports { plugins: [...] }.', { file, cause: e });
  }
  const config = (typeof loaded.default === 'object' && loaded.default !== null ? loaded.default : loaded) as Record<string, unknown>;
  const plugins = config.plugins ?? [];
  if (!Array.isArray(plugins) || !plugins.every((p: unknown) => typeof p === 'object' && p !== null && typeof (p as EsbuildPlugin).name === 'string' && typeof (p as EsbuildPlugin).setup === 'function')) {
    throw new DlbundleError('E_USAGE', `The build configuration ${JSON.stringify(file)} has no valid "plugins": it must be an array of esbuild plugins ({ name, setup }).`, 'Export { plugins: [myPlugin()] } (module.exports or export default).', { file });
  }
  return { plugins: plugins as EsbuildPlugin[] };
}

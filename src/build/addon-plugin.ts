/**
 * An esbuild plugin for single-file builds of applications whose packages
 * load their own `.node` file (sharp, onnxruntime-node, duckdb): each such
 * require becomes a call that asks `bundle.provideAddons()` for the addon by
 * its base name, so the addon and its libraries come from the bundle — in a
 * single executable, whose `require` knows only Node's built-in modules, as
 * in a plain bundle.
 *
 * esbuild meets two kinds of require:
 * - a literal path (`require('@duckdb/node-bindings-linux-x64/duckdb.node')`):
 *   resolved as esbuild would; a path that resolves to JavaScript (sharp's
 *   `@img/sharp-linux-x64/sharp.node` is an `exports` entry for index.cjs) is
 *   left alone, anything else is redirected;
 * - a computed one (onnxruntime's
 *   `` require(`../bin/napi-v6/${process.platform}/${process.arch}/onnxruntime_binding.node`) ``),
 *   which esbuild turns into a glob of files it cannot load: the importing
 *   module's source is rewritten when it is loaded, before esbuild sees it.
 */
import fs = require('node:fs');
import path = require('node:path');
import { ADDON_HOOKS_KEY } from '../provide-addons';

/** The part of esbuild's plugin interface this plugin uses. */
interface PluginBuild {
  onResolve(
    options: { filter: RegExp; namespace?: string },
    callback: (args: { path: string; importer: string; resolveDir: string; kind: string; pluginData?: unknown }) => Promise<{ path: string; namespace?: string; external?: boolean } | undefined> | { path: string; namespace?: string } | undefined,
  ): void;
  onLoad(options: { filter: RegExp; namespace?: string }, callback: (args: { path: string }) => { contents: string; loader: 'js'; resolveDir: string } | undefined): void;
  resolve(path: string, options: { kind: 'require-call'; resolveDir: string; importer: string; pluginData: unknown }): Promise<{ path: string; errors: readonly unknown[] }>;
}

const NAMESPACE = 'dlbundle-addon';
// The module every redirected require calls, by this specifier.
const PROVIDED = 'dlbundle:provided-addon';
const PROBE = Symbol('dlbundle-addon-probe');

// require( `…${…}….node` ) or require( a + '….node' ): a computed path ending in .node.
const COMPUTED_REQUIRE = /\brequire\s*\(\s*(`[^`]*\$\{[^`]*\.node`|[^()`;]*?\+\s*(?:'[^'\n]*\.node'|"[^"\n]*\.node"))\s*\)/g;

/**
 * The plugin. `dlbundle bundle` and `dlbundle sea` use it; with esbuild's API:
 *
 * @example
 * await esbuild.build({ entryPoints: ['app.js'], bundle: true, platform: 'node', outfile: 'app.cjs', plugins: [koffiPlugin(), addonPlugin()] });
 */
export function addonPlugin(): { readonly name: string; setup(build: PluginBuild): void } {
  // dlbundle's own files and koffi's are left to koffiPlugin.
  const own = path.resolve(__dirname, '..');
  const skip = (file: string): boolean => file.startsWith(own + path.sep) || /[\\/]node_modules[\\/]koffi[\\/]/.test(file);
  return {
    name: NAMESPACE,
    setup(build) {
      build.onResolve({ filter: new RegExp(`^${PROVIDED}$`) }, () => ({ path: 'provided', namespace: NAMESPACE }));
      build.onResolve({ filter: /\.node$/ }, async (args) => {
        if (args.pluginData === PROBE || skip(args.importer)) return undefined;
        const found = await build.resolve(args.path, { kind: 'require-call', resolveDir: args.resolveDir, importer: args.importer, pluginData: PROBE });
        if (found.errors.length === 0 && /\.[cm]?js$/.test(found.path)) return undefined;
        return { path: path.basename(found.errors.length === 0 ? found.path : args.path), namespace: NAMESPACE };
      });
      build.onLoad({ filter: /\.[cm]?js$/, namespace: 'file' }, (args) => {
        if (skip(args.path)) return undefined;
        const source = fs.readFileSync(args.path, 'utf8');
        if (!source.includes('.node')) return undefined;
        const rewritten = source.replace(COMPUTED_REQUIRE, (_, request: string) => `require(${JSON.stringify(PROVIDED)})(${request})`);
        return rewritten === source ? undefined : { contents: rewritten, loader: 'js', resolveDir: path.dirname(args.path) };
      });
      build.onLoad({ filter: /.*/, namespace: NAMESPACE }, (args) => ({
        contents: args.path === 'provided' ? providedModule(path.join(own, 'index.js')) : `module.exports = require(${JSON.stringify(PROVIDED)})(${JSON.stringify(args.path)});\n`,
        loader: 'js',
        resolveDir: own,
      }));
    },
  };
}

/**
 * The run-time side: loads the addon through `process.dlopen`, which
 * `provideAddons()` serves by base name. It first asks the installed hooks
 * (their process-wide state, see provide-addons.ts) whether any serves the
 * name, so that "no bundle provides it" is said as such, and a failure of the
 * addon itself reaches the caller unchanged.
 */
function providedModule(dlbundle: string): string {
  return `'use strict';
module.exports = function dlbundleProvidedAddon(request) {
  const name = String(request).split(/[\\\\/]/).pop();
  const hooks = globalThis[Symbol.for(${JSON.stringify(ADDON_HOOKS_KEY)})];
  if (hooks === undefined || ![...hooks.providers].some((serves) => serves(name))) {
    const { DlbundleError } = require(${JSON.stringify(dlbundle)});
    throw new DlbundleError('E_USAGE', 'The single-file build left ' + JSON.stringify(String(request)) + ' to bundle.provideAddons(), but no bundle provides ' + JSON.stringify(name) + '.', 'Call provideAddons() on the bundle that carries ' + name + ' (dlbundle pack --package) before the package is required.', { file: name });
  }
  const module = { exports: {} };
  process.dlopen(module, '/dlbundle-provided-addon/' + name);
  return module.exports;
};
`;
}

/**
 * An esbuild plugin for bundling an application that uses dlbundle (and so
 * koffi) into one file: koffi's static loader, which `require`s
 * `@koromix/koffi-<platform>/…/koffi.node` from node_modules, is replaced by
 * dlbundle's `loadKoffiNative`, which takes koffi.node from the SEA assets or
 * the generated module and loads it through the cache; and Electron's
 * `original-fs` is left to Electron.
 */
import path = require('node:path');

/** The part of esbuild's plugin interface this plugin uses (esbuild is an optional dependency). */
export interface EsbuildPluginLike {
  readonly name: string;
  setup(build: {
    onResolve(options: { filter: RegExp }, callback: (args: { path: string; importer: string }) => { path: string; namespace?: string; external?: boolean } | undefined): void;
    onLoad(options: { filter: RegExp; namespace?: string }, callback: () => { contents: string; loader: 'js'; resolveDir: string }): void;
  }): void;
}

const NAMESPACE = 'dlbundle-koffi';

/**
 * The plugin. Use it with esbuild's JavaScript API (`dlbundle bundle` and
 * `dlbundle sea` do):
 *
 * @example
 * await esbuild.build({ entryPoints: ['app.js'], bundle: true, platform: 'node', outfile: 'app.cjs', plugins: [koffiPlugin()] });
 */
export function koffiPlugin(): EsbuildPluginLike {
  // dlbundle's run-time entry (dist/index.js), the file an application's
  // require('dlbundle') resolves to: the bundle then holds one copy of the run
  // time, which loads koffi.node and the application's libraries alike.
  const loader = path.join(__dirname, '..', 'index.js');
  return {
    name: NAMESPACE,
    setup(build) {
      // koffi's entry (…/koffi/src/koffi/index.cjs) requires "./src/static.cjs".
      build.onResolve({ filter: /^\.\/src\/static\.cjs$/ }, (args) =>
        /[\\/]koffi[\\/]/.test(args.importer) ? { path: 'static-loader', namespace: NAMESPACE } : undefined,
      );
      // Electron's unpatched fs, which dlbundle's asar reader uses only inside Electron.
      build.onResolve({ filter: /^original-fs$/ }, () => ({ path: 'original-fs', external: true }));
      build.onLoad({ filter: /.*/, namespace: NAMESPACE }, () => ({
        contents: `module.exports = { loadStatic: () => require(${JSON.stringify(loader)}).loadKoffiNative() };\n`,
        loader: 'js',
        resolveDir: path.dirname(loader),
      }));
    },
  };
}

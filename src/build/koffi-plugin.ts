/**
 * An esbuild plugin for bundling an application that uses dlbundle (and so
 * koffi) into one file: koffi's static loader, which `require`s
 * `@koromix/koffi-<platform>/…/koffi.node` from node_modules, is replaced by
 * dlbundle's `loadKoffiNative`, which takes koffi.node from the SEA assets or
 * the generated module and loads it through the cache; Electron's
 * `original-fs` is left to Electron; and `debug`'s optional
 * `require('supports-color')`, when that package is not installed, becomes an
 * empty module instead of a require left for run time, which in a single
 * executable makes Node print a warning on every start with `DEBUG` set.
 */
import path = require('node:path');

/** The part of esbuild's plugin interface this plugin uses (esbuild is an optional dependency). */
export interface EsbuildPluginLike {
  readonly name: string;
  setup(build: {
    onResolve(options: { filter: RegExp }, callback: (args: { path: string; importer: string; resolveDir: string }) => { path: string; namespace?: string; external?: boolean } | undefined): void;
    onLoad(options: { filter: RegExp; namespace?: string }, callback: (args: { path: string }) => { contents: string; loader: 'js'; resolveDir: string }): void;
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
      // debug (which dlbundle loads only when DEBUG is set) treats a missing supports-color as null.
      build.onResolve({ filter: /^supports-color$/ }, (args) =>
        /[\\/]debug[\\/]/.test(args.importer) && !resolvable(args.path, args.resolveDir) ? { path: 'no-supports-color', namespace: NAMESPACE } : undefined,
      );
      build.onLoad({ filter: /.*/, namespace: NAMESPACE }, (args) => ({
        contents: args.path === 'no-supports-color' ? 'module.exports = null;\n' : `module.exports = { loadStatic: () => require(${JSON.stringify(loader)}).loadKoffiNative() };\n`,
        loader: 'js',
        resolveDir: path.dirname(loader),
      }));
    },
  };
}

function resolvable(request: string, from: string): boolean {
  try {
    require.resolve(request, { paths: [from] });
    return true;
  } catch (e) {
    // Not installed where the importer would find it.
    if ((e as NodeJS.ErrnoException).code === 'MODULE_NOT_FOUND') return false;
    throw e;
  }
}

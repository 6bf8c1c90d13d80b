/**
 * `bundle.provideAddons()`: a package's own `require('…/x.node')` (and a
 * direct `process.dlopen`) served from a bundle, so packages such as sharp,
 * onnxruntime-node or duckdb run unchanged with their native files in the
 * bundle instead of in node_modules — their companion libraries loaded first,
 * in dependency order, from the cache or from memory files.
 *
 * Two hooks, both keyed on the base name of the path asked for:
 * - `process.dlopen`, which Node's own `.node` loader calls: whatever path a
 *   package resolved, a bundled name loads the bundle's copy. The bundle's
 *   own dlopen of that copy passes through (see `bypassingAddonHooks`).
 * - `Module._resolveFilename`: where resolution fails because the file is not
 *   on disk (removed from node_modules, or never there: a single executable),
 *   a bundled name resolves to the path that was asked for, and loading it
 *   then goes through the hook above. A file that exists resolves as usual.
 */
import Module = require('node:module');
import path = require('node:path');

/** What the hooks need of a bundle: its addon names (read on first need) and the loader of one. */
export interface AddonProvider {
  /** The bundled `.node` file whose name is `basename`, or undefined. */
  addonNamed(basename: string): string | undefined;
  /** The addon's exports, loaded once per process after its libraries. */
  addon(name: string): unknown;
}

type ResolveFilename = (request: string, parent: unknown, isMain: boolean, options?: unknown) => string;
type Dlopen = (module: { exports: unknown }, filename: string, flags?: number) => void;

interface ModuleInternals {
  _resolveFilename: ResolveFilename;
}

// Set while a bundle loads its own copy of an addon (loader.ts, through
// {@link bypassingAddonHooks}), so that its process.dlopen of the bundled file
// goes to Node instead of being served again by a hook. Shared by every copy
// of dlbundle in the process, as the hooks chain across them.
interface HookState {
  passing: number;
  /**
   * Whether each installed hook serves a base name: what a single-file
   * build's redirected require (build/addon-plugin.ts) asks before it
   * dlopens by name, to tell "no bundle provides it" from a failure of the
   * addon itself.
   */
  readonly providers: Set<(basename: string) => boolean>;
}

/** The `Symbol.for` key of the process-wide {@link HookState}. */
export const ADDON_HOOKS_KEY = 'dlbundle.provideAddons';
const STATE_KEY = Symbol.for(ADDON_HOOKS_KEY);

function state(): HookState {
  const g = globalThis as unknown as Record<symbol, HookState | undefined>;
  g[STATE_KEY] ??= { passing: 0, providers: new Set() };
  return g[STATE_KEY];
}

/**
 * Runs `load` (a bundle's own process.dlopen of an addon) with the hooks
 * passing through to Node.
 *
 * @example
 * bypassingAddonHooks(() => process.dlopen(module, at));
 */
export function bypassingAddonHooks<T>(load: () => T): T {
  const s = state();
  s.passing++;
  try {
    return load();
  } finally {
    s.passing--;
  }
}


/**
 * Installs the hooks for `provider`; returns the function that removes them.
 * Hooks installed later (another bundle, another tool) stay in place: a hook
 * that is no longer the outermost is switched off instead of unwrapped.
 *
 * @example
 * const undo = provideAddons(bundle);
 * require('sharp'); // its sharp-linux-x64-0.35.5.node comes from the bundle
 * undo();
 */
export function provideAddons(provider: AddonProvider): () => void {
  const internals = Module as unknown as ModuleInternals;
  const originalResolve = internals._resolveFilename;
  const originalDlopen = process.dlopen as Dlopen;
  let active = true;

  const hooks = state();
  const served = (file: string): string | undefined => (active && hooks.passing === 0 && file.endsWith('.node') ? provider.addonNamed(path.basename(file)) : undefined);
  const serves = (basename: string): boolean => active && provider.addonNamed(basename) !== undefined;

  const resolveFilename: ResolveFilename = function (this: unknown, request, parent, isMain, options) {
    try {
      return originalResolve.call(this, request, parent, isMain, options);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'MODULE_NOT_FOUND') throw e;
      if (served(request) !== undefined) return wouldBePath(request, parent);
      // A package's `exports` can map a subpath to a file that is missing;
      // Node's error then names the resolved path, whose base name may be bundled.
      const resolved = /Cannot find module '([^']+\.node)'/.exec((e as Error).message)?.[1];
      if (resolved !== undefined && path.isAbsolute(resolved) && served(resolved) !== undefined) return resolved;
      throw e;
    }
  };

  const dlopen: Dlopen = function (this: unknown, module, filename, flags) {
    const name = served(filename);
    if (name === undefined) {
      originalDlopen.call(this, module, filename, ...(flags === undefined ? [] : [flags]));
      return;
    }
    module.exports = provider.addon(name);
  };

  internals._resolveFilename = resolveFilename;
  process.dlopen = dlopen as typeof process.dlopen;
  hooks.providers.add(serves);
  return () => {
    active = false;
    hooks.providers.delete(serves);
    if (internals._resolveFilename === resolveFilename) internals._resolveFilename = originalResolve;
    if ((process.dlopen as Dlopen) === dlopen) process.dlopen = originalDlopen as typeof process.dlopen;
  };
}

/** The absolute path a relative or absolute request names, from its parent; a bare one stays as written (it is only a cache key). */
function wouldBePath(request: string, parent: unknown): string {
  if (path.isAbsolute(request)) return request;
  const from = (parent as { filename?: unknown } | null)?.filename;
  if (/^\.\.?[\\/]/.test(request) && typeof from === 'string') return path.resolve(path.dirname(from), request);
  return request;
}

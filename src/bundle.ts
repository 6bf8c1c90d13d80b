/**
 * `openBundle`: the run-time object that ties the boxes together — source →
 * variant → cache → plan → loader → symbols. Opening a bundle does nothing;
 * the first symbol touched (or `ready()`) reads the manifest, materializes the
 * variant and loads the libraries that symbol needs, in dependency order.
 */
import { logger } from './log';
import { saveCodeCacheLater } from './code-cache';
import type { VerifyMode } from './cache';
import { DlbundleError, isDlbundleError, type DlbundleErrorCode } from './errors';
import { loadAddon, loadFile, runningGlibcVersion, type LoadedAddon, type LoadedLibrary } from './loader';
import { provideAddons as installAddonHooks } from './provide-addons';
import { variantGraph, type Manifest, type ManifestFile, type ManifestVariant } from './manifest';
import { Placer, type PlacementTarget } from './placement';
import { checkBeforeLoad, dependencyClosure, type DependencyGraph } from './plan';
import type { RootFallback } from './roots';
import type { Source, SourceKind } from './sources/source';
import { bindLibrary, type BoundLibrary, type SymbolDeclarations } from './symbols';
import { systemSearch, type SystemSearch } from './system-search';
import { systemVersionOracle, type VersionOracle } from './system-versions';
import { hostTarget, selectVariant, targetLibraries } from './variant';

const debug = logger('dlbundle:plan');

/** Options of {@link openBundle}. */
export interface OpenBundleOptions {
  /** Where the manifest and blobs come from: `fromDirectory(…)`, `fromBuffers(…)`, … */
  readonly source: Source;
  /** The preferred cache root; default `$DLBUNDLE_CACHE_DIR`, else `<tmpdir>/dlbundle-<uid>`. */
  readonly cacheDir?: string;
  /**
   * `'auto'` (default): a cache directory, or memory files (Linux memfd) when
   * no cache root can be used; `'disk'`: a cache directory or an error;
   * `'memory'`: memory files only, nothing written to disk.
   */
  readonly mode?: 'auto' | 'disk' | 'memory';
  /** `'size'` (default) checks sizes when reusing a directory; `'full'` re-hashes every file. */
  readonly verify?: VerifyMode;
  /** File names to load with RTLD_GLOBAL, so later libraries can bind to their symbols. */
  readonly global?: readonly string[];
}

/** One loaded library in {@link BundleReport}. */
export interface LibraryReport {
  readonly name: string;
  readonly path: string;
  readonly size: number;
  readonly xxh64: string;
  /** Loaded libraries of this bundle that need this one. */
  readonly neededBy: readonly string[];
  /** Milliseconds its `dlopen` took (0 when `shared`). */
  readonly ms: number;
  /**
   * Where the loaded copy is: a cache directory, the source's own directory,
   * or a memory file. When `shared`, this is where the earlier bundle placed
   * it, which can differ from this bundle's `mode`.
   */
  readonly from: 'disk' | 'in-place' | 'memory';
  /** Whether this process had already loaded the same library (same content and soname), through another bundle, and that copy was reused. */
  readonly shared: boolean;
  /** Whether it is a Node addon (`.node`, loaded by `addon()` or a require served by `provideAddons()`) rather than a library opened through koffi. */
  readonly addon: boolean;
}

/** What {@link Bundle.explain} returns: a plain object, safe to log as JSON. */
export interface BundleReport {
  readonly source: { readonly kind: SourceKind; readonly location: string; readonly reason: string | null };
  /** The variant key chosen, with the reason; null before first use. */
  readonly variant: string | null;
  readonly variantReason: string | null;
  readonly root: string | null;
  readonly dir: string | null;
  /** Whether an existing directory was reused; null before first use. */
  readonly reused: boolean | null;
  readonly fallbacks: readonly RootFallback[];
  readonly libraries: readonly LibraryReport[];
  /**
   * Where this bundle places its files: `'disk'` (the cache), `'in-place'`
   * (the source's own files) or `'memory'` (memfd); null before first use.
   * A library already loaded by another bundle is reused from wherever that
   * one placed it: see `libraries[].from` and `shared`.
   */
  readonly mode: 'disk' | 'in-place' | 'memory' | null;
  /**
   * Bundled files that cannot work fully as loaded, and why: in memory mode,
   * and libraries reused from a memory file that another bundle of this
   * process loaded.
   */
  readonly limitations: readonly { readonly name: string; readonly reason: string }[];
  /**
   * Set when this process could not record that it uses `dir` (a root on a
   * read-only file system): why, and that `dlbundle cache prune` cannot see
   * the use, so it cannot protect the directory once the root is writable again.
   */
  readonly unprotected?: string;
}

/** A bundle of native libraries, loaded on first use. */
export interface Bundle {
  /**
   * Typed functions of one bundled library, bound on first access. Each
   * declaration is a C prototype; its TypeScript type is inferred from it.
   *
   * @example
   * const core = bundle.library('libdemo_core.so', { add: 'int add(int a, int b)' });
   * core.add(2, 3); // 5
   */
  library<const D extends SymbolDeclarations>(name: string, symbols: D): BoundLibrary<D>;
  /**
   * Loads a bundled Node addon (`.node`) with `process.dlopen`, after the
   * bundled libraries it needs, and returns its exports.
   *
   * @example
   * const demo = bundle.addon<{ add(a: number, b: number): number }>('demo.node');
   */
  addon<T = unknown>(name: string): T;
  /**
   * From now on, a `require()` or `process.dlopen` of any path whose base
   * name is one of the bundle's `.node` files returns that addon, loaded
   * from the bundle after its libraries, once per process — whether or not
   * the file exists at that path. Packages that find their own `.node` by a
   * fixed relative path (sharp, onnxruntime-node, duckdb) then run unchanged
   * with their native files only in the bundle. Works for CommonJS and for
   * ES modules that use `createRequire`. Reads the manifest now (E_USAGE when
   * the bundle has no `.node` file); returns the function that undoes it.
   *
   * @example
   * const undo = bundle.provideAddons();
   * const sharp = require('sharp'); // sharp-linux-x64-0.35.5.node and libvips come from the bundle
   */
  provideAddons(): () => void;
  /**
   * A library that may not work on this machine (an accelerator that needs a
   * GPU runtime, a CPU feature): loads and binds it now, and answers
   * `{ ok: true, lib }` or `{ ok: false, code, reason, missing }` instead of
   * throwing for a missing external dependency (`missing` names them all), a
   * system too old for it (`E_SYSTEM_TOO_OLD`: `missing` names the symbol
   * version), a wrong machine, a failed dlopen or a missing symbol (`missing`
   * names it). External dependencies and glibc / libstdc++ versions are
   * checked before any dlopen. The answer is remembered for the life of the
   * process.
   *
   * @example
   * const accel = bundle.optional('libdemo_accel.so', { run: 'int accel_run(int x)' });
   * if (accel.ok) accel.lib.run(3); else console.log(accel.reason);
   */
  optional<const D extends SymbolDeclarations>(name: string, symbols: D): OptionalLibrary<D>;
  /** Materializes and loads every library declared so far, without blocking the event loop on file I/O. */
  ready(): Promise<void>;
  /** Where things are and what was loaded; see {@link BundleReport}. */
  explain(): BundleReport;
  /** The bundle directory on disk once materialized (plugins wait there), else null. */
  readonly dir: string | null;
}

/** What {@link Bundle.optional} answers. */
export type OptionalLibrary<D extends SymbolDeclarations> =
  | { readonly ok: true; readonly lib: BoundLibrary<D> }
  | {
      readonly ok: false;
      /** `E_MISSING_DEP`, `E_SYSTEM_TOO_OLD`, `E_WRONG_ARCH`, `E_NO_VARIANT`, `E_LOAD_FAILED`, `E_NOEXEC`, `E_MISSING_SYMBOL`. */
      readonly code: DlbundleErrorCode;
      /** A sentence saying why, naming the dependency, version or symbol. */
      readonly reason: string;
      /** The missing dependencies (E_MISSING_DEP), symbol version (E_SYSTEM_TOO_OLD, e.g. `GLIBC_2.38`) or symbol (E_MISSING_SYMBOL); empty otherwise. */
      readonly missing: readonly string[];
    };

// The failures optional() answers instead of throwing: the library cannot
// work on this machine. Anything else (a damaged bundle, a typo in a name or
// a prototype) is the program's or the package's fault and is thrown.
const OPTIONAL_FAILURES: ReadonlySet<DlbundleErrorCode> = new Set(['E_MISSING_DEP', 'E_SYSTEM_TOO_OLD', 'E_WRONG_ARCH', 'E_NO_VARIANT', 'E_LOAD_FAILED', 'E_NOEXEC', 'E_MISSING_SYMBOL']);

interface Resolved extends PlacementTarget {
  readonly manifest: Manifest;
  readonly key: string;
  readonly reason: string;
  readonly variant: ManifestVariant;
  readonly graph: DependencyGraph<ManifestFile>;
}

/**
 * Opens a bundle. Nothing is read, extracted or loaded until a symbol is
 * first touched or `ready()` is called.
 *
 * @example
 * const bundle = openBundle({ source: fromDirectory(path.join(__dirname, 'native')) });
 */
export function openBundle(options: OpenBundleOptions): Bundle {
  return new LazyBundle(options);
}

class LazyBundle implements Bundle {
  private resolved: Resolved | undefined;
  /** Where the files are: decided on first use (placement.ts). */
  private readonly placer: Placer;
  private readonly loaded = new Map<string, LoadedLibrary>();
  private readonly addons = new Map<string, LoadedAddon>();
  private readonly declared = new Set<string>();

  constructor(private readonly options: OpenBundleOptions) {
    this.placer = new Placer(options);
  }

  get dir(): string | null {
    return this.placer.dir;
  }

  library<const D extends SymbolDeclarations>(name: string, symbols: D): BoundLibrary<D> {
    this.declared.add(name);
    return bindLibrary(name, symbols, () => this.loadSync(name));
  }

  addon<T = unknown>(name: string): T {
    const file = this.fileNamed(name);
    const r = this.resolve();
    this.placeSync();
    // The addon's own dlopen is Node's (process.dlopen), so that Node runs its
    // registration; only the libraries it needs go through koffi first.
    for (const dep of r.graph.bundledDeps.get(file.name) ?? []) this.load(dep);
    const search = this.systemSearch();
    checkBeforeLoad(r.graph, [file.name], this.machine(), (dep, f) => search.resolve(dep, f), this.versionOracle(), search.searched);
    const loaded = this.addons.get(file.name) ?? loadAddon(file, () => this.placer.locate(file, r));
    this.addons.set(file.name, loaded);
    return loaded.exports as T;
  }

  provideAddons(): () => void {
    const r = this.resolve();
    // Never koffi.node: dlbundle loads it itself, and served from here it would need itself to load.
    const names = new Set(r.variant.files.filter((f) => f.name.endsWith('.node') && f.name !== 'koffi.node').map((f) => f.name));
    if (names.size === 0) {
      throw new DlbundleError('E_USAGE', `Bundle ${JSON.stringify(r.manifest.name)} (${r.key}) has no .node file to provide.`, 'Pack the package\'s addons into it (dlbundle pack --package), or call provideAddons() on the bundle that has them.');
    }
    return installAddonHooks({ addonNamed: (basename) => (names.has(basename) ? basename : undefined), addon: (name) => this.addon(name) });
  }

  optional<const D extends SymbolDeclarations>(name: string, symbols: D): OptionalLibrary<D> {
    const remembered = optionalAnswers();
    let key: string;
    try {
      const r = this.resolve();
      key = `${r.manifest.name}/${r.variant.digest}/${this.fileNamed(name).name}/${JSON.stringify(symbols)}`;
    } catch (e) {
      return failedOptional(e);
    }
    const known = remembered.get(key);
    if (known !== undefined) return known as OptionalLibrary<D>;
    let answer: OptionalLibrary<D>;
    try {
      // Not through library(): ready() must not load an optional library and throw.
      const lib = bindLibrary(name, symbols, () => this.loadSync(name));
      this.loadSync(name);
      // Reading one property binds every declared symbol, so a missing one shows now.
      for (const sym of Object.keys(lib)) void (lib as Record<string, unknown>)[sym];
      answer = { ok: true, lib };
    } catch (e) {
      answer = isDlbundleError(e, 'E_MISSING_DEP') ? { ...failedOptional(e), missing: this.missingDependencies(name) } : failedOptional(e);
    }
    remembered.set(key, answer);
    return answer;
  }

  async ready(): Promise<void> {
    const r = this.resolve();
    // Names are checked before anything is extracted, as on the first touch.
    const names = [...this.declared].map((name) => this.fileNamed(name).name);
    if (this.placer.current === undefined) {
      await this.placer.placeAsync(r);
      saveCodeCacheLater();
    }
    for (const name of names) this.load(name);
  }

  explain(): BundleReport {
    const r = this.resolved;
    const libraries: LibraryReport[] = [];
    for (const lib of this.loaded.values()) {
      const file = r?.graph.nodes.get(lib.name);
      if (file === undefined || r === undefined) continue;
      const neededBy = [...r.graph.bundledDeps].filter(([user, deps]) => deps.includes(lib.name) && this.loaded.has(user)).map(([user]) => user);
      // An entry made by an older copy of dlbundle does not say where it is; its path does.
      const from = lib.from ?? (lib.path.startsWith('/proc/self/fd/') ? 'memory' : 'disk');
      libraries.push({ name: lib.name, path: lib.path, size: file.size, xxh64: file.xxh64, neededBy, ms: lib.ms, from, shared: lib.reused === true, addon: false });
    }
    for (const [name, addon] of this.addons) {
      const file = r?.graph.nodes.get(name);
      if (file === undefined) continue;
      const from = addon.from ?? (addon.path.startsWith('/proc/self/fd/') ? 'memory' : 'disk');
      libraries.push({ name, path: addon.path, size: file.size, xxh64: file.xxh64, neededBy: [], ms: addon.ms, from, shared: addon.reused, addon: true });
    }
    const placed = this.placer.report();
    return {
      source: { kind: this.options.source.kind, location: this.options.source.location, reason: this.options.source.reason ?? null },
      variant: r?.key ?? null,
      variantReason: r?.reason ?? null,
      mode: placed.mode,
      root: placed.root,
      dir: placed.dir,
      reused: placed.reused,
      fallbacks: placed.fallbacks,
      libraries,
      limitations: placed.mode === 'memory' && r !== undefined ? memoryLimitations(r, this.loaded) : sharedFromMemory(libraries),
      ...(placed.unprotected === undefined ? {} : { unprotected: placed.unprotected }),
    };
  }

  /** The synchronous first-touch path: the same steps as ready(), on synchronous I/O. */
  private loadSync(name: string): LoadedLibrary['handle'] {
    const file = this.fileNamed(name);
    this.placeSync();
    this.load(file.name);
    const lib = this.loaded.get(file.name);
    if (lib === undefined) throw new DlbundleError('E_LOAD_FAILED', `${JSON.stringify(name)} was not loaded.`, 'Report this as a dlbundle bug.', { file: name });
    return lib.handle;
  }

  /** Decides where the files are, materializing them synchronously on first use. */
  private placeSync(): void {
    if (this.placer.current === undefined) {
      this.placer.placeSync(this.resolve());
      saveCodeCacheLater();
    }
  }

  /**
   * Loads `name` and what it needs. A root that passed the mount check but
   * from which dlopen cannot map (E_NOEXEC) is given up, and the files are
   * placed anew in the next root — or in memory (placement.ts).
   */
  private load(name: string): void {
    for (;;) {
      try {
        this.loadClosure(name);
        return;
      } catch (e) {
        if (!this.placer.giveUpAfter(e)) throw e;
        this.placeSync();
      }
    }
  }

  private resolve(): Resolved {
    if (this.resolved !== undefined) return this.resolved;
    const manifest = this.options.source.manifest();
    const choice = selectVariant(Object.keys(manifest.variants), JSON.stringify(manifest.name));
    const variant = manifest.variants[choice.key] as ManifestVariant;
    debug('bundle %s: variant %s (%s)', manifest.name, choice.key, choice.reason);
    this.resolved = { manifest, key: choice.key, reason: choice.reason, variant, graph: variantGraph(variant), bundleName: manifest.name, variantKey: choice.key };
    return this.resolved;
  }

  /** A bundled file by file name or by soname; `E_UNKNOWN_LIBRARY` listing the bundle's files otherwise. */
  private fileNamed(name: string): ManifestFile {
    const r = this.resolve();
    const file = r.graph.nodes.get(name) ?? r.graph.providerOf(name);
    if (file === undefined) {
      throw new DlbundleError(
        'E_UNKNOWN_LIBRARY',
        `Bundle ${JSON.stringify(r.manifest.name)} (${r.key}) has no library ${JSON.stringify(name)}.`,
        `Use one of: ${r.variant.order.join(', ')}.`,
        { file: name },
      );
    }
    return file;
  }

  /** Loads `name` and its bundled dependencies, dependencies first, after checking machine and external dependencies. */
  private loadClosure(name: string): void {
    const r = this.resolve();
    const closure = dependencyClosure(r.graph, r.variant.order, name).filter((n) => !this.loaded.has(n));
    if (closure.length === 0) return;
    const search = this.systemSearch();
    checkBeforeLoad(r.graph, closure, this.machine(), (dep, f) => search.resolve(dep, f), this.versionOracle(), search.searched);
    const global = new Set(this.options.global ?? []);
    for (const n of closure) {
      const file = r.graph.nodes.get(n) as ManifestFile;
      this.loaded.set(n, loadFile(file, () => this.placer.locate(file, r), { global: global.has(n) }));
    }
  }

  /** Every external dependency of `name`'s closure that the system does not provide. */
  private missingDependencies(name: string): string[] {
    const r = this.resolve();
    const search = this.systemSearch();
    const missing = new Set<string>();
    for (const n of dependencyClosure(r.graph, r.variant.order, this.fileNamed(name).name)) {
      const file = r.graph.nodes.get(n) as ManifestFile;
      for (const dep of r.graph.externalDeps.get(n) ?? []) if (file.weakNeeded?.includes(dep) !== true && search.resolve(dep, file) === null) missing.add(dep);
    }
    return [...missing];
  }

  private machine(): string {
    // The machine of this target's libraries, by the names the readers give every format.
    return targetLibraries(hostTarget()).machine;
  }

  /** Looks external dependencies up the way the platform's linker will, from the bundle directory (none in memory). */
  private systemSearch(): SystemSearch {
    return systemSearch(this.dir ?? '');
  }

  /** What the system's glibc and libstdc++ offer the bundle's files, looked up as ld.so will. */
  private versionOracle(): VersionOracle<ManifestFile> {
    const graph = this.resolve().graph;
    const search = this.systemSearch();
    return systemVersionOracle({ bundled: (soname) => graph.providers.has(soname), resolve: (dep, f) => search.resolve(dep, f), runningGlibc: runningGlibcVersion }, { quick: true });
  }
}

const OPTIONAL_KEY = Symbol.for('dlbundle.optional.v1');

/** optional()'s answers for this process, shared by every bundle and copy of dlbundle. */
function optionalAnswers(): Map<string, unknown> {
  const g = globalThis as unknown as Record<symbol, Map<string, unknown> | undefined>;
  g[OPTIONAL_KEY] ??= new Map();
  return g[OPTIONAL_KEY];
}

function failedOptional(e: unknown): { ok: false; code: DlbundleErrorCode; reason: string; missing: string[] } {
  if (!isDlbundleError(e) || !OPTIONAL_FAILURES.has(e.code)) throw e;
  const missing =
    e.code === 'E_MISSING_DEP' && e.dependency !== undefined
      ? [e.dependency]
      : e.code === 'E_SYSTEM_TOO_OLD' && e.requiredVersion !== undefined
        ? [e.requiredVersion]
        : e.code === 'E_MISSING_SYMBOL' && e.symbol !== undefined
          ? [e.symbol]
          : [];
  return { ok: false, code: e.code, reason: e.message.split('\n')[0] ?? e.message, missing };
}

/**
 * A bundle with a directory that was handed libraries another bundle loaded
 * from memory files: ld.so takes `$ORIGIN` and the library's own directory
 * from the path it was opened by (`/proc/self/fd`), not from this bundle's
 * directory.
 */
function sharedFromMemory(libraries: readonly LibraryReport[]): { name: string; reason: string }[] {
  return libraries
    .filter((l) => l.shared && l.from === 'memory')
    .map((l) => ({ name: l.name, reason: `another bundle of this process had already loaded it from a memory file (${l.path}), and that copy is used: its $ORIGIN and the files it opens from its own directory (plugins) are not this bundle's directory` }));
}

/**
 * What cannot work when the libraries have no directory: `$ORIGIN` in a
 * RUNPATH, and files that no bundled library needs and the program has not
 * loaded — plugins, which a library typically opens by path from its own
 * directory.
 */
function memoryLimitations(r: Resolved, loaded: ReadonlyMap<string, unknown>): { name: string; reason: string }[] {
  const needed = new Set([...r.graph.bundledDeps.values()].flat());
  const out: { name: string; reason: string }[] = [];
  for (const f of r.variant.files) {
    // $ORIGIN matters only for a bundled dependency the dynamic linker would
    // look for there; dlbundle loads those first, so once they are loaded
    // the RUNPATH is never consulted for them.
    const unloaded = (r.graph.bundledDeps.get(f.name) ?? []).filter((d) => !loaded.has(d));
    if (unloaded.length > 0 && f.runpath.some((d) => d.includes('$ORIGIN') || d.includes('${ORIGIN}'))) {
      out.push({ name: f.name, reason: `its RUNPATH uses $ORIGIN, which has no directory in memory mode, to find ${unloaded.join(', ')}, not loaded yet` });
    } else if (!needed.has(f.name) && !loaded.has(f.name) && !f.name.endsWith('.node')) {
      out.push({ name: f.name, reason: 'no bundled library needs it, so it is probably opened by path from a directory at run time (a plugin): in memory mode it is not on disk' });
    }
  }
  return out;
}

/**
 * `openBundle`: the run-time object that ties the boxes together — source →
 * variant → cache → plan → loader → symbols. Opening a bundle does nothing;
 * the first symbol touched (or `ready()`) reads the manifest, materializes the
 * variant and loads the libraries that symbol needs, in dependency order.
 */
import createDebug from 'debug';
import { place, cacheRoots, type CacheRequest, type CacheResult, type RootFallback, type VerifyMode } from './cache';
import { DlbundleError } from './errors';
import { asyncIo, runAsync, runSync, syncIo } from './io';
import { loadAddon, loadFile, type LoadedLibrary } from './loader';
import type { Manifest, ManifestFile, ManifestVariant } from './manifest';
import { checkBeforeLoad, dependencyClosure, dependencyGraph, type DependencyGraph } from './plan';
import type { Source, SourceKind } from './sources/source';
import { bindLibrary, type BoundLibrary, type SymbolDeclarations } from './symbols';
import { resolveSystemLibrary } from './system-libs';
import { hostTarget, selectVariant, targetFacts } from './variant';

const debug = createDebug('dlbundle:plan');

/** Options of {@link openBundle}. */
export interface OpenBundleOptions {
  /** Where the manifest and blobs come from: `fromDirectory(…)`, `fromBuffers(…)`, … */
  readonly source: Source;
  /** The preferred cache root; default `$DLBUNDLE_CACHE_DIR`, else `<tmpdir>/dlbundle-<uid>`. */
  readonly cacheDir?: string;
  /** `'disk'` (default) extracts into a cache directory. */
  readonly mode?: 'auto' | 'disk';
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
  /** Milliseconds its `dlopen` took. */
  readonly ms: number;
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
  /** Materializes and loads every library declared so far, without blocking the event loop on file I/O. */
  ready(): Promise<void>;
  /** Where things are and what was loaded; see {@link BundleReport}. */
  explain(): BundleReport;
  /** The bundle directory on disk once materialized (plugins wait there), else null. */
  readonly dir: string | null;
}

interface Resolved {
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
  private placed: CacheResult | undefined;
  private readonly loaded = new Map<string, LoadedLibrary>();
  private readonly declared = new Set<string>();

  constructor(private readonly options: OpenBundleOptions) {}

  get dir(): string | null {
    return this.placed?.dir ?? null;
  }

  library<const D extends SymbolDeclarations>(name: string, symbols: D): BoundLibrary<D> {
    this.declared.add(name);
    return bindLibrary(name, symbols, () => this.loadSync(name));
  }

  addon<T = unknown>(name: string): T {
    const file = this.fileNamed(name);
    const dir = this.placeSync();
    const r = this.resolve();
    // The addon's own dlopen is Node's (process.dlopen), so that Node runs its
    // registration; only the libraries it needs go through koffi first.
    for (const dep of r.graph.bundledDeps.get(file.name) ?? []) this.loadClosure(dep, dir);
    checkBeforeLoad(r.graph, [file.name], this.machine(), this.systemResolver(dir));
    return loadAddon(file, dir) as T;
  }

  async ready(): Promise<void> {
    const r = this.resolve();
    // Names are checked before anything is extracted, as on the first touch.
    const names = [...this.declared].map((name) => this.fileNamed(name).name);
    if (this.placed === undefined) {
      const placed = await runAsync(place(asyncIo, this.cacheRequest(r)));
      this.placed ??= placed;
    }
    for (const name of names) this.loadClosure(name, this.placed.dir);
  }

  explain(): BundleReport {
    const r = this.resolved;
    const libraries: LibraryReport[] = [];
    for (const lib of this.loaded.values()) {
      const file = r?.graph.nodes.get(lib.name);
      if (file === undefined || r === undefined) continue;
      const neededBy = [...r.graph.bundledDeps].filter(([user, deps]) => deps.includes(lib.name) && this.loaded.has(user)).map(([user]) => user);
      libraries.push({ name: lib.name, path: lib.path, size: file.size, xxh64: file.xxh64, neededBy, ms: lib.ms });
    }
    return {
      source: { kind: this.options.source.kind, location: this.options.source.location, reason: this.options.source.reason ?? null },
      variant: r?.key ?? null,
      variantReason: r?.reason ?? null,
      root: this.placed?.root ?? null,
      dir: this.placed?.dir ?? null,
      reused: this.placed?.reused ?? null,
      fallbacks: this.placed?.fallbacks ?? [],
      libraries,
    };
  }

  /** The synchronous first-touch path: the same steps as ready(), on synchronous I/O. */
  private loadSync(name: string): LoadedLibrary['handle'] {
    const file = this.fileNamed(name);
    this.loadClosure(file.name, this.placeSync());
    const lib = this.loaded.get(file.name);
    if (lib === undefined) throw new DlbundleError('E_LOAD_FAILED', `${JSON.stringify(name)} was not loaded.`, 'Report this as a dlbundle bug.', { file: name });
    return lib.handle;
  }

  /** The directory the variant's files are in, materializing it synchronously on first use. */
  private placeSync(): string {
    this.placed ??= runSync(place(syncIo, this.cacheRequest(this.resolve())));
    return this.placed.dir;
  }

  private resolve(): Resolved {
    if (this.resolved !== undefined) return this.resolved;
    const manifest = this.options.source.manifest();
    const choice = selectVariant(Object.keys(manifest.variants), JSON.stringify(manifest.name));
    const variant = manifest.variants[choice.key] as ManifestVariant;
    debug('bundle %s: variant %s (%s)', manifest.name, choice.key, choice.reason);
    this.resolved = { manifest, key: choice.key, reason: choice.reason, variant, graph: dependencyGraph(variant.files) };
    return this.resolved;
  }

  /** A bundled file by file name or by soname; `E_UNKNOWN_LIBRARY` listing the bundle's files otherwise. */
  private fileNamed(name: string): ManifestFile {
    const r = this.resolve();
    const file = r.graph.nodes.get(name) ?? r.graph.providers.get(name);
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

  private cacheRequest(r: Resolved): CacheRequest {
    return {
      bundleName: r.manifest.name,
      variantKey: r.key,
      variant: r.variant,
      source: this.options.source,
      roots: cacheRoots(this.options.cacheDir),
      verify: this.options.verify ?? 'size',
    };
  }

  /** Loads `name` and its bundled dependencies, dependencies first, after checking machine and external dependencies. */
  private loadClosure(name: string, dir: string): void {
    const r = this.resolve();
    const closure = dependencyClosure(r.graph, r.variant.order, name).filter((n) => !this.loaded.has(n));
    if (closure.length === 0) return;
    checkBeforeLoad(r.graph, closure, this.machine(), this.systemResolver(dir));
    const global = new Set(this.options.global ?? []);
    for (const n of closure) {
      const file = r.graph.nodes.get(n) as ManifestFile;
      this.loaded.set(n, loadFile(file, dir, { global: global.has(n) }));
    }
  }

  private machine(): string {
    return targetFacts(hostTarget()).elf?.machine ?? process.arch;
  }

  /** Looks external dependencies up the way ld.so will, with `$ORIGIN` = the bundle directory. */
  private systemResolver(dir: string): (dep: string, file: ManifestFile) => string | null {
    return (dep, file) => resolveSystemLibrary(dep, { runpath: file.runpath, origin: dir })?.path ?? null;
  }
}

/**
 * `dlopen` through koffi, and the process-wide registry of what dlbundle has
 * loaded.
 *
 * The registry lives on `globalThis` under a `Symbol.for` key, so two
 * `openBundle` calls, and two copies of dlbundle in one process (an app and a
 * dependency bundling their own), share it: a library is opened once, and its
 * handle stays referenced for the life of the process — koffi unloads a
 * library whose handle is garbage-collected.
 */
import path = require('node:path');
import { logger } from './log';
import { bypassingAddonHooks } from './provide-addons';
import { DlbundleError } from './errors';
import { koffi, type KoffiLibrary } from './koffi';
import type { ManifestFile } from './manifest';

const debug = logger('dlbundle:load');

const REGISTRY_KEY = Symbol.for('dlbundle.registry.v1');

/** Where a loaded library's file is: a cache directory, the source's own directory, or a memory file. */
export type LoadedFrom = 'disk' | 'in-place' | 'memory';

/** The file to open for a library, as the bundle that needs it places it. */
export interface LibraryLocation {
  readonly path: string;
  readonly from: LoadedFrom;
}

/** One library opened in this process. */
export interface LoadedLibrary {
  /** File name in the bundle. */
  readonly name: string;
  /** The path it was opened from. */
  readonly path: string;
  /** Where that path is; absent in entries made by an older copy of dlbundle. */
  readonly from?: LoadedFrom;
  /** Milliseconds `dlopen` took (0 when an earlier load was reused). */
  readonly ms: number;
  /** Whether an earlier load (by any bundle in this process) was reused instead of opening it. */
  readonly reused?: boolean;
  /** koffi's handle; referenced by the registry for the life of the process. */
  readonly handle: KoffiLibrary;
}

/** One Node addon opened in this process (see {@link loadAddon}). */
export interface LoadedAddon {
  readonly exports: unknown;
  /** The path it was opened from; empty when another copy of dlbundle opened it first. */
  readonly path: string;
  readonly from?: LoadedFrom;
  /** Milliseconds `process.dlopen` took. */
  readonly ms: number;
  /** Whether an earlier load (by any bundle in this process) was reused. */
  readonly reused: boolean;
}

interface Registry {
  readonly version: 1;
  /** By content (xxh64) and the name the loader matches (soname or file name). */
  readonly libraries: Map<string, LoadedLibrary>;
  /** Node addons' exports, keyed the same way. */
  addons?: Map<string, unknown>;
  /** Where each addon in `addons` was opened from and how long it took (absent for entries of an older copy of dlbundle). */
  addonLoads?: Map<string, Omit<LoadedAddon, 'exports' | 'reused'>>;
  /** Memory files (memfd descriptors) written for libraries, keyed the same way: one per library per process. */
  memoryFiles?: Map<string, number>;
}

function registry(): Registry {
  const g = globalThis as unknown as Record<symbol, Registry | undefined>;
  g[REGISTRY_KEY] ??= { version: 1, libraries: new Map() };
  return g[REGISTRY_KEY];
}

function registryKey(file: ManifestFile): string {
  return `${file.xxh64}/${file.soname ?? file.name}`;
}

/**
 * The loaded copy of `file`, if this process has one (from any bundle, any copy of dlbundle).
 *
 * @example
 * findLoaded(file)?.path
 */
export function findLoaded(file: ManifestFile): LoadedLibrary | undefined {
  return registry().libraries.get(registryKey(file));
}

/**
 * The memory file (descriptor) that holds `file` in this process, made by
 * `create` (which writes it) the first time any bundle asks for it. Every
 * bundle instance shares it: without this, each `openBundle` in memory mode
 * copied every library into a new memory file, kept open for ever (EMFILE).
 *
 * @example
 * const fd = sharedMemoryFile(file, () => writeMemoryFile(file));
 */
export function sharedMemoryFile(file: ManifestFile, create: () => number): number {
  const reg = registry();
  reg.memoryFiles ??= new Map();
  const key = registryKey(file);
  let fd = reg.memoryFiles.get(key);
  if (fd === undefined) {
    fd = create();
    reg.memoryFiles.set(key, fd);
  }
  return fd;
}

/**
 * Opens the file of `file` with RTLD_NOW (and RTLD_LOCAL unless `global`),
 * unless the same library is already loaded in this process: the registry is
 * consulted first, and `locate` (which may write a memory file) is called
 * only when the library must really be opened. Its bundled dependencies must
 * be loaded first; the caller loads in plan order.
 *
 * @example
 * loadFile(coreFile, () => ({ path: '/tmp/dlbundle-1000/demo-1a2b…/libdemo_core.so', from: 'disk' }), { global: false });
 */
export function loadFile(file: ManifestFile, locate: () => LibraryLocation, options: { readonly global: boolean }): LoadedLibrary {
  const existing = findLoaded(file);
  if (existing !== undefined) {
    debug('%s already loaded from %s', file.name, existing.path);
    return { ...existing, ms: 0, reused: true };
  }
  const { path: at, from } = locate();
  const ffi = koffi(); // loaded first, so that `ms` is the dlopen alone
  // process.hrtime, not perf_hooks: requiring perf_hooks loads eleven of
  // Node's internal modules, a few ms of every start.
  const start = process.hrtime.bigint();
  let handle: KoffiLibrary;
  try {
    handle = ffi.load(at, { global: options.global });
  } catch (e) {
    throw loadError(file.name, at, e);
  }
  const loaded: LoadedLibrary = { name: file.name, path: at, from, ms: Number(process.hrtime.bigint() - start) / 1e6, handle };
  registry().libraries.set(registryKey(file), loaded);
  debug('loaded %s in %s ms', at, loaded.ms.toFixed(2));
  return loaded;
}

/**
 * Loads the Node addon `file` with `process.dlopen` and returns its exports;
 * once per process (a second `process.dlopen` of one addon fails), so
 * `locate` is called only the first time. Its bundled dependencies must be
 * loaded first.
 *
 * @example
 * const demo = loadAddon(demoNodeFile, () => ({ path: path.join(dir, 'demo.node'), from: 'disk' })).exports as { add(a: number, b: number): number };
 */
export function loadAddon(file: ManifestFile, locate: () => LibraryLocation): LoadedAddon {
  const reg = registry();
  reg.addons ??= new Map();
  reg.addonLoads ??= new Map();
  const key = registryKey(file);
  if (reg.addons.has(key)) return { exports: reg.addons.get(key), ...(reg.addonLoads.get(key) ?? { path: '', ms: 0 }), reused: true };
  const at = locate();
  const module = { exports: {} as unknown };
  const start = process.hrtime.bigint();
  try {
    // Node's own dlopen, whatever provideAddons() hooks are installed: this is the bundle's copy.
    bypassingAddonHooks(() => process.dlopen(module, at.path));
  } catch (e) {
    throw loadError(file.name, at.path, e);
  }
  const load = { path: at.path, from: at.from, ms: Number(process.hrtime.bigint() - start) / 1e6 };
  reg.addons.set(key, module.exports);
  reg.addonLoads.set(key, load);
  debug('loaded addon %s', at.path);
  return { exports: module.exports, ...load, reused: false };
}

let glibcVersion: string | null | undefined;

/**
 * The version of the glibc this process runs (`gnu_get_libc_version()`, e.g.
 * `2.36`), or null where it cannot be asked (musl). Asked once, through
 * koffi, which a start loads anyway for the `dlopen`s that follow: measured
 * +0.35 ms of CPU in a warm start, where reading libc.so.6's version hashes
 * cost +1.4 ms. libc.so.6 is already loaded in every glibc process, so
 * opening it maps nothing new.
 *
 * @example
 * runningGlibcVersion() // '2.36'
 */
export function runningGlibcVersion(): string | null {
  if (glibcVersion === undefined) {
    try {
      const version = koffi().load('libc.so.6').func('gnu_get_libc_version', 'const char *', [])() as unknown;
      glibcVersion = typeof version === 'string' && /^[0-9]+(\.[0-9]+)+$/.test(version) ? version : null;
    } catch (e) {
      debug('gnu_get_libc_version could not be called: %s', (e as Error).message);
      glibcVersion = null;
    }
  }
  return glibcVersion;
}

/**
 * Turns a `dlopen` failure into a DlbundleError with a code and a next step.
 *
 * @example
 * throw loadError('libfoo.so', '/tmp/…/libfoo.so', koffiError);
 */
export function loadError(name: string, at: string, cause: unknown): DlbundleError {
  const raw = String((cause as Error | undefined)?.message ?? cause).replace(/^Failed to load shared library: /, '');
  const dir = path.dirname(at);
  if (/failed to map segment/i.test(raw)) {
    return new DlbundleError('E_NOEXEC', `${JSON.stringify(at)} could not be mapped executable (${raw}): its file system is probably mounted noexec.`, 'Point DLBUNDLE_CACHE_DIR (or cacheDir) at a directory on a file system that allows executables.', { file: name, dir, cause });
  }
  const missing = /^([^\s:]+): cannot open shared object file/.exec(raw);
  if (missing?.[1] !== undefined && missing[1] !== at) {
    return new DlbundleError('E_MISSING_DEP', `${JSON.stringify(name)} needs ${JSON.stringify(missing[1])}, which the dynamic linker could not find.`, `Install the package that provides ${missing[1]}, or add it to the bundle with \`dlbundle pack\`.`, { file: name, dependency: missing[1], cause });
  }
  // dyld (macOS): "Library not loaded: @rpath/libfoo.dylib\n  Referenced from: …\n  Reason: tried: …",
  // the name quoted in some versions; names may hold spaces (frameworks).
  const notLoaded = /Library not loaded: '?([^'\n]*[^'\s])'?\s*(?:\n|$)/.exec(raw);
  if (notLoaded?.[1] !== undefined) {
    return new DlbundleError('E_MISSING_DEP', `${JSON.stringify(name)} needs ${JSON.stringify(notLoaded[1])}, which dyld could not find.`, `Add it to the bundle with \`dlbundle pack\`, or install what provides ${notLoaded[1]}.`, { file: name, dependency: notLoaded[1], cause });
  }
  // Windows (koffi's and LoadLibrary's words; Wine's in parentheses): error 126 for a
  // DLL that is there but whose imports are not all found, which names none of them.
  if (/specified module could not be found|^Module not found/i.test(raw)) {
    return new DlbundleError(
      'E_MISSING_DEP',
      `${JSON.stringify(at)} could not be loaded: a DLL it imports, or one that one of those imports, was not found (${raw.trim()}). The bundle's own imports were all found before loading, so the missing one is an import of a system DLL or of a DLL outside the bundle.`,
      'Run `dlbundle doctor` on the bundle on this machine, or look at the DLL with a dependency walker (Dependencies, dumpbin /dependents).',
      { file: name, cause },
    );
  }
  // ld.so's own check, for what the pre-load check did not see (a manifest
  // packed before versions were recorded, a family dlbundle does not track).
  const version = /^(.+?): version `([^']+)' not found \(required by (.+)\)$/.exec(raw);
  if (version !== null) {
    const [, provider, needed, user] = version as unknown as [string, string, string, string];
    return new DlbundleError(
      'E_SYSTEM_TOO_OLD',
      `${JSON.stringify(name)} could not be loaded: ${user} needs version ${needed} of ${provider}, which that file does not define (the dynamic linker said: ${raw}).`,
      `Use a build of ${name} made for an older system (built on an older distribution or against an older sysroot), or run on a system whose ${path.basename(provider)} is newer.`,
      { file: name, dependency: path.basename(provider), requiredVersion: needed, cause },
    );
  }
  if (/wrong ELF class|invalid ELF header|ELF file's machine|incompatible architecture|Cannot load '[^']*' DLL in '[^']*' process|not a valid Win32 application|Bad EXE format/i.test(raw)) {
    return new DlbundleError('E_WRONG_ARCH', `${JSON.stringify(at)} is not built for this process (${raw}).`, 'Ship a variant built for this machine.', { file: name, cause });
  }
  return new DlbundleError('E_LOAD_FAILED', `dlopen refused ${JSON.stringify(at)}: ${raw}`, 'Run `dlbundle doctor` on the bundle for a report of its dependencies on this machine.', { file: name, cause });
}

/**
 * The run time's platform differences, in one table: where the cache goes,
 * whether the mount table can be read, whether memory files exist, and which
 * dynamic linker's search is repeated before any load. The rest of the run
 * time asks this module, by platform name, instead of testing
 * `process.platform`; tests pass another platform's name. (What a target's
 * libraries are — format, machine — is in variant.ts's table of targets.)
 */
import path = require('node:path');
import { DlbundleError } from './errors';

/** A cache root a platform prefers: a path, or why it cannot be named here (no home directory). */
export type PlatformRoot = { readonly root: string } | { readonly label: string; readonly reason: string };

/** What cache roots are made of; each read only when a platform's roots use it. */
export interface RootPlaces {
  /** The temporary directory (`$TMPDIR`, …), without a trailing separator. */
  tmpdir(): string;
  /** The home directory, or why there is none (`no home directory: …`). */
  home(): string | { readonly reason: string };
  /** The effective uid: it names the shared temporary directory's root. */
  uid(): number;
  readonly env: NodeJS.ProcessEnv;
}

/** How a platform's run time differs. */
export interface RuntimePlatform {
  /** The name users know it by, for messages. */
  readonly title: string;
  /**
   * The cache roots, most preferred first. The first is the one that
   * `cacheDir` or `$DLBUNDLE_CACHE_DIR` replaces; the others are fallbacks.
   */
  roots(places: RootPlaces): readonly PlatformRoot[];
  /**
   * Whether `/proc/self/mountinfo` tells which mount a path is on (noexec,
   * read-only, pseudo file systems): only Linux has it, and elsewhere it is
   * not even read.
   */
  readonly mountTable: boolean;
  /** Why memory mode does not exist here, or null where it does (Linux: memfd_create). */
  readonly noMemoryMode: string | null;
  /**
   * Whose search an external dependency is looked up by before any load:
   * glibc's or musl's `ld.so` (system-libs.ts), or macOS's `dyld` (dyld-libs.ts).
   */
  readonly linker: 'ld.so' | 'dyld';
  /** Where that search looks, for `E_MISSING_DEP`'s message. */
  readonly searched: string;
}

/** `<tmpdir>/dlbundle-<uid>`: private to the user by name and by the root check (mode 0700). */
function tmpRoot(places: RootPlaces): PlatformRoot {
  return { root: path.join(places.tmpdir(), `dlbundle-${places.uid()}`) };
}

/** `<home>/<below>`, or why there is no home to put it in (shown as `label`) and which variables would give one. */
function homeRoot(places: RootPlaces, below: readonly string[], label: string, variables: string): PlatformRoot {
  const home = places.home();
  return typeof home === 'string' ? { root: path.resolve(home, ...below) } : { label, reason: `${home.reason}; set ${variables} to use this root.` };
}

const LINUX: RuntimePlatform = {
  title: 'Linux',
  // The temporary directory first (often a tmpfs: fast, and gone at reboot);
  // the XDG cache directory when that is unusable (noexec /tmp).
  roots: (places) => {
    const xdg = places.env.XDG_CACHE_HOME;
    return [tmpRoot(places), xdg !== undefined && path.isAbsolute(xdg) ? { root: path.resolve(xdg, 'dlbundle') } : homeRoot(places, ['.cache', 'dlbundle'], '~/.cache/dlbundle', 'XDG_CACHE_HOME or HOME')];
  },
  mountTable: true,
  noMemoryMode: null,
  linker: 'ld.so',
  searched: 'its RUNPATH, LD_LIBRARY_PATH, /etc/ld.so.cache and the default library directories',
};

const MACOS: RuntimePlatform = {
  title: 'macOS',
  // Where Apple says caches go, kept across reboots; $TMPDIR (a per-user
  // directory under /var/folders, emptied after days unused) when there is no home.
  roots: (places) => [homeRoot(places, ['Library', 'Caches', 'dlbundle'], '~/Library/Caches/dlbundle', 'HOME'), tmpRoot(places)],
  mountTable: false,
  noMemoryMode:
    'macOS has no memfd_create, and dyld loads a library only from a file with a path, so dlbundle has no memory mode there',
  linker: 'dyld',
  searched: 'DYLD_LIBRARY_PATH, its LC_RPATH entries, @loader_path (the bundle directory), @executable_path and DYLD_FALLBACK_LIBRARY_PATH; /usr/lib and /System are taken as present (the dyld shared cache)',
};

// FreeBSD and the other POSIX systems Node runs on: Linux's roots, no /proc
// mount table, no memory files (FreeBSD's memfd_create has no /proc/self/fd path to load from).
const OTHER_POSIX: RuntimePlatform = { ...LINUX, title: 'this system', mountTable: false, noMemoryMode: 'memory mode needs Linux (memfd_create and /proc/self/fd)' };

const PLATFORMS: Readonly<Partial<Record<NodeJS.Platform, RuntimePlatform>>> = {
  linux: LINUX,
  darwin: MACOS,
};

/**
 * How the run time behaves on `platform` (default: this process's).
 *
 * @example
 * runtimePlatform('darwin').noMemoryMode // 'macOS has no memfd_create, …'
 */
export function runtimePlatform(platform: NodeJS.Platform = process.platform): RuntimePlatform {
  return PLATFORMS[platform] ?? OTHER_POSIX;
}

/**
 * `E_USAGE` saying that memory mode does not exist on `platform` and what to
 * use instead; null where it exists.
 *
 * @example
 * const e = memoryModeRefusal('darwin'); if (e !== null) throw e;
 */
export function memoryModeRefusal(platform: NodeJS.Platform = process.platform): DlbundleError | null {
  const why = runtimePlatform(platform).noMemoryMode;
  if (why === null) return null;
  return new DlbundleError('E_USAGE', `Memory mode does not exist on ${runtimePlatform(platform).title}: ${why}.`, "Use mode: 'auto' (the default) or 'disk', with a cache directory this user owns (DLBUNDLE_CACHE_DIR or cacheDir).");
}

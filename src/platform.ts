/**
 * The run time's platform differences, in one place: what the operating
 * system offers (a /proc, POSIX ownership and modes, symbolic links any user
 * may make, memory files), what stands in where it offers none, where the
 * cache goes and whose loader's search is repeated before any load. Modules
 * ask here instead of testing `process.platform`; by default about the
 * system this process runs on, and tests pass another platform's name.
 *
 * Which binaries a target key runs is the target table's business
 * (variant.ts); this is about the system the run time finds itself on.
 * Light on purpose: the front (default-root.ts) imports it.
 */
import path = require('node:path');

/** A cache root a platform prefers: a path, or why it cannot be named here (no home directory). */
export type PlatformRoot = { readonly root: string } | { readonly label: string; readonly reason: string };

/** What cache roots are made of; each read only when a platform's roots use it. */
export interface RootPlaces {
  /** The temporary directory (`$TMPDIR`, `%TEMP%`, …), without a trailing separator. */
  tmpdir(): string;
  /** The home directory, or why there is none (`no home directory: …`). */
  home(): string | { readonly reason: string };
  /** The effective uid: it names the shared temporary directory's root on POSIX systems. */
  uid(): number;
  readonly env: NodeJS.ProcessEnv;
}

/** What the run time may count on from the system it runs on. */
export interface RuntimePlatform {
  /** The system's name in messages. */
  readonly name: string;
  /**
   * Whether `/proc` is this system's own (Linux): mount table, boot id,
   * process start times, pid namespaces, CPU flags. Elsewhere it is never
   * read — under Wine, `\proc` on drive Z: would be readable, and Linux's.
   */
  readonly procfs: boolean;
  /**
   * Where a process's start time comes from, which makes a pid name one
   * process for ever in the leases (leases.ts): `/proc/<pid>/stat`,
   * kernel32's GetProcessTimes (windows-processes.ts), or nowhere.
   */
  readonly processStarts: 'procfs' | 'kernel32' | null;
  /**
   * How a directory or file is judged to be this user's private one:
   * `'posix'`, by owner uid and mode bits, ancestors included (roots.ts);
   * `'windows'`, where `lstat` reports neither (uid 0, modes from the
   * read-only attribute): a real directory or file, not a reparse point
   * (symbolic link, junction), its access given by the ACL it inherits from
   * the user's profile directory.
   */
  readonly privacy: 'posix' | 'windows';
  /**
   * Whether every user can make symbolic links: the cache's soname links and
   * extraction claims. Windows needs a privilege (or developer mode) for
   * them; the claim is a hard link there instead.
   */
  readonly symlinks: boolean;
  /** Whether a directory can be flushed (fsync of a directory descriptor). NTFS journals directory changes and refuses it. */
  readonly directoryFsync: boolean;
  /** Whether flushing a file needs it open for writing (Windows: FlushFileBuffers needs write access). */
  readonly flushNeedsWrite: boolean;
  /**
   * Whether a bundle directory can be flushed after it is in use (cache.ts's
   * background durability). Not on Windows: a loaded DLL cannot be opened
   * for writing, so a new directory is flushed before it is renamed into place.
   */
  readonly backgroundFlush: boolean;
  /**
   * Error codes with which renaming or removing a file fails for a moment
   * because another program has it open — Windows refuses while an
   * antivirus scanner or the search indexer reads a new file — and that are
   * worth retrying (io.ts). Empty where no such thing happens.
   */
  readonly transientErrors: ReadonlySet<string>;
  /** Why memory mode does not exist here, or null where it does (Linux: memfd_create). */
  readonly noMemoryMode: string | null;
  /**
   * The cache roots, most preferred first. The first is the one that
   * `cacheDir` or `$DLBUNDLE_CACHE_DIR` replaces; the others are fallbacks.
   */
  roots(places: RootPlaces): readonly PlatformRoot[];
  /**
   * Whose search an external dependency is looked up by before any load
   * (system-search.ts): glibc's or musl's `ld.so` (system-libs.ts), macOS's
   * `dyld` (dyld-libs.ts), Windows's DLL search (system-dlls.ts).
   */
  readonly linker: 'ld.so' | 'dyld' | 'windows';
}

const NONE: ReadonlySet<string> = new Set();

/** `<tmpdir>/dlbundle-<uid>`: private to the user by name and by the root check (mode 0700). */
function tmpRoot(places: RootPlaces): PlatformRoot {
  return { root: path.join(places.tmpdir(), `dlbundle-${places.uid()}`) };
}

/** `<home>/<below>`, or why there is no home to put it in (shown as `label`) and which variables would give one. */
function homeRoot(places: RootPlaces, below: readonly string[], label: string, variables: string): PlatformRoot {
  const home = places.home();
  return typeof home === 'string' ? { root: path.resolve(home, ...below) } : { label, reason: `${home.reason}; set ${variables} to use this root.` };
}

// The POSIX roots: the temporary directory first (often a tmpfs: fast, and
// gone at reboot); the XDG cache directory when that is unusable (noexec /tmp).
function posixRoots(places: RootPlaces): PlatformRoot[] {
  const xdg = places.env.XDG_CACHE_HOME;
  return [tmpRoot(places), xdg !== undefined && path.isAbsolute(xdg) ? { root: path.resolve(xdg, 'dlbundle') } : homeRoot(places, ['.cache', 'dlbundle'], '~/.cache/dlbundle', 'XDG_CACHE_HOME or HOME')];
}

const POSIX: RuntimePlatform = {
  name: 'this system',
  procfs: false,
  processStarts: null,
  privacy: 'posix',
  symlinks: true,
  directoryFsync: true,
  flushNeedsWrite: false,
  backgroundFlush: true,
  transientErrors: NONE,
  noMemoryMode: 'memory mode needs Linux (memfd_create)',
  roots: posixRoots,
  linker: 'ld.so',
};

// Keyed by process.platform; anything not listed is POSIX without /proc.
const PLATFORMS: Readonly<Partial<Record<NodeJS.Platform, RuntimePlatform>>> = {
  linux: { ...POSIX, name: 'Linux', procfs: true, processStarts: 'procfs', noMemoryMode: null },
  darwin: {
    ...POSIX,
    name: 'macOS',
    noMemoryMode: 'there is no memfd_create, and dyld loads a library only from a file with a path',
    // Where Apple says caches go, kept across reboots; $TMPDIR (a per-user
    // directory under /var/folders, emptied after days unused) when there is no home.
    roots: (places) => [homeRoot(places, ['Library', 'Caches', 'dlbundle'], '~/Library/Caches/dlbundle', 'HOME'), tmpRoot(places)],
    linker: 'dyld',
  },
  win32: {
    name: 'Windows',
    procfs: false,
    processStarts: 'kernel32',
    privacy: 'windows',
    symlinks: false,
    directoryFsync: false,
    flushNeedsWrite: true,
    backgroundFlush: false,
    transientErrors: new Set(['EPERM', 'EBUSY', 'EACCES']),
    noMemoryMode: 'memory mode does not exist on Windows: LoadLibrary opens a DLL only from a file, and Windows has no memory file a path can name',
    roots: windowsRoots,
    linker: 'windows',
  },
};

/**
 * The facts of `platform`: by default the system this process runs on.
 *
 * @example
 * if (runtimePlatform().procfs) readMountTable();
 * runtimePlatform('darwin').noMemoryMode // 'there is no memfd_create, …'
 */
export function runtimePlatform(platform: NodeJS.Platform = process.platform): RuntimePlatform {
  return PLATFORMS[platform] ?? POSIX;
}

/**
 * Windows: `%LOCALAPPDATA%\dlbundle` (inside the user's profile, whose ACL
 * lets in only the user, SYSTEM and administrators, and which roaming
 * profiles do not copy), then `%TEMP%\dlbundle` (by default in the profile
 * too). No user id in the names: each user has a directory of their own.
 */
function windowsRoots(places: RootPlaces): PlatformRoot[] {
  const temp = { root: path.join(places.tmpdir(), 'dlbundle') };
  const local = places.env.LOCALAPPDATA;
  if (local === undefined || local === '' || !path.isAbsolute(local)) return [temp];
  return [{ root: path.join(local, 'dlbundle') }, temp];
}

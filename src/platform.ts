/**
 * The run time's platform differences, in one place: what the operating
 * system this process runs on offers (a /proc, POSIX ownership and modes,
 * symbolic links any user may make, memory files) and what stands in where
 * it offers none. Modules ask here instead of testing `process.platform`.
 *
 * Which binaries a target key runs is the target table's business
 * (variant.ts); this is about the system the run time finds itself on.
 * Light on purpose: the front (default-root.ts) imports it.
 */
import path = require('node:path');

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
  /** Why memory mode does not exist here, or null where it does. */
  readonly noMemoryMode: string | null;
  /**
   * The system's cache roots, when they are not the POSIX ones
   * (`<tmpdir>/dlbundle-<uid>`, then `$XDG_CACHE_HOME/dlbundle` or
   * `~/.cache/dlbundle`): the preferred one, then the fallbacks. Read from
   * the environment when called.
   */
  readonly cacheRoots: ((env: NodeJS.ProcessEnv) => { readonly preferred: string; readonly fallbacks: readonly string[] }) | null;
}

const NONE: ReadonlySet<string> = new Set();

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
  cacheRoots: null,
};

// Keyed by process.platform; anything not listed is POSIX without /proc.
const PLATFORMS: Readonly<Partial<Record<NodeJS.Platform, RuntimePlatform>>> = {
  linux: { ...POSIX, name: 'Linux', procfs: true, processStarts: 'procfs', noMemoryMode: null },
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
    cacheRoots: windowsCacheRoots,
  },
};

/**
 * The facts of the system this process runs on.
 *
 * @example
 * if (runtimePlatform().procfs) readMountTable();
 */
export function runtimePlatform(): RuntimePlatform {
  return PLATFORMS[process.platform] ?? POSIX;
}

/**
 * Windows: `%LOCALAPPDATA%\dlbundle` (inside the user's profile, whose ACL
 * lets in only the user, SYSTEM and administrators, and which roaming
 * profiles do not copy), then `%TEMP%\dlbundle` (by default in the profile
 * too). No user id in the names: each user has a directory of their own.
 */
function windowsCacheRoots(env: NodeJS.ProcessEnv): { preferred: string; fallbacks: string[] } {
  const temp = path.join((require('node:os') as typeof import('node:os')).tmpdir(), 'dlbundle');
  const local = env.LOCALAPPDATA;
  if (local === undefined || local === '' || !path.isAbsolute(local)) return { preferred: temp, fallbacks: [] };
  return { preferred: path.join(local, 'dlbundle'), fallbacks: [temp] };
}

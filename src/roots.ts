/**
 * Which directories may hold the cache: the candidate roots, the one check
 * that every command touching a root applies (a start, `cache list`,
 * `cache prune`, `doctor`), and the doctor's assessment of a root.
 *
 * A root is safe when it is a real directory of this user that nobody else
 * can write, and nobody else can replace it or any directory above it: every
 * ancestor up to `/` belongs to this user or to root and is not writable by
 * group or others, unless it is sticky (like /tmp) and the entry below it on
 * the path belongs to this user or to root (OpenSSH's StrictModes rule, with
 * the sticky exception). Symlinks on the way are followed and the
 * directories they lead to are checked the same way; the root itself must
 * not be one.
 *
 * Why the check is made on every start, and why once is enough: it walks the
 * path from `/` down with one `lstat` per component (three for
 * /tmp/dlbundle-1000), and each directory it accepts can then only be changed
 * by its owner, this user or root. So when the walk reaches the root, no
 * other user can rename, swap or replace anything on the path or below the
 * root (0700) for as long as this process uses it; a later `dlopen` by path
 * resolves to what was checked. A verdict kept from an earlier check would
 * not be safe: it speaks of the directories the path named then, and a
 * directory this user owns may since have been made writable, or been
 * replaced by one that is not.
 */
import fs = require('node:fs');
import path = require('node:path');
import { DlbundleError, type DlbundleErrorCode } from './errors';
import { ioError } from './file-io';
import { runSync, syncIo, type Io, type Step } from './io';
import { mountOfPath, type MountFacts } from './mounts';
import { effectiveUid, platformRoots } from './default-root';
import { runtimePlatform } from './platform';

export { effectiveUid };

/** A root that was not used, and why. */
export interface RootFallback {
  readonly root: string;
  readonly code: DlbundleErrorCode;
  readonly reason: string;
}

/** The candidate roots, most preferred first, and those that could not even be named (no home directory). */
export interface CandidateRoots {
  readonly roots: readonly string[];
  readonly unavailable: readonly RootFallback[];
}

/**
 * The candidate roots: `cacheDir` if given, else `$DLBUNDLE_CACHE_DIR`, else
 * the platform's preferred root (platform.ts: `<tmpdir>/dlbundle-<uid>` on
 * Linux, `~/Library/Caches/dlbundle` on macOS, `%LOCALAPPDATA%\dlbundle` on
 * Windows); then the platform's fallbacks (Linux: `$XDG_CACHE_HOME/dlbundle`
 * or `~/.cache/dlbundle`; macOS: `<tmpdir>/dlbundle-<uid>`; Windows:
 * `%TEMP%\dlbundle`). A uid with no passwd entry and no `HOME`
 * (`docker run --user 4242`) has no home directory: a root in it is left out
 * and reported in `unavailable` instead. The environment is read here, on
 * first use, not when dlbundle is imported.
 *
 * @example
 * candidateRoots() // { roots: ['/tmp/dlbundle-1000', '/home/me/.cache/dlbundle'], unavailable: [] }
 * candidateRoots(undefined, 'darwin') // { roots: ['/Users/me/Library/Caches/dlbundle', '/var/folders/…/T/dlbundle-501'], … }
 */
export function candidateRoots(cacheDir?: string, platform: NodeJS.Platform = process.platform): CandidateRoots {
  const [preferred, ...fallbacks] = platformRoots(platform);
  const env = process.env.DLBUNDLE_CACHE_DIR;
  const given = cacheDir ?? (env !== undefined && env !== '' ? env : undefined);
  const roots: string[] = [];
  const unavailable: RootFallback[] = [];
  for (const r of given !== undefined ? [{ root: given }, ...fallbacks] : [preferred, ...fallbacks]) {
    if (r === undefined) continue;
    if ('root' in r) roots.push(path.resolve(r.root));
    else unavailable.push({ root: r.label, code: 'E_IO', reason: r.reason });
  }
  return { roots: [...new Set(roots)], unavailable };
}

/** What {@link checkRoot} found: a safe root (`real`: its symlink-free path), or no root yet (`existing`: the deepest directory on its path that exists, symlink-free). */
export type RootCheck = { readonly exists: true; readonly real: string } | { readonly exists: false; readonly existing: string };

// The kernel gives up after 40 symlinks in one lookup (ELOOP); so does the walk.
const MAX_SYMLINKS = 40;

/**
 * The one check of a cache root (see the module comment for the rule):
 * `E_UNSAFE_DIR` naming the directory at fault when another user could
 * replace the root or anything above it, or when the root is not a private
 * directory of this user. With `create`, missing directories on the way are
 * made (mode 0700), each with one `mkdir` — none on a pseudo file system
 * such as /proc or /sys (`E_IO`), where a `mkdir` can never succeed. Without
 * it, a missing root is reported with `exists: false`.
 *
 * @example
 * runSync(checkRoot(syncIo, '/tmp/dlbundle-1000', { create: true })) // { exists: true, real: '/tmp/dlbundle-1000' }
 */
export function* checkRoot(io: Io, root: string, options: { readonly create: boolean; readonly platform?: NodeJS.Platform | undefined }): Step<RootCheck> {
  const r = yield* walk(io, root, options.create, options.platform);
  if ('refused' in r) throw unsafeDir(root, r.ofRoot ? `the cache root ${r.refused}` : r.refused);
  return r;
}

/** Why a root is refused: about the root itself (`ofRoot`), or about a directory on its path (named in the text). */
interface Refusal {
  readonly refused: string;
  readonly ofRoot: boolean;
}

// The walk behind checkRoot and assessRoot, as the system judges privacy.
function walk(io: Io, root: string, create: boolean, platform?: NodeJS.Platform): Step<RootCheck | Refusal> {
  return runtimePlatform(platform).privacy === 'windows' ? walkWindowsRoot(io, root, create) : walkRoot(io, root, create, platform);
}

/**
 * Windows: lstat reports no owner and no permission bits, and another user's
 * access is the ACL a directory inherits — in `%LOCALAPPDATA%` and `%TEMP%`,
 * from the user's profile directory, which only the user, SYSTEM and
 * administrators can enter. What the walk checks: every component from the
 * drive down is a real directory, and the root itself is not a reparse point
 * (a symbolic link or junction: whoever can write its parent could point it
 * elsewhere); links above the root are followed, as the file system would.
 * Directories it makes inherit their parent's ACL. A `cacheDir` outside the
 * profile is as private as its ACL, which is not read.
 */
function* walkWindowsRoot(io: Io, root: string, create: boolean): Step<RootCheck | Refusal> {
  const full = path.resolve(root);
  const top = path.parse(full).root;
  const names = full.slice(top.length).split(/[\\/]/).filter((c) => c !== '');
  let here = top;
  if ((yield* io.lstat(top)) === null) return { refused: `${JSON.stringify(top)} does not exist`, ofRoot: false };
  for (let i = 0; i < names.length; i++) {
    const p = path.join(here, names[i] as string);
    const last = i === names.length - 1;
    let st = yield* io.lstat(p);
    if (st === null) {
      if (!create) return { exists: false, existing: here };
      st = yield* makeDirectory(io, p, last);
    }
    if (last) {
      const problem = unsafeReason(st);
      return problem === null ? { exists: true, real: p } : { refused: problem, ofRoot: true };
    }
    if (!st.isDirectory() && !st.isSymbolicLink()) return { refused: `${JSON.stringify(p)} is not a directory`, ofRoot: false };
    here = p;
  }
  // The root is a drive's root.
  return { exists: true, real: top };
}

// The POSIX walk: from "/" down, one lstat per component.
function* walkRoot(io: Io, root: string, create: boolean, platform?: NodeJS.Platform): Step<RootCheck | Refusal> {
  const me = effectiveUid();
  const onPath = (refused: string): Refusal => ({ refused, ofRoot: false });
  const top = yield* io.lstat('/');
  if (top === null) return onPath('"/" cannot be examined');
  const topProblem = ancestorProblem('/', top, me);
  if (topProblem !== null) return onPath(topProblem);
  // The symlink-free directories walked so far, from "/" down, with their lstat.
  const chain: { readonly dir: string; readonly st: fs.Stats }[] = [{ dir: '/', st: top }];
  const todo = components(path.resolve(root));
  let links = 0;
  let mountChecked = false;
  while (todo.length > 0) {
    const name = todo.shift() as string;
    const here = chain[chain.length - 1] as { dir: string; st: fs.Stats };
    if (name === '.') continue;
    if (name === '..') {
      if (chain.length > 1) chain.pop();
      continue;
    }
    const p = path.join(here.dir, name);
    const last = todo.length === 0;
    let st = yield* io.lstat(p);
    if (st === null) {
      if (!create) return { exists: false, existing: here.dir };
      if (!mountChecked) {
        yield* refusePseudoFileSystem(io, root, here.dir, platform);
        mountChecked = true;
      }
      st = yield* makeDirectory(io, p, last);
    }
    if (last) {
      const problem = unsafeReason(st, me);
      return problem === null ? { exists: true, real: p } : { refused: problem, ofRoot: true };
    }
    // In a directory others can write (sticky, or it would have been refused), only the owner of an entry can replace it.
    if ((here.st.mode & 0o022) !== 0 && st.uid !== me && st.uid !== 0) return onPath(ownedByOther(p, st.uid));
    if (st.isSymbolicLink()) {
      if (++links > MAX_SYMLINKS) return onPath(`more than ${MAX_SYMLINKS} symbolic links lead to it`);
      const target = yield* io.readlink(p);
      if (target === null) return onPath(`${JSON.stringify(p)} changed while it was examined`);
      todo.unshift(...components(target));
      if (path.isAbsolute(target)) chain.splice(1);
      continue;
    }
    const problem = st.isDirectory() ? ancestorProblem(p, st, me) : `${JSON.stringify(p)} is not a directory`;
    if (problem !== null) return onPath(problem);
    chain.push({ dir: p, st });
  }
  // The root is "/" itself (or resolves to it).
  const rootDir = chain[chain.length - 1] as { dir: string; st: fs.Stats };
  const problem = unsafeReason(rootDir.st, me);
  return problem === null ? { exists: true, real: rootDir.dir } : { refused: problem, ofRoot: true };
}

function components(p: string): string[] {
  return p.split('/').filter((c) => c !== '');
}

/** Why another user could replace what lies below directory `dir`, or null. */
function ancestorProblem(dir: string, st: fs.Stats, me: number): string | null {
  if (st.uid !== me && st.uid !== 0) return ownedByOther(dir, st.uid);
  const writable = st.mode & 0o022;
  if (writable !== 0 && (st.mode & 0o1000) === 0) {
    return `${JSON.stringify(dir)} is writable by ${(writable & 0o002) !== 0 ? 'others' : 'its group'} (mode ${modeText(st)}) and not sticky: another user could replace the root or a directory above it`;
  }
  return null;
}

function ownedByOther(p: string, uid: number): string {
  return `${JSON.stringify(p)} is owned by uid ${uid}, neither this user nor root: that user could replace the root or a directory above it`;
}

function modeText(st: fs.Stats): string {
  return (st.mode & 0o7777).toString(8).padStart(4, '0');
}

// One mkdir per directory, never a retry loop: Node's recursive mkdirSync spins
// forever under /proc, where mkdir keeps failing with ENOENT.
function* makeDirectory(io: Io, p: string, isRoot: boolean): Step<fs.Stats> {
  try {
    yield* io.mkdir(p, 0o700);
    // mkdir's mode is filtered by the umask; the root must be exactly private.
    if (isRoot) yield* io.chmod(p, 0o700);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw ioError(p, e, 'create the cache directory');
  }
  const st = yield* io.lstat(p);
  if (st === null) throw new DlbundleError('E_IO', `Could not create the cache directory ${JSON.stringify(p)}: it is missing right after mkdir.`, 'Point DLBUNDLE_CACHE_DIR (or cacheDir) at a directory on a disk or tmpfs.', { dir: p });
  return st;
}

// Pseudo file systems hold no files of ours: the kernel makes their entries.
const PSEUDO_FILE_SYSTEMS = new Set(['proc', 'sysfs', 'cgroup', 'cgroup2', 'debugfs', 'tracefs', 'securityfs', 'pstore', 'bpf', 'configfs', 'efivarfs', 'fusectl', 'binfmt_misc', 'devpts', 'mqueue']);

function pseudoMountProblem(mount: MountFacts | null): string | null {
  if (mount === null || !PSEUDO_FILE_SYSTEMS.has(mount.fsType)) return null;
  return `is on ${mount.mountPoint}, a ${mount.fsType} file system, which cannot hold a cache`;
}

function* refusePseudoFileSystem(io: Io, root: string, existing: string, platform?: NodeJS.Platform): Step<void> {
  // Without /proc there is no proc file system to refuse, and a failing mkdir is reported once.
  const problem = pseudoMountProblem(yield* mountOfPath(io, existing, platform));
  if (problem !== null) throw new DlbundleError('E_IO', `${JSON.stringify(root)} ${problem}.`, 'Point DLBUNDLE_CACHE_DIR (or cacheDir) at a directory on a disk or tmpfs.', { dir: root });
}

/**
 * Why a directory is not one of this user's private directories, or null:
 * a symlink, not a directory, another owner, writable by group or others.
 * The same rule holds for roots, bundle directories and prune's entries.
 *
 * @example
 * unsafeReason(fs.lstatSync(dir)) // 'is owned by uid 0, not by this user (uid 1000)'
 */
export function unsafeReason(st: fs.Stats | null, me = effectiveUid()): string | null {
  if (st === null) return 'does not exist';
  if (st.isSymbolicLink()) return runtimePlatform().privacy === 'windows' ? 'is a symbolic link or a junction' : 'is a symbolic link';
  if (!st.isDirectory()) return 'is not a directory';
  // Windows reports no owner (uid 0) and no permission bits: the ACL the directory inherits decides.
  if (runtimePlatform().privacy === 'windows') return null;
  if (st.uid !== me) return `is owned by uid ${st.uid}, not by this user (uid ${me})`;
  if ((st.mode & 0o022) !== 0) return `is writable by group or others (mode ${modeText(st)})`;
  return null;
}

/**
 * Why a file in a bundle directory is not one of this user's private regular
 * files, or null: a symbolic link or anything but a regular file; on POSIX
 * systems also another owner or write permission for group or others.
 *
 * @example
 * unsafeFileReason(fs.lstatSync(file)) // 'is writable by group or others (mode 0666)'
 */
export function unsafeFileReason(st: fs.Stats, me = effectiveUid()): string | null {
  if (!st.isFile()) return 'is not a regular file';
  if (runtimePlatform().privacy === 'windows') return null;
  if (st.uid !== me) return `is owned by uid ${st.uid}, not by this user (uid ${me})`;
  if ((st.mode & 0o022) !== 0) return `is writable by group or others (mode ${modeText(st)})`;
  return null;
}

/**
 * `E_UNSAFE_DIR` for `dir`, saying what is wrong with it.
 *
 * @example
 * throw unsafeDir(dir, 'the bundle directory is a symbolic link');
 */
export function unsafeDir(dir: string, problem: string): DlbundleError {
  return new DlbundleError('E_UNSAFE_DIR', `${JSON.stringify(dir)}: ${problem}.`, 'dlbundle only loads from directories that this user owns and nobody else can write or replace; remove it or choose another cache directory.', { dir });
}

/**
 * A root that was skipped because of `error`, as reported in `explain().fallbacks`.
 *
 * @example
 * rootFallback('/tmp/dlbundle-0', err) // { root: '/tmp/dlbundle-0', code: 'E_UNSAFE_DIR', reason: '"/tmp/dlbundle-0": the cache root is a symbolic link.' }
 */
export function rootFallback(root: string, error: DlbundleError): RootFallback {
  const i = error.message.indexOf('\n');
  return { root, code: error.code, reason: i < 0 ? error.message : error.message.slice(0, i) };
}

/** What {@link assessRoot} found. */
export interface RootAssessment {
  readonly root: string;
  readonly usable: boolean;
  /** Why it can or cannot be used: ownership, ancestors, mode, mount (noexec, read-only, pseudo), write permission. */
  readonly reason: string;
}

/**
 * Whether `root` could be used as a cache root, without writing anything
 * (for `dlbundle doctor`): {@link checkRoot}, plus the mount's noexec and
 * read-only flags and write permission.
 *
 * @example
 * assessRoot('/tmp/dlbundle-1000') // { root, usable: true, reason: 'exists, private to this user, … on a mount that allows executables' }
 */
export function assessRoot(root: string): RootAssessment {
  const no = (reason: string): RootAssessment => ({ root, usable: false, reason });
  const state = runSync(walk(syncIo, root, false));
  if ('refused' in state) return no(state.ofRoot ? `it ${state.refused}` : state.refused);
  const at = state.exists ? state.real : state.existing;
  const mount = runSync(mountOfPath(syncIo, at));
  const pseudo = pseudoMountProblem(mount);
  if (pseudo !== null) return no(`it ${pseudo}`);
  if (mount?.options.includes('noexec') === true) return no(`it is on ${mount.mountPoint}, mounted noexec`);
  if (mount?.options.includes('ro') === true) return no(`it is on ${mount.mountPoint}, mounted read-only`);
  if (!writable(at)) return no(state.exists ? 'this user cannot write to it' : `this user cannot create it in ${at}`);
  const windows = runtimePlatform().privacy === 'windows';
  return {
    root,
    usable: true,
    // Without /proc (macOS) nothing is known of the mount's flags.
    reason: state.exists
      ? windows
        ? 'exists, a real directory (not a link or junction), writable by this user; who else may enter it is its ACL, not read here'
        : `exists, private to this user, no other user can replace it or a directory above it${mount === null ? '' : ', on a mount that allows executables'}`
      : windows
        ? `would be created in ${at}, with the ACL it inherits`
        : `would be created (mode 0700) in ${at}`,
  };
}

/**
 * Every candidate root with its {@link assessRoot}, the unavailable ones included (for `dlbundle doctor`).
 *
 * @example
 * assessRoots().find((r) => r.usable)?.root
 */
export function assessRoots(): RootAssessment[] {
  const { roots, unavailable } = candidateRoots();
  return [...roots.map(assessRoot), ...unavailable.map((u) => ({ root: u.root, usable: false, reason: u.reason }))];
}

function writable(dir: string): boolean {
  try {
    fs.accessSync(dir, fs.constants.W_OK | fs.constants.X_OK);
    return true;
  } catch {
    // EACCES (or EROFS): this user cannot write there.
    return false;
  }
}


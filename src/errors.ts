/**
 * The one error class dlbundle throws. Every failure has a stable `code`, so
 * callers branch on the code and never on message text.
 *
 * @example
 * try { core.add(1, 2); } catch (e) {
 *   if (e instanceof DlbundleError && e.code === 'E_MISSING_DEP') console.error(e.dependency);
 * }
 */

/** Every code dlbundle can throw, with the kind of failure it stands for. */
export type DlbundleErrorCode =
  /** The input starts with no magic number dlbundle reads: not ELF, nor PE (Windows) or Mach-O (macOS) where those are read. */
  | 'E_NOT_ELF'
  /** The input is an ELF file whose headers are inconsistent or truncated. */
  | 'E_BAD_ELF'
  /** The input is a PE file (Windows DLL, `.node`, executable) whose headers or import tables are inconsistent or truncated. */
  | 'E_BAD_PE'
  /** The input is a Mach-O file (thin or universal) whose headers or load commands are inconsistent or truncated. */
  | 'E_BAD_MACHO'
  /** The input is an ELF file but not a shared object (an executable, an object file, a core dump). */
  | 'E_NOT_SHARED_OBJECT'
  /** The library was built for another machine than the one it is packed or loaded for. */
  | 'E_WRONG_ARCH'
  /** A DT_NEEDED dependency is neither bundled nor found on the system. */
  | 'E_MISSING_DEP'
  /**
   * The library needs a newer glibc or libstdc++ than this system has: a
   * symbol version (`GLIBC_2.38`, `GLIBCXX_3.4.32`, `CXXABI_1.3.15`) that the
   * system's libc.so.6 or libstdc++.so.6 does not define. Found before any
   * `dlopen` from the versions recorded at pack time, or read from ld.so's
   * "version … not found".
   */
  | 'E_SYSTEM_TOO_OLD'
  /** The bundled libraries depend on each other in a circle. */
  | 'E_CYCLE'
  /** Two bundled files declare the same soname. */
  | 'E_DUPLICATE_SONAME'
  /** Two inputs would be stored under the same file name. */
  | 'E_DUPLICATE_NAME'
  /** The manifest is malformed or inconsistent. */
  | 'E_BAD_MANIFEST'
  /** A blob's size or hash does not match the manifest. */
  | 'E_INTEGRITY'
  /** A blob named by the manifest is absent from its source. */
  | 'E_MISSING_BLOB'
  /** A cache directory is not safe to load from (owner, mode, symlink). */
  | 'E_UNSAFE_DIR'
  /** A cache directory is on a file system mounted noexec. */
  | 'E_NOEXEC'
  /** The file system has no room left for the extraction. */
  | 'E_NO_SPACE'
  /** The bundle has no variant that fits this machine. */
  | 'E_NO_VARIANT'
  /** The library is not part of the bundle. */
  | 'E_UNKNOWN_LIBRARY'
  /** The library does not export a requested symbol. */
  | 'E_MISSING_SYMBOL'
  /** `dlopen` (or `process.dlopen`) refused the library for another reason. */
  | 'E_LOAD_FAILED'
  /** A C prototype given to a symbol loader could not be understood. */
  | 'E_BAD_PROTOTYPE'
  /** `pack --package`: the directory is not an npm package, or no package of that name is installed where it was looked for. */
  | 'E_NOT_PACKAGE'
  /** `pack --package`: the package (and those it depends on) carries no `.node` addon, or none for the target. */
  | 'E_NO_ADDON'
  /** A file could not be read or written for a reason not covered above. */
  | 'E_IO'
  /** A command-line call or an API argument is wrong. */
  | 'E_USAGE';

/** Facts attached to an error, for programs that report or recover. */
export interface DlbundleErrorDetails {
  /** The file or library the failure is about. */
  readonly file?: string;
  /** The dependency involved (for `E_MISSING_DEP`, `E_CYCLE`, …). */
  readonly dependency?: string;
  /** Byte offset in the file where a malformed structure was found. */
  readonly offset?: number;
  /** The symbol involved (for `E_MISSING_SYMBOL`). */
  readonly symbol?: string;
  /** For `E_SYSTEM_TOO_OLD`: the symbol version needed, e.g. `GLIBC_2.38`. */
  readonly requiredVersion?: string;
  /** For `E_SYSTEM_TOO_OLD`: the highest version of that family the system defines (`GLIBC_2.36`), when known. */
  readonly presentVersion?: string;
  /** The directory involved (for `E_UNSAFE_DIR`, `E_NOEXEC`, …). */
  readonly dir?: string;
  /** The lower-level error that caused this one, if any. */
  readonly cause?: unknown;
}

/**
 * An error with a stable `code` and a message that ends with what to do next.
 *
 * @example
 * throw new DlbundleError('E_NOT_ELF', `"x.txt" is not an ELF file.`, 'Pass shared objects (.so) only.', { file: 'x.txt' });
 */
export class DlbundleError extends Error implements DlbundleErrorDetails {
  readonly code: DlbundleErrorCode;
  declare readonly file?: string;
  declare readonly dependency?: string;
  declare readonly offset?: number;
  declare readonly symbol?: string;
  declare readonly requiredVersion?: string;
  declare readonly presentVersion?: string;
  declare readonly dir?: string;

  /**
   * @param what what went wrong, naming the values involved
   * @param next what the user should do about it
   */
  constructor(code: DlbundleErrorCode, what: string, next: string, details: DlbundleErrorDetails = {}) {
    super(`${what}\n${next}`, details.cause === undefined ? undefined : { cause: details.cause });
    this.name = 'DlbundleError';
    this.code = code;
    if (details.file !== undefined) this.file = details.file;
    if (details.dependency !== undefined) this.dependency = details.dependency;
    if (details.offset !== undefined) this.offset = details.offset;
    if (details.symbol !== undefined) this.symbol = details.symbol;
    if (details.requiredVersion !== undefined) this.requiredVersion = details.requiredVersion;
    if (details.presentVersion !== undefined) this.presentVersion = details.presentVersion;
    if (details.dir !== undefined) this.dir = details.dir;
  }
}

// A bundler that meets two copies of this class (an application bundling
// dlbundle's run time and koffi's loader) renames one (DlbundleError2), and
// Node prints errors under their constructor's name.
Object.defineProperty(DlbundleError, 'name', { value: 'DlbundleError' });

/**
 * True when `value` is a DlbundleError, optionally with the given code. Works
 * across two copies of dlbundle in one process, where `instanceof` does not.
 *
 * @example
 * if (isDlbundleError(e, 'E_NO_VARIANT')) fallBackToJs();
 */
export function isDlbundleError(value: unknown, code?: DlbundleErrorCode): value is DlbundleError {
  if (typeof value !== 'object' || value === null) return false;
  const v = value as { name?: unknown; code?: unknown };
  return v.name === 'DlbundleError' && typeof v.code === 'string' && (code === undefined || v.code === code);
}

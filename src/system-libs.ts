/**
 * Where the system's dynamic linker would find a library that the bundle does
 * not provide: the requesting library's RPATH/RUNPATH, `LD_LIBRARY_PATH`,
 * `/etc/ld.so.cache` and the default directories — the order glibc's ld.so
 * searches them (musl's loader: RPATH/RUNPATH, LD_LIBRARY_PATH, its path
 * file). Looking first means a missing dependency is reported by name
 * (`E_MISSING_DEP`) instead of as a bare `dlopen` message.
 */
import fs = require('node:fs');
import path = require('node:path');
import { logger } from './log';
import { readElfFile } from './formats/elf-file';
import { readSmallFile } from './io';
import { hostTarget, targetFacts } from './variant';

const debug = logger('dlbundle:plan');

const LD_SO_CACHE = '/etc/ld.so.cache';
const CACHE_MAGIC = 'glibc-ld.so.cache1.1';
const CACHE_HEADER_BYTES = 48;
const CACHE_ENTRY_BYTES = 24;
// ld.so.cache flags: the low byte says "ELF for libc6", the next byte the
// architecture / ABI; see glibc's ldconfig.h (FLAG_ELF_LIBC6, FLAG_X8664_LIB64 …).
const FLAG_TYPE_MASK = 0x00ff;
const FLAG_ARCH_MASK = 0xff00;

/** What the requesting library contributes to the search. */
export interface SearchContext {
  /** DT_RUNPATH of the library that needs the dependency. */
  readonly runpath: readonly string[];
  /** DT_RPATH of that library (ignored by ld.so when it has a DT_RUNPATH). */
  readonly rpath?: readonly string[];
  /** The directory the library is loaded from: what `$ORIGIN` expands to. */
  readonly origin: string;
}

/** Where a dependency was found, and through which search step. */
export interface Resolution {
  readonly path: string;
  readonly via: 'rpath' | 'LD_LIBRARY_PATH' | 'runpath' | 'ld.so.cache' | 'default directory';
}

/**
 * Finds `name` (a DT_NEEDED entry) the way glibc's loader would, or returns null.
 * Only candidates built for this process's machine and ELF class count.
 *
 * @example
 * resolveSystemLibrary('libc.so.6', { runpath: [], origin: '/tmp/x' }) // { path: '/lib/x86_64-linux-gnu/libc.so.6', via: 'ld.so.cache' }
 */
export function resolveSystemLibrary(name: string, ctx: SearchContext): Resolution | null {
  if (name.includes('/')) return fitsThisProcess(name) ? { path: name, via: 'default directory' } : null;
  const inDirs = (dirs: readonly string[], via: Resolution['via']): Resolution | null => {
    for (const dir of dirs) {
      const candidate = path.join(expandOrigin(dir, ctx.origin), name);
      if (fitsThisProcess(candidate)) return { path: candidate, via };
    }
    return null;
  };
  const ldLibraryPath = startupLibraryPath();
  const musl = targetFacts(hostTarget()).musl;
  const found =
    musl !== null
      ? // musl: the loader itself answers for libc; then RPATH and RUNPATH alike, LD_LIBRARY_PATH, and its path file.
        muslItself(name, musl.arch) ??
        inDirs([...(ctx.rpath ?? []), ...ctx.runpath], 'runpath') ??
        inDirs(ldLibraryPath, 'LD_LIBRARY_PATH') ??
        inDirs(muslDirectories(musl.arch), 'default directory')
      : (ctx.runpath.length === 0 ? inDirs(ctx.rpath ?? [], 'rpath') : null) ??
        inDirs(ldLibraryPath, 'LD_LIBRARY_PATH') ??
        inDirs(ctx.runpath, 'runpath') ??
        fromLdSoCache(name) ??
        inDirs(defaultDirectories(), 'default directory');
  debug('%s → %s', name, found === null ? 'not found' : `${found.path} (${found.via})`);
  return found;
}

let startupLibraryPathCache: string[] | undefined;

/**
 * LD_LIBRARY_PATH as the process started with it: ld.so reads it once at
 * start-up, so a value assigned to process.env later changes nothing for
 * dlopen and must not change the answer here either. The initial environment
 * is read only when the variable is set now (the common case costs nothing);
 * one set at start and deleted since is not seen, and dlopen's own error is
 * then still reported as E_MISSING_DEP.
 */
function startupLibraryPath(): string[] {
  if (startupLibraryPathCache !== undefined) return startupLibraryPathCache;
  let value = process.env.LD_LIBRARY_PATH ?? '';
  if (value !== '') {
    try {
      const entry = fs.readFileSync('/proc/self/environ', 'latin1').split('\0').find((e) => e.startsWith('LD_LIBRARY_PATH='));
      value = entry === undefined ? '' : entry.slice('LD_LIBRARY_PATH='.length);
    } catch {
      // No /proc: the current environment is the best evidence left.
    }
  }
  startupLibraryPathCache = value.split(/[:;]/).filter((d) => d !== '');
  return startupLibraryPathCache;
}

/**
 * A RUNPATH / RPATH entry with `$ORIGIN` (or `${ORIGIN}`) replaced by the
 * directory of the library that carries it.
 *
 * @example
 * expandOrigin('$ORIGIN/../lib', '/app/bin') // '/app/bin/../lib'
 */
export function expandOrigin(dir: string, origin: string): string {
  return dir.replace(/\$(ORIGIN\b|\{ORIGIN\})/g, origin);
}

// glibc's built-in trusted directories, multiarch ones first as Debian builds it.
function defaultDirectories(): string[] {
  const glibc = targetFacts(hostTarget()).glibc;
  const multiarch = glibc === null ? [] : [`/lib/${glibc.multiarch}`, `/usr/lib/${glibc.multiarch}`];
  return [...multiarch, '/lib64', '/usr/lib64', '/lib', '/usr/lib'];
}

// musl's libc is its dynamic loader; DT_NEEDED entries naming it are always met.
function muslItself(name: string, arch: string): Resolution | null {
  const loader = `/lib/ld-musl-${arch}.so.1`;
  return name === 'libc.so' || name === `libc.musl-${arch}.so.1` || name === `ld-musl-${arch}.so.1` ? { path: loader, via: 'default directory' } : null;
}

// /etc/ld-musl-<arch>.path lists the directories (separated by ':' or newlines); without it, musl's built-in list.
function muslDirectories(arch: string): string[] {
  try {
    return fs.readFileSync(`/etc/ld-musl-${arch}.path`, 'utf8').split(/[:\n]/).filter((d) => d.trim() !== '').map((d) => d.trim());
  } catch {
    // No path file: musl's compiled-in default.
    return ['/lib', '/usr/local/lib', '/usr/lib'];
  }
}

const fitCache = new Map<string, boolean>();

/** True when `file` exists and is an ELF shared object of this process's machine and class. */
function fitsThisProcess(file: string): boolean {
  const known = fitCache.get(file);
  if (known !== undefined) return known;
  let fits = false;
  try {
    const elf = readElfFile(file);
    const want = targetFacts(hostTarget()).elf;
    fits = want !== null && elf.machine === want.machine && elf.class === want.class;
  } catch {
    // Missing, unreadable or not ELF: the loader would skip it too.
    fits = false;
  }
  fitCache.set(file, fits);
  return fits;
}

let ldSoCacheBytes: Buffer | undefined;

/** `/etc/ld.so.cache`, read once per process; empty where there is none (musl, minimal containers). */
function ldSoCacheFile(): Buffer {
  if (ldSoCacheBytes === undefined) {
    try {
      // Descriptor calls a start makes anyway: the first fs.readFileSync of a process costs ≈ 0.4 ms more.
      ldSoCacheBytes = readSmallFile(LD_SO_CACHE);
    } catch {
      // No cache: the default directories remain.
      ldSoCacheBytes = Buffer.alloc(0);
    }
  }
  return ldSoCacheBytes;
}

function fromLdSoCache(name: string): Resolution | null {
  const found = ldSoCacheLookup(ldSoCacheFile(), name);
  // Entries are filtered by the cache's architecture flags, as ld.so does, so
  // the file itself need not be opened to check its machine.
  return found === null || !fs.existsSync(found) ? null : { path: found, via: 'ld.so.cache' };
}

/**
 * The path `/etc/ld.so.cache` (given as bytes) records for `name` on this
 * architecture, or null. Lookups use the native `indexOf` instead of walking
 * every entry in JavaScript: this runs on every start, while the code is cold.
 *
 * @example
 * ldSoCacheLookup(fs.readFileSync('/etc/ld.so.cache'), 'libz.so.1') // '/lib/x86_64-linux-gnu/libz.so.1'
 */
export function ldSoCacheLookup(bytes: Buffer, name: string): string | null {
  // The new-format table stands alone (glibc ≥ 2.32) or follows the old one;
  // its string offsets count from the start of its own header.
  const base = bytes.indexOf(CACHE_MAGIC, 0, 'latin1');
  if (base < 0 || base + CACHE_HEADER_BYTES > bytes.length) return null;
  const count = bytes.readUInt32LE(base + 20);
  const entries = base + CACHE_HEADER_BYTES;
  const entriesEnd = Math.min(bytes.length, entries + count * CACHE_ENTRY_BYTES);
  const wanted = targetFacts(hostTarget()).glibc?.ldCacheFlags;
  // ldconfig shares string tails: a key is often the basename inside its own
  // path ("/lib/…/libz.so.1"), so the name may follow a "/" as well as a NUL.
  const needle = Buffer.from(`${name}\0`, 'latin1');
  for (let at = bytes.indexOf(needle, entriesEnd); at >= 0; at = bytes.indexOf(needle, at + 1)) {
    const before = bytes[at - 1];
    if (before !== 0 && before !== 0x2f) continue;
    const key = Buffer.alloc(4);
    key.writeUInt32LE(at - base);
    // Find the entries whose key field holds this string's offset.
    for (let e = bytes.indexOf(key, entries); e >= 0 && e < entriesEnd; e = bytes.indexOf(key, e + 1)) {
      const entry = e - 4;
      if ((entry - entries) % CACHE_ENTRY_BYTES !== 0) continue;
      const flags = bytes.readInt32LE(entry);
      if (wanted !== undefined && ((flags & FLAG_TYPE_MASK) !== (wanted & FLAG_TYPE_MASK) || (flags & FLAG_ARCH_MASK) !== (wanted & FLAG_ARCH_MASK))) continue;
      const value = base + bytes.readUInt32LE(entry + 8);
      const end = bytes.indexOf(0, value);
      if (value < bytes.length && end > value) return bytes.toString('utf8', value, end);
    }
  }
  return null;
}

/**
 * Where the system's dynamic linker would find a library that the bundle does
 * not provide: the requesting library's RPATH/RUNPATH, `LD_LIBRARY_PATH`,
 * `/etc/ld.so.cache` and the default directories — the order glibc's ld.so
 * searches them. Looking first means a missing dependency is reported by name
 * (`E_MISSING_DEP`) instead of as a bare `dlopen` message.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import createDebug from 'debug';
import { readElfFile } from './elf-file';
import { hostTarget, targetFacts } from './variant';

const debug = createDebug('dlbundle:plan');

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

let cacheEntries: ReadonlyMap<string, string[]> | undefined;

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
  const ldLibraryPath = (process.env.LD_LIBRARY_PATH ?? '').split(/[:;]/).filter((d) => d !== '');
  const found =
    (ctx.runpath.length === 0 ? inDirs(ctx.rpath ?? [], 'rpath') : null) ??
    inDirs(ldLibraryPath, 'LD_LIBRARY_PATH') ??
    inDirs(ctx.runpath, 'runpath') ??
    inDirs((ldSoCache().get(name) ?? []).map((p) => path.dirname(p)), 'ld.so.cache') ??
    inDirs(defaultDirectories(), 'default directory');
  debug('%s → %s', name, found === null ? 'not found' : `${found.path} (${found.via})`);
  return found;
}

function expandOrigin(dir: string, origin: string): string {
  return dir.replace(/\$(ORIGIN\b|\{ORIGIN\})/g, origin);
}

// glibc's built-in trusted directories, multiarch ones first as Debian builds it.
function defaultDirectories(): string[] {
  const glibc = targetFacts(hostTarget()).glibc;
  const multiarch = glibc === null ? [] : [`/lib/${glibc.multiarch}`, `/usr/lib/${glibc.multiarch}`];
  return [...multiarch, '/lib64', '/usr/lib64', '/lib', '/usr/lib'];
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

/**
 * The entries of `/etc/ld.so.cache` for this architecture: library name →
 * paths, read once per process. Empty where there is no glibc cache.
 *
 * @example
 * ldSoCache().get('libz.so.1') // ['/lib/x86_64-linux-gnu/libz.so.1']
 */
export function ldSoCache(file = LD_SO_CACHE): ReadonlyMap<string, string[]> {
  if (file === LD_SO_CACHE && cacheEntries !== undefined) return cacheEntries;
  const entries = new Map<string, string[]>();
  let bytes: Buffer;
  try {
    bytes = fs.readFileSync(file);
  } catch {
    // musl systems and minimal containers have no cache; the directories remain.
    bytes = Buffer.alloc(0);
  }
  parseLdSoCache(bytes, entries);
  if (file === LD_SO_CACHE) cacheEntries = entries;
  return entries;
}

function parseLdSoCache(bytes: Buffer, into: Map<string, string[]>): void {
  // The new-format table stands alone (glibc ≥ 2.32) or follows the old one.
  const base = bytes.indexOf(CACHE_MAGIC, 0, 'latin1');
  if (base < 0 || base + CACHE_HEADER_BYTES > bytes.length) return;
  const count = bytes.readUInt32LE(base + 20);
  const archFlags = targetFacts(hostTarget()).glibc?.ldCacheFlags;
  const readString = (offset: number): string | null => {
    const start = base + offset;
    const end = bytes.indexOf(0, start);
    return start < bytes.length && end > start ? bytes.toString('utf8', start, end) : null;
  };
  for (let i = 0; i < count; i++) {
    const at = base + CACHE_HEADER_BYTES + i * CACHE_ENTRY_BYTES;
    if (at + CACHE_ENTRY_BYTES > bytes.length) break;
    const flags = bytes.readInt32LE(at);
    if (archFlags !== undefined && ((flags & FLAG_TYPE_MASK) !== (archFlags & FLAG_TYPE_MASK) || (flags & FLAG_ARCH_MASK) !== (archFlags & FLAG_ARCH_MASK))) continue;
    const key = readString(bytes.readUInt32LE(at + 4));
    const value = readString(bytes.readUInt32LE(at + 8));
    if (key === null || value === null) continue;
    into.set(key, [...(into.get(key) ?? []), value]);
  }
}

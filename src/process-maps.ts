/**
 * What this process has mapped (`/proc/self/maps`): the libraries already
 * loaded, and through them the C library it runs on. One native read and
 * string searches, cheap enough for every start.
 */
import * as fs from 'node:fs';

/**
 * The text of `/proc/self/maps`. Empty where /proc is not readable.
 *
 * @example
 * processMappings().includes('/libc.so.6\n')
 */
export function processMappings(): string {
  try {
    return fs.readFileSync('/proc/self/maps', 'latin1');
  } catch {
    // No /proc (some sandboxes): callers fall back to other evidence.
    return '';
  }
}

/**
 * The path of a file of exactly that name mapped into this process, or null.
 *
 * @example
 * mappedPath('libc.so.6', processMappings()) // '/usr/lib/x86_64-linux-gnu/libc.so.6'
 */
export function mappedPath(name: string, mappings: string): string | null {
  const end = mappings.indexOf(`/${name}\n`);
  if (end < 0) return null;
  const start = mappings.lastIndexOf(' ', end) + 1;
  return mappings.slice(start, end + name.length + 1);
}

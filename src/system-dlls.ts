/**
 * Where Windows would find a DLL that the bundle does not provide, so that a
 * missing one is reported by name (`E_MISSING_DEP`) before any DLL is loaded,
 * instead of as LoadLibrary's "The specified module could not be found"
 * (error 126), which names none. The Windows counterpart of system-libs.ts.
 *
 * The order is the loader's for a DLL's imports (standard search order, safe
 * DLL search mode): an API set (`api-ms-win-*`, `ext-ms-*`: names the loader
 * maps to system DLLs, present on Windows 10 and later), a DLL this process
 * has already loaded under that name, the application's directory (the one
 * node.exe or Electron's executable is in), System32, the 16-bit system
 * directory, the Windows directory, the current directory, then PATH.
 * KnownDLLs need no step of their own: every one of them is in System32.
 */
import fs = require('node:fs');
import path = require('node:path');
import { logger } from './log';
import { koffi } from './koffi';

const debug = logger('dlbundle:plan');

/** Where a DLL was found, and through which search step. */
export interface DllResolution {
  /** The file, or the name itself for an API set and a loaded DLL. */
  readonly path: string;
  readonly via: 'API set' | 'loaded' | 'application directory' | 'system directory' | 'Windows directory' | 'current directory' | 'PATH';
}

/** What {@link resolveSystemDll} searches, in the loader's words: `E_MISSING_DEP` says it. */
export const DLL_SEARCH = 'the DLLs this process has loaded, the application directory, System32, the Windows directory, the current directory and PATH';

type GetModuleHandle = (name: string) => unknown;
let getModuleHandle: GetModuleHandle | undefined;

/** Whether this process has a DLL loaded under the file name `name` (GetModuleHandleW: matched in any case). */
function loadedModule(name: string): boolean {
  getModuleHandle ??= koffi().load('kernel32.dll').func('void *GetModuleHandleW(const char16_t *name)') as GetModuleHandle;
  return getModuleHandle(name) !== null;
}

/**
 * Finds the DLL `name` (an import of a bundled DLL) as Windows would, or
 * returns null. File names match in any case, as on Windows's file systems.
 *
 * @example
 * resolveSystemDll('KERNEL32.dll') // { path: 'C:\\Windows\\system32\\KERNEL32.dll', via: 'loaded' }
 * resolveSystemDll('api-ms-win-crt-heap-l1-1-0.dll') // { path: 'api-ms-win-crt-heap-l1-1-0.dll', via: 'API set' }
 */
export function resolveSystemDll(name: string, env: NodeJS.ProcessEnv = process.env): DllResolution | null {
  const found = search(name, env);
  debug('%s → %s', name, found === null ? 'not found' : `${found.path} (${found.via})`);
  return found;
}

function search(name: string, env: NodeJS.ProcessEnv): DllResolution | null {
  // A name with a directory is opened as it is; none of the searches applies.
  if (name.includes('\\') || name.includes('/')) return exists(name) ? { path: name, via: 'application directory' } : null;
  if (/^(api|ext)-ms-/i.test(name)) return { path: name, via: 'API set' };
  if (loadedModule(name)) return { path: name, via: 'loaded' };
  const windir = env.SystemRoot ?? env.windir ?? 'C:\\Windows';
  const steps: readonly [string, DllResolution['via']][] = [
    [path.dirname(process.execPath), 'application directory'],
    [path.join(windir, 'System32'), 'system directory'],
    [path.join(windir, 'System'), 'system directory'],
    [windir, 'Windows directory'],
    [process.cwd(), 'current directory'],
    ...(env.PATH ?? env.Path ?? '').split(';').filter((d) => d !== '' && path.isAbsolute(d)).map((d): [string, DllResolution['via']] => [d, 'PATH']),
  ];
  for (const [dir, via] of steps) {
    const candidate = path.join(dir, name);
    if (exists(candidate)) return { path: candidate, via };
  }
  return null;
}

function exists(file: string): boolean {
  return fs.statSync(file, { throwIfNoEntry: false })?.isFile() === true;
}

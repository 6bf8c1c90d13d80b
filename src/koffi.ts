/**
 * The one place dlbundle obtains koffi. It is required on first use, never at
 * import, because loading it maps koffi's native module into the process.
 */
import type * as Koffi from 'koffi' with { 'resolution-mode': 'require' };

/** koffi's module object. */
export type KoffiModule = typeof Koffi;
/** A library loaded by koffi; it stays loaded while this object is referenced. */
export type KoffiLibrary = Koffi.LibraryHandle;

let cached: KoffiModule | undefined;

/**
 * koffi, loaded on the first call.
 *
 * @example
 * const lib = koffi().load('/path/libfoo.so');
 */
export function koffi(): KoffiModule {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  cached ??= require('koffi') as KoffiModule;
  return cached;
}

/**
 * The build commands' optional dependencies (esbuild, postject): loaded when
 * a command needs them, with an install hint when they are absent.
 */
import { DlbundleError } from '../errors';

/**
 * `require(name)`, or `E_USAGE` saying which package `purpose` needs and how to install it.
 *
 * @example
 * const esbuild = requireOptional<EsbuildLike>('esbuild', '`dlbundle sea`');
 */
export function requireOptional<T>(name: string, purpose: string): T {
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    return require(name) as T;
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    if (err.code === 'MODULE_NOT_FOUND' && err.message.includes(`'${name}'`)) {
      throw new DlbundleError('E_USAGE', `${purpose} needs the package ${JSON.stringify(name)}, which is not installed.`, `Install it next to dlbundle: npm install --save-dev ${name}`, { cause: e });
    }
    throw e;
  }
}

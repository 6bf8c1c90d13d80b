/**
 * The build commands' optional dependency (esbuild): loaded when
 * a command needs them, with an install hint when they are absent. They are
 * optional peer dependencies, not dependencies: an application that only
 * loads bundles at run time (and Electron's app.asar) does not carry 11 MB of
 * esbuild; a project that builds single files installs them beside dlbundle.
 */
import { DlbundleError } from '../errors';
import { ownPackage } from '../own-package';

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
      const range = peerRange(name);
      throw new DlbundleError('E_USAGE', `${purpose} needs the package ${JSON.stringify(name)}, which is not installed.`, `Install it next to dlbundle: npm install --save-dev ${range === null ? name : `"${name}@${range}"`}`, { cause: e });
    }
    throw e;
  }
}

/** The version range of `name` in dlbundle's peerDependencies, or null. */
function peerRange(name: string): string | null {
  try {
    return ownPackage().peerDependencies?.[name] ?? null;
  } catch {
    return null;
  }
}

/**
 * dlbundle's own package.json, as installed beside `dist/`: the CLI's
 * `--version` and the install hint for a missing build tool read it.
 */
import fs = require('node:fs');
import path = require('node:path');

/** The fields of dlbundle's package.json that it reads about itself. */
export interface OwnPackage {
  readonly version: string;
  readonly peerDependencies?: Readonly<Record<string, string>>;
}

/**
 * dlbundle's package.json (this file is `dist/own-package.js`, or
 * `src/own-package.ts` when run from the sources: either way one level down).
 *
 * @example
 * ownPackage().version // '0.1.0'
 */
export function ownPackage(): OwnPackage {
  return JSON.parse(fs.readFileSync(path.join(__dirname, '..', 'package.json'), 'utf8')) as OwnPackage;
}

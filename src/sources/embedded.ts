/**
 * Bundles carried inside a single-file program's JavaScript: `dlbundle bundle
 * --bundle DIR` puts each bundle's generated module (as `pack --module` writes
 * it) into the program and registers it here with the directory it was built
 * from, relative to the entry script — so that `autoSource` finds it as it
 * finds a directory, an asar archive or a single executable's assets.
 */
import path = require('node:path');
import { DlbundleError } from '../errors';
import type { Manifest } from '../manifest';
import type { BlobInput } from './buffers';
import { recordedBundle } from './recorded';

/** The `Symbol.for` key of the list the program's injected module fills. */
export const EMBEDDED_BUNDLES_KEY = 'dlbundle.embedded-bundles.v1';

/** A bundle the program carries: its directory relative to the entry script at build time, and its generated module's exports. */
export interface EmbeddedBundle {
  readonly dir: string;
  readonly manifest: Manifest | string;
  readonly blobs: Readonly<Record<string, BlobInput>>;
}

/**
 * The carried bundle that `dir` names (relative to the program's directory,
 * as `dlbundle bundle --bundle` recorded it; the only one when there is one),
 * or null when this program carries none.
 *
 * @example
 * embeddedBundle(path.join(__dirname, 'native')) // { dir: 'native', manifest, blobs } | null
 */
export function embeddedBundle(dir: string): EmbeddedBundle | null {
  const carried = (globalThis as unknown as Record<symbol, readonly EmbeddedBundle[] | undefined>)[Symbol.for(EMBEDDED_BUNDLES_KEY)];
  if (carried === undefined || carried.length === 0) return null;
  const main = require.main?.filename ?? process.argv[1] ?? '';
  const { match, wanted } = recordedBundle(carried, path.dirname(path.resolve(main)), dir);
  if (match === null) {
    throw new DlbundleError(
      'E_USAGE',
      `This program carries no bundle built from ${JSON.stringify(wanted)}; it carries ${carried.map((b) => JSON.stringify(b.dir)).join(', ')}.`,
      'Pass autoSource the directory given to `dlbundle bundle --bundle`, relative to the entry script.',
    );
  }
  return match;
}

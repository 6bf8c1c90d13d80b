/**
 * `autoSource(dir)`: the one call an application makes to find its bundle
 * wherever it was shipped — inside a single executable, inside a pkg
 * executable's snapshot, inside a single-file program's JavaScript
 * (`dlbundle bundle --bundle`), inside an Electron asar archive (with or
 * without an unpacked copy), or in a plain directory.
 * The choice and its reason appear in `explain().source`.
 */
import fs = require('node:fs');
import path = require('node:path');
import { DlbundleError } from '../errors';
import { asarLocation, fromAsar, unpackedTwin } from './asar';
import { fromBuffers } from './buffers';
import { fromDirectory, inPlaceDirectory } from './directory';
import { embeddedBundle } from './embedded';
import { recordedBundle } from './recorded';
import { inPkgSnapshot, isPkgExecutable } from './pkg-snapshot';
import { fromSea, seaModule, SEA_INDEX_ASSET } from './sea';
import type { Source } from './source';

/**
 * The right source for the bundle that lives in `dir` during development:
 * - `dir` inside the snapshot of an executable built by pkg: that directory,
 *   read as pkg allows (`fromDirectory` does) and extracted through the cache;
 * - in any other single executable application: its assets (`fromSea`);
 * - in a program built by `dlbundle bundle --bundle`: the bundle it carries
 *   (`fromBuffers` over the generated module);
 * - `dir` inside `….asar/` whose `….asar.unpacked/` twin holds the bundle:
 *   those files, loaded in place (no copy, no cache directory);
 * - `dir` inside an asar archive without that twin: the archive (`fromAsar`),
 *   extracted through the cache;
 * - otherwise the directory itself (`fromDirectory`).
 *
 * @example
 * openBundle({ source: autoSource(path.join(__dirname, 'native')) });
 */
export function autoSource(dir: string): Source {
  // fromDirectory explains itself there.
  if (inPkgSnapshot(dir)) return fromDirectory(dir);
  // pkg's --sea executables are SEAs too, without dlbundle's assets.
  if (seaModule() !== null && !isPkgExecutable()) {
    const name = seaBundleName(dir);
    return { ...fromSea(name), reason: `this process is a single executable application: bundle ${JSON.stringify(name)} from its assets` };
  }
  const carried = embeddedBundle(dir);
  if (carried !== null) {
    const name = typeof carried.manifest === 'string' ? '' : ` ${JSON.stringify(carried.manifest.name)}`;
    return { ...fromBuffers(carried.manifest, carried.blobs), reason: `this program carries its libraries in its JavaScript (dlbundle bundle --bundle ${carried.dir}): bundle${name}` };
  }
  const inArchive = asarLocation(dir);
  if (inArchive !== null) {
    const twin = unpackedTwin(inArchive.archive, inArchive.inner);
    if (twin !== null) {
      return { ...inPlaceDirectory(twin), reason: `${JSON.stringify(dir)} is inside ${JSON.stringify(inArchive.archive)}, and its unpacked copy ${JSON.stringify(twin)} holds the bundle: loaded in place` };
    }
    return { ...fromAsar(inArchive.archive, inArchive.inner), reason: `${JSON.stringify(dir)} is inside the asar archive ${JSON.stringify(inArchive.archive)}, which has no unpacked copy of it: extracted through the cache` };
  }
  return { ...fromDirectory(dir), reason: `${JSON.stringify(dir)} is a plain directory` };
}

interface SeaIndex {
  readonly bundles: readonly { readonly name: string; readonly dir: string }[];
}

// The executable's directory is the entry script's (recorded.ts).
function seaBundleName(dir: string): string {
  let index: SeaIndex;
  try {
    const sea = seaModule();
    index = JSON.parse(sea === null ? '{}' : sea.getAsset(SEA_INDEX_ASSET, 'utf8')) as SeaIndex;
  } catch (e) {
    throw new DlbundleError('E_MISSING_BLOB', `This executable has no ${SEA_INDEX_ASSET}, so autoSource cannot tell which bundle ${JSON.stringify(dir)} was.`, 'Build it with `dlbundle sea`, or use fromSea(name) with the bundle name.', { cause: e });
  }
  // realpath(3) in one call: Node's own walk, not yet warmed up by a module loader in a single executable, costs ≈ 0.5 ms.
  const { match, wanted } = recordedBundle(index.bundles, path.dirname(fs.realpathSync.native(process.execPath)), dir);
  if (match === null) {
    throw new DlbundleError('E_USAGE', `No bundle of this executable was built from ${JSON.stringify(wanted)}; it has ${index.bundles.map((b) => `${b.name} (${b.dir})`).join(', ')}.`, 'Pass autoSource the directory given to `dlbundle sea --bundle`, relative to the entry script, or use fromSea(name).');
  }
  return match.name;
}

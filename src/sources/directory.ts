/**
 * A bundle directory on disk, as `dlbundle pack` writes it: `dlbundle.json`
 * beside one sub-directory of blobs per variant. While a pack replaces a
 * variant, its new files are also in `.<variant>.<digest>/`, the generation
 * directory of the digest dlbundle.json names: blobs are read from there
 * first, so the manifest's rename is the one switch from old to new files.
 *
 * Inside a pkg executable's snapshot (`/snapshot/…`) files cannot be opened,
 * only read whole or found in pkg's archive (pkg-snapshot.ts): there each
 * blob is read that way, and copied out by the cache like any other.
 */
import fs = require('node:fs');
import path = require('node:path');
import { DlbundleError } from '../errors';
import { ioError } from '../file-io';
import type { Io, Step } from '../io';
import { MANIFEST_FILE, parseManifest, type Manifest, type ManifestFile, type ParseManifestOptions } from '../manifest';
import { inPkgSnapshot, readSnapshotFile } from './pkg-snapshot';
import { memoryBlob, type BlobReader, type Source } from './source';

/**
 * The bundle in directory `dir` (the one holding `dlbundle.json`).
 *
 * @example
 * openBundle({ source: fromDirectory(path.join(__dirname, 'native')) });
 */
export function fromDirectory(dir: string): Source {
  const root = path.resolve(dir);
  const snapshot = inPkgSnapshot(root);
  let manifest: Manifest | undefined;
  // Where the file is while a pack switches to this manifest's digest (gone once it is done).
  const generationPath = (variant: string, file: ManifestFile): string | null => {
    const digest = manifest?.variants[variant]?.digest;
    return digest === undefined ? null : path.join(root, generationDirName(variant, digest), file.name);
  };
  return {
    kind: 'directory',
    location: root,
    ...(snapshot ? { reason: `${JSON.stringify(root)} is inside this pkg executable's snapshot, where files cannot be opened or loaded: each one is read through pkg (in place from its archive where it is not compressed) and extracted through the cache` } : {}),
    manifest() {
      manifest ??= readManifestFile(root, { checkDigest: false, variants: 'on-use' }) ?? undefined;
      if (manifest === undefined) {
        const file = path.join(root, MANIFEST_FILE);
        // pkg packs the files that code requires, not the ones it reads: a bundle directory must be listed.
        const next = snapshot
          ? 'List the bundle directory among pkg\'s assets ("pkg": { "assets": ["native/**/*"] } in package.json, with its path) and build the executable again.'
          : 'Ship the directory `dlbundle pack --out` wrote, and point fromDirectory at it.';
        throw new DlbundleError('E_IO', `${JSON.stringify(file)} does not exist: ${JSON.stringify(root)} holds no bundle.`, next, { file, dir: root });
      }
      return manifest;
    },
    *openBlob(io, variant, file) {
      const generation = generationPath(variant, file);
      if (generation !== null) {
        try {
          return yield* openFile(io, generation, snapshot);
        } catch (e) {
          if (!isMissing(e)) throw ioError(generation, e);
        }
      }
      const blobPath = path.join(root, variant, file.name);
      try {
        return yield* openFile(io, blobPath, snapshot);
      } catch (e) {
        throw isMissing(e) ? missingBlob(e, root, variant, file.name, blobPath) : ioError(blobPath, e);
      }
    },
  };
}

/**
 * The name of the generation directory in which `dlbundle pack` puts the files
 * of `variant` with `digest` before switching dlbundle.json to them.
 *
 * @example
 * generationDirName('linux-x64-gnu', '1a2b3c4d5e6f7a8b') // '.linux-x64-gnu.1a2b3c4d5e6f7a8b'
 */
export function generationDirName(variant: string, digest: string): string {
  return `.${variant}.${digest}`;
}

/**
 * The variant and digest a generation directory's name holds, or null when
 * `name` is not one.
 *
 * @example
 * parseGenerationDirName('.linux-x64-gnu.1a2b3c4d5e6f7a8b') // { variant: 'linux-x64-gnu', digest: '1a2b3c4d5e6f7a8b' }
 */
export function parseGenerationDirName(name: string): { variant: string; digest: string } | null {
  const m = /^\.([a-z0-9][a-z0-9_.+-]*)\.([0-9a-f]{16})$/.exec(name);
  return m === null ? null : { variant: m[1] as string, digest: m[2] as string };
}

/**
 * The validated manifest of the bundle directory `dir`, or null when it has
 * no `dlbundle.json`. Any other failure to read it is `E_IO`.
 *
 * @example
 * readManifestFile('dist/native')?.variants['linux-x64-gnu']
 */
export function readManifestFile(dir: string, options: ParseManifestOptions = {}): Manifest | null {
  const file = path.join(dir, MANIFEST_FILE);
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    if (isMissing(e)) return null;
    throw ioError(file, e);
  }
  return parseManifest(text, file, options);
}

function isMissing(e: unknown): boolean {
  return (e as NodeJS.ErrnoException).code === 'ENOENT';
}

function missingBlob(e: unknown, root: string, variant: string, name: string, blobPath: string): DlbundleError {
  return new DlbundleError('E_MISSING_BLOB', `The bundle in ${JSON.stringify(root)} lists ${JSON.stringify(name)} for ${variant}, but ${JSON.stringify(blobPath)} does not exist.`, 'Ship the whole bundle directory as `dlbundle pack` wrote it, or pack it again.', { file: name, dir: root, cause: e });
}

// In pkg's snapshot a file cannot be opened, only read whole or viewed in pkg's archive.
function* openFile(io: Io, file: string, inSnapshot: boolean): Step<BlobReader> {
  return inSnapshot ? memoryBlob(readSnapshotFile(file)) : fileBlob(yield* io.openRead(file));
}

function fileBlob(fd: number): BlobReader {
  return {
    *read(io: Io, position: number, scratch: Buffer) {
      const n = yield* io.read(fd, scratch, position);
      return scratch.subarray(0, n);
    },
    close: (io: Io) => io.close(fd),
  };
}

/**
 * A bundle directory whose files are loaded where they are, with no copy and
 * no cache directory: an Electron app's `app.asar.unpacked/<dir>`, installed
 * with the application. Sizes are still checked before loading.
 *
 * @example
 * openBundle({ source: inPlaceDirectory('/opt/app/resources/app.asar.unpacked/native') });
 */
export function inPlaceDirectory(dir: string): Source {
  const source = fromDirectory(dir);
  return { ...source, kind: 'in-place', inPlaceDir: (variant) => path.join(source.location, variant) };
}

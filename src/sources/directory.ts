/**
 * A bundle directory on disk, as `dlbundle pack` writes it: `dlbundle.json`
 * beside one sub-directory of blobs per variant.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { DlbundleError } from '../errors';
import { ioError } from '../file-io';
import type { Io } from '../io';
import { MANIFEST_FILE, parseManifest, type Manifest } from '../manifest';
import type { BlobReader, Source } from './source';

/**
 * The bundle in directory `dir` (the one holding `dlbundle.json`).
 *
 * @example
 * openBundle({ source: fromDirectory(path.join(__dirname, 'native')) });
 */
export function fromDirectory(dir: string): Source {
  const root = path.resolve(dir);
  let manifest: Manifest | undefined;
  return {
    kind: 'directory',
    location: root,
    manifest() {
      if (manifest === undefined) {
        const file = path.join(root, MANIFEST_FILE);
        let text: string;
        try {
          text = fs.readFileSync(file, 'utf8');
        } catch (e) {
          throw ioError(file, e);
        }
        manifest = parseManifest(text, file, { checkDigest: false });
      }
      return manifest;
    },
    *openBlob(io, variant, file) {
      const blobPath = path.join(root, variant, file.name);
      try {
        return fileBlob(yield* io.openRead(blobPath));
      } catch (e) {
        throw isMissing(e) ? missingBlob(e, root, variant, file.name, blobPath) : ioError(blobPath, e);
      }
    },
    *copyFile(io, variant, file, to) {
      const blobPath = path.join(root, variant, file.name);
      try {
        yield* io.copyFile(blobPath, to);
      } catch (e) {
        // A copy fails on either side; only a missing source is the bundle's fault.
        if (isMissing(e) && !fs.existsSync(blobPath)) throw missingBlob(e, root, variant, file.name, blobPath);
        throw ioError(to, e, 'write');
      }
      return true;
    },
  };
}

function isMissing(e: unknown): boolean {
  return (e as NodeJS.ErrnoException).code === 'ENOENT';
}

function missingBlob(e: unknown, root: string, variant: string, name: string, blobPath: string): DlbundleError {
  return new DlbundleError('E_MISSING_BLOB', `The bundle in ${JSON.stringify(root)} lists ${JSON.stringify(name)} for ${variant}, but ${JSON.stringify(blobPath)} does not exist.`, 'Ship the whole bundle directory as `dlbundle pack` wrote it, or pack it again.', { file: name, dir: root, cause: e });
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

/**
 * Build-time packing: reads shared objects, records what each one is in the
 * manifest, and lays the blobs out as `<out>/<target>/<file>` beside
 * `<out>/dlbundle.json`. Everything is checked before the output directory is
 * touched, and the new variant replaces the old one by rename, so a refused or
 * interrupted pack leaves the previous bundle as it was.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import createDebug from 'debug';
import { DlbundleError } from './errors';
import { readElf } from './elf';
import { ioError } from './file-io';
import { createXxh64 } from './hash';
import {
  MANIFEST_FILE,
  MANIFEST_FORMAT,
  parseManifest,
  unsafeNameReason,
  variantDigest,
  type Manifest,
  type ManifestFile,
  type ManifestVariant,
} from './manifest';
import { compareNames, dependencyGraph, externalDependencies, loadOrder } from './plan';
import { readManifestFile } from './sources/directory';
import { hostTarget, parseVariantKey, targetFacts, variantKey } from './variant';

const debug = createDebug('dlbundle:pack');

/** Options of {@link pack}. */
export interface PackOptions {
  /** The bundle's name (first half of its cache directory's name). */
  readonly name: string;
  /** The bundle directory to create or update. */
  readonly out: string;
  /** The target key of these files; defaults to this machine's ({@link hostTarget}). */
  readonly target?: string;
  /** CPU features this build needs (`avx2`, `fma`): the variant is keyed `<target>+avx2+fma` and chosen only on CPUs that have them. */
  readonly requires?: readonly string[];
  /** File names of libraries the application loads with `bundle.optional()`; marked so in the manifest. */
  readonly optional?: readonly string[];
}

/** What {@link pack} wrote. */
export interface PackResult {
  /** Path of the written `dlbundle.json`. */
  readonly manifestPath: string;
  /** The target key the files were packed under. */
  readonly target: string;
  /** The new variant as recorded in the manifest. */
  readonly variant: ManifestVariant;
  /** The whole manifest as written. */
  readonly manifest: Manifest;
}

// Names that look like shared objects: libfoo.so, libfoo.so.1.2, addon.node.
const SHARED_OBJECT_NAME = /\.so(\.[0-9A-Za-z_.-]+)?$|\.node$/;

/**
 * Packs shared objects (files, or directories whose `*.so*` / `*.node` files are
 * taken) into the bundle directory `options.out`, adding or replacing the
 * variant of `options.target`.
 *
 * @example
 * pack(['build/Release'], { name: 'demo', out: 'dist/native' });
 */
export function pack(inputs: readonly string[], options: PackOptions): PackResult {
  const nameProblem = unsafeNameReason(options.name);
  if (nameProblem !== null || !/^[A-Za-z0-9][A-Za-z0-9_.+-]*$/.test(options.name)) {
    throw new DlbundleError('E_USAGE', `Bundle name ${JSON.stringify(options.name)} is not usable as a directory name.`, 'Use letters, digits, ".", "_", "+" and "-", starting with a letter or digit.');
  }
  const base = options.target ?? hostTarget();
  const facts = targetFacts(base);
  const target = variantKey(base, options.requires ?? []);
  parseVariantKey(target);
  if (facts.elf === null) {
    throw new DlbundleError('E_USAGE', `Target ${JSON.stringify(base)} does not use ELF shared objects.`, 'dlbundle packs ELF libraries (Linux, FreeBSD); choose an ELF target.');
  }
  const expected = facts.elf;
  const sources = collectInputs(inputs);
  for (const name of options.optional ?? []) {
    if (!sources.has(name)) throw new DlbundleError('E_USAGE', `--optional names ${JSON.stringify(name)}, which is not among the files packed.`, `Use one of: ${[...sources.keys()].join(', ')}.`);
  }
  const manifestPath = path.join(options.out, MANIFEST_FILE);
  const previous = readExistingManifest(manifestPath, options.name);

  fs.mkdirSync(options.out, { recursive: true });
  const staging = fs.mkdtempSync(path.join(options.out, `.${target}.staging-`));
  try {
    const files: ManifestFile[] = [];
    for (const [name, from] of sources) {
      const bytes = readInput(from);
      const elf = readElf(bytes, from);
      if (elf.type !== 'dyn') {
        throw new DlbundleError('E_NOT_SHARED_OBJECT', `${JSON.stringify(from)} is an ELF ${elf.type} file, not a shared object.`, 'Pack shared libraries (linked with -shared) and .node addons only.', { file: from });
      }
      if (elf.machine !== expected.machine || elf.class !== expected.class) {
        throw new DlbundleError(
          'E_WRONG_ARCH',
          `${JSON.stringify(from)} is built for ${elf.machine} (ELF${elf.class}), but target ${JSON.stringify(base)} runs ${expected.machine} (ELF${expected.class}).`,
          `Pack it under its own target with --target, or rebuild it for ${expected.machine}.`,
          { file: from },
        );
      }
      writeBlob(path.join(staging, name), bytes);
      files.push({
        name,
        size: bytes.length,
        xxh64: createXxh64().update(bytes).digest(),
        soname: elf.soname,
        needed: elf.needed,
        runpath: elf.runpath,
        machine: elf.machine,
        ...(options.optional?.includes(name) === true ? { optional: true as const } : {}),
      });
      debug('packed %s (%d bytes) from %s', name, bytes.length, from);
    }
    const graph = dependencyGraph(files);
    const variant: ManifestVariant = {
      digest: variantDigest(files),
      files: [...files].sort((a, b) => compareNames(a.name, b.name)),
      order: loadOrder(graph),
      external: externalDependencies(graph),
    };
    const manifest: Manifest = {
      format: MANIFEST_FORMAT,
      name: options.name,
      variants: { ...previous?.variants, [target]: variant },
    };
    // Validate what is about to be written with the same reader that will load it.
    parseManifest(JSON.parse(JSON.stringify(manifest)), manifestPath);
    replaceDirectory(staging, path.join(options.out, target));
    writeFileAtomic(manifestPath, `${JSON.stringify(manifest, null, 2)}\n`);
    return { manifestPath, target, variant, manifest };
  } finally {
    fs.rmSync(staging, { recursive: true, force: true });
  }
}

/** Expands files and directories into (name in bundle → source path), refusing two inputs with one name. */
function collectInputs(inputs: readonly string[]): Map<string, string> {
  const byName = new Map<string, string>();
  const add = (name: string, from: string): void => {
    const other = byName.get(name);
    if (other !== undefined) {
      throw new DlbundleError('E_DUPLICATE_NAME', `${JSON.stringify(other)} and ${JSON.stringify(from)} would both be packed as ${JSON.stringify(name)}.`, 'Pack only one of them, or rename one.', { file: from });
    }
    byName.set(name, from);
  };
  for (const input of inputs) {
    let stat: fs.Stats;
    try {
      stat = fs.statSync(input);
    } catch (e) {
      throw ioError(input, e);
    }
    if (!stat.isDirectory()) {
      add(path.basename(input), input);
      continue;
    }
    for (const entry of fs.readdirSync(input, { withFileTypes: true }).sort((a, b) => compareNames(a.name, b.name))) {
      // Symlinks in a library directory are aliases (libz.so → libz.so.1.3); the
      // soname links are recreated at extraction, so only real files are taken.
      if (entry.isFile() && SHARED_OBJECT_NAME.test(entry.name)) add(entry.name, path.join(input, entry.name));
      else debug('skipped %s in %s', entry.name, input);
    }
  }
  if (byName.size === 0) {
    throw new DlbundleError('E_USAGE', 'Nothing to pack: no shared objects were found in the inputs.', 'Name .so files or .node addons, or directories that contain them.');
  }
  return byName;
}

function readInput(file: string): Buffer {
  try {
    return fs.readFileSync(file);
  } catch (e) {
    throw ioError(file, e);
  }
}

function readExistingManifest(manifestPath: string, name: string): Manifest | null {
  const manifest = readManifestFile(path.dirname(manifestPath));
  if (manifest === null) return null;
  if (manifest.name !== name) {
    throw new DlbundleError('E_USAGE', `${JSON.stringify(manifestPath)} holds bundle ${JSON.stringify(manifest.name)}, not ${JSON.stringify(name)}.`, 'Pack into another directory, or use the same --name.');
  }
  return manifest;
}

function writeBlob(file: string, bytes: Uint8Array): void {
  try {
    fs.writeFileSync(file, bytes, { mode: 0o755 });
  } catch (e) {
    throw ioError(file, e, 'write');
  }
}

// The old variant directory is moved aside before the new one is renamed in,
// so a crash in between leaves either the old or the new directory in place.
function replaceDirectory(from: string, to: string): void {
  const aside = `${to}.old-${process.pid}`;
  const hadOld = fs.existsSync(to);
  if (hadOld) fs.renameSync(to, aside);
  fs.renameSync(from, to);
  if (hadOld) fs.rmSync(aside, { recursive: true, force: true });
}

function writeFileAtomic(file: string, text: string): void {
  const tmp = `${file}.tmp-${process.pid}`;
  try {
    fs.writeFileSync(tmp, text);
    fs.renameSync(tmp, file);
  } catch (e) {
    fs.rmSync(tmp, { force: true });
    throw ioError(file, e, 'write');
  }
}

/**
 * Build-time packing: reads shared libraries (ELF for Linux targets, PE for
 * Windows, Mach-O for macOS: one architecture of a universal file), records
 * what each one is in the manifest, and lays the blobs out as `<out>/<target>/<file>` beside
 * `<out>/dlbundle.json`. Everything is checked before the output directory is
 * touched. Inputs are read in chunks (any size, little memory). The new files
 * become a complete generation directory `<out>/.<target>.<digest>/` first;
 * the rename of dlbundle.json is then the one switch point (readers look in
 * the generation directory of the digest they read before `<target>/`), and
 * the files are moved to `<target>/` after it. A pack killed at any instant
 * leaves the old bundle or the new one; the next pack removes what it left.
 * Modes follow the umask (0755 / 0644 under 022), like any build output.
 */
import fs = require('node:fs');
import path = require('node:path');
import { logger } from './log';
import { DlbundleError } from './errors';
import type { ElfInfo } from './formats/elf';
import { readSymbolVersionsFile } from './formats/elf-file';
import { binaryFormatOfFile, readBinaryFile } from './formats/binary-file';
import type { BinaryFormat, BinaryInfo } from './formats/binary';
import type { DylibCommand, MachOImage } from './formats/macho';
import { ioError, openFile, writeAllAt } from './file-io';
import { createXxh64 } from './hash';
import { runSync, syncIo } from './io';
import { stagingPrefix, sweepStaging } from './leases';
import { lockOutput } from './pack-lock';
import {
  BUNDLE_NAME_MAX_BYTES,
  MANIFEST_FILE,
  MANIFEST_FORMAT,
  parseManifest,
  unsafeNameReason,
  variantDigest,
  type Manifest,
  type ManifestFile,
  type ManifestVariant,
} from './manifest';
import { compareNames, dependencyGraph, externalDependencies, loadOrder, type DependencyGraph } from './plan';
import { generationDirName, parseGenerationDirName, readManifestFile } from './sources/directory';
import { hostTarget, knownFeatures, parseVariantKey, targetLibraries, variantKey, type TargetLibraries } from './variant';
import { nearest } from './nearest';
import { packageNativeFiles, type PackageNativeFiles } from './package-files';
import { resolveSystemLibrary } from './system-libs';
import { macosSystemLibrary, windowsSystemDll } from './system-names';
import { requiredVersions, type RequiredVersions } from './versions';

const debug = logger('dlbundle:pack');

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
  /** Called as the inputs are read: bytes done so far, of the inputs' total. */
  readonly onProgress?: (done: number, total: number) => void;
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
  /** What packs killed earlier had left in `out` and this one removed or finished (staging and generation directories). */
  readonly leftoversRemoved: readonly string[];
  /**
   * Libraries a packed file needs that are neither packed nor on this system
   * (looked up as the dynamic linker would, from where the file was packed);
   * checked when packing for this machine's target, and, for Windows and
   * macOS targets, by name: what such a system does not provide (its
   * KnownDLLs, API sets, System32 DLLs and the Visual C++ runtime; /usr/lib
   * and /System). Not for files marked optional, nor for delay-loaded DLLs
   * and weak dylibs. Most often a forgotten file: `libfoo.so.1.2.3` beside
   * `libfoo.so` when only `*.so` was given, `ggml-base.dll` beside `ggml.dll`.
   */
  readonly missing: readonly { readonly file: string; readonly dependency: string }[];
}

/**
 * A file packed under a name of its own instead of its base name: the name
 * the dynamic linker asks for when that is not the file's (a library found
 * through a symbolic link, a `.node` addon that is a link).
 */
export interface NamedInput {
  /** The name in the bundle (a plain base name). */
  readonly name: string;
  /** The file read (symbolic links followed). */
  readonly file: string;
}

// The names a directory's libraries have, by the target's format: libfoo.so,
// libfoo.so.1.2 (ELF); foo.dll (PE, in any case); libfoo.dylib and bundles,
// libfoo.so or foo.bundle (Mach-O); and addon.node everywhere. A directory
// of prebuilt files for several platforms gives only the target's.
const LIBRARY_NAMES: Readonly<Record<BinaryFormat, RegExp>> = {
  elf: /\.so(\.[0-9A-Za-z_.-]+)?$|\.node$/,
  pe: /\.dll$|\.node$/i,
  macho: /\.dylib$|\.so$|\.bundle$|\.node$/,
};

/** One input, as it will be packed. */
interface Input {
  readonly facts: PackedFacts;
  /** The input's identity when it was read: a file rebuilt since is refused. */
  readonly seen: fs.Stats;
  /** The bytes packed: the whole file, or one architecture of a universal Mach-O file. */
  readonly range: { readonly offset: number; readonly size: number };
}

/** What the manifest records of one input, whatever its format. */
interface PackedFacts {
  readonly format: BinaryFormat;
  readonly soname: string | null;
  readonly needed: readonly string[];
  readonly runpath: readonly string[];
  readonly machine: string;
  readonly weakNeeded: readonly string[];
  /** ELF inputs: every fact, for the check of dependencies on this machine. */
  readonly elf: ElfInfo | null;
  /** ELF inputs: the highest GLIBC / GLIBCXX / CXXABI version needed, by family (empty for other formats). */
  readonly versions: RequiredVersions;
}

const FORMAT_NAMES: Readonly<Record<BinaryFormat, string>> = { elf: 'an ELF file (Linux, FreeBSD)', pe: 'a PE file (Windows)', macho: 'a Mach-O file (macOS)' };

/**
 * Packs shared libraries (files, or directories whose libraries are taken —
 * `*.so*` and `*.node` for ELF targets, `*.dll` and `*.node` for Windows,
 * `*.dylib`, `*.so`, `*.bundle` and `*.node` for macOS — or files under
 * names of their own)
 * into the bundle directory `options.out`, adding or replacing the variant of
 * `options.target`. ELF files for Linux targets, PE DLLs for `win32-*`,
 * Mach-O dylibs and bundles for `darwin-*` (a universal file gives the
 * architecture of the target).
 *
 * @example
 * pack(['build/Release'], { name: 'demo', out: 'dist/native' });
 */
export function pack(inputs: readonly (string | NamedInput)[], options: PackOptions): PackResult {
  const nameProblem = unsafeNameReason(options.name, BUNDLE_NAME_MAX_BYTES);
  if (nameProblem !== null || !/^[A-Za-z0-9][A-Za-z0-9_.+-]*$/.test(options.name)) {
    throw new DlbundleError('E_USAGE', `Bundle name ${JSON.stringify(options.name)} is not usable as a directory name${nameProblem === null ? '' : `: it ${nameProblem}`}.`, `Use at most ${BUNDLE_NAME_MAX_BYTES} letters, digits, ".", "_", "+" and "-", starting with a letter or digit.`);
  }
  const base = options.target ?? hostTarget();
  const expected = targetLibraries(base);
  const target = variantKey(base, options.requires ?? []);
  const { features } = parseVariantKey(target);
  const known = knownFeatures(base);
  for (const f of known === null ? [] : features) {
    if (known?.includes(f) === true) continue;
    const guess = nearest(f, known ?? []);
    throw new DlbundleError(
      'E_USAGE',
      `${JSON.stringify(f)} is not a CPU feature of ${base}'s architecture${guess === null ? '' : `; did you mean ${JSON.stringify(guess)}?`} A variant that requires it would never be chosen.`,
      `Use the flag names Linux shows in /proc/cpuinfo: ${(known ?? []).slice(0, 12).join(', ')}, …`,
    );
  }
  const sources = collectInputs(inputs, expected.format);
  for (const name of options.optional ?? []) {
    if (!sources.has(name)) throw new DlbundleError('E_USAGE', `--optional names ${JSON.stringify(name)}, which is not among the files packed.`, `Use one of: ${[...sources.keys()].join(', ')}.`);
  }
  const manifestPath = path.join(options.out, MANIFEST_FILE);

  // Every input's facts come from a few positioned reads, before anything is written.
  const read = new Map<string, Input>();
  for (const [name, from] of sources) {
    const seen = statInput(from);
    read.set(name, { ...packedFacts(readBinaryFile(from), from, base, expected), seen });
  }

  // Directories are made with mode 0777 and files with 0666, so the umask
  // decides (0755 / 0644 under umask 022), as for any build output.
  try {
    fs.mkdirSync(options.out, { recursive: true });
  } catch (e) {
    throw ioError(options.out, e, 'create');
  }
  const unlock = lockOutput(options.out);
  try {
    const result = packLocked(options, target, sources, read, manifestPath);
    const optional = options.optional ?? [];
    const missing = expected.format !== 'elf' ? missingByName(result.variant.files, expected.format, optional) : base === hostTarget() ? missingDependencies(sources, read, optional) : [];
    return { ...result, missing };
  } finally {
    unlock();
  }
}

/** Options of {@link packPackage}. */
export interface PackPackageOptions extends PackOptions {
  /** Where a package name is resolved from, as `require` would from there; default `process.cwd()`. */
  readonly cwd?: string;
  /**
   * Refuse with `E_MISSING_DEP`, before anything is written, when a file
   * needs a library that neither the packages nor this system provides.
   * Default: such needs are listed in `missing`, and the bundle is written.
   */
  readonly strict?: boolean;
}

/** What {@link packPackage} wrote, and what it took and why. */
export interface PackPackageResult extends PackResult {
  /** The files taken from the packages and why, those passed over, those left to the system. */
  readonly found: PackageNativeFiles;
}

/**
 * Packs the `.node` addons of an npm package (a directory, or the name of a
 * package installed where `options.cwd` would `require` it from) for the
 * target, with the shared libraries they need as the dynamic linker would
 * find them from where they sit (see package-files.ts). Libraries this
 * system provides stay external. Throws what {@link packageNativeFiles} and
 * {@link pack} throw, and `E_MISSING_DEP` with `strict`.
 *
 * @example
 * const r = packPackage('sharp', { name: 'sharp', out: 'dist/native', cwd: 'my-app' });
 * r.found.files.map((f) => `${f.name}: ${f.reason}`);
 */
export function packPackage(spec: string, options: PackPackageOptions): PackPackageResult {
  const found = packageNativeFiles(spec, { ...(options.cwd === undefined ? {} : { cwd: options.cwd }), ...(options.target === undefined ? {} : { target: options.target }) });
  const missing = found.missing.filter((m) => options.optional?.includes(m.file) !== true);
  const first = missing[0];
  if (options.strict === true && first !== undefined) {
    const more = missing.length > 1 ? `; and ${missing.slice(1).map((m) => `${m.file} needs ${m.dependency}`).join(', ')}` : '';
    throw new DlbundleError(
      'E_MISSING_DEP',
      `${first.file} needs ${first.dependency}, which neither ${found.package.name} nor this system provides (${first.reason})${more}. Nothing was written.`,
      `Install the library on this machine (the application's machines need it too), or mark ${first.file} --optional if it may be missing.`,
      { file: first.file, dependency: first.dependency },
    );
  }
  const result = pack(found.files.map((f) => ({ name: f.name, file: f.path })), options);
  return { ...result, missing: missing.map(({ file, dependency }) => ({ file, dependency })), found };
}

/** {@link pack}'s writing part, with the output directory locked: from reading the old manifest to the switch. */
/** What each packed file needs that neither the bundle nor this system provides (see {@link PackResult.missing}). */
function missingDependencies(sources: ReadonlyMap<string, string>, inputs: ReadonlyMap<string, Input>, optional: readonly string[]): PackResult['missing'] {
  const provided = new Set<string>();
  for (const [name, { facts }] of inputs) {
    provided.add(name);
    if (facts.soname !== null) provided.add(facts.soname);
  }
  const missing: { file: string; dependency: string }[] = [];
  for (const [name, { facts }] of inputs) {
    const elf = facts.elf;
    if (optional.includes(name) || elf === null) continue;
    const origin = path.dirname(path.resolve(sources.get(name) as string));
    for (const dep of elf.needed) {
      if (provided.has(dep)) continue;
      if (resolveSystemLibrary(dep, { runpath: elf.runpath, rpath: elf.rpath, origin }) === null) missing.push({ file: name, dependency: dep });
    }
  }
  return missing;
}

/**
 * What the packed files of a Windows or macOS variant need that neither the
 * bundle nor such a system provides, by name ({@link windowsSystemDll},
 * {@link macosSystemLibrary}); delay-loaded and weak names are left out.
 */
function missingByName(files: readonly ManifestFile[], format: 'pe' | 'macho', optional: readonly string[]): PackResult['missing'] {
  const graph: DependencyGraph<ManifestFile> = dependencyGraph(files);
  const system = format === 'pe' ? windowsSystemDll : macosSystemLibrary;
  const missing: { file: string; dependency: string }[] = [];
  for (const f of files) {
    if (optional.includes(f.name)) continue;
    for (const dep of graph.externalDeps.get(f.name) ?? []) {
      if (f.weakNeeded?.includes(dep) !== true && system(dep) === null) missing.push({ file: f.name, dependency: dep });
    }
  }
  return missing;
}

/**
 * The facts `pack` records of one input, checked against the target: its
 * format, its machine (for a universal Mach-O file, the architecture the
 * target runs is taken), and that it is a library (`E_WRONG_ARCH`,
 * `E_NOT_SHARED_OBJECT`).
 */
function packedFacts(info: BinaryInfo, from: string, base: string, expected: TargetLibraries): Omit<Input, 'seen'> {
  if (info.format !== expected.format) {
    throw new DlbundleError(
      'E_WRONG_ARCH',
      `${JSON.stringify(from)} is ${FORMAT_NAMES[info.format]}, but target ${JSON.stringify(base)} loads ${FORMAT_NAMES[expected.format]}.`,
      'Pack it under a target of its own platform with --target (linux-x64-gnu, win32-x64, darwin-arm64, …), or pack the build made for this one.',
      { file: from },
    );
  }
  const wrongMachine = (machine: string, what = machine): DlbundleError =>
    new DlbundleError('E_WRONG_ARCH', `${JSON.stringify(from)} is built for ${what}, but target ${JSON.stringify(base)} runs ${expected.machine}.`, `Pack it under its own target with --target, or rebuild it for ${expected.machine}.`, { file: from });
  const notLibrary = (what: string): DlbundleError =>
    new DlbundleError('E_NOT_SHARED_OBJECT', `${JSON.stringify(from)} is ${what}, not a shared library.`, 'Pack shared libraries (DLLs, dylibs, .so files) and .node addons only.', { file: from });
  const whole = (size: number): Input['range'] => ({ offset: 0, size });
  if (info.format === 'elf') {
    const elf = info;
    if (elf.type !== 'dyn') throw notLibrary(`an ELF ${elf.type} file`);
    // A position-independent executable is ET_DYN too: it names a program
    // interpreter and no soname. (libc names both, and is a library.)
    if (elf.interp !== null && elf.soname === null) {
      throw notLibrary(`an executable (position-independent: it names the program interpreter ${elf.interp} and has no soname)`);
    }
    if (elf.machine !== expected.machine || elf.class !== expected.class) throw wrongMachine(elf.machine, `${elf.machine} (ELF${elf.class})`);
    const versions = requiredVersions(readSymbolVersionsFile(from).needed);
    return { facts: { format: 'elf', soname: elf.soname, needed: elf.needed, runpath: elf.runpath, machine: elf.machine, weakNeeded: [], elf, versions }, range: whole(-1) };
  }
  if (info.format === 'pe') {
    if (info.machine !== expected.machine) throw wrongMachine(info.machine);
    if (!info.dll) throw notLibrary('a Windows executable (its COFF header does not say IMAGE_FILE_DLL)');
    // A DLL both imported and delay-loaded is needed at load time.
    const imported = new Set(info.imports.map((n) => n.toLowerCase()));
    const weakNeeded = info.delayImports.filter((n) => !imported.has(n.toLowerCase()));
    return { facts: { format: 'pe', soname: info.soname, needed: info.needed, runpath: [], machine: info.machine, weakNeeded, elf: null, versions: {} }, range: whole(-1) };
  }
  // The architecture the target runs: of arm64 and arm64e (or x86_64 and
  // x86_64h), the plain one, which every machine of that CPU loads.
  const image = info.images.filter((i) => i.machine === expected.machine).sort((a, b) => a.cpusubtype - b.cpusubtype)[0] as MachOImage | undefined;
  if (image === undefined) throw wrongMachine('', info.images.map((i) => i.machine).join(' and '));
  if (image.filetype !== 'dylib' && image.filetype !== 'bundle') throw notLibrary(`a Mach-O ${image.filetype} file`);
  return {
    facts: { format: 'macho', soname: image.soname, needed: image.needed, runpath: image.runpath, machine: image.machine, weakNeeded: weakDylibs(image.needed, image.neededCommands), elf: null, versions: {} },
    range: info.fat === null ? whole(-1) : { offset: image.offset, size: image.size },
  };
}

// Dyld loads an image without its weak and lazy dylibs; a name another command also names is needed all the same.
function weakDylibs(needed: readonly string[], commands: readonly DylibCommand[]): string[] {
  const strong = new Set(needed.filter((_, i) => commands[i] !== 'LC_LOAD_WEAK_DYLIB' && commands[i] !== 'LC_LAZY_LOAD_DYLIB'));
  return [...new Set(needed.filter((n) => !strong.has(n)))];
}

function packLocked(options: PackOptions, target: string, sources: ReadonlyMap<string, string>, inputs: ReadonlyMap<string, Input>, manifestPath: string): Omit<PackResult, 'missing'> {
  const previous = readExistingManifest(manifestPath, options.name);
  const leftovers = finishInterruptedPacks(options.out, previous);
  const staging = runSync(syncIo.mkdtemp(options.out, stagingPrefix(`pack-${target}`)));
  try {
    const blobs = path.join(staging, 'files');
    fs.mkdirSync(blobs, { mode: 0o777 });
    const files: ManifestFile[] = [];
    const total = [...inputs.values()].reduce((n, e) => n + rangeSize(e), 0);
    let done = 0;
    const progress = (n: number): void => {
      done += n;
      options.onProgress?.(done, total);
    };
    for (const [name, from] of sources) {
      const input = inputs.get(name) as Input;
      const { facts } = input;
      const { size, xxh64 } = stageBlob(from, input.seen, path.join(blobs, name), progress, { offset: input.range.offset, size: rangeSize(input) });
      files.push({
        name,
        size,
        xxh64,
        soname: facts.soname,
        needed: facts.needed,
        runpath: facts.runpath,
        machine: facts.machine,
        ...(options.optional?.includes(name) === true ? { optional: true as const } : {}),
        ...(Object.keys(facts.versions).length === 0 ? {} : { requiresVersions: facts.versions }),
        ...(facts.format === 'elf' ? {} : { format: facts.format }),
        ...(facts.weakNeeded.length === 0 ? {} : { weakNeeded: facts.weakNeeded }),
      });
      debug('packed %s (%d bytes) from %s', name, size, from);
    }
    syncDirectory(blobs);
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
    // The switch: the new files become a complete generation directory (not
    // yet used by anyone), then dlbundle.json is replaced by rename, the one
    // instant at which readers move from the old bundle to the new one.
    // Readers look in the generation directory of the digest they read first,
    // so `<target>/` can then be replaced at leisure.
    const generation = path.join(options.out, generationDirName(target, variant.digest));
    rename(blobs, generation);
    writeFileAtomic(manifestPath, `${JSON.stringify(manifest, null, 2)}\n`, staging);
    promoteGeneration(options.out, target, variant.digest, staging);
    return { manifestPath, target, variant, manifest, leftoversRemoved: leftovers };
  } finally {
    fs.rmSync(staging, { recursive: true, force: true });
  }
}

/** How many bytes of the input are packed: its range, or the whole file (a range of size -1). */
function rangeSize(input: Input): number {
  return input.range.size < 0 ? input.seen.size : input.range.size;
}

/**
 * Expands files and directories into (name in bundle → source path),
 * refusing two inputs with one name. Of a directory, the files named like
 * libraries of `format` are taken, but not those of another binary format
 * (node-llama-cpp names its macOS bundles `.so`, like Linux libraries); a
 * file of no known format is taken, to be refused with its name.
 */
function collectInputs(inputs: readonly (string | NamedInput)[], format: BinaryFormat): Map<string, string> {
  const byName = new Map<string, string>();
  const add = (name: string, from: string): void => {
    const other = byName.get(name);
    if (other !== undefined) {
      throw new DlbundleError('E_DUPLICATE_NAME', `${JSON.stringify(other)} and ${JSON.stringify(from)} would both be packed as ${JSON.stringify(name)}.`, 'Pack only one of them, or rename one.', { file: from });
    }
    byName.set(name, from);
  };
  for (const input of inputs) {
    if (typeof input !== 'string') {
      const problem = unsafeNameReason(input.name);
      if (problem !== null) throw new DlbundleError('E_USAGE', `${JSON.stringify(input.name)} cannot name a file in a bundle: it ${problem}.`, 'Name it with a plain file name.', { file: input.file });
      add(input.name, input.file);
      continue;
    }
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
      const file = path.join(input, entry.name);
      if (entry.isFile() && LIBRARY_NAMES[format].test(entry.name) && (binaryFormatOfFile(file) ?? format) === format) add(entry.name, file);
      else debug('skipped %s in %s', entry.name, input);
    }
  }
  if (byName.size === 0) {
    throw new DlbundleError('E_USAGE', "Nothing to pack: no shared libraries were found in the inputs (directories give the target's kind: .so, .dll or .dylib, and .node).", 'Name the libraries or .node addons, or directories that contain them.');
  }
  return byName;
}

function readExistingManifest(manifestPath: string, name: string): Manifest | null {
  const manifest = readManifestFile(path.dirname(manifestPath));
  if (manifest === null) return null;
  if (manifest.name !== name) {
    throw new DlbundleError('E_USAGE', `${JSON.stringify(manifestPath)} holds bundle ${JSON.stringify(manifest.name)}, not ${JSON.stringify(name)}.`, 'Pack into another directory, or use the same --name.');
  }
  return manifest;
}

// 1 MiB: large enough that per-call costs vanish, small enough that packing a
// 2 GiB library costs a few MiB of memory.
const CHUNK = 1 << 20;
let zeros: Buffer | undefined;

/**
 * Copies `range` of `from` (the whole file, or one architecture of a
 * universal file) to the new file `to` in chunks, hashing as it goes, and
 * flushes it. Returns the size and the xxh64 of the bytes copied.
 */
function stageBlob(from: string, seen: fs.Stats, to: string, progress: (bytes: number) => void, range: { readonly offset: number; readonly size: number }): { size: number; xxh64: string } {
  const input = openFile(from, 'r');
  try {
    // The ELF facts were read from what `seen` describes; a file rebuilt since
    // (a parallel make) would get the facts of one build and the bytes of another.
    const now = fs.fstatSync(input);
    if (now.dev !== seen.dev || now.ino !== seen.ino || now.size !== seen.size || now.mtimeMs !== seen.mtimeMs) {
      throw new DlbundleError('E_IO', `${JSON.stringify(from)} changed while it was being packed.`, 'Pack again once the build that writes it has finished.', { file: from });
    }
    let output: number;
    try {
      output = fs.openSync(to, 'wx', 0o666);
    } catch (e) {
      throw ioError(to, e, 'write');
    }
    try {
      // One buffer for the whole file: a new one per chunk would wait for the
      // garbage collector, and a 64 MiB input would cost 30 MB more.
      zeros ??= Buffer.alloc(CHUNK);
      const scratch = Buffer.allocUnsafe(CHUNK);
      const hash = createXxh64();
      let size = 0;
      while (size < range.size) {
        let n: number;
        try {
          n = runSync(syncIo.read(input, scratch.subarray(0, Math.min(CHUNK, range.size - size)), range.offset + size));
        } catch (e) {
          throw ioError(from, e);
        }
        if (n === 0) throw new DlbundleError('E_IO', `${JSON.stringify(from)} ended after ${range.offset + size} bytes while it was being packed.`, 'Pack again once the build that writes it has finished.', { file: from });
        const chunk = scratch.subarray(0, n);
        hash.update(chunk);
        // Runs of zeros are left as holes: a sparse input stays sparse.
        if (!chunk.equals(zeros.subarray(0, n))) writeAllAt(output, to, chunk, size);
        size += n;
        progress(n);
      }
      fs.ftruncateSync(output, size);
      fs.fsyncSync(output);
      return { size, xxh64: hash.digest() };
    } catch (e) {
      throw e instanceof DlbundleError ? e : ioError(to, e, 'write');
    } finally {
      fs.closeSync(output);
    }
  } finally {
    fs.closeSync(input);
  }
}

function statInput(file: string): fs.Stats {
  try {
    return fs.statSync(file);
  } catch (e) {
    throw ioError(file, e);
  }
}


// A rename is durable only once its directory is flushed; without it a
// machine crash could keep dlbundle.json's rename but lose the blobs'.
function syncDirectory(dir: string): void {
  const fd = openFile(dir, 'r');
  try {
    fs.fsyncSync(fd);
  } catch (e) {
    throw ioError(dir, e, 'flush');
  } finally {
    fs.closeSync(fd);
  }
}

function rename(from: string, to: string): void {
  try {
    fs.renameSync(from, to);
  } catch (e) {
    throw ioError(to, e, 'write');
  }
}

/**
 * Moves the generation `<out>/.<target>.<digest>/`, which dlbundle.json
 * already names, to `<out>/<target>/`, and removes it and the old files.
 * Each step is a rename, and readers look in the generation directory first,
 * so a reader finds the whole new variant at every instant; a pack killed
 * here is finished by the next one ({@link finishInterruptedPacks}).
 */
function promoteGeneration(out: string, target: string, digest: string, staging: string): void {
  const generation = path.join(out, generationDirName(target, digest));
  const next = path.join(staging, 'next');
  let names: string[];
  try {
    fs.mkdirSync(next, { mode: 0o777 });
    names = fs.readdirSync(generation);
  } catch (e) {
    throw ioError(generation, e, 'read the new files in');
  }
  for (const name of names) linkOrCopy(path.join(generation, name), path.join(next, name));
  syncDirectory(next);
  const current = path.join(out, target);
  try {
    fs.renameSync(current, path.join(staging, 'previous'));
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw ioError(current, e, 'move');
  }
  rename(next, current);
  // Renamed out first: a removal cut short would leave a partial generation directory that readers trust.
  rename(generation, path.join(staging, 'promoted'));
  syncDirectory(out);
}

function linkOrCopy(from: string, to: string): void {
  try {
    fs.linkSync(from, to);
  } catch (e) {
    // File systems without hard links (FAT, some FUSE mounts): copy instead.
    const code = (e as NodeJS.ErrnoException).code;
    if (code !== 'EPERM' && code !== 'ENOTSUP' && code !== 'EOPNOTSUPP' && code !== 'EMLINK' && code !== 'EXDEV') throw ioError(to, e, 'write');
    try {
      fs.copyFileSync(from, to, fs.constants.COPYFILE_EXCL);
    } catch (e2) {
      throw ioError(to, e2, 'write');
    }
  }
}

/**
 * Cleans up after packs killed in `out`: removes the staging directories of
 * processes that are gone, finishes a switch that dlbundle.json already made,
 * and removes generation directories it never switched to. Returns the names
 * removed or finished.
 */
function finishInterruptedPacks(out: string, manifest: Manifest | null): string[] {
  const handled = runSync(sweepStaging(syncIo, out));
  for (const name of fs.readdirSync(out)) {
    const generation = parseGenerationDirName(name);
    if (generation === null) continue;
    const staging = runSync(syncIo.mkdtemp(out, stagingPrefix(`pack-${generation.variant}`)));
    try {
      if (manifest?.variants[generation.variant]?.digest === generation.digest) {
        debug('finishing the switch to %s left by an interrupted pack', name);
        promoteGeneration(out, generation.variant, generation.digest, staging);
      } else {
        debug('removing %s: an interrupted pack never switched to it', name);
        rename(path.join(out, name), path.join(staging, 'unused'));
      }
    } finally {
      fs.rmSync(staging, { recursive: true, force: true });
    }
    handled.push(name);
  }
  return handled;
}

// Written beside the bundle in the pack's staging directory (same file
// system), so a pack killed before the rename leaves nothing but staging.
function writeFileAtomic(file: string, text: string, staging: string): void {
  const tmp = path.join(staging, path.basename(file));
  try {
    const fd = fs.openSync(tmp, 'wx', 0o666);
    try {
      fs.writeFileSync(fd, text);
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    fs.renameSync(tmp, file);
    syncDirectory(path.dirname(file));
  } catch (e) {
    throw e instanceof DlbundleError ? e : ioError(file, e, 'write');
  }
}

/**
 * The native files of an installed npm package, for `dlbundle pack --package`:
 * the `.node` addons that the package and the packages it depends on carry
 * for one target, and the shared libraries those addons need, found the way
 * the dynamic linker would find them from where each file sits. Nothing is
 * written; every file comes with the reason it was taken.
 *
 * Each DT_NEEDED entry of a file taken is met by, in this order:
 * 1. a file already taken whose soname it is;
 * 2. the file's RUNPATH, or without one the RPATH of the file and of the files
 *    that needed it, `$ORIGIN` expanded — glibc's order, less
 *    LD_LIBRARY_PATH: the packing shell's environment is no part of the app;
 * 3. this system (see system-libs.ts): the library stays external, as ld.so
 *    would take the system's copy before anything the package does itself;
 * 4. the file's own directory: a package that loads its libraries itself.
 * For a target other than this machine's, step 3 cannot be asked: what the
 * package does not carry is left to that target's system, unchecked.
 */
import fs = require('node:fs');
import path = require('node:path');
import { createRequire } from 'node:module';
import { DlbundleError, isDlbundleError } from './errors';
import type { ElfInfo } from './formats/elf';
import { readElfFile } from './formats/elf-file';
import { ioError, openFile, readRange } from './file-io';
import { logger } from './log';
import { compareNames } from './plan';
import { expandOrigin, resolveSystemLibrary } from './system-libs';
import { elfTarget, elfTargetsOf, hostTarget, targetFacts } from './variant';

const debug = logger('dlbundle:pack');

/** A package looked into. */
export interface PackageRef {
  readonly name: string;
  readonly version: string | null;
  /** Its directory, symbolic links resolved (as `require` loads from it). */
  readonly dir: string;
  /** How it was reached from the package asked for (`optional dependency of sharp`); null for that package. */
  readonly via: string | null;
}

/** Why a file was taken, for programs (the text is {@link TakenFile.reason}). */
export type TakenBecause =
  | { readonly kind: 'addon'; readonly package: string }
  /** Found in the RUNPATH or RPATH entry `entry` of `of` (the file that needed it, or for an RPATH, one that needed that file). */
  | { readonly kind: 'runpath' | 'rpath'; readonly neededBy: string; readonly of: string; readonly entry: string }
  | { readonly kind: 'beside'; readonly neededBy: string };

/** A file to pack. */
export interface TakenFile {
  /** Its name in the bundle: the name `require` or the dynamic linker asks for (the file's own name when its soname is that name; the soname link is made at extraction). */
  readonly name: string;
  /** The file read: symbolic links resolved. */
  readonly path: string;
  /** Where it was found (an addon's path in its package, a RUNPATH candidate), possibly a symbolic link to `path`. */
  readonly foundAt: string;
  readonly soname: string | null;
  readonly needed: readonly string[];
  readonly because: TakenBecause;
  /** The files taken that need it. */
  readonly neededBy: readonly string[];
  /** Why, in one line: `.node of sharp`, `needed by x.node, found in its RUNPATH $ORIGIN/`. */
  readonly reason: string;
}

/** A library left to the system. */
export interface SystemDependency {
  readonly name: string;
  /** Where this system has it; null when the target is not this machine's and the system was not asked. */
  readonly path: string | null;
  readonly neededBy: readonly string[];
}

/** A library a taken file needs that neither the package nor this system provides. */
export interface MissingDependency {
  readonly file: string;
  readonly dependency: string;
  /** Where it was looked for, or why what was found cannot serve. */
  readonly reason: string;
}

/** A `.node` file of the packages that was not taken, and why. */
export interface PassedOverFile {
  readonly path: string;
  readonly reason: string;
}

/** What {@link packageNativeFiles} found. */
export interface PackageNativeFiles {
  /** The package asked for. */
  readonly package: PackageRef;
  /** Every package looked into: that one, then the installed packages it depends on. */
  readonly packages: readonly PackageRef[];
  readonly target: string;
  /** The files to pack: the addons first, then the libraries in the order they were found. */
  readonly files: readonly TakenFile[];
  readonly system: readonly SystemDependency[];
  readonly missing: readonly MissingDependency[];
  readonly passedOver: readonly PassedOverFile[];
}

/** Options of {@link packageNativeFiles}. */
export interface PackageFilesOptions {
  /** Where a package name is resolved from, as `require` would from a file there; default `process.cwd()`. */
  readonly cwd?: string;
  /** The target key; default this machine's. */
  readonly target?: string;
}

/**
 * Finds the native files of a package (a directory, or the name of a package
 * installed where `cwd` would `require` it from) for a target. Throws
 * `E_NOT_PACKAGE` when there is no such package, `E_NO_ADDON` when neither it
 * nor the packages it depends on carries a `.node` file for the target, and
 * `E_USAGE` for a target that is not ELF.
 *
 * @example
 * packageNativeFiles('sharp', { cwd: 'my-app' }).files.map((f) => f.name)
 * // ['sharp-linux-x64-0.35.5.node', 'libvips-cpp.so.8.18.7']
 */
export function packageNativeFiles(spec: string, options: PackageFilesOptions = {}): PackageNativeFiles {
  const target = elfTarget(options.target ?? hostTarget());
  const cwd = path.resolve(options.cwd ?? process.cwd());
  const root = packageDir(spec, cwd);
  const packages = dependencyClosure(root);
  const main = packages[0] as PackageRef;
  const passedOver: PassedOverFile[] = [];
  const addons: { file: string; pkg: PackageRef; elf: ElfInfo }[] = [];
  let seen = 0;
  for (const pkg of packages) {
    // koffi's native module is dlbundle's own loader: it comes from koffi's
    // package (or the koffi-native bundle of a single-file build), and served
    // through provideAddons it would need itself to load. Only koffi asked
    // for by name is packed (a bundle for another machine's koffi).
    if (isKoffiPackage(pkg.name) && !isKoffiPackage(main.name)) continue;
    for (const file of addonFiles(pkg.dir)) {
      seen++;
      const elf = addonElf(file);
      if (typeof elf === 'string') {
        passedOver.push({ path: file, reason: elf });
        continue;
      }
      const targets = elfTargetsOf(elf);
      if (targets.includes(target)) addons.push({ file, pkg, elf });
      else passedOver.push({ path: file, reason: targets.length === 0 ? `for ${elf.machine} (ELF${elf.class}), no target dlbundle knows` : `for ${targets.join(' or ')}` });
    }
  }
  if (addons.length === 0) throw noAddon(main, packages, target, seen, passedOver);
  return { package: main, packages, target, ...closure(addons, target), passedOver };
}

// npm package names: `name` or `@scope/name`. Anything else is a path.
const PACKAGE_NAME = /^(?:@[a-z0-9~-][a-z0-9._~-]*\/)?[a-z0-9~-][a-z0-9._~-]*$/i;

/** The package directory `spec` names: a path (anything that is not a package name), or a package installed where `cwd` would `require` it from. */
function packageDir(spec: string, cwd: string): string {
  if (!PACKAGE_NAME.test(spec)) {
    const dir = path.resolve(cwd, spec);
    const st = fs.statSync(dir, { throwIfNoEntry: false });
    if (st === undefined || !st.isDirectory()) {
      throw new DlbundleError('E_NOT_PACKAGE', `${JSON.stringify(spec)} is ${st === undefined ? 'not there' : 'a file, not a directory'}: --package takes a package's directory or the name of an installed package.`, 'Pass the directory that holds its package.json (node_modules/<name>), or its name from the application directory.', { dir });
    }
    if (!fs.existsSync(path.join(dir, 'package.json'))) {
      throw new DlbundleError('E_NOT_PACKAGE', `${JSON.stringify(spec)} has no package.json: it is not an npm package.`, 'Pass the directory that holds the package.json (node_modules/<name>); to pack loose shared objects, name them: dlbundle pack <files|dirs…>.', { dir });
    }
    return realpath(dir);
  }
  const found = installedPackage(spec, cwd);
  if (found === null) {
    throw new DlbundleError(
      'E_NOT_PACKAGE',
      `No package ${JSON.stringify(spec)} is installed where ${JSON.stringify(cwd)} would require it from (node_modules of that directory and its parents).`,
      'Run this from the application directory that depends on it (after npm install), or pass the package directory itself.',
      { dir: cwd },
    );
  }
  return found;
}

/** The directory of package `name` as `require(name)` from a file in `from` would find it, or null. */
function installedPackage(name: string, from: string): string | null {
  // Node's own list of node_modules directories, nearest first. package.json is looked
  // for directly: require.resolve(`${name}/package.json`) fails where "exports" hides it.
  const dirs = createRequire(path.join(from, 'package.json')).resolve.paths(name) ?? [];
  for (const d of dirs) {
    const dir = path.join(d, name);
    if (fs.existsSync(path.join(dir, 'package.json'))) return realpath(dir);
  }
  return null;
}

interface PackageJson {
  readonly name?: unknown;
  readonly version?: unknown;
  readonly dependencies?: unknown;
  readonly optionalDependencies?: unknown;
}

function readPackageJson(dir: string): PackageJson {
  const file = path.join(dir, 'package.json');
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    throw ioError(file, e);
  }
  try {
    const json = JSON.parse(text) as unknown;
    if (typeof json === 'object' && json !== null && !Array.isArray(json)) return json as PackageJson;
  } catch {
    // Reported below with the file's name.
  }
  throw new DlbundleError('E_NOT_PACKAGE', `${JSON.stringify(file)} is not a JSON object.`, 'Reinstall the package (npm ci).', { file });
}

function dependencyNames(field: unknown): string[] {
  return typeof field === 'object' && field !== null && !Array.isArray(field) ? Object.keys(field) : [];
}

/**
 * The package in `dir` and the installed packages it depends on, transitively
 * (dependencies and optionalDependencies, resolved from each package's own
 * directory as `require` would): platform packages such as sharp's
 * `@img/sharp-linux-x64` are optional dependencies. An optional dependency that
 * is not installed (another platform's) is passed over.
 */
function dependencyClosure(dir: string): PackageRef[] {
  const json = readPackageJson(dir);
  const first: PackageRef = { name: typeof json.name === 'string' ? json.name : path.basename(dir), version: typeof json.version === 'string' ? json.version : null, dir, via: null };
  const found: PackageRef[] = [first];
  const seen = new Set([dir]);
  const queue: { ref: PackageRef; json: PackageJson }[] = [{ ref: first, json }];
  for (let next = queue.shift(); next !== undefined; next = queue.shift()) {
    const { ref, json: pj } = next;
    const optional = dependencyNames(pj.optionalDependencies);
    const names = [...new Set([...dependencyNames(pj.dependencies), ...optional])].sort(compareNames);
    for (const name of names) {
      const depDir = installedPackage(name, ref.dir);
      if (depDir === null) {
        debug('%s: %s %s is not installed', ref.name, optional.includes(name) ? 'optional dependency' : 'dependency', name);
        continue;
      }
      if (seen.has(depDir)) continue;
      seen.add(depDir);
      const depJson = readPackageJson(depDir);
      const relation = `${optional.includes(name) ? 'optional dependency' : 'dependency'} of ${ref.name}`;
      const dep: PackageRef = { name, version: typeof depJson.version === 'string' ? depJson.version : null, dir: depDir, via: ref.via === null ? relation : `${relation}, ${ref.via}` };
      found.push(dep);
      queue.push({ ref: dep, json: depJson });
    }
  }
  return found;
}

/** The `.node` files under `dir`, sorted; nested node_modules are other packages, reached as dependencies or not at all. */
function addonFiles(dir: string): string[] {
  const found: string[] = [];
  const walk = (d: string): void => {
    let entries: fs.Dirent[];
    try {
      entries = fs.readdirSync(d, { withFileTypes: true });
    } catch (e) {
      throw ioError(d, e);
    }
    for (const e of entries.sort((a, b) => compareNames(a.name, b.name))) {
      const p = path.join(d, e.name);
      // Linked directories are not followed: a link may lead back up (a loop) or out of the package.
      // node-gyp's obj.target/ holds an intermediate copy of each addon it links into build/Release/.
      if (e.isDirectory()) {
        if (e.name !== 'node_modules' && e.name !== 'obj.target') walk(p);
      } else if (e.name.endsWith('.node') && (e.isFile() || (e.isSymbolicLink() && fs.statSync(p, { throwIfNoEntry: false })?.isFile() === true))) {
        found.push(p);
      }
    }
  };
  walk(dir);
  return found;
}

/** The ELF facts of an addon, or why it is no ELF shared object (another platform's build, most often). */
function addonElf(file: string): ElfInfo | string {
  try {
    const elf = readElfFile(file);
    return elf.type === 'dyn' ? elf : `an ELF ${elf.type} file, not a shared object`;
  } catch (e) {
    if (isDlbundleError(e, 'E_NOT_ELF')) return `${otherFormat(file)}, not ELF`;
    if (isDlbundleError(e, 'E_BAD_ELF')) return `a damaged ELF file: ${e.message.split('\n')[0] as string}`;
    throw e;
  }
}

// The first bytes of the other platforms' binaries: Mach-O (thin, either byte order, or fat) and PE.
function otherFormat(file: string): string {
  const fd = openFile(file, 'r');
  let head: Buffer;
  try {
    head = readRange(fd, file, 0, 4);
  } finally {
    fs.closeSync(fd);
  }
  if (head.length < 4) return 'not a shared object';
  const magic = head.readUInt32BE(0);
  if ([0xfeedface, 0xfeedfacf, 0xcefaedfe, 0xcffaedfe, 0xcafebabe].includes(magic)) return 'a Mach-O file (macOS)';
  if (head[0] === 0x4d && head[1] === 0x5a) return 'a PE file (Windows)';
  return 'not a shared object';
}

function noAddon(main: PackageRef, packages: readonly PackageRef[], target: string, seen: number, passedOver: readonly PassedOverFile[]): DlbundleError {
  const where = packages.length === 1 ? `${main.name} (${main.dir})` : `${main.name} (${main.dir}) and the ${packages.length - 1} installed ${packages.length === 2 ? 'package' : 'packages'} it depends on`;
  const carry = packages.length === 1 ? 'carries' : 'carry';
  if (seen === 0) {
    return new DlbundleError('E_NO_ADDON', `${where} ${carry} no .node file.`, 'pack --package packs the native addons of a package; to pack shared objects, name them: dlbundle pack <files|dirs…> --name NAME --out DIR.', { dir: main.dir });
  }
  const facts = targetFacts(target);
  const npmFlags = `--os=${facts.platform} --cpu=${facts.arch}${facts.libc === null ? '' : ` --libc=${facts.libc === 'gnu' ? 'glibc' : 'musl'}`}`;
  const shown = passedOver.slice(0, 6).map((p) => `${display(p.path, packages)} (${p.reason})`);
  return new DlbundleError(
    'E_NO_ADDON',
    `${where} ${carry} no .node file for ${target}; ${shown.join(', ')}${passedOver.length > shown.length ? `, and ${passedOver.length - shown.length} more` : ''}.`,
    `Install the package's files for ${target} in the application first (npm install ${npmFlags} installs another platform's optional packages), then pack again; or pack for a target it has with --target.`,
    { dir: main.dir },
  );
}

/** A file taken, while the closure is built. */
interface Taken {
  readonly name: string;
  readonly path: string;
  readonly foundAt: string;
  /** What `$ORIGIN` is for it: the directory it is loaded from. */
  readonly origin: string;
  readonly elf: ElfInfo;
  /** The file whose need brought it in (its RPATH is searched too); null for an addon, which Node dlopens. */
  readonly loader: Taken | null;
  readonly because: TakenBecause;
  readonly neededBy: string[];
}

/** A library the dynamic linker would find for a need, and how. */
interface Found {
  readonly foundAt: string;
  readonly elf: ElfInfo;
  readonly because: TakenBecause;
}

/** The addons and everything they need, the way the loader would find it. */
function closure(addons: readonly { file: string; pkg: PackageRef; elf: ElfInfo }[], target: string): Pick<PackageNativeFiles, 'files' | 'system' | 'missing'> {
  const onThisMachine = target === hostTarget();
  const want = targetFacts(target).elf as NonNullable<ReturnType<typeof targetFacts>['elf']>;
  const taken: Taken[] = [];
  // What the bundle will answer for a DT_NEEDED name: a file's soname, or its name when it has none.
  const provides = new Map<string, Taken>();
  const system = new Map<string, { path: string | null; neededBy: string[] }>();
  const missing: MissingDependency[] = [];
  const take = (t: Taken): void => {
    taken.push(t);
    provides.set(t.elf.soname ?? t.name, t);
  };
  for (const { file, pkg, elf } of addons) {
    // require() loads an addon from its real path (it resolves links), which is what $ORIGIN is then.
    const real = realpath(file);
    take({ name: path.basename(file), path: real, foundAt: file, origin: path.dirname(real), elf, loader: null, because: { kind: 'addon', package: pkg.name }, neededBy: [] });
  }
  const fits = (candidate: string): ElfInfo | null => {
    if (fs.statSync(candidate, { throwIfNoEntry: false })?.isFile() !== true) return null;
    try {
      const elf = readElfFile(candidate);
      // The loader skips a file of another machine or class and goes on looking.
      return elf.machine === want.machine && elf.class === want.class ? elf : null;
    } catch (e) {
      debug('%s passed over: %s', candidate, (e as Error).message);
      return null;
    }
  };
  const inPaths = (user: Taken, dep: string): Found | null => {
    // A RUNPATH is the file's own; without one, the RPATHs of the file and of those that loaded it count (glibc).
    const chain: { owner: Taken; kind: 'runpath' | 'rpath'; entry: string }[] = user.elf.runpath.map((entry) => ({ owner: user, kind: 'runpath' as const, entry }));
    for (let l: Taken | null = chain.length > 0 ? null : user; l !== null; l = l.loader) chain.push(...l.elf.rpath.map((entry) => ({ owner: l as Taken, kind: 'rpath' as const, entry })));
    for (const { owner, kind, entry } of chain) {
      const dir = expandOrigin(entry, owner.origin);
      // A relative entry is relative to the process's working directory at run time: nothing to pack from.
      if (!path.isAbsolute(dir)) continue;
      const candidate = path.join(dir, dep);
      const elf = fits(candidate);
      if (elf !== null) return { foundAt: candidate, elf, because: { kind, neededBy: user.name, of: owner.name, entry } };
    }
    return null;
  };
  for (let i = 0; i < taken.length; i++) {
    const user = taken[i] as Taken;
    for (const dep of user.elf.needed) {
      const provider = provides.get(dep);
      if (provider !== undefined) {
        if (provider !== user && !provider.neededBy.includes(user.name)) provider.neededBy.push(user.name);
        continue;
      }
      let found = inPaths(user, dep);
      if (found === null && onThisMachine) {
        const there = resolveSystemLibrary(dep, { runpath: [], origin: user.origin });
        if (there !== null) {
          const entry = system.get(dep) ?? { path: there.path, neededBy: [] };
          entry.neededBy.push(user.name);
          system.set(dep, entry);
          continue;
        }
      }
      if (found === null) {
        const beside = path.join(user.origin, dep);
        const elf = fits(beside);
        if (elf !== null) found = { foundAt: beside, elf, because: { kind: 'beside', neededBy: user.name } };
      }
      if (found === null) {
        if (onThisMachine) {
          missing.push({ file: user.name, dependency: dep, reason: `not in ${searchedPaths(user)}, not on this system, not beside it in ${user.origin}` });
        } else {
          const entry = system.get(dep) ?? { path: null, neededBy: [] };
          entry.neededBy.push(user.name);
          system.set(dep, entry);
        }
        continue;
      }
      const real = realpath(found.foundAt);
      // The bundle knows a library by its soname: one found under another name would not meet this need.
      if (found.elf.soname !== null && found.elf.soname !== dep) {
        missing.push({ file: user.name, dependency: dep, reason: `found ${found.foundAt}, but its soname is ${found.elf.soname}, and a bundle matches a library by its soname` });
        continue;
      }
      take({
        name: found.elf.soname === null ? dep : path.basename(real),
        path: real,
        foundAt: found.foundAt,
        origin: path.dirname(found.foundAt),
        elf: found.elf,
        loader: user,
        because: found.because,
        neededBy: [user.name],
      });
    }
  }
  // A need the bundle meets in the end (another file brought the library in) is met, by soname, wherever it was looked for.
  return {
    files: taken.map((t) => ({ name: t.name, path: t.path, foundAt: t.foundAt, soname: t.elf.soname, needed: t.elf.needed, because: t.because, neededBy: t.neededBy, reason: reasonText(t, onThisMachine) })),
    system: [...system].filter(([name]) => !provides.has(name)).map(([name, s]) => ({ name, path: s.path, neededBy: s.neededBy })),
    missing: missing.filter((m) => !provides.has(m.dependency)),
  };
}

function searchedPaths(t: Taken): string {
  if (t.elf.runpath.length > 0) return `its RUNPATH ${t.elf.runpath.join(':')}`;
  const rpaths: string[] = [];
  for (let l: Taken | null = t; l !== null; l = l.loader) if (l.elf.rpath.length > 0) rpaths.push(`${l === t ? 'its' : `${l.name}'s`} RPATH ${l.elf.rpath.join(':')}`);
  return rpaths.length === 0 ? 'its RUNPATH (it has none)' : rpaths.join(', ');
}

function reasonText(t: Taken, onThisMachine: boolean): string {
  const b = t.because;
  switch (b.kind) {
    case 'addon':
      return `.node of ${b.package}`;
    case 'runpath':
    case 'rpath': {
      const word = b.kind === 'rpath' ? 'RPATH' : 'RUNPATH';
      return b.of === b.neededBy ? `needed by ${b.neededBy}, found in its ${word} ${b.entry}` : `needed by ${b.neededBy}, found in the ${word} of ${b.of}, ${b.entry}`;
    }
    case 'beside':
      return `needed by ${b.neededBy}, found beside it (not in ${searchedPaths(t.loader as Taken)}${onThisMachine ? ', not on this system' : ''})`;
  }
}

function realpath(p: string): string {
  try {
    return fs.realpathSync(p);
  } catch (e) {
    throw ioError(p, e);
  }
}

/** A path as the report shows it: `<package>/<path in it>` for a file of a package looked into, else as it is. */
function display(file: string, packages: readonly PackageRef[]): string {
  let best: PackageRef | null = null;
  for (const p of packages) if (file.startsWith(p.dir + path.sep) && (best === null || p.dir.length > best.dir.length)) best = p;
  return best === null ? file : `${best.name}/${path.relative(best.dir, file).split(path.sep).join('/')}`;
}

/**
 * The report `pack --package` prints: what was taken and why, what was passed
 * over, what is left to the system, and what is missing.
 *
 * @example
 * console.log(formatPackageNativeFiles(packageNativeFiles('sharp')));
 */
export function formatPackageNativeFiles(found: PackageNativeFiles): string {
  const { packages } = found;
  const version = found.package.version === null ? '' : ` ${found.package.version}`;
  const lines = [`package ${found.package.name}${version} (${found.package.dir}), for ${found.target}`];
  for (const p of packages.slice(1)) if (found.files.some((f) => f.because.kind === 'addon' && f.because.package === p.name)) lines.push(`  ${p.name}${p.version === null ? '' : ` ${p.version}`}: ${p.via as string} (${p.dir})`);
  const width = Math.max(...found.files.map((f) => f.name.length));
  lines.push(`took ${found.files.length} ${found.files.length === 1 ? 'file' : 'files'}:`);
  for (const f of found.files) {
    const from = display(f.foundAt, packages);
    const real = f.foundAt === f.path ? '' : ` → ${display(f.path, packages)}`;
    lines.push(`  ${f.name.padEnd(width)}  ${f.reason}: ${from}${real}`);
  }
  if (found.passedOver.length > 0) {
    lines.push(`passed over ${found.passedOver.length} .node ${found.passedOver.length === 1 ? 'file' : 'files'}:`);
    const shown = found.passedOver.map((p) => [display(p.path, packages), p.reason] as const);
    const w = Math.max(...shown.map(([p]) => p.length));
    for (const [p, reason] of shown) lines.push(`  ${p.padEnd(w)}  ${reason}`);
  }
  if (found.system.length > 0) {
    const unchecked = found.system.some((s) => s.path === null);
    lines.push(unchecked ? `left to the system of ${found.target} (not checked: it is not this machine's target):` : 'left to the system:');
    const w = Math.max(...found.system.map((s) => s.name.length));
    for (const s of found.system) lines.push(`  ${s.name.padEnd(w)}  ${s.path === null ? '' : `${s.path} `}(needed by ${s.neededBy.join(', ')})`);
  }
  for (const m of found.missing) lines.push(`missing: ${m.file} needs ${m.dependency}: ${m.reason}`);
  return lines.join('\n');
}

/** koffi and its platform packages (`@koromix/koffi-linux-x64`, …). */
export function isKoffiPackage(name: string): boolean {
  return name === 'koffi' || name.startsWith('@koromix/koffi-');
}

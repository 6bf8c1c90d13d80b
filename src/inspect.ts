/**
 * What `dlbundle inspect` reports: the facts of loose files (ELF, PE,
 * Mach-O), or the variants of a bundle directory, as data and as text.
 */
import path = require('node:path');
import { DlbundleError } from './errors';
import { readSymbolVersionsFile } from './formats/elf-file';
import { readBinaryFile } from './formats/binary-file';
import type { DylibCommand } from './formats/macho';
import { MANIFEST_FILE, type Manifest, type ManifestFile, type ManifestVariant } from './manifest';
import { readManifestFile } from './sources/directory';
import { dependencyGraph } from './plan';
import { systemSearch } from './system-search';
import { systemVersionOracle } from './system-versions';
import { hostTarget, parseVariantKey } from './variant';
import { compareVersions, requiredVersions, VERSION_FAMILIES, type RequiredVersions, type VersionFamily } from './versions';

/** An ELF file's facts, with exactly the keys `inspect --json` prints. */
export interface ElfFileReport {
  readonly file: string;
  readonly format: 'elf';
  readonly class: 32 | 64;
  readonly machine: string;
  readonly soname: string | null;
  readonly needed: readonly string[];
  readonly runpath: readonly string[];
  readonly rpath: readonly string[];
  readonly interp: string | null;
  /** The highest GLIBC / GLIBCXX / CXXABI version the file needs, by family (`.gnu.version_r`, weak needs left out). */
  readonly requiresVersions: RequiredVersions;
}

/** A PE file's facts (Windows DLL, `.node`, executable), with exactly the keys `inspect --json` prints. */
export interface PeFileReport {
  readonly file: string;
  readonly format: 'pe';
  /** 32 for PE32, 64 for PE32+. */
  readonly class: 32 | 64;
  readonly machine: string;
  /** The export directory's DLL name, or null. */
  readonly soname: string | null;
  /** The import directory's DLLs in file order, then the delay-load DLLs in order. */
  readonly needed: readonly string[];
  /** The delay-load DLLs alone: the end of `needed`. */
  readonly delayNeeded: readonly string[];
  /** Always empty: Windows has no per-library search path. */
  readonly runpath: readonly string[];
  /** IMAGE_FILE_DLL: true for DLLs and `.node` addons, false for executables. */
  readonly dll: boolean;
}

/** One Mach-O image's facts (a thin file, or one architecture of a universal file), with exactly the keys `inspect --json` prints. */
export interface MachOFileReport {
  readonly file: string;
  readonly format: 'macho';
  readonly class: 32 | 64;
  readonly machine: string;
  /** LC_ID_DYLIB of a dylib; null for bundles and executables. */
  readonly soname: string | null;
  /** One entry per dylib load command, in command order, as written. */
  readonly needed: readonly string[];
  /** The load command of each `needed` entry. */
  readonly neededCommands: readonly DylibCommand[];
  /** LC_RPATH entries, unexpanded. */
  readonly runpath: readonly string[];
  readonly filetype: string;
  readonly cputype: number;
  readonly cpusubtype: number;
  /** Null for a thin file; which architecture of a universal file this is, and where its bytes are. */
  readonly slice: null | { readonly index: number; readonly count: number; readonly offset: number; readonly size: number };
}

/** One report of `inspect`: a file, or one architecture of a universal Mach-O file. */
export type FileReport = ElfFileReport | PeFileReport | MachOFileReport;

/**
 * The facts of each file, in argument order; a universal Mach-O file gives
 * one report per architecture, in the order of its header.
 *
 * @example
 * inspectFiles(['libz.so.1'])[0].needed // ['libc.so.6']
 */
export function inspectFiles(files: readonly string[]): FileReport[] {
  return files.flatMap((file): FileReport[] => {
    const info = readBinaryFile(file);
    if (info.format === 'elf') {
      const requiresVersions = requiredVersions(readSymbolVersionsFile(file).needed);
      return [{ file, format: 'elf', class: info.class, machine: info.machine, soname: info.soname, needed: info.needed, runpath: info.runpath, rpath: info.rpath, interp: info.interp, requiresVersions }];
    }
    if (info.format === 'pe') {
      return [{ file, format: 'pe', class: info.class, machine: info.machine, soname: info.soname, needed: info.needed, delayNeeded: info.delayImports, runpath: [], dll: info.dll }];
    }
    return info.images.map((m, index) => ({
      file,
      format: 'macho' as const,
      class: m.class,
      machine: m.machine,
      soname: m.soname,
      needed: m.needed,
      neededCommands: m.neededCommands,
      runpath: m.runpath,
      filetype: m.filetype,
      cputype: m.cputype,
      cpusubtype: m.cpusubtype,
      slice: info.fat === null ? null : { index, count: info.images.length, offset: m.offset, size: m.size },
    }));
  });
}

/**
 * Reads and validates the manifest of the bundle directory `dir`.
 *
 * @example
 * readBundleManifest('dist/native').variants['linux-x64-gnu'].order
 */
export function readBundleManifest(dir: string): Manifest {
  const manifest = readManifestFile(dir);
  if (manifest === null) {
    throw new DlbundleError('E_USAGE', `${JSON.stringify(dir)} is not a bundle directory: it has no ${MANIFEST_FILE}.`, 'Create one with `dlbundle pack … --out DIR`, or name the .so files themselves.', { dir });
  }
  return manifest;
}

/** Text for one file's facts, as `inspect` prints it. */
export function formatFileReport(r: FileReport): string {
  const list = (xs: readonly string[]): string => (xs.length === 0 ? '(none)' : xs.join(', '));
  if (r.format === 'pe') {
    const imports = r.needed.slice(0, r.needed.length - r.delayNeeded.length);
    return [
      `${r.file}`,
      `  format:  PE${r.class === 64 ? '32+' : '32'} ${r.dll ? 'DLL' : 'executable'}`,
      `  machine: ${r.machine}`,
      `  name:    ${r.soname ?? '(none)'}`,
      `  imports: ${list(imports)}`,
      `  delay:   ${list(r.delayNeeded)}`,
    ].join('\n');
  }
  if (r.format === 'macho') {
    const slice = r.slice === null ? '' : ` (architecture ${r.slice.index + 1} of ${r.slice.count}, bytes ${r.slice.offset}..${r.slice.offset + r.slice.size})`;
    const needs = r.needed.map((n, i) => (r.neededCommands[i] === 'LC_LOAD_DYLIB' ? n : `${n} (${(r.neededCommands[i] as string).replace(/^LC_|_DYLIB$/g, '').toLowerCase()})`));
    return [
      `${r.file}${slice}`,
      `  format:  Mach-O ${r.class}-bit ${r.filetype}`,
      `  machine: ${r.machine} (cputype ${r.cputype}, cpusubtype ${r.cpusubtype})`,
      `  install name: ${r.soname ?? '(none)'}`,
      `  needed:  ${list(needs)}`,
      `  rpath:   ${list(r.runpath)}`,
    ].join('\n');
  }
  return [
    `${r.file}`,
    `  class:   ELF${r.class}`,
    `  machine: ${r.machine}`,
    `  soname:  ${r.soname ?? '(none)'}`,
    `  needed:  ${list(r.needed)}`,
    `  runpath: ${list(r.runpath)}`,
    `  rpath:   ${list(r.rpath)}`,
    `  interp:  ${r.interp ?? '(none)'}`,
    `  versions: ${versionList(r.requiresVersions) ?? '(none of GLIBC, GLIBCXX, CXXABI)'}`,
  ].join('\n');
}

/** `GLIBC_2.34, GLIBCXX_3.4.30`, or null when there are none. */
function versionList(versions: RequiredVersions | undefined): string | null {
  const names = VERSION_FAMILIES.filter((f) => versions?.[f] !== undefined).map((f) => `${f}_${versions?.[f] as string}`);
  return names.length === 0 ? null : names.join(', ');
}

/** Text for a bundle: per variant the load order, each file's soname and needs, and the external dependencies. */
export function formatBundle(manifest: Manifest, dir: string): string {
  const lines = [`bundle ${manifest.name} (${path.join(dir, MANIFEST_FILE)})`];
  for (const [key, v] of Object.entries(manifest.variants)) {
    lines.push('', `variant ${key}  digest ${v.digest}  ${v.files.length} files`, '  load order:');
    const byName = new Map(v.files.map((f) => [f.name, f]));
    v.order.forEach((name, i) => {
      const f = byName.get(name);
      if (f === undefined) return;
      const soname = f.soname === null ? 'no soname' : `soname ${f.soname}`;
      const needs = f.needed.length === 0 ? 'needs nothing' : `needs ${f.needed.join(', ')}`;
      const versions = versionList(f.requiresVersions);
      lines.push(`    ${String(i + 1).padStart(2)}. ${f.name}  (${soname}, ${f.size} bytes, ${f.machine})  ${needs}${versions === null ? '' : `; versions ${versions}`}`);
    });
    lines.push(`  external: ${v.external.length === 0 ? '(none)' : v.external.join(', ')}`);
    const here = safeTarget(key) === hostTarget();
    lines.push(`  dependencies${here ? ' on this machine' : ''}:`);
    const libraries = describeDependencies(v, path.join(dir, key), here);
    lines.push(...formatDependencyTree(libraries).split('\n').map((l) => `    ${l}`));
    const versions = formatVersionFacts(libraries);
    if (versions !== '') lines.push(`  symbol versions${here ? ' on this machine' : ''}:`, ...versions.split('\n').map((l) => `    ${l}`));
  }
  return lines.join('\n');
}

function safeTarget(key: string): string | null {
  try {
    return parseVariantKey(key).target;
  } catch {
    // A target this version does not know: not this machine's.
    return null;
  }
}

/** Where one DT_NEEDED entry of a library is satisfied. */
export interface DependencyFact {
  readonly name: string;
  /** `bundled`: by a file of the bundle; `system`: found on this machine; `missing`: nowhere; `unknown`: another machine's variant, not looked up. */
  readonly kind: 'bundled' | 'system' | 'missing' | 'unknown';
  /** The bundled file, or the system path it resolves to. */
  readonly path?: string;
  /** For system dependencies: which search step found it. */
  readonly via?: string;
}

/** One glibc / libstdc++ version a library needs, and whether this system has it. */
export interface VersionFact {
  readonly family: VersionFamily;
  /** The highest version of the family the library needs (`2.34`). */
  readonly needed: string;
  /**
   * `ok`: the library that provides the family defines it; `too-old`: it
   * does not (the library cannot load here: E_SYSTEM_TOO_OLD); `unchecked`:
   * not looked up (another machine's variant, a musl system, a provider the
   * bundle carries itself, or none found).
   */
  readonly status: 'ok' | 'too-old' | 'unchecked';
  /** The highest version of the family the system's provider defines; null when it defines none. Absent when unchecked. */
  readonly present?: string | null;
  /** The provider that was read (libc.so.6, libstdc++.so.6). */
  readonly file?: string;
  /** Why that copy, when it is not simply the one the search finds. */
  readonly note?: string;
}

/** One library and its dependencies. */
export interface LibraryDependencies {
  readonly name: string;
  readonly optional: boolean;
  readonly needs: readonly DependencyFact[];
  /** The glibc / libstdc++ versions it needs (recorded at pack time), each checked against this system when looked up. */
  readonly versions: readonly VersionFact[];
}

/**
 * Classifies each DT_NEEDED entry of each file of a variant: bundled, found on
 * this system (with the path, looked up as this system's loader would from
 * `dir`: `$ORIGIN`, `@loader_path`), or missing. System lookups are made only when `lookUp` is true (the
 * variant is this machine's); otherwise external entries are `unknown`.
 *
 * @example
 * describeDependencies(manifest.variants['linux-x64-gnu'], '/app/native/linux-x64-gnu', true)
 */
export function describeDependencies(variant: ManifestVariant, dir: string, lookUp: boolean): LibraryDependencies[] {
  const graph = dependencyGraph(variant.files);
  // This system's linker (ld.so, dyld, Windows's DLL search), from the bundle's directory.
  const search = systemSearch(dir);
  const offered = systemVersionOracle<ManifestFile>({
    bundled: (soname) => graph.providers.has(soname),
    resolve: (soname, file) => search.resolve(soname, file),
  });
  return variant.order.map((name) => {
    const file = graph.nodes.get(name) as ManifestFile;
    const needs = file.needed.map((dep): DependencyFact => {
      const provider = graph.providerOf(dep);
      if (provider !== undefined) return { name: dep, kind: 'bundled', path: provider.name };
      if (!lookUp) return { name: dep, kind: 'unknown' };
      const found = search.find(dep, file);
      return found === null ? { name: dep, kind: 'missing' } : { name: dep, kind: 'system', path: found.path, via: found.via };
    });
    const versions = VERSION_FAMILIES.filter((f) => file.requiresVersions?.[f] !== undefined).map((family): VersionFact => {
      const needed = file.requiresVersions?.[family] as string;
      const o = lookUp ? offered(family, file, needed) : null;
      if (o === null) return { family, needed, status: 'unchecked' };
      const ok = o.version !== null && compareVersions(needed, o.version) <= 0;
      return { family, needed, status: ok ? 'ok' : 'too-old', present: o.version, file: o.file, ...(o.note === undefined ? {} : { note: o.note }) };
    });
    return { name, optional: file.optional === true, needs, versions };
  });
}

/**
 * One line per library that needs glibc / libstdc++ versions: each version
 * and whether this system has it ("TOO OLD" when it does not, unless the
 * library is optional); empty when no library needs any.
 *
 * @example
 * formatVersionFacts(describeDependencies(variant, dir, true))
 * // 'libtoo_new_glibc.so  GLIBC_2.99: TOO OLD here: /lib/x86_64-linux-gnu/libc.so.6 defines versions up to GLIBC_2.36'
 */
export function formatVersionFacts(libraries: readonly LibraryDependencies[]): string {
  const width = Math.max(0, ...libraries.filter((l) => l.versions.length > 0).map((l) => l.name.length));
  const lines: string[] = [];
  for (const lib of libraries) {
    if (lib.versions.length === 0) continue;
    const facts = lib.versions.map((v) => {
      const name = `${v.family}_${v.needed}`;
      if (v.status === 'unchecked') return `${name} (not checked here)`;
      const has = `${v.file as string} defines ${v.present === null ? `no ${v.family} version` : `versions up to ${v.family}_${v.present as string}`}${v.note === undefined ? '' : ` (${v.note})`}`;
      if (v.status === 'ok') return `${name}: ok (${has})`;
      return `${name}: ${lib.optional ? 'too old here: fine, the library is optional and is left out here' : 'TOO OLD here'}: ${has}`;
    });
    lines.push(`${lib.name.padEnd(width)}  ${facts.join('; ')}`);
  }
  return lines.join('\n');
}

/**
 * The dependencies as a tree, like `ldd`: bundled dependencies expanded under
 * the library that needs them (once; later mentions say "see above"), system
 * ones with the path they resolve to, missing ones marked.
 *
 * @example
 * formatDependencyTree(describeDependencies(variant, dir, true))
 */
export function formatDependencyTree(libraries: readonly LibraryDependencies[]): string {
  const byName = new Map(libraries.map((l) => [l.name, l]));
  const needed = new Set(libraries.flatMap((l) => l.needs.filter((n) => n.kind === 'bundled').map((n) => n.path as string)));
  const shown = new Set<string>();
  const lines: string[] = [];
  // Under an optional library, a missing dependency is the expected case on machines without it, not a fault.
  const walk = (lib: LibraryDependencies, prefix: string, optional: boolean): void => {
    lib.needs.forEach((dep, i) => {
      const last = i === lib.needs.length - 1;
      const branch = `${prefix}${last ? '└─ ' : '├─ '}`;
      const child = `${prefix}${last ? '   ' : '│  '}`;
      if (dep.kind === 'bundled') {
        const target = byName.get(dep.path as string);
        const label = dep.path === dep.name ? 'bundled' : `bundled: ${dep.path}`;
        if (target === undefined || shown.has(target.name)) {
          lines.push(`${branch}${dep.name}  ${label}${target === undefined ? '' : ' (see above)'}`);
        } else {
          shown.add(target.name);
          lines.push(`${branch}${dep.name}  ${label}`);
          walk(target, child, optional);
        }
      } else if (dep.kind === 'system') lines.push(`${branch}${dep.name}  system: ${dep.path} (${dep.via})`);
      else if (dep.kind === 'missing') lines.push(`${branch}${dep.name}  ${optional ? 'not on this system: fine, the library needing it is optional and is left out here' : 'MISSING: not bundled, not on this system'}`);
      else lines.push(`${branch}${dep.name}  external (not looked up: another machine's variant)`);
    });
  };
  // Roots of the forest first (libraries nothing in the bundle needs), then the rest not yet shown.
  for (const lib of [...libraries.filter((l) => !needed.has(l.name)), ...libraries.filter((l) => needed.has(l.name))]) {
    if (shown.has(lib.name)) continue;
    shown.add(lib.name);
    lines.push(`${lib.name}${lib.optional ? '  (optional)' : ''}`);
    walk(lib, '  ', lib.optional);
  }
  return lines.join('\n');
}

/**
 * What `dlbundle inspect` reports: the ELF facts of loose files, or the
 * variants of a bundle directory, as data and as text.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { DlbundleError } from './errors';
import { readElfFile } from './elf-file';
import { ioError } from './file-io';
import { MANIFEST_FILE, parseManifest, type Manifest } from './manifest';

/** One file's facts, with exactly the keys `inspect --json` prints. */
export interface FileReport {
  readonly file: string;
  readonly class: 32 | 64;
  readonly machine: string;
  readonly soname: string | null;
  readonly needed: readonly string[];
  readonly runpath: readonly string[];
  readonly rpath: readonly string[];
  readonly interp: string | null;
}

/**
 * The ELF facts of each file, in argument order.
 *
 * @example
 * inspectFiles(['libz.so.1'])[0].needed // ['libc.so.6']
 */
export function inspectFiles(files: readonly string[]): FileReport[] {
  return files.map((file) => {
    const e = readElfFile(file);
    return { file, class: e.class, machine: e.machine, soname: e.soname, needed: e.needed, runpath: e.runpath, rpath: e.rpath, interp: e.interp };
  });
}

/**
 * Reads and validates the manifest of the bundle directory `dir`.
 *
 * @example
 * readBundleManifest('dist/native').variants['linux-x64-gnu'].order
 */
export function readBundleManifest(dir: string): Manifest {
  const file = path.join(dir, MANIFEST_FILE);
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') {
      throw new DlbundleError('E_USAGE', `${JSON.stringify(dir)} is not a bundle directory: it has no ${MANIFEST_FILE}.`, 'Create one with `dlbundle pack … --out DIR`, or name the .so files themselves.', { dir });
    }
    throw ioError(file, e);
  }
  return parseManifest(text, file);
}

/** Text for one file's facts, as `inspect` prints it. */
export function formatFileReport(r: FileReport): string {
  const list = (xs: readonly string[]): string => (xs.length === 0 ? '(none)' : xs.join(', '));
  return [
    `${r.file}`,
    `  class:   ELF${r.class}`,
    `  machine: ${r.machine}`,
    `  soname:  ${r.soname ?? '(none)'}`,
    `  needed:  ${list(r.needed)}`,
    `  runpath: ${list(r.runpath)}`,
    `  rpath:   ${list(r.rpath)}`,
    `  interp:  ${r.interp ?? '(none)'}`,
  ].join('\n');
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
      lines.push(`    ${String(i + 1).padStart(2)}. ${f.name}  (${soname}, ${f.size} bytes, ${f.machine})  ${needs}`);
    });
    lines.push(`  external: ${v.external.length === 0 ? '(none)' : v.external.join(', ')}`);
  }
  return lines.join('\n');
}

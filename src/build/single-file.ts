/**
 * Single-file builds: `dlbundle bundle` (one CommonJS file with esbuild) and
 * `dlbundle sea` (a Node single executable application: the bundle, the
 * libraries and koffi's native module injected into a copy of `node`).
 */
import { execFileSync } from 'node:child_process';
import fs = require('node:fs');
import os = require('node:os');
import path = require('node:path');
import { DlbundleError } from '../errors';
import { SEA_INDEX_ASSET, seaAssetKey } from '../sources/sea';
import { EMBEDDED_BUNDLES_KEY } from '../sources/embedded';
import { writeEmbeddedModule } from './embed';
import { bundleFiles, packKoffiNative, type BundleFiles } from './assets';
import { koffiPlugin } from './koffi-plugin';
import { addonPlugin } from './addon-plugin';

/**
 * An esbuild plugin, as esbuild's own `Plugin` type describes one: passed to
 * the single-file builds after dlbundle's own (see {@link bundleApplication}).
 */
export interface EsbuildPlugin {
  readonly name: string;
  setup(build: never): unknown;
}
import { requireOptional } from './optional';
import { writeSeaMain } from './sea-main';
import { injectSeaBlob } from './sea-inject';
import { injectPeSeaBlob, peFileVersion } from './sea-inject-pe';
import { binaryFormatOfFile, readBinaryFile } from '../formats/binary-file';
import { hostTarget, knownTargets, targetLibraries } from '../variant';
import { ioError, replaceFile } from '../file-io';

interface EsbuildLike {
  build(options: {
    entryPoints: string[];
    bundle: boolean;
    platform: 'node';
    format: 'cjs';
    target: string;
    outfile: string;
    plugins: readonly EsbuildPlugin[];
    inject?: string[];
    logLevel: 'warning' | 'error';
  }): Promise<unknown>;
}

/** Options of {@link bundleApplication}. */
export interface BundleOptions {
  /** Bundle directories to carry inside the file, for autoSource (`dlbundle bundle --bundle`). */
  readonly bundles?: readonly string[];
  /** More esbuild plugins, run after dlbundle's. */
  readonly plugins?: readonly EsbuildPlugin[];
}

/**
 * Bundles `entry` and everything it requires (dlbundle, koffi's JavaScript)
 * into one CommonJS file, with koffi's loader replaced so that koffi.node
 * comes from the SEA assets or the generated module, and every package's
 * require of its own `.node` file sent to `bundle.provideAddons()`
 * (addon-plugin.ts).
 *
 * @example
 * await bundleApplication('app.js', 'dist/app.cjs');
 */
export async function bundleApplication(entry: string, outfile: string, options: BundleOptions = {}): Promise<void> {
  const esbuild = requireOptional<EsbuildLike>('esbuild', 'Bundling into one file');
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'dlbundle-bundle-'));
  try {
    await esbuild.build({
      entryPoints: [path.resolve(entry)],
      bundle: true,
      platform: 'node',
      format: 'cjs',
      target: `node${process.versions.node.split('.')[0] ?? '20'}`,
      outfile,
      plugins: [koffiPlugin(), addonPlugin(), ...(options.plugins ?? [])],
      inject: (options.bundles ?? []).length === 0 ? [] : [writeCarriedBundles(entry, options.bundles ?? [], work)],
      logLevel: 'error',
    });
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }
}

/**
 * Writes, in `work`, the generated module of each bundle directory and a
 * module that registers them for autoSource (sources/embedded.ts) with their
 * directory relative to the entry script; returns that module, which esbuild
 * runs before the entry.
 */
function writeCarriedBundles(entry: string, bundles: readonly string[], work: string): string {
  const lines = ["'use strict';", `const carried = (globalThis[Symbol.for(${JSON.stringify(EMBEDDED_BUNDLES_KEY)})] ??= []);`];
  bundles.forEach((dir, i) => {
    const module = path.join(work, `bundle-${i}.cjs`);
    writeEmbeddedModule(dir, module);
    const relative = path.relative(path.dirname(path.resolve(entry)), path.resolve(dir));
    lines.push(`{ const m = require(${JSON.stringify(module)}); carried.push({ dir: ${JSON.stringify(relative)}, manifest: m.manifest, blobs: m.blobs }); }`);
  });
  const index = path.join(work, 'carried-bundles.cjs');
  fs.writeFileSync(index, `${lines.join('\n')}\n`);
  return index;
}

/** Options of {@link buildSea}. */
export interface SeaOptions {
  /** The application's entry script. */
  readonly entry: string;
  /** Bundle directories (written by `dlbundle pack`) to carry as assets. */
  readonly bundles: readonly string[];
  /** The executable to write. */
  readonly out: string;
  /** Called as each step starts (the whole build takes tens of seconds). */
  readonly onStep?: (text: string) => void;
  /** Called as the blob is injected into the executable: bytes done of its size (not where node writes the executable itself, see {@link SeaRoute}). */
  readonly onProgress?: (done: number, total: number) => void;
  /** More esbuild plugins for bundling the entry, run after dlbundle's. */
  readonly plugins?: readonly EsbuildPlugin[];
  /** How the executable is written; default: {@link defaultSeaRoute} of the running node. */
  readonly route?: SeaRoute;
  /**
   * The node executable to copy; default: the running node. A Windows
   * `node.exe` makes a Windows executable (`'inject'` route, koffi's Windows
   * build carried): Node's blob is the same on every system, so the running
   * node prepares it, but it must be the same Node version as `node.exe`.
   */
  readonly node?: string;
  /** The target the executable is for; checked against `node` (`win32-x64` for an x64 node.exe). */
  readonly target?: string;
}

/**
 * Builds a single executable application: bundles the entry (carried as an
 * asset with its code cache, run by a small main: see sea-main.ts), adds every
 * bundle and koffi's native module as SEA assets, and writes a copy of the
 * running `node` (or of `options.node`) carrying them: with its own
 * `--build-sea` where it has one (Node 25.5 and newer), else by preparing the
 * blob with `node --experimental-sea-config` and injecting it (sea-inject.ts
 * for ELF, sea-inject-pe.ts for a Windows node.exe).
 *
 * @example
 * await buildSea({ entry: 'app.js', bundles: ['native'], out: 'app' });
 * await buildSea({ entry: 'app.js', bundles: ['native'], out: 'app.exe', node: 'node-v22.23.3-win-x64/node.exe' });
 */
export async function buildSea(options: SeaOptions): Promise<void> {
  requireSeaCapableNode();
  const executable = seaExecutable(options.node, options.target);
  const route = options.route ?? (executable.path === process.execPath ? defaultSeaRoute() : 'inject');
  requireRoute(route);
  if (route === 'build-sea' && executable.path !== process.execPath) {
    throw new DlbundleError('E_USAGE', '`node --build-sea` copies the running node: it cannot build from another node executable.', 'Leave the route to dlbundle (it injects the blob into the node given), or build without --node.');
  }
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'dlbundle-sea-'));
  try {
    const step = options.onStep ?? ((): void => undefined);
    const app = path.join(work, 'app.cjs');
    step('bundling the application with esbuild');
    await bundleApplication(options.entry, app, options.plugins === undefined ? {} : { plugins: options.plugins });
    step("compiling it for V8's code cache");
    const main = writeSeaMain(app, work);
    const entryDir = path.dirname(path.resolve(options.entry));
    const bundles = options.bundles.map((dir) => ({ dir, files: bundleFiles(dir) }));
    const index = bundles.map((b) => ({ name: b.files.manifest.name, dir: path.relative(entryDir, path.resolve(b.dir)) }));
    step("packing koffi's native module");
    const assets: Record<string, string> = { ...main.assets, ...seaAssets(packKoffiNative(path.join(work, 'koffi-native'), executable.target)) };
    for (const b of bundles) Object.assign(assets, seaAssets(b.files));
    fs.writeFileSync(path.join(work, 'index.json'), JSON.stringify({ bundles: index }));
    assets[SEA_INDEX_ASSET] = path.join(work, 'index.json');
    step(route === 'build-sea' ? 'writing the executable (node --build-sea)' : 'preparing the blob (node --experimental-sea-config)');
    writeSeaExecutable({ main: main.main, assets, out: options.out, work, route, executable: executable.path, ...(options.onProgress && { onProgress: options.onProgress }) });
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }
}

/**
 * How {@link writeSeaExecutable} writes the executable: `'build-sea'`, by the
 * running node's `--build-sea` (Node 25.5 and newer) in one step; `'inject'`,
 * the blob prepared by `node --experimental-sea-config` and injected by
 * sea-inject.ts (any Node from 20.12).
 */
export type SeaRoute = 'build-sea' | 'inject';

/** The first Node with `--build-sea`. */
const BUILD_SEA_SINCE = [25, 5] as const;

/**
 * The route a node of `version` (default: the running one) takes: its own
 * `--build-sea` where it has one, the injector elsewhere.
 *
 * @example
 * defaultSeaRoute('24.22.3') // 'inject'
 * defaultSeaRoute('26.12.1') // 'build-sea'
 */
export function defaultSeaRoute(version: string = process.versions.node): SeaRoute {
  return atLeast(version, BUILD_SEA_SINCE) ? 'build-sea' : 'inject';
}

/** Whether the Node `version` (`26.12.1`) is `since` ([major, minor]) or newer. */
function atLeast(version: string, since: readonly [number, number]): boolean {
  const [major = 0, minor = 0] = version.split('.').map(Number);
  return major > since[0] || (major === since[0] && minor >= since[1]);
}

/** What {@link writeSeaExecutable} puts into the executable. */
export interface SeaBlob {
  /** The bundled main script (one CommonJS file). */
  readonly main: string;
  /** Asset key → absolute path. */
  readonly assets: Readonly<Record<string, string>>;
  /** The executable to write. */
  readonly out: string;
  /** A private scratch directory for the config and the blob. */
  readonly work: string;
  /** Called as the blob is injected: bytes done of its size (not on the `'build-sea'` route, where node writes the file in one step). */
  readonly onProgress?: (done: number, total: number) => void;
  /** How the executable is written; default: {@link defaultSeaRoute} of the running node. */
  readonly route?: SeaRoute;
  /** The node executable to copy (its version must be the running node's; see {@link SeaOptions.node}); default: the running node. */
  readonly executable?: string;
}

/**
 * The node executable a single executable is a copy of, and the target it
 * runs on (undefined: this machine's). Another node than the running one
 * must be the same Node version, since the running node prepares the blob:
 * a Windows node.exe says its version in its version resource, another
 * node is asked.
 */
function seaExecutable(node: string | undefined, target: string | undefined): { path: string; target: string | undefined } {
  const file = node === undefined ? process.execPath : path.resolve(node);
  let version: string | null;
  let runsOn: string | undefined;
  if (binaryFormatOfFile(file) === 'pe') {
    const info = readBinaryFile(file);
    const machine = info.format === 'pe' ? info.machine : null;
    runsOn = knownTargets().find((k) => targetLibraries(k).format === 'pe' && targetLibraries(k).machine === machine);
    if (runsOn === undefined || info.format !== 'pe' || info.dll) throw new DlbundleError('E_USAGE', `${JSON.stringify(file)} is a PE file for ${machine ?? 'another machine'}${info.format === 'pe' && info.dll ? ', a DLL' : ''}, not a node.exe dlbundle can build for (win32-x64, win32-arm64).`, 'Give the node.exe of an official Windows build of Node.', { file });
    version = peFileVersion(file);
  } else if (file === process.execPath) {
    if (target !== undefined && target !== hostTarget()) mismatch(file, hostTarget(), target);
    return { path: file, target: undefined };
  } else {
    try {
      version = execFileSync(file, ['--version'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim().replace(/^v/, '');
    } catch (e) {
      throw new DlbundleError('E_USAGE', `${JSON.stringify(file)} does not run here as \`node --version\`: ${(e as Error).message}.`, 'Give a node executable of this system, or a Windows node.exe.', { file, cause: e });
    }
  }
  if (version !== process.versions.node) {
    throw new DlbundleError(
      'E_USAGE',
      `${JSON.stringify(file)} is Node ${version ?? '(no version resource)'}, but this is Node ${process.versions.node}: the running node prepares the SEA blob, which must come from the same Node version as the executable.`,
      `Run dlbundle sea with Node ${version ?? 'of that version'} (the blob is the same on every system), or give the node executable of Node ${process.versions.node}.`,
      { file },
    );
  }
  if (target !== undefined && target !== (runsOn ?? hostTarget())) mismatch(file, runsOn ?? hostTarget(), target);
  return { path: file, target: runsOn };
}

function mismatch(file: string, runsOn: string, target: string): never {
  throw new DlbundleError('E_USAGE', `--target ${target} does not match ${JSON.stringify(file)}, a node for ${runsOn}.`, `Give the node executable for ${target} with --node, or leave --target out.`, { file });
}

/**
 * The last steps of {@link buildSea}, apart so that anything built to compare
 * with it (the empty executable of `npm run bench:sea`) is built the same way:
 * the sea-config, and a copy of the running node carrying it, written by that
 * node's `--build-sea` or by the injector (see {@link SeaRoute}).
 *
 * @example
 * writeSeaExecutable({ main: 'main.cjs', assets: {}, out: 'empty-sea', work });
 */
export function writeSeaExecutable(blob: SeaBlob): void {
  const route = blob.route ?? defaultSeaRoute();
  requireRoute(route);
  const out = path.resolve(blob.out);
  // No useCodeCache: the main's cache is made by writeSeaMain, because Node's
  // prints a warning on every start whose V8 flags differ from the build's.
  const common = { main: blob.main, disableExperimentalSEAWarning: true, assets: blob.assets };
  const prep = path.join(blob.work, 'sea-prep.blob');
  try {
    // Built beside the destination and renamed over it: an interrupted build
    // never leaves a half-written executable under the name asked for.
    replaceFile(out, (tmp) => {
      const config = route === 'build-sea' ? { ...common, executable: process.execPath, output: tmp } : { ...common, output: prep };
      fs.writeFileSync(path.join(blob.work, 'sea-config.json'), JSON.stringify(config, null, 2));
      if (route === 'build-sea') {
        runSeaNode('--build-sea', blob.work, out);
        return;
      }
      runSeaNode('--experimental-sea-config', blob.work, out);
      const executable = blob.executable ?? process.execPath;
      fs.copyFileSync(executable, tmp, fs.constants.COPYFILE_EXCL);
      fs.chmodSync(tmp, 0o755);
      const inject = binaryFormatOfFile(executable) === 'pe' ? injectPeSeaBlob : injectSeaBlob;
      inject(tmp, prep, blob.onProgress && { onProgress: blob.onProgress });
    });
  } catch (e) {
    throw e instanceof DlbundleError ? e : ioError(out, e, 'write');
  }
}

/** Runs the running node with `flag` on the sea-config.json in `work`; its own message when it fails. */
function runSeaNode(flag: string, work: string, out: string): void {
  try {
    execFileSync(process.execPath, [flag, 'sea-config.json'], { cwd: work, stdio: 'pipe' });
  } catch (e) {
    const said = String((e as { stderr?: unknown }).stderr ?? '').trim();
    throw new DlbundleError('E_IO', `\`node ${flag}\` failed while building ${JSON.stringify(out)}: ${said === '' ? (e as Error).message : said}`, "Node's message above says why (an unreadable asset, no space left); fix that and build again.", { file: out, cause: e });
  }
}

/**
 * The SEA assets of a bundle: asset key → absolute path.
 *
 * @example
 * seaAssets(bundleFiles('native')) // { 'dlbundle/demo/dlbundle.json': '/…/native/dlbundle.json', … }
 */
export function seaAssets(bundle: BundleFiles): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [key, file] of bundle.files) out[seaAssetKey(bundle.manifest.name, key)] = file;
  return out;
}

/**
 * Adds the bundle in `bundleDir` to the sea-config.json `configFile`
 * (created when absent; everything already in it is kept), with what a single
 * executable needs beside it: koffi's native module (the `koffi-native`
 * bundle, packed into `koffi-native/` beside the config) and the index that
 * lets `autoSource` tell bundles apart (`dlbundle-index.json` beside the
 * config; a bundle's directory is recorded relative to the config's, where
 * the entry script is expected). Asset paths are written relative to the
 * config file's directory: run `node --experimental-sea-config` from there.
 *
 * @example
 * addToSeaConfig('native', 'sea-config.json');
 */
export function addToSeaConfig(bundleDir: string, configFile: string): void {
  let config: Record<string, unknown> = {};
  if (fs.existsSync(configFile)) {
    try {
      config = JSON.parse(fs.readFileSync(configFile, 'utf8')) as Record<string, unknown>;
    } catch (e) {
      throw new DlbundleError('E_USAGE', `${JSON.stringify(configFile)} is not valid JSON.`, 'Fix or remove it; dlbundle adds its assets to an existing SEA config.', { file: configFile, cause: e });
    }
  }
  const base = path.dirname(path.resolve(configFile));
  const assets = { ...(typeof config.assets === 'object' && config.assets !== null ? (config.assets as Record<string, string>) : {}) };
  const bundle = bundleFiles(bundleDir);
  const koffi = packKoffiNative(path.join(base, 'koffi-native'));
  for (const [key, file] of Object.entries({ ...seaAssets(bundle), ...seaAssets(koffi) })) assets[key] = path.relative(base, file);

  const indexFile = path.join(base, 'dlbundle-index.json');
  let index: { bundles: { name: string; dir: string }[] } = { bundles: [] };
  try {
    index = JSON.parse(fs.readFileSync(indexFile, 'utf8')) as typeof index;
  } catch {
    // None yet (or not ours): this bundle starts it.
  }
  const dir = path.relative(base, path.resolve(bundleDir));
  index.bundles = [...index.bundles.filter((b) => b.name !== bundle.manifest.name), { name: bundle.manifest.name, dir }];
  fs.writeFileSync(indexFile, `${JSON.stringify(index, null, 2)}\n`);
  assets[SEA_INDEX_ASSET] = path.relative(base, indexFile);

  config.assets = assets;
  fs.writeFileSync(configFile, `${JSON.stringify(config, null, 2)}\n`);
}

function requireRoute(route: SeaRoute): void {
  if (route === 'build-sea' && defaultSeaRoute() !== 'build-sea') {
    throw new DlbundleError('E_USAGE', `\`node --build-sea\` needs Node ${BUILD_SEA_SINCE.join('.')} or newer; this is ${process.version}.`, 'Leave the route to dlbundle (on this node it injects the blob itself), or build with a newer node.');
  }
}

function requireSeaCapableNode(): void {
  if (!atLeast(process.versions.node, [20, 12])) {
    throw new DlbundleError('E_USAGE', `\`dlbundle sea\` needs Node 20.12 or newer (for node:sea's getRawAsset); this is ${process.version}.`, 'Run it with a newer node; the executable is a copy of the node that builds it.');
  }
}


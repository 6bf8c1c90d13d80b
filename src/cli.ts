#!/usr/bin/env node
/**
 * The `dlbundle` command: `pack`, `inspect`, `doctor`, `bundle`, `sea`,
 * `cache list|prune`. Each command is a thin layer over a library module,
 * described once in the table below: its help, its options (checked before
 * anything runs, with the nearest known one suggested), its required ones.
 */
import fs = require('node:fs');
import path = require('node:path');
import { parseArgs } from 'node:util';
import { DlbundleError, isDlbundleError } from './errors';
import { formatBundle, formatFileReport, inspectFiles, readBundleManifest } from './inspect';
import { diagnose, formatDoctorReport } from './doctor';
import { pack, packPackage, type PackResult } from './pack';
import { formatPackageNativeFiles, type PackageNativeFiles } from './package-files';
import { pruneCache, scanCache, type CacheEntry } from './prune';
import type { RootFallback } from './roots';
import { knownTargets } from './variant';
import { nearest } from './nearest';
import { ownPackage } from './own-package';
import { progressLine } from './progress';
import { writeEmbeddedModule } from './build/embed';
import { addToSeaConfig, buildSea, bundleApplication, defaultSeaRoute } from './build/single-file';
import { loadBuildConfig } from './build/config-file';

/** An option of a command: how parseArgs reads it, and what its help says. */
interface OptionSpec {
  readonly type: 'string' | 'boolean';
  readonly multiple?: boolean;
  /** The value's placeholder in help (`N`, `DIR`); none for a flag. */
  readonly value?: string;
  readonly required?: boolean;
  readonly help: string;
}

/** The parsed command line a command runs with. */
interface Parsed {
  readonly values: Readonly<Record<string, string | boolean | (string | boolean)[] | undefined>>;
  readonly positionals: readonly string[];
}

interface CommandSpec {
  /** What it does, in one line. */
  readonly summary: string;
  /** The positional arguments, as help shows them (`<entry.js>`), and what they are. */
  readonly args: string;
  readonly argsHelp: string;
  readonly options: Readonly<Record<string, OptionSpec>>;
  run(p: Parsed, out: (text: string) => void, err: (text: string) => void): number | Promise<number>;
}

const JSON_OPTION: OptionSpec = { type: 'boolean', help: 'print the result as JSON (errors too, on stderr)' };
const CONFIG_OPTION: OptionSpec = { type: 'string', value: 'FILE', help: 'a .js/.cjs/.mjs module exporting { plugins: [...] }: more esbuild plugins, run after dlbundle\'s' };

const commands: Readonly<Record<string, CommandSpec>> = {
  pack: {
    summary: "pack shared objects, or an npm package's native files, into a bundle directory (dlbundle.json and one folder per target)",
    args: '<files|dirs…>',
    argsHelp: 'shared libraries, or directories whose *.so, *.so.*, *.node, *.dll and *.dylib files are packed (none with --package)',
    options: {
      name: { type: 'string', value: 'NAME', required: true, help: "the bundle's name; its cache directories are <NAME>-<digest>" },
      out: { type: 'string', value: 'DIR', required: true, help: 'the bundle directory to write (another target already in it is kept)' },
      package: {
        type: 'string',
        value: 'DIR|NAME',
        help: "pack an npm package's .node addons for the target (its own and those of the installed packages it depends on, such as sharp's @img/sharp-linux-x64) with the libraries they need, found as the dynamic linker would: RUNPATH/RPATH with $ORIGIN, then this system (left external), then beside the file. A directory (./node_modules/sharp) or a package name, resolved from the current directory as require would. Prints each file taken and why",
      },
      strict: { type: 'boolean', help: 'with --package: refuse (E_MISSING_DEP, nothing written) when a file needs a library that neither the packages nor this system provides, instead of warning' },
      target: { type: 'string', value: 'KEY', help: `the target the files are for when it is not this machine's: ELF files for linux-* and freebsd-*, Windows DLLs for win32-*, macOS dylibs (one architecture of a universal file) for darwin-* (${knownTargets().join(', ')})` },
      requires: { type: 'string', value: 'F,F…', help: 'CPU features this build needs (e.g. avx2,fma): it is chosen only on CPUs that have them, as the variant <target>+avx2+fma' },
      optional: { type: 'string', multiple: true, value: 'FILE', help: 'a packed file that may not load on every machine (repeat, or separate with commas): doctor does not count it as a failure' },
      module: { type: 'string', value: 'FILE.cjs', help: 'also write a CommonJS module carrying the bundle and koffi.node, for single-file builds: fromBuffers(require(FILE).manifest, require(FILE).blobs)' },
      'sea-config': { type: 'string', value: 'FILE', help: "add the bundle's files and koffi.node as assets to this Node sea-config JSON, for a single executable built by hand" },
      json: { type: 'boolean', help: 'print what was packed (and with --package, what was taken and why) as JSON; errors too, on stderr' },
    },
    run({ values, positionals }, out, err) {
      const name = values.name as string;
      const outDir = values.out as string;
      const requires = values.requires as string | undefined;
      const optional = values.optional as string[] | undefined;
      const spec = values.package as string | undefined;
      const json = values.json === true;
      if (spec !== undefined && positionals.length > 0) throw usage(`pack takes files or --package, not both (${JSON.stringify(positionals[0])} and --package ${spec}).`, 'pack', 'Pack the package into one bundle and the other files into another, or name every file without --package.');
      if (spec === undefined && positionals.length === 0) throw usage('pack needs the files to pack: shared objects or directories of them (or --package DIR|NAME).', 'pack');
      if (spec === undefined && values.strict === true) throw usage('--strict goes with --package.', 'pack');
      const progress = progressLine(`packing ${name}`);
      const options = {
        name,
        out: outDir,
        onProgress: (done: number, total: number) => progress.update(done, total),
        ...(values.target === undefined ? {} : { target: values.target as string }),
        ...(requires === undefined ? {} : { requires: requires.split(',').map((f) => f.trim()).filter((f) => f !== '') }),
        ...(optional === undefined ? {} : { optional: optional.flatMap((o) => o.split(',')).map((o) => o.trim()) }),
      };
      let result: PackResult;
      let found: PackageNativeFiles | null = null;
      try {
        if (spec === undefined) result = pack(positionals, options);
        else {
          const r = packPackage(spec, { ...options, strict: values.strict === true });
          result = r;
          found = r.found;
        }
      } finally {
        // An error is then printed on a line of its own.
        progress.done();
      }
      for (const m of result.missing) err(`dlbundle: warning: ${found === null ? missingMessage(m, positionals) : packageMissingMessage(m, found)}`);
      if (!json) {
        if (found !== null) out(formatPackageNativeFiles(found));
        if (result.leftoversRemoved.length > 0) out(`removed what interrupted packs had left: ${result.leftoversRemoved.join(', ')}`);
        const n = result.variant.files.length;
        out(`packed ${n} ${n === 1 ? 'file' : 'files'} as ${result.target} into ${outDir} (digest ${result.variant.digest})`);
        out(`load order: ${result.variant.order.join(' → ')}`);
      }
      if (values.module !== undefined) {
        const writing = progressLine(`writing ${values.module as string}`);
        try {
          writeEmbeddedModule(outDir, values.module as string, (done, total) => writing.update(done, total));
        } finally {
          writing.done();
        }
        if (!json) out(`wrote ${values.module as string}: use fromBuffers(require(${JSON.stringify(values.module)}).manifest, …blobs)`);
      }
      if (values['sea-config'] !== undefined) {
        addToSeaConfig(outDir, values['sea-config'] as string);
        if (!json) out(`added the bundle's assets to ${values['sea-config'] as string}`);
      }
      if (json) out(JSON.stringify(packReport(result, outDir, found), null, 2));
      return 0;
    },
  },

  inspect: {
    summary: 'show the facts of shared libraries (ELF, PE, Mach-O), or what a bundle directory holds',
    args: '<file.so|.dll|.dylib…|bundle-dir>',
    argsHelp: 'shared libraries: ELF (class, machine, soname, needed, runpath, rpath, interp), PE (machine, DLL name, imports, delay-load imports), Mach-O (per architecture: machine, install name, dylib load commands, rpaths); or one bundle directory (per target: load order, needs, external dependencies)',
    options: { json: JSON_OPTION },
    run({ values, positionals }, out) {
      if (positionals.length === 0) throw usage('inspect needs shared objects or a bundle directory.', 'inspect');
      const first = positionals[0] as string;
      if (positionals.length === 1 && isDirectory(first)) {
        const manifest = readBundleManifest(first);
        out(values.json === true ? JSON.stringify(manifest, null, 2) : formatBundle(manifest, first));
        return 0;
      }
      const reports = inspectFiles(positionals);
      out(values.json === true ? JSON.stringify(reports, null, 2) : reports.map(formatFileReport).join('\n\n'));
      return 0;
    },
  },

  doctor: {
    summary: 'will this bundle load on this machine, and if not, why',
    args: '[bundle-dir]',
    argsHelp: 'the bundle directory dlbundle pack wrote (default: the current directory)',
    options: { json: JSON_OPTION },
    run({ values, positionals }, out) {
      if (positionals.length > 1) throw usage(`doctor takes one bundle directory, not ${positionals.length} arguments.`, 'doctor');
      const dir = positionals[0] ?? '.';
      const kind = pathKind(dir);
      if (kind === 'missing') throw usage(`${JSON.stringify(dir)} does not exist.`, 'doctor', `Pass the bundle directory that \`dlbundle pack --out\` wrote: dlbundle doctor <bundle-dir>.`);
      if (kind === 'file') {
        throw usage(`${JSON.stringify(dir)} is a file; doctor checks a bundle directory (what \`dlbundle pack --out\` wrote).`, 'doctor', `For a library's ELF facts: dlbundle inspect ${dir}. To check it as a bundle: pack it first (dlbundle pack ${dir} --name NAME --out DIR), then dlbundle doctor DIR.`);
      }
      const report = diagnose(dir);
      out(values.json === true ? JSON.stringify(report, null, 2) : formatDoctorReport(report));
      return report.loads ? 0 : 1;
    },
  },

  bundle: {
    summary: 'bundle an application into one CommonJS file with esbuild, optionally with its bundles inside',
    args: '<entry.js>',
    argsHelp: "the application's entry script",
    options: {
      out: { type: 'string', value: 'FILE.cjs', required: true, help: 'the file to write' },
      bundle: { type: 'string', multiple: true, value: 'DIR', help: "a bundle directory to carry inside the file, with koffi.node (repeat for several); autoSource(<DIR relative to the entry>) finds it. Without it, the application requires a module made by pack --module itself" },
      config: CONFIG_OPTION,
    },
    async run({ values, positionals }, out) {
      const entry = onePositional(positionals, 'bundle', 'the entry script');
      const plugins = values.config === undefined ? [] : (await loadBuildConfig(values.config as string)).plugins;
      await bundleApplication(entry, values.out as string, { bundles: (values.bundle as string[] | undefined) ?? [], plugins });
      out(`wrote ${values.out as string}`);
      return 0;
    },
  },

  sea: {
    summary: 'build a single executable (Node SEA) carrying the application, its bundles and koffi.node',
    args: '<entry.js>',
    argsHelp: "the application's entry script",
    options: {
      bundle: { type: 'string', multiple: true, value: 'DIR', required: true, help: 'a bundle directory to carry (repeat for several)' },
      out: { type: 'string', value: 'FILE', required: true, help: 'the executable to write' },
      config: CONFIG_OPTION,
      route: { type: 'string', value: 'inject|build-sea', help: `how the executable is written: dlbundle's injector (streamed, any Node) or node's own --build-sea (Node 25.5+, several times slower and heavier); default: ${defaultSeaRoute()} on this node` },
      node: { type: 'string', value: 'FILE', help: "the node executable to copy (default: this node); a Windows node.exe makes a Windows executable. Its Node version must be this node's: this node prepares the blob, which is the same on every system" },
      target: { type: 'string', value: 'KEY', help: 'the target the executable is for (win32-x64 with an x64 node.exe); checked against --node' },
    },
    async run({ values, positionals }, out) {
      const entry = onePositional(positionals, 'sea', 'the entry script');
      const route = values.route as string | undefined;
      if (route !== undefined && route !== 'inject' && route !== 'build-sea') {
        throw usage(`Unknown --route ${JSON.stringify(route)}.`, 'sea', `Use --route inject or --route build-sea${nearest(route, ['inject', 'build-sea']) === null ? '' : ` (did you mean ${nearest(route, ['inject', 'build-sea']) as string}?)`}.`);
      }
      const outFile = values.out as string;
      const plugins = values.config === undefined ? [] : (await loadBuildConfig(values.config as string)).plugins;
      const progress = progressLine(`building ${outFile}`);
      try {
        await buildSea({
          entry,
          bundles: values.bundle as string[],
          out: outFile,
          plugins,
          ...(route === undefined ? {} : { route }),
          ...(values.node === undefined ? {} : { node: values.node as string }),
          ...(values.target === undefined ? {} : { target: values.target as string }),
          onStep: (text) => progress.step(text),
          onProgress: (done, total) => progress.update(done, total),
        });
      } finally {
        progress.done();
      }
      out(`wrote ${outFile} (${(fs.statSync(outFile).size / 2 ** 20).toFixed(1)} MiB)`);
      return 0;
    },
  },

  'cache list': {
    summary: 'list the bundle directories in the cache roots: size, last use, users',
    args: '',
    argsHelp: '',
    options: { json: JSON_OPTION },
    run({ values, positionals }, out, err) {
      if (positionals.length > 0) throw usage(`cache list takes no arguments, not ${JSON.stringify(positionals[0])}.`, 'cache list');
      const { entries, skipped } = scanCache();
      reportSkipped(skipped, err);
      out(values.json === true ? JSON.stringify(entries, null, 2) : entries.length === 0 ? 'no bundle directories' : entries.map(formatEntry).join('\n'));
      return 0;
    },
  },

  'cache prune': {
    summary: 'remove bundle directories no live process uses',
    args: '',
    argsHelp: '',
    options: {
      keep: { type: 'string', value: 'N', help: 'keep the N most recently used directories of each bundle name' },
      'older-than': { type: 'string', value: 'DAYS', help: 'remove only directories unused for more than DAYS days' },
      'dry-run': { type: 'boolean', help: 'say what would be removed, remove nothing' },
      json: JSON_OPTION,
    },
    run({ values, positionals }, out, err) {
      if (positionals.length > 0) throw usage(`cache prune takes no arguments, not ${JSON.stringify(positionals[0])}.`, 'cache prune');
      const keep = values.keep === undefined ? undefined : wholeNumber(values.keep as string, '--keep', 'cache prune');
      const days = values['older-than'] === undefined ? undefined : wholeNumber(values['older-than'] as string, '--older-than', 'cache prune');
      const dryRun = values['dry-run'] === true;
      const result = pruneCache({ ...(keep === undefined ? {} : { keep }), ...(days === undefined ? {} : { olderThanDays: days }), dryRun });
      reportSkipped(result.skipped, err);
      if (values.json === true) out(JSON.stringify(result, null, 2));
      else {
        const verb = dryRun ? 'would remove' : 'removed';
        for (const e of result.removed) out(`${verb} ${formatEntry(e)}`);
        for (const e of result.inUse) out(`in use, kept ${formatEntry(e)}`);
        out(`${verb} ${result.removed.length}, kept ${result.kept.length + result.inUse.length} (${result.inUse.length} in use)`);
      }
      return 0;
    },
  },
};

/** Why a packed file will not load: a library it needs that is neither packed nor on this system, and the file that may provide it. */
function missingMessage(m: { file: string; dependency: string }, inputs: readonly string[]): string {
  // libfoo.so.1 is most often libfoo.so.1.2.3 beside the inputs, left out by a *.so glob.
  const dirs = new Set(inputs.map((i) => (isDirectory(i) ? i : path.dirname(i))));
  const candidates = [...dirs].flatMap((d) => (fs.readdirSync(d).filter((f) => f.startsWith(`${m.dependency}.`) || f === m.dependency).map((f) => path.join(d, f))));
  const hint = candidates.length > 0 ? `pack ${candidates.join(' or ')} too` : 'pack the file that provides it too';
  return `${m.file} needs ${m.dependency}, which is neither packed nor on this system: ${hint}, or mark ${m.file} --optional if it may be missing.`;
}

/** A missing library of a package's file: what was searched, and what to do. */
function packageMissingMessage(m: { file: string; dependency: string }, found: PackageNativeFiles): string {
  const why = found.missing.find((x) => x.file === m.file && x.dependency === m.dependency)?.reason;
  return `${m.file} needs ${m.dependency}, which neither ${found.package.name} nor this system provides${why === undefined ? '' : ` (${why})`}: install it here (and on the machines the app runs on), or mark ${m.file} --optional if it may be missing; --strict refuses instead.`;
}

/** What `pack --json` prints. */
function packReport(result: PackResult, outDir: string, found: PackageNativeFiles | null): Record<string, unknown> {
  return {
    out: outDir,
    manifest: result.manifestPath,
    target: result.target,
    digest: result.variant.digest,
    files: result.variant.files.map((f) => f.name),
    order: result.variant.order,
    external: result.variant.external,
    missing: result.missing,
    leftoversRemoved: result.leftoversRemoved,
    ...(found === null ? {} : { package: found }),
  };
}

// Refused roots go to stderr, so that --json output stays one document.
function reportSkipped(skipped: readonly RootFallback[], err: (text: string) => void): void {
  for (const s of skipped) err(`dlbundle: skipped ${s.root}: ${s.reason}`);
}

/** The synopsis of a command: `dlbundle pack <files|dirs…> --name NAME --out DIR [--target KEY] …`. */
function synopsis(name: string, spec: CommandSpec): string {
  const opts = Object.entries(spec.options).map(([o, s]) => {
    const text = `--${o}${s.value === undefined ? '' : ` ${s.value}`}`;
    return s.required === true ? text : `[${text}]`;
  });
  return ['dlbundle', name, spec.args, ...opts].filter((x) => x !== '').join(' ');
}

/** What `dlbundle --help` prints. */
function generalUsage(): string {
  const width = Math.max(...Object.keys(commands).map((c) => c.length));
  return [
    'usage: dlbundle <command> [options]',
    '',
    'commands:',
    ...Object.entries(commands).map(([name, spec]) => `  ${name.padEnd(width)}  ${spec.summary}`),
    '',
    'dlbundle <command> --help   the command\'s arguments and options',
    'dlbundle --version          the version',
  ].join('\n');
}

/** What `dlbundle <command> --help` prints. */
function commandHelp(name: string): string {
  const spec = commands[name] as CommandSpec;
  const rows = Object.entries(spec.options).map(([o, s]) => [`--${o}${s.value === undefined ? '' : ` ${s.value}`}`, `${s.help}${s.required === true ? ' (required)' : ''}`] as const);
  rows.push(['--help, -h', 'this help']);
  const width = Math.max(...rows.map(([o]) => o.length), spec.args.length);
  return [
    `usage: ${synopsis(name, spec)}`,
    '',
    spec.summary.charAt(0).toUpperCase() + spec.summary.slice(1) + '.',
    '',
    ...(spec.args === '' ? [] : [`  ${spec.args.padEnd(width)}  ${spec.argsHelp}`]),
    ...rows.map(([o, h]) => `  ${o.padEnd(width)}  ${h}`),
  ].join('\n');
}

/** Options named in `args` that `spec` does not know, refused with the nearest known one. */
function checkOptions(name: string, spec: CommandSpec, args: readonly string[]): void {
  for (const arg of args) {
    if (arg === '--') return;
    if (!arg.startsWith('-') || arg === '-') continue;
    const option = arg.startsWith('--') ? arg.slice(2).split('=')[0] as string : null;
    if (option !== null && option in spec.options) continue;
    const known = Object.keys(spec.options).map((o) => `--${o}`);
    const guess = nearest(option === null ? arg : `--${option}`, known);
    throw usage(`Unknown option ${option === null ? arg : `--${option}`} for dlbundle ${name}.${guess === null ? '' : ` Did you mean ${guess}?`}`, name);
  }
}

function parse(name: string, spec: CommandSpec, args: readonly string[]): Parsed {
  checkOptions(name, spec, args);
  const options: Record<string, { type: 'string' | 'boolean'; multiple?: boolean }> = {};
  for (const [o, s] of Object.entries(spec.options)) options[o] = { type: s.type, ...(s.multiple === true ? { multiple: true } : {}) };
  let parsed: Parsed;
  try {
    parsed = parseArgs({ args: [...args], allowPositionals: true, strict: true, options });
  } catch (e) {
    // Node's wording ("Option '--name <value>' argument missing") is not ours: say which option needs a value.
    const option = /'(--[\w-]+)/.exec((e as Error).message)?.[1];
    const s = option === undefined ? undefined : spec.options[option.slice(2)];
    if (s !== undefined && s.type === 'string') throw usage(`${option as string} needs a value: ${option as string} ${s.value ?? 'VALUE'} (${s.help}).`, name);
    throw usage(`${(e as Error).message.replace(/'/g, '')}.`, name);
  }
  for (const [o, s] of Object.entries(spec.options)) {
    if (s.required === true && parsed.values[o] === undefined) throw usage(`dlbundle ${name} needs --${o} ${s.value ?? ''}: ${s.help}.`.replace(' :', ':'), name);
  }
  return parsed;
}

function onePositional(positionals: readonly string[], name: string, what: string): string {
  if (positionals.length === 0) throw usage(`dlbundle ${name} needs ${what}.`, name);
  if (positionals.length > 1) throw usage(`dlbundle ${name} takes one entry script, not ${positionals.length} arguments (${positionals.map((p) => JSON.stringify(p)).join(', ')}).`, name);
  return positionals[0] as string;
}

function formatEntry(e: CacheEntry): string {
  const users = e.users.length === 0 ? 'unused' : `used by pid ${e.users.join(', ')}`;
  return `${e.dir}  ${(e.bytes / 2 ** 20).toFixed(1)} MiB  last used ${new Date(e.lastUse).toISOString()}  ${users}`;
}

function wholeNumber(text: string, option: string, command: string): number {
  const n = Number(text);
  if (!Number.isSafeInteger(n) || n < 0 || text.trim() === '') throw usage(`${option} takes a whole number, not ${JSON.stringify(text)}.`, command);
  return n;
}

function isDirectory(p: string): boolean {
  return pathKind(p) === 'directory';
}

function pathKind(p: string): 'directory' | 'file' | 'missing' {
  const st = fs.statSync(p, { throwIfNoEntry: false });
  return st === undefined ? 'missing' : st.isDirectory() ? 'directory' : 'file';
}

/** `E_USAGE`: what was wrong, then what to run (by default, where the command's help is). */
function usage(what: string, command: string | null, next?: string): DlbundleError {
  return new DlbundleError('E_USAGE', what, next ?? (command === null ? 'Run dlbundle --help for the commands.' : `Run dlbundle ${command} --help for its arguments and options.`));
}

function version(): string {
  return ownPackage().version;
}

/**
 * Runs the CLI with `argv` (without `node` and the script) and resolves to
 * the exit status: 0 done (and `--help`, `--version`), 1 a failure, 2 a usage
 * error. A bare `dlbundle` prints its usage on stderr and exits 1. Errors go
 * to stderr as `dlbundle: CODE: what` and the next step — or, with `--json`,
 * as `{ "error": { "code", "message", "hint" } }`.
 *
 * @example
 * process.exitCode = await main(['inspect', 'dist/native']);
 */
export async function main(argv: readonly string[], out: (text: string) => void = (t) => process.stdout.write(`${t}\n`), err: (text: string) => void = (t) => process.stderr.write(`${t}\n`)): Promise<number> {
  const json = argv.includes('--json');
  try {
    const [first, ...rest] = argv;
    if (first === undefined) {
      err(generalUsage());
      return 1;
    }
    if (first === '--help' || first === '-h' || (first === 'help' && rest.length === 0)) {
      out(generalUsage());
      return 0;
    }
    if (first === '--version' || first === '-v') {
      out(version());
      return 0;
    }
    const asked = first === 'help' ? rest : argv;
    const [name, args] = commandOf(asked);
    if (first === 'help' || args.includes('--help') || args.includes('-h')) {
      out(commandHelp(name));
      return 0;
    }
    const spec = commands[name] as CommandSpec;
    return await spec.run(parse(name, spec, args), out, err);
  } catch (e) {
    if (isDlbundleError(e)) {
      const [what, ...next] = e.message.split('\n');
      if (json) err(JSON.stringify({ error: { code: e.code, message: what, hint: next.join('\n') } }));
      else err(`dlbundle: ${e.code}: ${e.message}`);
      return e.code === 'E_USAGE' ? 2 : 1;
    }
    throw e;
  }
}

/** The command `argv` names (`cache list` takes two words), and its arguments; `E_USAGE` with the nearest command otherwise. */
function commandOf(argv: readonly string[]): [string, string[]] {
  const [first = '', second, ...rest] = argv;
  if (first === 'cache') {
    const sub = second === undefined || second.startsWith('-') ? undefined : `cache ${second}`;
    if (sub !== undefined && sub in commands) return [sub, rest];
    if (second === '--help' || second === '-h') return ['cache list', ['--help']];
    const guess = second === undefined ? null : nearest(second, ['list', 'prune']);
    throw usage(
      second === undefined || second.startsWith('-') ? 'dlbundle cache needs list or prune.' : `Unknown cache command ${JSON.stringify(second)}.${guess === null ? '' : ` Did you mean "cache ${guess}"?`}`,
      null,
      'Run dlbundle cache list --help or dlbundle cache prune --help.',
    );
  }
  if (first in commands && !first.includes(' ')) return [first, argv.slice(1)];
  const guess = nearest(first, [...Object.keys(commands).filter((c) => !c.startsWith('cache ')), 'cache']);
  throw usage(`${first.startsWith('-') ? `Unknown option ${first}` : `Unknown command ${JSON.stringify(first)}`}.${guess === null ? '' : ` Did you mean "${guess}"?`}`, null);
}

if (require.main === module) {
  // `dlbundle cache list | head -1`: the reader is gone, so nothing more can be
  // said; end quietly, as standard tools do, instead of with a stack trace.
  process.stdout.on('error', (e: NodeJS.ErrnoException) => {
    if (e.code !== 'EPIPE') throw e;
    process.exit(0);
  });
  void main(process.argv.slice(2)).then((status) => {
    process.exitCode = status;
  });
}

#!/usr/bin/env node
/**
 * The `dlbundle` command: `pack`, `inspect`, `bundle`, `sea`. Each command is
 * a thin layer over a library module; this file parses arguments and prints.
 */
import fs = require('node:fs');
import { parseArgs } from 'node:util';
import { DlbundleError, isDlbundleError } from './errors';
import { formatBundle, formatFileReport, inspectFiles, readBundleManifest } from './inspect';
import { diagnose, formatDoctorReport } from './doctor';
import { pack } from './pack';
import { pruneCache, scanCache, type CacheEntry } from './prune';
import type { RootFallback } from './roots';
import { writeEmbeddedModule } from './build/embed';
import { addToSeaConfig, buildSea, bundleApplication } from './build/single-file';

const USAGE = `usage:
  dlbundle pack <files|dirs…> --name N --out DIR [--target T] [--requires avx2,fma] [--optional FILE] [--module FILE.cjs] [--sea-config FILE]
  dlbundle inspect <file.so…|bundle-dir> [--json]
  dlbundle bundle <entry.js> --out FILE.cjs
  dlbundle sea <entry.js> --bundle DIR [--bundle DIR…] --out FILE
  dlbundle doctor [bundle-dir] [--json]
  dlbundle cache list [--json]
  dlbundle cache prune [--keep N] [--older-than DAYS] [--dry-run] [--json]`;

type Command = (args: string[], out: (text: string) => void, err: (text: string) => void) => number | Promise<number>;

const commands: Readonly<Record<string, Command>> = {
  pack(args, out) {
    const { values, positionals } = parseArgs({
      args,
      allowPositionals: true,
      options: { name: { type: 'string' }, out: { type: 'string' }, target: { type: 'string' }, requires: { type: 'string' }, optional: { type: 'string', multiple: true }, module: { type: 'string' }, 'sea-config': { type: 'string' } },
    });
    if (values.name === undefined || values.out === undefined || positionals.length === 0) {
      throw usage('pack needs input files or directories, --name and --out.');
    }
    const result = pack(positionals, {
      name: values.name,
      out: values.out,
      ...(values.target === undefined ? {} : { target: values.target }),
      ...(values.requires === undefined ? {} : { requires: values.requires.split(',').map((f) => f.trim()).filter((f) => f !== '') }),
      ...(values.optional === undefined ? {} : { optional: values.optional.flatMap((o) => o.split(',')).map((o) => o.trim()) }),
    });
    if (result.leftoversRemoved.length > 0) out(`removed what interrupted packs had left: ${result.leftoversRemoved.join(', ')}`);
    out(`packed ${result.variant.files.length} files as ${result.target} into ${values.out} (digest ${result.variant.digest})`);
    out(`load order: ${result.variant.order.join(' → ')}`);
    if (values.module !== undefined) {
      writeEmbeddedModule(values.out, values.module);
      out(`wrote ${values.module}: use fromBuffers(require(${JSON.stringify(values.module)}).manifest, …blobs)`);
    }
    if (values['sea-config'] !== undefined) {
      addToSeaConfig(values.out, values['sea-config']);
      out(`added the bundle's assets to ${values['sea-config']}`);
    }
    return 0;
  },

  async bundle(args, out) {
    const { values, positionals } = parseArgs({ args, allowPositionals: true, options: { out: { type: 'string' } } });
    const entry = positionals[0];
    if (entry === undefined || positionals.length > 1 || values.out === undefined) throw usage('bundle needs one entry script and --out.');
    await bundleApplication(entry, values.out);
    out(`wrote ${values.out}`);
    return 0;
  },

  doctor(args, out) {
    const { values, positionals } = parseArgs({ args, allowPositionals: true, options: { json: { type: 'boolean' } } });
    if (positionals.length > 1) throw usage('doctor takes at most one bundle directory.');
    const report = diagnose(positionals[0] ?? '.');
    out(values.json === true ? JSON.stringify(report, null, 2) : formatDoctorReport(report));
    return report.loads ? 0 : 1;
  },

  cache(args, out, err) {
    const [action, ...rest] = args;
    const { values } = parseArgs({
      args: rest,
      options: { json: { type: 'boolean' }, keep: { type: 'string' }, 'older-than': { type: 'string' }, 'dry-run': { type: 'boolean' } },
    });
    // Refused roots go to stderr, so that --json output stays one document.
    const reportSkipped = (skipped: readonly RootFallback[]): void => {
      for (const s of skipped) err(`dlbundle: skipped ${s.root}: ${s.reason}`);
    };
    if (action === 'list') {
      const { entries, skipped } = scanCache();
      reportSkipped(skipped);
      out(values.json === true ? JSON.stringify(entries, null, 2) : entries.length === 0 ? 'no bundle directories' : entries.map(formatEntry).join('\n'));
      return 0;
    }
    if (action === 'prune') {
      const keep = values.keep === undefined ? undefined : wholeNumber(values.keep, '--keep');
      const days = values['older-than'] === undefined ? undefined : wholeNumber(values['older-than'], '--older-than');
      const result = pruneCache({ ...(keep === undefined ? {} : { keep }), ...(days === undefined ? {} : { olderThanDays: days }), dryRun: values['dry-run'] === true });
      reportSkipped(result.skipped);
      if (values.json === true) out(JSON.stringify(result, null, 2));
      else {
        const verb = values['dry-run'] === true ? 'would remove' : 'removed';
        for (const e of result.removed) out(`${verb} ${formatEntry(e)}`);
        for (const e of result.inUse) out(`in use, kept ${formatEntry(e)}`);
        out(`${verb} ${result.removed.length}, kept ${result.kept.length + result.inUse.length} (${result.inUse.length} in use)`);
      }
      return 0;
    }
    throw usage('cache needs `list` or `prune`.');
  },

  async sea(args, out) {
    const { values, positionals } = parseArgs({ args, allowPositionals: true, options: { out: { type: 'string' }, bundle: { type: 'string', multiple: true } } });
    const entry = positionals[0];
    if (entry === undefined || positionals.length > 1 || values.out === undefined || values.bundle === undefined) {
      throw usage('sea needs one entry script, --bundle DIR and --out FILE.');
    }
    await buildSea({ entry, bundles: values.bundle, out: values.out });
    out(`wrote ${values.out} (${(fs.statSync(values.out).size / 2 ** 20).toFixed(1)} MiB)`);
    return 0;
  },

  inspect(args, out) {
    const { values, positionals } = parseArgs({ args, allowPositionals: true, options: { json: { type: 'boolean' } } });
    if (positionals.length === 0) throw usage('inspect needs files or a bundle directory.');
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
};

function formatEntry(e: CacheEntry): string {
  const users = e.users.length === 0 ? 'unused' : `used by pid ${e.users.join(', ')}`;
  return `${e.dir}  ${(e.bytes / 2 ** 20).toFixed(1)} MiB  last used ${new Date(e.lastUse).toISOString()}  ${users}`;
}

function wholeNumber(text: string, option: string): number {
  const n = Number(text);
  if (!Number.isSafeInteger(n) || n < 0) throw usage(`${option} takes a whole number, not ${JSON.stringify(text)}.`);
  return n;
}

function isDirectory(p: string): boolean {
  try {
    return fs.statSync(p).isDirectory();
  } catch {
    // A missing path is reported by the file reader with its own error.
    return false;
  }
}

function usage(what: string): DlbundleError {
  return new DlbundleError('E_USAGE', what, USAGE);
}

/**
 * Runs the CLI with `argv` (without `node` and the script) and resolves to the exit status.
 *
 * @example
 * process.exitCode = await main(['inspect', 'dist/native']);
 */
export async function main(argv: readonly string[], out: (text: string) => void = (t) => process.stdout.write(`${t}\n`), err: (text: string) => void = (t) => process.stderr.write(`${t}\n`)): Promise<number> {
  const [name, ...rest] = argv;
  const command = name === undefined ? undefined : commands[name];
  try {
    if (command === undefined) {
      if (name === undefined || name === '--help' || name === 'help') {
        out(USAGE);
        return name === undefined ? 2 : 0;
      }
      throw usage(`Unknown command ${JSON.stringify(name)}.`);
    }
    return await command(rest, out, err);
  } catch (e) {
    if (isDlbundleError(e)) {
      err(`dlbundle: ${e.code}: ${e.message}`);
      return e.code === 'E_USAGE' ? 2 : 1;
    }
    // parseArgs reports unknown options with its own error type.
    if ((e as NodeJS.ErrnoException).code?.startsWith('ERR_PARSE_ARGS') === true) {
      err(`dlbundle: E_USAGE: ${(e as Error).message}\n${USAGE}`);
      return 2;
    }
    throw e;
  }
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

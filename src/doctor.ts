/**
 * `dlbundle doctor [bundle-dir]`: will this bundle load on this machine, and
 * if not, why. It reports the machine's variant key and CPU features, the
 * variant chosen and why, the cache root a start would use and why the others
 * would be skipped, where every external dependency resolves, and the result
 * of a trial load in a child process (so nothing is loaded into the caller).
 */
import { spawnSync } from 'node:child_process';
import path = require('node:path');
import { assessRoots, type RootAssessment } from './roots';
import { isDlbundleError } from './errors';
import { describeDependencies, formatDependencyTree, formatVersionFacts, readBundleManifest, type LibraryDependencies } from './inspect';
import { cpuFeatures, hostLibc, hostTarget, parseVariantKey, selectVariant } from './variant';

const COMMON_FEATURES = ['sse4_2', 'avx', 'avx2', 'fma', 'avx512f', 'asimd', 'sve'];

/** One library's trial load. */
export interface TrialResult {
  readonly name: string;
  readonly optional: boolean;
  readonly ok: boolean;
  readonly code?: string;
  readonly reason?: string;
}

/** What the doctor found. */
export interface DoctorReport {
  readonly bundle: { readonly dir: string; readonly name: string; readonly variants: readonly string[] };
  readonly machine: { readonly target: string; readonly libc: string | null; readonly cpuFeatures: readonly string[] };
  /** The chosen variant and why, or why none fits. */
  readonly variant: { readonly key: string; readonly reason: string } | { readonly error: string };
  /** Every candidate root, in order, with whether a start could use it and why. */
  readonly roots: readonly RootAssessment[];
  readonly libraries: readonly LibraryDependencies[];
  readonly trial: readonly TrialResult[];
  /** True when every library that is not marked optional loaded in the trial. */
  readonly loads: boolean;
}

/**
 * Examines the bundle in `dir`. `trial: false` skips the child process.
 *
 * @example
 * const report = diagnose('dist/native'); process.exitCode = report.loads ? 0 : 1;
 */
export function diagnose(dir: string, options: { readonly trial?: boolean } = {}): DoctorReport {
  const manifest = readBundleManifest(dir);
  const variants = Object.keys(manifest.variants);
  // The features some variant asks about, and the common SIMD ones; all of /proc/cpuinfo would be noise.
  const asked = new Set([...COMMON_FEATURES, ...variants.flatMap((k) => safeFeatures(k))]);
  const cpu = [...cpuFeatures()].filter((f) => asked.has(f)).sort();
  const machine = { target: hostTarget(), libc: hostLibc(), cpuFeatures: cpu };
  const bundle = { dir: path.resolve(dir), name: manifest.name, variants };
  const roots = assessRoots();
  let choice: { key: string; reason: string } | null = null;
  try {
    choice = selectVariant(variants, JSON.stringify(manifest.name));
  } catch (e) {
    if (!isDlbundleError(e)) throw e;
    return { bundle, machine, variant: { error: e.message }, roots, libraries: [], trial: [], loads: false };
  }
  const variant = manifest.variants[choice.key];
  const libraries = variant === undefined ? [] : describeDependencies(variant, path.join(bundle.dir, choice.key), true);
  const trial = options.trial === false ? [] : trialLoad(bundle.dir, libraries);
  const loads =
    options.trial === false
      ? libraries.every((l) => l.optional || (l.needs.every((n) => n.kind !== 'missing') && l.versions.every((v) => v.status !== 'too-old')))
      : trial.every((t) => t.ok || t.optional);
  return { bundle, machine, variant: choice, roots, libraries, trial, loads };
}

function safeFeatures(key: string): readonly string[] {
  try {
    return parseVariantKey(key).features;
  } catch {
    // A target this version does not know asks about nothing here.
    return [];
  }
}

// Each library is loaded through dlbundle itself, in a child process: a
// failed or crashing load must not touch the caller, and what loads in the
// child is exactly what an application would get.
function trialLoad(dir: string, libraries: readonly LibraryDependencies[]): TrialResult[] {
  const script = `
    const dl = require(${JSON.stringify(path.join(__dirname, 'index.js'))});
    const bundle = dl.openBundle({ source: dl.fromDirectory(${JSON.stringify(dir)}) });
    const out = [];
    for (const name of JSON.parse(process.argv[1])) {
      try {
        if (name.endsWith('.node')) { bundle.addon(name); out.push({ name, ok: true }); continue; }
        const r = bundle.optional(name, {});
        out.push(r.ok ? { name, ok: true } : { name, ok: false, code: r.code, reason: r.reason });
      } catch (e) {
        out.push({ name, ok: false, code: e && e.code, reason: String(e && e.message).split('\\n')[0] });
      }
    }
    process.stdout.write(JSON.stringify(out));`;
  const r = spawnSync(process.execPath, ['-e', script, JSON.stringify(libraries.map((l) => l.name))], { encoding: 'utf8', timeout: 60_000 });
  const optional = new Set(libraries.filter((l) => l.optional).map((l) => l.name));
  if (r.status !== 0) {
    // The child died (a crash inside a library's initializer, say): every library is unproven.
    const reason = `the trial process ${r.signal === null ? `exited with status ${String(r.status)}` : `was killed by ${r.signal}`}: ${r.stderr.trim().split('\n').pop() ?? ''}`;
    return libraries.map((l) => ({ name: l.name, optional: optional.has(l.name), ok: false, code: 'E_LOAD_FAILED', reason }));
  }
  const results = JSON.parse(r.stdout) as { name: string; ok: boolean; code?: string; reason?: string }[];
  return results.map((t) => ({ ...t, optional: optional.has(t.name) }));
}

/**
 * The report as text.
 *
 * @example
 * console.log(formatDoctorReport(diagnose('dist/native')));
 */
export function formatDoctorReport(report: DoctorReport): string {
  const lines = [`dlbundle doctor: bundle ${JSON.stringify(report.bundle.name)} in ${report.bundle.dir} (variants: ${report.bundle.variants.join(', ')})`, ''];
  const m = report.machine;
  lines.push(`machine     ${m.target} (C library: ${m.libc ?? 'n/a'})${m.cpuFeatures.length === 0 ? '' : `, CPU features: ${m.cpuFeatures.join(', ')}`}`);
  lines.push('error' in report.variant ? `variant     none: ${report.variant.error.split('\n')[0]}` : `variant     ${report.variant.key}: ${report.variant.reason}`);
  const used = report.roots.findIndex((r) => r.usable);
  report.roots.forEach((r, i) => {
    const status = i === used ? 'would be used' : r.usable ? 'usable fallback, not needed' : 'skipped';
    lines.push(`${i === 0 ? 'cache root  ' : '            '}${r.root}: ${status} — ${r.reason}`);
  });
  if (used < 0) lines.push('            no cache root is usable: libraries would be loaded from memory (memfd), where plugins and $ORIGIN lookups do not work');
  if (report.libraries.length > 0) {
    lines.push('', 'dependencies on this machine:');
    lines.push(...formatDependencyTree(report.libraries).split('\n').map((l) => `  ${l}`));
    const versions = formatVersionFacts(report.libraries);
    if (versions !== '') lines.push('', 'glibc / libstdc++ versions on this machine:', ...versions.split('\n').map((l) => `  ${l}`));
  }
  if (report.trial.length > 0) {
    lines.push('', 'trial load (in a child process):');
    for (const t of report.trial) {
      // An optional library that does not load here is what --optional announced: "absent", not a failure.
      lines.push(`  ${t.ok ? 'ok  ' : t.optional ? 'absent' : 'FAIL'}  ${t.name}${t.optional ? ' (optional)' : ''}${t.ok ? '' : `: ${t.code ?? ''} ${t.reason ?? ''}`}`);
    }
  }
  const unavailable = report.trial.filter((t) => !t.ok && t.optional).length;
  lines.push('', report.loads ? `result: the bundle loads here${unavailable === 0 ? '' : ` (${unavailable} optional ${unavailable === 1 ? 'library is' : 'libraries are'} unavailable)`}` : 'result: the bundle does NOT load here');
  return lines.join('\n');
}

/**
 * Which mount a path is on, and with which options, from
 * `/proc/self/mountinfo`: a root on a `noexec` mount can hold files but
 * `dlopen` cannot map them executable, so it is skipped before extracting.
 */
import path = require('node:path');
import type { Io, Step } from './io';
import { runtimePlatform } from './platform';

/** The mount that holds a path. */
export interface MountFacts {
  readonly mountPoint: string;
  /** Per-mount options (`rw`, `noexec`, `nosuid`, …). */
  readonly options: readonly string[];
  readonly fsType: string;
}

/**
 * The mount holding the absolute, symlink-free path `file`, given the text of
 * /proc/self/mountinfo; null when the text has no mount for it.
 *
 * @example
 * mountOf('/tmp/dlbundle-0', fs.readFileSync('/proc/self/mountinfo', 'utf8'))?.options.includes('noexec')
 */
export function mountOf(file: string, mountinfo: string): MountFacts | null {
  let best: MountFacts | null = null;
  for (const line of mountinfo.split('\n')) {
    // id parent major:minor root mount-point options [optional…] - fstype source super-options
    const fields = line.split(' ');
    const mountPoint = unescape(fields[4] ?? '');
    if (mountPoint === '' || !contains(mountPoint, file)) continue;
    // Later lines are mounted over earlier ones: the last, longest match wins.
    if (best !== null && mountPoint.length < best.mountPoint.length) continue;
    const dash = fields.indexOf('-', 6);
    best = { mountPoint, options: (fields[5] ?? '').split(','), fsType: dash < 0 ? '' : fields[dash + 1] ?? '' };
  }
  return best;
}

/**
 * The mount holding `file` according to this process's mount table, or null
 * when there is no /proc to read it from (no mount flag can be known then,
 * and the callers' other checks still hold). Where /proc is not the
 * system's own (macOS, Windows: platform.ts), nothing is read at all —
 * nor does Windows have anything like noexec.
 *
 * @example
 * const mount = runSync(mountOfPath(syncIo, '/tmp/dlbundle-0')); mount?.options.includes('noexec')
 */
export function* mountOfPath(io: Io, file: string, platform: NodeJS.Platform = process.platform): Step<MountFacts | null> {
  if (!runtimePlatform(platform).procfs) return null;
  let mountinfo: string;
  try {
    mountinfo = (yield* io.readFile('/proc/self/mountinfo')).toString('utf8');
  } catch {
    return null;
  }
  return mountOf(file, mountinfo);
}

function contains(mountPoint: string, file: string): boolean {
  return mountPoint === '/' || file === mountPoint || file.startsWith(mountPoint + path.sep);
}

// mountinfo escapes space, tab, newline and backslash as \ooo octal.
function unescape(field: string): string {
  return field.replace(/\\([0-7]{3})/g, (_m, octal: string) => String.fromCharCode(parseInt(octal, 8)));
}

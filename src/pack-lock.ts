/**
 * One `dlbundle pack` at a time per output directory. Two packs into one
 * directory (a CI matrix packing two targets side by side) would each
 * rewrite dlbundle.json from what it read, so one variant would be lost, and
 * each would take the other's not-yet-switched generation directory for a
 * killed pack's leftover. The second pack is refused instead (`E_USAGE`).
 *
 * The lock is `<out>/.dlbundle-pack.lock`, holding its process's tag (see
 * leases.ts). It is made whole by linking a file already written, so no pack
 * ever reads a half-written lock. A lock whose process is gone (a killed
 * pack) is removed, if it is still the same file, and taken; so are the
 * drafts of killed packs.
 */
import fs = require('node:fs');
import path = require('node:path');
import { DlbundleError } from './errors';
import { ioError } from './file-io';
import { parseTag, processTag, STALE_STAGING_MS, tagIsAlive } from './leases';

/** The lock file's name in a bundle directory. */
export const PACK_LOCK = '.dlbundle-pack.lock';

/**
 * Takes the pack lock of `out` (which exists) and returns the function that
 * gives it back. `E_USAGE` naming the other pack when a live one holds it.
 *
 * @example
 * const unlock = lockOutput('dist/native'); try { … } finally { unlock(); }
 */
export function lockOutput(out: string): () => void {
  const lock = path.join(out, PACK_LOCK);
  const mine = `${lock}.${processTag()}`;
  removeDeadDrafts(out);
  try {
    fs.writeFileSync(mine, `${processTag()}\n`, { mode: 0o666 });
  } catch (e) {
    throw ioError(mine, e, 'write');
  }
  try {
    for (let attempt = 0; attempt < 3; attempt++) {
      try {
        fs.linkSync(mine, lock);
        const ours = fs.lstatSync(lock).ino;
        return () => removeIfSame(lock, ours);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw ioError(lock, e, 'create');
      }
      const holder = lockHolder(lock);
      if (holder === null) continue;
      const alive = holder.tag === null ? false : tagIsAlive(holder.tag.namespace, holder.tag.pid, holder.tag.start, holder.st.mtimeMs);
      // Another pid namespace cannot be seen from here: such a lock counts as held for a day, as staging does.
      if (alive === true || (alive === null && Date.now() - holder.st.mtimeMs < STALE_STAGING_MS)) throw busy(out, holder.tag?.pid ?? null);
      removeIfSame(lock, holder.st.ino);
    }
    throw busy(out, null);
  } finally {
    fs.rmSync(mine, { force: true });
  }
}

// A pack killed between writing its draft and linking it leaves the draft
// (`.dlbundle-pack.lock.<tag>`): removed once its process is gone.
function removeDeadDrafts(out: string): void {
  for (const name of fs.readdirSync(out)) {
    if (!name.startsWith(`${PACK_LOCK}.`)) continue;
    const tag = parseTag(name.slice(PACK_LOCK.length + 1));
    const st = fs.lstatSync(path.join(out, name), { throwIfNoEntry: false });
    if (tag === null || st === undefined) continue;
    const alive = tagIsAlive(tag.namespace, tag.pid, tag.start, st.mtimeMs);
    if (alive === false || (alive === null && Date.now() - st.mtimeMs >= STALE_STAGING_MS)) fs.rmSync(path.join(out, name), { force: true });
  }
}

function lockHolder(lock: string): { tag: ReturnType<typeof parseTag>; st: fs.Stats } | null {
  try {
    const st = fs.lstatSync(lock);
    return { tag: parseTag(fs.readFileSync(lock, 'utf8').trim()), st };
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw ioError(lock, e);
  }
}

// By inode: a lock another pack has just taken in its place is not ours to remove.
function removeIfSame(lock: string, ino: number): void {
  if (fs.lstatSync(lock, { throwIfNoEntry: false })?.ino === ino) fs.rmSync(lock, { force: true });
}

function busy(out: string, pid: number | null): DlbundleError {
  return new DlbundleError(
    'E_USAGE',
    `Another \`dlbundle pack\`${pid === null ? '' : ` (pid ${pid})`} is writing into ${JSON.stringify(out)}.`,
    'Run the packs into one directory one after another (each adds its own target), or give each its own --out.',
    { dir: out },
  );
}

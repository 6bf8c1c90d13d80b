/**
 * Saves V8's code cache of the run time (code-cache-file.ts says what it is
 * and how it is read) after this process's first start, when the run time
 * was compiled without a usable one.
 */
import path = require('node:path');
import { logger } from './log';
import { CODE_CACHE_DIR, codeCacheHeader, PENDING_CODE_CACHE, type PendingCodeCache } from './code-cache-file';
import { defaultRoot } from './default-root';
import { runSync, syncIo } from './io';
import { stagingPrefix } from './leases';
import { checkRoot, unsafeReason } from './roots';

const debug = logger('dlbundle:code-cache');

/**
 * Saves the code cache once the current task is done: by then the functions
 * of the first start are compiled, and the cache holds them too. Called after
 * every placement; does something only the first time, and only when the run
 * time asked for it.
 *
 * @example
 * saveCodeCacheLater();
 */
export function saveCodeCacheLater(): void {
  const slot = globalThis as Record<symbol, unknown>;
  const pending = slot[PENDING_CODE_CACHE] as PendingCodeCache | undefined;
  if (pending === undefined) return;
  delete slot[PENDING_CODE_CACHE];
  setImmediate(() => {
    try {
      save(pending);
    } catch (e) {
      // Without it the next start compiles as this one did: slower, not wrong.
      debug('code cache not saved: %s', (e as Error).message);
    }
  });
}

function save(pending: PendingCodeCache): void {
  const root = defaultRoot();
  // Only into a root nobody else can write to or replace: what is read back is run.
  runSync(checkRoot(syncIo, root, { create: true }));
  const dir = path.join(root, CODE_CACHE_DIR);
  const st = runSync(syncIo.lstat(dir));
  if (st === null) runSync(syncIo.mkdir(dir, 0o700));
  else if (unsafeReason(st) !== null) throw new Error(`${dir} is not a private directory of this user: it ${unsafeReason(st) ?? ''}`);
  const data = pending.produce();
  const staging = runSync(syncIo.mkdtemp(root, stagingPrefix('code-cache')));
  try {
    const temp = path.join(staging, pending.key);
    const fd = runSync(syncIo.create(temp, 0o600));
    try {
      runSync(syncIo.write(fd, Buffer.from(codeCacheHeader(pending.key, data.length), 'latin1')));
      runSync(syncIo.write(fd, data));
      runSync(syncIo.fsync(fd));
    } finally {
      runSync(syncIo.close(fd));
    }
    runSync(syncIo.rename(temp, path.join(dir, pending.key)));
  } finally {
    runSync(syncIo.rm(staging));
  }
  debug('saved %d bytes of code cache as %s', data.length, path.join(dir, pending.key));
  removeStale(dir, pending.key);
}

/**
 * Caches of other builds and V8 versions stay for the processes that still
 * use them; one not written for {@link STALE_MS} is removed when another is
 * saved (a cache in use is rewritten only when V8 refuses it, so an old one
 * still in use costs one compile to come back).
 */
function removeStale(dir: string, keep: string): void {
  const now = Date.now();
  for (const name of runSync(syncIo.readdir(dir))) {
    if (name === keep) continue;
    const st = runSync(syncIo.lstat(path.join(dir, name)));
    if (st !== null && now - st.mtimeMs > STALE_MS) {
      runSync(syncIo.rm(path.join(dir, name)));
      debug('removed the stale code cache %s', name);
    }
  }
}

const STALE_MS = 30 * 24 * 60 * 60 * 1000;

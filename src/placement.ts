/**
 * Placement: where a bundle's files are loaded from — a cache directory
 * (`disk`), the source's own directory (`in-place`), or memory files
 * (`memory`, Linux memfd) — decided on first use, and decided again when
 * `dlopen` cannot map from the chosen root (noexec that the mount table did
 * not show). Which placements a platform has is decided in one place,
 * {@link placementsFor}; the bundle (bundle.ts) only asks where a file is.
 */
import path = require('node:path');
import { logger } from './log';
import { place, type CacheRequest, type CacheResult, type NoRoot, type VerifyMode } from './cache';
import { isDlbundleError } from './errors';
import { asyncIo, runAsync, runSync, syncIo } from './io';
import { dropLease, sweepStaging } from './leases';
import { sharedMemoryFile, type LibraryLocation } from './loader';
import { entryPath, type ManifestFile, type ManifestVariant } from './manifest';
import { createMemoryFile, fillMemoryFile, memoryFilePath, memoryModeSupported, noMemoryMode } from './memory';
import { candidateRoots, type RootFallback } from './roots';
import type { Source } from './sources/source';

const debug = logger('dlbundle:plan');

/** What `openBundle`'s `mode` option asks for. */
export type PlacementMode = 'auto' | 'disk' | 'memory';

/** A kind of placement: a cache directory, the source's own directory, memory files. */
export type PlacementKind = 'disk' | 'in-place' | 'memory';

/** Where the variant's files are loaded from. */
export type Placement =
  /** A bundle directory: in the cache (`disk`), or the source's own directory (`in-place`). */
  | { readonly kind: 'disk' | 'in-place'; readonly result: CacheResult }
  /** Memory files (memfd), created as libraries are loaded; no directory at all. */
  | { readonly kind: 'memory'; readonly fallbacks: readonly RootFallback[] };

/**
 * The placements tried for `mode`, in order: the source's own directory when
 * it loads in place, else the cache; then memory files in `'auto'` mode where
 * the platform has them (Linux). `'memory'` on a platform without memory
 * files (macOS, Windows) is `E_USAGE`, before any file is written.
 *
 * @example
 * placementsFor('auto', false, 'linux')  // ['disk', 'memory']
 * placementsFor('auto', false, 'darwin') // ['disk']
 * placementsFor('memory', false, 'darwin') // throws E_USAGE: mode: 'memory' cannot be used on macOS
 */
export function placementsFor(mode: PlacementMode, inPlace: boolean, platform: NodeJS.Platform = process.platform): readonly PlacementKind[] {
  const memory = memoryModeSupported(platform);
  if (mode === 'memory') {
    // Refused before anything is written or loaded (Windows, macOS).
    if (!memory) throw noMemoryMode(platform);
    return ['memory'];
  }
  const directory: PlacementKind = inPlace ? 'in-place' : 'disk';
  return mode === 'auto' && memory ? [directory, 'memory'] : [directory];
}

/** What {@link Placer} places. */
export interface PlacementTarget {
  readonly bundleName: string;
  readonly variantKey: string;
  readonly variant: ManifestVariant;
}

/** The options of a bundle that decide its placement. */
export interface PlacerOptions {
  readonly source: Source;
  readonly mode?: PlacementMode | undefined;
  readonly cacheDir?: string | undefined;
  readonly verify?: VerifyMode | undefined;
  /** Whose rules apply (platform.ts); this process's platform by default. */
  readonly platform?: NodeJS.Platform | undefined;
}

/** Where a bundle's files were placed, for `explain()`. */
export interface PlacementReport {
  readonly mode: PlacementKind | null;
  readonly root: string | null;
  readonly dir: string | null;
  readonly reused: boolean | null;
  readonly fallbacks: readonly RootFallback[];
  readonly unprotected?: string;
}

// A warm start does not extract, so it does not sweep on its way; staging
// directories left by crashed processes are swept once the caller's
// synchronous work is done, off the start-up path (a microtask: unlike
// setImmediate, which costs ≈ 0.3 ms the first time in a process, it needs
// no turn of the event loop). Best effort: a failure is only logged, since
// nothing depends on it.
function sweepLater(root: string): void {
  queueMicrotask(() => {
    try {
      runSync(sweepStaging(syncIo, root));
    } catch (e) {
      debug('sweeping %s failed: %s', root, (e as Error).message);
    }
  });
}

/**
 * One bundle's placement: decided on first need (synchronously on a first
 * touch, asynchronously in `ready()`), kept, and given up only for a root
 * that turns out noexec.
 *
 * @example
 * const placer = new Placer({ source, mode: 'auto' });
 * placer.placeSync(target); placer.locate(file, target.variantKey).path
 */
export class Placer {
  private placement: Placement | undefined;
  /** Roots given up after dlopen could not map from them (noexec that the mount table did not show). */
  private readonly abandoned: RootFallback[] = [];
  private kindsCache: readonly PlacementKind[] | undefined;

  constructor(private readonly options: PlacerOptions) {}

  /** The placement, once decided. */
  get current(): Placement | undefined {
    return this.placement;
  }

  /** The bundle directory (cache or in place) once placed there, else null. */
  get dir(): string | null {
    return this.placement !== undefined && this.placement.kind !== 'memory' ? this.placement.result.dir : null;
  }

  /** Decides where the files are, materializing them synchronously on first use. */
  placeSync(target: PlacementTarget): Placement {
    if (this.placement === undefined) {
      const kinds = this.kinds();
      this.placement = kinds[0] === 'memory' ? { kind: 'memory', fallbacks: [] } : this.settle(runSync(place(syncIo, this.cacheRequest(target))));
    }
    return this.placement;
  }

  /** {@link placeSync} without blocking the event loop on file I/O; the first answer wins. */
  async placeAsync(target: PlacementTarget): Promise<Placement> {
    if (this.placement !== undefined) return this.placement;
    const kinds = this.kinds();
    const placed = kinds[0] === 'memory' ? ({ kind: 'memory', fallbacks: [] } as const) : this.settle(await runAsync(place(asyncIo, this.cacheRequest(target))));
    this.placement ??= placed;
    return this.placement;
  }

  /**
   * After a load failed with `error`: when dlopen could not map from a cache
   * root (E_NOEXEC: a remount, a security policy), that root is given up,
   * this process's lease in it dropped, and true returned — the next
   * {@link placeSync} places the files anew in the next root, or in memory.
   * False for anything else, which the caller throws.
   */
  giveUpAfter(error: unknown): boolean {
    const p = this.placement;
    if (!isDlbundleError(error, 'E_NOEXEC') || p?.kind !== 'disk') return false;
    this.abandoned.push({ root: p.result.root, code: 'E_NOEXEC', reason: error.message.split('\n')[0] ?? error.message });
    // Not used after all: this instance's share of the lease goes (best effort: the root may be read-only too).
    try {
      runSync(dropLease(syncIo, p.result.root, path.basename(p.result.dir)));
    } catch (err) {
      debug('could not drop the lease in %s: %s', p.result.root, (err as Error).message);
    }
    this.placement = undefined;
    return true;
  }

  /**
   * Where `file` is opened from: in the bundle directory, or its memory file,
   * written on first need and shared by every bundle of the process. Called
   * only when the library is not loaded yet.
   */
  locate(file: ManifestFile, target: PlacementTarget): LibraryLocation {
    const p = this.placeSync(target);
    if (p.kind !== 'memory') return { path: entryPath(p.result.dir, file.name), from: p.kind };
    const fd = sharedMemoryFile(file, () => fillMemoryFile(createMemoryFile(file.name), { source: this.options.source, variantKey: target.variantKey }, file));
    return { path: memoryFilePath(fd), from: 'memory' };
  }

  /** Where the files were placed, and every root passed over on the way. */
  report(): PlacementReport {
    const p = this.placement;
    const disk = p !== undefined && p.kind !== 'memory' ? p.result : undefined;
    return {
      mode: p?.kind ?? null,
      root: disk?.root ?? null,
      dir: disk?.dir ?? null,
      reused: p === undefined ? null : (disk?.reused ?? false),
      fallbacks: [...this.abandoned, ...(disk?.fallbacks ?? []), ...(p?.kind === 'memory' ? p.fallbacks : [])],
      ...(disk?.unprotected === undefined ? {} : { unprotected: disk.unprotected }),
    };
  }

  /** The placements this bundle may use, decided once (platform.ts says which exist). */
  private kinds(): readonly PlacementKind[] {
    this.kindsCache ??= placementsFor(this.options.mode ?? 'auto', this.options.source.inPlaceDir !== undefined, this.options.platform);
    return this.kindsCache;
  }

  /** A placement from the cache's answer: its directory, or the next placement (memory files) when no root is usable. */
  private settle(placed: CacheResult | NoRoot): Placement {
    const kinds = this.kinds();
    if ('dir' in placed) {
      if (placed.reused && kinds[0] === 'disk') sweepLater(placed.root);
      return { kind: kinds[0] === 'in-place' ? 'in-place' : 'disk', result: placed };
    }
    if (kinds.includes('memory')) {
      debug('no cache root is usable; loading from memory');
      return { kind: 'memory', fallbacks: placed.fallbacks };
    }
    throw placed.error;
  }

  private cacheRequest(target: PlacementTarget): CacheRequest {
    const abandoned = new Set(this.abandoned.map((f) => f.root));
    const candidates = candidateRoots(this.options.cacheDir, this.options.platform);
    return {
      bundleName: target.bundleName,
      variantKey: target.variantKey,
      variant: target.variant,
      source: this.options.source,
      roots: candidates.roots.filter((root) => !abandoned.has(root)),
      unavailableRoots: candidates.unavailable,
      verify: this.options.verify ?? 'size',
      durability: 'background',
      ...(this.options.platform === undefined ? {} : { platform: this.options.platform }),
    };
  }
}

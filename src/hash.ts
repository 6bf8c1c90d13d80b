/**
 * xxh64 content hashes, computed by xxhash-wasm's WebAssembly module.
 *
 * xxhash-wasm only offers an asynchronous initialiser, but dlbundle's
 * synchronous first-touch path (`core.add(2, 3)` before any `await`) must hash
 * while it extracts. So the package's own wasm module is compiled
 * synchronously here and driven through its exported streaming functions
 * (`init64`, `update64`, `digest64`). The module is pinned to one version in
 * package.json, and a known test vector is checked on first use, so a change of
 * that ABI fails loudly instead of producing wrong hashes.
 *
 * Where WebAssembly cannot be instantiated — V8 reserves about 10 GiB of
 * address space for a wasm memory, which `ulimit -v` below that refuses with
 * a RangeError; `node --jitless` has no WebAssembly at all — the same hash
 * is computed in plain JavaScript (src/xxh64.ts), several times slower.
 */
import { logger } from './log';
import { DlbundleError } from './errors';
import { createXxh64Js, type Xxh64Stream } from './xxh64';

export type { Xxh64Stream } from './xxh64';

const debug = logger('dlbundle:hash');

// The few WebAssembly globals used here; @types/node for Node 20 does not declare them.
interface WasmGlobal {
  Module: new (bytes: Uint8Array) => object;
  Instance: new (module: object) => { readonly exports: unknown };
  instantiate: unknown;
}
const wasm = (): WasmGlobal => (globalThis as unknown as { WebAssembly: WasmGlobal }).WebAssembly;

interface XxhExports {
  readonly mem: { readonly buffer: ArrayBuffer; grow(pages: number): number };
  init64(state: number, seed: bigint): void;
  update64(state: number, input: number, length: number): void;
  digest64(state: number): bigint;
}

// The wasm code keeps the 88-byte xxh64 state at address 0 and reads input
// right after it; each stream keeps its own copy of the state and swaps it in
// around every call, so several streams can be open at once on one thread.
const STATE_BYTES = 88;
const EMPTY_XXH64 = 'ef46db3751d8e999';
const MASK64 = (1n << 64n) - 1n;

// Input is copied into the wasm memory at most this much at a time, so the
// memory never grows after instantiation (a grow can fail like instantiation).
const CHUNK_BYTES = 1 << 16;

/** Grows the wasm memory (in 64 KiB pages) to hold at least `bytes`; a RangeError where it cannot. */
function growMemory(xxh: XxhExports, bytes: number): void {
  const have = xxh.mem.buffer.byteLength;
  if (have < bytes) xxh.mem.grow(Math.ceil((bytes - have) / 65536));
}

/** The wasm module's exports; null once it proved impossible to instantiate here. */
let exportsCache: XxhExports | null | undefined;

function wasmExports(): XxhExports | null {
  if (exportsCache !== undefined) return exportsCache;
  let xxh: XxhExports;
  try {
    const api = wasm();
    const instance = new api.Instance(new api.Module(wasmModuleBytes()));
    xxh = instance.exports as unknown as XxhExports;
    growMemory(xxh, STATE_BYTES + CHUNK_BYTES);
  } catch (e) {
    // A RangeError (address space refused by `ulimit -v`) or a TypeError (no
    // WebAssembly global): a property of this process, not of the input.
    if (e instanceof DlbundleError) throw e;
    debug('WebAssembly is not usable here (%s); hashing in JavaScript', (e as Error).message);
    exportsCache = null;
    return null;
  }
  exportsCache = xxh;
  const check = wasmStream(xxh).digest();
  if (check !== EMPTY_XXH64) {
    exportsCache = undefined;
    throw new DlbundleError(
      'E_INTEGRITY',
      `xxhash-wasm produced ${JSON.stringify(check)} for empty input instead of ${JSON.stringify(EMPTY_XXH64)}.`,
      'Install the xxhash-wasm version that package.json names; this one changed its WebAssembly interface.',
    );
  }
  return exportsCache;
}

// Set by scripts/build-runtime.js to xxhash-wasm's module (base64), taken
// from the installed package with xxhashWasmBytes at build time: loading and
// initialising the package costs ≈ 12 ms of a cold start, compiling its
// 3 KB module ≈ 1 ms. Absent in tsc's output.
declare const DLBUNDLE_XXHASH_WASM: string | undefined;

function wasmModuleBytes(): Uint8Array {
  return typeof DLBUNDLE_XXHASH_WASM === 'string' ? Buffer.from(DLBUNDLE_XXHASH_WASM, 'base64') : xxhashWasmBytes();
}

/**
 * xxhash-wasm's WebAssembly module, as the installed package ships it.
 * xxhash-wasm embeds its module as bytes and passes them to
 * WebAssembly.instantiate synchronously, before its first `await`. Catching
 * that one call yields the exact module the package ships, without reading
 * files that a single-file bundle would not carry.
 *
 * @example
 * xxhashWasmBytes().length // 3105
 */
export function xxhashWasmBytes(): Uint8Array {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const init = require('xxhash-wasm') as () => Promise<unknown>;
  const api = wasm();
  const original = api.instantiate;
  let bytes: Uint8Array | undefined;
  api.instantiate = (source: unknown): Promise<never> => {
    if (source instanceof Uint8Array) bytes = source;
    // Never settles: the package's own asynchronous initialisation is not used.
    return new Promise<never>(() => undefined);
  };
  try {
    void init();
  } finally {
    api.instantiate = original;
  }
  if (bytes === undefined) {
    throw new DlbundleError(
      'E_INTEGRITY',
      'xxhash-wasm did not hand over its WebAssembly module.',
      'Install the xxhash-wasm version that package.json names.',
    );
  }
  return bytes;
}

/**
 * Which implementation {@link createXxh64} uses in this process: `'wasm'`, or
 * `'js'` where WebAssembly cannot be instantiated. Decided on the first call.
 *
 * @example
 * xxh64Implementation(); // 'wasm'
 */
export function xxh64Implementation(): 'wasm' | 'js' {
  return wasmExports() === null ? 'js' : 'wasm';
}

/**
 * Starts a streaming xxh64 hash (seed 0). Synchronous: usable before any `await`.
 *
 * @example
 * const h = createXxh64();
 * h.update(chunk1).update(chunk2);
 * h.digest(); // '0c6b1d7a9e0f2b3d'
 */
export function createXxh64(): Xxh64Stream {
  const xxh = exportsCache === undefined ? wasmExports() : exportsCache;
  return xxh === null ? createXxh64Js() : wasmStream(xxh);
}

function wasmStream(xxh: XxhExports): Xxh64Stream {
  const state = new Uint8Array(STATE_BYTES);
  const heap = (): Uint8Array => new Uint8Array(xxh.mem.buffer);
  heap().fill(0, 0, STATE_BYTES);
  xxh.init64(0, 0n);
  state.set(heap().subarray(0, STATE_BYTES));
  const stream: Xxh64Stream = {
    update(bytes) {
      const mem = heap();
      mem.set(state, 0);
      if (bytes.buffer === mem.buffer && bytes.byteOffset === STATE_BYTES) {
        // Already where the wasm code reads input: a buffer from {@link hashScratch}.
        xxh.update64(0, STATE_BYTES, bytes.byteLength);
        state.set(mem.subarray(0, STATE_BYTES));
        return stream;
      }
      for (let p = 0; p < bytes.byteLength; p += CHUNK_BYTES) {
        const chunk = bytes.subarray(p, p + CHUNK_BYTES);
        mem.set(chunk, STATE_BYTES);
        xxh.update64(0, STATE_BYTES, chunk.byteLength);
      }
      state.set(mem.subarray(0, STATE_BYTES));
      return stream;
    },
    digest() {
      heap().set(state, 0);
      return (xxh.digest64(0) & MASK64).toString(16).padStart(16, '0');
    },
  };
  return stream;
}

/**
 * A buffer of `bytes` bytes inside the wasm memory, where the hash reads its
 * input: a chunk read into it (from its start) is hashed where it lies,
 * without the copy every other input takes (≈ 5% of extracting 64 MiB). Only
 * for synchronous use — read, hash, write, with nothing in between — since
 * every other hash's input passes through the same bytes, and only until the
 * next call (which may grow the memory and so detach this buffer). Null
 * where hashing is in JavaScript or the memory cannot grow.
 *
 * @example
 * const scratch = hashScratch(1 << 20) ?? Buffer.allocUnsafe(1 << 20);
 * const n = fs.readSync(fd, scratch); h.update(scratch.subarray(0, n)); fs.writeSync(out, scratch, 0, n);
 */
export function hashScratch(bytes: number): Buffer | null {
  const xxh = exportsCache === undefined ? wasmExports() : exportsCache;
  if (xxh === null) return null;
  const needed = STATE_BYTES + bytes;
  try {
    growMemory(xxh, needed);
  } catch (e) {
    debug('the wasm memory cannot grow to %d bytes (%s); hashing from a copy', needed, (e as Error).message);
    return null;
  }
  return Buffer.from(xxh.mem.buffer, STATE_BYTES, bytes);
}

/**
 * The xxh64 of a whole byte array or string (UTF-8), as 16 hex digits.
 *
 * @example
 * xxh64('') // 'ef46db3751d8e999'
 */
export function xxh64(input: Uint8Array | string): string {
  const bytes = typeof input === 'string' ? Buffer.from(input, 'utf8') : input;
  return createXxh64().update(bytes).digest();
}

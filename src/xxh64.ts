/**
 * xxh64 in plain JavaScript, written from the xxHash specification
 * (doc/xxhash_spec.md, "XXH64 algorithm description"). It is the fallback of
 * src/hash.ts for processes that cannot instantiate WebAssembly: V8 reserves
 * about 10 GiB of address space per wasm memory, so under `ulimit -v` below
 * that (common on clusters) `new WebAssembly.Instance` throws a RangeError.
 *
 * JavaScript has no 64-bit integer type that is fast (BigInt allocates), so
 * every 64-bit value is a pair of unsigned 32-bit halves (hi, lo), and the
 * 64 × 64 → 64-bit products are built from 16-bit limbs, whose partial
 * products are exact in a double. The hot loop (32-byte stripes) keeps the
 * four lanes in local variables.
 */

/** A streaming xxh64 hash. */
export interface Xxh64Stream {
  /** Adds bytes to the hash; returns the same stream. */
  update(bytes: Uint8Array): Xxh64Stream;
  /** The hash of everything added so far, as 16 lowercase hex digits. */
  digest(): string;
}

// The five 64-bit primes of the specification, as (hi, lo) halves.
const P1H = 0x9e3779b1;
const P1L = 0x85ebca87;
const P2H = 0xc2b2ae3d;
const P2L = 0x27d4eb4f;
const P3H = 0x165667b1;
const P3L = 0x9e3779f9;
const P4H = 0x85ebca77;
const P4L = 0xc2b2ae63;
const P5H = 0x27d4eb2f;
const P5L = 0x165667c5;

const TWO_32 = 0x100000000;
// The low halves of P1 and P2 in 16-bit limbs, for the inlined products of the hot loop.
const P1L0 = P1L & 0xffff;
const P1L1 = P1L >>> 16;
const P2L0 = P2L & 0xffff;
const P2L1 = P2L >>> 16;

// Results of the 64-bit helpers: returning a pair would allocate.
let rh = 0;
let rl = 0;

/** (ah, al) × (bh, bl) mod 2^64 → (rh, rl). */
function mul(ah: number, al: number, bh: number, bl: number): void {
  const a0 = al & 0xffff;
  const a1 = al >>> 16;
  const b0 = bl & 0xffff;
  const b1 = bl >>> 16;
  const p00 = a0 * b0;
  const p01 = a0 * b1;
  const p10 = a1 * b0;
  const mid = (p00 >>> 16) + (p01 & 0xffff) + (p10 & 0xffff);
  rl = ((mid << 16) | (p00 & 0xffff)) >>> 0;
  // The high half of al × bl, plus the cross products that land in the high word.
  rh = (a1 * b1 + (p01 >>> 16) + (p10 >>> 16) + (mid >>> 16) + Math.imul(ah, bl) + Math.imul(al, bh)) >>> 0;
}

/** The specification's round: acc += input × P2; acc = rotl(acc, 31); acc × P1 → (rh, rl). */
function round(acch: number, accl: number, inh: number, inl: number): void {
  mul(inh, inl, P2H, P2L);
  const lo = accl + rl;
  const sl = lo >>> 0;
  const sh = (acch + rh + (lo >= TWO_32 ? 1 : 0)) >>> 0;
  // rotl(acc, 31), on the halves.
  const th = ((sh << 31) | (sl >>> 1)) >>> 0;
  const tl = ((sl << 31) | (sh >>> 1)) >>> 0;
  mul(th, tl, P1H, P1L);
}

/** merge: acc ^= round(0, val); acc = acc × P1 + P4 → (rh, rl). */
function mergeRound(acch: number, accl: number, vh: number, vl: number): void {
  round(0, 0, vh, vl);
  mul((acch ^ rh) >>> 0, (accl ^ rl) >>> 0, P1H, P1L);
  addTo(rh, rl, P4H, P4L);
}

/** (ah, al) + (bh, bl) mod 2^64 → (rh, rl). */
function addTo(ah: number, al: number, bh: number, bl: number): void {
  const lo = al + bl;
  rl = lo >>> 0;
  rh = (ah + bh + (lo >= TWO_32 ? 1 : 0)) >>> 0;
}

/** rotl(h:l, r) for 0 < r < 32 → (rh, rl). */
function rotl(h: number, l: number, r: number): void {
  rh = ((h << r) | (l >>> (32 - r))) >>> 0;
  rl = ((l << r) | (h >>> (32 - r))) >>> 0;
}

function hex8(n: number): string {
  return n.toString(16).padStart(8, '0');
}

/**
 * A streaming xxh64 (seed 0) in plain JavaScript; the same results as the
 * WebAssembly one, several times slower.
 *
 * @example
 * createXxh64Js().update(Buffer.from('abc')).digest(); // '44bc2cf5ad770999'
 */
export function createXxh64Js(): Xxh64Stream {
  // Lanes v1..v4 as halves. Seed 0: v1 = P1 + P2, v2 = P2, v3 = 0, v4 = -P1.
  addTo(P1H, P1L, P2H, P2L);
  let v1h = rh;
  let v1l = rl;
  let v2h = P2H;
  let v2l = P2L;
  let v3h = 0;
  let v3l = 0;
  addTo(~P1H >>> 0, ~P1L >>> 0, 0, 1);
  let v4h = rh;
  let v4l = rl;
  // Bytes of an incomplete stripe, kept until the next update completes it.
  const pending = new Uint8Array(32);
  const pendingView = new DataView(pending.buffer);
  let pendingLength = 0;
  let total = 0;
  const lanes = new Uint32Array(8);

  /** Consumes whole 32-byte stripes of `view` from `start`; returns where it stopped. */
  function stripes(view: DataView, start: number, end: number): number {
    const count = Math.floor((end - start) / 32);
    if (count === 0) return start;
    lanes[0] = v1h;
    lanes[1] = v1l;
    lanes[2] = v2h;
    lanes[3] = v2l;
    lanes[4] = v3h;
    lanes[5] = v3l;
    lanes[6] = v4h;
    lanes[7] = v4l;
    // The four lanes are independent (lane i reads bytes 8i..8i+7 of every
    // stripe), so each runs through all stripes on its own, in local variables.
    for (let lane = 0; lane < 4; lane++) {
      let ah = lanes[2 * lane] as number;
      let al = lanes[2 * lane + 1] as number;
      const stop = start + 32 * count;
      for (let p = start + 8 * lane; p < stop; p += 32) {
        const il = view.getUint32(p, true);
        const ih = view.getUint32(p + 4, true);
        // input × P2
        let a0 = il & 0xffff;
        let a1 = il >>> 16;
        let p00 = a0 * P2L0;
        let p01 = a0 * P2L1;
        let p10 = a1 * P2L0;
        let mid = (p00 >>> 16) + (p01 & 0xffff) + (p10 & 0xffff);
        const ml = ((mid << 16) | (p00 & 0xffff)) >>> 0;
        const mh = a1 * P2L1 + (p01 >>> 16) + (p10 >>> 16) + (mid >>> 16) + Math.imul(ih, P2L) + Math.imul(il, P2H);
        // acc + that
        const sum = al + ml;
        const sl = sum >>> 0;
        const sh = (ah + mh + (sum >= TWO_32 ? 1 : 0)) >>> 0;
        // rotl 31
        const th = ((sh << 31) | (sl >>> 1)) >>> 0;
        const tl = ((sl << 31) | (sh >>> 1)) >>> 0;
        // × P1
        a0 = tl & 0xffff;
        a1 = tl >>> 16;
        p00 = a0 * P1L0;
        p01 = a0 * P1L1;
        p10 = a1 * P1L0;
        mid = (p00 >>> 16) + (p01 & 0xffff) + (p10 & 0xffff);
        al = ((mid << 16) | (p00 & 0xffff)) >>> 0;
        ah = (a1 * P1L1 + (p01 >>> 16) + (p10 >>> 16) + (mid >>> 16) + Math.imul(th, P1L) + Math.imul(tl, P1H)) >>> 0;
      }
      lanes[2 * lane] = ah;
      lanes[2 * lane + 1] = al;
    }
    v1h = lanes[0] as number;
    v1l = lanes[1] as number;
    v2h = lanes[2] as number;
    v2l = lanes[3] as number;
    v3h = lanes[4] as number;
    v3l = lanes[5] as number;
    v4h = lanes[6] as number;
    v4l = lanes[7] as number;
    return start + 32 * count;
  }

  const stream: Xxh64Stream = {
    update(bytes) {
      total += bytes.byteLength;
      let p = 0;
      if (pendingLength > 0) {
        const take = Math.min(32 - pendingLength, bytes.byteLength);
        pending.set(bytes.subarray(0, take), pendingLength);
        pendingLength += take;
        p = take;
        if (pendingLength < 32) return stream;
        stripes(pendingView, 0, 32);
        pendingLength = 0;
      }
      const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
      p = stripes(view, p, bytes.byteLength);
      pending.set(bytes.subarray(p), 0);
      pendingLength = bytes.byteLength - p;
      return stream;
    },
    digest() {
      let hh: number;
      let hl: number;
      if (total >= 32) {
        rotl(v1h, v1l, 1);
        let sh = rh;
        let sl = rl;
        for (const [h, l, r] of [[v2h, v2l, 7], [v3h, v3l, 12], [v4h, v4l, 18]] as const) {
          rotl(h, l, r);
          addTo(sh, sl, rh, rl);
          sh = rh;
          sl = rl;
        }
        for (const [h, l] of [[v1h, v1l], [v2h, v2l], [v3h, v3l], [v4h, v4l]] as const) {
          mergeRound(sh, sl, h, l);
          sh = rh;
          sl = rl;
        }
        hh = sh;
        hl = sl;
      } else {
        hh = P5H;
        hl = P5L;
      }
      addTo(hh, hl, Math.floor(total / TWO_32) >>> 0, total >>> 0);
      hh = rh;
      hl = rl;
      // The tail: what is left of the last stripe, 8 bytes, then 4, then 1 at a time.
      let p = 0;
      for (; p + 8 <= pendingLength; p += 8) {
        round(0, 0, pendingView.getUint32(p + 4, true), pendingView.getUint32(p, true));
        rotl((hh ^ rh) >>> 0, (hl ^ rl) >>> 0, 27);
        mul(rh, rl, P1H, P1L);
        addTo(rh, rl, P4H, P4L);
        hh = rh;
        hl = rl;
      }
      if (p + 4 <= pendingLength) {
        mul(0, pendingView.getUint32(p, true), P1H, P1L);
        rotl((hh ^ rh) >>> 0, (hl ^ rl) >>> 0, 23);
        mul(rh, rl, P2H, P2L);
        addTo(rh, rl, P3H, P3L);
        hh = rh;
        hl = rl;
        p += 4;
      }
      for (; p < pendingLength; p++) {
        mul(0, pending[p] as number, P5H, P5L);
        rotl((hh ^ rh) >>> 0, (hl ^ rl) >>> 0, 11);
        mul(rh, rl, P1H, P1L);
        hh = rh;
        hl = rl;
      }
      // Avalanche: h ^= h >> 33; h *= P2; h ^= h >> 29; h *= P3; h ^= h >> 32.
      hl = (hl ^ (hh >>> 1)) >>> 0;
      mul(hh, hl, P2H, P2L);
      hh = rh;
      hl = (rl ^ ((rh << 3) | (rl >>> 29))) >>> 0;
      hh = (hh ^ (hh >>> 29)) >>> 0;
      mul(hh, hl, P3H, P3L);
      return hex8(rh) + hex8((rl ^ rh) >>> 0);
    },
  };
  return stream;
}

/**
 * Bounded fuzzing, with a fixed seed, of the readers that take bytes dlbundle
 * did not write itself: the ELF reader (src/formats/elf.ts), the PE and Mach-O
 * readers (src/formats/pe.ts, macho.ts) and the manifest reader
 * (src/manifest.ts).
 *
 * Sizes (fixed, so every run tries the same inputs). On an idle 2-core
 * machine the file takes about 25 s (35-50 s on a busy one): the ELF fuzzer
 * (~17 s) and the manifest fuzzer, split in two halves (~17 s each), run as
 * three child processes at once.
 *   - ELF reader: ELF_INPUTS = 150,000 inputs mutated from real shared objects —
 *     the demo libraries of build/Release (not the 64 MiB one), libz.so.1,
 *     libc.so.6 and libstdc++.so.6 of the system, whole — plus four hand-built
 *     ELF32 / ELF64, little / big-endian files (test/elf-builder.ts), so the
 *     32-bit and big-endian paths are mutated too. Mutations: byte flips,
 *     u8/u16/u32/u64 overwrites of header, program-header and dynamic-entry
 *     fields (e_phoff, e_phnum, p_offset, p_filesz, DT_STRTAB, DT_STRSZ,
 *     DT_NEEDED, … with boundary values), truncation, inserted and deleted
 *     bytes, two files spliced, damaged string tables; read as a Buffer, through
 *     a positioned-read source like readElfFile's, with readInterpreter, and
 *     with readSymbolVersions and versionHashes (the version tables found through DT_VERNEED /
 *     DT_VERDEF are damaged as regions and their first words as fields; the
 *     answer through a Buffer and through positioned reads must agree).
 *     Each call must return an ElfInfo or throw a DlbundleError E_NOT_ELF /
 *     E_BAD_ELF (naming the file and the byte offset, with a next step), give
 *     the same answer through a Buffer and through positioned reads, and take
 *     at most 200 ms (the best of up to three runs: a GC pause or a busy
 *     machine is not a slow input).
 *   - manifest reader: MANIFEST_INPUTS = 100,000 manifests mutated from ones
 *     `pack` wrote for the demo libraries: fields deleted or replaced by values
 *     of other types, huge / negative / fractional sizes, names with "/", "..",
 *     NUL or 300+ characters, duplicate names and sonames, shuffled orders,
 *     bogus digests, extra variants, cycles, deep nesting, byte flips and
 *     truncation of the text, and (one input in ten) non-JSON values handed
 *     over as an object, as fromBuffers(manifest) does. Half are repaired
 *     afterwards (order, external, digest recomputed) so that validation gets
 *     past the first check. Only E_BAD_MANIFEST, E_CYCLE and E_DUPLICATE_SONAME
 *     may be thrown, and an accepted manifest must hold only plain base names,
 *     an order that is a permutation loading dependencies first, and sizes that
 *     are safe non-negative integers.
 *   - PE and Mach-O readers: PE_INPUTS = MACHO_INPUTS = 100,000 inputs each,
 *     with the ELF fuzzer's mutations, from real files fetched from npm
 *     (scripts/fetch-npm-binaries.js; the smaller ones: sharp's and
 *     node-llama-cpp's DLLs and .node, koffi's win32-x64 build; sharp's and
 *     node-llama-cpp's macOS dylibs, bundles and .node) and hand-built ones
 *     (PE32 with virtual-address delay descriptors, PE32+ with a name in zero
 *     fill; universal FAT_MAGIC / FAT_MAGIC_64 files, a 32-bit big-endian
 *     dylib), whose fields the test locates itself: e_lfanew, the section
 *     table, data directories, import / delay-load / export name RVAs; the
 *     universal header's offsets and sizes, ncmds, sizeofcmds, each cmdsize
 *     and name offset. Read as a Buffer, through positioned reads (which must
 *     agree) and through readBinary; each call returns facts whose shape holds
 *     or throws E_BAD_PE / E_BAD_MACHO (any format's code, or E_NOT_ELF,
 *     through readBinary), naming the file and offset, within 200 ms. The
 *     two run after the others, as two more children, ~15 s each.
 *
 * Each fuzzer runs in a child process (this file, run by node with tsx), so a
 * reader caught in an endless loop is killed by a watchdog and reported with
 * the range of inputs it was in, instead of freezing mocha. Every input is a
 * pure function of (SEED, fuzzer, index), so any one of them can be replayed:
 *
 *   node -r tsx/cjs test/fuzz.test.ts elf --only 1234 [--write /tmp/input.so]
 *   node -r tsx/cjs test/fuzz.test.ts manifest --only 1234 [--write /tmp/input.json]
 *   node -r tsx/cjs test/fuzz.test.ts pe|macho --only 1234 [--write /tmp/input.dll]
 */
import { strict as assert } from 'node:assert';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { performance } from 'node:perf_hooks';
import { readElf, readInterpreter, readSymbolVersions, versionHashes, type ElfByteSource, type ElfInfo, type NeededVersion, type SymbolVersions, type VersionDefinition, type VersionNeed } from '../src/formats/elf';
import { DlbundleError } from '../src/errors';
import { readBinary } from '../src/formats/binary';
import { readMachO, type MachOInfo } from '../src/formats/macho';
import { readPe, type PeInfo } from '../src/formats/pe';
import { parseManifest, variantDigest, type Manifest } from '../src/manifest';
import { pack } from '../src/pack';
import { externalDependencies, loadOrder, type GraphNode } from '../src/plan';
import { buildElf } from './elf-builder';
import { buildFat, buildMachO, CPU_TYPE_POWERPC, CPU_TYPE_X86_64, LC_LOAD_DYLIB, LC_LOAD_WEAK_DYLIB, LC_REEXPORT_DYLIB, MH_DYLIB, type MachOCommand } from './macho-builder';
import { buildPe, IMAGE_FILE_MACHINE_AMD64, IMAGE_FILE_MACHINE_I386 } from './pe-builder';

// test/fixtures.ts registers a mocha hook when imported, and the fuzzers also
// run outside mocha, so the few paths needed are spelled out here.
const REPO = path.resolve(__dirname, '..');
const NATIVE_BUILD = path.join(REPO, 'build', 'Release');
const SYSTEM_LIBS = '/usr/lib/x86_64-linux-gnu';

const SEED = 0x5eed_d1b0;
const ELF_INPUTS = 150_000;
const MANIFEST_INPUTS = 100_000;
const PE_INPUTS = 100_000;
const MACHO_INPUTS = 100_000;
/** A single call slower than this (twice in a row) is a failure. */
const SLOW_CALL_MS = 200;
/** Each child is killed after this long; a reader that hangs is reported, not waited for. */
const WATCHDOG_MS = 240_000;
const PROGRESS_EVERY = 5_000;

const ELF_CODES: ReadonlySet<string> = new Set(['E_NOT_ELF', 'E_BAD_ELF']);
const MANIFEST_CODES: ReadonlySet<string> = new Set(['E_BAD_MANIFEST', 'E_CYCLE', 'E_DUPLICATE_SONAME']);

type FuzzerKind = 'elf' | 'manifest' | 'pe' | 'macho';

// ---------------------------------------------------------------------------
// A deterministic PRNG: mulberry32, one independent stream per input.

class Rng {
  private state: number;

  constructor(seed: number) {
    this.state = seed >>> 0;
  }

  u32(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  }

  /** An integer in [0, n), n ≤ 2^32. */
  below(n: number): number {
    return n <= 0 ? 0 : Math.floor((this.u32() / 2 ** 32) * n);
  }

  /** An integer in [lo, hi]. */
  between(lo: number, hi: number): number {
    return lo + this.below(hi - lo + 1);
  }

  chance(p: number): boolean {
    return this.u32() / 2 ** 32 < p;
  }

  pick<T>(items: readonly T[]): T {
    if (items.length === 0) throw new Error('pick() from an empty list');
    return items[this.below(items.length)] as T;
  }

  /** A random 64-bit value. */
  u64(): bigint {
    return (BigInt(this.u32()) << 32n) | BigInt(this.u32());
  }

  shuffle<T>(items: T[]): T[] {
    for (let i = items.length - 1; i > 0; i--) {
      const j = this.below(i + 1);
      [items[i], items[j]] = [items[j] as T, items[i] as T];
    }
    return items;
  }
}

// Each fuzzer's own stream of inputs (the first two as they always were).
const FUZZER_STREAMS: Readonly<Record<FuzzerKind, number>> = { elf: 1, manifest: 2, pe: 3, macho: 4 };

/** The PRNG of input `index` of one fuzzer: a murmur3 mix of (SEED, fuzzer, index). */
function inputRng(kind: FuzzerKind, index: number): Rng {
  let h = (SEED ^ Math.imul(FUZZER_STREAMS[kind], 0x85ebca6b) ^ Math.imul(index + 1, 0x9e3779b1)) >>> 0;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return new Rng(h);
}

// ---------------------------------------------------------------------------
// What a fuzzer reports.

interface FailureExample {
  readonly index: number;
  readonly mutation: string;
  readonly detail: string;
}

interface FuzzReport {
  readonly kind: FuzzerKind;
  readonly seed: number;
  readonly from: number;
  readonly tried: number;
  /** Calls that returned a value (an ElfInfo, or a manifest that passed the invariants). */
  readonly parsed: number;
  /** DlbundleErrors with an expected code, by code. */
  readonly errors: Record<string, number>;
  /** Inputs per mutation kind. */
  readonly mutations: Record<string, number>;
  /** Unexpected outcomes by signature (exception type + first line, or broken invariant), with examples. */
  readonly failures: Record<string, { count: number; examples: FailureExample[] }>;
  readonly slowestMs: number;
  readonly slowestIndex: number;
  readonly totalMs: number;
  readonly seeds: readonly string[];
}

class Tally {
  tried = 0;
  parsed = 0;
  readonly errors: Record<string, number> = {};
  readonly mutations: Record<string, number> = {};
  readonly failures: Record<string, { count: number; examples: FailureExample[] }> = {};
  slowestMs = 0;
  slowestIndex = -1;

  fail(signature: string, example: FailureExample): void {
    const key = signature.slice(0, 200);
    const entry = (this.failures[key] ??= { count: 0, examples: [] });
    entry.count++;
    if (entry.examples.length < 5) entry.examples.push({ ...example, detail: example.detail.slice(0, 600), mutation: example.mutation.slice(0, 300) });
  }

  count(table: Record<string, number>, key: string): void {
    table[key] = (table[key] ?? 0) + 1;
  }

  report(kind: FuzzerKind, from: number, totalMs: number, seeds: readonly string[]): FuzzReport {
    return {
      kind,
      seed: SEED,
      from,
      tried: this.tried,
      parsed: this.parsed,
      errors: sorted(this.errors),
      mutations: sorted(this.mutations),
      failures: this.failures,
      slowestMs: this.slowestMs,
      slowestIndex: this.slowestIndex,
      totalMs,
      seeds,
    };
  }
}

function sorted(table: Record<string, number>): Record<string, number> {
  return Object.fromEntries(Object.entries(table).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

type Outcome = { readonly ok: true; readonly value: unknown } | { readonly ok: false; readonly error: unknown };

function timed(call: () => unknown): { outcome: Outcome; ms: number } {
  const start = performance.now();
  let outcome: Outcome;
  try {
    outcome = { ok: true, value: call() };
  } catch (error) {
    outcome = { ok: false, error };
  }
  return { outcome, ms: performance.now() - start };
}

/**
 * Runs `call`, timing it; a call over the limit is run up to twice more and the
 * fastest run counts, so that a GC pause or a busy machine is not reported as a
 * slow input, while an input that is slow every time still is.
 */
function timedBest(call: () => unknown): { outcome: Outcome; ms: number } {
  let best = timed(call);
  for (let retry = 0; retry < 2 && best.ms > SLOW_CALL_MS; retry++) {
    const again = timed(call);
    if (again.ms < best.ms) best = again;
  }
  return best;
}

function describeThrown(e: unknown): string {
  if (e instanceof Error) return `${e.name}: ${e.message.split('\n')[0] ?? ''}`;
  return `a thrown ${typeof e}: ${String(e)}`;
}

/** Checks an expected DlbundleError's shape: code allowed, names the file, what + next on two lines. */
function checkError(e: unknown, allowed: ReadonlySet<string>, file: string): string | null {
  if (!(e instanceof DlbundleError)) return `threw ${describeThrown(e)}`;
  if (!allowed.has(e.code)) return `DlbundleError with unexpected code ${e.code}`;
  // `what`, then `next` on the last line (`what` may quote a multi-line JSON.parse excerpt).
  const lines = e.message.split('\n');
  const what = lines[0] ?? '';
  const next = lines[lines.length - 1] ?? '';
  if (lines.length < 2 || what.trim() === '' || next.trim() === '') return `${e.code} without a "what" line and a "next step" line`;
  const binary = e.code === 'E_NOT_ELF' || e.code === 'E_BAD_ELF' || e.code === 'E_BAD_PE' || e.code === 'E_BAD_MACHO';
  if (e.code === 'E_BAD_MANIFEST' || binary) {
    if (e.file !== file || !what.includes(file)) return `${e.code} that does not name the file ${JSON.stringify(file)}`;
  }
  if (binary && !(typeof e.offset === 'number' && Number.isSafeInteger(e.offset) && e.offset >= 0)) {
    return `${e.code} without a byte offset (offset ${String(e.offset)})`;
  }
  return null;
}

// ---------------------------------------------------------------------------
// ELF fuzzer.

interface Field {
  readonly at: number;
  readonly width: 1 | 2 | 4 | 8;
  readonly label: string;
  /** This field's byte order when it is not the seed's (a universal Mach-O header is big-endian, its slices little-endian). */
  readonly little?: boolean;
}

interface ElfSeed {
  readonly name: string;
  readonly bytes: Buffer;
  readonly little: boolean;
  /** Every header, program-header and dynamic-entry field located in the seed. */
  readonly fields: readonly Field[];
  /** The fields the reader's bounds checks depend on: e_phoff, e_phnum, p_offset/p_filesz, DT_STRTAB/DT_STRSZ/DT_NEEDED… */
  readonly hot: readonly Field[];
  /** Byte ranges worth damaging: the dynamic string table, the interpreter string, the dynamic array. */
  readonly regions: readonly (readonly [number, number])[];
  /** Values of the seed's offset and address fields, as replacements that point somewhere real. */
  readonly values: readonly bigint[];
}

const DT_NAMES: Readonly<Record<number, string>> = {
  0: 'DT_NULL', 1: 'DT_NEEDED', 5: 'DT_STRTAB', 10: 'DT_STRSZ', 14: 'DT_SONAME', 15: 'DT_RPATH', 29: 'DT_RUNPATH',
  0x6ffffffc: 'DT_VERDEF', 0x6ffffffd: 'DT_VERDEFNUM', 0x6ffffffe: 'DT_VERNEED', 0x6fffffff: 'DT_VERNEEDNUM',
};
// How much of a version table (found by its address; its size is not recorded) counts as a region to damage.
const VERSION_REGION = 512;

/** Locates the fields of a valid ELF file, independently of src/formats/elf.ts. */
function describeSeed(name: string, bytes: Buffer): ElfSeed {
  const is64 = bytes[4] === 2;
  const little = bytes[5] === 1;
  const ws = is64 ? 8 : 4;
  const u16 = (at: number): number => (little ? bytes.readUInt16LE(at) : bytes.readUInt16BE(at));
  const u32 = (at: number): number => (little ? bytes.readUInt32LE(at) : bytes.readUInt32BE(at));
  const word = (at: number): number => (is64 ? Number(little ? bytes.readBigUInt64LE(at) : bytes.readBigUInt64BE(at)) : u32(at));
  const fields: Field[] = [];
  const hot: Field[] = [];
  const regions: [number, number][] = [];
  const values = new Set<bigint>();
  const add = (at: number, width: Field['width'], label: string, isHot = false): void => {
    const f = { at, width, label };
    fields.push(f);
    if (isHot) hot.push(f);
  };

  add(4, 1, 'EI_CLASS');
  add(5, 1, 'EI_DATA');
  add(6, 1, 'EI_VERSION');
  add(16, 2, 'e_type');
  add(18, 2, 'e_machine');
  add(20, 4, 'e_version');
  const phoffAt = is64 ? 32 : 28;
  const shoffAt = is64 ? 40 : 32;
  const phentsizeAt = is64 ? 54 : 42;
  const phnumAt = is64 ? 56 : 44;
  add(phoffAt, ws, 'e_phoff', true);
  add(shoffAt, ws, 'e_shoff');
  add(phentsizeAt, 2, 'e_phentsize', true);
  add(phnumAt, 2, 'e_phnum', true);
  const phoff = word(phoffAt);
  const shoff = word(shoffAt);
  const phentsize = u16(phentsizeAt);
  const phnum = u16(phnumAt);
  values.add(BigInt(phoff));
  // sh_info of section 0 holds the program header count when e_phnum is PN_XNUM.
  if (shoff !== 0 && shoff + (is64 ? 64 : 40) <= bytes.length) add(shoff + (is64 ? 44 : 28), 4, 'sh_info[0]', true);

  const p = is64 ? { offset: 8, vaddr: 16, filesz: 32 } : { offset: 4, vaddr: 8, filesz: 16 };
  const loads: { offset: number; vaddr: number; filesz: number }[] = [];
  let dynamic: { offset: number; filesz: number } | null = null;
  for (let i = 0; i < phnum; i++) {
    const base = phoff + i * phentsize;
    const type = u32(base);
    const kind = type === 1 ? 'PT_LOAD' : type === 2 ? 'PT_DYNAMIC' : type === 3 ? 'PT_INTERP' : `type ${type}`;
    const used = type >= 1 && type <= 3;
    add(base, 4, `p_type[${i}] (${kind})`, used);
    add(base + p.offset, ws, `p_offset[${i}] (${kind})`, used);
    add(base + p.vaddr, ws, `p_vaddr[${i}] (${kind})`, type === 1);
    add(base + p.filesz, ws, `p_filesz[${i}] (${kind})`, used);
    const seg = { offset: word(base + p.offset), vaddr: word(base + p.vaddr), filesz: word(base + p.filesz) };
    values.add(BigInt(seg.offset)).add(BigInt(seg.vaddr)).add(BigInt(seg.filesz));
    if (type === 1) loads.push(seg);
    if (type === 2) dynamic = seg;
    if (type === 3) regions.push([seg.offset, seg.offset + seg.filesz]);
  }

  if (dynamic !== null) {
    regions.push([dynamic.offset, dynamic.offset + dynamic.filesz]);
    let strtab = -1;
    let strsz = -1;
    const versionTables: number[] = [];
    for (let j = 0; (j + 1) * 2 * ws <= dynamic.filesz; j++) {
      const at = dynamic.offset + j * 2 * ws;
      const tag = word(at);
      const value = word(at + ws);
      const tagName = DT_NAMES[tag] ?? `tag ${tag}`;
      const isHot = tagName.startsWith('DT_');
      add(at, ws, `d_tag[${j}] (${tagName})`, isHot);
      add(at + ws, ws, `d_val[${j}] (${tagName})`, isHot);
      if (tag === 5) strtab = value;
      if (tag === 10) strsz = value;
      if (tag === 0x6ffffffc || tag === 0x6ffffffe) versionTables.push(value);
      if (isHot) values.add(BigInt(value));
      if (tag === 0) break;
    }
    // The version tables and their next/aux offsets: damaged as regions, their fields overwritten as hot ones.
    for (const vaddr of versionTables) {
      const l = loads.find((x) => vaddr >= x.vaddr && vaddr < x.vaddr + x.filesz);
      if (l === undefined) continue;
      const offset = l.offset + (vaddr - l.vaddr);
      regions.unshift([offset, Math.min(bytes.length, offset + VERSION_REGION)]);
      for (let at = offset; at + 4 <= Math.min(bytes.length, offset + 64); at += 4) add(at, 4, `version table word @0x${at.toString(16)}`, true);
    }
    const load = loads.find((l) => strtab >= l.vaddr && strtab < l.vaddr + l.filesz);
    if (load !== undefined && strsz > 0) {
      const offset = load.offset + (strtab - load.vaddr);
      regions.push([offset, offset + strsz]);
      values.add(BigInt(offset));
    }
  }
  return { name, bytes, little, fields, hot, regions, values: [...values] };
}

const BOUNDARY_VALUES: readonly bigint[] = [
  0n, 1n, 2n, 3n, 4n, 7n, 8n, 0x10n, 0x20n, 0x34n, 0x38n, 0x40n, 0x7fn, 0x80n, 0xffn, 0x100n, 0x1000n, 0x7fffn, 0x8000n, 0xfffen, 0xffffn,
  0x10000n, 0x7fffffffn, 0x80000000n, 0xfffffffen, 0xffffffffn, 1n << 32n, (1n << 53n) - 1n, 1n << 53n, (1n << 53n) + 1n, 1n << 63n, (1n << 64n) - 1n,
];

function encodeField(value: bigint, width: number, little: boolean): Buffer {
  const masked = value & ((1n << BigInt(8 * width)) - 1n);
  const out = Buffer.alloc(width);
  for (let k = 0; k < width; k++) out[little ? k : width - 1 - k] = Number((masked >> BigInt(8 * k)) & 0xffn);
  return out;
}

function decodeField(bytes: Buffer, f: Field, little: boolean): bigint {
  let v = 0n;
  for (let k = 0; k < f.width; k++) v |= BigInt(bytes[f.at + (little ? k : f.width - 1 - k)] ?? 0) << BigInt(8 * k);
  return v;
}

/**
 * In-place edits of a seed's bytes, undone after each call, so that a 2 MB
 * library is not copied for every input.
 */
class Edits {
  private readonly undo: { at: number; old: Buffer }[] = [];

  constructor(readonly bytes: Buffer) {}

  write(at: number, data: Uint8Array): void {
    const n = Math.min(data.length, this.bytes.length - at);
    if (at < 0 || n <= 0) return;
    this.undo.push({ at, old: Buffer.from(this.bytes.subarray(at, at + n)) });
    this.bytes.set(data.subarray(0, n), at);
  }

  revert(): void {
    for (let k = this.undo.length - 1; k >= 0; k--) {
      const u = this.undo[k] as { at: number; old: Buffer };
      this.bytes.set(u.old, u.at);
    }
    this.undo.length = 0;
  }
}

interface ElfMutant {
  readonly kind: string;
  readonly description: string;
  readonly input: Uint8Array;
}

/** A byte offset worth touching: in the headers, in a hot field or region, or anywhere. */
function elfPosition(rng: Rng, seed: ElfSeed, size: number): number {
  const r = rng.below(10);
  if (r < 4) return rng.below(Math.min(size, 4096));
  if (r < 6 && seed.hot.length > 0) {
    const f = rng.pick(seed.hot);
    return Math.max(0, Math.min(size - 1, f.at + rng.between(-2, f.width + 1)));
  }
  if (r < 8 && seed.regions.length > 0) {
    const [lo, hi] = rng.pick(seed.regions);
    return Math.max(0, Math.min(size - 1, lo + rng.below(Math.max(1, hi - lo + 1))));
  }
  return rng.below(size);
}

function fieldValue(rng: Rng, seed: ElfSeed, original: bigint, size: number): bigint {
  switch (rng.below(6)) {
    case 0:
      return rng.pick(BOUNDARY_VALUES);
    case 1:
      return BigInt(size + rng.between(-64, 64));
    case 2:
      return original + BigInt(rng.between(-16, 16));
    case 3:
      return original ^ (1n << BigInt(rng.below(64)));
    case 4:
      return seed.values.length > 0 ? rng.pick(seed.values) + BigInt(rng.between(-8, 8)) : original;
    default:
      return rng.chance(0.5) ? rng.u64() : BigInt(rng.below(size * 2 + 1));
  }
}

function overwriteFields(rng: Rng, seed: ElfSeed, edits: Edits, count: number): string[] {
  const done: string[] = [];
  for (let k = 0; k < count; k++) {
    const f = rng.chance(0.75) && seed.hot.length > 0 ? rng.pick(seed.hot) : rng.pick(seed.fields);
    const little = f.little ?? seed.little;
    const original = decodeField(edits.bytes, f, little);
    const value = fieldValue(rng, seed, original, edits.bytes.length);
    edits.write(f.at, encodeField(value, f.width, little));
    done.push(`${f.label}@0x${f.at.toString(16)}=0x${(value & ((1n << BigInt(8 * f.width)) - 1n)).toString(16)}`);
  }
  return done;
}

function flipBytes(rng: Rng, seed: ElfSeed, edits: Edits, count: number): string[] {
  const done: string[] = [];
  for (let k = 0; k < count; k++) {
    const at = elfPosition(rng, seed, edits.bytes.length);
    const old = edits.bytes[at] ?? 0;
    const op = rng.below(4);
    const v = op === 0 ? old ^ (1 << rng.below(8)) : op === 1 ? 0 : op === 2 ? 0xff : rng.below(256);
    edits.write(at, Uint8Array.of(v));
    done.push(`byte@0x${at.toString(16)}=0x${v.toString(16)}`);
  }
  return done;
}

/** Damages the dynamic string table: NULs removed, path characters, high bytes. */
function damageStrings(rng: Rng, seed: ElfSeed, edits: Edits): string {
  const strtab = seed.regions[seed.regions.length - 1];
  if (strtab === undefined) return flipBytes(rng, seed, edits, 1).join(' ');
  const [lo, hi] = strtab;
  const mode = rng.below(4);
  if (mode === 0) {
    // Every NUL of the table turned into 'A': no string ends inside it.
    let n = 0;
    for (let at = lo; at < hi; at++) if (edits.bytes[at] === 0) (edits.write(at, Uint8Array.of(0x41)), n++);
    return `strtab: ${n} NULs -> 'A'`;
  }
  if (mode === 1) {
    edits.write(hi - 1, Uint8Array.of(0x41));
    return 'strtab: last NUL removed';
  }
  const at = lo + rng.below(Math.max(1, hi - lo));
  const text = rng.pick(['/', '..', '../../etc/passwd', '\xff\xfe', ':::', '\u00e9\u2028', 'A'.repeat(300)]);
  edits.write(at, Buffer.from(text, 'utf8'));
  return `strtab@0x${at.toString(16)}=${JSON.stringify(text.slice(0, 20))}`;
}

function truncatedLength(rng: Rng, seed: ElfSeed, size: number): number {
  switch (rng.below(5)) {
    case 0:
      return rng.below(Math.min(size, 128) + 1);
    case 1: {
      const f = rng.pick(seed.hot.length > 0 ? seed.hot : seed.fields);
      return Math.max(0, Math.min(size, f.at + rng.between(-4, f.width + 4)));
    }
    case 2:
      if (seed.regions.length > 0) {
        const [lo, hi] = rng.pick(seed.regions);
        return Math.max(0, Math.min(size, (rng.chance(0.5) ? lo : hi) + rng.between(-16, 16)));
      }
      return rng.below(size + 1);
    case 3:
      return Math.max(0, size - 1 - rng.below(64));
    default:
      return rng.below(size + 1);
  }
}

function randomBytes(rng: Rng, n: number): Buffer {
  const b = Buffer.alloc(n);
  const fill = rng.below(3);
  for (let k = 0; k < n; k++) b[k] = fill === 0 ? 0 : fill === 1 ? 0xff : rng.below(256);
  return b;
}

function mutateElf(rng: Rng, seed: ElfSeed, seeds: readonly ElfSeed[], edits: Edits): ElfMutant {
  const size = seed.bytes.length;
  const roll = rng.below(100);
  // In-place kinds: the input is the edited seed itself, or a prefix of it.
  if (roll < 16) {
    const d = flipBytes(rng, seed, edits, rng.between(1, 8));
    return { kind: 'byte flips', description: d.join(' '), input: edits.bytes };
  }
  if (roll < 46) {
    const d = overwriteFields(rng, seed, edits, rng.between(1, 3));
    return { kind: 'field overwrites', description: d.join(' '), input: edits.bytes };
  }
  if (roll < 54) {
    const d = [...overwriteFields(rng, seed, edits, rng.between(1, 2)), ...flipBytes(rng, seed, edits, rng.between(1, 4))];
    return { kind: 'fields + flips', description: d.join(' '), input: edits.bytes };
  }
  if (roll < 58) {
    return { kind: 'string table damage', description: damageStrings(rng, seed, edits), input: edits.bytes };
  }
  if (roll < 72) {
    const d = rng.chance(0.3) ? overwriteFields(rng, seed, edits, 1) : [];
    const length = truncatedLength(rng, seed, size);
    return { kind: 'truncation', description: [...d, `truncated to ${length} of ${size}`].join(' '), input: edits.bytes.subarray(0, length) };
  }
  // Copying kinds: a new buffer.
  if (roll < 82) {
    const at = elfPosition(rng, seed, size + 1);
    const n = rng.chance(0.8) ? rng.between(1, 64) : rng.between(65, 4096);
    const ins = rng.chance(0.5) ? randomBytes(rng, n) : Buffer.from(seed.bytes.subarray(rng.below(size), Math.min(size, rng.below(size) + n)));
    const d = rng.chance(0.3) ? overwriteFields(rng, seed, edits, 1) : [];
    return { kind: 'insertion', description: [...d, `${ins.length} bytes inserted at 0x${at.toString(16)}`].join(' '), input: Buffer.concat([edits.bytes.subarray(0, at), ins, edits.bytes.subarray(at)]) };
  }
  if (roll < 92) {
    const at = elfPosition(rng, seed, size);
    const n = rng.chance(0.8) ? rng.between(1, 64) : rng.between(65, 4096);
    const d = rng.chance(0.3) ? overwriteFields(rng, seed, edits, 1) : [];
    return { kind: 'deletion', description: [...d, `${n} bytes deleted at 0x${at.toString(16)}`].join(' '), input: Buffer.concat([edits.bytes.subarray(0, at), edits.bytes.subarray(Math.min(size, at + n))]) };
  }
  const other = rng.pick(seeds);
  const cut = rng.chance(0.5) ? elfPosition(rng, seed, size + 1) : rng.below(size + 1);
  // Same offset in both files keeps the second file's layout where the first one's headers point; any offset does not.
  const from = rng.chance(0.5) ? Math.min(cut, other.bytes.length) : rng.below(other.bytes.length + 1);
  return {
    kind: 'splice',
    description: `${seed.name}[0, 0x${cut.toString(16)}) + ${other.name}[0x${from.toString(16)}, end)`,
    input: Buffer.concat([seed.bytes.subarray(0, cut), other.bytes.subarray(from)]),
  };
}

/** What an outcome says, as one comparable string. */
function outcomeFacts(o: Outcome): string {
  if (o.ok) return JSON.stringify(o.value);
  const e = o.error as Partial<DlbundleError>;
  return `${String(e.code)}@${String(e.offset)}`;
}

/** A positioned-read source over a copy, as readElfFile builds over a file descriptor. */
function copyingSource(bytes: Uint8Array): ElfByteSource {
  return {
    size: bytes.length,
    read: (offset, length) => Buffer.from(bytes.subarray(offset, Math.min(bytes.length, offset + length))),
  };
}

function checkElfInfo(info: unknown): string | null {
  const i = info as ElfInfo;
  const strings = (v: unknown): boolean => Array.isArray(v) && v.every((s) => typeof s === 'string');
  if (typeof info !== 'object' || info === null) return 'readElf returned a non-object';
  if (i.class !== 32 && i.class !== 64) return `class ${String(i.class)}`;
  if (i.endian !== 'little' && i.endian !== 'big') return `endian ${String(i.endian)}`;
  if (typeof i.type !== 'string' || typeof i.machine !== 'string' || !Number.isInteger(i.machineCode)) return 'type, machine or machineCode of the wrong type';
  if (!(i.soname === null || typeof i.soname === 'string') || !(i.interp === null || typeof i.interp === 'string')) return 'soname or interp of the wrong type';
  if (!strings(i.needed) || !strings(i.runpath) || !strings(i.rpath)) return 'needed, runpath or rpath is not a list of strings';
  return null;
}

function checkSymbolVersions(value: unknown): string | null {
  const v = value as SymbolVersions;
  if (typeof value !== 'object' || value === null || !Array.isArray(v.needed) || !Array.isArray(v.defined)) return 'readSymbolVersions returned no needed / defined lists';
  const count = v.needed.reduce((n, x) => n + 1 + x.versions.length, 0) + v.defined.reduce((n, d) => n + 1 + d.parents.length, 0);
  if (count > 4096 * 2) return `readSymbolVersions returned ${count} entries, past its bound`;
  const goodVersion = (x: NeededVersion): boolean => typeof x.name === 'string' && Number.isInteger(x.flags) && Number.isInteger(x.index);
  const goodNeed = (n: VersionNeed): boolean => typeof n.file === 'string' && n.versions.every(goodVersion);
  const goodDefinition = (d: VersionDefinition): boolean => typeof d.name === 'string' && Number.isInteger(d.flags) && Number.isInteger(d.index) && d.parents.every((p: string) => typeof p === 'string');
  if (!v.needed.every(goodNeed)) return 'a version need of the wrong shape';
  if (!v.defined.every(goodDefinition)) return 'a version definition of the wrong shape';
  return null;
}

function loadElfSeeds(): ElfSeed[] {
  const files = [
    ...['libdemo_core.so', 'libdemo_codec.so.1.2.3', 'libdemo_app.so', 'libdemo_plugin.so', 'libdemo_accel.so', 'libdemo_gpu_runtime.so.1', 'demo.node'].map((n) => path.join(NATIVE_BUILD, n)),
    ...['libz.so.1', 'libc.so.6', 'libstdc++.so.6'].map((n) => path.join(SYSTEM_LIBS, n)),
  ];
  const seeds: ElfSeed[] = [];
  for (const file of files) {
    if (!fs.existsSync(file)) throw new Error(`${file} is missing: run \`npm run build:native\` for the demo libraries; the system ones come with Debian's zlib1g, libc6 and libstdc++6.`);
    seeds.push(describeSeed(path.basename(file), fs.readFileSync(file)));
  }
  const full = {
    interp: '/lib/ld-test.so.1',
    soname: 'libfull.so.2',
    needed: ['libc.so.6', 'libm.so.6', 'libdep.so'],
    runpath: '$ORIGIN:$ORIGIN/../lib',
    rpath: '/opt/old/lib',
    versionNeeds: [{ file: 'libc.so.6', versions: [{ name: 'GLIBC_2.2.5', index: 2 }, { name: 'GLIBC_2.34', index: 3 }] }, { file: 'libm.so.6', versions: [{ name: 'GLIBC_2.29', flags: 2, index: 4 }] }],
    versionDefinitions: [{ name: 'libfull.so.2', flags: 1, index: 1 }, { name: 'FULL_1', index: 5 }, { name: 'FULL_2', index: 6, parents: ['FULL_1'] }],
  };
  for (const [cls, endian, machine, sections] of [[32, 'little', 3, true], [32, 'big', 8, false], [64, 'big', 21, true], [64, 'little', 62, false]] as const) {
    seeds.push(describeSeed(`built ELF${cls} ${endian}-endian${sections ? ' with sections' : ''}`, buildElf({ class: cls, endian, machine, sections, ...full }).bytes));
  }
  return seeds;
}

function fuzzElf(from: number, count: number, only: boolean, write: string | null): FuzzReport {
  const started = performance.now();
  const seeds = loadElfSeeds();
  const edits = new Map(seeds.map((s) => [s, new Edits(s.bytes)]));
  const tally = new Tally();
  const FILE = 'fuzz-input.so';
  for (let index = from; index < from + count; index++) {
    if (!only && (index - from) % PROGRESS_EVERY === 0) process.stderr.write(`progress elf ${index}\n`);
    const rng = inputRng('elf', index);
    const seed = rng.pick(seeds);
    const ed = edits.get(seed) as Edits;
    try {
      const m = mutateElf(rng, seed, seeds, ed);
      const mode = rng.below(20);
      const how = mode < 15 ? 'readElf(Buffer)' : mode < 17 ? 'readElf(positioned reads)' : mode < 18 ? 'readInterpreter' : 'readSymbolVersions';
      const mutation = `${m.kind} of ${seed.name}: ${m.description}; ${how}`;
      tally.count(tally.mutations, m.kind);
      if (write !== null) fs.writeFileSync(write, m.input);
      const input = m.input;
      const call =
        how === 'readElf(Buffer)' ? () => readElf(input, FILE) : how === 'readElf(positioned reads)' ? () => readElf(copyingSource(input), FILE) : how === 'readInterpreter' ? () => readInterpreter(input, FILE) : () => readSymbolVersions(input, FILE);
      const { outcome, ms } = timedBest(call);
      tally.tried++;
      if (ms > tally.slowestMs) (tally.slowestMs = ms), (tally.slowestIndex = index);
      if (ms > SLOW_CALL_MS) tally.fail(`a call took more than ${SLOW_CALL_MS} ms`, { index, mutation, detail: `${ms.toFixed(1)} ms` });
      if (how === 'readElf(positioned reads)') {
        // The same bytes through both kinds of source must give the same facts, or the same code at the same offset.
        const viaBuffer = outcomeFacts(timed(() => readElf(input, FILE)).outcome);
        const viaReads = outcomeFacts(outcome);
        if (viaBuffer !== viaReads) tally.fail('readElf(Buffer) and readElf(positioned reads) disagree', { index, mutation, detail: `${viaBuffer} vs ${viaReads}` });
      }
      if (how === 'readSymbolVersions') {
        const viaReads = outcomeFacts(timed(() => readSymbolVersions(copyingSource(input), FILE)).outcome);
        const viaBuffer = outcomeFacts(outcome);
        if (viaBuffer !== viaReads) tally.fail('readSymbolVersions(Buffer) and readSymbolVersions(positioned reads) disagree', { index, mutation, detail: `${viaBuffer} vs ${viaReads}` });
        // The start's look-up walks the same definitions: the same codes only.
        const hashes = timed(() => versionHashes(input, FILE)).outcome;
        const problem = hashes.ok ? (hashes.value instanceof Set ? null : 'versionHashes returned no Set') : checkError(hashes.error, ELF_CODES, FILE);
        if (problem !== null) tally.fail(`versionHashes: ${problem}`, { index, mutation, detail: String((hashes as { error?: Error }).error?.stack ?? '') });
      }
      if (outcome.ok) {
        const problem =
          how === 'readInterpreter'
            ? outcome.value === null || typeof outcome.value === 'string'
              ? null
              : 'readInterpreter returned a non-string'
            : how === 'readSymbolVersions'
              ? checkSymbolVersions(outcome.value)
              : checkElfInfo(outcome.value);
        if (problem === null) tally.parsed++;
        else tally.fail(problem, { index, mutation, detail: JSON.stringify(outcome.value) });
        if (only) console.error(`input ${index}: ${mutation}\nreturned ${JSON.stringify(outcome.value)}`);
      } else {
        const problem = checkError(outcome.error, ELF_CODES, FILE);
        if (problem === null) tally.count(tally.errors, (outcome.error as DlbundleError).code);
        else tally.fail(problem, { index, mutation, detail: String((outcome.error as Error | undefined)?.stack ?? outcome.error) });
        if (only) console.error(`input ${index}: ${mutation}\nthrew ${String((outcome.error as Error | undefined)?.stack ?? outcome.error)}`);
      }
    } finally {
      ed.revert();
    }
  }
  return tally.report('elf', from, performance.now() - started, seeds.map((s) => `${s.name} (${s.bytes.length} bytes)`));
}

// ---------------------------------------------------------------------------
// PE and Mach-O fuzzers: the same mutations as for ELF (test seeds describe
// their fields and regions, independently of src/formats/), over real DLLs
// and dylibs from npm (scripts/fetch-npm-binaries.js) and hand-built files.

const PE_CODES: ReadonlySet<string> = new Set(['E_BAD_PE']);
const MACHO_CODES: ReadonlySet<string> = new Set(['E_BAD_MACHO']);
/** Through readBinary a mutated magic number may name any format, or none. */
const BINARY_CODES: ReadonlySet<string> = new Set(['E_NOT_ELF', 'E_BAD_ELF', 'E_BAD_PE', 'E_BAD_MACHO']);

/**
 * The real files the PE and Mach-O fuzzers start from, the smaller ones of
 * each kind (mutations that insert or delete bytes copy the whole file).
 */
function npmBinarySeedFiles(): { pe: string[]; macho: string[] } {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { fetchNpmBinaries } = require('../scripts/fetch-npm-binaries.js') as { fetchNpmBinaries(): { packages: Record<string, { dir: string }> } };
  const { packages } = fetchNpmBinaries();
  const at = (name: string, ...parts: string[]): string => path.join((packages[name] as { dir: string }).dir, ...parts);
  return {
    pe: [
      at('@node-llama-cpp/win-x64', 'bins', 'win-x64', 'ggml.v0.4.0.dll'),
      at('@img/sharp-win32-x64', 'lib', 'libvips-cpp-8.18.7.dll'),
      at('@img/sharp-win32-x64', 'lib', 'sharp-win32-x64-0.35.5.node'),
      at('@koromix/koffi-win32-x64', 'win32_x64', 'koffi.node'),
    ],
    macho: [
      at('@node-llama-cpp/mac-arm64-metal', 'bins', 'mac-arm64-metal', 'libggml-blas.so'),
      at('@node-llama-cpp/mac-arm64-metal', 'bins', 'mac-arm64-metal', 'libggml.metal.v0.4.0.dylib'),
      at('@img/sharp-darwin-x64', 'lib', 'sharp-darwin-x64-0.35.5.node'),
      at('@img/sharp-darwin-arm64', 'lib', 'sharp-darwin-arm64-0.35.5.node'),
      at('@node-llama-cpp/mac-arm64-metal', 'bins', 'mac-arm64-metal', 'llama-addon.node'),
    ],
  };
}

// The most of a seed's bytes counted as its names region.
const NAMES_REGION = 16 * 1024;

/** A seed's field list being built: fields, hot ones, regions and values, with each field's byte order. */
class SeedFields {
  readonly fields: Field[] = [];
  readonly hot: Field[] = [];
  readonly regions: [number, number][] = [];
  readonly values = new Set<bigint>();

  constructor(private readonly bytes: Buffer) {}

  add(at: number, width: Field['width'], label: string, isHot: boolean, little: boolean): void {
    if (at < 0 || at + width > this.bytes.length) return;
    const f = { at, width, label, little };
    this.fields.push(f);
    if (isHot) {
      this.hot.push(f);
      this.values.add(decodeField(this.bytes, f, little));
    }
  }

  seed(name: string, little: boolean, names: readonly (readonly [number, number])[]): ElfSeed {
    // damageStrings works on the last region: the one spanning the names (of
    // a universal file's first slice: it edits every NUL of the region).
    const lo = Math.min(...names.map((n) => n[0]));
    const hi = Math.max(...names.filter((n) => n[1] <= lo + NAMES_REGION).map((n) => n[1]));
    if (names.length > 0) this.regions.push([lo, hi]);
    return { name, bytes: this.bytes, little, fields: this.fields, hot: this.hot, regions: this.regions, values: [...this.values] };
  }
}

/** Locates the fields of a valid PE file, independently of src/formats/pe.ts. */
function describePeSeed(name: string, bytes: Buffer): ElfSeed {
  const s = new SeedFields(bytes);
  const f = (at: number, width: Field['width'], label: string, isHot = true): void => s.add(at, width, label, isHot, true);
  f(0x3c, 4, 'e_lfanew');
  const pe = bytes.readUInt32LE(0x3c);
  const coff = pe + 4;
  f(coff, 2, 'Machine', false);
  f(coff + 2, 2, 'NumberOfSections');
  f(coff + 16, 2, 'SizeOfOptionalHeader');
  f(coff + 18, 2, 'Characteristics', false);
  const opt = coff + 20;
  const optSize = bytes.readUInt16LE(coff + 16);
  const is64 = bytes.readUInt16LE(opt) === 0x20b;
  f(opt, 2, 'Magic');
  f(opt + (is64 ? 24 : 28), is64 ? 8 : 4, 'ImageBase');
  f(opt + 60, 4, 'SizeOfHeaders');
  f(opt + (is64 ? 108 : 92), 4, 'NumberOfRvaAndSizes');
  const dirs = opt + (is64 ? 112 : 96);
  const dir = (i: number): number => bytes.readUInt32LE(dirs + 8 * i);
  for (const [i, label] of [[0, 'export'], [1, 'import'], [13, 'delay-load']] as const) {
    f(dirs + 8 * i, 4, `${label} directory RVA`);
    f(dirs + 8 * i + 4, 4, `${label} directory size`);
  }
  const table = opt + optSize;
  const count = bytes.readUInt16LE(coff + 2);
  const sections: { va: number; span: number; raw: number; ptr: number }[] = [];
  for (let i = 0; i < count; i++) {
    const at = table + 40 * i;
    f(at + 8, 4, `VirtualSize[${i}]`);
    f(at + 12, 4, `VirtualAddress[${i}]`);
    f(at + 16, 4, `SizeOfRawData[${i}]`);
    f(at + 20, 4, `PointerToRawData[${i}]`);
    const virtualSize = bytes.readUInt32LE(at + 8);
    sections.push({ va: bytes.readUInt32LE(at + 12), span: virtualSize || bytes.readUInt32LE(at + 16), raw: bytes.readUInt32LE(at + 16), ptr: bytes.readUInt32LE(at + 20) });
  }
  const offsetOf = (rva: number): number => {
    const sec = sections.find((x) => rva >= x.va && rva - x.va < Math.min(x.span, x.raw));
    return sec === undefined ? -1 : sec.ptr + (rva - sec.va);
  };
  const names: [number, number][] = [];
  const nameAt = (rva: number): void => {
    const at = offsetOf(rva);
    if (at >= 0) names.push([at, bytes.indexOf(0, at) + 1]);
  };
  if (dir(0) !== 0) {
    const at = offsetOf(dir(0));
    f(at + 12, 4, 'export Name');
    if (at >= 0) nameAt(bytes.readUInt32LE(at + 12));
  }
  for (const [i, size, nameField, kind] of [[1, 20, 12, 'import'], [13, 32, 4, 'delay-load']] as const) {
    if (dir(i) === 0) continue;
    const start = offsetOf(dir(i));
    if (start < 0) continue;
    let k = 0;
    for (; k < 512; k++) {
      const at = start + k * size;
      const nameRva = bytes.readUInt32LE(at + nameField);
      if (nameRva === 0) break;
      f(at + nameField, 4, `${kind} descriptor ${k} Name`);
      if (kind === 'import') f(at + 16, 4, `import descriptor ${k} FirstThunk`);
      else f(at, 4, `delay-load descriptor ${k} Attributes`);
      nameAt(nameRva);
    }
    s.regions.push([start, start + (k + 1) * size]);
  }
  return s.seed(name, true, names);
}

const MACHO_STRING_COMMANDS: ReadonlyMap<number, number> = new Map([[0xc, 24], [0xd, 24], [0x20, 24], [0x80000018, 24], [0x8000001f, 24], [0x80000023, 24], [0x8000001c, 12]]);

/** Locates the fields of a valid Mach-O file (thin or universal), independently of src/formats/macho.ts. */
function describeMachOSeed(name: string, bytes: Buffer): ElfSeed {
  const s = new SeedFields(bytes);
  const names: [number, number][] = [];
  let little = true;
  const image = (base: number): void => {
    little = bytes.readUInt32BE(base) === 0xcffaedfe || bytes.readUInt32BE(base) === 0xcefaedfe;
    const is64 = bytes.readUInt32BE(base) === 0xcffaedfe || bytes.readUInt32BE(base) === 0xfeedfacf;
    const u32 = (at: number): number => (little ? bytes.readUInt32LE(at) : bytes.readUInt32BE(at));
    const f = (at: number, label: string, isHot = true): void => s.add(at, 4, label, isHot, little);
    f(base + 4, 'cputype', false);
    f(base + 12, 'filetype', false);
    f(base + 16, 'ncmds');
    f(base + 20, 'sizeofcmds');
    let at = base + (is64 ? 32 : 28);
    const ncmds = u32(base + 16);
    for (let i = 0; i < ncmds; i++) {
      const cmd = u32(at);
      const size = u32(at + 4);
      f(at, `cmd[${i}]`, MACHO_STRING_COMMANDS.has(cmd));
      f(at + 4, `cmdsize[${i}]`);
      if (MACHO_STRING_COMMANDS.has(cmd)) {
        f(at + 8, `name offset[${i}]`);
        names.push([at + u32(at + 8), at + size]);
      }
      at += size;
    }
  };
  const magic = bytes.readUInt32BE(0);
  if (magic === 0xcafebabe || magic === 0xcafebabf) {
    const wide = magic === 0xcafebabf;
    const f = (at: number, width: Field['width'], label: string): void => s.add(at, width, label, true, false);
    f(4, 4, 'nfat_arch');
    const count = bytes.readUInt32BE(4);
    for (let i = 0; i < count; i++) {
      const at = 8 + i * (wide ? 32 : 20);
      f(at, 4, `fat cputype[${i}]`);
      f(at + 8, wide ? 8 : 4, `fat offset[${i}]`);
      f(at + (wide ? 16 : 12), wide ? 8 : 4, `fat size[${i}]`);
      image(Number(wide ? bytes.readBigUInt64BE(at + 8) : BigInt(bytes.readUInt32BE(at + 8))));
    }
  } else image(0);
  return s.seed(name, little, names);
}

function loadPeSeeds(): ElfSeed[] {
  const seeds = npmBinarySeedFiles().pe.map((f) => describePeSeed(`${path.basename(path.dirname(f))}/${path.basename(f)}`, fs.readFileSync(f)));
  const spec = { exportName: 'libbuilt.dll', imports: ['KERNEL32.dll', 'libdep.dll', 'api-ms-win-crt-heap-l1-1-0.dll'], delayImports: ['node.exe', 'USER32.dll'] };
  seeds.push(describePeSeed('built PE32 (delay descriptors with virtual addresses)', buildPe({ class: 32, machine: IMAGE_FILE_MACHINE_I386, delayUsesVirtualAddresses: true, ...spec }).bytes));
  seeds.push(describePeSeed('built PE32+ (last name in zero fill)', buildPe({ class: 64, machine: IMAGE_FILE_MACHINE_AMD64, lastNameInZeroFill: true, ...spec }).bytes));
  return seeds;
}

function loadMachOSeeds(): ElfSeed[] {
  const files = npmBinarySeedFiles().macho;
  const seeds = files.map((f) => describeMachOSeed(`${path.basename(path.dirname(f))}/${path.basename(f)}`, fs.readFileSync(f)));
  const thin = (f: string): { bytes: Buffer; cputype: number; cpusubtype: number } => {
    const bytes = fs.readFileSync(f);
    return { bytes, cputype: bytes.readInt32LE(4), cpusubtype: bytes.readInt32LE(8) };
  };
  const sharp = files.filter((f) => path.basename(f).startsWith('sharp-darwin-'));
  seeds.push(describeMachOSeed('universal sharp .node (FAT_MAGIC)', buildFat(sharp.map(thin)).bytes));
  seeds.push(describeMachOSeed('universal sharp .node (FAT_MAGIC_64)', buildFat(sharp.map(thin), { magic64: true }).bytes));
  const commands: MachOCommand[] = [
    { kind: 'id', name: '@rpath/libbuilt.1.dylib' },
    { kind: 'dylib', cmd: LC_LOAD_DYLIB, name: '@rpath/libdep.dylib' },
    { kind: 'dylib', cmd: LC_REEXPORT_DYLIB, name: '@rpath/libdep.dylib' },
    { kind: 'dylib', cmd: LC_LOAD_WEAK_DYLIB, name: '@loader_path/libweak.dylib' },
    { kind: 'uuid' },
    { kind: 'rpath', path: '@loader_path/../lib' },
    { kind: 'dylib', cmd: LC_LOAD_DYLIB, name: '/usr/lib/libSystem.B.dylib' },
  ];
  const ppc = buildMachO({ class: 32, endian: 'big', cputype: CPU_TYPE_POWERPC, filetype: MH_DYLIB, commands }).bytes;
  seeds.push(describeMachOSeed('built 32-bit big-endian dylib', ppc));
  const x64 = buildMachO({ class: 64, endian: 'little', cputype: CPU_TYPE_X86_64, cpusubtype: 3, filetype: MH_DYLIB, commands }).bytes;
  seeds.push(describeMachOSeed('built universal of two small dylibs', buildFat([{ bytes: ppc, cputype: CPU_TYPE_POWERPC }, { bytes: x64, cputype: CPU_TYPE_X86_64, cpusubtype: 3 }], { align: 6 }).bytes));
  return seeds;
}

function checkPeInfo(value: unknown): string | null {
  const i = value as PeInfo;
  const strings = (v: unknown): boolean => Array.isArray(v) && v.every((x) => typeof x === 'string');
  if (typeof value !== 'object' || value === null || i.format !== 'pe') return 'readPe returned something else than PE facts';
  if ((i.class !== 32 && i.class !== 64) || typeof i.machine !== 'string' || !Number.isInteger(i.machineCode) || typeof i.dll !== 'boolean') return 'class, machine or dll of the wrong type';
  if (!(i.soname === null || typeof i.soname === 'string') || !strings(i.imports) || !strings(i.delayImports)) return 'soname or imports of the wrong type';
  if (JSON.stringify(i.needed) !== JSON.stringify([...i.imports, ...i.delayImports])) return 'needed is not the imports then the delay-load imports';
  return null;
}

function checkMachOInfo(value: unknown, size: number): string | null {
  const i = value as MachOInfo;
  const strings = (v: unknown): boolean => Array.isArray(v) && v.every((x) => typeof x === 'string');
  if (typeof value !== 'object' || value === null || i.format !== 'macho' || !Array.isArray(i.images) || i.images.length === 0) return 'readMachO returned no images';
  if (i.fat === null && i.images.length !== 1) return 'a thin file with several images';
  for (const m of i.images) {
    if (!Number.isSafeInteger(m.offset) || !Number.isSafeInteger(m.size) || m.offset < 0 || m.offset + m.size > size) return `an image at ${m.offset}+${m.size} outside the ${size}-byte input`;
    if (!strings(m.needed) || !strings(m.runpath) || !(m.soname === null || typeof m.soname === 'string')) return 'needed, runpath or soname of the wrong type';
    if (m.neededCommands.length !== m.needed.length) return 'neededCommands and needed differ in length';
    if (m.soname !== null && m.filetype !== 'dylib' && m.filetype !== 'dylib_stub') return `an install name on a ${m.filetype}`;
  }
  return null;
}

/** The PE or Mach-O fuzzer: `count` inputs from `from`. */
function fuzzFormat(kind: 'pe' | 'macho', from: number, count: number, only: boolean, write: string | null): FuzzReport {
  const started = performance.now();
  const seeds = kind === 'pe' ? loadPeSeeds() : loadMachOSeeds();
  const edits = new Map(seeds.map((s) => [s, new Edits(s.bytes)]));
  const tally = new Tally();
  const FILE = kind === 'pe' ? 'fuzz-input.dll' : 'fuzz-input.dylib';
  const read = kind === 'pe' ? readPe : readMachO;
  const check = (v: unknown, size: number): string | null => {
    const f = (v as { format?: unknown }).format;
    if (f === 'pe') return checkPeInfo(v);
    if (f === 'macho') return checkMachOInfo(v, size);
    return f === 'elf' ? checkElfInfo(v) : 'readBinary returned no format';
  };
  for (let index = from; index < from + count; index++) {
    if (!only && (index - from) % PROGRESS_EVERY === 0) process.stderr.write(`progress ${kind} ${index}\n`);
    const rng = inputRng(kind, index);
    const seed = rng.pick(seeds);
    const ed = edits.get(seed) as Edits;
    try {
      const m = mutateElf(rng, seed, seeds, ed);
      const mode = rng.below(20);
      const how = mode < 14 ? 'Buffer' : mode < 17 ? 'positioned reads' : 'readBinary';
      const mutation = `${m.kind} of ${seed.name}: ${m.description}; ${how}`;
      tally.count(tally.mutations, m.kind);
      if (write !== null) fs.writeFileSync(write, m.input);
      const input = m.input;
      const call = how === 'Buffer' ? () => read(input, FILE) : how === 'positioned reads' ? () => read(copyingSource(input), FILE) : () => readBinary(input, FILE);
      const { outcome, ms } = timedBest(call);
      tally.tried++;
      if (ms > tally.slowestMs) (tally.slowestMs = ms), (tally.slowestIndex = index);
      if (ms > SLOW_CALL_MS) tally.fail(`a call took more than ${SLOW_CALL_MS} ms`, { index, mutation, detail: `${ms.toFixed(1)} ms` });
      if (how === 'positioned reads') {
        const viaBuffer = outcomeFacts(timed(() => read(input, FILE)).outcome);
        const viaReads = outcomeFacts(outcome);
        if (viaBuffer !== viaReads) tally.fail('a Buffer and positioned reads disagree', { index, mutation, detail: `${viaBuffer} vs ${viaReads}` });
      }
      if (outcome.ok) {
        const problem = check(outcome.value, input.length);
        if (problem === null) tally.parsed++;
        else tally.fail(problem, { index, mutation, detail: JSON.stringify(outcome.value).slice(0, 2000) });
        if (only) console.error(`input ${index}: ${mutation}\nreturned ${JSON.stringify(outcome.value)}`);
      } else {
        const problem = checkError(outcome.error, how === 'readBinary' ? BINARY_CODES : kind === 'pe' ? PE_CODES : MACHO_CODES, FILE);
        if (problem === null) tally.count(tally.errors, (outcome.error as DlbundleError).code);
        else tally.fail(problem, { index, mutation, detail: String((outcome.error as Error | undefined)?.stack ?? outcome.error) });
        if (only) console.error(`input ${index}: ${mutation}\nthrew ${String((outcome.error as Error | undefined)?.stack ?? outcome.error)}`);
      }
    } finally {
      ed.revert();
    }
  }
  return tally.report(kind, from, performance.now() - started, seeds.map((s) => `${s.name} (${s.bytes.length} bytes)`));
}

// ---------------------------------------------------------------------------
// Manifest fuzzer.

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
type Obj = Record<string, unknown>;

interface ManifestBase {
  readonly label: string;
  readonly text: string;
}

/** Real manifests: `pack` of the demo libraries (all, and the three-library chain), and one with a second variant. */
function makeManifestBases(): ManifestBase[] {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dlbundle-fuzz-'));
  try {
    const all = ['libdemo_core.so', 'libdemo_codec.so.1.2.3', 'libdemo_app.so', 'libdemo_plugin.so', 'libdemo_accel.so', 'demo.node'];
    const chain = ['libdemo_core.so', 'libdemo_codec.so.1.2.3', 'libdemo_app.so'];
    const a = pack(all.map((n) => path.join(NATIVE_BUILD, n)), { name: 'demo', out: path.join(dir, 'all') });
    const c = pack(chain.map((n) => path.join(NATIVE_BUILD, n)), { name: 'chain', out: path.join(dir, 'chain') });
    const textA = fs.readFileSync(a.manifestPath, 'utf8');
    const two = JSON.parse(textA) as { variants: Obj };
    // The digest does not cover the key, so a copy under another key is a valid second variant.
    two.variants['linux-x64-musl'] = two.variants[a.target];
    return [
      { label: 'demo (6 files)', text: textA },
      { label: 'chain (3 files)', text: fs.readFileSync(c.manifestPath, 'utf8') },
      { label: 'demo with two variants', text: JSON.stringify(two, null, 2) },
    ];
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

const NASTY_STRINGS: readonly string[] = [
  '', '/', '.', '..', '../libc.so.6', '../../etc/passwd', 'a/b', '/usr/lib/libz.so.1', 'lib\0x.so', '\0', 'lib\\x.so', '\\', ' ', 'lib x.so',
  '.dlbundle-complete', 'dlbundle.json', 'libdemo_core.so', 'libdemo_codec.so.1', 'libc.so.6', 'linux-x64-gnu', '..\u2215x', '\u002e\u002e',
  'libé.so', '\u2028', '\ud800', '\uffff', 'A'.repeat(255), 'A'.repeat(256), 'Z'.repeat(4096), '0123456789abcdef', '0123456789ABCDEF',
  '0123456789abcde', '0123456789abcdef0', 'g123456789abcdef', '__proto__', 'constructor', 'toString', 'x86_64', 'aarch64',
];

const NASTY_NUMBERS: readonly number[] = [
  -1, -0, 0.5, -0.5, 1.5, 1e300, -1e300, 2 ** 53, 2 ** 53 + 2, 2 ** 53 - 1, Number.MAX_VALUE, Number.MIN_VALUE, 1e21, 4294967296, 0, 1, 16384,
];

function nastyString(rng: Rng): string {
  if (rng.chance(0.85)) return rng.pick(NASTY_STRINGS);
  let s = '';
  for (let k = rng.between(1, 40); k > 0; k--) s += String.fromCharCode(rng.chance(0.9) ? rng.between(0x20, 0x7e) : rng.below(0x10000));
  return rng.chance(0.9) ? s : s.repeat(Math.ceil(rng.between(200, 100_000) / s.length));
}

function randomJson(rng: Rng, depth = 0): Json {
  switch (rng.below(depth > 2 ? 5 : 8)) {
    case 0:
      return null;
    case 1:
      return rng.chance(0.5);
    case 2:
      return rng.pick(NASTY_NUMBERS);
    case 3:
      return rng.u32();
    case 4:
      return nastyString(rng);
    case 5:
      return Array.from({ length: rng.below(4) }, () => randomJson(rng, depth + 1));
    case 6:
      return Object.fromEntries(Array.from({ length: rng.below(4) }, () => [rng.pick(['name', 'size', 'files', 'order', 'x', '']), randomJson(rng, depth + 1)]));
    default:
      return '1';
  }
}

/** Values no JSON text can hold, for manifests handed over as objects (fromBuffers, parseManifest(object)). */
function randomNonJson(rng: Rng): unknown {
  const circular: Obj = {};
  circular.self = circular;
  return rng.pick<() => unknown>([
    () => NaN,
    () => Infinity,
    () => -Infinity,
    () => undefined,
    () => 16384n,
    () => Symbol('fuzz'),
    () => () => 1,
    () => new Date(0),
    () => new Map([['name', 'libx.so']]),
    () => new String('libx.so'),
    () => new Number(16384),
    () => Object.assign(Object.create(null) as Obj, { name: 'libx.so' }),
    () => [, 'libx.so'],
    () => Object.assign(['libx.so'], { extra: 1 }),
    () => Object.freeze({ name: 'libx.so' }),
    () => circular,
    () => [circular],
  ])();
}

/** Every path inside `root` (keys and indexes), the root itself excluded. */
function allPaths(root: unknown): (string | number)[][] {
  const out: (string | number)[][] = [];
  const seen = new Set<unknown>();
  const walk = (v: unknown, at: (string | number)[]): void => {
    // Bounded: values planted by earlier mutations may be nested 20,000 deep or circular.
    if (out.length > 5000 || at.length > 12 || seen.has(v)) return;
    if (typeof v === 'object' && v !== null) seen.add(v);
    if (Array.isArray(v)) v.forEach((x, i) => (out.push([...at, i]), walk(x, [...at, i])));
    else if (typeof v === 'object' && v !== null) for (const [k, x] of Object.entries(v)) (out.push([...at, k]), walk(x, [...at, k]));
  };
  walk(root, []);
  return out;
}

function parentOf(root: unknown, at: readonly (string | number)[]): { parent: Obj | unknown[]; key: string | number } | null {
  let v: unknown = root;
  for (const k of at.slice(0, -1)) {
    if (typeof v !== 'object' || v === null) return null;
    v = (v as Obj)[String(k)];
  }
  const key = at[at.length - 1];
  if (key === undefined || typeof v !== 'object' || v === null) return null;
  return { parent: v as Obj | unknown[], key };
}

function setAt(root: unknown, at: readonly (string | number)[], value: unknown): void {
  const p = parentOf(root, at);
  if (p === null) return;
  if (Array.isArray(p.parent) && typeof p.key === 'number') p.parent[p.key] = value;
  // defineProperty, so that a key named "__proto__" becomes an own property as JSON.parse makes it.
  else Object.defineProperty(p.parent, String(p.key), { value, enumerable: true, writable: true, configurable: true });
}

function deleteAt(root: unknown, at: readonly (string | number)[]): void {
  const p = parentOf(root, at);
  if (p === null) return;
  if (Array.isArray(p.parent) && typeof p.key === 'number') p.parent.splice(p.key, 1);
  else delete (p.parent as Obj)[String(p.key)];
}

function variantsOf(m: unknown): Obj[] {
  const vs = typeof m === 'object' && m !== null ? (m as Obj).variants : undefined;
  if (typeof vs !== 'object' || vs === null) return [];
  return Object.values(vs).filter((v): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v));
}

function filesOf(v: Obj): Obj[] {
  return Array.isArray(v.files) ? v.files.filter((f): f is Obj => typeof f === 'object' && f !== null && !Array.isArray(f)) : [];
}

/** One structural mutation of a parsed manifest, in place; returns what it did. */
function mutateManifestValue(rng: Rng, m: Obj, placeholders: Map<string, string>, objectMode: boolean): string {
  const variants = variantsOf(m);
  const v = variants.length > 0 ? rng.pick(variants) : null;
  const files = v === null ? [] : filesOf(v);
  const f = files.length > 0 ? rng.pick(files) : null;
  let cachedPaths: (string | number)[][] | undefined;
  const paths = (): (string | number)[][] => (cachedPaths ??= allPaths(m));
  switch (rng.below(20)) {
    case 0: {
      const at = rng.pick(paths().length > 0 ? paths() : [['format']]);
      deleteAt(m, at);
      return `deleted ${at.join('.')}`;
    }
    case 1:
    case 2: {
      const at = rng.pick(paths().length > 0 ? paths() : [['format']]);
      const value = objectMode && rng.chance(0.5) ? randomNonJson(rng) : randomJson(rng);
      setAt(m, at, value);
      return `${at.join('.')} = ${describeValue(value)}`;
    }
    case 3:
    case 4: {
      // A name-like field (name, soname, an order / needed / external / runpath entry) set to a nasty string.
      const named = paths().filter((p) => {
        const last = p[p.length - 1];
        const before = p[p.length - 2];
        return last === 'name' || last === 'soname' || last === 'machine' || (typeof last === 'number' && (before === 'order' || before === 'needed' || before === 'external' || before === 'runpath'));
      });
      if (named.length === 0) return 'no name field';
      const at = rng.pick(named);
      const s = nastyString(rng);
      const old = parentOf(m, at);
      const previous = old === null ? undefined : (old.parent as Obj)[String(old.key)];
      setAt(m, at, s);
      if (at[at.length - 1] === 'name' && v !== null && Array.isArray(v.order) && rng.chance(0.5)) {
        // The order renamed in step, so that the name itself is what gets judged.
        v.order = v.order.map((n) => (n === previous ? s : n));
        return `${at.join('.')} = ${describeValue(s)} (order too)`;
      }
      return `${at.join('.')} = ${describeValue(s)}`;
    }
    case 5: {
      if (f === null) return 'no file';
      const value = rng.chance(0.7) ? rng.pick(NASTY_NUMBERS) : randomJson(rng);
      f.size = value;
      return `size = ${describeValue(value)}`;
    }
    case 6: {
      if (f === null || files.length < 2 || v === null) return 'no two files';
      const other = rng.pick(files);
      const oldName = f.name;
      f.name = other.name;
      if (Array.isArray(v.order) && rng.chance(0.5)) v.order = v.order.map((n) => (n === oldName ? other.name : n));
      return `duplicate name ${describeValue(other.name)}`;
    }
    case 7: {
      if (f === null || v === null || !Array.isArray(v.files)) return 'no file';
      const copy = JSON.parse(JSON.stringify(f)) as Obj;
      if (rng.chance(0.5)) copy.name = `${String(copy.name)}.copy`;
      v.files.push(copy);
      if (Array.isArray(v.order) && rng.chance(0.7)) v.order.push(copy.name);
      return `file ${describeValue(copy.name)} added (same soname)`;
    }
    case 8: {
      if (v === null || !Array.isArray(v.order)) return 'no order';
      const order = v.order as unknown[];
      const op = rng.below(5);
      if (op === 0) rng.shuffle(order);
      else if (op === 1) order.splice(rng.below(order.length), 1);
      else if (op === 2) order.push(order.length > 0 ? rng.pick(order) : 'x');
      else if (op === 3) order.push(nastyString(rng));
      else order.reverse();
      return `order ${['shuffled', 'entry dropped', 'entry repeated', 'unknown entry added', 'reversed'][op] ?? ''}`;
    }
    case 9: {
      if (v === null) return 'no variant';
      const digest = rng.pick(['0123456789ABCDEF', '0123456789abcde', '0123456789abcdef0', 'zzzzzzzzzzzzzzzz', '', '0000000000000000', rng.u64().toString(16).padStart(16, '0')]);
      if (f !== null && rng.chance(0.4)) {
        f.xxh64 = digest;
        return `xxh64 = ${digest}`;
      }
      v.digest = digest;
      return `digest = ${digest}`;
    }
    case 10: {
      const vs = m.variants;
      if (typeof vs !== 'object' || vs === null || v === null) return 'no variants';
      const key = rng.pick(['linux-arm64-gnu', 'linux-x64-musl', 'freebsd-x64', 'Linux-x64-gnu', '', '-x', '__proto__', 'constructor', 'toString', '../x', 'a'.repeat(300), 'linux-x64-gnu ', 'linux_x64.gnu+1']);
      setAt(m, ['variants', key], JSON.parse(JSON.stringify(v)) as Json);
      return `extra variant ${JSON.stringify(key.slice(0, 20))}`;
    }
    case 11: {
      // Deep nesting of arrays or objects in place of a value; serialized by hand (JSON.stringify recurses).
      const at = rng.pick(paths().length > 0 ? paths() : [['format']]);
      const depth = rng.pick([2, 10, 100, 1000, 6000, 10_000]);
      const arrays = rng.chance(0.5);
      const nested = arrays ? `${'['.repeat(depth)}${']'.repeat(depth)}` : `${'{"a":'.repeat(depth)}null${'}'.repeat(depth)}`;
      if (objectMode) setAt(m, at, JSON.parse(nested) as Json);
      else {
        const token = `@@nested-${placeholders.size}@@`;
        placeholders.set(JSON.stringify(token), nested);
        setAt(m, at, token);
      }
      return `${at.join('.')} = ${arrays ? 'arrays' : 'objects'} nested ${depth} deep`;
    }
    case 12: {
      if (files.length < 2) return 'no two files';
      const [a, b] = rng.shuffle([...files]);
      if (a === undefined || b === undefined) return 'no two files';
      const provided = (x: Obj): unknown => (typeof x.soname === 'string' ? x.soname : x.name);
      a.needed = [...(Array.isArray(a.needed) ? a.needed : []), provided(b)];
      b.needed = [...(Array.isArray(b.needed) ? b.needed : []), provided(a)];
      return `cycle ${describeValue(a.name)} <-> ${describeValue(b.name)}`;
    }
    case 13: {
      if (f === null || files.length < 2) return 'no two files';
      const other = rng.pick(files);
      f.soname = typeof other.soname === 'string' ? other.soname : other.name;
      return `soname = ${describeValue(f.soname)} (another file's)`;
    }
    case 14: {
      if (f === null) return 'no file';
      const needed = Array.isArray(f.needed) ? [...(f.needed as unknown[])] : [];
      if (needed.length > 0 && rng.chance(0.4)) needed.splice(rng.below(needed.length), 1);
      else needed.push(rng.chance(0.5) ? `libfuzz${rng.below(10)}.so.1` : files.length > 0 ? rng.pick(files).name : 'libx.so');
      f.needed = needed;
      return `needed = ${describeValue(needed)}`;
    }
    case 15: {
      m.format = rng.pick<Json>([0, 2, '1', 1.0, 1.5, true, null, [1], { v: 1 }, -1]);
      return `format = ${describeValue(m.format)}`;
    }
    case 16: {
      const targets = [m, ...variants, ...files];
      const t = rng.pick(targets);
      const key = rng.pick(['extra', 'name', '__proto__', 'files', 'toJSON', 'digest', '']);
      setAt(t, [key], objectMode && rng.chance(0.5) ? randomNonJson(rng) : randomJson(rng));
      return `field ${JSON.stringify(key)} added or replaced`;
    }
    case 17: {
      if (objectMode && rng.chance(0.5)) {
        // A hole in an array (only an object can hold one): map() and every() skip holes.
        const arrays = paths().filter((p) => typeof p[p.length - 1] === 'number');
        if (arrays.length === 0) return 'no array';
        const at = rng.pick(arrays);
        const holder = parentOf(m, at);
        if (holder !== null && Array.isArray(holder.parent)) delete holder.parent[holder.key as number];
        return `${at.join('.')} made a hole`;
      }
      if (v === null) return 'no variant';
      const key = rng.pick(['files', 'order', 'external']);
      v[key] = rng.pick<Json>([{}, 'x', null, 1, [[]], [null], [{}]]);
      return `${key} = ${describeValue(v[key])}`;
    }
    case 18: {
      if (f === null) return 'no file';
      f.runpath = rng.pick<Json>([['$ORIGIN'], ['/tmp', '..'], [''], ['a\0b'], 'x', [1]]);
      return `runpath = ${describeValue(f.runpath)}`;
    }
    default: {
      if (v === null || !Array.isArray(v.files)) return 'no files';
      // Many files: loadOrder and the digest over up to a hundred more entries.
      const n = rng.between(10, 100);
      for (let k = 0; k < n; k++) v.files.push({ name: `libmany${k}.so`, size: k, xxh64: '0123456789abcdef', soname: null, needed: k > 0 && rng.chance(0.5) ? [`libmany${rng.below(k)}.so`] : [], runpath: [], machine: 'x86_64' });
      return `${n} more files`;
    }
  }
}

function describeValue(v: unknown): string {
  try {
    const s = typeof v === 'bigint' ? `${v}n` : typeof v === 'symbol' || typeof v === 'function' || v === undefined ? String(v) : JSON.stringify(v);
    // JSON.stringify shows a hole as null; say that it is one.
    const sparse = Array.isArray(v) && Object.keys(v).filter((k) => /^\d+$/.test(k)).length < v.length;
    return `${sparse ? 'sparse ' : ''}${s ?? String(v)}`.slice(0, 80);
  } catch {
    return `a ${typeof v} that JSON.stringify refuses`;
  }
}

/** Recomputes order, external and digest of each variant, where its files allow, so that validation goes further. */
function repair(m: Obj, rng: Rng): string[] {
  const done: string[] = [];
  for (const v of variantsOf(m)) {
    if (!Array.isArray(v.files)) continue;
    const nodes = v.files as GraphNode[];
    try {
      if (rng.chance(0.9)) {
        v.order = loadOrder(nodes);
        done.push('order');
      }
      if (rng.chance(0.9)) {
        v.external = externalDependencies(nodes);
        done.push('external');
      }
    } catch {
      // The files cannot form a graph (a cycle, a duplicate, wrong types): the parser must say so itself.
    }
    try {
      if (rng.chance(0.9)) {
        v.digest = variantDigest(v.files as Parameters<typeof variantDigest>[0]);
        done.push('digest');
      }
    } catch {
      // Names or sizes of the wrong type.
    }
  }
  return done;
}

const TEXT_TOKENS: readonly string[] = ['{', '}', '[', ']', ',', ':', '"', '\\', '\\u0000', '\\/', 'null', 'true', '1e999', '-', 'NaN', '\u0000', '\ud800', '\n', ' '];
const NUMBER_REPLACEMENTS: readonly string[] = ['1e999', '-1', '0.5', '1.0', '1e2', '-0', '9007199254740993', '1E400', '16384.000001', '00', '1e-400', '123456789012345678901234567890'];

/** A text-level mutation: bytes flipped, cut, inserted, deleted or duplicated; a number or string literal replaced. */
function mutateText(rng: Rng, text: string): { text: string; description: string } {
  switch (rng.below(7)) {
    case 0: {
      const bytes = Buffer.from(text, 'utf8');
      const n = rng.between(1, 6);
      for (let k = 0; k < n; k++) bytes[rng.below(bytes.length)] = rng.chance(0.5) ? rng.below(256) : rng.pick([0x22, 0x5c, 0x7b, 0x7d, 0x2f, 0x2e, 0x00, 0x80, 0xff]);
      return { text: bytes.toString(rng.chance(0.8) ? 'utf8' : 'latin1'), description: `${n} bytes flipped` };
    }
    case 1: {
      const at = rng.below(text.length + 1);
      return { text: text.slice(0, at), description: `truncated to ${at} of ${text.length} characters` };
    }
    case 2: {
      const at = rng.below(text.length + 1);
      const token = rng.pick(TEXT_TOKENS);
      return { text: text.slice(0, at) + token + text.slice(at), description: `${JSON.stringify(token)} inserted at ${at}` };
    }
    case 3: {
      const at = rng.below(text.length);
      const n = rng.between(1, 40);
      return { text: text.slice(0, at) + text.slice(at + n), description: `${n} characters deleted at ${at}` };
    }
    case 4: {
      // A duplicated range, often a whole `"key": value,` line: JSON.parse keeps the last of two keys.
      const lines = text.split('\n');
      const i = rng.below(lines.length);
      lines.splice(i, 0, lines[i] ?? '');
      return { text: lines.join('\n'), description: `line ${i} duplicated` };
    }
    case 5: {
      const numbers = [...text.matchAll(/-?\b\d+(\.\d+)?([eE][+-]?\d+)?\b/g)];
      const hit = numbers.length > 0 ? rng.pick(numbers) : undefined;
      if (hit === undefined || hit.index === undefined) return { text, description: 'no number' };
      const r = rng.pick(NUMBER_REPLACEMENTS);
      return { text: text.slice(0, hit.index) + r + text.slice(hit.index + hit[0].length), description: `number ${hit[0]} -> ${r}` };
    }
    default: {
      const strings = [...text.matchAll(/"(?:[^"\\]|\\.)*"/g)];
      const hit = strings.length > 0 ? rng.pick(strings) : undefined;
      if (hit === undefined || hit.index === undefined) return { text, description: 'no string' };
      const r = rng.pick(['"..\\/x"', '"\\u002e\\u002e"', '"a\\u0000b"', '"\\ud800"', '"\\/"', '""', '"\\u0041"', JSON.stringify(nastyString(rng))]);
      return { text: text.slice(0, hit.index) + r + text.slice(hit.index + hit[0].length), description: `string ${hit[0].slice(0, 30)} -> ${r.slice(0, 30)}` };
    }
  }
}

const PLAIN_NAME_MAX = 255;

function plainNameProblem(name: unknown): string | null {
  if (typeof name !== 'string') return `is ${typeof name}`;
  if (name === '' || name === '.' || name === '..') return `is ${JSON.stringify(name)}`;
  if (name.includes('/') || name.includes('\\') || name.includes('\0')) return `${JSON.stringify(name.slice(0, 40))} holds "/", "\\" or NUL`;
  if (name.length > PLAIN_NAME_MAX) return `is ${name.length} characters long`;
  return null;
}

/** The invariants of an accepted manifest, checked independently of the parser. */
function manifestProblem(m: Manifest, checkDigest: boolean): string | null {
  if (m.format !== 1) return `format ${String(m.format)}`;
  const nameProblem = plainNameProblem(m.name);
  if (nameProblem !== null) return `bundle name ${nameProblem}`;
  for (const [key, v] of Object.entries(m.variants)) {
    if (!/^[a-z0-9][a-z0-9_.+-]*$/.test(key)) return `variant key ${JSON.stringify(key)}`;
    const names = new Set<string>();
    const provided = new Map<string, string>();
    for (const f of v.files) {
      const p = plainNameProblem(f.name);
      if (p !== null) return `file name ${p}`;
      if (f.soname !== null) {
        const s = plainNameProblem(f.soname);
        if (s !== null) return `soname ${s}`;
      }
      if (names.has(f.name)) return `file name ${JSON.stringify(f.name)} twice`;
      names.add(f.name);
      if (typeof f.size !== 'number' || !Number.isSafeInteger(f.size) || f.size < 0) return `size ${String(f.size)} of ${JSON.stringify(f.name)}`;
      if (!/^[0-9a-f]{16}$/.test(f.xxh64)) return `xxh64 ${JSON.stringify(f.xxh64)}`;
      if (![...f.needed, ...f.runpath, f.machine].every((s) => typeof s === 'string' && !s.includes('\0'))) return `needed, runpath or machine of ${JSON.stringify(f.name)}`;
      const providedName = f.soname ?? f.name;
      if (provided.has(providedName)) return `${JSON.stringify(providedName)} provided twice`;
      provided.set(providedName, f.name);
    }
    if (v.order.length !== names.size || new Set(v.order).size !== v.order.length || !v.order.every((n) => names.has(n))) return `order ${JSON.stringify(v.order).slice(0, 100)} is not a permutation of the file names`;
    const position = new Map(v.order.map((n, i) => [n, i]));
    const external = new Set<string>();
    for (const f of v.files) {
      for (const dep of f.needed) {
        const by = provided.get(dep);
        if (by === undefined) external.add(dep);
        else if (by !== f.name && (position.get(by) ?? -1) > (position.get(f.name) ?? -1)) return `order loads ${JSON.stringify(f.name)} before its dependency ${JSON.stringify(by)}`;
      }
    }
    if (JSON.stringify(v.external) !== JSON.stringify([...external].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0)))) return `external ${JSON.stringify(v.external)}`;
    if (!/^[0-9a-f]{16}$/.test(v.digest)) return `digest ${JSON.stringify(v.digest)}`;
    if (checkDigest && v.digest !== variantDigest(v.files)) return 'digest does not match the files although checkDigest was on';
  }
  return null;
}

interface ManifestMutant {
  readonly kind: string;
  readonly description: string;
  readonly input: unknown;
}

function mutateManifest(rng: Rng, base: ManifestBase): ManifestMutant {
  const roll = rng.below(100);
  if (roll < 20) {
    const t = mutateText(rng, base.text);
    const again = rng.chance(0.3) ? mutateText(rng, t.text) : null;
    return { kind: 'text', description: again === null ? t.description : `${t.description}; ${again.description}`, input: again === null ? t.text : again.text };
  }
  const objectMode = roll >= 90;
  const m = JSON.parse(base.text) as Obj;
  const placeholders = new Map<string, string>();
  const done: string[] = [];
  const n = rng.chance(0.6) ? 1 : rng.between(2, 4);
  for (let k = 0; k < n; k++) {
    try {
      done.push(mutateManifestValue(rng, m, placeholders, objectMode));
    } catch (e) {
      // A later mutation that copies a value planted by an earlier one (a BigInt, a cycle) through JSON: skipped.
      done.push(`(mutation skipped: ${describeThrown(e)})`);
    }
  }
  if (rng.chance(0.5)) done.push(`repaired ${repair(m, rng).join('+') || 'nothing'}`);
  if (objectMode) return { kind: 'object', description: done.join('; '), input: m };
  let text = JSON.stringify(m, null, rng.chance(0.5) ? 2 : undefined);
  for (const [token, nested] of placeholders) text = text.split(token).join(nested);
  if (roll >= 80) {
    const t = mutateText(rng, text);
    return { kind: 'json + text', description: `${done.join('; ')}; ${t.description}`, input: t.text };
  }
  return { kind: 'json', description: done.join('; '), input: text };
}

const TEXT_INPUT = '[text]';
const OBJECT_INPUT = '[object]';

function fuzzManifest(from: number, count: number, only: boolean, write: string | null): FuzzReport {
  const started = performance.now();
  const bases = makeManifestBases();
  const tally = new Tally();
  const ORIGIN = 'fuzz';
  for (let index = from; index < from + count; index++) {
    if (!only && (index - from) % PROGRESS_EVERY === 0) process.stderr.write(`progress manifest ${index}\n`);
    const rng = inputRng('manifest', index);
    const base = rng.pick(bases);
    const m = mutateManifest(rng, base);
    const checkDigest = rng.chance(0.75);
    const mutation = `${m.kind} of ${base.label}: ${m.description}; checkDigest ${checkDigest}`;
    tally.count(tally.mutations, m.kind);
    if (write !== null) fs.writeFileSync(write, typeof m.input === 'string' ? m.input : describeValue(m.input));
    // Failures are filed by what was handed over: text (a dlbundle.json) or an object (fromBuffers, parseManifest(object)).
    const by = typeof m.input === 'string' ? TEXT_INPUT : OBJECT_INPUT;
    const { outcome, ms } = timedBest(() => parseManifest(m.input, ORIGIN, { checkDigest }));
    tally.tried++;
    if (ms > tally.slowestMs) (tally.slowestMs = ms), (tally.slowestIndex = index);
    if (ms > SLOW_CALL_MS) tally.fail(`${by} a call took more than ${SLOW_CALL_MS} ms`, { index, mutation, detail: `${ms.toFixed(1)} ms` });
    if (outcome.ok) {
      const problem = manifestProblem(outcome.value as Manifest, checkDigest);
      if (problem === null) tally.parsed++;
      else tally.fail(`${by} accepted a manifest whose ${problem.replace(/"[^"]*"/g, '"…"')}`, { index, mutation, detail: problem });
      if (only) console.error(`input ${index}: ${mutation}\naccepted${problem === null ? '' : `, but ${problem}`}`);
    } else {
      const problem = checkError(outcome.error, MANIFEST_CODES, ORIGIN);
      if (problem === null) tally.count(tally.errors, (outcome.error as DlbundleError).code);
      else tally.fail(`${by} ${problem}`, { index, mutation, detail: String((outcome.error as Error | undefined)?.stack ?? outcome.error) });
      if (only) console.error(`input ${index}: ${mutation}\nthrew ${String((outcome.error as Error | undefined)?.stack ?? outcome.error).slice(0, 2000)}`);
    }
  }
  return tally.report('manifest', from, performance.now() - started, bases.map((b) => `${b.label} (${b.text.length} characters)`));
}

// ---------------------------------------------------------------------------
// The child process, and the mocha tests that run three of them.

const RESULT_MARK = '@@dlbundle-fuzz-report@@';

function childMain(argv: readonly string[]): void {
  const kind = argv[0];
  if (kind !== 'elf' && kind !== 'manifest' && kind !== 'pe' && kind !== 'macho') throw new Error('usage: node -r tsx/cjs test/fuzz.test.ts elf|manifest|pe|macho [--from N] [--count N] [--only N] [--write FILE]');
  const option = (name: string): string | null => {
    const i = argv.indexOf(name);
    return i < 0 ? null : (argv[i + 1] ?? null);
  };
  const onlyAt = option('--only');
  const from = Number(onlyAt ?? option('--from') ?? 0);
  const count = onlyAt !== null ? 1 : Number(option('--count') ?? { elf: ELF_INPUTS, manifest: MANIFEST_INPUTS, pe: PE_INPUTS, macho: MACHO_INPUTS }[kind]);
  const write = option('--write');
  const only = onlyAt !== null;
  const report = kind === 'elf' ? fuzzElf(from, count, only, write) : kind === 'manifest' ? fuzzManifest(from, count, only, write) : fuzzFormat(kind, from, count, only, write);
  process.stdout.write(`${RESULT_MARK}${JSON.stringify(report)}\n`);
}

function runFuzzChild(kind: FuzzerKind, from: number, count: number): Promise<FuzzReport> {
  return new Promise((resolve, reject) => {
    const args = ['--require', require.resolve('tsx/cjs'), __filename, kind, '--from', String(from), '--count', String(count)];
    const child = spawn(process.execPath, args, { cwd: REPO, stdio: ['ignore', 'pipe', 'pipe'], timeout: WATCHDOG_MS, killSignal: 'SIGKILL' });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr = (stderr + d).slice(-(1 << 20))));
    child.on('error', reject);
    child.on('close', (status, signal) => {
      const line = stdout.split('\n').find((l) => l.startsWith(RESULT_MARK));
      if (line !== undefined && status === 0) {
        resolve(JSON.parse(line.slice(RESULT_MARK.length)) as FuzzReport);
        return;
      }
      const lastProgress = [...stderr.matchAll(/progress \w+ (\d+)\n/g)].pop()?.[1] ?? String(from);
      reject(
        new Error(
          signal === 'SIGKILL'
            ? `the ${kind} fuzzer did not finish inputs ${from}..${from + count - 1} within ${WATCHDOG_MS / 1000} s: a call hangs between input ${lastProgress} and input ${Number(lastProgress) + PROGRESS_EVERY} ` +
                `(find it with \`node -r tsx/cjs test/fuzz.test.ts ${kind} --from ${lastProgress} --count ${PROGRESS_EVERY}\`)`
            : `the ${kind} fuzzer exited with status ${String(status)} (signal ${String(signal)}) and ${line === undefined ? 'no report' : 'a report'}\n--- stderr ---\n${stderr.slice(-8000)}`,
        ),
      );
    });
  });
}

/** One report from the reports of several children that fuzzed consecutive ranges. */
function mergeReports(parts: readonly FuzzReport[]): FuzzReport {
  const first = parts[0];
  if (first === undefined) throw new Error('no reports to merge');
  const add = (into: Record<string, number>, from: Record<string, number>): Record<string, number> => {
    for (const [k, n] of Object.entries(from)) into[k] = (into[k] ?? 0) + n;
    return into;
  };
  const failures: FuzzReport['failures'] = {};
  for (const p of parts) {
    for (const [k, f] of Object.entries(p.failures)) {
      const into = (failures[k] ??= { count: 0, examples: [] });
      into.count += f.count;
      into.examples.push(...f.examples.slice(0, 5 - into.examples.length));
    }
  }
  const slowest = parts.reduce((a, b) => (b.slowestMs > a.slowestMs ? b : a));
  return {
    ...first,
    tried: parts.reduce((n, p) => n + p.tried, 0),
    parsed: parts.reduce((n, p) => n + p.parsed, 0),
    errors: sorted(parts.reduce((t, p) => add(t, p.errors), {})),
    mutations: sorted(parts.reduce((t, p) => add(t, p.mutations), {})),
    failures,
    slowestMs: slowest.slowestMs,
    slowestIndex: slowest.slowestIndex,
    totalMs: Math.max(...parts.map((p) => p.totalMs)),
  };
}

function summary(r: FuzzReport, inputs: number, processes: number): string {
  const errors = Object.entries(r.errors).map(([code, n]) => `${code} ${n}`).join(', ');
  const failures = Object.values(r.failures).reduce((n, f) => n + f.count, 0);
  return (
    `fuzz ${r.kind}: ${r.tried} of ${inputs} inputs (seed 0x${r.seed.toString(16)}, ${processes} process${processes > 1 ? 'es' : ''}) in ${(r.totalMs / 1000).toFixed(1)} s: ` +
    `${r.parsed} parsed, errors: ${errors || 'none'}, unexpected: ${failures}; slowest call ${r.slowestMs.toFixed(1)} ms (input ${r.slowestIndex})\n` +
    `        mutations: ${Object.entries(r.mutations).map(([k, n]) => `${k} ${n}`).join(', ')}\n` +
    `        seeds: ${r.seeds.join(', ')}`
  );
}

function failureText(r: FuzzReport, prefix = ''): string {
  return Object.entries(r.failures)
    .filter(([signature]) => signature.startsWith(prefix))
    .map(
      ([signature, f]) =>
        `${f.count} × ${signature}\n` +
        f.examples
          .map((e) => `    input ${e.index}: ${e.mutation}\n      ${e.detail.split('\n').slice(0, 3).join('\n      ')}\n      replay: node -r tsx/cjs test/fuzz.test.ts ${r.kind} --only ${e.index}`)
          .join('\n'),
    )
    .join('\n');
}

if (require.main === module) {
  childMain(process.argv.slice(2));
} else {
  describe(`fuzzing with a fixed seed: ${ELF_INPUTS} ELF files and ${MANIFEST_INPUTS} manifests`, function () {
    this.timeout(WATCHDOG_MS + 30_000);
    let elf: FuzzReport;
    let manifest: FuzzReport;

    // Three children on the two cores: the ELF fuzzer, and the manifest fuzzer in two halves (it is the slower one).
    before(async () => {
      const half = MANIFEST_INPUTS / 2;
      const [e, m1, m2] = await Promise.all([runFuzzChild('elf', 0, ELF_INPUTS), runFuzzChild('manifest', 0, half), runFuzzChild('manifest', half, MANIFEST_INPUTS - half)]);
      elf = e;
      manifest = mergeReports([m1, m2]);
      console.log(`      ${summary(elf, ELF_INPUTS, 1)}\n      ${summary(manifest, MANIFEST_INPUTS, 2)}`);
    });

    it(`the ELF reader returns facts or throws E_NOT_ELF / E_BAD_ELF (naming the file and offset, with a next step) for ${ELF_INPUTS} mutated shared objects, each within ${SLOW_CALL_MS} ms`, () => {
      assert.equal(elf.tried, ELF_INPUTS);
      assert.deepEqual(Object.keys(elf.failures), [], `unexpected outcomes:\n${failureText(elf)}`);
      // Both outcomes and both codes must be reached, or the mutations are not exercising the reader.
      assert.ok(elf.parsed > ELF_INPUTS / 20, `only ${elf.parsed} inputs parsed`);
      assert.ok((elf.errors.E_BAD_ELF ?? 0) > ELF_INPUTS / 5 && (elf.errors.E_NOT_ELF ?? 0) > 100, JSON.stringify(elf.errors));
    });

    it(`the manifest reader, given ${MANIFEST_INPUTS} mutated manifests, accepts only plain names, permutation orders and safe sizes, and otherwise throws E_BAD_MANIFEST / E_CYCLE / E_DUPLICATE_SONAME, each within ${SLOW_CALL_MS} ms`, () => {
      assert.equal(manifest.tried, MANIFEST_INPUTS);
      assert.ok(manifest.parsed > MANIFEST_INPUTS / 50, `only ${manifest.parsed} manifests accepted`);
      // Refusals must come from the deep checks too (the graph: E_CYCLE), not only from the first field looked at.
      assert.ok((manifest.errors.E_BAD_MANIFEST ?? 0) > MANIFEST_INPUTS / 2 && (manifest.errors.E_CYCLE ?? 0) > 100, JSON.stringify(manifest.errors));
    });

    it('… as dlbundle.json text: no other exception (a value nested thousands deep included), no broken invariant', () => {
      const text = Object.keys(manifest.failures).filter((k) => k.startsWith(TEXT_INPUT));
      assert.deepEqual(text, [], `unexpected outcomes for text input:\n${failureText(manifest, TEXT_INPUT)}`);
    });

    it('… as an object, as fromBuffers(manifest) hands it over (NaN, BigInt, cycles, sparse arrays): no other exception, no broken invariant', () => {
      const object = Object.keys(manifest.failures).filter((k) => k.startsWith(OBJECT_INPUT));
      assert.deepEqual(object, [], `unexpected outcomes for object input:\n${failureText(manifest, OBJECT_INPUT)}`);
    });
  });

  describe(`fuzzing with a fixed seed: ${PE_INPUTS} PE files and ${MACHO_INPUTS} Mach-O files`, function () {
    this.timeout(WATCHDOG_MS + 30_000);
    const reports: Partial<Record<'pe' | 'macho', FuzzReport>> = {};

    // The real seeds come from npm (fetched once into .cache/, as the tests that read them do); then one child per reader.
    before(async function () {
      this.timeout(900_000 + WATCHDOG_MS);
      npmBinarySeedFiles();
      const [pe, macho] = await Promise.all([runFuzzChild('pe', 0, PE_INPUTS), runFuzzChild('macho', 0, MACHO_INPUTS)]);
      reports.pe = pe;
      reports.macho = macho;
      console.log(`      ${summary(pe, PE_INPUTS, 1)}\n      ${summary(macho, MACHO_INPUTS, 1)}`);
    });

    for (const [kind, inputs, code, what] of [['pe', PE_INPUTS, 'E_BAD_PE', 'DLLs and .node addons'], ['macho', MACHO_INPUTS, 'E_BAD_MACHO', 'dylibs, bundles and universal files']] as const) {
      it(`the ${kind === 'pe' ? 'PE' : 'Mach-O'} reader returns facts or throws ${code} (E_NOT_ELF / the other formats' codes through readBinary), naming the file and offset, for ${inputs} mutated ${what}, each within ${SLOW_CALL_MS} ms, the same through a Buffer and positioned reads`, () => {
        const r = reports[kind] as FuzzReport;
        assert.equal(r.tried, inputs);
        assert.deepEqual(Object.keys(r.failures), [], `unexpected outcomes:\n${failureText(r)}`);
        // Both outcomes must be common, or the mutations are not exercising the reader.
        assert.ok(r.parsed > inputs / 20, `only ${r.parsed} inputs parsed`);
        assert.ok((r.errors[code] ?? 0) > inputs / 5, JSON.stringify(r.errors));
        assert.equal(Object.keys(r.mutations).length, 8, JSON.stringify(r.mutations));
      });
    }
  });
}

/**
 * ld.so finds the dynamic section by PT_DYNAMIC's p_vaddr in the mapped
 * image; p_offset is never used. A file whose p_offset points at a decoy
 * dynamic array (naming other DT_NEEDED entries) loads normally, and a reader
 * that trusts p_offset records the decoy's list: pack then wrote a `needed`
 * without the bundled dependency, and at run time the system's copy of it
 * was mapped instead. The reader must read what ld.so reads, or refuse.
 *
 * The files are hand-built (test/elf-builder.ts) in all four formats, and one
 * is the gcc-built libdemo_app.so from build/Release with a decoy appended.
 */
import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { readElf } from '../src/formats/elf';
import { readElfFile } from '../src/formats/elf-file';
import { DlbundleError } from '../src/errors';
import { inspectFiles } from '../src/inspect';
import { pack } from '../src/pack';
import { buildElf, DT_NEEDED, patch, phdrFields, PT_INTERP, PT_LOAD, type BuiltElf } from './elf-builder';
import { runChild } from './child';
import { nativeFixture, tempDir } from './fixtures';

const FORMATS = [
  { class: 64, endian: 'little' },
  { class: 64, endian: 'big' },
  { class: 32, endian: 'little' },
  { class: 32, endian: 'big' },
] as const;

/** What `fn` threw, which must be a DlbundleError; a failure showing what it returned otherwise. */
function elfError(fn: () => unknown): DlbundleError {
  let value: unknown;
  try {
    value = fn();
  } catch (e) {
    assert.ok(e instanceof DlbundleError, `expected a DlbundleError, got ${String(e)}`);
    return e;
  }
  assert.fail(`expected E_BAD_ELF, but the call returned ${JSON.stringify(value)}`);
}

/**
 * A copy of `elf` with a decoy of its dynamic array appended, in which the
 * DT_NEEDED entry for `drop` names `instead`, and PT_DYNAMIC's p_offset moved
 * to the decoy; p_vaddr still maps the real array.
 */
function withDecoy(elf: BuiltElf, drop: string, instead: string, strings: readonly string[]): { bytes: Buffer; decoyOffset: number } {
  const entSize = 2 * elf.wordSize;
  const real = elf.dynamicOffset as number;
  const length = elf.dynamicEntries.length * entSize;
  const decoyOffset = Math.ceil(elf.bytes.length / 8) * 8;
  const bytes = Buffer.alloc(decoyOffset + length);
  elf.bytes.copy(bytes);
  elf.bytes.copy(bytes, decoyOffset, real, real + length);
  const copy: BuiltElf = { ...elf, bytes };
  const needed = elf.dynamicEntries.filter((e) => e.tag === DT_NEEDED);
  const victim = needed[strings.indexOf(drop)];
  const donor = needed[strings.indexOf(instead)];
  assert.ok(victim !== undefined && donor !== undefined);
  patch(copy).word(decoyOffset + (victim.offset - real) + elf.wordSize, donor.value);
  patch(copy).word((elf.dynamicPhdr as number) + phdrFields(elf.class).offset, decoyOffset);
  return { bytes, decoyOffset };
}

describe('PT_DYNAMIC is read at its address, as ld.so reads it', () => {
  const needed = ['libc.so.6', 'libm.so.6', 'libdep.so'];
  for (const format of FORMATS) {
    const label = `ELF${format.class} ${format.endian}-endian`;

    it(`${label}: a p_offset that points at a decoy dynamic array is E_BAD_ELF at the PT_DYNAMIC header, naming both values`, () => {
      const elf = buildElf({ ...format, soname: 'libx.so', needed });
      assert.deepEqual(readElf(elf.bytes).needed, needed);
      const { bytes, decoyOffset } = withDecoy(elf, 'libdep.so', 'libc.so.6', needed);
      const e = elfError(() => readElf(bytes, 'libx.so'));
      assert.equal(e.code, 'E_BAD_ELF', e.message);
      assert.equal(e.offset, elf.dynamicPhdr);
      const vaddr = 0x10000 + (elf.dynamicOffset as number);
      assert.match(e.message, new RegExp(`PT_DYNAMIC \\(program header \\d\\) p_offset 0x${decoyOffset.toString(16)} disagrees with its p_vaddr 0x${vaddr.toString(16)}, which PT_LOAD segment \\d maps from file offset 0x${(elf.dynamicOffset as number).toString(16)} at byte 0x${(elf.dynamicPhdr as number).toString(16)}`));
    });

    it(`${label}: a p_vaddr outside every PT_LOAD is E_BAD_ELF`, () => {
      const elf = buildElf({ ...format, needed });
      patch(elf).word((elf.dynamicPhdr as number) + phdrFields(format.class).vaddr, 0x7000000);
      const e = elfError(() => readElf(elf.bytes));
      assert.equal(e.code, 'E_BAD_ELF');
      assert.equal(e.offset, elf.dynamicPhdr);
      assert.match(e.message, /p_vaddr 0x7000000 .* is not inside the file-backed part of any PT_LOAD segment/);
    });

    it(`${label}: a second PT_LOAD whose pages cover the dynamic array from other file bytes is E_BAD_ELF`, () => {
      // The builder's PT_INTERP header becomes a PT_LOAD that ld.so would map
      // over the first one's pages there: its bytes, not the first's, would be
      // the dynamic array.
      const elf = buildElf({ ...format, needed, interp: '/lib/ld.so' });
      const pf = phdrFields(format.class);
      const at = elf.interpPhdr as number;
      patch(elf).u32(at + pf.type, PT_LOAD);
      patch(elf).word(at + pf.offset, 0);
      patch(elf).word(at + pf.vaddr, 0x10000 + (elf.dynamicOffset as number) - 8);
      patch(elf).word(at + pf.filesz, 16);
      patch(elf).word(at + pf.memsz, 16);
      const e = elfError(() => readElf(elf.bytes));
      assert.equal(e.code, 'E_BAD_ELF');
      assert.match(e.message, /mapped by both PT_LOAD segment \d and the pages of PT_LOAD segment \d, from different file offsets/);
      // Restored to PT_INTERP, the same file reads.
      patch(elf).u32(at + pf.type, PT_INTERP);
      patch(elf).word(at + pf.offset, elf.interpOffset as number);
      assert.deepEqual(readElf(elf.bytes).needed, needed);
    });
  }
});

describe('a gcc-built library whose PT_DYNAMIC p_offset points at a decoy', () => {
  let patched: string;
  const real = ['libdemo_codec.so.1', 'libdemo_core.so', 'libc.so.6'];

  before(() => {
    // libdemo_app.so with a decoy whose DT_NEEDED list has libc.so.6 where the real one has libdemo_core.so.
    const bytes = fs.readFileSync(nativeFixture('libdemo_app.so'));
    assert.deepEqual(readElf(bytes).needed, real);
    const phoff = Number(bytes.readBigUInt64LE(32));
    const phnum = bytes.readUInt16LE(56);
    let dynPhdr = -1;
    for (let i = 0; i < phnum; i++) if (bytes.readUInt32LE(phoff + i * 56) === 2) dynPhdr = phoff + i * 56;
    assert.ok(dynPhdr > 0, 'libdemo_app.so has a PT_DYNAMIC');
    const offset = Number(bytes.readBigUInt64LE(dynPhdr + 8));
    const size = Number(bytes.readBigUInt64LE(dynPhdr + 32));
    const decoy = Buffer.from(bytes.subarray(offset, offset + size));
    const neededAt: number[] = [];
    for (let at = 0; at + 16 <= decoy.length; at += 16) if (decoy.readBigUInt64LE(at) === 1n) neededAt.push(at);
    assert.equal(neededAt.length, 3);
    decoy.writeBigUInt64LE(decoy.readBigUInt64LE((neededAt[2] as number) + 8), (neededAt[1] as number) + 8);
    const decoyOffset = Math.ceil(bytes.length / 16) * 16;
    const out = Buffer.alloc(decoyOffset + decoy.length);
    bytes.copy(out);
    decoy.copy(out, decoyOffset);
    out.writeBigUInt64LE(BigInt(decoyOffset), dynPhdr + 8);
    const dir = tempDir();
    patched = path.join(dir, 'libdemo_app.so');
    fs.writeFileSync(patched, out);
    // Its dependencies beside it, under the names ld.so looks for.
    fs.symlinkSync(nativeFixture('libdemo_core.so'), path.join(dir, 'libdemo_core.so'));
    fs.symlinkSync(nativeFixture('libdemo_codec.so.1.2.3'), path.join(dir, 'libdemo_codec.so.1'));
  });

  it('ld.so loads it and maps the real DT_NEEDED (libdemo_core.so): the decoy changes nothing at run time', () => {
    const r = runChild<{ maps: string[] }>(
      `require('koffi').load(P.lib);
       return { maps: mapped().filter((p) => /libdemo_/.test(p)).map((p) => path.basename(p)).sort() };`,
      { params: { lib: patched }, env: { LD_LIBRARY_PATH: path.dirname(patched) } },
    );
    assert.deepEqual(r.maps, ['libdemo_app.so', 'libdemo_codec.so.1.2.3', 'libdemo_core.so']);
  });

  it('readElfFile and inspect refuse it with E_BAD_ELF (the old reader listed libc.so.6 in place of libdemo_core.so)', () => {
    for (const read of [() => readElfFile(patched), () => inspectFiles([patched])]) {
      const e = elfError(read);
      assert.equal(e.code, 'E_BAD_ELF', e.message);
      assert.equal(e.file, patched);
      assert.match(e.message, /PT_DYNAMIC \(program header \d+\) p_offset 0x[0-9a-f]+ disagrees with its p_vaddr/);
    }
  });

  it('pack refuses it with E_BAD_ELF and writes no manifest: the decoy\'s needed list is never recorded', () => {
    const out = path.join(tempDir(), 'bundle');
    const inputs = [patched, nativeFixture('libdemo_core.so'), nativeFixture('libdemo_codec.so.1.2.3')];
    let recorded: unknown = null;
    const e = elfError(() => {
      const r = pack(inputs, { name: 'decoy', out });
      recorded = r.variant.files.find((f) => f.name === 'libdemo_app.so')?.needed;
      return recorded;
    });
    assert.equal(e.code, 'E_BAD_ELF', `${e.message}\n(pack recorded needed ${JSON.stringify(recorded)})`);
    assert.equal(e.file, patched);
    assert.equal(fs.existsSync(path.join(out, 'dlbundle.json')), false, 'no dlbundle.json was written');
  });
});

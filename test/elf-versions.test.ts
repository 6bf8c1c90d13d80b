/**
 * The symbol versions a file needs and defines (src/formats/elf.ts readSymbolVersions),
 * and the highest GLIBC / GLIBCXX / CXXABI of them (src/versions.ts): checked
 * against binutils' readelf -V on every shared object of the system, on
 * hand-built ELF32 / big-endian files, and on damaged copies.
 */
import { strict as assert } from 'node:assert';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { elfHash, MAX_VERSION_ENTRIES, versionHashes, readSymbolVersions, type ElfByteSource, type SymbolVersions } from '../src/formats/elf';
import { fdSource, readSymbolVersionsFile } from '../src/formats/elf-file';
import { DlbundleError } from '../src/errors';
import { compareVersions, definedVersions, parseVersionName, requiredVersions } from '../src/versions';
import { buildElf, dynamicEntry, DT_VERDEF, DT_VERNEED, patch, type ElfSpec } from './elf-builder';
import { nativeFixture, prng, tempDir } from './fixtures';

const SYSTEM_LIBS = '/usr/lib/x86_64-linux-gnu';

/** The version tables as readelf -V prints them, for a batch of files. */
function readelfVersions(files: readonly string[]): Map<string, SymbolVersions> {
  const out = new Map<string, SymbolVersions>();
  for (let i = 0; i < files.length; i += 200) {
    const chunk = files.slice(i, i + 200);
    const args = chunk.length === 1 ? [...chunk, ...chunk] : chunk;
    const text = execFileSync('readelf', ['-V', '-W', ...args], { encoding: 'utf8', maxBuffer: 512 << 20 });
    for (const block of text.split(/^File: /m).slice(1)) {
      const file = block.slice(0, block.indexOf('\n'));
      const needed: { file: string; versions: { name: string; flags: number; index: number }[] }[] = [];
      const defined: { name: string; flags: number; index: number; parents: string[] }[] = [];
      let section: 'needs' | 'definitions' | null = null;
      for (const line of block.split('\n')) {
        if (line.startsWith('Version needs section')) section = 'needs';
        else if (line.startsWith('Version definition section')) section = 'definitions';
        else if (line.startsWith('Version symbols section')) section = null;
        let m: RegExpExecArray | null;
        if (section === 'needs' && (m = /^ {2}[0-9a-fx]+: Version: \d+ {2}File: (.*) {2}Cnt: \d+$/.exec(line)) !== null) needed.push({ file: m[1] as string, versions: [] });
        else if (section === 'needs' && (m = /^ {2}0x[0-9a-f]+: {3}Name: (.*) {2}Flags: (.*) {2}Version: (\d+)$/.exec(line)) !== null) {
          needed.at(-1)?.versions.push({ name: m[1] as string, flags: flagBits(m[2] as string), index: Number(m[3]) });
        } else if (section === 'definitions' && (m = /^ {2}[0-9a-fx]+: Rev: \d+ {2}Flags: (.*) {2}Index: (\d+) {2}Cnt: \d+ {2}Name: (.*)$/.exec(line)) !== null) {
          defined.push({ name: m[3] as string, flags: flagBits(m[1] as string), index: Number(m[2]), parents: [] });
        } else if (section === 'definitions' && (m = /^ {2}0x[0-9a-f]+: Parent \d+: (.*)$/.exec(line)) !== null) defined.at(-1)?.parents.push(m[1] as string);
      }
      out.set(file, { needed, defined });
    }
  }
  return out;
}

function flagBits(text: string): number {
  const bits: Record<string, number> = { none: 0, BASE: 1, WEAK: 2, INFO: 4 };
  return text.split(' | ').reduce((n, f) => n | (bits[f.trim()] ?? 0x100), 0);
}

function sharedObjects(root: string): string[] {
  const out: string[] = [];
  const walk = (dir: string): void => {
    for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
      const p = path.join(dir, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.isFile() && /\.so(\.|$)/.test(e.name)) out.push(p);
    }
  };
  walk(root);
  return out.sort();
}

function isElfDyn(p: string): boolean {
  const b = Buffer.alloc(18);
  const fd = fs.openSync(p, 'r');
  try {
    return fs.readSync(fd, b, 0, 18, 0) === 18 && b.toString('latin1', 0, 4) === '\x7fELF' && b.readUInt16LE(16) === 3;
  } finally {
    fs.closeSync(fd);
  }
}

function thrown(fn: () => unknown): DlbundleError {
  try {
    fn();
  } catch (e) {
    assert.ok(e instanceof DlbundleError, String(e));
    return e;
  }
  assert.fail('expected an error');
}

describe('readSymbolVersions agrees with readelf -V', function () {
  this.timeout(180_000);

  it(`on every shared object under ${SYSTEM_LIBS} and on the crafted too-new libraries`, () => {
    const files = [...sharedObjects(SYSTEM_LIBS).filter(isElfDyn), ...['libtoo_new_glibc.so', 'libtoo_new_cxx.so', 'libtoo_new_libc_stub.so', 'libtoo_new_cxx_stub.so'].map(nativeFixture)];
    assert.ok(files.length >= 100, `expected a real sweep, found ${files.length} files`);
    const reference = readelfVersions(files);
    const differing: string[] = [];
    let withNeeds = 0;
    let withDefinitions = 0;
    for (const file of files) {
      const ours = readSymbolVersionsFile(file);
      if (ours.needed.length > 0) withNeeds++;
      if (ours.defined.length > 0) withDefinitions++;
      try {
        assert.deepEqual(ours, reference.get(file));
      } catch {
        differing.push(`${file}: ours ${JSON.stringify(ours).slice(0, 300)} readelf ${JSON.stringify(reference.get(file)).slice(0, 300)}`);
      }
    }
    console.log(`      compared ${files.length} files with readelf -V (${withNeeds} need versions, ${withDefinitions} define some): ${differing.length} differed`);
    assert.ok(withNeeds > files.length / 2 && withDefinitions >= 10, 'the sweep saw real version tables');
    assert.deepEqual(differing, []);
  });

  it('reads the same from a copy without section headers (found through the dynamic section, as ld.so does)', () => {
    for (const name of ['libtoo_new_glibc.so', 'libtoo_new_cxx_stub.so']) {
      const bytes = fs.readFileSync(nativeFixture(name));
      const stripped = Buffer.from(bytes);
      stripped.writeBigUInt64LE(0n, 40); // e_shoff
      stripped.writeUInt16LE(0, 60); // e_shnum
      stripped.writeUInt16LE(0, 62); // e_shstrndx
      assert.deepEqual(readSymbolVersions(stripped), readSymbolVersions(bytes));
      assert.ok(readSymbolVersions(stripped).needed.length + readSymbolVersions(stripped).defined.length > 0);
    }
  });

  it("reads libc.so.6's definitions in a few positioned reads (what a start pays once)", () => {
    const libc = path.join(SYSTEM_LIBS, 'libc.so.6');
    const fd = fs.openSync(libc, 'r');
    try {
      const src = fdSource(fd, libc, fs.fstatSync(fd).size);
      let reads = 0;
      let bytes = 0;
      const counting: ElfByteSource = { size: src.size, read: (o, l) => (reads++, (bytes += l), src.read(o, l)) };
      const versions = readSymbolVersions(counting, libc);
      assert.ok(versions.defined.length > 30);
      assert.ok(reads <= 12 && bytes <= 32 * 1024, `${reads} reads, ${bytes} bytes of a ${src.size}-byte file`);
    } finally {
      fs.closeSync(fd);
    }
  });
});

const NEEDS = [
  { file: 'libc.so.6', versions: [{ name: 'GLIBC_2.2.5', index: 3 }, { name: 'GLIBC_2.34', index: 2 }, { name: 'GLIBC_2.38', flags: 2, index: 4 }] },
  { file: 'libstdc++.so.6', versions: [{ name: 'GLIBCXX_3.4.9', index: 5 }, { name: 'GLIBCXX_3.4.30', index: 6 }, { name: 'CXXABI_1.3.13', index: 7 }] },
];
const DEFS = [{ name: 'libx.so.1', flags: 1, index: 1 }, { name: 'X_1.0', index: 2 }, { name: 'X_1.1', index: 3, parents: ['X_1.0'] }];

describe('readSymbolVersions on hand-built ELF files', () => {
  for (const [cls, endian] of [[32, 'little'], [32, 'big'], [64, 'big'], [64, 'little']] as const) {
    const spec: ElfSpec = { class: cls, endian, soname: 'libx.so.1', needed: ['libc.so.6', 'libstdc++.so.6'], versionNeeds: NEEDS, versionDefinitions: DEFS };
    it(`ELF${cls} ${endian}-endian: every need and definition, with flags, indices and parents`, () => {
      const v = readSymbolVersions(buildElf(spec).bytes);
      assert.deepEqual(v, {
        needed: NEEDS.map((n) => ({ file: n.file, versions: n.versions.map((x) => ({ name: x.name, flags: 'flags' in x ? x.flags : 0, index: x.index })) })),
        defined: DEFS.map((d) => ({ name: d.name, flags: d.flags ?? 0, index: d.index, parents: d.parents ?? [] })),
      });
      // Weak needs (GLIBC_2.38 here) do not count.
      assert.deepEqual(requiredVersions(v.needed), { GLIBC: '2.34', GLIBCXX: '3.4.30', CXXABI: '1.3.13' });
    });
    it(`ELF${cls} ${endian}-endian with section headers: readelf -V reads the same`, () => {
      const file = path.join(tempDir(), 'libx.so.1');
      fs.writeFileSync(file, buildElf({ ...spec, sections: true }).bytes);
      assert.deepEqual(readSymbolVersionsFile(file), readelfVersions([file]).get(file));
    });
  }

  it('a file without version tables, or without a dynamic section, has empty lists', () => {
    assert.deepEqual(readSymbolVersions(buildElf({ class: 64, endian: 'little', needed: ['libc.so.6'] }).bytes), { needed: [], defined: [] });
    assert.deepEqual(readSymbolVersions(buildElf({ class: 32, endian: 'big', dynamic: false }).bytes), { needed: [], defined: [] });
  });
});

describe('versionHashes: the look-up a start makes (by hash, as ld.so looks first)', () => {
  it('holds the hash of every definition readelf lists in libc.so.6 and libstdc++.so.6, and not those of versions they lack', () => {
    for (const file of [path.join(SYSTEM_LIBS, 'libc.so.6'), path.join(SYSTEM_LIBS, 'libstdc++.so.6')]) {
      const hashes = versionHashes(fs.readFileSync(file));
      const listed = readelfVersions([file]).get(file)?.defined.map((d) => d.name) ?? [];
      assert.ok(listed.length > 30);
      assert.equal(hashes.size, new Set(listed.map(elfHash)).size);
      for (const name of listed) assert.ok(hashes.has(elfHash(name)), name);
      for (const name of ['GLIBC_2.99', 'GLIBCXX_3.4.99', 'CXXABI_1.3.99', 'GLIBC_2.2']) assert.ok(!hashes.has(elfHash(name)), name);
    }
    assert.ok(versionHashes(fs.readFileSync(nativeFixture('libtoo_new_libc_stub.so'))).has(elfHash('GLIBC_2.99')));
  });

  it('reads the hashes the file records (vd_hash), which are the System V ELF hashes of the names', () => {
    assert.equal(elfHash('GLIBC_2.2.5'), 0x09691a75);
    assert.equal(elfHash(''), 0);
    for (const endian of ['little', 'big'] as const) {
      const elf = buildElf({ class: 32, endian, versionDefinitions: DEFS });
      assert.deepEqual([...versionHashes(elf.bytes)], DEFS.map((d) => elfHash(d.name)));
      // Entry 2 (X_1.1) is at verdef + 20 + 8 (entry 0 and its name) + 20 + 8 (entry 1 and its name); vd_hash at +8.
      patch(elf).u32((elf.verdefOffset as number) + 56 + 8, 12345);
      assert.ok(versionHashes(elf.bytes).has(12345) && !versionHashes(elf.bytes).has(elfHash('X_1.1')));
    }
  });
});

describe('readSymbolVersions refuses damaged version tables with the offset of the damage', () => {
  const base = (): ReturnType<typeof buildElf> => buildElf({ class: 64, endian: 'little', needed: ['libc.so.6'], versionNeeds: NEEDS, versionDefinitions: DEFS });

  it('a vn_version other than 1 (ld.so refuses it too) is E_BAD_ELF at the entry', () => {
    const elf = base();
    patch(elf).u16(elf.verneedOffset as number, 2);
    const e = thrown(() => readSymbolVersions(elf.bytes, 'x.so'));
    assert.equal(e.code, 'E_BAD_ELF');
    assert.equal(e.offset, elf.verneedOffset);
    assert.match(e.message, /version-needed entry 0 has vn_version 2, not 1/);
  });

  it('a vd_version other than 1 is E_BAD_ELF at the definition', () => {
    const elf = base();
    patch(elf).u16(elf.verdefOffset as number, 0);
    assert.equal(thrown(() => readSymbolVersions(elf.bytes)).offset, elf.verdefOffset);
  });

  it('a vn_next past the segment is E_BAD_ELF at the vn_next field', () => {
    const elf = base();
    patch(elf).u32((elf.verneedOffset as number) + 12, 0x7fff_0000);
    const e = thrown(() => readSymbolVersions(elf.bytes));
    assert.equal(e.offset, (elf.verneedOffset as number) + 12);
    assert.match(e.message, /version-needed entry 1 .* is not inside PT_LOAD segment/);
  });

  it('a vna_name outside the string table is E_BAD_ELF at that field', () => {
    const elf = base();
    const at = (elf.verneedOffset as number) + 16 + 8;
    patch(elf).u32(at, 0xffff_fff0);
    const e = thrown(() => readSymbolVersions(elf.bytes));
    assert.equal(e.offset, at);
    assert.match(e.message, /vna_name 0xfffffff0 is outside the \d+-byte string table/);
  });

  it('a version name not ended within 4096 bytes is E_BAD_ELF at its vna_name field (thousands of them would each read to the table\'s end)', () => {
    const elf = buildElf({ class: 64, endian: 'little', needed: ['libc.so.6'], versionNeeds: [{ file: 'libc.so.6', versions: [{ name: `GLIBC_${'9'.repeat(5000)}`, index: 2 }] }] });
    const e = thrown(() => readSymbolVersions(elf.bytes));
    assert.equal(e.offset, (elf.verneedOffset as number) + 16 + 8);
    assert.match(e.message, /vna_name 0x[0-9a-f]+ names a string not ended within 4096 bytes/);
  });

  it('a DT_VERNEED or DT_VERDEF address outside every PT_LOAD is E_BAD_ELF at the dynamic entry', () => {
    for (const tag of [DT_VERNEED, DT_VERDEF]) {
      const elf = base();
      const entry = dynamicEntry(elf, tag);
      patch(elf).word(entry.offset + elf.wordSize, 0x7000_0000);
      assert.equal(thrown(() => readSymbolVersions(elf.bytes)).offset, entry.offset);
    }
  });

  it(`a chain of more than ${MAX_VERSION_ENTRIES} entries (next offsets of 1 can pack millions in a few megabytes) is refused, not walked`, () => {
    const many = Array.from({ length: MAX_VERSION_ENTRIES + 8 }, (_, i) => ({ name: `V_${i}`, index: i + 2 }));
    const elf = buildElf({ class: 64, endian: 'little', needed: ['liby.so'], versionNeeds: [{ file: 'liby.so', versions: many }] });
    const e = thrown(() => readSymbolVersions(elf.bytes));
    assert.equal(e.code, 'E_BAD_ELF');
    assert.match(e.message, new RegExp(`more than ${MAX_VERSION_ENTRIES} entries`));
  });

  it('random damage to the version tables never throws anything but E_NOT_ELF / E_BAD_ELF, and reads the same through positioned reads', () => {
    const rand = prng(0x7e5);
    const original = base();
    const lo = original.verneedOffset as number;
    const hi = (original.dynamicOffset as number) + original.dynamicEntries.length * 16;
    for (let i = 0; i < 3000; i++) {
      const bytes = Buffer.from(original.bytes);
      for (let k = 0; k < 1 + Math.floor(rand() * 4); k++) bytes[lo + Math.floor(rand() * (hi - lo))] = Math.floor(rand() * 256);
      const outcome = (read: () => SymbolVersions): string => {
        try {
          return JSON.stringify(read());
        } catch (e) {
          assert.ok(e instanceof DlbundleError && (e.code === 'E_BAD_ELF' || e.code === 'E_NOT_ELF'), String(e));
          return `${e.code}@${String(e.offset)}`;
        }
      };
      const viaReads: ElfByteSource = { size: bytes.length, read: (o, l) => Buffer.from(bytes.subarray(o, o + l)) };
      assert.equal(outcome(() => readSymbolVersions(viaReads)), outcome(() => readSymbolVersions(bytes)));
      try {
        assert.ok(versionHashes(bytes) instanceof Set);
      } catch (e) {
        assert.ok(e instanceof DlbundleError && e.code === 'E_BAD_ELF', String(e));
      }
    }
  });
});

describe('version families', () => {
  it('compare numerically per component: 2.38 > 2.4, 3.4.30 > 3.4.9, 3.4 < 3.4.1 (shuffled input sorts the same)', () => {
    const sorted = ['2.2.5', '2.3', '2.4', '2.17', '2.34', '2.38'];
    const rand = prng(7);
    for (let round = 0; round < 20; round++) {
      const shuffled = [...sorted].sort(() => rand() - 0.5);
      assert.deepEqual(shuffled.sort(compareVersions), sorted);
    }
    assert.ok(compareVersions('3.4.30', '3.4.9') > 0);
    assert.ok(compareVersions('3.4', '3.4.1') < 0);
    assert.equal(compareVersions('1.3.13', '1.3.13'), 0);
  });

  it('only GLIBC, GLIBCXX and CXXABI count; GLIBC_PRIVATE and other libraries\' versions do not; GLIBC_ABI_DT_RELR means glibc 2.36', () => {
    assert.deepEqual(parseVersionName('GLIBC_2.38'), { family: 'GLIBC', version: '2.38' });
    assert.deepEqual(parseVersionName('GLIBCXX_3.4.32'), { family: 'GLIBCXX', version: '3.4.32' });
    assert.deepEqual(parseVersionName('CXXABI_1.3.15'), { family: 'CXXABI', version: '1.3.15' });
    assert.deepEqual(parseVersionName('GLIBC_ABI_DT_RELR'), { family: 'GLIBC', version: '2.36' });
    for (const other of ['GLIBC_PRIVATE', 'GCC_3.0', 'CXXABI_TM_1', 'GLIBCXX_LDBL_3.4', 'OPENSSL_3.0.0', 'Qt_6']) assert.equal(parseVersionName(other), null, other);
  });

  it('the highest of each family a file needs, and the highest a library defines, from real files', () => {
    const libc = readSymbolVersionsFile(path.join(SYSTEM_LIBS, 'libc.so.6'));
    const glibc = /glibc (\d+\.\d+)/.exec(execFileSync('getconf', ['GNU_LIBC_VERSION'], { encoding: 'utf8' }))?.[1];
    assert.deepEqual(definedVersions(libc.defined), { GLIBC: glibc });
    assert.deepEqual(requiredVersions(readSymbolVersionsFile(nativeFixture('libtoo_new_cxx.so')).needed), { GLIBCXX: '3.4.99', CXXABI: '1.3.99' });
  });
});

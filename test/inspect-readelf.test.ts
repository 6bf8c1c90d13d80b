/**
 * `dlbundle inspect --json` against binutils' readelf (-h -d -l -V: the
 * highest GLIBC / GLIBCXX / CXXABI needed too) on every shared object
 * installed under /usr/lib: the two readers were written independently, so
 * agreement on a thousand real files is strong evidence for both.
 */
import { strict as assert } from 'node:assert';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { REPO } from './fixtures';

interface Facts {
  file: string;
  format: 'elf';
  class: number;
  machine: string;
  soname: string | null;
  needed: string[];
  runpath: string[];
  rpath: string[];
  interp: string | null;
  requiresVersions: Record<string, string>;
}

// readelf's long machine names for the machines found on Debian systems.
const READELF_MACHINES: Readonly<Record<string, string>> = {
  'Advanced Micro Devices X86-64': 'x86_64',
  'Intel 80386': 'i386',
  AArch64: 'aarch64',
  ARM: 'arm',
};

function sharedObjectsUnder(root: string): string[] {
  const out: string[] = [];
  const walk = (dir: string): void => {
    for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
      const p = path.join(dir, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.isFile() && /\.so(\.|$)/.test(e.name) && startsWithElfMagic(p)) out.push(p);
    }
  };
  walk(root);
  return out.sort();
}

function startsWithElfMagic(p: string): boolean {
  const fd = fs.openSync(p, 'r');
  try {
    const b = Buffer.alloc(4);
    return fs.readSync(fd, b, 0, 4, 0) === 4 && b.toString('latin1') === '\x7fELF';
  } finally {
    fs.closeSync(fd);
  }
}

function readelfFacts(files: readonly string[]): Map<string, Facts & { type: string }> {
  const result = new Map<string, Facts & { type: string }>();
  for (let i = 0; i < files.length; i += 200) {
    // Two or more files make readelf print a "File:" line before each one.
    const chunk = files.slice(i, i + 200);
    const args = chunk.length === 1 ? [...chunk, ...chunk] : chunk;
    const text = execFileSync('readelf', ['-h', '-d', '-l', '-V', '-W', ...args], { encoding: 'utf8', maxBuffer: 512 << 20 });
    for (const block of text.split(/^File: /m).slice(1)) {
      const file = block.slice(0, block.indexOf('\n'));
      const one = (re: RegExp): string | null => re.exec(block)?.[1] ?? null;
      const all = (re: RegExp): string[] => [...block.matchAll(re)].map((m) => m[1] as string);
      const machineText = one(/^\s*Machine:\s+(.+?)\s*$/m) ?? '';
      result.set(file, {
        file,
        format: 'elf',
        type: one(/^\s*Type:\s+(\w+)/m) ?? '',
        class: Number(one(/^\s*Class:\s+ELF(32|64)/m)),
        machine: READELF_MACHINES[machineText] ?? `unmapped readelf machine ${machineText}`,
        soname: one(/\(SONAME\)\s+Library soname: \[(.*)\]$/m),
        needed: all(/\(NEEDED\)\s+Shared library: \[(.*)\]$/gm),
        runpath: all(/\(RUNPATH\)\s+Library runpath: \[(.*)\]$/gm).flatMap((s) => s.split(':')),
        rpath: all(/\(RPATH\)\s+Library rpath: \[(.*)\]$/gm).flatMap((s) => s.split(':')),
        interp: one(/\[Requesting program interpreter: (.*)\]$/m),
        requiresVersions: highestNeeded(block),
      });
    }
  }
  return result;
}

// The highest GLIBC_x.y, GLIBCXX_x.y.z and CXXABI_x.y in readelf's "Version
// needs section", weak needs left out (ld.so tolerates their absence);
// GLIBC_ABI_DT_RELR is glibc 2.36's (the release that added it).
function highestNeeded(block: string): Record<string, string> {
  const start = block.indexOf('Version needs section');
  const needs = start < 0 ? '' : block.slice(start);
  const best: Record<string, string> = {};
  const newer = (a: string, b: string): boolean => {
    const x = a.split('.').map(Number);
    const y = b.split('.').map(Number);
    for (let i = 0; i < Math.max(x.length, y.length); i++) if ((x[i] ?? -1) !== (y[i] ?? -1)) return (x[i] ?? -1) > (y[i] ?? -1);
    return false;
  };
  for (const m of needs.matchAll(/Name: (\S+) {2}Flags: (.*?) {2}Version: \d+$/gm)) {
    if ((m[2] as string).includes('WEAK')) continue;
    const name = m[1] as string;
    const v = name === 'GLIBC_ABI_DT_RELR' ? ['GLIBC', '2.36'] : /^(GLIBC|GLIBCXX|CXXABI)_([0-9.]+)$/.exec(name)?.slice(1);
    if (v === undefined) continue;
    const [family, version] = v as [string, string];
    if (best[family] === undefined || newer(version, best[family] as string)) best[family] = version;
  }
  return Object.fromEntries(['GLIBC', 'GLIBCXX', 'CXXABI'].filter((f) => best[f] !== undefined).map((f) => [f, best[f] as string]));
}

describe('inspect --json agrees with readelf', function () {
  this.timeout(120_000);

  for (const root of ['/usr/lib/x86_64-linux-gnu', '/usr/lib']) {
    it(`on every shared object under ${root}`, function () {
      if (!fs.existsSync(root)) this.skip();
      const candidates = sharedObjectsUnder(root);
      const reference = readelfFacts(candidates);
      const files = candidates.filter((f) => reference.get(f)?.type === 'DYN');
      assert.ok(files.length >= 100, `expected a real sweep, found only ${files.length} shared objects`);

      const json = execFileSync(process.execPath, [path.join(REPO, 'dist', 'cli.js'), 'inspect', '--json', ...files], { encoding: 'utf8', maxBuffer: 256 << 20 });
      const ours = JSON.parse(json) as Facts[];
      assert.deepEqual(ours.map((o) => o.file), files, 'one object per file, in argument order');

      const differing: string[] = [];
      for (const o of ours) {
        assert.deepEqual(Object.keys(o), ['file', 'format', 'class', 'machine', 'soname', 'needed', 'runpath', 'rpath', 'interp', 'requiresVersions']);
        const { type: _type, ...expected } = reference.get(o.file) as Facts & { type: string };
        try {
          assert.deepEqual(o, expected);
        } catch {
          differing.push(`${o.file}: ours ${JSON.stringify(o)} readelf ${JSON.stringify(expected)}`);
        }
      }
      console.log(`      compared ${ours.length} shared objects under ${root} with readelf: ${differing.length} differed`);
      assert.deepEqual(differing, []);
    });
  }
});

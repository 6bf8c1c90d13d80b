/**
 * Bad inputs through the public paths — pack(), and openBundle() in fresh
 * child processes wherever something would be loaded. Each one must end in a
 * DlbundleError with a stable `code`, a message that names the file involved,
 * and a last line that says what to do next (errors.ts builds every message as
 * `${what}\n${next}`).
 *
 * The foreign-architecture cases use a real aarch64 library: libm.so.6 of
 * Debian's libc6-arm64-cross, fetched with `apt-get download` and unpacked
 * with `dpkg -x` into .cache/foreign-arch/ by scripts/fetch-foreign-arch.js.
 * If apt-get cannot download it, that before() hook throws and those tests fail.
 *
 * The last three tests are regressions for bugs test/fuzz.test.ts found in
 * src/manifest.ts; their comments say what happened at commit 508aa51.
 */
import { strict as assert } from 'node:assert';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { readElfFile } from '../src/formats/elf-file';
import { DlbundleError, type DlbundleErrorCode } from '../src/errors';
import { parseManifest, variantDigest } from '../src/manifest';
import { pack } from '../src/pack';
import { fromBuffers } from '../src/sources/buffers';
import { fromDirectory } from '../src/sources/directory';
import { runChild, type Caught, type ErrorFacts } from './child';
import { nativeFixture, REPO, tempDir } from './fixtures';

const KEY = 'linux-x64-gnu';

interface ForeignArch {
  readonly lib: string;
  readonly machine: string;
  readonly package: string;
  readonly version: string;
}

interface FetchModule {
  fetchForeignArch(options?: { readonly log?: (line: string) => void }): ForeignArch;
}

/** The shape every refusal must have; `ErrorFacts` from a child, or a DlbundleError of this process. */
type Refusal = Pick<ErrorFacts, 'code' | 'file' | 'message'> & { readonly name?: string };

// The last line is the next step; it must tell the user to do something.
const ADVICE = /\b(pass|rebuild|re-download|pack|repack|regenerate|ship|install|add|load|bundle|relink|check|use|run|set|point|remove|rename|upgrade)\b/i;

/**
 * Asserts the three parts of a good refusal: the code, the file named in the
 * message, and a separate last line with advice. Returns the message's lines.
 */
function assertExplained(e: Refusal, code: DlbundleErrorCode, file: string): { what: string; next: string } {
  assert.equal(e.name, 'DlbundleError', `expected a DlbundleError ${code}, got ${String(e.name)}: ${e.message}`);
  assert.equal(e.code, code, `expected ${code}, got ${String(e.code)}: ${e.message}`);
  assert.ok(e.message.includes(file), `the message does not name ${JSON.stringify(file)}:\n${e.message}`);
  const lines = e.message.split('\n');
  const what = lines[0] ?? '';
  const next = lines[lines.length - 1] ?? '';
  assert.ok(lines.length >= 2 && what.trim() !== '' && next.trim() !== '', `the message has no separate next step:\n${e.message}`);
  assert.match(next, ADVICE, `the last line does not say what to do: ${JSON.stringify(next)}`);
  return { what, next };
}

/** Runs `fn` in this process and returns the DlbundleError it throws. */
function refusal(fn: () => unknown): DlbundleError {
  try {
    fn();
  } catch (e) {
    if (e instanceof DlbundleError) return e;
    assert.fail(`expected a DlbundleError, got ${e instanceof Error ? `${e.name}: ${e.message}` : String(e)}`);
  }
  assert.fail('expected a DlbundleError, but nothing was thrown');
}

function errorOf<T>(c: Caught<T>): ErrorFacts {
  if (c.ok) assert.fail(`expected an error, got ${JSON.stringify(c.value)}`);
  return c.error;
}

/** Packs `files` (paths) into a fresh bundle directory named "demo". */
function packed(files: readonly string[], target?: string): string {
  const out = path.join(tempDir(), 'bundle');
  pack(files, target === undefined ? { name: 'demo', out } : { name: 'demo', out, target });
  return out;
}

interface ManifestJson {
  name: string;
  variants: Record<string, { digest: string; files: { name: string; soname: string | null; size: unknown; xxh64: string; [k: string]: unknown }[]; order: string[]; external: string[] }>;
}

function readManifestJson(bundle: string): ManifestJson {
  return JSON.parse(fs.readFileSync(path.join(bundle, 'dlbundle.json'), 'utf8')) as ManifestJson;
}

function writeManifestJson(bundle: string, m: ManifestJson | string): void {
  fs.writeFileSync(path.join(bundle, 'dlbundle.json'), typeof m === 'string' ? m : JSON.stringify(m, null, 2));
}

function variantOf(m: ManifestJson, key = KEY): ManifestJson['variants'][string] {
  const v = m.variants[key];
  assert.ok(v, `no variant ${key}`);
  return v;
}

/** Nothing was published in a cache root: no `demo-<digest>` directory and no staging leftovers. */
function assertNothingPublished(cacheEntries: readonly string[]): void {
  assert.deepEqual(cacheEntries.filter((e) => e.startsWith('demo-') || e.startsWith('.staging')), [], `the cache root holds ${JSON.stringify(cacheEntries)}`);
}

// The usual child snippet: touch one symbol of one library, report what happened and what got mapped.
const TOUCH = `
  const bundle = dl.openBundle({ source: dl.fromDirectory(P.bundle), cacheDir: P.cache });
  const lib = bundle.library(P.library, P.symbols);
  const result = caught(() => lib[P.call](...P.args));
  return { result, maps: mapped(), demo: demoMapped(), cache: entries(P.cache) };
`;

interface Touched {
  readonly result: Caught<unknown>;
  /** Every mapped file of the child. */
  readonly maps: string[];
  readonly demo: string[];
  readonly cache: string[];
}

function touch(bundle: string, library: string, symbols: Record<string, string>, call: string, args: readonly unknown[] = []): Touched & { cacheDir: string } {
  const cacheDir = path.join(tempDir(), 'cache');
  const r = runChild<Touched>(TOUCH, { params: { bundle, cache: cacheDir, library, symbols, call, args } });
  return { ...r, cacheDir };
}

describe('bad inputs: a stable code, the file named, and what to do next', () => {
  describe('when packing', () => {
    it('a text file named libfoo.so: E_NOT_ELF naming it; nothing written', () => {
      const txt = path.join(tempDir(), 'libfoo.so');
      fs.writeFileSync(txt, '/* GNU ld script */\nINPUT(-lfoo_real)\n');
      const out = path.join(tempDir(), 'bundle');
      const e = refusal(() => pack([nativeFixture('libdemo_core.so'), txt], { name: 'demo', out }));
      assertExplained(e, 'E_NOT_ELF', 'libfoo.so');
      assert.equal(e.file, txt);
      assert.deepEqual(fs.existsSync(out) ? fs.readdirSync(out) : [], [], 'no manifest, no variant directory, no staging leftovers');
    });

    it('the first 100 bytes of libdemo_core.so: E_BAD_ELF naming it and the byte offset; nothing written', () => {
      const cut = path.join(tempDir(), 'libdemo_core.so');
      fs.writeFileSync(cut, fs.readFileSync(nativeFixture('libdemo_core.so')).subarray(0, 100));
      const out = path.join(tempDir(), 'bundle');
      const e = refusal(() => pack([cut], { name: 'demo', out }));
      const { what } = assertExplained(e, 'E_BAD_ELF', 'libdemo_core.so');
      assert.equal(e.file, cut);
      assert.equal(typeof e.offset, 'number');
      assert.match(what, /at byte 0x[0-9a-f]+/);
      assert.deepEqual(fs.existsSync(out) ? fs.readdirSync(out) : [], []);
    });

    it('two files with one soname (libdemo_core.so and a renamed copy): E_DUPLICATE_SONAME naming both and the soname', () => {
      const copy = path.join(tempDir(), 'libdemo_core_copy.so');
      fs.copyFileSync(nativeFixture('libdemo_core.so'), copy);
      const e = refusal(() => pack([nativeFixture('libdemo_core.so'), copy], { name: 'demo', out: path.join(tempDir(), 'bundle') }));
      const { what } = assertExplained(e, 'E_DUPLICATE_SONAME', 'libdemo_core_copy.so');
      assert.match(what, /"libdemo_core\.so" and "libdemo_core_copy\.so" both provide "libdemo_core\.so"/);
      assert.equal(e.dependency, 'libdemo_core.so');
    });

    it('two libraries built with gcc that need each other (liba.so ↔ libb.so): E_CYCLE naming the cycle', () => {
      const dir = tempDir();
      fs.writeFileSync(path.join(dir, 'a.c'), 'int b_value(void);\nint a_value(void) { return 1; }\nint a_calls_b(void) { return b_value() + 1; }\n');
      fs.writeFileSync(path.join(dir, 'b.c'), 'int a_value(void);\nint b_value(void) { return 2; }\nint b_calls_a(void) { return a_value() + 2; }\n');
      const gcc = (out: string, src: string, needs: string | null): void => {
        const link = needs === null ? [] : ['-L', dir, '-Wl,--no-as-needed', `-l:${needs}`];
        execFileSync('gcc', ['-shared', '-fPIC', '-o', path.join(dir, out), `-Wl,-soname,${out}`, path.join(dir, src), ...link], { stdio: 'pipe' });
      };
      // libb.so first without its need (so that liba.so can link against it), then again needing liba.so.
      gcc('libb.so', 'b.c', null);
      gcc('liba.so', 'a.c', 'libb.so');
      gcc('libb.so', 'b.c', 'liba.so');
      assert.ok(readElfFile(path.join(dir, 'liba.so')).needed.includes('libb.so'), 'liba.so needs libb.so');
      assert.ok(readElfFile(path.join(dir, 'libb.so')).needed.includes('liba.so'), 'libb.so needs liba.so');

      const out = path.join(tempDir(), 'bundle');
      const e = refusal(() => pack([path.join(dir, 'liba.so'), path.join(dir, 'libb.so')], { name: 'cycle', out }));
      const { what } = assertExplained(e, 'E_CYCLE', 'liba.so');
      assert.match(what, /liba\.so → libb\.so → liba\.so/);
      assert.deepEqual(fs.existsSync(out) ? fs.readdirSync(out) : [], []);
    });
  });

  describe('a library built for another machine (aarch64 libm.so.6 from Debian)', () => {
    let foreign: ForeignArch;

    before(function () {
      this.timeout(120_000);
      const mod = require(path.join(REPO, 'scripts', 'fetch-foreign-arch.js')) as FetchModule;
      foreign = mod.fetchForeignArch();
      assert.equal(readElfFile(foreign.lib).machine, 'aarch64');
    });

    it('packed for this machine (the default target): E_WRONG_ARCH naming it, aarch64 and x86_64', () => {
      const e = refusal(() => pack([foreign.lib], { name: 'demo', out: path.join(tempDir(), 'bundle') }));
      const { what } = assertExplained(e, 'E_WRONG_ARCH', 'libm.so.6');
      assert.equal(e.file, foreign.lib);
      assert.match(what, /aarch64.*x86_64/);
    });

    it('packed for linux-arm64-gnu, then relabelled linux-x64-gnu by hand: E_WRONG_ARCH from the check before dlopen; nothing of it is mapped', () => {
      const bundle = packed([foreign.lib], 'linux-arm64-gnu');
      // The digest covers names, sizes and hashes, not the variant key: only the check of each file's machine can catch this.
      const m = readManifestJson(bundle);
      m.variants = { [KEY]: variantOf(m, 'linux-arm64-gnu') };
      writeManifestJson(bundle, m);
      fs.renameSync(path.join(bundle, 'linux-arm64-gnu'), path.join(bundle, KEY));

      const r = touch(bundle, 'libm.so.6', { cos: 'double cos(double x)' }, 'cos', [0]);
      const e = errorOf(r.result);
      const { what } = assertExplained(e, 'E_WRONG_ARCH', 'libm.so.6');
      assert.equal(e.file, 'libm.so.6');
      // The pre-load check's words, not a dlopen failure translated afterwards.
      assert.match(what, /"libm\.so\.6" is built for aarch64, but this process runs on x86_64/);
      assert.doesNotMatch(e.message, /dlopen|wrong ELF class|ELF file's machine/);
      const foreignMaps = r.maps.filter((p) => p.startsWith(r.cacheDir) || p.startsWith(bundle) || p.includes('aarch64'));
      assert.deepEqual(foreignMaps, [], 'the aarch64 library was never mapped');
      assert.deepEqual(r.demo, []);
    });
  });

  describe('a bundle directory changed after packing', () => {
    let small: string;

    before(function () {
      this.timeout(60_000);
      small = packed(['libdemo_core.so', 'libdemo_codec.so.1.2.3', 'libdemo_app.so', 'libdemo_plugin.so', 'libdemo_accel.so'].map(nativeFixture));
    });

    function copyOfSmall(): string {
      const copy = path.join(tempDir(), 'bundle');
      fs.cpSync(small, copy, { recursive: true });
      return copy;
    }

    const APP = { compute: 'int app_compute(int x)' };

    for (const { what, field, edit } of [
      { what: 'a file name with "/"', field: 'files[0].name', edit: (v: ManifestJson['variants'][string]) => void ((v.files[0] as { name: string }).name = 'sub/libdemo_accel.so') },
      { what: 'a file name "../libdemo_accel.so"', field: 'files[0].name', edit: (v: ManifestJson['variants'][string]) => void ((v.files[0] as { name: string }).name = '../libdemo_accel.so') },
      { what: 'a file name ".."', field: 'files[0].name', edit: (v: ManifestJson['variants'][string]) => void ((v.files[0] as { name: string }).name = '..') },
      { what: 'a soname with "/"', field: 'files[1].soname', edit: (v: ManifestJson['variants'][string]) => void ((v.files[1] as { soname: string | null }).soname = '/usr/lib/libdemo_app.so') },
    ]) {
      it(`dlbundle.json with ${what}: E_BAD_MANIFEST naming dlbundle.json and the field ${field}; nothing extracted or mapped`, () => {
        const copy = copyOfSmall();
        const m = readManifestJson(copy);
        const v = variantOf(m);
        assert.equal(v.files[0]?.name, 'libdemo_accel.so', 'pack sorts files by name');
        edit(v);
        writeManifestJson(copy, m);
        const r = touch(copy, 'libdemo_app.so', APP, 'compute', [5]);
        const e = errorOf(r.result);
        const { what: line } = assertExplained(e, 'E_BAD_MANIFEST', 'dlbundle.json');
        assert.equal(e.file, path.join(copy, 'dlbundle.json'));
        assert.ok(line.includes(`field variants["${KEY}"].${field}`), line);
        assert.match(line, /names must be plain file names/);
        assert.deepEqual(r.demo, []);
        assert.deepEqual(r.cache, [], 'nothing was even created in the cache root');
      });
    }

    it('a blob with one byte flipped: E_INTEGRITY on first use naming the file; nothing published, nothing mapped', () => {
      const copy = copyOfSmall();
      const blob = path.join(copy, KEY, 'libdemo_codec.so.1.2.3');
      const bytes = fs.readFileSync(blob);
      bytes[4000] = (bytes[4000] ?? 0) ^ 0x01;
      fs.writeFileSync(blob, bytes);
      const r = touch(copy, 'libdemo_app.so', APP, 'compute', [5]);
      const e = errorOf(r.result);
      const { what } = assertExplained(e, 'E_INTEGRITY', 'libdemo_codec.so.1.2.3');
      assert.equal(e.file, 'libdemo_codec.so.1.2.3');
      assert.match(what, /xxh64 [0-9a-f]{16} instead of [0-9a-f]{16}/);
      assertNothingPublished(r.cache);
      assert.deepEqual(r.demo, []);
    });

    it('a blob deleted: E_MISSING_BLOB naming it; nothing published, nothing mapped', () => {
      const copy = copyOfSmall();
      fs.rmSync(path.join(copy, KEY, 'libdemo_core.so'));
      const r = touch(copy, 'libdemo_app.so', APP, 'compute', [5]);
      const e = errorOf(r.result);
      assertExplained(e, 'E_MISSING_BLOB', 'libdemo_core.so');
      assert.equal(e.file, 'libdemo_core.so');
      assertNothingPublished(r.cache);
      assert.deepEqual(r.demo, []);
    });

    it('a dependency neither bundled nor installed (libdemo_accel.so needs libdemo_gpu_runtime.so.1): E_MISSING_DEP naming both, before dlopen', () => {
      const r = touch(small, 'libdemo_accel.so', { run: 'int accel_run(int x)' }, 'run', [3]);
      const e = errorOf(r.result);
      const { what, next } = assertExplained(e, 'E_MISSING_DEP', 'libdemo_accel.so');
      assert.ok(what.includes('libdemo_gpu_runtime.so.1'), what);
      assert.ok(next.includes('libdemo_gpu_runtime.so.1'), `the next step names the package to install: ${next}`);
      assert.equal(e.file, 'libdemo_accel.so');
      assert.equal(e.dependency, 'libdemo_gpu_runtime.so.1');
      assert.deepEqual(r.demo, [], 'libdemo_accel.so was never dlopened');
    });

    it('a symbol the library does not export: E_MISSING_SYMBOL naming the symbol and the library', () => {
      const r = touch(small, 'libdemo_core.so', { add: 'int add(int a, int b)', gone: 'int no_such_function(int x)' }, 'add', [2, 3]);
      const e = errorOf(r.result);
      const { what } = assertExplained(e, 'E_MISSING_SYMBOL', 'libdemo_core.so');
      assert.ok(what.includes('"no_such_function"'), what);
      assert.equal(e.symbol, 'no_such_function');
      assert.equal(e.file, 'libdemo_core.so');
    });

    // Bug at 508aa51: the message quoted the bad value with JSON.stringify (src/manifest.ts:131
    // for format, :194 for size), which recurses, so a value nested a few thousand levels deep —
    // 12 KB of "[[[…]]]" in dlbundle.json — threw RangeError "Maximum call stack size exceeded".
    it('dlbundle.json with a size or format nested 6000 arrays deep: E_BAD_MANIFEST, not a RangeError from quoting the value', () => {
      const outcomes: Record<string, string> = {};
      for (const field of ['size', 'format']) {
        const copy = copyOfSmall();
        const m = readManifestJson(copy) as ManifestJson & { format: unknown };
        if (field === 'size') (variantOf(m).files[0] as { size: unknown }).size = '@@deep@@';
        else m.format = '@@deep@@';
        writeManifestJson(copy, JSON.stringify(m).replace('"@@deep@@"', `${'['.repeat(6000)}${']'.repeat(6000)}`));
        try {
          // A start validates a variant in depth when it reads it (variants: 'on-use').
          void fromDirectory(copy).manifest().variants[KEY];
          outcomes[field] = 'accepted';
        } catch (e) {
          outcomes[field] = e instanceof DlbundleError ? e.code : `${(e as Error).name}: ${(e as Error).message}`;
        }
      }
      assert.deepEqual(outcomes, { size: 'E_BAD_MANIFEST', format: 'E_BAD_MANIFEST' });
    });

    // Bug at 508aa51: names were checked one by one, not against each other, so a soname equal
    // to another file's name, or a file named like the completion marker, passed parseManifest
    // and then failed every extraction with EEXIST, reported as E_IO "No cache directory could
    // be used … Set DLBUNDLE_CACHE_DIR", which sends the user after the wrong problem.
    it('a manifest whose names collide on disk (a soname that is another file\'s name; a file named .dlbundle-complete): E_BAD_MANIFEST when read, not E_IO at extraction', () => {
      const outcomes: Record<string, string> = {};
      for (const collision of ['soname', 'marker']) {
        const copy = copyOfSmall();
        const m = readManifestJson(copy);
        const v = variantOf(m);
        const plugin = v.files.find((f) => f.name === 'libdemo_plugin.so');
        assert.ok(plugin);
        if (collision === 'soname') {
          plugin.soname = 'libdemo_codec.so.1.2.3'; // codec's file name; codec itself provides libdemo_codec.so.1
        } else {
          fs.renameSync(path.join(copy, KEY, plugin.name), path.join(copy, KEY, '.dlbundle-complete'));
          v.order = v.order.map((n) => (n === plugin.name ? '.dlbundle-complete' : n));
          plugin.name = '.dlbundle-complete';
        }
        v.digest = variantDigest(v.files as { name: string; size: number; xxh64: string }[]);
        writeManifestJson(copy, m);
        try {
          parseManifest(fs.readFileSync(path.join(copy, 'dlbundle.json'), 'utf8'), path.join(copy, 'dlbundle.json'));
          outcomes[collision] = 'accepted';
        } catch (e) {
          outcomes[collision] = e instanceof DlbundleError ? e.code : `${(e as Error).name}: ${(e as Error).message}`;
        }
      }
      assert.deepEqual(outcomes, { soname: 'E_BAD_MANIFEST', marker: 'E_BAD_MANIFEST' });
    });
  });

  // Bug at 508aa51: fromBuffers(manifest) takes the manifest as an object (a generated module's
  // export), and parseManifest(unknown) promises to validate anything, but Array.prototype.map
  // skips holes, so per-element checks never saw them (a hole in files: TypeError reading 'name'
  // at src/manifest.ts:148; in order: TypeError from new Map() at :158; in runpath: accepted),
  // and the bad value was quoted with JSON.stringify, which throws on a BigInt or a cycle.
  it('fromBuffers with a manifest object holding a hole, a BigInt or a cycle: E_BAD_MANIFEST, not a TypeError (nor a hole accepted in runpath)', () => {
    const bundle = packed(['libdemo_core.so', 'libdemo_codec.so.1.2.3', 'libdemo_app.so'].map(nativeFixture));
    const text = fs.readFileSync(path.join(bundle, 'dlbundle.json'), 'utf8');
    type Mutable = { variants: Record<string, { files: Record<string, unknown>[]; order: unknown[] }> };
    const variant = (m: Mutable): { files: Record<string, unknown>[]; order: unknown[] } => m.variants[KEY] as { files: Record<string, unknown>[]; order: unknown[] };
    const firstFile = (m: Mutable): Record<string, unknown> => variant(m).files[0] as Record<string, unknown>;
    const cases: Record<string, (m: Mutable) => void> = {
      'a hole in files': (m) => {
        delete variant(m).files[0];
      },
      'a hole in order': (m) => {
        delete variant(m).order[0];
      },
      'a hole in runpath': (m) => {
        const runpath: string[] = ['$ORIGIN', '$ORIGIN'];
        delete runpath[0];
        firstFile(m).runpath = runpath;
      },
      'a BigInt size': (m) => {
        firstFile(m).size = 16384n;
      },
      'a circular size': (m) => {
        const circular: Record<string, unknown> = {};
        circular.self = circular;
        firstFile(m).size = circular;
      },
    };
    const outcomes: Record<string, string> = {};
    for (const [what, edit] of Object.entries(cases)) {
      const m = JSON.parse(text) as Mutable;
      edit(m);
      try {
        fromBuffers(m as never, {});
        outcomes[what] = 'accepted';
      } catch (e) {
        outcomes[what] = e instanceof DlbundleError ? e.code : `${(e as Error).name}: ${(e as Error).message}`;
      }
    }
    assert.deepEqual(outcomes, Object.fromEntries(Object.keys(cases).map((k) => [k, 'E_BAD_MANIFEST'])));
  });
});

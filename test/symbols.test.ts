import { strict as assert } from 'node:assert';
import * as path from 'node:path';
import { pack } from '../src/pack';
import { bindLibrary, type KoffiLibLike } from '../src/symbols';
import { runChild, type Caught } from './child';
import { expectCode, nativeFixture, tempDir } from './fixtures';

// koffi's package.json maps `require` to index.cjs with no .d.cts beside it, so
// TypeScript (node16 resolution) finds its types in import mode only.
type Koffi = typeof import('koffi', { with: { 'resolution-mode': 'import' } });
// eslint-disable-next-line @typescript-eslint/no-require-imports
const koffi = require('koffi') as Koffi;

const CORE = 'libdemo_core.so';

const coreDeclarations = {
  add: 'int add(int a, int b)',
  version: 'const char *demo_version(void)',
  mul64: 'int64_t core_mul64(int64_t a, int64_t b)',
  scale: 'double core_scale(double x, double factor)',
  strlen: 'int core_strlen(const char *s)',
  isEven: 'bool core_is_even(int x)',
  sumBytes: 'int core_sum_bytes(const uint8_t *buf, size_t len)',
} as const;

/** An `open` callback around the real library that counts its calls. */
function countingOpen(): { open: () => KoffiLibLike; calls: () => number } {
  let calls = 0;
  return {
    open: () => {
      calls += 1;
      return koffi.load(nativeFixture(CORE));
    },
    calls: () => calls,
  };
}

function bindCore() {
  return bindLibrary(CORE, coreDeclarations, () => koffi.load(nativeFixture(CORE)));
}

describe('symbols: typed symbol loaders', () => {
  describe('each C type comes back as the JS value its type says', () => {
    const core = bindCore();

    it('int add(int, int) returns a number', () => {
      assert.equal(core.add(2, 3), 5);
      assert.equal(core.add(-7, 2), -5);
    });

    it('const char * returns a string', () => {
      assert.equal(core.version(), 'demo-core 1.0.0');
    });

    it('int64_t returns a number while exact and a bigint beyond 2^53, and takes both', () => {
      assert.equal(core.mul64(6, 7), 42);
      assert.equal(core.mul64(6n, 7n), 42);
      assert.equal(core.mul64(2 ** 26, 2 ** 27), 2 ** 53);
      assert.equal(core.mul64(2 ** 26 + 1, 2 ** 27), 9007199388958720n);
      assert.equal(core.mul64(3037000499n, -3037000499n), -9223372030926249001n);
    });

    it('double returns a number', () => {
      assert.equal(core.scale(1.5, 4), 6);
    });

    it('a string argument takes a string, and null as NULL', () => {
      assert.equal(core.strlen('hello'), 5);
      assert.equal(core.strlen(''), 0);
      assert.equal(core.strlen(null), -1);
    });

    it('bool returns true and false, not 1 and 0', () => {
      assert.equal(core.isEven(4), true);
      assert.equal(core.isEven(3), false);
    });

    it('a pointer argument takes a Buffer, a typed array, a DataView, an ArrayBuffer, or null as NULL', () => {
      assert.equal(core.sumBytes(Buffer.from([1, 2, 3, 250]), 4), 256);
      assert.equal(core.sumBytes(new Uint8Array([1, 2, 3, 250]), 4), 256);
      assert.equal(core.sumBytes(new Uint8Array([9, 1, 2, 3, 250]).subarray(1), 4n), 256);
      assert.equal(core.sumBytes(new DataView(new Uint8Array([1, 2, 3, 250]).buffer), 4), 256);
      assert.equal(core.sumBytes(new Uint8Array([1, 2, 3, 250]).buffer, 4), 256);
      assert.equal(core.sumBytes(null, 0), 0);
    });

    it('a non-string pointer comes back as a bigint address that pointer arguments take', () => {
      const raw = bindLibrary(CORE, {
        versionAddress: 'const void *demo_version(void)',
        sumBytes: 'int core_sum_bytes(const uint8_t *buf, size_t len)',
      }, () => koffi.load(nativeFixture(CORE)));
      const address = raw.versionAddress();
      assert.equal(typeof address, 'bigint');
      assert.ok(address !== null);
      // 'd' + 'e' + 'm' + 'o' = 100 + 101 + 109 + 111
      assert.equal(raw.sumBytes(address, 4), 421);
    });

    it('the JS name is the key, the C name is the one in the prototype', () => {
      assert.equal(typeof core.version, 'function');
      assert.equal((core as Record<string, unknown>)['demo_version'], undefined);
    });

    it('prototype spellings koffi refuses or aborts on are bound: const after the type or the star, ssize_t', () => {
      const odd = bindLibrary(CORE, {
        version: 'const char * const demo_version(void)',
        strlen: 'int core_strlen(char const *const s)',
        mul: 'ssize_t core_mul64(ssize_t a, ssize_t b)',
        add: '  int\tadd ( int , int const ) ; ',
      }, () => koffi.load(nativeFixture(CORE)));
      assert.equal(odd.version(), 'demo-core 1.0.0');
      assert.equal(odd.strlen('abc'), 3);
      assert.equal(odd.mul(-6, 7), -42);
      assert.equal(odd.add(1, 2), 3);
    });
  });

  describe('nothing is loaded until the first property is read', () => {
    it('bindLibrary does not call open', () => {
      const counter = countingOpen();
      const core = bindLibrary(CORE, coreDeclarations, counter.open);
      assert.equal(counter.calls(), 0);
      assert.deepEqual(Object.keys(core), Object.keys(coreDeclarations));
      assert.ok('add' in core);
      assert.equal(counter.calls(), 0, 'listing or testing keys must not load');
    });

    it('the first read calls open once, later reads and calls reuse it', () => {
      const counter = countingOpen();
      const core = bindLibrary(CORE, coreDeclarations, counter.open);
      const add = core.add;
      assert.equal(counter.calls(), 1);
      for (let i = 0; i < 100; i++) assert.equal(core.add(i, 1), i + 1);
      assert.equal(core.version(), 'demo-core 1.0.0');
      assert.equal(core.add, add, 'a symbol is bound once and handed out again');
      assert.equal(counter.calls(), 1);
    });

    it('the first read binds every declared symbol, so a bad one fails before any call', () => {
      const bound: string[] = [];
      const lib = koffi.load(nativeFixture(CORE));
      const core = bindLibrary(CORE, { add: 'int add(int a, int b)', nope: 'int dlbundle_missing(void)' }, () => ({
        func: (prototype: string) => {
          bound.push(prototype);
          return lib.func(prototype);
        },
      }));
      expectCode('E_MISSING_SYMBOL', () => core.add);
      assert.deepEqual(bound, ['int add(int a, int b)', 'int dlbundle_missing(void)']);
    });

    it('an open that throws is rethrown unchanged, and the next read tries again', () => {
      const failure = new Error('materialize failed');
      let calls = 0;
      const core = bindLibrary(CORE, coreDeclarations, () => {
        calls += 1;
        if (calls === 1) throw failure;
        return koffi.load(nativeFixture(CORE));
      });
      assert.throws(() => core.add(1, 2), (e: unknown) => e === failure);
      assert.equal(core.add(1, 2), 3);
      assert.equal(core.scale(2, 2), 4);
      assert.equal(calls, 2);
    });

    it('an open that returns no library is a usage error', () => {
      const core = bindLibrary(CORE, coreDeclarations, () => undefined as unknown as KoffiLibLike);
      const err = expectCode('E_USAGE', () => core.add);
      assert.equal(err.file, CORE);
    });
  });

  describe('the bound object cannot be changed', () => {
    const core = bindCore();

    it('has a null prototype', () => {
      assert.equal(Object.getPrototypeOf(core), null);
      assert.equal((core as Record<string, unknown>)['toString'], undefined);
    });

    it('is frozen, with enumerable, non-configurable getter-only properties', () => {
      assert.ok(Object.isFrozen(core));
      assert.ok(!Object.isExtensible(core));
      for (const name of Object.keys(coreDeclarations)) {
        const d = Object.getOwnPropertyDescriptor(core, name);
        assert.ok(d !== undefined, name);
        assert.equal(d.enumerable, true);
        assert.equal(d.configurable, false);
        assert.equal(typeof d.get, 'function');
        assert.equal(d.set, undefined);
      }
    });

    it('assigning, adding or deleting a property throws in strict mode', () => {
      const loose = core as Record<string, unknown>;
      assert.throws(() => { loose['add'] = () => 0; }, TypeError);
      assert.throws(() => { loose['sub'] = () => 0; }, TypeError);
      assert.throws(() => { delete loose['add']; }, TypeError);
      assert.throws(() => Object.defineProperty(core, 'add', { value: () => 0 }), TypeError);
      assert.equal(core.add(2, 3), 5);
    });

    it('later changes to the declarations object change nothing', () => {
      const declarations: Record<string, string> = { add: 'int add(int a, int b)' };
      const core2 = bindLibrary(CORE, declarations, () => koffi.load(nativeFixture(CORE)));
      declarations['add'] = 'int dlbundle_missing(void)';
      declarations['extra'] = 'int add(int a, int b)';
      assert.deepEqual(Object.keys(core2), ['add']);
      assert.equal((core2['add'] as (a: number, b: number) => number)(2, 3), 5);
    });
  });

  describe('binding failures name the library, the symbol and what to do', () => {
    it('a declared symbol the library does not export is E_MISSING_SYMBOL', () => {
      const core = bindLibrary(CORE, { add: 'int add(int a, int b)', gone: 'int  dlbundle_missing ( int x )' },
        () => koffi.load(nativeFixture(CORE)));
      const err = expectCode('E_MISSING_SYMBOL', () => core.add(1, 2));
      assert.equal(err.symbol, 'dlbundle_missing');
      assert.equal(err.file, CORE);
      assert.match(err.message, /"libdemo_core\.so" does not export "dlbundle_missing"/);
      assert.match(err.message, /nm -D --defined-only/);
      assert.ok(err.cause instanceof Error, 'koffi\'s own error is kept as the cause');
      assert.match(err.cause.message, /Cannot find function/);
    });

    it('a prototype koffi cannot parse is E_BAD_PROTOTYPE', () => {
      for (const prototype of ['int add(int a, int b', 'frob add(int a)', 'int (int a)', '', 'int add(int a[], int b)']) {
        const core = bindLibrary(CORE, { add: prototype }, () => koffi.load(nativeFixture(CORE)));
        const err = expectCode('E_BAD_PROTOTYPE', () => core.add);
        assert.equal(err.file, CORE);
        assert.ok(err.message.includes(JSON.stringify(prototype)), err.message);
        assert.ok(err.cause instanceof Error);
      }
    });

    it('E_BAD_PROTOTYPE names the C symbol when it can', () => {
      const core = bindLibrary(CORE, { add: 'frob add(int a)' }, () => koffi.load(nativeFixture(CORE)));
      assert.equal(expectCode('E_BAD_PROTOTYPE', () => core.add).symbol, 'add');
    });

    it('a declaration that is not a string is refused at once', () => {
      const declarations = { add: 42 } as unknown as Record<string, string>;
      expectCode('E_BAD_PROTOTYPE', () => bindLibrary(CORE, declarations, () => koffi.load(nativeFixture(CORE))));
    });

    it('a failed binding is retried on the next read without opening again', () => {
      const counter = countingOpen();
      const core = bindLibrary(CORE, { add: 'int add(int a, int b)', gone: 'int dlbundle_missing(void)' }, counter.open);
      expectCode('E_MISSING_SYMBOL', () => core.add);
      expectCode('E_MISSING_SYMBOL', () => core.add);
      assert.equal(counter.calls(), 1);
    });
  });
});

describe('symbols: out-parameters are checked before C writes through them', () => {
  // In a child: without the check, a number passed as an out-parameter is taken as an address and C writes there.
  const BODY = `
    const bundle = dl.openBundle({ source: dl.fromDirectory(P.bundle), cacheDir: P.cache });
    const core = bundle.library('libdemo_core.so', { divmod: 'int core_divmod(int a, int b, _Out_ int *quot, _Out_ int *rem)' });
    const quot = [0], rem = [0];
    const ok = core.divmod(17, 5, quot, rem);
    return { ok, quot: quot[0], rem: rem[0], number: caught(() => core.divmod(17, 5, 5, [0])), empty: caught(() => core.divmod(17, 5, [0], [])), typed: core.divmod(9, 4, new Int32Array(1), [0]) };`;

  it('an array C writes into works; a number (an address to C) or an empty array is E_USAGE before the call', () => {
    const bundle = path.join(tempDir(), 'bundle');
    pack([nativeFixture('libdemo_core.so')], { name: 'core', out: bundle });
    const r = runChild<{ ok: number; quot: number; rem: number; typed: number; number: Caught<unknown>; empty: Caught<unknown> }>(BODY, { params: { bundle, cache: path.join(tempDir(), 'cache') } });
    assert.deepEqual([r.ok, r.quot, r.rem, r.typed], [0, 3, 2, 0]);
    for (const [c, what] of [[r.number, /argument 3 \(_Out_ int \*quot\) is where C writes its result, but it is number 5/], [r.empty, /argument 4 \(_Out_ int \*rem\) is where C writes its result, but it is an empty array/]] as const) {
      assert.equal(c.ok, false);
      if (c.ok) continue;
      assert.equal(c.error.code, 'E_USAGE');
      assert.match(c.error.message, what);
      assert.match(c.error.message, /Pass a one-element array that C writes into/);
    }
  });
});

import { strict as assert } from 'node:assert';
import { parseManifest, variantDigest, type ManifestFile } from '../src/manifest';
import { expectCode } from './fixtures';

const core: ManifestFile = { name: 'libcore.so', size: 100, xxh64: '0123456789abcdef', soname: 'libcore.so', needed: ['libc.so.6'], runpath: [], machine: 'x86_64' };
const user: ManifestFile = { name: 'libuser.so.1.0', size: 200, xxh64: 'fedcba9876543210', soname: 'libuser.so.1', needed: ['libcore.so'], runpath: [], machine: 'x86_64' };

/** A valid manifest, as plain JSON-shaped data, that each case breaks in one place. */
function valid(): { format: number; name: string; variants: Record<string, Record<string, unknown>> } {
  const files = [core, user];
  return {
    format: 1,
    name: 'demo',
    variants: {
      'linux-x64-gnu': { digest: variantDigest(files), files: files.map((f) => ({ ...f })), order: ['libcore.so', 'libuser.so.1.0'], external: ['libc.so.6'] },
    },
  };
}

function withFile(change: (f: Record<string, unknown>) => void): ReturnType<typeof valid> {
  const m = valid();
  const v = m.variants['linux-x64-gnu'] as { files: Record<string, unknown>[] };
  change(v.files[0] as Record<string, unknown>);
  return m;
}

describe('manifest', () => {
  it('reads a valid manifest, from text or from parsed JSON', () => {
    const m = parseManifest(JSON.stringify(valid()));
    assert.equal(m.name, 'demo');
    assert.deepEqual(m.variants['linux-x64-gnu']?.order, ['libcore.so', 'libuser.so.1.0']);
    assert.deepEqual(parseManifest(valid()), m);
  });

  it('names a directory the same for the same files in any order, and differently for other content', () => {
    assert.equal(variantDigest([core, user]), variantDigest([user, core]));
    assert.match(variantDigest([core]), /^[0-9a-f]{16}$/);
    assert.notEqual(variantDigest([core, user]), variantDigest([core, { ...user, xxh64: 'fedcba9876543211' }]));
    assert.notEqual(variantDigest([core, user]), variantDigest([core, { ...user, size: 201 }]));
    assert.notEqual(variantDigest([core, user]), variantDigest([core, { ...user, name: 'libuser.so.1.1' }]));
  });

  const refused: [string, () => unknown, RegExp][] = [
    ['text that is not JSON', () => '{"format": 1,', /not valid JSON/],
    ['an array instead of an object', () => [], /is not an object/],
    ['another format', () => ({ ...valid(), format: 2 }), /format/],
    ['a bundle name with a slash', () => ({ ...valid(), name: 'a/b' }), /field name/],
    ['a file name with a slash', () => withFile((f) => (f.name = '../libcore.so')), /contains "\/"/],
    ['a file name that is ".."', () => withFile((f) => (f.name = '..')), /is "\.\."/],
    ['an empty file name', () => withFile((f) => (f.name = '')), /is empty/],
    ['a file name with a NUL', () => withFile((f) => (f.name = 'lib\0core.so')), /NUL/],
    ['a soname with a slash', () => withFile((f) => (f.soname = '/tmp/libcore.so')), /soname/],
    ['a negative size', () => withFile((f) => (f.size = -1)), /size.*non-negative integer/],
    ['a fractional size', () => withFile((f) => (f.size = 1.5)), /size/],
    ['a size given as a string', () => withFile((f) => (f.size = '100')), /size/],
    ['a hash that is not 16 hex digits', () => withFile((f) => (f.xxh64 = 'xyz')), /xxh64.*16 lowercase hex/],
    ['an uppercase hash', () => withFile((f) => (f.xxh64 = '0123456789ABCDEF')), /xxh64/],
    ['needed that is not an array', () => withFile((f) => (f.needed = 'libc.so.6')), /needed.*not an array/],
    ['requiresVersions that is not an object', () => withFile((f) => (f.requiresVersions = 'GLIBC_2.34')), /files\[0\]\.requiresVersions is not an object/],
    ['a GLIBC version that is not a version number', () => withFile((f) => (f.requiresVersions = { GLIBC: 'GLIBC_2.34' })), /requiresVersions\.GLIBC is "GLIBC_2\.34", not a version number/],
    ['a GLIBCXX version given as a number', () => withFile((f) => (f.requiresVersions = { GLIBCXX: 3.4 })), /requiresVersions\.GLIBCXX is 3\.4, not a version number/],
    ['a file listed twice', () => {
      const m = valid();
      const v = m.variants['linux-x64-gnu'] as { files: unknown[] };
      v.files.push(v.files[0]);
      return m;
    }, /twice/],
    ['an order that is not a permutation', () => {
      const m = valid();
      (m.variants['linux-x64-gnu'] as { order: string[] }).order = ['libcore.so'];
      return m;
    }, /permutation/],
    ['an order that loads a user before its dependency', () => {
      const m = valid();
      (m.variants['linux-x64-gnu'] as { order: string[] }).order = ['libuser.so.1.0', 'libcore.so'];
      return m;
    }, /before its dependency "libcore\.so"/],
    ['an external list that disagrees with the files', () => {
      const m = valid();
      (m.variants['linux-x64-gnu'] as { external: string[] }).external = [];
      return m;
    }, /external/],
    ['a digest that does not match the file list', () => {
      const m = valid();
      (m.variants['linux-x64-gnu'] as { digest: string }).digest = '0000000000000000';
      return m;
    }, /digest/],
    ['a bad target key', () => {
      const m = valid();
      m.variants['../x'] = m.variants['linux-x64-gnu'] as Record<string, unknown>;
      return m;
    }, /target key/],
  ];
  for (const [what, make, message] of refused) {
    it(`refuses ${what} with E_BAD_MANIFEST`, () => {
      const input = make();
      const e = expectCode('E_BAD_MANIFEST', () => parseManifest(typeof input === 'string' ? input : JSON.parse(JSON.stringify(input)), 'test.json'));
      assert.match(e.message, message);
      assert.match(e.message, /^test\.json/);
      assert.match(e.message, /dlbundle pack|upgrade/);
    });
  }

  it('refuses two files with one soname with E_DUPLICATE_SONAME', () => {
    const files = [core, { ...user, soname: 'libcore.so', needed: [] }];
    const m = { format: 1, name: 'demo', variants: { 'linux-x64-gnu': { digest: variantDigest(files), files, order: ['libcore.so', 'libuser.so.1.0'], external: ['libc.so.6'] } } };
    expectCode('E_DUPLICATE_SONAME', () => parseManifest(m));
  });

  it('refuses a dependency cycle with E_CYCLE', () => {
    const files = [{ ...core, needed: ['libuser.so.1'] }, user];
    const m = { format: 1, name: 'demo', variants: { 'linux-x64-gnu': { digest: variantDigest(files), files, order: ['libcore.so', 'libuser.so.1.0'], external: [] } } };
    const e = expectCode('E_CYCLE', () => parseManifest(m));
    assert.match(e.message, /libcore\.so → libuser\.so\.1\.0 → libcore\.so/);
  });
});

describe('manifest: requiresVersions (the glibc / libstdc++ versions a file needs)', () => {
  it('is read when present and absent from files packed without it (older manifests stay valid)', () => {
    const m = parseManifest(withFile((f) => (f.requiresVersions = { GLIBC: '2.34', GLIBCXX: '3.4.30', CXXABI: '1.3.13' })));
    const [first, second] = m.variants['linux-x64-gnu']?.files ?? [];
    assert.deepEqual(first?.requiresVersions, { GLIBC: '2.34', GLIBCXX: '3.4.30', CXXABI: '1.3.13' });
    assert.equal(second !== undefined && 'requiresVersions' in second, false);
    assert.equal(parseManifest(valid()).variants['linux-x64-gnu']?.files.some((f) => 'requiresVersions' in f), false);
  });

  it('skips families this version does not know (a newer dlbundle may record more), and does not change the digest', () => {
    const m = parseManifest(withFile((f) => (f.requiresVersions = { GLIBC: '2.38', GCC: '14.0.0', OPENSSL: [1] })));
    assert.deepEqual(m.variants['linux-x64-gnu']?.files[0]?.requiresVersions, { GLIBC: '2.38' });
    const onlyUnknown = parseManifest(withFile((f) => (f.requiresVersions = { GCC: '14.0.0' })));
    assert.equal('requiresVersions' in (onlyUnknown.variants['linux-x64-gnu']?.files[0] ?? {}), false);
  });
});

describe('manifest: names the file system and memfd_create can hold', () => {
  const fileNamed = (name: string): ReturnType<typeof valid> => {
    const m = valid();
    const v = m.variants['linux-x64-gnu'] as { files: Record<string, unknown>[]; order: string[]; digest: string };
    (v.files[0] as Record<string, unknown>).name = name;
    (v.files[0] as Record<string, unknown>).soname = 'libcore.so';
    v.order = [name, 'libuser.so.1.0'];
    v.digest = variantDigest(v.files as unknown as ManifestFile[]);
    return m;
  };
  // 'é' is 2 bytes of UTF-8, '€' is 3: names that are short in characters and long in bytes.
  const refused: [string, () => unknown, RegExp][] = [
    ['a file name of 256 bytes (128 × "é", 128 characters)', () => fileNamed('é'.repeat(128)), /files\[0\]\.name .* is 256 bytes long in UTF-8, more than the 240 allowed; memory mode .*memfd/],
    ['a file name of 241 ASCII bytes, one past what a memfd label holds', () => fileNamed(`lib${'x'.repeat(235)}.so`), /files\[0\]\.name .* is 241 bytes long in UTF-8, more than the 240 allowed/],
    ['a soname of 258 bytes (86 × "€")', () => withFile((f) => (f.soname = '€'.repeat(86))), /files\[0\]\.soname .* is 258 bytes long in UTF-8, more than the 255 allowed; a directory entry/],
    ['a bundle name of 176 bytes, which can make a 256-byte staging directory name', () => ({ ...valid(), name: 'b'.repeat(176) }), /field name .* is 176 bytes long in UTF-8, more than the 175 allowed; the cache stages a bundle in "\.staging-/],
    ['a bundle name of 100 × "€" (300 bytes)', () => ({ ...valid(), name: '€'.repeat(100) }), /field name .* is 300 bytes long/],
  ];
  for (const [what, make, message] of refused) {
    it(`refuses ${what} with E_BAD_MANIFEST naming the field, the length and the limit`, () => {
      const input = make();
      const e = expectCode('E_BAD_MANIFEST', () => parseManifest(JSON.stringify(input), 'test.json'));
      assert.match(e.message, message);
    });
  }

  it('accepts names exactly at each limit: a 240-byte file name, a 255-byte soname, a 175-byte bundle name', () => {
    const name = `lib${'x'.repeat(234)}.so`;
    const soname = `libuser${'€'.repeat(81)}uu.so`;
    assert.deepEqual([Buffer.byteLength(name), Buffer.byteLength(soname)], [240, 255]);
    const m = fileNamed(name);
    m.name = 'b'.repeat(175);
    const v = m.variants['linux-x64-gnu'] as { files: Record<string, unknown>[]; digest: string };
    (v.files[1] as Record<string, unknown>).soname = soname;
    v.digest = variantDigest(v.files as unknown as ManifestFile[]);
    const parsed = parseManifest(JSON.stringify(m), 'test.json');
    assert.equal(parsed.name, 'b'.repeat(175));
    assert.deepEqual(parsed.variants['linux-x64-gnu']?.order, [name, 'libuser.so.1.0']);
    assert.equal(parsed.variants['linux-x64-gnu']?.files[1]?.soname, soname);
  });
});

describe("manifest: variants: 'on-use' validates a variant when it is read", () => {
  it('a broken variant that is never read does not stop the manifest; reading it throws what a full parse throws', () => {
    const m = valid();
    const good = m.variants['linux-x64-gnu'] as Record<string, unknown>;
    m.variants['linux-arm64-gnu'] = { ...good, order: ['libcore.so'] };
    const lazy = parseManifest(JSON.stringify(m), 'test.json', { checkDigest: false, variants: 'on-use' });
    assert.deepEqual(Object.keys(lazy.variants).sort(), ['linux-arm64-gnu', 'linux-x64-gnu']);
    assert.deepEqual(lazy.variants['linux-x64-gnu']?.order, ['libcore.so', 'libuser.so.1.0']);
    const full = expectCode('E_BAD_MANIFEST', () => parseManifest(JSON.stringify(m), 'test.json', { checkDigest: false }));
    const onUse = expectCode('E_BAD_MANIFEST', () => lazy.variants['linux-arm64-gnu']);
    assert.equal(onUse.message, full.message);
    assert.match(onUse.message, /variants\["linux-arm64-gnu"\]\.order is not a permutation/);
  });

  it('still refuses, when the variant is read, everything a full parse refuses in it (same code, same message)', () => {
    const cases: (() => unknown)[] = [
      () => withFile((f) => (f.name = '../libcore.so')),
      () => withFile((f) => (f.size = -1)),
      () => withFile((f) => (f.xxh64 = 'xyz')),
      () => withFile((f) => (f.needed = 'libc.so.6')),
      () => withFile((f) => (f.name = 'é'.repeat(128))),
      () => ({ ...valid(), variants: { 'linux-x64-gnu': { ...(valid().variants['linux-x64-gnu'] as object), order: ['libuser.so.1.0', 'libcore.so'] } } }),
      () => ({ ...valid(), variants: { 'linux-x64-gnu': { ...(valid().variants['linux-x64-gnu'] as object), external: [] } } }),
      () => ({ ...valid(), variants: { 'linux-x64-gnu': 'not an object' } }),
      () => {
        const files = [{ ...core, needed: ['libuser.so.1'] }, user];
        return { format: 1, name: 'demo', variants: { 'linux-x64-gnu': { digest: variantDigest(files), files, order: ['libcore.so', 'libuser.so.1.0'], external: [] } } };
      },
      () => {
        const files = [core, { ...user, soname: 'libcore.so', needed: [] }];
        return { format: 1, name: 'demo', variants: { 'linux-x64-gnu': { digest: variantDigest(files), files, order: ['libcore.so', 'libuser.so.1.0'], external: ['libc.so.6'] } } };
      },
    ];
    for (const make of cases) {
      const text = JSON.stringify(make());
      const full = ((): unknown => {
        try {
          return parseManifest(text, 'test.json', { checkDigest: false });
        } catch (e) {
          return e;
        }
      })();
      assert.ok(full instanceof Error, `a full parse accepted ${text}`);
      const lazy = parseManifest(text, 'test.json', { checkDigest: false, variants: 'on-use' });
      assert.throws(
        () => lazy.variants['linux-x64-gnu'],
        (e: unknown) => e instanceof Error && (e as { code?: string }).code === (full as { code?: string }).code && e.message === full.message,
      );
    }
  });

  it('refuses what choosing needs at once: the format, the bundle name, a bad target key', () => {
    const lazy = (m: unknown): unknown => parseManifest(JSON.stringify(m), 'test.json', { checkDigest: false, variants: 'on-use' });
    expectCode('E_BAD_MANIFEST', () => lazy({ ...valid(), format: 2 }));
    expectCode('E_BAD_MANIFEST', () => lazy({ ...valid(), name: 'a/b' }));
    expectCode('E_BAD_MANIFEST', () => lazy({ ...valid(), variants: { ...valid().variants, '../x': {} } }));
  });
});

describe('manifest: a variant of 32,000 files', () => {
  const N = 32_000;
  const name = (i: number): string => `libgen${String(i).padStart(6, '0')}.so`;
  // File i needs file i + 1: one chain, so exactly one order is valid.
  function chain(order: (names: string[]) => string[], edit: (files: ManifestFile[]) => void = () => undefined): string {
    const files: ManifestFile[] = Array.from({ length: N }, (_, i) => ({ ...core, name: name(i), soname: name(i), needed: i + 1 < N ? [name(i + 1), 'libc.so.6'] : ['libc.so.6'] }));
    edit(files);
    const names = files.map((f) => f.name);
    return JSON.stringify({ format: 1, name: 'big', variants: { 'linux-x64-gnu': { digest: variantDigest(files), files, order: order(names), external: ['libc.so.6'] } } });
  }

  it('accepts its one valid order, and refuses one pair swapped deep inside, naming the pair', () => {
    const m = parseManifest(chain((names) => [...names].reverse()), 'big.json');
    assert.equal(m.variants['linux-x64-gnu']?.order[0], name(N - 1));
    const swapped = (names: string[]): string[] => {
      const o = [...names].reverse();
      [o[20_000], o[20_001]] = [o[20_001] as string, o[20_000] as string];
      return o;
    };
    const e = expectCode('E_BAD_MANIFEST', () => parseManifest(chain(swapped), 'big.json'));
    assert.match(e.message, new RegExp(`order puts "${name(N - 1 - 20_001)}" before its dependency "${name(N - 1 - 20_000)}"`));
  });

  it('reports a cycle closed at its far end as E_CYCLE, not as a bad order', () => {
    const closed = (files: ManifestFile[]): void => {
      files[N - 1] = { ...(files[N - 1] as ManifestFile), needed: [name(N - 3)] };
    };
    const e = expectCode('E_CYCLE', () => parseManifest(chain((names) => [...names].reverse(), closed), 'big.json'));
    assert.match(e.message, new RegExp(`${name(N - 3)} → ${name(N - 2)} → ${name(N - 1)} → ${name(N - 3)}`));
  });
});

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

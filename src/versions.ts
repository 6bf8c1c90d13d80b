/**
 * The symbol versions that say how new a system must be: glibc's `GLIBC_x.y`
 * and libstdc++'s `GLIBCXX_x.y.z` and `CXXABI_x.y`. A library built on a
 * newer system needs the versions that system's libraries define; on an older
 * one ld.so refuses it ("version `GLIBC_2.38' not found"). Here they are
 * reduced to the highest of each family a file needs, compared numerically.
 * No I/O: the ELF reader supplies the names.
 */
import { VER_FLG_WEAK, type VersionDefinition, type VersionNeed } from './formats/elf';

/** The version families dlbundle checks before loading. */
export type VersionFamily = 'GLIBC' | 'GLIBCXX' | 'CXXABI';

/** Every family, in the order messages list them. */
export const VERSION_FAMILIES: readonly VersionFamily[] = ['GLIBC', 'GLIBCXX', 'CXXABI'];

/** The highest version of each family a file needs, e.g. `{ GLIBC: '2.34', GLIBCXX: '3.4.30' }`. */
export type RequiredVersions = Readonly<Partial<Record<VersionFamily, string>>>;

/**
 * The library that defines each family: the DT_NEEDED name ld.so looks the
 * version up in, and what a message calls it.
 */
export const FAMILY_PROVIDERS: Readonly<Record<VersionFamily, { readonly soname: string; readonly what: string }>> = {
  GLIBC: { soname: 'libc.so.6', what: 'glibc' },
  GLIBCXX: { soname: 'libstdc++.so.6', what: 'libstdc++' },
  CXXABI: { soname: 'libstdc++.so.6', what: 'libstdc++' },
};

// A version: numbers separated by dots, each at most 9 digits (compared as numbers).
const VERSION = /^[0-9]{1,9}(\.[0-9]{1,9}){0,7}$/;
const NAMED = /^(GLIBC|GLIBCXX|CXXABI)_([0-9]{1,9}(?:\.[0-9]{1,9}){0,7})$/;

// Versions that name a glibc feature instead of a release, by the release
// that introduced them: a library linked with -z pack-relative-relocs needs
// GLIBC_ABI_DT_RELR, which glibc defines from 2.36 on.
const GLIBC_FEATURES: Readonly<Record<string, string>> = { GLIBC_ABI_DT_RELR: '2.36' };

/**
 * The family and number of a version name, or null for a name outside the
 * three families (`GLIBC_PRIVATE`, `GCC_3.0`, a library's own versions).
 *
 * @example
 * parseVersionName('GLIBCXX_3.4.30') // { family: 'GLIBCXX', version: '3.4.30' }
 * parseVersionName('GLIBC_PRIVATE') // null
 */
export function parseVersionName(name: string): { readonly family: VersionFamily; readonly version: string } | null {
  const feature = GLIBC_FEATURES[name];
  if (feature !== undefined) return { family: 'GLIBC', version: feature };
  const m = NAMED.exec(name);
  return m === null ? null : { family: m[1] as VersionFamily, version: m[2] as string };
}

/** True for a version number dlbundle can compare (`2.34`, `3.4.30`). */
export function isVersionNumber(value: string): boolean {
  return VERSION.test(value);
}

/**
 * Compares two version numbers component by component, as numbers: 2.38 is
 * above 2.4, and 3.4 below 3.4.1. Negative, 0 or positive like a sort
 * comparator.
 *
 * @example
 * compareVersions('2.38', '2.4') // > 0
 */
export function compareVersions(a: string, b: string): number {
  const x = a.split('.');
  const y = b.split('.');
  for (let i = 0; i < Math.max(x.length, y.length); i++) {
    const d = Number(x[i] ?? -1) - Number(y[i] ?? -1);
    if (d !== 0) return d;
  }
  return 0;
}

/**
 * The highest version of each family that `needed` asks for. Weak needs
 * (VER_FLG_WEAK) are left out: ld.so loads a library whose weak needs are
 * unmet.
 *
 * @example
 * requiredVersions(readSymbolVersions(bytes).needed) // { GLIBC: '2.34', GLIBCXX: '3.4.30', CXXABI: '1.3.13' }
 */
export function requiredVersions(needed: readonly VersionNeed[]): RequiredVersions {
  const out: Partial<Record<VersionFamily, string>> = {};
  for (const need of needed) {
    for (const v of need.versions) {
      if ((v.flags & VER_FLG_WEAK) !== 0) continue;
      const parsed = parseVersionName(v.name);
      if (parsed === null) continue;
      const known = out[parsed.family];
      if (known === undefined || compareVersions(parsed.version, known) > 0) out[parsed.family] = parsed.version;
    }
  }
  return sortedFamilies(out);
}

/**
 * The highest version of each family that `defined` defines: what a system's
 * libc.so.6 or libstdc++.so.6 offers.
 *
 * @example
 * definedVersions(readSymbolVersions(libc).defined) // { GLIBC: '2.36' }
 */
export function definedVersions(defined: readonly VersionDefinition[]): RequiredVersions {
  const out: Partial<Record<VersionFamily, string>> = {};
  for (const d of defined) {
    const parsed = NAMED.exec(d.name);
    if (parsed === null) continue;
    const family = parsed[1] as VersionFamily;
    const known = out[family];
    if (known === undefined || compareVersions(parsed[2] as string, known) > 0) out[family] = parsed[2] as string;
  }
  return sortedFamilies(out);
}

// The families in one order, so that manifests written from the same files are byte for byte the same.
function sortedFamilies(versions: Partial<Record<VersionFamily, string>>): RequiredVersions {
  const out: Partial<Record<VersionFamily, string>> = {};
  for (const f of VERSION_FAMILIES) if (versions[f] !== undefined) out[f] = versions[f];
  return out;
}

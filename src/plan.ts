/**
 * The dependency graph of a bundle: which bundled file satisfies which
 * DT_NEEDED entry, the order that loads every dependency before its users,
 * and the dependencies that nothing in the bundle provides (external).
 *
 * A library is known by the names its format's loader matches an
 * already-loaded library against: for ELF its soname, or its file name when
 * it has none (glibc's ld.so); for PE its file name, in any case (Windows);
 * for Mach-O its install name, and for names relative to `@rpath`,
 * `@loader_path` or `@executable_path` its file name or the file name its
 * install name ends with (dyld, with every bundled file in one directory).
 */
import { DlbundleError } from './errors';
import type { OfferedVersion, VersionOracle } from './system-versions';
import { compareVersions, FAMILY_PROVIDERS, VERSION_FAMILIES, type RequiredVersions, type VersionFamily } from './versions';

/** The facts about one library that the graph needs. */
export interface GraphNode {
  /** File name inside the bundle. */
  readonly name: string;
  /** DT_SONAME, or null. */
  readonly soname: string | null;
  /** DT_NEEDED entries (or the imports, or the dylib load commands). */
  readonly needed: readonly string[];
  /** Absent for ELF; `pe` or `macho`. */
  readonly format?: 'pe' | 'macho';
}

/** The resolved graph: for each file, the bundled files it needs and the external names it needs. */
export interface DependencyGraph<N extends GraphNode = GraphNode> {
  /** Nodes by file name. */
  readonly nodes: ReadonlyMap<string, N>;
  /** The file that provides each name, keyed as {@link providerKeys} makes them: use {@link DependencyGraph.providerOf} to look one up. */
  readonly providers: ReadonlyMap<string, N>;
  /** The bundled file that satisfies a needed name (or a name the application asks for), as the loader of the files' format matches it. */
  providerOf(name: string): N | undefined;
  /** For each file name: the file names of its bundled dependencies. */
  readonly bundledDeps: ReadonlyMap<string, readonly string[]>;
  /** For each file name: the DT_NEEDED entries nothing in the bundle provides. */
  readonly externalDeps: ReadonlyMap<string, readonly string[]>;
  /** The files' format (absent: ELF). */
  readonly format?: 'pe' | 'macho';
}

/** The name a library is matched by: its soname, else its file name. */
export function providedName(node: GraphNode): string {
  return node.soname ?? node.name;
}

// Mach-O files are also found by file name beside the image that asks; such
// keys start with a NUL, which no install name (and no manifest string) holds.
const BY_FILE_NAME = '\0';
const RELATIVE_INSTALL_NAME = /^@(?:rpath|loader_path|executable_path)\//;

function baseName(p: string): string {
  return p.slice(p.lastIndexOf('/') + 1);
}

/**
 * The keys under which `node` is found: its soname or file name (ELF), its
 * lower-cased file name (PE), its install name and its file names (Mach-O).
 *
 * @example
 * providerKeys({ name: 'libvips-42.dll', soname: 'libvips-42.dll', needed: [], format: 'pe' }) // ['libvips-42.dll']
 */
export function providerKeys(node: GraphNode): string[] {
  if (node.format === 'pe') return [node.name.toLowerCase()];
  if (node.format === 'macho') {
    const keys = [`${BY_FILE_NAME}${node.name}`];
    if (node.soname !== null) {
      keys.unshift(node.soname);
      const tail = baseName(node.soname);
      if (RELATIVE_INSTALL_NAME.test(node.soname) && tail !== node.name) keys.push(`${BY_FILE_NAME}${tail}`);
    }
    return keys;
  }
  return [providedName(node)];
}

/**
 * The keys a needed name is looked up by, most exact first, for a library of `format`.
 *
 * @example
 * dependencyKeys('@rpath/libggml-base.dylib', 'macho') // ['@rpath/libggml-base.dylib', '\0libggml-base.dylib']
 */
export function dependencyKeys(name: string, format: GraphNode['format']): string[] {
  if (format === 'pe') return [name.toLowerCase()];
  if (format === 'macho' && RELATIVE_INSTALL_NAME.test(name)) return [name, `${BY_FILE_NAME}${baseName(name)}`];
  return [name];
}

/**
 * Builds the graph. Throws `E_DUPLICATE_SONAME` when two files provide one name.
 *
 * @example
 * const g = dependencyGraph([{ name: 'libb.so', soname: 'libb.so', needed: ['liba.so'] }, …]);
 * g.bundledDeps.get('libb.so') // ['liba.so']
 */
export function dependencyGraph<N extends GraphNode>(files: readonly N[]): DependencyGraph<N> {
  const nodes = new Map<string, N>();
  const providers = new Map<string, N>();
  const register = (key: string, f: N): void => {
    const other = providers.get(key);
    if (other === f) return;
    if (other !== undefined) {
      const provided = key.startsWith(BY_FILE_NAME) ? key.slice(1) : key;
      throw new DlbundleError(
        'E_DUPLICATE_SONAME',
        `${JSON.stringify(other.name)} and ${JSON.stringify(f.name)} both provide ${JSON.stringify(provided)}.`,
        'Bundle only one of them: the dynamic linker would load whichever comes first for both.',
        { file: f.name, dependency: provided },
      );
    }
    providers.set(key, f);
  };
  // ELF, the case of every start on Linux, takes one key and one look-up, as it always did.
  for (const f of files) {
    nodes.set(f.name, f);
    if (f.format === undefined) register(providedName(f), f);
    else for (const key of providerKeys(f)) register(key, f);
  }
  const providerOf = (name: string, format = files[0]?.format): N | undefined => {
    if (format === undefined) return providers.get(name);
    for (const key of dependencyKeys(name, format)) {
      const p = providers.get(key);
      if (p !== undefined) return p;
    }
    return undefined;
  };
  const bundledDeps = new Map<string, string[]>();
  const externalDeps = new Map<string, string[]>();
  for (const f of files) {
    const bundled: string[] = [];
    const external: string[] = [];
    // A file may list thousands of DT_NEEDED entries: past a few, duplicates are found with a Set, not includes().
    const seen = f.needed.length > 16 ? new Set<string>() : null;
    for (const dep of f.needed) {
      const p = providerOf(dep, f.format);
      if (p === undefined) external.push(dep);
      // A library that names itself is already being loaded; it is no cycle to ld.so.
      else if (p.name !== f.name && !(seen?.has(p.name) ?? bundled.includes(p.name))) {
        seen?.add(p.name);
        bundled.push(p.name);
      }
    }
    bundledDeps.set(f.name, bundled);
    externalDeps.set(f.name, external);
  }
  const format = files[0]?.format;
  return { nodes, providers, providerOf: (name) => providerOf(name), bundledDeps, externalDeps, ...(format === undefined ? {} : { format }) };
}

/**
 * File names ordered so that every library comes after its bundled
 * dependencies; among libraries that are free to go, the smaller name goes
 * first, so the order is the same whatever the input order. Throws `E_CYCLE`
 * naming the cycle.
 *
 * @example
 * loadOrder(files) // ['libdemo_core.so', 'libdemo_codec.so.1.2.3', 'libdemo_app.so']
 */
export function loadOrder(files: readonly GraphNode[] | DependencyGraph): string[] {
  const graph = 'providers' in files ? files : dependencyGraph(files);
  // Kahn's algorithm over indices, with the ready files in a min-heap by name:
  // O((V + E) log V). Sorting the ready list at every step took 27 s for 32,000 files.
  const names = [...graph.bundledDeps.keys()];
  const index = new Map<string, number>();
  for (let i = 0; i < names.length; i++) index.set(names[i] as string, i);
  const waitingOn = new Int32Array(names.length);
  // The users of file i are usersOf[usersStart[i] .. usersStart[i + 1]): a compact adjacency list.
  const usersStart = new Int32Array(names.length + 1);
  for (const deps of graph.bundledDeps.values()) {
    for (const d of deps) {
      const at = (index.get(d) as number) + 1;
      usersStart[at] = (usersStart[at] as number) + 1;
    }
  }
  for (let i = 1; i <= names.length; i++) usersStart[i] = (usersStart[i] as number) + (usersStart[i - 1] as number);
  const usersOf = new Int32Array(usersStart[names.length] as number);
  const filled = usersStart.slice(0, names.length);
  for (let u = 0; u < names.length; u++) {
    const deps = graph.bundledDeps.get(names[u] as string) as readonly string[];
    waitingOn[u] = deps.length;
    for (const d of deps) {
      const dep = index.get(d) as number;
      const at = filled[dep] as number;
      usersOf[at] = u;
      filled[dep] = at + 1;
    }
  }
  const ready = new NameHeap(names);
  for (let i = 0; i < names.length; i++) if (waitingOn[i] === 0) ready.push(i);
  const order: string[] = [];
  for (let next = ready.pop(); next >= 0; next = ready.pop()) {
    order.push(names[next] as string);
    for (let k = usersStart[next] as number; k < (usersStart[next + 1] as number); k++) {
      const u = usersOf[k] as number;
      const left = (waitingOn[u] as number) - 1;
      waitingOn[u] = left;
      if (left === 0) ready.push(u);
    }
  }
  if (order.length < graph.nodes.size) {
    const cycle = findCycle(graph, new Set(order));
    throw new DlbundleError(
      'E_CYCLE',
      `The bundled libraries depend on each other in a circle: ${cycle.join(' → ')}.`,
      'No load order can satisfy a cycle; relink one of these libraries so that it does not need the other.',
      { file: cycle[0] as string, dependency: cycle[1] as string },
    );
  }
  return order;
}

/** Byte-wise name comparison, so the order does not depend on the locale. */
export function compareNames(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** A binary min-heap of indices into `names`, smallest name ({@link compareNames} order) first: the ready list of {@link loadOrder}. */
class NameHeap {
  private readonly items: number[] = [];

  constructor(private readonly names: readonly string[]) {}

  push(item: number): void {
    const { items: a, names } = this;
    const name = names[item] as string;
    let i = a.push(item) - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if ((names[a[parent] as number] as string) <= name) break;
      a[i] = a[parent] as number;
      i = parent;
    }
    a[i] = item;
  }

  /** The index with the smallest name, removed; -1 when the heap is empty. */
  pop(): number {
    const { items: a, names } = this;
    if (a.length === 0) return -1;
    const top = a[0] as number;
    const last = a.pop() as number;
    if (a.length === 0) return top;
    const lastName = names[last] as string;
    let i = 0;
    for (;;) {
      const left = 2 * i + 1;
      if (left >= a.length) break;
      const right = left + 1;
      const child = right < a.length && (names[a[right] as number] as string) < (names[a[left] as number] as string) ? right : left;
      if ((names[a[child] as number] as string) >= lastName) break;
      a[i] = a[child] as number;
      i = child;
    }
    a[i] = last;
    return top;
  }
}

// Every file left unordered by Kahn's algorithm waits on another unordered
// file, so walking "first unordered dependency" must revisit a file: that loop
// is the cycle reported.
function findCycle(graph: DependencyGraph, ordered: ReadonlySet<string>): string[] {
  const start = [...graph.nodes.keys()].filter((n) => !ordered.has(n)).sort(compareNames)[0] as string;
  const path: string[] = [];
  const seenAt = new Map<string, number>();
  let at = start;
  while (!seenAt.has(at)) {
    seenAt.set(at, path.length);
    path.push(at);
    const deps = (graph.bundledDeps.get(at) ?? []).filter((d) => !ordered.has(d)).sort(compareNames);
    at = deps[0] as string;
  }
  return [...path.slice(seenAt.get(at)), at];
}

/**
 * The sorted, de-duplicated DT_NEEDED names that no bundled file provides.
 *
 * @example
 * externalDependencies(files) // ['libc.so.6', 'libdemo_gpu_runtime.so.1']
 */
export function externalDependencies(files: readonly GraphNode[] | DependencyGraph): string[] {
  const graph = 'providers' in files ? files : dependencyGraph(files);
  const names = [...new Set([...graph.externalDeps.values()].flat())].sort(compareNames);
  if (graph.format !== 'pe') return names;
  // Windows names one DLL in any case (KERNEL32.dll, kernel32.dll): listed once, by its first spelling in this order.
  const seen = new Set<string>();
  return names.filter((n) => !seen.has(n.toLowerCase()) && seen.add(n.toLowerCase()) !== undefined);
}

/**
 * The files that must be loaded for `name` to load — `name` and everything it
 * needs from the bundle, transitively — in load order.
 *
 * @example
 * dependencyClosure(graph, order, 'libdemo_app.so') // ['libdemo_core.so', 'libdemo_codec.so.1.2.3', 'libdemo_app.so']
 */
export function dependencyClosure(graph: DependencyGraph, order: readonly string[], name: string): string[] {
  const wanted = new Set<string>();
  const visit = (n: string): void => {
    if (wanted.has(n)) return;
    wanted.add(n);
    for (const d of graph.bundledDeps.get(n) ?? []) visit(d);
  };
  visit(name);
  return order.filter((n) => wanted.has(n));
}

/** A library about to be loaded, with what the pre-load checks need. */
export interface LoadCandidate extends GraphNode {
  readonly machine: string;
  readonly runpath: readonly string[];
  /** Dependencies it loads without (PE delay-load imports, Mach-O weak dylibs): not required to be found. */
  readonly weakNeeded?: readonly string[];
  /** The highest glibc / libstdc++ symbol versions it needs (from the manifest). */
  readonly requiresVersions?: RequiredVersions;
}

/**
 * Checks, before any `dlopen`, that each library in `closure` is built for
 * `machine` (`E_WRONG_ARCH`), that each of its external dependencies is
 * found by `resolve` (`E_MISSING_DEP`, naming the dependency and the library
 * that needs it, and `searched`: where `resolve` looked) except those it
 * loads without (`weakNeeded`), and, given `offered`, that the system defines
 * the glibc and libstdc++ versions it needs (`E_SYSTEM_TOO_OLD`, naming the
 * version needed, the one present and the file). Returns where each external
 * dependency was found.
 *
 * @example
 * checkBeforeLoad(graph, ['libdemo_accel.so'], 'x86_64', (dep, f) => resolveSystemLibrary(dep, …)?.path ?? null, systemVersionOracle(…));
 */
export function checkBeforeLoad<N extends LoadCandidate>(
  graph: DependencyGraph<N>,
  closure: readonly string[],
  machine: string,
  resolve: (dependency: string, file: N) => string | null,
  offered?: VersionOracle<N>,
  searched = 'its RUNPATH, LD_LIBRARY_PATH, /etc/ld.so.cache and the default library directories',
): Map<string, string> {
  const found = new Map<string, string>();
  // What each family offered the files checked so far: one look-up per family and closure.
  const sufficed = new Map<VersionFamily, string>();
  for (const name of closure) {
    const file = graph.nodes.get(name);
    if (file === undefined) continue;
    if (file.machine !== machine) {
      throw new DlbundleError(
        'E_WRONG_ARCH',
        `${JSON.stringify(name)} is built for ${file.machine}, but this process runs on ${machine}.`,
        'Ship a variant built for this machine (dlbundle pack --target), or run the build that matches it.',
        { file: name },
      );
    }
    for (const dep of graph.externalDeps.get(name) ?? []) {
      const where = found.get(dep) ?? resolve(dep, file);
      // A delay-loaded DLL or a weak dylib: the library loads without it.
      if (where === null && file.weakNeeded?.includes(dep) === true) continue;
      if (where === null) {
        throw new DlbundleError(
          'E_MISSING_DEP',
          `${JSON.stringify(name)} needs ${JSON.stringify(dep)}, which is not in the bundle and not installed on this system (searched ${searched}).`,
          `Install the package that provides ${dep}, add it to the bundle with \`dlbundle pack\`, or load ${name} with bundle.optional() if it is optional.`,
          { file: name, dependency: dep },
        );
      }
      found.set(dep, where);
    }
    const required = file.requiresVersions;
    if (offered === undefined || required === undefined) continue;
    const short: { family: VersionFamily; needed: string; offered: OfferedVersion }[] = [];
    for (const family of VERSION_FAMILIES) {
      const needed = required[family];
      if (needed === undefined) continue;
      const enough = sufficed.get(family);
      if (enough !== undefined && compareVersions(needed, enough) <= 0) continue;
      const o = offered(family, file, needed);
      if (o === null) continue;
      if (o.version !== null && compareVersions(needed, o.version) <= 0) sufficed.set(family, o.version);
      else short.push({ family, needed, offered: o });
    }
    if (short.length > 0) throw tooOld(name, short);
  }
  return found;
}

/** E_SYSTEM_TOO_OLD for `name`, naming every family the system falls short in. */
function tooOld(name: string, short: readonly { family: VersionFamily; needed: string; offered: OfferedVersion }[]): DlbundleError {
  const first = short[0] as (typeof short)[number];
  const needs = short.map((s) => `${s.family}_${s.needed}`).join(' and ');
  // One clause per file read: libstdc++.so.6 answers for GLIBCXX and CXXABI at once.
  const byFile = new Map<string, (typeof short)[number][]>();
  for (const s of short) byFile.set(s.offered.file, [...(byFile.get(s.offered.file) ?? []), s]);
  const has = [...byFile].map(([file, list]) => {
    const defined = list.map((s) => (s.offered.version === null ? `no ${s.family} version` : `${s.family}_${s.offered.version}`));
    const note = list.find((s) => s.offered.note !== undefined)?.offered.note;
    return `${file} defines ${list.every((s) => s.offered.version === null) ? defined.join(' and ') : `versions up to ${defined.join(' and ')}`}${note === undefined ? '' : ` (${note})`}`;
  });
  const what = [...new Set(short.map((s) => FAMILY_PROVIDERS[s.family].what))].join(' and ');
  const older = short.map((s) => (s.offered.version === null ? `no ${s.family} version` : `${s.family}_${s.offered.version}`)).join(' and ');
  return new DlbundleError(
    'E_SYSTEM_TOO_OLD',
    `${JSON.stringify(name)} needs ${needs}, newer than this system's ${what}: ${has.join('; ')}. It was built on a newer system than this one, and the dynamic linker would refuse it.`,
    `Use a build of ${name} made for an older system (built on an older distribution or against an older sysroot, needing at most ${older}), or run on a system whose ${what} is newer; load it with bundle.optional() if it is optional.`,
    {
      file: name,
      dependency: FAMILY_PROVIDERS[first.family].soname,
      requiredVersion: `${first.family}_${first.needed}`,
      ...(first.offered.version === null ? {} : { presentVersion: `${first.family}_${first.offered.version}` }),
    },
  );
}

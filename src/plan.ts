/**
 * The dependency graph of a bundle: which bundled file satisfies which
 * DT_NEEDED entry, the order that loads every dependency before its users,
 * and the dependencies that nothing in the bundle provides (external).
 *
 * A library is known by its soname, or by its file name when it has none —
 * the names glibc's loader matches an already-loaded object against.
 */
import { DlbundleError } from './errors';

/** The facts about one library that the graph needs. */
export interface GraphNode {
  /** File name inside the bundle. */
  readonly name: string;
  /** DT_SONAME, or null. */
  readonly soname: string | null;
  /** DT_NEEDED entries. */
  readonly needed: readonly string[];
}

/** The resolved graph: for each file, the bundled files it needs and the external names it needs. */
export interface DependencyGraph<N extends GraphNode = GraphNode> {
  /** Nodes by file name. */
  readonly nodes: ReadonlyMap<string, N>;
  /** The file that provides each soname (or file name, for files without one). */
  readonly providers: ReadonlyMap<string, N>;
  /** For each file name: the file names of its bundled dependencies. */
  readonly bundledDeps: ReadonlyMap<string, readonly string[]>;
  /** For each file name: the DT_NEEDED entries nothing in the bundle provides. */
  readonly externalDeps: ReadonlyMap<string, readonly string[]>;
}

/** The name a library is matched by: its soname, else its file name. */
export function providedName(node: GraphNode): string {
  return node.soname ?? node.name;
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
  for (const f of files) {
    nodes.set(f.name, f);
    const provided = providedName(f);
    const other = providers.get(provided);
    if (other !== undefined) {
      throw new DlbundleError(
        'E_DUPLICATE_SONAME',
        `${JSON.stringify(other.name)} and ${JSON.stringify(f.name)} both provide ${JSON.stringify(provided)}.`,
        'Bundle only one of them: the dynamic linker would load whichever comes first for both.',
        { file: f.name, dependency: provided },
      );
    }
    providers.set(provided, f);
  }
  const bundledDeps = new Map<string, string[]>();
  const externalDeps = new Map<string, string[]>();
  for (const f of files) {
    const bundled: string[] = [];
    const external: string[] = [];
    for (const dep of f.needed) {
      const p = providers.get(dep);
      if (p === undefined) external.push(dep);
      // A library that names itself is already being loaded; it is no cycle to ld.so.
      else if (p.name !== f.name && !bundled.includes(p.name)) bundled.push(p.name);
    }
    bundledDeps.set(f.name, bundled);
    externalDeps.set(f.name, external);
  }
  return { nodes, providers, bundledDeps, externalDeps };
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
  const waitingOn = new Map<string, number>();
  const users = new Map<string, string[]>();
  for (const [name, deps] of graph.bundledDeps) {
    waitingOn.set(name, deps.length);
    for (const d of deps) users.set(d, [...(users.get(d) ?? []), name]);
  }
  const ready = [...waitingOn].filter(([, n]) => n === 0).map(([name]) => name);
  const order: string[] = [];
  while (ready.length > 0) {
    ready.sort(compareNames);
    const next = ready.shift() as string;
    order.push(next);
    for (const u of users.get(next) ?? []) {
      const left = (waitingOn.get(u) ?? 0) - 1;
      waitingOn.set(u, left);
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
  return [...new Set([...graph.externalDeps.values()].flat())].sort(compareNames);
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
}

/**
 * Checks, before any `dlopen`, that each library in `closure` is built for
 * `machine` (`E_WRONG_ARCH`) and that each of its external dependencies is
 * found by `resolve` (`E_MISSING_DEP`, naming the dependency and the library
 * that needs it). Returns where each external dependency was found.
 *
 * @example
 * checkBeforeLoad(graph, ['libdemo_accel.so'], 'x86_64', (dep, f) => resolveSystemLibrary(dep, …)?.path ?? null);
 */
export function checkBeforeLoad<N extends LoadCandidate>(
  graph: DependencyGraph<N>,
  closure: readonly string[],
  machine: string,
  resolve: (dependency: string, file: N) => string | null,
): Map<string, string> {
  const found = new Map<string, string>();
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
      if (where === null) {
        throw new DlbundleError(
          'E_MISSING_DEP',
          `${JSON.stringify(name)} needs ${JSON.stringify(dep)}, which is not in the bundle and not installed on this system (searched its RUNPATH, LD_LIBRARY_PATH, /etc/ld.so.cache and the default library directories).`,
          `Install the package that provides ${dep}, add it to the bundle with \`dlbundle pack\`, or load ${name} with bundle.optional() if it is optional.`,
          { file: name, dependency: dep },
        );
      }
      found.set(dep, where);
    }
  }
  return found;
}

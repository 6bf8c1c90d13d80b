/**
 * Typed symbol loaders. The JS type of every native function is read off its
 * koffi C prototype string at compile time, so
 * `{ add: 'int add(int a, int b)' }` gives `lib.add: (a: number, b: number) => number`
 * with no hand-written signature, and binding waits for the first property access.
 *
 * The vocabulary is one table of C base types grouped by the JS value they
 * become, plus two maps from that group to what JS passes in and what comes back.
 * The groups follow what koffi 3.3.4 does, as measured against build/Release/libdemo_core.so
 * (x86_64 Linux, LP64):
 *
 * - integers up to 32 bits, float and double come back as `number`;
 * - 64-bit integers (int64_t, uint64_t, long long, long and unsigned long on LP64,
 *   size_t, intptr_t, uintptr_t) come back as a `number` while the value is within
 *   ±2^53 (core_mul64(2^26, 2^27) = 9007199254740992 is a number) and as a `bigint`
 *   beyond (core_mul64(2^26 + 1, 2^27) = 9007199388958720n), so the result type is
 *   `number | bigint`; arguments take either (core_mul64(6n, 7n) = 42);
 * - `char *` and `const char *` (and the char16_t / char32_t / wchar_t forms) come back
 *   as a `string`, or `null` for NULL; a string argument takes `null` as NULL;
 * - any other pointer (`void *`, `uint8_t *`, `unsigned char *`, `T **`) comes back as
 *   a bigint address, or `null` for NULL; pointer arguments take such an address,
 *   a Buffer, any typed array or DataView, an ArrayBuffer, or `null`.
 *
 * @example
 * const core = bindLibrary('libdemo_core.so', {
 *   add: 'int add(int a, int b)',
 *   version: 'const char *demo_version(void)',
 * }, () => koffi.load(corePath));
 * core.add(2, 3); // first access: open() runs once, every symbol is bound
 */
import { logger } from './log';
import { DlbundleError } from './errors';

const debug = logger('dlbundle:symbols');

// ---------------------------------------------------------------------------
// Values

declare const pointerBrand: unique symbol;

/**
 * A native address returned by a function whose C result is a non-string pointer.
 * At run time it is the bigint koffi hands out; the brand keeps arbitrary
 * integers from being passed where a pointer is expected.
 *
 * @example
 * const p: Pointer | null = lib.alloc(16); // 'void *alloc(size_t n)'
 * if (p !== null) lib.release(p);          // 'void release(void *p)'
 */
export type Pointer = bigint & { readonly [pointerBrand]: 'dlbundle.Pointer' };

/**
 * What a pointer parameter accepts: an address from a native function, or JS
 * memory that koffi passes by address for the duration of the call, or NULL.
 *
 * @example
 * lib.sumBytes(Buffer.from([1, 2, 3]), 3); // 'int core_sum_bytes(const uint8_t *buf, size_t len)'
 */
export type PointerArgument = Pointer | Buffer | ArrayBufferView | ArrayBuffer | null;

// ---------------------------------------------------------------------------
// The C vocabulary

/**
 * Every base type name koffi 3.3.4 knows (its `koffi.types`), by the JS value it
 * becomes. `ssize_t` is not one of koffi's names; {@link bindLibrary} hands it to
 * koffi as `intptr_t`, which has its width on every platform koffi runs on.
 */
interface CTypeKinds {
  void: 'void';
  bool: 'bool';

  char: 'number'; uchar: 'number'; 'unsigned char': 'number';
  short: 'number'; ushort: 'number'; 'unsigned short': 'number';
  int: 'number'; uint: 'number'; 'unsigned int': 'number';
  int8_t: 'number'; int8: 'number'; uint8_t: 'number'; uint8: 'number';
  int16_t: 'number'; int16: 'number'; uint16_t: 'number'; uint16: 'number';
  int32_t: 'number'; int32: 'number'; uint32_t: 'number'; uint32: 'number';
  int16_le_t: 'number'; int16_le: 'number'; int16_be_t: 'number'; int16_be: 'number';
  uint16_le_t: 'number'; uint16_le: 'number'; uint16_be_t: 'number'; uint16_be: 'number';
  int32_le_t: 'number'; int32_le: 'number'; int32_be_t: 'number'; int32_be: 'number';
  uint32_le_t: 'number'; uint32_le: 'number'; uint32_be_t: 'number'; uint32_be: 'number';
  char16_t: 'number'; char16: 'number'; char32_t: 'number'; char32: 'number';
  wchar_t: 'number'; wchar: 'number';
  float: 'number'; double: 'number'; float32: 'number'; float64: 'number';

  int64_t: 'int64'; int64: 'int64'; uint64_t: 'int64'; uint64: 'int64';
  int64_le_t: 'int64'; int64_le: 'int64'; int64_be_t: 'int64'; int64_be: 'int64';
  uint64_le_t: 'int64'; uint64_le: 'int64'; uint64_be_t: 'int64'; uint64_be: 'int64';
  'long long': 'int64'; longlong: 'int64'; 'unsigned long long': 'int64'; ulonglong: 'int64';
  // 8 bytes on LP64 (Linux, macOS); on LLP64 Windows a long fits in a number, still a member of the union.
  long: 'int64'; ulong: 'int64'; 'unsigned long': 'int64';
  size_t: 'int64'; ssize_t: 'int64';
  intptr_t: 'int64'; intptr: 'int64'; uintptr_t: 'int64'; uintptr: 'int64';

  str: 'string'; string: 'string'; str16: 'string'; string16: 'string'; str32: 'string'; string32: 'string';
}

/** Pointee types whose single pointer koffi converts to and from a JS string. */
type StringPointee = 'char' | 'char16_t' | 'char16' | 'char32_t' | 'char32' | 'wchar_t' | 'wchar';


/** What comes back from C, per kind. */
interface ResultTypes {
  number: number;
  int64: number | bigint;
  bool: boolean;
  void: void;
  string: string | null;
  pointer: Pointer | null;
  unknown: unknown;
}

/** What JS may pass to C, per kind. */
interface ArgumentTypes {
  number: number;
  int64: number | bigint;
  bool: boolean;
  void: unknown; // `void` is no parameter type; koffi refuses the prototype.
  string: string | null;
  pointer: PointerArgument;
  unknown: unknown;
}

// ---------------------------------------------------------------------------
// Type-level prototype parser

/** Words that only qualify a type and change nothing koffi does with it. */
type Qualifier = 'const' | '!' | '_In_';
/** koffi's direction markers: the argument is an object or array that C writes into. */
type Direction = '_Out_' | '_Inout_';
type CallingConvention = '__cdecl' | '__stdcall' | '__fastcall' | '__thiscall';
/** Words that end a multi-word base type, so they cannot be a parameter name. */
type BaseKeyword = 'char' | 'short' | 'int' | 'long' | 'signed' | 'unsigned' | 'float' | 'double' | 'void' | 'bool';

type ReplaceAll<S extends string, From extends string, To extends string, Done extends string = ''> =
  S extends `${infer Before}${From}${infer After}` ? ReplaceAll<After, From, To, `${Done}${Before}${To}`> : `${Done}${S}`;

/** Puts spaces around `*` and `!` and turns every blank into a space, so words split on ' '. */
type Spaced<S extends string> =
  ReplaceAll<ReplaceAll<ReplaceAll<ReplaceAll<ReplaceAll<S, '\t', ' '>, '\n', ' '>, '\r', ' '>, '*', ' * '>, '!', ' ! '>;

type Split<S extends string, Sep extends string, Parts extends string[] = []> =
  S extends `${infer Part}${Sep}${infer Rest}` ? Split<Rest, Sep, [...Parts, Part]> : [...Parts, S];

type DropEmpty<W extends string[], Kept extends string[] = []> =
  W extends [infer First extends string, ...infer Rest extends string[]]
    ? DropEmpty<Rest, First extends '' ? Kept : [...Kept, First]>
    : Kept;

type Without<W extends string[], Drop extends string, Kept extends string[] = []> =
  W extends [infer First extends string, ...infer Rest extends string[]]
    ? Without<Rest, Drop, First extends Drop ? Kept : [...Kept, First]>
    : Kept;

/** The words of a C declarator: `'const char* s'` → `['char', '*', 's']`. */
type Words<S extends string> = Without<DropEmpty<Split<Spaced<S>, ' '>>, Qualifier>;

type Join<W extends string[], Joined extends string = ''> =
  W extends [infer First extends string, ...infer Rest extends string[]]
    ? Join<Rest, Joined extends '' ? First : `${Joined} ${First}`>
    : Joined;

/** The kind of a type written as words: trailing stars are counted, the rest is the base name. */
type KindOf<W extends string[], Stars extends 0[] = []> =
  W extends [...infer Base extends string[], '*'] ? KindOf<Base, [...Stars, 0]>
  : W extends [] ? 'unknown'
  : '*' extends W[number] ? 'unknown'
  : Stars extends [] ? (Join<W> extends keyof CTypeKinds ? CTypeKinds[Join<W>] : 'unknown')
  : Stars extends [0] ? (Join<W> extends StringPointee ? 'string' : 'pointer')
  : 'pointer';

/** A parameter's words without its name: `['size_t', 'len']` → `['size_t']`, `['unsigned', 'int']` stays. */
type WithoutName<W extends string[]> =
  W extends [...infer Type extends string[], infer Last extends string]
    ? Type extends [] ? W : Last extends '*' | BaseKeyword ? W : Type
    : W;

/**
 * What an `_Out_` / `_Inout_` parameter takes: C writes through the pointer
 * into a one-element array for a number, a string or a pointer (`[0]`,
 * `[null]`), or into an object for a struct (or any type dlbundle cannot
 * name); `null` passes NULL. A direction on anything but a pointer is no
 * prototype koffi takes.
 */
type OutArgument<W extends string[]> =
  W extends [...infer Pointee extends string[], '*']
    ? KindOf<Pointee> extends infer K extends keyof ResultTypes
      ? K extends 'unknown' | 'void' ? Record<string, unknown> | null : [ResultTypes[K]] | null
      : never
    : never;

type ArgumentOf<Param extends string> =
  Words<Param> extends infer W extends string[]
    ? [Extract<W[number], Direction>] extends [never] ? ArgumentTypes[KindOf<WithoutName<W>>] : OutArgument<Without<WithoutName<W>, Direction>>
    : never;

type ArgumentsOf<Params extends string[], Args extends unknown[] = []> =
  Params extends [infer First extends string, ...infer Rest extends string[]]
    ? ArgumentsOf<Rest, [...Args, ArgumentOf<First>]>
    : Args;

/** The parameter list between the parentheses, as a tuple type. */
type ParameterTuple<Inner extends string> =
  Words<Inner> extends [] | ['void'] ? []
  : Split<Inner, ','> extends [...infer Fixed extends string[], infer Last extends string]
    ? Words<Last> extends ['...'] ? [...ArgumentsOf<Fixed>, ...unknown[]] : ArgumentsOf<[...Fixed, Last]>
    : never;

/** `[...returnTypeWords, name]` of the part before `(`, without a calling convention. */
type HeadOf<Head extends string> =
  Without<Words<Head>, CallingConvention> extends [...infer Result extends string[], infer Name extends string]
    ? Result extends [] ? 'invalid' : Name extends '*' ? 'invalid' : [Result, Name]
    : 'invalid';

type AnyFunction = (...args: unknown[]) => unknown;

type ParsedFunction<P extends string> =
  P extends `${infer Head}(${infer Inner})${infer Tail}`
    ? Words<Tail> extends [] | [';']
      ? HeadOf<Head> extends [infer Result extends string[], string]
        ? (...args: ParameterTuple<Inner>) => ResultTypes[KindOf<Result>]
        : AnyFunction
      : AnyFunction
    : AnyFunction;

/**
 * The JS function type koffi gives for a C prototype string, computed by the
 * compiler. Parameter names are not carried over (TypeScript cannot label a
 * tuple from a string); count and order are. A prototype it cannot read, or a
 * plain `string`, gives `(...args: unknown[]) => unknown`.
 *
 * @example
 * type Add = FunctionFromPrototype<'int add(int a, int b)'>;          // (a: number, b: number) => number
 * type Ver = FunctionFromPrototype<'const char *demo_version(void)'>; // () => string | null
 */
export type FunctionFromPrototype<P extends string> = string extends P ? AnyFunction : ParsedFunction<P>;

/**
 * What a C type (as written in a prototype, without a name) comes back as.
 *
 * @example
 * type R = CResultType<'uint64_t'>; // number | bigint
 */
export type CResultType<C extends string> = ResultTypes[KindOf<WithoutName<Words<C>>>];

/**
 * What a parameter of a C type (as written in a prototype) accepts.
 *
 * @example
 * type A = CArgumentType<'const uint8_t *buf'>; // Pointer | Buffer | ArrayBufferView | ArrayBuffer | null
 */
export type CArgumentType<C extends string> = ArgumentOf<C>;

/**
 * Symbols to bind: JS name → koffi C prototype. The C name is the one in the
 * prototype, so the JS name can differ.
 *
 * @example
 * const decls = { version: 'const char *demo_version(void)' } satisfies SymbolDeclarations;
 */
export type SymbolDeclarations = Readonly<Record<string, string>>;

/**
 * The object {@link bindLibrary} returns: one read-only function per declaration.
 *
 * @example
 * type Core = BoundLibrary<{ add: 'int add(int a, int b)' }>; // { readonly add: (a: number, b: number) => number }
 */
export type BoundLibrary<D extends SymbolDeclarations> = { readonly [K in keyof D]: FunctionFromPrototype<D[K]> };

/**
 * A native function as koffi returns it.
 *
 * @example
 * const add: KoffiFunctionLike = koffi.load(path).func('int add(int a, int b)');
 */
export type KoffiFunctionLike = (...args: never[]) => unknown;

/**
 * The part of a koffi library handle (`koffi.load(path)`) that binding uses.
 *
 * @example
 * const open = (): KoffiLibLike => koffi.load(path);
 */
export interface KoffiLibLike {
  func(definition: string): KoffiFunctionLike;
}

// ---------------------------------------------------------------------------
// Run time

/**
 * Declares the symbols of a library without touching it. The first read of any
 * property calls `open()` (extract and load: the expensive part), then binds every
 * declared symbol at once, so a misspelt name fails on first use rather than on
 * the one call that needs it. `open()` runs once; if it throws, its error goes to
 * the caller unchanged and the next access tries again.
 *
 * The result has a null prototype and read-only, non-configurable properties.
 *
 * @example
 * const core = bindLibrary('libdemo_core.so', {
 *   add: 'int add(int a, int b)',
 *   version: 'const char *demo_version(void)',
 * }, () => koffi.load(corePath));
 * core.version(); // 'demo-core 1.0.0'
 */
export function bindLibrary<const D extends SymbolDeclarations>(
  libraryName: string,
  declarations: D,
  open: () => KoffiLibLike,
): BoundLibrary<D> {
  // A snapshot: later changes to the caller's object must not change what gets bound.
  const entries = Object.entries(declarations);
  for (const [name, prototype] of entries) {
    if (typeof prototype !== 'string') {
      throw new DlbundleError(
        'E_BAD_PROTOTYPE',
        `The declaration of ${JSON.stringify(name)} for ${JSON.stringify(libraryName)} is ${typeof prototype}, not a C prototype string.`,
        `Write it as a string, e.g. ${JSON.stringify('int add(int a, int b)')}.`,
        { file: libraryName },
      );
    }
  }

  let lib: KoffiLibLike | undefined;
  let functions: Record<string, KoffiFunctionLike> | undefined;
  const bound = (): Record<string, KoffiFunctionLike> => {
    if (functions !== undefined) return functions;
    // Kept across a failed binding: a later access retries binding (after the
    // caller registered a struct or alias, say) without loading again.
    lib ??= checkedLibrary(libraryName, open());
    functions = bindAll(libraryName, entries, lib);
    return functions;
  };

  const target: Record<string, unknown> = Object.create(null);
  for (const [name] of entries) {
    Object.defineProperty(target, name, { enumerable: true, configurable: false, get: () => bound()[name] });
  }
  return Object.freeze(target) as BoundLibrary<D>;
}

function checkedLibrary(libraryName: string, lib: unknown): KoffiLibLike {
  if (typeof lib === 'object' && lib !== null && typeof (lib as { func?: unknown }).func === 'function') {
    return lib as KoffiLibLike;
  }
  throw new DlbundleError(
    'E_USAGE',
    `The open() callback for ${JSON.stringify(libraryName)} returned ${lib === null ? 'null' : typeof lib} instead of a koffi library.`,
    'Return the result of koffi.load(path) from it.',
    { file: libraryName },
  );
}

function bindAll(libraryName: string, entries: Array<[string, string]>, lib: KoffiLibLike): Record<string, KoffiFunctionLike> {
  const started = process.hrtime.bigint();
  const functions: Record<string, KoffiFunctionLike> = Object.create(null);
  for (const [name, prototype] of entries) {
    let fn: KoffiFunctionLike;
    try {
      fn = lib.func(toKoffiPrototype(prototype));
    } catch (cause) {
      throw bindingError(libraryName, name, prototype, cause);
    }
    const outs = outParameters(prototype);
    functions[name] = outs.length === 0 ? fn : checkingOutParameters(libraryName, name, fn, outs);
  }
  debug('bound %d symbols of %s in %d µs', entries.length, libraryName, Number((process.hrtime.bigint() - started) / 1000n));
  return functions;
}

/**
 * The prototype as handed to koffi 3.3.4. `const` is dropped: koffi ignores it
 * anyway, refuses it after the type (`char const *`), and aborts the whole
 * process (a fatal napi_throw, not an exception) on a `const` after a `*` as in
 * `const char *const s`. `ssize_t` is unknown to koffi; `intptr_t` has its width.
 */
function toKoffiPrototype(prototype: string): string {
  return prototype.replace(/\bconst\b/g, ' ').replace(/\bssize_t\b/g, 'intptr_t');
}

/** The C name in a prototype: the identifier just before the opening parenthesis. */
function cSymbolName(prototype: string): string | undefined {
  return /([A-Za-z_$][\w$]*)\s*\(/.exec(prototype)?.[1];
}

function bindingError(libraryName: string, name: string, prototype: string, cause: unknown): DlbundleError {
  const reason = cause instanceof Error ? cause.message : String(cause);

  // koffi says "Cannot find function 'x' in shared library" when dlsym finds nothing.
  const missing = /^Cannot find function '([^']*)'/.exec(reason);
  if (missing !== null) {
    const symbol = cSymbolName(prototype) ?? missing[1] ?? name;
    return new DlbundleError(
      'E_MISSING_SYMBOL',
      `${JSON.stringify(libraryName)} does not export ${JSON.stringify(symbol)}, declared as ${JSON.stringify(name)}: ${JSON.stringify(prototype)}.`,
      `Check the C name in the prototype against the library's exports: \`nm -D --defined-only ${libraryName}\`; ` +
        'a C++ function needs extern "C", and a library built with -fvisibility=hidden must mark it for export.',
      { file: libraryName, symbol, cause },
    );
  }
  const symbol = cSymbolName(prototype);
  return new DlbundleError(
    'E_BAD_PROTOTYPE',
    `The prototype ${JSON.stringify(prototype)}, declared as ${JSON.stringify(name)} for ${JSON.stringify(libraryName)}, cannot be used: ${reason}`,
    `Write it as a C declaration koffi understands, e.g. ${JSON.stringify('int add(int a, int b)')}; ` +
      'a struct or named type must be declared with koffi.struct() or koffi.alias() before the first call.',
    symbol === undefined ? { file: libraryName, cause } : { file: libraryName, symbol, cause },
  );
}

/** An `_Out_` / `_Inout_` parameter: where it is, and how the prototype writes it. */
interface OutParameter {
  readonly index: number;
  readonly text: string;
}

/** The `_Out_` / `_Inout_` pointer parameters of a prototype, read at run time (the types say the same at compile time). */
function outParameters(prototype: string): OutParameter[] {
  const open = prototype.indexOf('(');
  const close = prototype.lastIndexOf(')');
  if (open < 0 || close < open) return [];
  return prototype
    .slice(open + 1, close)
    .split(',')
    .map((text, index) => ({ index, text: text.trim() }))
    .filter(({ text }) => /(^|[\s*])_(Out|Inout)_([\s*]|$)/.test(text) && text.includes('*'));
}

/**
 * `fn`, refusing before C runs an out-parameter that C cannot write into: a
 * number or bigint would be taken as an address (a crash, or worse: a write
 * anywhere), and an empty array has no room (the value is lost).
 */
function checkingOutParameters(libraryName: string, name: string, fn: KoffiFunctionLike, outs: readonly OutParameter[]): KoffiFunctionLike {
  const checked = (...args: never[]): unknown => {
    for (const { index, text } of outs) {
      const arg: unknown = args[index];
      const empty = (Array.isArray(arg) || ArrayBuffer.isView(arg)) && (arg as { length?: number }).length === 0;
      if (arg === null || (typeof arg === 'object' && !empty)) continue;
      throw new DlbundleError(
        'E_USAGE',
        `${name}() of ${JSON.stringify(libraryName)}: argument ${index + 1} (${text}) is where C writes its result, but it is ${empty ? 'an empty array' : `${typeof arg} ${String(arg)}`}.`,
        'Pass a one-element array that C writes into, e.g. const out = [0]; then read out[0] (an object for a struct; null for NULL).',
        { file: libraryName, symbol: name },
      );
    }
    return fn(...args);
  };
  return checked;
}

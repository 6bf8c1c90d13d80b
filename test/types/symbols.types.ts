/**
 * Compiler-checked tests of the types in src/symbols.ts. `tsc -p tsconfig.json
 * --noEmit` checks this file; nothing runs it (mocha only runs *.test.ts).
 * Every `Expect<Equal<…>>` must hold exactly, and every `@ts-expect-error`
 * marks a line that must not compile.
 */
// koffi's package.json maps `require` to index.cjs with no .d.cts, so its types resolve only in import mode.
import type { LibraryHandle } from 'koffi' with { 'resolution-mode': 'import' };
import {
  bindLibrary,
  type BoundLibrary,
  type CArgumentType,
  type CResultType,
  type FunctionFromPrototype,
  type KoffiLibLike,
  type Pointer,
  type PointerArgument,
} from '../../src/symbols';

type Equal<A, B> = (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false;
type Expect<T extends true> = T;

declare const open: () => KoffiLibLike;
declare const koffiHandle: LibraryHandle;

// koffi's own library handle is what open() returns.
export const openWithKoffi: () => KoffiLibLike = () => koffiHandle;

// --- numbers, up to 32 bits and floating point ------------------------------
export type Numbers = [
  Expect<Equal<FunctionFromPrototype<'int add(int a, int b)'>, (a: number, b: number) => number>>,
  Expect<Equal<FunctionFromPrototype<'int add(int, int)'>, (a: number, b: number) => number>>,
  Expect<Equal<FunctionFromPrototype<'  int   add ( int  a ,int b )  '>, (a: number, b: number) => number>>,
  Expect<Equal<FunctionFromPrototype<'\tint\nadd(int\ta,\n int b);'>, (a: number, b: number) => number>>,
  Expect<Equal<FunctionFromPrototype<'double core_scale(double x, double factor)'>, (x: number, factor: number) => number>>,
  Expect<Equal<FunctionFromPrototype<'float f(float32 x, float64 y)'>, (x: number, y: number) => number>>,
  Expect<Equal<FunctionFromPrototype<'unsigned int f(unsigned int a, unsigned short b, unsigned char c)'>, (a: number, b: number, c: number) => number>>,
  Expect<Equal<FunctionFromPrototype<'uint8_t f(int8_t a, int16_t b, uint16_t c, int32_t d, uint32_t e)'>, (a: number, b: number, c: number, d: number, e: number) => number>>,
  Expect<Equal<FunctionFromPrototype<'char f(short a, const int b, int const c)'>, (a: number, b: number, c: number) => number>>,
  Expect<Equal<FunctionFromPrototype<'int __cdecl add(int a, int b)'>, (a: number, b: number) => number>>,
];

// --- 64-bit integers: a number while exact, a bigint beyond 2^53 ------------
type Big = number | bigint;
export type Int64 = [
  Expect<Equal<FunctionFromPrototype<'int64_t core_mul64(int64_t a, int64_t b)'>, (a: Big, b: Big) => Big>>,
  Expect<Equal<FunctionFromPrototype<'uint64_t f(uint64_t a)'>, (a: Big) => Big>>,
  Expect<Equal<FunctionFromPrototype<'long long f(long long a)'>, (a: Big) => Big>>,
  Expect<Equal<FunctionFromPrototype<'unsigned long long f(unsigned long long)'>, (a: Big) => Big>>,
  Expect<Equal<FunctionFromPrototype<'size_t f(ssize_t a)'>, (a: Big) => Big>>,
  Expect<Equal<FunctionFromPrototype<'intptr_t f(uintptr_t a)'>, (a: Big) => Big>>,
  Expect<Equal<FunctionFromPrototype<'long f(unsigned long a)'>, (a: Big) => Big>>,
  Expect<Equal<CResultType<'size_t'>, Big>>,
  Expect<Equal<CArgumentType<'size_t len'>, Big>>,
];

// --- bool and void ------------------------------------------------------------
export type BoolAndVoid = [
  Expect<Equal<FunctionFromPrototype<'bool core_is_even(int x)'>, (x: number) => boolean>>,
  Expect<Equal<FunctionFromPrototype<'void f(bool b)'>, (b: boolean) => void>>,
  Expect<Equal<FunctionFromPrototype<'void f()'>, () => void>>,
  Expect<Equal<FunctionFromPrototype<'void f(void)'>, () => void>>,
  Expect<Equal<FunctionFromPrototype<'void f( void )'>, () => void>>,
];

// --- strings --------------------------------------------------------------
export type Strings = [
  Expect<Equal<FunctionFromPrototype<'const char *demo_version(void)'>, () => string | null>>,
  Expect<Equal<FunctionFromPrototype<'char* f(char *s)'>, (s: string | null) => string | null>>,
  Expect<Equal<FunctionFromPrototype<'char * f(void)'>, () => string | null>>,
  Expect<Equal<FunctionFromPrototype<'char*f(char*)'>, (s: string | null) => string | null>>,
  Expect<Equal<FunctionFromPrototype<'const char * const f(const char *const s)'>, (s: string | null) => string | null>>,
  Expect<Equal<FunctionFromPrototype<'char const *f(void)'>, () => string | null>>,
  Expect<Equal<FunctionFromPrototype<'const char *! f(void)'>, () => string | null>>,
  Expect<Equal<FunctionFromPrototype<'int core_strlen(const char *s)'>, (s: string | null) => number>>,
  Expect<Equal<FunctionFromPrototype<'const char16_t *f(const wchar_t *s)'>, (s: string | null) => string | null>>,
  Expect<Equal<FunctionFromPrototype<'str f(str s)'>, (s: string | null) => string | null>>,
];

// --- other pointers -------------------------------------------------------
type PtrArg = Pointer | Buffer | ArrayBufferView | ArrayBuffer | null;
export type Pointers = [
  Expect<Equal<PointerArgument, PtrArg>>,
  Expect<Equal<FunctionFromPrototype<'int core_sum_bytes(const uint8_t *buf, size_t len)'>, (buf: PtrArg, len: Big) => number>>,
  Expect<Equal<FunctionFromPrototype<'void *f(void *p)'>, (p: PtrArg) => Pointer | null>>,
  Expect<Equal<FunctionFromPrototype<'void* f(void*)'>, (p: PtrArg) => Pointer | null>>,
  Expect<Equal<FunctionFromPrototype<'unsigned char *f(uint8_t * p)'>, (p: PtrArg) => Pointer | null>>,
  Expect<Equal<FunctionFromPrototype<'char **f(const char **argv)'>, (argv: PtrArg) => Pointer | null>>,
  Expect<Equal<FunctionFromPrototype<'Point *f(Point *p, int **q)'>, (p: PtrArg, q: PtrArg) => Pointer | null>>,
  // A pointer is the bigint koffi returns, but a bigint is not a pointer.
  Expect<Equal<Pointer extends bigint ? true : false, true>>,
  Expect<Equal<bigint extends Pointer ? true : false, false>>,
];

// --- out-parameters: C writes into what is passed ---------------------------
export type OutParameters = [
  Expect<Equal<FunctionFromPrototype<'int f(_Out_ int *x)'>, (x: [number] | null) => number>>,
  Expect<Equal<FunctionFromPrototype<'int f(int a, int b, _Out_ int *quot, _Out_ int *rem)'>, (a: number, b: number, quot: [number] | null, rem: [number] | null) => number>>,
  Expect<Equal<FunctionFromPrototype<'void f(_Inout_ uint64_t *n)'>, (n: [number | bigint] | null) => void>>,
  Expect<Equal<FunctionFromPrototype<'void f(_Out_ bool *ok)'>, (ok: [boolean] | null) => void>>,
  Expect<Equal<FunctionFromPrototype<'void f(_Out_ void **p)'>, (p: [Pointer | null] | null) => void>>,
  Expect<Equal<FunctionFromPrototype<'void f(_Out_ const char **s)'>, (s: [string | null] | null) => void>>,
  // A struct (or any type the parser cannot name): koffi fills an object.
  Expect<Equal<FunctionFromPrototype<'void f(_Out_ Point *p)'>, (p: Record<string, unknown> | null) => void>>,
];

// --- what the parser does not know is unknown, never any -------------------
type Unknown = (...args: unknown[]) => unknown;
export type Unrecognised = [
  Expect<Equal<FunctionFromPrototype<'Point f(Point p)'>, (p: unknown) => unknown>>,
  Expect<Equal<FunctionFromPrototype<'int f(frob x, int y)'>, (x: unknown, y: number) => number>>,
  Expect<Equal<FunctionFromPrototype<'int printf(const char *fmt, ...)'>, (fmt: string | null, ...rest: unknown[]) => number>>,
  Expect<Equal<FunctionFromPrototype<'int add(int a, int b'>, Unknown>>,
  Expect<Equal<FunctionFromPrototype<'int (int a)'>, Unknown>>,
  Expect<Equal<FunctionFromPrototype<'int f(int (*cb)(int))'>, Unknown>>,
  Expect<Equal<FunctionFromPrototype<'int f(int a) trailing'>, Unknown>>,
  Expect<Equal<FunctionFromPrototype<''>, Unknown>>,
  Expect<Equal<FunctionFromPrototype<string>, Unknown>>,
];

// --- bindLibrary: exact types, no `as const` ---------------------------------
const core = bindLibrary(
  'libdemo_core.so',
  {
    add: 'int add(int a, int b)',
    version: 'const char *demo_version(void)',
    mul64: 'int64_t core_mul64(int64_t a, int64_t b)',
    isEven: 'bool core_is_even(int x)',
    sumBytes: 'int core_sum_bytes(const uint8_t *buf, size_t len)',
    strlen: 'int core_strlen(const char *s)',
    nothing: 'void f(void)',
  },
  open,
);

export type Bound = [
  Expect<Equal<typeof core.add, (a: number, b: number) => number>>,
  Expect<Equal<typeof core.version, () => string | null>>,
  Expect<Equal<typeof core.mul64, (a: Big, b: Big) => Big>>,
  Expect<Equal<typeof core.isEven, (x: number) => boolean>>,
  Expect<Equal<typeof core.sumBytes, (buf: PtrArg, len: Big) => number>>,
  Expect<Equal<typeof core.strlen, (s: string | null) => number>>,
  Expect<Equal<typeof core.nothing, () => void>>,
  Expect<Equal<keyof typeof core, 'add' | 'version' | 'mul64' | 'isEven' | 'sumBytes' | 'strlen' | 'nothing'>>,
  Expect<Equal<BoundLibrary<{ add: 'int add(int a, int b)' }>, { readonly add: (a: number, b: number) => number }>>,
];

export function calls(): void {
  const sum: number = core.add(2, 3);
  const version: string | null = core.version();
  const big: number | bigint = core.mul64(6n, 7);
  const even: boolean = core.isEven(4);
  core.sumBytes(Buffer.from([1, 2]), 2);
  core.sumBytes(new Uint8Array(2), 2n);
  core.sumBytes(new DataView(new ArrayBuffer(2)), 2);
  core.sumBytes(null, 0);
  core.strlen(null);
  void [sum, version, big, even];

  // @ts-expect-error too few arguments
  core.add(1);
  // @ts-expect-error too many arguments
  core.add(1, 2, 3);
  // @ts-expect-error a string where a number is wanted
  core.add('1', 2);
  // @ts-expect-error a bigint where a 32-bit int is wanted
  core.add(1n, 2);
  // @ts-expect-error a number where a string is wanted
  core.strlen(5);
  // @ts-expect-error a plain number is not a pointer
  core.sumBytes(5, 1);
  // @ts-expect-error a plain bigint is not a pointer either
  core.sumBytes(5n, 1);
  // @ts-expect-error a boolean where an int is wanted
  core.isEven(true);

  // Out-parameters: what C writes into, or NULL; a number would be a pointer C writes through (a crash).
  const divmod = bindLibrary('libdemo_core.so', { f: 'int core_divmod(int a, int b, _Out_ int *quot, _Out_ int *rem)' }, open).f;
  const quot: [number] = [0];
  divmod(17, 5, quot, [0]);
  divmod(17, 0, null, null);
  // @ts-expect-error a number where C writes an int
  divmod(17, 5, 0, [0]);
  // @ts-expect-error an empty array has nowhere to write
  divmod(17, 5, [], [0]);
  // @ts-expect-error a string where C writes an int
  divmod(17, 5, ['0'], [0]);
  // @ts-expect-error the properties are read-only
  core.add = (a: number, b: number) => a - b;
  // @ts-expect-error a symbol that was not declared
  core.sub(1, 2);
  // @ts-expect-error the result of a void function is no number
  const n: number = core.nothing();
  // @ts-expect-error a string may be null
  const s: string = core.version();
  // @ts-expect-error a 64-bit result may be a bigint
  const m: number = core.mul64(1, 2);
  void [n, s, m];
}

// Without the const type parameter a declaration widens to `string`; a
// separate object declared without `as const` shows what that would cost.
const widened = { add: 'int add(int a, int b)' };
export type Widened = Expect<Equal<BoundLibrary<typeof widened>['add'], Unknown>>;

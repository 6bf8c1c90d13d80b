// Structs, out-parameters, buffers and pointers handed back to C, through the koffi instance dlbundle binds with.
const path = require('node:path');
const dlbundle = require('dlbundle');

const koffi = dlbundle.koffi(); // the same koffi module `require('koffi')` gives, loaded on first use
koffi.struct('demo_point', { x: 'int', y: 'int', len2: 'int' }); // C: typedef struct { int x, y, len2; } demo_point;
koffi.opaque('demo_counter'); // a type C keeps to itself

const bundle = dlbundle.openBundle({ source: dlbundle.fromDirectory(path.join(__dirname, 'native')) });
const core = bundle.library('libdemo_core.so', {
  point: 'demo_point core_point(int x, int y)',                          // a struct returned by value
  divmod: 'int core_divmod(int a, int b, _Out_ int *quot, _Out_ int *rem)', // out-parameters: pass [n]
  sum: 'int core_sum_bytes(const uint8_t *buf, size_t len)',             // a buffer read by C
  counterNew: 'demo_counter *core_counter_new(int start)',               // a pointer C hands out…
  counterNext: 'int core_counter_next(demo_counter *c)',                 // …and takes back
  counterFree: 'void core_counter_free(demo_counter *c)',
});

console.log(core.point(3, 4)); // { x: 3, y: 4, len2: 25 }

const quot = [0];
const rem = [0];
console.log(core.divmod(17, 5, quot, rem), quot[0], rem[0]); // 0 3 2

const bytes = Buffer.from([1, 2, 3, 250]);
console.log(core.sum(bytes, bytes.length)); // 256

const counter = core.counterNew(10);
console.log(core.counterNext(counter), core.counterNext(counter)); // 10 11
core.counterFree(counter);

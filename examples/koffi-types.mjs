// The same in an ES module: structs, out-parameters, buffers and pointers handed back to C.
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { koffi as dlbundleKoffi, openBundle, fromDirectory } from 'dlbundle';

const koffi = dlbundleKoffi(); // the same koffi module `require('koffi')` gives, loaded on first use
koffi.struct('demo_point', { x: 'int', y: 'int', len2: 'int' });
koffi.opaque('demo_counter');

const here = path.dirname(fileURLToPath(import.meta.url));
const bundle = openBundle({ source: fromDirectory(path.join(here, 'native')) });
const core = bundle.library('libdemo_core.so', {
  point: 'demo_point core_point(int x, int y)',
  divmod: 'int core_divmod(int a, int b, _Out_ int *quot, _Out_ int *rem)',
  sum: 'int core_sum_bytes(const uint8_t *buf, size_t len)',
  counterNew: 'demo_counter *core_counter_new(int start)',
  counterNext: 'int core_counter_next(demo_counter *c)',
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

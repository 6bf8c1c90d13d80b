// The same code in a plain directory, inside Electron's app.asar, and in a single executable.
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { openBundle, autoSource } from 'dlbundle';

const here = path.dirname(fileURLToPath(import.meta.url));
const bundle = openBundle({ source: autoSource(path.join(here, 'native')) });
const app = bundle.library('libdemo_app.so', { compute: 'int app_compute(int x)' });
console.log(app.compute(5)); // 1011
console.log(bundle.explain().source.reason);

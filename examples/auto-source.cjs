// The same code in a plain directory, inside Electron's app.asar, and in a single executable.
const path = require('node:path');
const { openBundle, autoSource } = require('dlbundle');

const bundle = openBundle({ source: autoSource(path.join(__dirname, 'native')) });
const app = bundle.library('libdemo_app.so', { compute: 'int app_compute(int x)' });
console.log(app.compute(5)); // 1011
console.log(bundle.explain().source.reason);

// A bundle carried inside the JavaScript (`dlbundle pack … --module native.cjs`), for single-file builds.
const { openBundle, fromBuffers } = require('dlbundle');
const native = require('./native.cjs'); // generated: the blobs as base64, decoded only when extracted

const bundle = openBundle({ source: fromBuffers(native.manifest, native.blobs) });
const core = bundle.library('libdemo_core.so', { add: 'int add(int a, int b)' });
console.log(core.add(2, 3)); // 5

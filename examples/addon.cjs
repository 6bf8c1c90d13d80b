const path = require('node:path');
const { openBundle, fromDirectory } = require('dlbundle');

const bundle = openBundle({ source: fromDirectory(path.join(__dirname, 'native')) });

// demo.node needs libdemo_core.so, which is in the bundle and nowhere on the
// system: dlbundle loads the library first, then the addon, with Node's own
// process.dlopen so that it registers as any addon does.
const demo = bundle.addon('demo.node');
console.log(demo.add(2, 3), demo.version()); // 5 demo-core 1.0.0

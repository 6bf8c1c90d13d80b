const path = require('node:path');
const { openBundle, fromDirectory } = require('dlbundle');

// The directory `dlbundle pack … --out native` wrote (dlbundle.json + one folder per target).
const bundle = openBundle({ source: fromDirectory(path.join(__dirname, 'native')) });

const core = bundle.library('libdemo_core.so', {
  add: 'int add(int a, int b)',              // → (a: number, b: number) => number
  version: 'const char *demo_version(void)', // → () => string | null
});

console.log(core.add(2, 3));    // 5 — first touch: extract (once per machine) → dlopen in dependency order → bind
console.log(core.version());    // demo-core 1.0.0
bundle.ready().then(() => {     // or do it eagerly, without blocking the event loop on file I/O
  console.log(bundle.explain().libraries.map((l) => l.name)); // [ 'libdemo_core.so' ]

  // A library that may be missing on some machines: a result, not an exception.
  const accel = bundle.optional('libdemo_accel.so', { run: 'int accel_run(int x)' });
  if (accel.ok) console.log(accel.lib.run(3));
  else console.log(accel.code, accel.missing); // E_MISSING_DEP [ 'libdemo_gpu_runtime.so.1' ]
});

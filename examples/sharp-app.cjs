const path = require('node:path');
const { openBundle, autoSource } = require('dlbundle');

// The bundle beside this file (or inside the executable `dlbundle sea` made of it).
const bundle = openBundle({ source: autoSource(path.join(__dirname, 'native')) });
// From here on, sharp's require of its own .node file is served from the bundle,
// after libvips; node_modules needs no native file.
bundle.provideAddons();

const sharp = require('sharp');
sharp({ create: { width: 40, height: 30, channels: 3, background: '#c80a0a' } })
  .resize(10, 5)
  .png()
  .toBuffer({ resolveWithObject: true })
  .then(({ info }) => {
    console.log(info.width, info.height); // 10 5
    console.log(bundle.explain().libraries.map((l) => l.name)); // [ 'libvips-cpp.so.8.18.7', 'sharp-linux-x64-0.35.5.node' ]
  });

#!/usr/bin/env node
'use strict';
// `prepublishOnly`: a published package.json names the repository its code
// comes from. This repository has no public address yet, and an invented one
// would send users to somebody else's code; so publishing stops here, saying
// what to add, until the field is real. `npm pack` and installs are not
// affected (prepublishOnly runs only for `npm publish`).
const fs = require('node:fs');
const path = require('node:path');

const file = path.resolve(process.argv[2] ?? path.join(__dirname, '..', 'package.json'));
const pkg = JSON.parse(fs.readFileSync(file, 'utf8'));
const repository = typeof pkg.repository === 'string' ? pkg.repository : pkg.repository?.url;
if (typeof repository !== 'string' || !/^(git\+)?(https|ssh|git):\/\/\S+$|^(github|gitlab|bitbucket):\S+$/.test(repository)) {
  process.stderr.write(
    `${file} has no repository URL, and a published package must say where its code lives.\n` +
      'Add it before `npm publish`, e.g. "repository": { "type": "git", "url": "git+https://<host>/<owner>/dlbundle.git" }.\n',
  );
  process.exit(1);
}

/**
 * A synchronous cold start opens files one after another, and the early
 * flushes it starts on the thread pool cannot finish (and close their
 * descriptors) until the event loop turns. The descriptors in flight are
 * bounded, so a bundle of many files extracts under a low `ulimit -n`.
 */
import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { pack } from '../src/pack';
import { runChild } from './child';
import { buildElf } from './elf-builder';
import { nativeFixture, tempDir } from './fixtures';

const FILLERS = 199;
const NOFILE = 150;

describe('descriptors', () => {
  it(`a synchronous cold start of ${FILLERS + 1} files works with the descriptor limit at ${NOFILE}`, function () {
    this.timeout(120_000);
    const inputs = tempDir();
    const files = [nativeFixture('libdemo_core.so')];
    for (let i = 0; i < FILLERS; i++) {
      const name = `libfill_${i}.so`;
      fs.writeFileSync(path.join(inputs, name), buildElf({ class: 64, endian: 'little', soname: name, needed: ['libc.so.6'] }).bytes);
      files.push(path.join(inputs, name));
    }
    const bundle = path.join(tempDir(), 'bundle');
    pack(files, { name: 'many', out: bundle });
    const cache = path.join(tempDir(), 'cache');
    const r = runChild<{ sum: number; reused: boolean | null; files: number; limit: string }>(
      `const bundle = dl.openBundle({ source: dl.fromDirectory(P.bundle), cacheDir: P.cache, mode: 'disk' });
       const core = bundle.library('libdemo_core.so', { add: 'int add(int a, int b)' });
       const sum = core.add(2, 3); // synchronous: no turn of the event loop before this returns
       const limit = fs.readFileSync('/proc/self/limits', 'utf8').split('\\n').find((l) => l.startsWith('Max open files'));
       return { sum, reused: bundle.explain().reused, files: fs.readdirSync(bundle.dir).length, limit };`,
      { params: { bundle, cache }, under: ['prlimit', `--nofile=${NOFILE}`, '--'] },
    );
    assert.match(r.limit, new RegExp(`^Max open files\\s+${NOFILE}\\s+${NOFILE}\\s`), 'the child ran under the limit');
    assert.equal(r.sum, 5);
    assert.equal(r.reused, false, 'it was a cold start');
    assert.equal(r.files, FILLERS + 2, 'every file and the completion marker were extracted');
  });
});

/**
 * The command line's conventions: help on every command (stdout, status 0),
 * the version, a bare `dlbundle` (usage on stderr, status 1), unknown
 * commands and options named with the nearest known one, missing arguments
 * named, errors as JSON with `--json`, and a doctor that says what to run
 * when it is given a file or nothing that exists.
 */
import { strict as assert } from 'node:assert';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { nativeFixture, REPO, tempDir } from './fixtures';

const CLI = path.join(REPO, 'dist', 'cli.js');

function cli(...args: string[]): { status: number | null; stdout: string; stderr: string } {
  return spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', env: { ...process.env, DLBUNDLE_CACHE_DIR: tempDir() } });
}

// Every command, and every option its help must explain.
const COMMANDS: Readonly<Record<string, readonly string[]>> = {
  pack: ['--name', '--out', '--package', '--strict', '--target', '--requires', '--optional', '--module', '--sea-config', '--json'],
  inspect: ['--json'],
  doctor: ['--json'],
  bundle: ['--out', '--bundle', '--config'],
  sea: ['--bundle', '--out', '--config', '--route'],
  'cache list': ['--json'],
  'cache prune': ['--keep', '--older-than', '--dry-run', '--json'],
};

describe('cli: conventions', () => {
  it('--help, -h and `help` print the commands on stdout with status 0', () => {
    for (const flag of ['--help', '-h', 'help']) {
      const r = cli(flag);
      assert.equal(r.status, 0, flag);
      assert.equal(r.stderr, '');
      for (const c of Object.keys(COMMANDS)) assert.match(r.stdout, new RegExp(`^  ${c} `, 'm'), `${flag}: ${c}`);
    }
  });

  it('--version prints the package version', () => {
    const r = cli('--version');
    assert.equal(r.status, 0);
    assert.equal(r.stdout.trim(), (JSON.parse(fs.readFileSync(path.join(REPO, 'package.json'), 'utf8')) as { version: string }).version);
  });

  it('a bare dlbundle prints the usage on stderr and exits 1', () => {
    const r = cli();
    assert.equal(r.status, 1);
    assert.equal(r.stdout, '');
    assert.match(r.stderr, /^usage: dlbundle <command>/);
  });

  for (const [command, options] of Object.entries(COMMANDS)) {
    it(`dlbundle ${command} --help (and -h, and help ${command}) explains every option on stdout, status 0`, () => {
      const words = command.split(' ');
      for (const args of [[...words, '--help'], [...words, '-h'], ['help', ...words]]) {
        const r = cli(...args);
        assert.equal(r.status, 0, args.join(' '));
        assert.equal(r.stderr, '');
        assert.match(r.stdout, new RegExp(`^usage: dlbundle ${command}`));
        for (const o of options) assert.match(r.stdout, new RegExp(`^  ${o}( |,)`, 'm'), `${args.join(' ')}: ${o} is not explained`);
        assert.doesNotMatch(r.stdout, /Option '--/, 'no raw parseArgs text');
      }
    });
  }

  it('an unknown command is named, with the nearest one', () => {
    for (const [typo, meant] of [['pakc', 'pack'], ['inspetc', 'inspect'], ['doctr', 'doctor']] as const) {
      const r = cli(typo);
      assert.equal(r.status, 2);
      assert.match(r.stderr, new RegExp(`Unknown command "${typo}"\\. Did you mean "${meant}"\\?`));
    }
    assert.match(cli('frobnicate').stderr, /Unknown command "frobnicate"\.\nRun dlbundle --help for the commands\./);
    assert.match(cli('cache', 'prnue').stderr, /Unknown cache command "prnue"\. Did you mean "cache prune"\?/);
  });

  it('an unknown option is named for its command, with the nearest one', () => {
    const r = cli('pack', 'x.so', '--nmae', 'demo');
    assert.equal(r.status, 2);
    assert.match(r.stderr, /^dlbundle: E_USAGE: Unknown option --nmae for dlbundle pack\. Did you mean --name\?\nRun dlbundle pack --help/);
    assert.match(cli('sea', 'a.js', '--bundel', 'x').stderr, /Unknown option --bundel for dlbundle sea\. Did you mean --bundle\?/);
    assert.match(cli('inspect', '--bogus').stderr, /Unknown option --bogus for dlbundle inspect\./);
  });

  it('a missing argument or value is named', () => {
    assert.match(cli('pack', 'x.so', '--out', 'o').stderr, /dlbundle pack needs --name NAME: the bundle's name/);
    assert.match(cli('pack', 'x.so', '--name', 'n').stderr, /dlbundle pack needs --out DIR: the bundle directory to write/);
    assert.match(cli('pack', '--name', 'n', '--out', 'o').stderr, /pack needs the files to pack/);
    assert.match(cli('pack', 'x.so', '--out', 'o', '--name').stderr, /--name needs a value: --name NAME/);
    assert.match(cli('sea', 'main.js', '--out', 'app').stderr, /dlbundle sea needs --bundle DIR/);
    assert.match(cli('bundle', '--out', 'a.cjs').stderr, /dlbundle bundle needs the entry script/);
    assert.match(cli('cache').stderr, /dlbundle cache needs list or prune/);
    for (const args of [['pack', 'x.so'], ['sea', 'main.js'], ['bundle'], ['cache']]) assert.equal(cli(...args).status, 2, args.join(' '));
  });

  it('with --json, errors are one JSON object on stderr', () => {
    const r = cli('inspect', '--json');
    assert.equal(r.status, 2);
    assert.deepEqual(JSON.parse(r.stderr), { error: { code: 'E_USAGE', message: 'inspect needs shared objects or a bundle directory.', hint: 'Run dlbundle inspect --help for its arguments and options.' } });
    const txt = path.join(tempDir(), 'x.so');
    fs.writeFileSync(txt, 'not elf');
    const bad = cli('inspect', '--json', txt);
    assert.equal(bad.status, 1);
    const error = (JSON.parse(bad.stderr) as { error: { code: string; message: string; hint: string } }).error;
    assert.equal(error.code, 'E_NOT_ELF');
    assert.match(error.message, /is not an ELF, PE or Mach-O file/);
    assert.notEqual(error.hint, '');
  });

  it('doctor given a library file, or a path that does not exist, says what to run instead', () => {
    const lib = nativeFixture('libdemo_core.so');
    const file = cli('doctor', lib);
    assert.equal(file.status, 2);
    assert.doesNotMatch(file.stderr, /ENOTDIR/);
    assert.match(file.stderr, new RegExp(`is a file; doctor checks a bundle directory[^\\n]*\\nFor a library's ELF facts: dlbundle inspect ${lib.replace(/[.]/g, '\\.')}\\.`));
    const missing = cli('doctor', '/nonexistent');
    assert.equal(missing.status, 2);
    assert.match(missing.stderr, /"\/nonexistent" does not exist\.\nPass the bundle directory that `dlbundle pack --out` wrote: dlbundle doctor <bundle-dir>\./);
  });

  it('sea --route takes inject or build-sea, and build-sea only on a node that has it', () => {
    const bad = cli('sea', 'main.js', '--bundle', 'native', '--out', 'app', '--route', 'injekt');
    assert.equal(bad.status, 2);
    assert.match(bad.stderr, /Unknown --route "injekt"[\s\S]*did you mean inject\?/);
    const [major = 0, minor = 0] = process.versions.node.split('.').map(Number);
    if (major < 25 || (major === 25 && minor < 5)) {
      const old = cli('sea', path.join(REPO, 'examples', 'use-it.cjs'), '--bundle', tempDir(), '--out', path.join(tempDir(), 'app'), '--route', 'build-sea');
      assert.equal(old.status, 2);
      assert.match(old.stderr, /`node --build-sea` needs Node 25\.5 or newer/);
    }
  });

  it('pack counts one file as "1 file"', () => {
    const r = cli('pack', nativeFixture('libdemo_core.so'), '--name', 'one', '--out', path.join(tempDir(), 'out'));
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /^packed 1 file as linux-x64-gnu into /);
  });
});

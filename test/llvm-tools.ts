/**
 * Where LLVM's tools are: Debian's `llvm` package installs some under their
 * plain names (llvm-readobj, llvm-objdump) and others only with the version
 * (llvm-otool-14, llvm-lipo-14), all of them in /usr/lib/llvm-<n>/bin.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';

/**
 * The path of LLVM tool `name` (`llvm-otool`, `llvm-lipo`, …): on PATH under
 * its plain name or with a version suffix, else in /usr/lib/llvm-<n>/bin
 * (the newest). Throws, naming the Debian package, when there is none.
 *
 * @example
 * llvmTool('llvm-otool') // '/usr/bin/llvm-otool-14'
 */
export function llvmTool(name: string): string {
  const dirs = (process.env.PATH ?? '').split(path.delimiter).filter((d) => d !== '');
  for (const dir of dirs) {
    const plain = path.join(dir, name);
    if (isExecutable(plain)) return plain;
  }
  const versioned: { file: string; version: number }[] = [];
  for (const dir of dirs) {
    let entries: string[];
    try {
      entries = fs.readdirSync(dir);
    } catch {
      continue; // a PATH entry that does not exist
    }
    for (const e of entries) {
      const m = new RegExp(`^${name}-(\\d+)$`).exec(e);
      if (m !== null && isExecutable(path.join(dir, e))) versioned.push({ file: path.join(dir, e), version: Number(m[1]) });
    }
  }
  try {
    for (const d of fs.readdirSync('/usr/lib')) {
      const m = /^llvm-(\d+)$/.exec(d);
      const file = path.join('/usr/lib', d, 'bin', name);
      if (m !== null && isExecutable(file)) versioned.push({ file, version: Number(m[1]) });
    }
  } catch {
    // No /usr/lib: nothing more to look at.
  }
  versioned.sort((a, b) => b.version - a.version);
  const found = versioned[0];
  if (found === undefined) throw new Error(`${name} is not installed: install Debian's llvm package (apt-get install -y llvm).`);
  return found.file;
}

function isExecutable(file: string): boolean {
  try {
    fs.accessSync(file, fs.constants.X_OK);
    return fs.statSync(file).isFile();
  } catch {
    return false;
  }
}

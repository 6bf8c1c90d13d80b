/**
 * One entry to the three binary-format readers: `readBinary` looks at the
 * magic number and hands the bytes to the ELF, PE or Mach-O reader. Each
 * reader answers with the facts every format shares (`soname`, `needed`,
 * `runpath`, `machine`) under the same names, and its own beside them.
 */
import { DlbundleError } from '../errors';
import { readElf, type ElfInfo } from './elf';
import { bufferSource, type ByteSource } from './byte-reader';
import { FAT_ARCH_LIMIT, readMachO, type MachOImage, type MachOInfo } from './macho';
import { readPe, type PeInfo } from './pe';

/** The binary formats dlbundle reads. */
export type BinaryFormat = 'elf' | 'pe' | 'macho';

/** An ELF file's facts, marked with their format. */
export type ElfBinary = ElfInfo & { readonly format: 'elf' };

/** What {@link readBinary} learned: the facts of whichever format the file is. */
export type BinaryInfo = ElfBinary | PeInfo | MachOInfo;

/**
 * The format the first bytes announce, or null: `\x7fELF`, `MZ`, or one of
 * the Mach-O magic numbers (thin, either byte order, or universal).
 * 0xcafebabe also starts Java class files; with 45 or more "architectures"
 * (a class file's version) it is not taken for Mach-O.
 *
 * @example
 * binaryFormatOf(fs.readFileSync('koffi.node').subarray(0, 8)) // 'pe' on Windows builds
 */
export function binaryFormatOf(head: Uint8Array): BinaryFormat | null {
  if (head.length >= 4 && head[0] === 0x7f && head[1] === 0x45 && head[2] === 0x4c && head[3] === 0x46) return 'elf';
  if (head.length >= 2 && head[0] === 0x4d && head[1] === 0x5a) return 'pe';
  if (head.length < 4) return null;
  const v = new DataView(head.buffer, head.byteOffset, head.byteLength);
  const be = v.getUint32(0, false);
  if (be === 0xfeedface || be === 0xfeedfacf || be === 0xcefaedfe || be === 0xcffaedfe) return 'macho';
  if (be === 0xcafebabf) return 'macho';
  if (be === 0xcafebabe) return head.length >= 8 && v.getUint32(4, false) < FAT_ARCH_LIMIT ? 'macho' : null;
  return null;
}

// Enough bytes to tell every format apart (a universal header's count included).
const SNIFF = 8;

/**
 * Reads any shared library dlbundle knows: ELF, PE or Mach-O, chosen by the
 * magic number. Throws `E_NOT_ELF` when the file is none of them (the code
 * kept from when ELF was the only format), and the format's own code for a
 * damaged file: `E_BAD_ELF`, `E_BAD_PE`, `E_BAD_MACHO`, each with the byte offset.
 *
 * @example
 * const info = readBinary(fs.readFileSync('libvips-42.dll'), 'libvips-42.dll');
 * if (info.format === 'pe') info.needed // ['KERNEL32.dll', 'api-ms-win-crt-stdio-l1-1-0.dll', …]
 */
export function readBinary(input: Uint8Array | ByteSource, file = '<buffer>'): BinaryInfo {
  const src = input instanceof Uint8Array ? bufferSource(input) : input;
  const format = binaryFormatOf(src.read(0, Math.min(SNIFF, src.size)));
  if (format === 'elf') return { format: 'elf', ...readElf(src, file) };
  if (format === 'pe') return readPe(src, file);
  if (format === 'macho') return readMachO(src, file);
  throw new DlbundleError(
    'E_NOT_ELF',
    `${JSON.stringify(file)} is not an ELF, PE or Mach-O file: it starts with neither 0x7f "ELF" (Linux), "MZ" (Windows) nor a Mach-O magic number (macOS).`,
    'Pass shared libraries (.so, .dll, .dylib) or .node addons; scripts, archives, import libraries (.lib) and linker scripts cannot be loaded.',
    { file, offset: 0 },
  );
}

/**
 * The images a file holds, each with the facts every format shares: one for
 * ELF and PE files and thin Mach-O files, one per architecture for a
 * universal Mach-O file.
 *
 * @example
 * binaryImages(readBinary(bytes)).map((i) => i.machine) // ['x86_64', 'aarch64'] for a universal dylib
 */
export function binaryImages(info: BinaryInfo): readonly (ElfBinary | PeInfo | (MachOImage & { readonly format: 'macho' }))[] {
  if (info.format !== 'macho') return [info];
  return info.images.map((image) => ({ format: 'macho' as const, ...image }));
}

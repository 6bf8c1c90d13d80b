/**
 * The manifest's name and format number: a module of their own so that
 * dlbundle's front (index.ts) can export them without the manifest reader.
 */

/** The manifest format this version reads and writes. */
export const MANIFEST_FORMAT = 1;

/** The manifest's file name inside a bundle directory. */
export const MANIFEST_FILE = 'dlbundle.json';

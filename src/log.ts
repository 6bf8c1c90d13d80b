/**
 * dlbundle's logs, under `dlbundle:*` namespaces through `debug`, which is
 * loaded only when `DEBUG` is set: loading it costs a start-up ≈ 12 ms (it
 * pulls in tty, net and stream), and inside a single executable its optional
 * `require('supports-color')` makes Node print a warning. With `DEBUG` set,
 * `debug` decides what to print, exactly as before.
 */

/** A log function: printf-like format (`%s`, `%d`, `%o`) and arguments. */
export type Log = (format: string, ...args: unknown[]) => void;

let enabled: boolean | undefined;

/**
 * The log function of one namespace; it does nothing, and loads nothing,
 * unless `DEBUG` was set when the first message was logged.
 *
 * @example
 * const debug = logger('dlbundle:cache'); debug('reused %s', dir);
 */
export function logger(namespace: string): Log {
  let write: Log | undefined;
  return (format, ...args) => {
    enabled ??= (process.env.DEBUG ?? '') !== '';
    if (!enabled) return;
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    write ??= (require('debug') as typeof import('debug'))(namespace);
    write(format, ...args);
  };
}

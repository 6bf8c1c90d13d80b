/**
 * Progress of long work on the command line (`pack` of large libraries,
 * `--module`, `sea`): one line on stderr, rewritten in place, when stderr is
 * a terminal; nothing at all when it is not (a pipe, a log file, CI), where
 * a stream of carriage returns would only be noise.
 */

/** What a command reports its work through. */
export interface Progress {
  /** Bytes done of `total` so far. */
  update(done: number, total: number): void;
  /** A step without a byte count ("injecting the blob…"). */
  step(text: string): void;
  /** Ends the line in progress. */
  done(): void;
}

const SILENT: Progress = { update: () => undefined, step: () => undefined, done: () => undefined };

/**
 * A progress line labelled `label` on `stream`, or a silent one when `stream`
 * is not a terminal. Updates more often than every 100 ms are dropped.
 *
 * @example
 * const p = progressLine('packing', process.stderr);
 * pack(files, { …, onProgress: (d, t) => p.update(d, t) }); p.done();
 */
export function progressLine(label: string, stream: NodeJS.WriteStream = process.stderr): Progress {
  if (stream.isTTY !== true) return SILENT;
  const started = Date.now();
  let shown = 0;
  let open = false;
  const write = (text: string): void => {
    stream.write(`\r\x1b[2K${text}`);
    open = true;
  };
  return {
    update(done, total) {
      const now = Date.now();
      if (now - shown < 100 && done < total) return;
      shown = now;
      const seconds = Math.max((now - started) / 1000, 0.001);
      write(`${label}: ${mb(done)} of ${mb(total)} MB (${Math.floor((100 * done) / Math.max(total, 1))} %), ${mb(done / seconds)} MB/s`);
    },
    step(text) {
      write(`${label}: ${text}`);
    },
    done() {
      if (open) stream.write('\r\x1b[2K');
      open = false;
    },
  };
}

function mb(bytes: number): string {
  return (bytes / 1e6).toFixed(1);
}

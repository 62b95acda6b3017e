/**
 * The log destination of `sidx serve`: every pino line is written to stdout with `fs.writeSync` before the log call
 * returns, so a kill -9 loses no line already logged (pino's default destination, and process.stdout on a pipe, keep
 * lines in memory while a write is pending; a full pipe holds them there for as long as the reader is slow). The
 * price is one write system call per line, and a reader that stops reading stalls the server instead of growing
 * its memory.
 */
import { writeSync } from 'node:fs';

const sleeper = new Int32Array(new SharedArrayBuffer(4));

export interface LineDestination {
  write(line: string): void;
}

/** Writes to `fd` (default 1, stdout) synchronously; EAGAIN (a non-blocking descriptor that is full) is retried. */
export function syncDestination(fd = 1): LineDestination {
  let broken = false;
  const stopWriting = (to: number) => {
    broken = true;
    process.stderr.write(`sidx serve: the log's reader closed its end (fd ${to}: EPIPE); the server goes on without a log\n`);
  };
  return {
    write(line: string): void {
      if (broken) return;
      const bytes = Buffer.from(line, 'utf8');
      for (let at = 0; at < bytes.length;) {
        try {
          at += writeSync(fd, bytes, at);
        } catch (err) {
          const code = (err as NodeJS.ErrnoException).code;
          if (code === 'EAGAIN') Atomics.wait(sleeper, 0, 0, 5);
          else if (code === 'EPIPE') return void stopWriting(fd); // nobody reads the log any more: stop writing it
          else throw err;
        }
      }
    },
  };
}

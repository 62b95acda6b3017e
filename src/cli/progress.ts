/**
 * A one-line progress display on stderr for long CLI jobs.
 * - On a TTY the line is redrawn in place (carriage return + erase line), at most every `minIntervalMs`
 *   (the latest text is always drawn by `done` or the next due update).
 * - Otherwise (a pipe, a log file, CI) every `update` is written as its own line, so logs keep the whole history;
 *   callers should update on meaningful steps, not in tight loops. With `quietLineMs` an update is written only
 *   when nothing (no update, no `log` line) was written for that long: a heartbeat for callers whose steps are many
 *   and fast, such as training steps.
 * `log` prints a permanent line above the progress line; `done` finishes the line.
 */
export interface ProgressStream {
  write(text: string): unknown;
  isTTY?: boolean;
}

export interface ProgressOptions {
  stream?: ProgressStream;
  /** Shown before every update, e.g. "train". */
  prefix?: string;
  /** Force the TTY (redraw) or line mode; default: the stream's isTTY. */
  tty?: boolean;
  minIntervalMs?: number;
  /** Line mode only: write an update only after this many ms without output (default 0: every update). */
  quietLineMs?: number;
  /** Clock in milliseconds (tests). */
  now?: () => number;
}

const ERASE_LINE = '\r\x1b[2K';

export class ProgressLine {
  readonly tty: boolean;
  #stream: ProgressStream;
  #prefix: string;
  #minIntervalMs: number;
  #quietLineMs: number;
  #lastLine = -Infinity;
  #now: () => number;
  #lastDraw = -Infinity;
  #pending: string | null = null;
  #shown = false;
  #started: number;

  constructor(options: ProgressOptions = {}) {
    this.#stream = options.stream ?? process.stderr;
    this.tty = options.tty ?? this.#stream.isTTY === true;
    this.#prefix = options.prefix === undefined ? '' : `${options.prefix}: `;
    this.#minIntervalMs = options.minIntervalMs ?? 100;
    this.#quietLineMs = options.quietLineMs ?? 0;
    this.#now = options.now ?? (() => performance.now());
    this.#started = this.#now();
  }

  /** Seconds since the progress line was created. */
  get elapsedSeconds(): number {
    return (this.#now() - this.#started) / 1000;
  }

  update(text: string): void {
    if (!this.tty) {
      const now = this.#now();
      if (now - this.#lastLine < this.#quietLineMs) return;
      this.#line(text);
      return;
    }
    this.#pending = text;
    const now = this.#now();
    if (now - this.#lastDraw < this.#minIntervalMs) return;
    this.#draw(now);
  }

  /** A permanent line (the progress line, if any, is redrawn below it on a TTY). */
  log(text: string): void {
    if (this.tty && this.#shown) this.#stream.write(ERASE_LINE);
    this.#line(text);
    if (this.tty && this.#shown && this.#pending !== null) this.#draw(this.#now());
    else this.#shown = false;
  }

  /** Draws the latest text (or `text`) and ends the line. */
  done(text?: string): void {
    if (text !== undefined) this.#pending = text;
    if (!this.tty) {
      if (text !== undefined) this.#line(text);
      return;
    }
    if (this.#pending !== null) this.#draw(this.#now());
    if (this.#shown) this.#stream.write('\n');
    this.#shown = false;
    this.#pending = null;
  }

  #line(text: string): void {
    this.#stream.write(`${this.#prefix}${text}\n`);
    this.#lastLine = this.#now();
  }

  #draw(now: number): void {
    this.#stream.write(`${ERASE_LINE}${this.#prefix}${this.#pending ?? ''}`);
    this.#lastDraw = now;
    this.#shown = true;
  }
}

/** "12.3 s" / "2 min 05 s" */
export function formatSeconds(seconds: number): string {
  if (seconds < 60) return `${seconds.toFixed(1)} s`;
  const minutes = Math.floor(seconds / 60);
  return `${minutes} min ${String(Math.round(seconds - minutes * 60)).padStart(2, '0')} s`;
}

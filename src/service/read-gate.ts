/**
 * Lets a model swap happen between requests, never inside one: reads (encode, retrieve) run inside `run`, and
 * `exclusive` waits for the reads in flight to finish, holds new ones back while its function runs (a swap takes
 * a few milliseconds: one LMDB and one SQLite commit), then lets them go. A read therefore sees one model from
 * its encoding to its candidate lookup.
 */
export class ReadGate {
  #active = 0;
  #closed: Promise<void> | null = null;
  #idle: (() => void) | null = null;

  /** Reads in flight, the caller's included when asked from inside `run`. */
  get reading(): number {
    return this.#active;
  }

  async run<T>(fn: () => Promise<T>): Promise<T> {
    while (this.#closed) await this.#closed;
    this.#active++;
    try {
      return await fn();
    } finally {
      this.#active--;
      if (this.#active === 0) this.#idle?.();
    }
  }

  async exclusive<T>(fn: () => Promise<T>): Promise<T> {
    while (this.#closed) await this.#closed;
    let open!: () => void;
    this.#closed = new Promise<void>((r) => (open = r));
    try {
      if (this.#active > 0) await new Promise<void>((r) => (this.#idle = r));
      this.#idle = null;
      return await fn();
    } finally {
      this.#closed = null;
      open();
    }
  }
}

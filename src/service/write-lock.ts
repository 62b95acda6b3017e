/**
 * Serialises catalog writes with the vector slot writes and syncs that follow them, so the vector store
 * always reflects a prefix of the change log. Encoding happens outside the lock.
 */
export class WriteLock {
  #tail: Promise<unknown> = Promise.resolve();

  run<T>(fn: () => T | Promise<T>): Promise<T> {
    const next = this.#tail.then(fn, fn);
    this.#tail = next.catch(() => undefined);
    return next;
  }

  /** Resolves once every write queued so far has finished. */
  drain(): Promise<void> {
    return this.#tail.then(() => undefined);
  }
}

/**
 * The calls a thread's owner has posted to a worker and awaits the answers of: an id per call, the pending calls by
 * id, and every one failed at once when the worker errs or exits (posting-fold-thread.ts, space-drop-thread.ts).
 */
export interface PendingCall<T> {
  resolve: (value: T) => void;
  reject: (err: Error) => void;
}

export class WorkerCalls<T> {
  #calls = new Map<number, PendingCall<T>>();
  #nextId = 1;

  /** Calls awaiting their answer. */
  get size(): number {
    return this.#calls.size;
  }

  /**
   * A new call: `post` sends it to the worker with its id; the result settles with `take(id)`'s answer. A `post`
   * that throws (a message that cannot be cloned) rejects the call, which is no longer pending.
   */
  call(post: (id: number) => void): Promise<T> {
    const id = this.#nextId++;
    return new Promise<T>((resolve, reject) => {
      this.#calls.set(id, { resolve, reject });
      try {
        post(id);
      } catch (err) {
        this.#calls.delete(id);
        throw err;
      }
    });
  }

  /** The call an answer is for, no longer pending; undefined when it was failed already. */
  take(id: number): PendingCall<T> | undefined {
    const call = this.#calls.get(id);
    this.#calls.delete(id);
    return call;
  }

  /** Fails every pending call with `err`. */
  failAll(err: Error): void {
    const calls = [...this.#calls.values()];
    this.#calls.clear();
    for (const c of calls) c.reject(err);
  }
}

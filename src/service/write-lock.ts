/**
 * Serialises catalog writes with the vector slot writes and syncs that follow them, so the vector store
 * always reflects a prefix of the change log. Encoding happens outside the lock.
 *
 * An upsert is pipelined (`pipeline`): it holds the lock until its transaction body has run and hands back a
 * `finish` (its commit, then the vector store's update) that completes after the lock has moved on to the next
 * upsert. Every other write (`run`) first waits for all such finishes.
 */
import { InFlight } from '../in-flight.ts';

export class WriteLock {
  #tail: Promise<unknown> = Promise.resolve();
  #finishing = new InFlight();

  /** Runs `fn` alone, once every write queued before it has finished. */
  run<T>(fn: () => T | Promise<T>): Promise<T> {
    return this.#queue(async () => {
      await this.finished();
      return fn();
    });
  }

  /** Runs `stage` alone; the next write may start once it resolves, and the result is its `finish`'s. */
  async pipeline<T>(stage: () => Promise<{ finish: Promise<T> }>): Promise<T> {
    const { finish } = await this.#queue(async () => {
      const staged = await stage();
      this.#finishing.track(staged.finish);
      return staged;
    });
    return finish;
  }

  /** Resolves once every pipelined write's finish has settled. */
  finished(): Promise<void> {
    return this.#finishing.all();
  }

  /** Resolves once every write queued so far has finished. */
  async drain(): Promise<void> {
    await this.#tail;
    await this.finished();
  }

  #queue<T>(fn: () => Promise<T>): Promise<T> {
    const next = this.#tail.then(fn, fn);
    this.#tail = next.catch(() => undefined);
    return next;
  }
}

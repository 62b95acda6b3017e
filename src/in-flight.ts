/**
 * Promises in flight, each tracked until it settles (resolved or rejected), and a wait for all of them, those
 * tracked meanwhile included: how the service's write lock and the catalog's transactions follow pipelined upserts.
 */
export class InFlight {
  #settled = new Set<Promise<void>>();

  get size(): number {
    return this.#settled.size;
  }

  /** Tracks `p`; the result resolves (never rejects) once `p` has settled. */
  track(p: Promise<unknown>): Promise<void> {
    const settled = p.then(() => undefined, () => undefined);
    this.#settled.add(settled);
    void settled.then(() => this.#settled.delete(settled));
    return settled;
  }

  /** Resolves once every tracked promise has settled, including those tracked while it waits. */
  async all(): Promise<void> {
    while (this.#settled.size > 0) await Promise.all([...this.#settled]);
  }
}

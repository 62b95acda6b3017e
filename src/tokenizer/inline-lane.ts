/**
 * The encoder pool's inline lane: one CPU session set (encoder-session.mjs) on the calling thread, for a lone
 * single-row call. ORT's run (and the addon's beam) blocks its thread for its length (a beam query of models/default:
 * about 0.13 ms warm, 0.26 ms in a busy server), and a worker answers the same call in that plus two thread wake-ups
 * (a message each way; on an idle VM each costs a sizeable share of the run). So the lane is taken only when the
 * caller says no other request waits for the event loop, no worker run is in flight or queued, and the lane itself
 * is free; otherwise the call goes to the workers.
 */
import { encoderLane, type EncoderLane, type LaneParams, type LaneReply, type LaneRequest } from './encoder-session.mjs';

/** Rows a call may have to run inline. */
export const INLINE_MAX_ROWS = 1;

export class InlineLane {
  #lane: EncoderLane;
  #ready = false;
  #running: Promise<LaneReply> | undefined;
  #closed = false;

  private constructor(lane: EncoderLane) {
    this.#lane = lane;
  }

  /** Opens the sessions in the background; `log` hears why when they cannot be opened (the lane then stays unused). */
  static start(params: Omit<LaneParams, 'provider' | 'intraOpThreads'>, log: (msg: string) => void): InlineLane {
    const lane = new InlineLane(encoderLane({ ...params, provider: 'cpu', intraOpThreads: 1 }));
    lane.#lane.open().then(() => {
      if (lane.#closed) void lane.#lane.release();
      else lane.#ready = true;
    }, (err: unknown) => log(`inline encoder lane not started: ${(err as Error).message}`));
    return lane;
  }

  /** Whether a call can run now. */
  get free(): boolean {
    return this.#ready && !this.#closed && this.#running === undefined;
  }

  /** Runs `request` (check `free` first). */
  async run(request: LaneRequest): Promise<LaneReply> {
    this.#running = this.#lane.run(request);
    try {
      return await this.#running;
    } finally {
      this.#running = undefined;
    }
  }

  /** Waits for a run in flight, then releases the sessions. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#running?.catch(() => undefined);
    if (this.#ready) await this.#lane.release();
  }
}

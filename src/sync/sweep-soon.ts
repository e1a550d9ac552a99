// A write into the hub's root whose folder is moved or removed on the NAS in the middle leaves its temp file behind:
// the rename fails, and the writer's cleanup looks under the old name (soak seeds 3014, 4139). The sweep (staging.ts)
// removes write temps that no write of this process uses (root-files.ts newTempName), but it runs at the start and
// every few hours; after such a failure it runs soon. A write that fails because someone edited its file meanwhile
// asks too (the two look alike to the writer), so a busy NAS could ask often: at most one sweep per GAP_MS, and one
// asked for during the gap runs at its end (a sweep that came too early for a move is followed by one that does not).

import type { Logger } from '../log.ts';

/** After a failure, the sweep waits this long (the failures of one folder move come together)... */
const DELAY_MS = 1000;
/** ...and at least this long after the sweep before (a walk of the whole root folder). */
const GAP_MS = 10_000;

export class SweepSoon {
  readonly #sweep: () => Promise<void>;
  readonly #log: Logger;
  readonly #delayMs: number;
  readonly #gapMs: number;
  #timer: NodeJS.Timeout | undefined;
  #last = -Infinity;
  #running: Promise<void> = Promise.resolve();
  #stopped = false;

  constructor(sweep: () => Promise<void>, log: Logger, opts: { delayMs?: number; gapMs?: number } = {}) {
    this.#sweep = sweep;
    this.#log = log;
    this.#delayMs = opts.delayMs ?? DELAY_MS;
    this.#gapMs = opts.gapMs ?? GAP_MS;
  }

  /** Asks for a sweep: one is due soon if none is already. */
  soon(): void {
    if (this.#timer || this.#stopped) return;
    const wait = Math.max(this.#delayMs, this.#last + this.#gapMs - Date.now());
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.#last = Date.now();
      this.#running = this.#sweep().catch((err: unknown) => this.#log.warn({ err }, 'hub root: sweeping temp files failed; tried again later'));
    }, wait);
    this.#timer.unref();
  }

  /** No sweep starts any more; resolves once one that runs has ended. */
  async stop(): Promise<void> {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#stopped = true;
    await this.#running;
  }
}

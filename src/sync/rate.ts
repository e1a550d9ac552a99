// A send-rate limit for chunk streams (BALUPI_SYNC_MAX_SEND_RATE): a token bucket with one second of burst. Every
// sender in the process shares one bucket, so the limit holds for the sum of concurrent streams.

export class SendRate {
  readonly bytesPerSecond: number | null;
  private available: number;
  private last: number;
  private queue: Promise<void> = Promise.resolve();

  constructor(bytesPerSecond: number | null) {
    this.bytesPerSecond = bytesPerSecond && bytesPerSecond > 0 ? bytesPerSecond : null;
    this.available = this.bytesPerSecond ?? 0;
    this.last = performance.now();
  }

  /** Resolves when `bytes` may be sent. Callers take turns (FIFO), so a large chunk cannot starve behind small ones. */
  take(bytes: number, signal?: AbortSignal): Promise<void> {
    const rate = this.bytesPerSecond;
    if (rate === null) return Promise.resolve();
    const turn = this.queue.then(async () => {
      const now = performance.now();
      this.available = Math.min(rate, this.available + ((now - this.last) / 1000) * rate);
      this.last = now;
      this.available -= bytes;
      if (this.available < 0) await sleep((-this.available / rate) * 1000, signal);
    });
    this.queue = turn.catch(() => {});
    return turn;
  }
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const t = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(t);
      reject(signal!.reason);
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

// A wake-up call that is not lost when it comes while nobody is waiting yet: notify() marks it pending, and the
// next wait() returns at once (and clears it). Used by the loops that sleep until there is work.

export class Wakeup {
  private pending = false;
  private waiters: (() => void)[] = [];

  notify(): void {
    this.pending = true;
    const ws = this.waiters;
    this.waiters = [];
    for (const w of ws) w();
  }

  /** Resolves on notify(), after `timeoutMs` (null: no timeout) or when `signal` aborts. */
  wait(signal: AbortSignal, timeoutMs: number | null = null): Promise<void> {
    if (this.pending || signal.aborted) {
      this.pending = false;
      return Promise.resolve();
    }
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(t);
        signal.removeEventListener('abort', done);
        this.waiters = this.waiters.filter((w) => w !== done);
        this.pending = false;
        resolve();
      };
      const t = timeoutMs === null ? undefined : setTimeout(done, timeoutMs);
      signal.addEventListener('abort', done, { once: true });
      this.waiters.push(done);
    });
  }
}

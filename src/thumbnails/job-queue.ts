// A bounded queue of sharp jobs: at most `concurrency` run at once (one per core: each job uses one libvips thread),
// requests wait in a FIFO of bounded length, and background (eager) work waits in a second, smaller FIFO that only
// runs when no request is waiting and that drops new work when full rather than growing.

export class QueueFullError extends Error {
  override name = 'QueueFullError';
}

interface Waiter {
  start: () => void;
}

export interface JobQueueOptions {
  /** Jobs running at once. */
  concurrency: number;
  /** Requests that may wait for a slot; the next one is refused (QueueFullError). */
  maxWaiting: number;
  /** Background jobs that may wait; the next one is dropped. */
  maxBackground: number;
  /** Background jobs running at once (at most `concurrency`), so requests always find a free core soon. */
  backgroundConcurrency: number;
}

export class JobQueue {
  readonly #opts: JobQueueOptions;
  #running = 0;
  #runningBackground = 0;
  readonly #waiting: Waiter[] = [];
  readonly #background: Waiter[] = [];

  constructor(opts: JobQueueOptions) {
    if (!(opts.concurrency >= 1)) throw new RangeError('concurrency must be at least 1');
    this.#opts = { ...opts, backgroundConcurrency: Math.max(1, Math.min(opts.backgroundConcurrency, opts.concurrency)) };
  }

  get running(): number {
    return this.#running;
  }

  get waiting(): number {
    return this.#waiting.length + this.#background.length;
  }

  /** Runs `fn` when a slot is free; rejects with QueueFullError at once if too many requests already wait. */
  run<T>(fn: () => Promise<T>): Promise<T> {
    if (this.#running < this.#opts.concurrency && this.#waiting.length === 0) return this.#start(fn, false);
    if (this.#waiting.length >= this.#opts.maxWaiting) return Promise.reject(new QueueFullError('too many thumbnail requests waiting'));
    return new Promise<T>((resolve, reject) => {
      this.#waiting.push({ start: () => this.#start(fn, false).then(resolve, reject) });
    });
  }

  /** Queues background work; returns false (and never runs `fn`) if the background queue is full. */
  offer(fn: () => Promise<unknown>): boolean {
    if (this.#canStartBackground()) {
      void this.#start(fn, true).catch(() => {});
      return true;
    }
    if (this.#background.length >= this.#opts.maxBackground) return false;
    this.#background.push({ start: () => void this.#start(fn, true).catch(() => {}) });
    return true;
  }

  #canStartBackground(): boolean {
    return this.#running < this.#opts.concurrency && this.#waiting.length === 0 && this.#runningBackground < this.#opts.backgroundConcurrency;
  }

  async #start<T>(fn: () => Promise<T>, background: boolean): Promise<T> {
    this.#running += 1;
    if (background) this.#runningBackground += 1;
    try {
      return await fn();
    } finally {
      this.#running -= 1;
      if (background) this.#runningBackground -= 1;
      this.#next();
    }
  }

  #next(): void {
    while (this.#running < this.#opts.concurrency) {
      const request = this.#waiting.shift();
      if (request) {
        request.start();
        continue;
      }
      if (this.#background.length === 0 || !this.#canStartBackground()) return;
      this.#background.shift()!.start();
    }
  }
}

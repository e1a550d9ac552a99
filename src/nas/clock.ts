// Time as a dependency: the NAS module's timers (health polls, boot and settle deadlines, mDNS re-queries) go
// through a Clock so that tests can drive hours of NAS behaviour with explicit advances instead of real waits.

export type TimerHandle = { readonly __timer: unique symbol } | object;

export interface Clock {
  /** ms since the epoch. */
  now(): number;
  /** Runs fn once after ms; the callback may return a promise (a test clock waits for it). */
  setTimeout(fn: () => unknown, ms: number): TimerHandle;
  clearTimeout(handle: TimerHandle): void;
}

/** The real clock. Timers are unref'd: the NAS module never keeps the process alive on its own. */
export const systemClock: Clock = {
  now: () => Date.now(),
  setTimeout(fn, ms) {
    const t = setTimeout(() => void fn(), ms);
    t.unref();
    return t;
  },
  clearTimeout(handle) {
    clearTimeout(handle as NodeJS.Timeout);
  },
};

// Exponential backoff with "equal jitter": the wait doubles per failure up to a cap, and half of it is random so that
// peers that lost the hub at the same moment (the NAS went to sleep) do not all knock at the same instant.

export interface BackoffOptions {
  minMs: number;
  maxMs: number;
  random?: () => number;
}

/** The wait before attempt number `failures + 1` (failures >= 1). */
export function backoffDelay(failures: number, opts: BackoffOptions): number {
  const random = opts.random ?? Math.random;
  const ceiling = Math.min(opts.maxMs, opts.minMs * 2 ** Math.max(0, Math.min(failures - 1, 40)));
  return Math.round(ceiling / 2 + (random() * ceiling) / 2);
}

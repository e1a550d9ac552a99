// Chunks read ahead of their consumer, in order and bounded: the disk (or a chunk worker) reads the next chunks while
// the current one is hashed or sent. The whole-file check and the sync sender both read this way.

export interface Lease {
  data: Buffer;
  /** Gives a reused buffer back (a no-op for a fresh one); once `data` is no longer used. */
  release: () => void;
}

/**
 * `read(i)` for i = 0 .. count-1, yielded in order, with at most `maxCount` reads under way and, where `sizeOf` knows
 * the sizes, at most `maxBytes` of them (always at least one). Reads started and never yielded (the consumer stopped,
 * or a read failed) are released here; a yielded lease is the consumer's to release.
 */
export async function* readAhead(
  count: number,
  read: (i: number) => Promise<Lease>,
  opts: { maxBytes: number; maxCount?: number; sizeOf?: (i: number) => number },
): AsyncGenerator<Lease> {
  const sizeOf = opts.sizeOf ?? (() => 0);
  const maxCount = opts.maxCount ?? Infinity;
  const ahead: Promise<Lease>[] = [];
  let aheadBytes = 0;
  let next = 0;
  try {
    for (let i = 0; i < count; i++) {
      while (ahead.length < maxCount && next < count && (ahead.length === 0 || aheadBytes + sizeOf(next) <= opts.maxBytes)) {
        aheadBytes += sizeOf(next);
        const p = read(next++);
        p.catch(() => {}); // awaited in order below; this only keeps an abandoned read-ahead quiet
        ahead.push(p);
      }
      const lease = await ahead.shift()!;
      aheadBytes -= sizeOf(i);
      yield lease;
    }
  } finally {
    for (const p of ahead) p.then((l) => l.release(), () => {});
  }
}

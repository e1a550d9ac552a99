// Bounded concurrency over a known list: the store's batches (tree checks, whole-file verification, chunk writes) and
// the sync service's batch commits all need "this for each, at most N at a time".

/** fn over items, at most `limit` at a time; results in input order. The first failure rejects (after the calls
 *  running then have settled, as Promise.all leaves them). */
export async function mapLimit<T, R>(items: readonly T[], limit: number, fn: (item: T, index: number) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(limit, items.length) }, async () => {
      while (next < items.length) {
        const i = next++;
        out[i] = await fn(items[i]!, i);
      }
    }),
  );
  return out;
}

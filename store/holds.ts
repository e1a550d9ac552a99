// Chunks in use by operations that have not committed yet (an ingest that decided a chunk is already stored, a read
// streaming a file, a commit checking presence). A chunk file is never unlinked while held: deletes and evictions
// run their batch first and unlink afterwards only what nobody holds, so a concurrent operation can never end up
// referencing a file that just disappeared. Unheld leftovers are removed by gc / the recovery scan.

export class ChunkHolds {
  private readonly counts = new Map<string, number>();
  private readonly onFree = new Map<string, (() => void)[]>();

  acquire(hash: string): void {
    this.counts.set(hash, (this.counts.get(hash) ?? 0) + 1);
  }

  release(hash: string): void {
    const n = this.counts.get(hash);
    if (n === undefined) return;
    if (n > 1) return void this.counts.set(hash, n - 1);
    this.counts.delete(hash);
    const fns = this.onFree.get(hash);
    this.onFree.delete(hash);
    for (const fn of fns ?? []) fn();
  }

  /** Runs `fn` once nobody holds `hash` (now, if nobody does). */
  whenFree(hash: string, fn: () => void): void {
    if (!this.counts.has(hash)) return fn();
    const fns = this.onFree.get(hash) ?? [];
    fns.push(fn);
    this.onFree.set(hash, fns);
  }

  has(hash: string): boolean {
    return this.counts.has(hash);
  }

  get size(): number {
    return this.counts.size;
  }
}

// Chunks in use by operations that have not committed yet (an ingest that decided a chunk is already stored, a read
// streaming a file, a commit checking presence). A chunk file is never unlinked while held: deletes and evictions
// run their batch first and unlink afterwards only what nobody holds, so a concurrent operation can never end up
// referencing a file that just disappeared. Unheld leftovers are removed by gc / the recovery scan.

export class ChunkHolds {
  private readonly counts = new Map<string, number>();

  acquire(hash: string): void {
    this.counts.set(hash, (this.counts.get(hash) ?? 0) + 1);
  }

  release(hash: string): void {
    const n = this.counts.get(hash);
    if (n === undefined) return;
    if (n <= 1) this.counts.delete(hash);
    else this.counts.set(hash, n - 1);
  }

  has(hash: string): boolean {
    return this.counts.has(hash);
  }

  get size(): number {
    return this.counts.size;
  }
}

// One operation per path at a time: applying a hub change, pushing a local change and (on the hub) reading or
// writing the root folder all decide from the current state of a path, so they must not interleave on the same path.

export class PathLocks {
  private readonly tails = new Map<string, Promise<void>>();

  async run<T>(path: string, fn: () => Promise<T>): Promise<T> {
    const prev = this.tails.get(path) ?? Promise.resolve();
    let release!: () => void;
    const mine = new Promise<void>((resolve) => (release = resolve));
    const tail = prev.then(() => mine);
    this.tails.set(path, tail);
    await prev;
    try {
      return await fn();
    } finally {
      release();
      if (this.tails.get(path) === tail) this.tails.delete(path);
    }
  }

  /** Runs `fn` holding the locks of all `paths`, taken one by one in sorted order (so two such calls cannot deadlock). */
  runAll<T>(paths: string[], fn: () => Promise<T>): Promise<T> {
    const sorted = [...new Set(paths)].sort();
    const step = (i: number): Promise<T> => (i === sorted.length ? fn() : this.run(sorted[i]!, () => step(i + 1)));
    return step(0);
  }
}

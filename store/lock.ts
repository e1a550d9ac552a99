// A FIFO async mutex: every index transaction runs under it, so read-modify-write of chunk rows and counters cannot
// interleave (LevelDB batches are atomic but know nothing about the values they replace).

export class Mutex {
  private tail: Promise<void> = Promise.resolve();

  run<T>(fn: () => Promise<T>): Promise<T> {
    const result = this.tail.then(fn);
    this.tail = result.then(
      () => undefined,
      () => undefined,
    );
    return result;
  }
}

// Group commit for index writes: operations write without waiting for the disk, then wait for a shared flush before
// they answer a peer. Callers that arrive while a flush runs share the next one, so N concurrent commits cost about
// two fsyncs instead of N (LevelDB: one synced write makes every earlier write durable).

export class GroupFlush {
  private readonly flushOnce: () => Promise<void>;
  private running: Promise<void> | null = null;
  private next: Promise<void> | null = null;

  constructor(flush: () => Promise<void>) {
    this.flushOnce = flush;
  }

  /** Resolves once every write issued before the call is durable. */
  flush(): Promise<void> {
    if (!this.running) {
      this.running = this.flushOnce().finally(() => (this.running = null));
      return this.running;
    }
    // A flush is under way but may have started before our writes: wait for the one after it.
    this.next ??= this.running.then(
      () => {
        this.next = null;
        return this.flush();
      },
      () => {
        this.next = null;
        return this.flush();
      },
    );
    return this.next;
  }
}

// Which queued files the Pi pushes when, and how many at once. Two lanes: large files one per upload, small files in
// batches (one upload and one CommitBatch for many, when the hub lists "commit.batch"). Each lane refills from the
// upload queue on its own as its uploads finish, so a large file starts at once instead of after every small file
// named before it, and no batch waits for the slowest upload of a round: a push of a thousand photos and two videos
// streams the videos while the photos go in batches beside them. Fetching wanted bytes uses the same split
// (laneOf; pull.ts fetchWanted).

export interface PushItem {
  path: string;
  bytes: number;
  /** A deletion: pushed once the run's other pushes are done (pushInLanes). */
  deleted?: boolean;
}

export type Lane = 'large' | 'small';

/** Files of this size and more go in the large lane, alone. */
export const LARGE_FILE_BYTES = 8 * 1024 * 1024;
/**
 * A batch holds at most BATCH_FILES files and BATCH_BYTES bytes. The bytes bound keeps a batch's work, and what a
 * lost connection makes it redo, small on a Pi; memory is bounded by the upload's read-ahead either way.
 */
const BATCH_FILES = 256;
const BATCH_BYTES = 32 * 1024 * 1024;
/**
 * Uploads in flight per lane. Round trips of small batches overlap; large files share the link and the hub's disk
 * anyway, and two keep both busy while the hub commits one.
 */
export const LANE_LIMITS: Record<Lane, number> = { large: 2, small: 3 };
/** Queue rows read per refill of a lane. */
const REFILL_ROWS = 1024;

export const laneOf = (bytes: number): Lane => (bytes >= LARGE_FILE_BYTES ? 'large' : 'small');

/**
 * Groups one lane's rows: small files into batches (`batch`), every other file alone. `batchBytes` lowers the bytes
 * bound (a hub taking small files inline: a batch then fits the bytes one CommitBatch carries, INLINE_BATCH_BYTES).
 */
export function groupsOf(items: PushItem[], batch: boolean, batchBytes = BATCH_BYTES): string[][] {
  const out: string[][] = [];
  let cur: string[] = [];
  let bytes = 0;
  for (const it of items) {
    if (!batch || laneOf(it.bytes) === 'large') {
      out.push([it.path]);
      continue;
    }
    if (cur.length >= BATCH_FILES || (cur.length > 0 && bytes + it.bytes > batchBytes)) {
      out.push(cur);
      cur = [];
      bytes = 0;
    }
    cur.push(it.path);
    bytes += it.bytes;
  }
  if (cur.length > 0) out.push(cur);
  return out;
}

/** Where a lane's work comes from: due rows of that lane, at most `limit`, none of those in `skip`. */
export type LaneSource = (lane: Lane, limit: number, skip: ReadonlySet<string>) => Promise<PushItem[]>;

/**
 * Pushes what `source` has due, both lanes at once, until neither has anything left; `push(paths)` pushes one group.
 * Deletions come last, once every other group has finished: a rename is a new name plus a deletion, and a deletion
 * that reached the hub first would have it drop the bytes the new name's commit still counts on (the hub said it had
 * them), so that commit failed and its upload started over, a whole video for a renamed one. The first group that
 * throws (the connection is gone) stops new starts; the groups running finish, then it is rethrown.
 */
export async function pushInLanes(source: LaneSource, push: (paths: string[]) => Promise<void>, opts: { batch: boolean; batchBytes?: number; limits?: Record<Lane, number> }): Promise<void> {
  const limits = opts.limits ?? LANE_LIMITS;
  const lanes = {
    large: { waiting: [] as string[][], running: new Set<Promise<void>>(), drained: false },
    small: { waiting: [] as string[][], running: new Set<Promise<void>>(), drained: false },
  };
  // Paths waiting, held back or being pushed: a refill must not hand them out again.
  const claimed = new Set<string>();
  const deletions: PushItem[] = [];
  let failure: unknown;
  const start = (lane: Lane, group: string[]): void => {
    const running = lanes[lane].running;
    const p: Promise<void> = push(group)
      .catch((err: unknown) => void (failure ??= err))
      .finally(() => {
        running.delete(p);
        for (const path of group) claimed.delete(path);
      });
    running.add(p);
  };
  for (;;) {
    for (const lane of ['large', 'small'] as const) {
      const l = lanes[lane];
      while (failure === undefined && l.running.size < limits[lane]) {
        if (l.waiting.length === 0 && !l.drained) {
          const items = await source(lane, REFILL_ROWS, claimed);
          if (items.length === 0) l.drained = true;
          for (const it of items) claimed.add(it.path);
          deletions.push(...items.filter((it) => it.deleted));
          l.waiting.push(...groupsOf(items.filter((it) => !it.deleted), opts.batch, opts.batchBytes));
        }
        const group = l.waiting.shift();
        if (!group) break;
        start(lane, group);
      }
    }
    const running = [...lanes.large.running, ...lanes.small.running];
    if (running.length === 0) {
      if (failure !== undefined || deletions.length === 0) break;
      lanes.small.waiting.push(...groupsOf(deletions.splice(0), opts.batch, opts.batchBytes));
      continue;
    }
    await Promise.race(running);
  }
  if (failure !== undefined) throw failure;
}

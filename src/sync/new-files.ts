// The hub's fast way for new files a peer sends with their bytes (CommitBatchEntry.data, checked by the caller): each
// is written straight into the root (durable), then all are recorded in one store transaction with their chunks
// located there, so that they never pass through chunk files, links and unlinks (HubRoot's usual way for pushed
// files). Write first, then record: a crash in between leaves a file the next start's scan reads as the hub's own, and
// the peer's retried commit then finds identical content. A file is only put where still nothing is (put-in-place.js):
// one that someone else puts there first stays, and that item goes the usual way, which reads their file first.

import type { FileRecord, Store } from '../../store/index.ts';
import type { PathLocks } from './locks.ts';
import type { DiskIndex } from './disk-index.ts';
import { removeFile, RootChanged, safePath, statFile, type DiskStat } from './root-files.ts';
import { metaOf, type RemoteFile } from './wire.ts';

export interface NewFile {
  file: RemoteFile;
  base: number;
  data: Uint8Array;
}

export interface NewFilesContext {
  store: Store;
  disk: DiskIndex;
  locks: PathLocks;
  root: string;
  /** Writes a small file's bytes atomically with its mtime and mode (SmallFiles.writeBytes). */
  write: (abs: string, data: Uint8Array, meta: { mtimeMs: number; mode: number; size: number }) => Promise<DiskStat>;
  /** A version now in place and recorded (the root writer need not look at it). */
  placed: (rec: FileRecord) => void;
}

/**
 * Per item its record, or undefined when not taken: the caller then commits it the usual way, and nothing of it is
 * left in the root. Taken only where nothing is on disk nor in the disk index (the usual way reads the disk first) and
 * the store holds no file at the path (a file in place has bytes other files may still need: commit.ts keeps them),
 * with a base that allows the commit; under the paths' locks.
 */
export function commitNewFiles(ctx: NewFilesContext, items: NewFile[]): Promise<(FileRecord | undefined)[]> {
  const { store, disk } = ctx;
  const out: (FileRecord | undefined)[] = items.map(() => undefined);
  return ctx.locks.runAll(
    items.map((it) => it.file.path),
    async () => {
      const releases: (() => void)[] = [];
      try {
        // Every item checked first, then all writes asked for at once: the writer hands them to its worker as one batch
        // (a write asked for alone, while the others still waited for their checks, went as a batch of one, two
        // flushes of its own).
        const checked = await Promise.all(
          items.map(async ({ file, base }) => {
            const abs = await safePath(ctx.root, file.path);
            if ((await statFile(abs)) || (await disk.get(file.path))) return undefined;
            const rec = await store.record(file.path);
            if ((rec && !rec.deleted) || (base !== 0 && base !== rec?.version)) return undefined;
            return abs;
          }),
        );
        const written = await Promise.all(
          items.map(({ file, data }, i) => {
            const abs = checked[i];
            if (abs === undefined) return undefined;
            const meta = { mtimeMs: Math.floor(file.mtimeMs), mode: file.mode, size: file.size };
            releases.push(disk.placing(file.path, meta));
            return ctx.write(abs, data, meta).then((st) => ({ abs, st }), () => undefined);
          }),
        );
        const taken = items.flatMap((_, i) => (written[i] ? [i] : []));
        const recs = await store.commitFiles(
          taken.map((i) => ({ path: items[i]!.file.path, meta: metaOf(items[i]!.file), baseVersion: items[i]!.base, located: true })),
          { sync: false },
        );
        await Promise.all(
          taken.map(async (i, k) => {
            const r = recs[k]!;
            const { abs, st } = written[i]!;
            // E.g. a peer's commit of the path came first: what this wrote goes, unless someone has written there since.
            if (r instanceof Error) {
              await removeFile(ctx.root, abs, st).catch((err: unknown) => {
                if (!(err instanceof RootChanged)) throw err;
              });
              return;
            }
            out[i] = r;
            await disk.set(r.path, st, r.version);
            ctx.placed(r);
          }),
        );
        return out;
      } finally {
        for (const release of releases) release();
      }
    },
  );
}

// The writing half of the hub's staging files (staging.ts): one StageWriter per upload call opens each staging file
// it writes into (created in the path's directory if new), writes the chunks at their offsets (around the page cache
// where the file system allows it), makes each batch durable and records it in the store.

import fs from 'node:fs/promises';
import fsCb from 'node:fs';
import path from 'node:path';
import { directUnsupported, writeAll, writeSpanDirect, type Store } from '../../store/index.ts';
import { closeFd, createInDir, fdatasync, openFd, safePath, type DirSyncs } from './root-files.ts';
import type { Place } from './wire.ts';
import type { StagedWrite, Staging } from './staging.ts';

/**
 * Aligned memory the chunks written into staging files pass through (direct-io.ts): the largest chunk (4 MiB) and a
 * batch's worth in flight.
 */
export const DIRECT_ARENA_BYTES = 16 * 1024 * 1024;

/**
 * The staging files of one upload call: each opened once (created in the path's directory if new, and that directory
 * made durable before anything in the file is recorded), written at the chunks' offsets, fdatasynced per batch, then
 * recorded in one store transaction per file: what a batch brought survives a crash of either peer, so a resumed
 * upload skips it. (Made durable only once per call instead, a push was no faster in the probe.)
 */
export class StageWriter {
  readonly #root: string;
  readonly #store: Store;
  readonly #dirs: DirSyncs;
  readonly #staging: Staging;
  /** Per staging file: its ordinary descriptor and, while the file system takes direct writes, a direct one. */
  readonly #fds = new Map<string, Promise<StageFds>>();
  /** The staging files this call claimed (true) or could not (false). */
  readonly #claimed = new Map<string, boolean>();

  constructor(root: string, store: Store, dirs: DirSyncs, staging: Staging) {
    this.#root = root;
    this.#store = store;
    this.#dirs = dirs;
    this.#staging = staging;
  }

  /** Staging.stageOf, for this call: undefined also while that file is being put in place. */
  stageOf(place: Place | undefined, length: number): string | undefined {
    const stage = this.#staging.stageOf(place, length);
    if (stage === undefined) return undefined;
    let ok = this.#claimed.get(stage);
    if (ok === undefined) {
      ok = this.#staging.claim(stage);
      this.#claimed.set(stage, ok);
    }
    return ok ? stage : undefined;
  }

  async write(batch: StagedWrite[]): Promise<void> {
    const byStage = new Map<string, StagedWrite[]>();
    for (const w of batch) {
      const list = byStage.get(w.stage) ?? [];
      list.push(w);
      byStage.set(w.stage, list);
    }
    await Promise.all(
      [...byStage].map(async ([stage, writes]) => {
        const fds = await this.#open(stage);
        await Promise.all(runsOf(writes).map((run) => this.#write(fds, run)));
        await fdatasync(fds.fd);
        await this.#store.noteStaged(
          stage,
          writes.map((w) => ({ hash: w.hash, size: w.data.length, offset: w.offset })),
        );
      }),
    );
  }

  async close(): Promise<void> {
    const fds = [...this.#fds.values()];
    this.#fds.clear();
    await Promise.all(fds.map((p) => p.then((f) => Promise.all([closeFd(f.fd), f.direct === undefined ? undefined : closeFd(f.direct)]), () => {})));
    for (const [stage, ok] of this.#claimed) if (ok) this.#staging.release(stage);
    this.#claimed.clear();
  }

  /**
   * Writes a run of chunks that follow on from each other: directly where it can (turning direct writes off for good
   * where the file system refuses them).
   */
  async #write(fds: StageFds, run: Run): Promise<void> {
    const direct = this.#staging.direct;
    if (fds.direct !== undefined && direct.allowed) {
      try {
        return await writeSpanDirect(fds.fd, fds.direct, direct.arena, run.pieces, run.offset);
      } catch (err) {
        if (!directUnsupported(err)) throw err;
        direct.allowed = false;
      }
    }
    let at = run.offset;
    for (const p of run.pieces) {
      await writeAll(fds.fd, p, at);
      at += p.length;
    }
  }

  #open(stage: string): Promise<StageFds> {
    let fds = this.#fds.get(stage);
    if (!fds) {
      fds = this.#openNew(stage);
      this.#fds.set(stage, fds);
    }
    return fds;
  }

  async #openNew(stage: string): Promise<StageFds> {
    const abs = await safePath(this.#root, stage);
    const fd = await this.#openPlain(abs);
    const direct = this.#staging.direct;
    if (!direct.allowed) return { fd };
    try {
      return { fd, direct: await direct.open(abs) };
    } catch (err) {
      if (!directUnsupported(err)) {
        await closeFd(fd);
        throw err;
      }
      direct.allowed = false;
      return { fd };
    }
  }

  async #openPlain(abs: string): Promise<number> {
    const { O_WRONLY, O_CREAT, O_EXCL } = fsCb.constants;
    const create = () => openFd(abs, O_WRONLY | O_CREAT | O_EXCL, 0o600);
    let fd: number;
    try {
      fd = await createInDir(abs, create);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      // An earlier upload of this version began it. Unless it is a second name of a root file (put in place before a
      // crash that came before its unlink): that name is dropped and the staging file begun afresh.
      const existing = await openFd(abs, O_WRONLY);
      if (fsCb.fstatSync(existing).nlink === 1) return existing;
      await closeFd(existing);
      await fs.rm(abs, { force: true });
      fd = await create();
    }
    await this.#dirs.sync(path.dirname(abs));
    return fd;
  }
}

interface StageFds {
  fd: number;
  direct?: number;
}

/** Chunks that follow on from each other in a staging file, written as one span. */
interface Run {
  offset: number;
  pieces: Uint8Array[];
}

/** A run's bytes at most: two runs (two files pushed at once) fit the direct arena together. */
const RUN_BYTES = DIRECT_ARENA_BYTES / 2;

/**
 * The writes of one staging file as runs: a push sends each file's chunks in order, so a batch of them is one run
 * (a few, where the hub held chunks already) instead of a direct write and two partial block writes per chunk: each
 * is a round trip to the thread pool, ~30 per 8 MiB batch before.
 */
export function runsOf(writes: StagedWrite[]): Run[] {
  const runs: (Run & { end: number; bytes: number })[] = [];
  for (const w of [...writes].sort((a, b) => a.offset - b.offset)) {
    const last = runs.at(-1);
    if (last && last.end === w.offset && last.bytes + w.data.length <= RUN_BYTES) {
      last.pieces.push(w.data);
      last.end += w.data.length;
      last.bytes += w.data.length;
    } else {
      runs.push({ offset: w.offset, pieces: [w.data], end: w.offset + w.data.length, bytes: w.data.length });
    }
  }
  return runs;
}

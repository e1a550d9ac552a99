// The hub's versions that wait for a peer to send their bytes again (store/lost-bytes.ts). The hub acknowledged them,
// then the file of its root that held some of their chunks was changed or removed on the NAS before the root writer
// wrote them out. A peer that still has those chunks learns of it from the change feed (FileInfo.incomplete) and
// uploads them; each upload that stores chunks lets this complete what it can: those versions become local again
// (announced in the feed once more) and the root writer, which follows the store, writes them out.
//
// On a hub every 'remote' record is such a version (a hub never leaves bytes on a peer by choice), so the set is
// the store's remote records: read once at start, then kept in step with the store's changes.

import type { FileRecord, Store } from '../../store/index.ts';
import { isStoreError } from '../../store/index.ts';
import type { Logger } from '../log.ts';
import type { SyncState } from './state.ts';
import { metaOf } from './wire.ts';
import { absoluteName, statFile } from './root-files.ts';

export interface LostVersionsOptions {
  store: Store;
  state: SyncState;
  /** The hub's root folder. */
  root: string;
  log: Logger;
}

export class LostVersions {
  readonly #o: LostVersionsOptions;
  readonly #paths = new Set<string>();
  /** A completion under way; another request meanwhile runs one more after it (uploads come in bursts). */
  #running: Promise<void> | null = null;
  #again = false;

  constructor(opts: LostVersionsOptions) {
    this.#o = opts;
  }

  readonly #onChange = (rec: FileRecord): void => {
    if (!rec.deleted && rec.state === 'remote') this.#paths.add(rec.path);
    else this.#paths.delete(rec.path);
  };

  /** Follows the store's changes, and finds the versions already waiting (only if the store has any remote record). */
  async start(): Promise<void> {
    this.#o.store.on('change', this.#onChange);
    const s = this.#o.store.stats();
    if (s.files === s.localFiles) return;
    for await (const rec of this.#o.store.filesUnder('')) if (rec.state === 'remote') this.#paths.add(rec.path);
    // Their bytes may have come just before a crash, after the upload's flush and before the completion.
    await this.complete();
    if (this.#paths.size > 0) this.#o.log.warn({ files: this.#paths.size, first: [...this.#paths][0] }, 'hub: versions whose bytes were lost on disk are waiting for a peer to send them again');
  }

  stop(): void {
    this.#o.store.off('change', this.#onChange);
  }

  /** How many versions wait for their bytes. */
  get size(): number {
    return this.#paths.size;
  }

  /** The lowest sequence number among the waiting versions' records (undefined: none waits). */
  async lowestSeq(): Promise<number | undefined> {
    let min: number | undefined;
    for (const path of this.#paths) {
      const rec = await this.#o.store.record(path);
      if (rec && rec.state === 'remote') min = Math.min(min ?? rec.seq, rec.seq);
    }
    return min;
  }

  /**
   * Writing `path`'s current version out failed because some of its bytes are gone from the root. True if that is
   * settled: a version the hub made itself (the conflict copy of a file of its root, say) is dropped if its path holds
   * nothing, since nobody else has those bytes (found by bench/soak-sync.ts: left, it could never be written nor
   * fetched); any other now waits for a peer to send them. False: every chunk has its bytes after all, or the path
   * moved on.
   */
  async settle(path: string): Promise<boolean> {
    const { store, state } = this.#o;
    const rec = await store.record(path);
    if (!rec || rec.deleted) return false;
    if ((await state.getOrigin(path)) === state.peerId && (await statFile(absoluteName(this.#o.root, path))) === null) {
      await store.delete(path, { baseVersion: rec.version });
      this.#o.log.warn({ path, version: rec.version }, 'hub root: the bytes of this version were saved over on disk before the hub kept them; its record is dropped');
      return true;
    }
    if ((await store.demoteIfLost(path, rec.version))?.state !== 'remote') return false;
    this.#o.log.warn({ path, version: rec.version }, 'hub root: bytes of this version were changed or removed on disk before it was written out; waiting for a peer to send them again');
    return true;
  }

  /**
   * Keeps a peer's version that an edit on disk beat as the conflict copy `name` (read back). Its bytes may have lain
   * in a root file changed since: those locations go and the copy waits for the peer to send them again. Dropped, the
   * peer's acknowledged edit was lost on every side. Null when the version had been written into the very file that
   * was edited (`writtenHere`): that edit came later, and no copy is due.
   */
  async keepCopy(name: string, rec: FileRecord, writtenHere: () => Promise<boolean>): Promise<FileRecord | null> {
    const commit = () => this.#o.store.commitFile(name, metaOf(rec), { baseVersion: 0, allowRemote: true });
    try {
      return await commit();
    } catch (err) {
      if (!isStoreError(err, 'corrupt_chunk') || (await writtenHere())) return null;
    }
    await this.#o.store.forgetGoneBytes(rec.chunks.map((c) => c.hash));
    const copy = await commit().catch((err: unknown) => (isStoreError(err, 'corrupt_chunk') ? null : Promise.reject(err)));
    if (copy?.state === 'remote') this.#o.log.warn({ path: name, version: copy.version }, "hub root: a peer's version beaten by an edit on disk, whose bytes went with that edit, is kept as a conflict copy; waiting for a peer to send them again");
    return copy;
  }

  /** Chunks arrived: every waiting version whose chunks are all here becomes local (resolves once that is done). */
  complete(): Promise<void> {
    if (this.#paths.size === 0) return Promise.resolve();
    if (this.#running) {
      this.#again = true;
      return this.#running;
    }
    this.#running = (async () => {
      try {
        do {
          this.#again = false;
          const recs = await this.#o.store.promoteAllComplete([...this.#paths], { announce: true });
          const done = recs.filter((r) => r?.state === 'local');
          if (done.length > 0) this.#o.log.info({ files: done.length, first: done[0]!.path }, 'hub: lost bytes sent again by a peer; writing the versions out');
        } while (this.#again && this.#paths.size > 0);
      } finally {
        this.#running = null;
      }
    })();
    return this.#running;
  }

  /**
   * Every known peer has acknowledged the feed up to `floor` (peer-acks.ts): each of them has read the records up to
   * there and sent the bytes it held of the incomplete ones. A version still waiting whose record is at or below it
   * can never be completed, so it is deleted (the feed then carries a tombstone and the peers drop their listing).
   * Only where nothing stands on disk at its path: a file there is the NAS's, read as a change of its own. Completes
   * what it can first: the acknowledging peer's last upload may have brought the bytes. Returns how many went.
   */
  async dropUnreachable(floor: number): Promise<number> {
    if (this.#paths.size === 0 || floor <= 0) return 0;
    await this.complete();
    const { store, log } = this.#o;
    let dropped = 0;
    for (const path of [...this.#paths]) {
      const rec = await store.record(path);
      if (!rec || rec.deleted || rec.state !== 'remote' || rec.seq > floor) continue;
      if ((await statFile(absoluteName(this.#o.root, path))) !== null) continue;
      try {
        await store.delete(path, { baseVersion: rec.version });
      } catch (err) {
        if (isStoreError(err, 'conflict')) continue; // changed meanwhile: no longer this version
        throw err;
      }
      dropped += 1;
      log.warn({ path, version: rec.version }, 'hub: no peer has the bytes of this version any more (every peer has been asked); its record is dropped');
    }
    return dropped;
  }
}

// BaluHost's chunked upload (init, strictly sequential raw chunks, complete, abort), with sessions that survive a
// restart of the daemon (BaluHost keeps them in one worker's memory). A session is a row in the daemon's LevelDB
// (sublevel `chunked-uploads`) and a part file DATA_DIR/uploads/<id>.part. Each chunk streams into the part file at
// the offset the row names, is fsynced, and only then does the row advance (synced write): after a crash the row
// never claims bytes the disk does not have, and bytes beyond it (a chunk cut off mid-way) are overwritten by the
// retried chunk and cut off by truncate. `complete` streams the part file into the store. Sessions untouched for
// 24 h are removed, as on BaluHost.

import { randomUUID } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import type { ClassicLevel } from 'classic-level';
import type { AbstractSublevel } from 'abstract-level';
import { fileSource } from '../../store/index.ts';
import type { User } from '../auth/tokens.ts';
import type { FileTree } from './file-tree.ts';
import { asFacadeError } from './file-tree.ts';
import { FilesError } from './errors.ts';
import { authorize } from './paths.ts';
import { cleanFilename, uploadTarget } from './uploads.ts';

type Db = ClassicLevel<string, string>;

/** BaluHost's answer to init; clients send chunks of this size (any size is accepted). */
export const CHUNK_SIZE = 32 * 1024 * 1024;
/** BaluHost's upload limit (multipart limits and nginx client_max_body_size). */
export const MAX_UPLOAD_BYTES = 10 * 1024 ** 3;
const MAX_AGE_MS = 24 * 3600 * 1000;

interface Session {
  userId: number;
  target: string;
  totalSize: number;
  received: number;
  nextIndex: number;
  createdAt: number;
  touchedAt: number;
}

export class ChunkedUploads {
  private readonly rows: AbstractSublevel<Db, string | Buffer | Uint8Array, string, Session>;
  private readonly dir: string;
  private readonly tree: FileTree;
  private readonly now: () => number;
  /** One chunk (or complete/abort) at a time per session. */
  private readonly busy = new Map<string, Promise<unknown>>();
  private readonly timer: NodeJS.Timeout;

  private constructor(opts: { db: Db; dir: string; tree: FileTree; now: () => number }) {
    this.rows = opts.db.sublevel<string, Session>('chunked-uploads', { valueEncoding: 'json' });
    this.dir = opts.dir;
    this.tree = opts.tree;
    this.now = opts.now;
    this.timer = setInterval(() => void this.expire().catch(() => {}), 3600 * 1000);
    this.timer.unref();
  }

  static async open(opts: { db: Db; dataDir: string; tree: FileTree; now?: () => number }): Promise<ChunkedUploads> {
    const dir = path.join(opts.dataDir, 'uploads');
    await fs.mkdir(dir, { recursive: true });
    const u = new ChunkedUploads({ db: opts.db, dir, tree: opts.tree, now: opts.now ?? Date.now });
    await u.expire();
    return u;
  }

  close(): void {
    clearInterval(this.timer);
  }

  private partFile(id: string): string {
    return path.join(this.dir, `${id}.part`);
  }

  private serial<T>(id: string, fn: () => Promise<T>): Promise<T> {
    const run = (this.busy.get(id) ?? Promise.resolve()).then(fn, fn);
    const tail = run.catch(() => {});
    this.busy.set(id, tail);
    void tail.then(() => this.busy.get(id) === tail && this.busy.delete(id));
    return run;
  }

  private async session(user: User, id: string): Promise<Session> {
    const s = /^[0-9a-f-]{36}$/.test(id) ? await this.rows.get(id) : undefined;
    if (!s) throw new FilesError('upload_session_not_found', 'Upload session not found');
    if (s.userId !== user.id) throw new FilesError('upload_session_forbidden', 'Not your upload session');
    return s;
  }

  async init(user: User, body: { filename: string; total_size: number; target_path?: string }): Promise<{ upload_id: string; chunk_size: number }> {
    const filename = cleanFilename(body.filename);
    if (filename !== body.filename.split(/[/\\]/).pop()) throw new FilesError('invalid_filename', 'Invalid filename');
    if (body.total_size > MAX_UPLOAD_BYTES) throw new FilesError('upload_too_large', `Uploads are limited to ${MAX_UPLOAD_BYTES} bytes`);
    const target = await uploadTarget(this.tree, user, body.target_path ?? '', filename);
    const id = randomUUID();
    await fs.writeFile(this.partFile(id), '');
    const at = this.now();
    await this.rows.put(id, { userId: user.id, target, totalSize: body.total_size, received: 0, nextIndex: 0, createdAt: at, touchedAt: at }, { sync: true } as never);
    return { upload_id: id, chunk_size: CHUNK_SIZE };
  }

  /** Appends chunk `index` (must be the next one) from `body`; answers the bytes received so far. */
  chunk(user: User, id: string, index: number, body: AsyncIterable<Uint8Array>): Promise<{ received_bytes: number }> {
    return this.serial(id, async () => {
      const s = await this.session(user, id);
      if (index !== s.nextIndex) throw new FilesError('chunk_rejected', `Expected chunk ${s.nextIndex}, got ${index}`);
      const fh = await fs.open(this.partFile(id), 'r+');
      let pos = s.received;
      let over = false;
      try {
        for await (const piece of body) {
          if (pos + piece.length > s.totalSize) {
            over = true;
            break;
          }
          let off = 0;
          while (off < piece.length) off += (await fh.write(piece, off, piece.length - off, pos + off)).bytesWritten;
          pos += piece.length;
        }
        if (!over) {
          await fh.truncate(pos);
          await fh.sync();
        }
      } finally {
        await fh.close();
      }
      if (over) {
        await this.remove(id);
        throw new FilesError('chunk_rejected', `Upload exceeds its declared size of ${s.totalSize} bytes; the upload was aborted`);
      }
      await this.rows.put(id, { ...s, received: pos, nextIndex: s.nextIndex + 1, touchedAt: this.now() }, { sync: true } as never);
      return { received_bytes: pos };
    });
  }

  /** Stores the received bytes as the file (overwriting, as BaluHost does); BaluHost does not check the total either. */
  complete(user: User, id: string): Promise<{ path: string; size: number }> {
    return this.serial(id, async () => {
      const s = await this.session(user, id);
      authorize(user, s.target, 'write');
      let size: number;
      try {
        const r = await this.tree.store.ingest(s.target, fileSource(this.partFile(id)));
        size = r.file.size;
      } catch (err) {
        throw asFacadeError(err);
      }
      await this.tree.ensureParent(s.target);
      await this.remove(id);
      return { path: s.target, size };
    });
  }

  abort(user: User, id: string): Promise<{ message: string }> {
    return this.serial(id, async () => {
      await this.session(user, id);
      await this.remove(id);
      return { message: 'Upload aborted' };
    });
  }

  private async remove(id: string): Promise<void> {
    await this.rows.del(id);
    await fs.rm(this.partFile(id), { force: true });
  }

  /** Removes sessions untouched for 24 h and part files no session owns (left by a crash between the two writes). */
  async expire(): Promise<number> {
    let n = 0;
    const live = new Set<string>();
    for await (const [id, s] of this.rows.iterator()) {
      if (this.now() - s.touchedAt > MAX_AGE_MS) {
        await this.remove(id);
        n += 1;
      } else live.add(id);
    }
    for (const name of await fs.readdir(this.dir)) {
      const id = name.slice(0, -5);
      if (!name.endsWith('.part') || live.has(id) || this.busy.has(id)) continue;
      // init writes the part file just before its row: only an orphan that has been around a while is garbage.
      const st = await fs.stat(path.join(this.dir, name)).catch(() => null);
      if (st && this.now() - st.mtimeMs > 3600 * 1000) await fs.rm(path.join(this.dir, name), { force: true });
    }
    return n;
  }
}

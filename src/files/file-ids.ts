// BaluHost's integer file ids (`file_id` in listings; BaluDesk renames, deletes and downloads by id). The store knows
// files by path only, so the ids live here, in the daemon's LevelDB (sublevel `file-ids`):
//   p!<path>     -> id    (files and directories)
//   i!<id, hex>  -> path
//   next         -> the next id to hand out
// An id is given out the first time a path is listed or written through the facade and follows the file through
// renames and moves (move() re-points a path and everything below it); a deleted path gives its id up.

import type { ClassicLevel } from 'classic-level';
import type { AbstractSublevel } from 'abstract-level';

type Db = ClassicLevel<string, string>;
type Sub = AbstractSublevel<Db, string | Buffer | Uint8Array, string, string>;

const pathKey = (p: string) => `p!${p}`;
// Fixed-width hex keeps the id rows in numeric order (not needed for lookups, but makes the sublevel readable).
const idKey = (id: number) => `i!${id.toString(16).padStart(13, '0')}`;

export class FileIds {
  private readonly sub: Sub;
  /** Writes are serialised so two requests never hand out the same id. */
  private tail: Promise<unknown> = Promise.resolve();

  constructor(db: Db) {
    this.sub = db.sublevel<string, string>('file-ids', { valueEncoding: 'utf8' });
  }

  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.tail.then(fn, fn);
    this.tail = run.catch(() => {});
    return run;
  }

  /** The ids of `paths`, in order; paths without one get the next free ids (one batch). */
  async idsOf(paths: string[]): Promise<number[]> {
    const found = await this.sub.getMany(paths.map(pathKey));
    if (found.every((v) => v !== undefined)) return found.map(Number);
    return this.serial(async () => {
      const again = await this.sub.getMany(paths.map(pathKey));
      let next = Number((await this.sub.get('next')) ?? 1);
      const batch = this.sub.batch();
      const out = again.map((v, i) => {
        if (v !== undefined) return Number(v);
        const id = next++;
        batch.put(pathKey(paths[i]!), String(id));
        batch.put(idKey(id), paths[i]!);
        again[i] = String(id); // a path listed twice in one call gets one id
        for (let j = i + 1; j < paths.length; j++) if (paths[j] === paths[i]) again[j] = String(id);
        return id;
      });
      batch.put('next', String(next));
      await batch.write();
      return out;
    });
  }

  async idOf(path: string): Promise<number> {
    return (await this.idsOf([path]))[0]!;
  }

  /** The path an id names, if it still names one. */
  async pathOf(id: number): Promise<string | undefined> {
    if (!Number.isSafeInteger(id) || id < 1) return undefined;
    return this.sub.get(idKey(id));
  }

  /** `from` and everything below it now live at `to` (a rename or move); an id `to` had is given up. */
  move(from: string, to: string): Promise<void> {
    return this.serial(async () => {
      const batch = this.sub.batch();
      const drop = await this.subtree(to);
      for (const [key, id] of drop) {
        batch.del(key);
        batch.del(idKey(Number(id)));
      }
      for (const [key, id] of await this.subtree(from)) {
        const moved = to + key.slice(2 + from.length);
        batch.del(key);
        batch.put(pathKey(moved), id);
        batch.put(idKey(Number(id)), moved);
      }
      await batch.write();
    });
  }

  /** `path` and everything below it were deleted. */
  forget(path: string): Promise<void> {
    return this.serial(async () => {
      const batch = this.sub.batch();
      for (const [key, id] of await this.subtree(path)) {
        batch.del(key);
        batch.del(idKey(Number(id)));
      }
      await batch.write();
    });
  }

  /** [key, id] of `path` itself and of every path below it. */
  private async subtree(path: string): Promise<[string, string][]> {
    const out: [string, string][] = [];
    const self = await this.sub.get(pathKey(path));
    if (self !== undefined) out.push([pathKey(path), self]);
    // '0' is the character after '/': [p/, p0) is exactly the keys below p.
    for await (const entry of this.sub.iterator({ gte: pathKey(path) + '/', lt: pathKey(path) + '0' })) out.push(entry);
    return out;
  }
}

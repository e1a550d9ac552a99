// Explicit folders: the store knows files only (a directory exists there while a file lies below it), but BaluHost's
// clients create folders before they put anything in them (POST /api/files/folder, mkdir) and expect a folder to stay
// when its last file is deleted. Those folders live here, in the daemon's LevelDB (sublevel `folders`: path ->
// creation time in ms). Listings merge them with the store's implied directories. They are local to this peer:
// the sync protocol moves files, so an empty folder does not reach the NAS (a folder with files does, as their path).

import type { ClassicLevel } from 'classic-level';
import type { AbstractSublevel } from 'abstract-level';
import { parentOf } from './paths.ts';

type Db = ClassicLevel<string, string>;
type Sub = AbstractSublevel<Db, string | Buffer | Uint8Array, string, string>;

export interface FolderEntry {
  name: string;
  path: string;
  createdMs: number;
}

/** Every ancestor of `path` and `path` itself, outermost first ('' excluded). */
function withAncestors(path: string): string[] {
  const out: string[] = [];
  for (let p = path; p !== ''; p = parentOf(p)) out.unshift(p);
  return out;
}

export class Folders {
  private readonly sub: Sub;
  private readonly now: () => number;

  constructor(db: Db, now: () => number = Date.now) {
    this.sub = db.sublevel<string, string>('folders', { valueEncoding: 'utf8' });
    this.now = now;
  }

  /** mkdir -p: `path` and its ancestors; existing ones keep their creation time. */
  async create(path: string): Promise<void> {
    const all = withAncestors(path);
    const found = await this.sub.getMany(all);
    const missing = all.filter((_, i) => found[i] === undefined);
    if (missing.length === 0) return;
    const at = String(this.now());
    await this.sub.batch(missing.map((key) => ({ type: 'put' as const, key, value: at })));
  }

  async get(path: string): Promise<FolderEntry | undefined> {
    if (path === '') return undefined;
    const v = await this.sub.get(path);
    return v === undefined ? undefined : { name: path.slice(path.lastIndexOf('/') + 1), path, createdMs: Number(v) };
  }

  /** Immediate child folders of `dir` ('' = root), in name order. */
  async children(dir: string): Promise<FolderEntry[]> {
    const prefix = dir === '' ? '' : dir + '/';
    const out: FolderEntry[] = [];
    // '0' is the character after '/': [d/, d0) is exactly the keys below d.
    const it = this.sub.iterator(dir === '' ? {} : { gte: prefix, lt: dir + '0' });
    try {
      for (;;) {
        const entry = await it.next();
        if (!entry) break;
        const rest = entry[0].slice(prefix.length);
        const slash = rest.indexOf('/');
        if (slash < 0) out.push({ name: rest, path: entry[0], createdMs: Number(entry[1]) });
        // A deeper key whose parent has no row of its own (written before mkdir -p kept ancestors): show the parent.
        else {
          const name = rest.slice(0, slash);
          if (out.at(-1)?.name !== name) out.push({ name, path: prefix + name, createdMs: Number(entry[1]) });
          it.seek(prefix + name + '0');
        }
      }
    } finally {
      await it.close();
    }
    return out;
  }

  /** Removes `path` and every folder below it. */
  async removeTree(path: string): Promise<void> {
    const keys = await this.treeKeys(path);
    if (keys.length > 0) await this.sub.batch(keys.map((key) => ({ type: 'del' as const, key })));
  }

  /** `from` and every folder below it now live at `to` (created times kept); `to`'s ancestors are created. */
  async moveTree(from: string, to: string): Promise<void> {
    const rows: [string, string][] = [];
    const self = await this.sub.get(from);
    if (self !== undefined) rows.push([from, self]);
    for await (const row of this.sub.iterator({ gte: from + '/', lt: from + '0' })) rows.push(row);
    const ops: { type: 'put' | 'del'; key: string; value?: string }[] = [];
    for (const [key, value] of rows) {
      ops.push({ type: 'del', key });
      ops.push({ type: 'put', key: to + key.slice(from.length), value });
    }
    if (ops.length > 0) await this.sub.batch(ops as never);
    await this.create(parentOf(to));
  }

  private async treeKeys(path: string): Promise<string[]> {
    const keys = await this.sub.keys({ gte: path + '/', lt: path + '0' }).all();
    if ((await this.sub.get(path)) !== undefined) keys.push(path);
    return keys;
  }
}

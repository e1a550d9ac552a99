// The activity log on its own, over a real LevelDB: it keeps the newest 5,000 entries across bursts of store changes
// and across a reopen (trimming names the oldest keys itself, so it must know where they start after a restart).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { ClassicLevel } from 'classic-level';
import { ActivityLog } from '../../src/activity/activity-log.ts';
import type { FileRecord } from '../../store/index.ts';
import { tempDir } from '../helpers/daemon-process.ts';

const record = (n: number): FileRecord => ({
  path: `sven/f${n}.txt`,
  size: n,
  mtimeMs: 0,
  mode: 0o644,
  hash: '0'.repeat(64),
  sha256: null,
  chunks: [],
  version: 1,
  seq: n,
  deleted: false,
  state: 'local',
  pinned: false,
});

test('activity log: a burst of changes is kept in order, and only the newest 5,000 entries stay, also after a reopen', async () => {
  const dir = await tempDir();
  let db = new ClassicLevel<string, string>(path.join(dir.path, 'db'), { valueEncoding: 'utf8' });
  try {
    await db.open();
    let log = await ActivityLog.open(db);
    // 6,000 changes without waiting in between (as a hub's first scan emits them), then 1,500 more one by one.
    await Promise.all(Array.from({ length: 6000 }, (_, i) => log.recordChange(record(i), 1000 + i)));
    for (let i = 6000; i < 7500; i++) await log.recordChange(record(i), 1000 + i);
    const all = () => log.recent({ limit: 10_000, keep: () => true });
    let r = await all();
    assert.equal(r.total, 5000, 'trimmed to the newest 5,000');
    assert.deepEqual(r.items.map((a) => a.file_path), Array.from({ length: 5000 }, (_, i) => `sven/f${7499 - i}.txt`), 'newest first, none lost in between');
    assert.deepEqual(new Set(r.items.map((a) => a.id)).size, 5000, 'ids are distinct');

    await db.close();
    db = new ClassicLevel<string, string>(path.join(dir.path, 'db'), { valueEncoding: 'utf8' });
    await db.open();
    log = await ActivityLog.open(db);
    await Promise.all(Array.from({ length: 700 }, (_, i) => log.recordChange(record(7500 + i), 9000 + i)));
    r = await all();
    assert.equal(r.total, 5000, 'still 5,000 after a reopen: the oldest entries of the earlier run were found and trimmed');
    assert.equal(r.items[0]!.file_path, 'sven/f8199.txt');
    assert.equal(r.items.at(-1)!.file_path, 'sven/f3200.txt');
    assert.ok(r.items[0]!.id > r.items[1]!.id, 'ids keep growing across the reopen');
  } finally {
    await db.close();
    await dir.remove();
  }
});

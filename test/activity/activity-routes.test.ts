// /api/activity/* through the real Fastify app over a real ActivityLog (LevelDB) fed by a real store's change events:
// what BaluApp reports is kept once (a re-sent batch is deduplicated), bad items are rejected one by one, and
// recent files show each path once, newest first, only to users who may read it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { Readable } from 'node:stream';
import { SignJWT } from 'jose';
import { ClassicLevel } from 'classic-level';
import { buildApp } from '../../src/http/app.ts';
import { TokenVerifier } from '../../src/auth/tokens.ts';
import { createLogger } from '../../src/log.ts';
import { ActivityLog } from '../../src/activity/activity-log.ts';
import { activityRoutes } from '../../src/routes/activity.ts';
import { openStore } from '../../store/index.ts';
import { tempDir } from '../helpers/daemon-process.ts';

const SECRET = 'a-baluhost-secret-key-of-32-chars!!';
const ISO_Z = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;

async function token(id: number, username: string, role: 'admin' | 'user'): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  return new SignJWT({ sub: String(id), username, role, type: 'access', iat: now, exp: now + 900 })
    .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
    .sign(new TextEncoder().encode(SECRET));
}

const appFor = (activity: ActivityLog) =>
  buildApp({
    logger: createLogger({ logLevel: 'silent', logFormat: 'json' }),
    verifier: new TokenVerifier(SECRET),
    plugins: [(a) => a.register(activityRoutes, { activity })],
  });

test('activity: report, dedup, rejects, recent files from reports and store changes, jail, restart', async () => {
  const dir = await tempDir();
  let db = new ClassicLevel<string, string>(path.join(dir.path, 'db'), { valueEncoding: 'utf8' });
  await db.open();
  const store = await openStore({ dir: path.join(dir.path, 'store') });
  let activity = await ActivityLog.open(db);
  const onChange = (r: Parameters<ActivityLog['recordChange']>[0]) => void activity.recordChange(r);
  store.on('change', onChange);
  let app = await appFor(activity);
  try {
    const sven = { authorization: `Bearer ${await token(2, 'sven', 'user')}`, 'x-device-id': 'dev-1' };
    const bob = { authorization: `Bearer ${await token(3, 'bob', 'user')}` };
    // BaluApp's batch (Gson key order, nulls omitted).
    const batch = {
      activities: [
        { action_type: 'file.open', file_path: 'sven/Docs/a.txt', file_name: 'a.txt', is_directory: false, file_size: 12, device_id: 'dev-1', occurred_at: '2026-03-01T12:00:00.123Z' },
        { action_type: 'file.upload', file_path: 'sven/Docs/b.txt', file_name: 'b.txt', is_directory: false, device_id: 'dev-1', occurred_at: '2026-03-01T12:00:01.000Z' },
        { action_type: 'file.teleport', file_path: 'sven/Docs/c.txt', file_name: 'c.txt', is_directory: false },
        { action_type: 'file.open', file_path: 'bob/secret.txt', file_name: 'secret.txt', is_directory: false },
        { action_type: 'file.open', file_path: 'sven/../bob/x', file_name: 'x', is_directory: false },
      ],
    };
    const first = await app.inject({ method: 'POST', url: '/api/activity/report', headers: sven, payload: batch });
    assert.equal(first.statusCode, 200);
    assert.deepEqual(first.json(), { accepted: 2, deduplicated: 0, rejected: 3 }, 'unknown action, another user\'s path and traversal are rejected one by one');
    const again = await app.inject({ method: 'POST', url: '/api/activity/report', headers: sven, payload: batch });
    assert.deepEqual(again.json(), { accepted: 0, deduplicated: 2, rejected: 3 }, 'a re-sent batch is not counted twice');

    // Malformed bodies: 422 in FastAPI's shape, and nothing is stored.
    for (const payload of [{}, { activities: [] }, { activities: [{ action_type: 'file.open' }] }, { activities: 'x' }]) {
      const r = await app.inject({ method: 'POST', url: '/api/activity/report', headers: sven, payload });
      assert.equal(r.statusCode, 422, JSON.stringify(payload));
      assert.ok(Array.isArray(r.json().detail));
    }
    const noToken = await app.inject({ method: 'GET', url: '/api/activity/recent-files' });
    assert.equal(noToken.statusCode, 401);

    // Changes made on this Pi show up as server-side activity.
    await store.ingest('sven/Docs/a.txt', Readable.from([Buffer.from('hello')]));
    await store.ingest('sven/Docs/a.txt', Readable.from([Buffer.from('hello again')]));
    await store.ingest('bob/private.txt', Readable.from([Buffer.from('bob only')]));
    await store.delete('sven/Docs/b.txt').catch(() => {}); // not in the store: nothing to record
    await activity.idle();

    const recent = await app.inject({ method: 'GET', url: '/api/activity/recent-files?limit=5', headers: sven });
    assert.equal(recent.statusCode, 200);
    const files = recent.json().files as any[];
    assert.deepEqual(files.map((f) => f.file_path), ['sven/Docs/a.txt', 'sven/Docs/b.txt'], 'one row per path, newest first, bob\'s file hidden');
    const a = files[0];
    assert.deepEqual(Object.keys(a), ['file_path', 'file_name', 'is_directory', 'file_size', 'mime_type', 'last_action', 'last_action_at', 'action_count']);
    assert.deepEqual([a.file_name, a.is_directory, a.file_size, a.last_action, a.action_count], ['a.txt', false, 11, 'file.edit', 3]);
    assert.match(a.last_action_at, ISO_Z);

    const bobSees = (await app.inject({ method: 'GET', url: '/api/activity/recent-files', headers: bob })).json().files.map((f: any) => f.file_path);
    assert.deepEqual(bobSees, ['bob/private.txt']);

    const feed = await app.inject({ method: 'GET', url: '/api/activity/recent?limit=2&action_types=file.upload,file.edit', headers: sven });
    const body = feed.json();
    assert.deepEqual(body.activities.map((x: any) => [x.action_type, x.source]), [['file.edit', 'server'], ['file.upload', 'server']]);
    assert.deepEqual([body.total, body.has_more], [3, true]);
    assert.match(body.activities[0].created_at, ISO_Z);
    const traversal = await app.inject({ method: 'GET', url: '/api/activity/recent?path_prefix=sven/../bob', headers: sven });
    assert.deepEqual([traversal.statusCode, traversal.json()], [400, { detail: 'Invalid path' }]);

    // The log survives a restart, and dedup still knows the batch.
    await db.close();
    db = new ClassicLevel<string, string>(path.join(dir.path, 'db'), { valueEncoding: 'utf8' });
    await db.open();
    activity = await ActivityLog.open(db);
    await app.close();
    app = await appFor(activity);
    const third = await app.inject({ method: 'POST', url: '/api/activity/report', headers: sven, payload: batch });
    assert.deepEqual(third.json(), { accepted: 0, deduplicated: 2, rejected: 3 });
    const afterRestart = (await app.inject({ method: 'GET', url: '/api/activity/recent-files', headers: sven })).json().files;
    assert.deepEqual(afterRestart.map((f: any) => f.file_path), ['sven/Docs/a.txt', 'sven/Docs/b.txt']);
  } finally {
    store.off('change', onChange);
    await app.close();
    await store.close();
    await db.close();
    await dir.remove();
  }
});

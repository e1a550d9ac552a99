// BaluHost's sync endpoints answered from the Pi's store, through the real Fastify app (inject) over a real store and
// a real LevelDB. Shapes are checked key by key against ../shared/reference/baluhost-api.md §4; the BaluDesk flow
// (clients.md §B.5) runs first sync -> server changes -> delta sync with the change token.

import { test, before, after, describe } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { SignJWT } from 'jose';
import { ClassicLevel } from 'classic-level';
import type { FastifyInstance } from 'fastify';
import { buildApp } from '../../src/http/app.ts';
import { TokenVerifier } from '../../src/auth/tokens.ts';
import { createLogger } from '../../src/log.ts';
import { syncRestRoutes } from '../../src/routes/sync-rest.ts';
import { SyncDevices } from '../../src/sync-api/devices.ts';
import { openStore, type Store } from '../../store/index.ts';
import { tempDir } from '../helpers/daemon-process.ts';

const SECRET = 'a-baluhost-secret-key-of-32-chars!!';
const ISO_PLUS00 = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{6})?\+00:00$/;
const UUID4 = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
const DEV = '3f2c9a7e-1b2c-4d5e-8f90-0123456789ab';

async function token(username: string, role: 'admin' | 'user', id: number): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  return new SignJWT({ sub: String(id), username, role, type: 'access', iat: now, exp: now + 900 })
    .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
    .sign(new TextEncoder().encode(SECRET));
}

const sha = (s: string) => createHash('sha256').update(s).digest('hex');
const sorted = <T extends { path: string }>(xs: T[]) => [...xs].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));

describe('sync endpoints over a real store', () => {
  let dir: Awaited<ReturnType<typeof tempDir>>;
  let store: Store;
  let db: ClassicLevel<string, string>;
  let devices: SyncDevices;
  let app: FastifyInstance;
  let alice: string, bob: string, admin: string;
  let firstToken = '';
  let secondToken = '';

  const put = (path: string, text: string, mtimeMs = Date.UTC(2026, 2, 1, 12, 0, 0, 250)) => store.ingest(path, Readable.from([Buffer.from(text)]), { mtimeMs });
  const call = (method: 'GET' | 'POST', url: string, body?: unknown, tok = alice, headers: Record<string, string> = {}) =>
    app.inject({ method, url, headers: { authorization: `Bearer ${tok}`, ...headers }, ...(body === undefined ? {} : typeof body === 'string' ? { payload: body, headers: { authorization: `Bearer ${tok}`, 'content-type': 'application/json' } } : { payload: body as object }) });
  const status = async () => (await call('GET', `/api/sync/status/${DEV}`)).json();

  before(async () => {
    dir = await tempDir('balupi-syncrest-');
    store = await openStore({ dir: join(dir.path, 'store') });
    db = new ClassicLevel<string, string>(join(dir.path, 'db'), { valueEncoding: 'utf8' });
    await db.open();
    devices = new SyncDevices(db);
    app = await buildApp({
      logger: createLogger({ logLevel: 'silent', logFormat: 'json' }),
      verifier: new TokenVerifier(SECRET),
      plugins: [(a) => a.register(syncRestRoutes, { store, devices })],
    });
    [alice, bob, admin] = await Promise.all([token('alice', 'user', 5), token('bob', 'user', 6), token('root', 'admin', 1)]);
    await put('alice/a.txt', 'same on both');
    await put('alice/b.txt', 'server version of b');
    await put('alice/c.txt', 'only on the server');
    await put('Shared/s.txt', 'shared file');
    await put('bob/secret.txt', 'not alice\'s');
  });

  after(async () => {
    await app.close();
    await db.close();
    await store.close();
    await dir.remove();
  });

  test('preflight: sync always allowed on the Pi, every key of BaluHost\'s answer, also for an automatic trigger', async () => {
    for (const headers of [{}, { 'x-sync-trigger': 'auto' }, { 'x-sync-trigger': 'scheduled' }] as Record<string, string>[]) {
      const res = await call('GET', '/api/sync/preflight', undefined, alice, headers);
      assert.equal(res.statusCode, 200);
      assert.deepEqual(res.json(), { sync_allowed: true, current_sleep_state: 'awake', sleep_schedule: null, next_sleep_at: null, next_wake_at: null, block_reason: null });
    }
  });

  test('state: the user\'s home and Shared files, `/`-prefixed, with SHA-256 and +00:00 times; nobody else\'s', async () => {
    const res = await call('GET', '/api/sync/state', undefined, alice, { 'x-sync-trigger': 'auto' });
    assert.equal(res.statusCode, 200);
    const body = res.json();
    assert.deepEqual(Object.keys(body), ['files']);
    const files = sorted(body.files as { path: string; size: number; sha256: string; modified_at: string }[]);
    assert.deepEqual(files.map((f) => f.path), ['/Shared/s.txt', '/alice/a.txt', '/alice/b.txt', '/alice/c.txt']);
    for (const f of files) assert.deepEqual(Object.keys(f), ['path', 'size', 'sha256', 'modified_at']);
    assert.deepEqual(files[1], { path: '/alice/a.txt', size: 12, sha256: sha('same on both'), modified_at: '2026-03-01T12:00:00.250000+00:00' });
    const bobs = (await call('GET', '/api/sync/state', undefined, bob)).json().files.map((f: { path: string }) => f.path).sort();
    assert.deepEqual(bobs, ['/Shared/s.txt', '/bob/secret.txt']);
  });

  test('an unregistered device: /changes 400 and /status 404, "Device not registered"; nothing is recorded', async () => {
    const changes = await call('POST', '/api/sync/changes', { device_id: DEV, file_list: [] });
    assert.equal(changes.statusCode, 400);
    assert.deepEqual(changes.json(), { detail: 'Device not registered' });
    const st = await call('GET', `/api/sync/status/${DEV}`);
    assert.equal(st.statusCode, 404);
    assert.deepEqual(st.json(), { detail: 'Device not registered' });
    assert.equal(await devices.get(5, DEV), undefined);
  });

  test('BaluDesk\'s first sync: unknown server files to download, a differing file a conflict, its new file left alone', async () => {
    await devices.register(5, DEV, 'DESKTOP-ABC');
    // Exactly what BaluDesk sends (keys sorted as nlohmann emits them), no change_token on a first sync.
    const res = await call('POST', '/api/sync/changes', {
      device_id: DEV,
      file_list: [
        { hash: sha('same on both'), modified_at: '2026-03-01T12:00:00Z', path: 'alice/a.txt', size: 12 },
        { hash: sha('client version of b'), modified_at: '2026-03-01T12:00:00Z', path: '/alice/b.txt', size: 19 },
        { hash: '', modified_at: '2026-03-01T12:00:00Z', path: 'alice/new.txt', size: 3 },
      ],
    });
    assert.equal(res.statusCode, 200, res.body);
    const body = res.json();
    assert.deepEqual(Object.keys(body), ['to_download', 'to_delete', 'conflicts', 'change_token']);
    assert.deepEqual(sorted(body.to_download), [
      { path: 'Shared/s.txt', action: 'add', size: 11, modified_at: '2026-03-01T12:00:00.250000+00:00' },
      { path: 'alice/c.txt', action: 'add', size: 18, modified_at: '2026-03-01T12:00:00.250000+00:00' },
    ]);
    assert.deepEqual(body.to_delete, [], 'a first sync deletes nothing, least of all alice/new.txt');
    assert.deepEqual(body.conflicts, [
      { path: 'alice/b.txt', client_hash: sha('client version of b'), server_hash: sha('server version of b'), server_modified_at: '2026-03-01T12:00:00.250000+00:00' },
    ]);
    assert.match(body.change_token, UUID4);
    firstToken = body.change_token;
  });

  test('the delta sync with the token: only what changed since, server deletions, a conflict for a file changed on both sides', async () => {
    // On the server meanwhile: c deleted, d added, a changed. On the client: a changed too, new.txt still new.
    await store.delete('alice/c.txt');
    await put('alice/d.txt', 'added on the server', Date.UTC(2026, 2, 2, 8, 30, 0, 0));
    await put('alice/a.txt', 'changed on the server', Date.UTC(2026, 2, 2, 9, 0, 0, 0));
    const res = await call('POST', '/api/sync/changes', {
      change_token: firstToken,
      device_id: DEV,
      file_list: [
        { hash: '', modified_at: '2026-03-02T10:00:00Z', path: 'alice/new.txt', size: 3 },
        { hash: sha('changed on the client'), modified_at: '2026-03-02T10:00:00Z', path: 'alice/a.txt', size: 21 },
      ],
    }, alice, { 'x-sync-trigger': 'auto' });
    assert.equal(res.statusCode, 200, res.body);
    const body = res.json();
    assert.deepEqual(body.to_download, [{ path: 'alice/d.txt', action: 'add', size: 19, modified_at: '2026-03-02T08:30:00+00:00' }]);
    assert.deepEqual(body.to_delete, [{ path: 'alice/c.txt' }]);
    assert.equal(body.conflicts.length, 1);
    assert.deepEqual(body.conflicts[0], { path: 'alice/a.txt', client_hash: sha('changed on the client'), server_hash: sha('changed on the server'), server_modified_at: '2026-03-02T09:00:00+00:00' });
    assert.match(body.change_token, UUID4);
    assert.notEqual(body.change_token, firstToken, 'a fresh token on every answer');
    secondToken = body.change_token;
    // Nothing changed since: an empty answer.
    const quiet = (await call('POST', '/api/sync/changes', { change_token: secondToken, device_id: DEV, file_list: [] })).json();
    assert.deepEqual([quiet.to_download, quiet.to_delete, quiet.conflicts], [[], [], []]);
    secondToken = quiet.change_token;
  });

  test('an unknown change token counts as a first sync: everything to download, nothing deleted', async () => {
    const body = (await call('POST', '/api/sync/changes', { change_token: 'not-a-token-we-issued', device_id: DEV, file_list: [] })).json();
    assert.deepEqual(body.to_download.map((d: { path: string }) => d.path).sort(), ['Shared/s.txt', 'alice/a.txt', 'alice/b.txt', 'alice/d.txt']);
    assert.deepEqual(body.to_delete, []);
    secondToken = body.change_token;
  });

  test('status: BaluHost\'s keys; pending counts the user\'s changes since the last /changes, conflicts the last answer\'s', async () => {
    let st = await status();
    assert.deepEqual(Object.keys(st), ['status', 'device_id', 'device_name', 'last_sync', 'pending_changes', 'conflicts', 'change_token']);
    assert.equal(st.status, 'synced');
    assert.equal(st.device_id, DEV);
    assert.equal(st.device_name, 'DESKTOP-ABC');
    assert.match(st.last_sync, ISO_PLUS00);
    assert.equal(st.pending_changes, 0);
    assert.equal(st.conflicts, 0);
    assert.equal(st.change_token, secondToken);
    await put('alice/later.txt', 'after the last sync');
    await put('bob/later.txt', 'bob\'s, not counted for alice');
    st = await status();
    assert.equal(st.pending_changes, 1);
    // Another user does not see alice's device.
    assert.equal((await call('GET', `/api/sync/status/${DEV}`, undefined, bob)).statusCode, 404);
  });

  test('bad /changes input is refused whole (400/403/422 {detail}) and changes nothing stored', async () => {
    const before = await status();
    const item = (path: string) => ({ hash: '', modified_at: '2026-03-01T12:00:00Z', path, size: 1 });
    const cases: [string, unknown, number][] = [
      ['traversal in a listed path', { device_id: DEV, change_token: secondToken, file_list: [item('alice/ok.txt'), item('alice/../bob/secret.txt')] }, 400],
      ['another user\'s path', { device_id: DEV, change_token: secondToken, file_list: [item('bob/secret.txt')] }, 403],
      ['file_list not a list', { device_id: DEV, file_list: 'alice/a.txt' }, 422],
      ['hash not SHA-256 hex', { device_id: DEV, file_list: [{ ...item('alice/a.txt'), hash: 'xyz' }] }, 422],
      ['negative size', { device_id: DEV, file_list: [{ ...item('alice/a.txt'), size: -1 }] }, 422],
      ['no device_id', { file_list: [] }, 422],
      ['not JSON', '{"device_id": "x", file_list: [', 422],
    ];
    for (const [what, body, code] of cases) {
      const res = await call('POST', '/api/sync/changes', body);
      assert.equal(res.statusCode, code, `${what}: ${res.body}`);
      assert.ok('detail' in res.json(), what);
      if (code === 422) assert.ok(Array.isArray(res.json().detail), `${what}: FastAPI's list`);
    }
    const after = await status();
    assert.equal(after.change_token, before.change_token, 'no token was issued');
    assert.equal(after.last_sync, before.last_sync);
    assert.equal((await store.stat('bob/secret.txt')).size, 11);
  });

  test('report-folders upserts and deactivates; synced-folders lists them (the admin sees usernames); bad input changes nothing', async () => {
    const report = (folders: unknown[], extra: Record<string, unknown> = {}) =>
      call('POST', '/api/sync/report-folders', { device_id: DEV, device_name: 'DESKTOP-ABC', platform: 'windows', folders, ...extra });
    let res = await report([{ remote_path: 'alice/Sync', sync_direction: 'bidirectional' }, { remote_path: '/Shared/Team', sync_direction: 'pull' }]);
    assert.equal(res.statusCode, 200, res.body);
    assert.deepEqual(res.json(), { accepted: 2, deactivated: 0 });
    res = await report([{ remote_path: 'alice/Sync', sync_direction: 'push' }]);
    assert.deepEqual(res.json(), { accepted: 1, deactivated: 1 });

    const bad: [string, unknown[], Record<string, unknown>, number][] = [
      ['traversal', [{ remote_path: 'alice/../bob', sync_direction: 'push' }], {}, 400],
      ['another user\'s folder', [{ remote_path: 'bob/Sync', sync_direction: 'push' }], {}, 403],
      ['unknown platform', [], { platform: 'amiga' }, 422],
      ['unknown direction', [{ remote_path: 'alice/Sync', sync_direction: 'sideways' }], {}, 422],
    ];
    for (const [what, folders, extra, code] of bad) {
      const r = await report(folders, extra);
      assert.equal(r.statusCode, code, `${what}: ${r.body}`);
    }

    const mine = (await call('GET', '/api/sync/synced-folders')).json();
    assert.deepEqual(mine.folders.length, 1, 'active only by default; the bad reports deactivated nothing');
    const f = mine.folders[0];
    assert.deepEqual(Object.keys(f), ['remote_path', 'device_id', 'device_name', 'platform', 'sync_direction', 'is_active', 'last_reported_at', 'username']);
    assert.deepEqual({ ...f, last_reported_at: 'x' }, { remote_path: 'alice/Sync', device_id: DEV, device_name: 'DESKTOP-ABC', platform: 'windows', sync_direction: 'push', is_active: true, last_reported_at: 'x', username: null });
    assert.match(f.last_reported_at, ISO_PLUS00);
    const all = (await call('GET', '/api/sync/synced-folders?active_only=false', undefined, admin)).json();
    assert.deepEqual(all.folders.map((x: { remote_path: string; is_active: boolean; username: string }) => [x.remote_path, x.is_active, x.username]).sort(), [['Shared/Team', false, 'alice'], ['alice/Sync', true, 'alice']]);
    assert.deepEqual((await call('GET', '/api/sync/synced-folders', undefined, bob)).json(), { folders: [] });
  });
});

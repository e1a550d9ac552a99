// BaluApp's sync folders (/api/mobile/sync/folders/...) through the real Fastify app over a real LevelDB, with the
// bodies BaluApp sends (clients.md §A.3) and the fields it reads (§A.4). The clock is the test's, so last_sync values
// are exact.

import { test, before, after, describe } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { SignJWT } from 'jose';
import { ClassicLevel } from 'classic-level';
import type { FastifyInstance } from 'fastify';
import { buildApp } from '../../src/http/app.ts';
import { TokenVerifier } from '../../src/auth/tokens.ts';
import { createLogger } from '../../src/log.ts';
import { mobileSyncRoutes } from '../../src/routes/mobile-sync.ts';
import { MobileFolders } from '../../src/sync-api/mobile-folders.ts';
import { tempDir } from '../helpers/daemon-process.ts';

const SECRET = 'a-baluhost-secret-key-of-32-chars!!';
const DEV = 'b1a2c3d4-0000-4000-8000-000000000001';
const UUID4 = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

async function token(username: string, id: number): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  return new SignJWT({ sub: String(id), username, role: 'user', type: 'access', iat: now, exp: now + 900 })
    .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
    .sign(new TextEncoder().encode(SECRET));
}

describe('mobile sync folders', () => {
  let dir: Awaited<ReturnType<typeof tempDir>>;
  let db: ClassicLevel<string, string>;
  let app: FastifyInstance;
  let sven: string, other: string;
  let clock = Date.UTC(2026, 2, 1, 12, 0, 0, 0);
  let folderId = '';

  const call = (method: 'GET' | 'POST' | 'PUT' | 'DELETE', url: string, body?: unknown, tok = sven) =>
    app.inject({ method, url, headers: { authorization: `Bearer ${tok}`, 'x-device-id': DEV }, ...(body === undefined ? {} : { payload: body as object }) });
  const list = async (tok = sven) => (await call('GET', `/api/mobile/sync/folders/${DEV}`, undefined, tok)).json();

  before(async () => {
    dir = await tempDir('balupi-mobilesync-');
    db = new ClassicLevel<string, string>(join(dir.path, 'db'), { valueEncoding: 'utf8' });
    await db.open();
    app = await buildApp({
      logger: createLogger({ logLevel: 'silent', logFormat: 'json' }),
      verifier: new TokenVerifier(SECRET),
      plugins: [(a) => a.register(mobileSyncRoutes, { folders: new MobileFolders(db, { now: () => clock }) })],
    });
    [sven, other] = await Promise.all([token('sven', 7), token('mia', 8)]);
  });

  after(async () => {
    await app.close();
    await db.close();
    await dir.remove();
  });

  test('create with BaluApp\'s exact body: every field it reads comes back', async () => {
    // SyncFolderCreateDto as Gson sends it (adapter_type and save_credentials are not ours; they are ignored).
    const res = await call('POST', `/api/mobile/sync/folders/${DEV}`, {
      local_path: 'content://com.android.externalstorage.documents/tree/primary%3ADCIM',
      remote_path: 'sven/Photos',
      sync_type: 'upload',
      auto_sync: true,
      conflict_resolution: 'keep_newest',
      adapter_type: 'filesystem',
      save_credentials: false,
      exclude_patterns: ['*.tmp'],
    });
    assert.equal(res.statusCode, 200, res.body);
    const f = res.json();
    assert.deepEqual(Object.keys(f), ['id', 'device_id', 'local_path', 'remote_path', 'sync_type', 'auto_sync', 'conflict_resolution', 'exclude_patterns', 'last_sync', 'status', 'created_at']);
    assert.match(f.id, UUID4);
    assert.deepEqual({ ...f, id: 'x' }, {
      id: 'x',
      device_id: DEV,
      local_path: 'content://com.android.externalstorage.documents/tree/primary%3ADCIM',
      remote_path: 'sven/Photos',
      sync_type: 'upload',
      auto_sync: true,
      conflict_resolution: 'keep_newest',
      exclude_patterns: ['*.tmp'],
      last_sync: null,
      status: 'idle',
      created_at: '2026-03-01T12:00:00Z',
    });
    folderId = f.id;
    assert.deepEqual(await list(), [f]);
  });

  test('the worker\'s run: status syncing keeps last_sync; {"status":"idle"} at the end advances it, every time', async () => {
    clock += 60_000;
    let res = await call('PUT', `/api/mobile/sync/folders/${folderId}`, { status: 'syncing' });
    assert.equal(res.statusCode, 200, res.body);
    assert.equal(res.json().status, 'syncing');
    assert.equal(res.json().last_sync, null);
    clock += 5_500;
    res = await call('PUT', `/api/mobile/sync/folders/${folderId}`, { status: 'idle' });
    assert.equal(res.json().status, 'idle');
    assert.equal(res.json().last_sync, '2026-03-01T12:01:05.500000Z');
    clock += 3_600_000;
    await call('PUT', `/api/mobile/sync/folders/${folderId}`, { status: 'idle' });
    const [f] = await list();
    assert.equal(f.last_sync, '2026-03-01T13:01:05.500000Z', 'the list shows the advanced baseline');
    assert.equal(f.remote_path, 'sven/Photos', 'fields not sent are kept');
    // An edit that is not the end of a run does not move the baseline.
    clock += 1000;
    const edited = (await call('PUT', `/api/mobile/sync/folders/${folderId}`, { sync_type: 'bidirectional', remote_path: '/sven/Camera/' })).json();
    assert.equal(edited.last_sync, '2026-03-01T13:01:05.500000Z');
    assert.equal(edited.remote_path, 'sven/Camera');
    assert.equal(edited.sync_type, 'bidirectional');
  });

  test('bad input is refused with {detail} and nothing stored changes', async () => {
    const before = await list();
    const cases: [string, 'POST' | 'PUT', unknown, number][] = [
      ['traversal in remote_path', 'POST', { local_path: 'content://x', remote_path: 'sven/../mia' }, 400],
      ['another user\'s folder as remote_path', 'POST', { local_path: 'content://x', remote_path: 'mia/Photos' }, 403],
      ['no remote_path', 'POST', { local_path: 'content://x' }, 422],
      ['unknown sync_type', 'POST', { local_path: 'content://x', remote_path: 'sven/x', sync_type: 'sideways' }, 422],
      ['unknown status', 'PUT', { status: 'exploded' }, 422],
      ['auto_sync not a boolean', 'PUT', { auto_sync: 'yes please' }, 422],
      ['traversal in an update', 'PUT', { remote_path: '../etc' }, 400],
    ];
    for (const [what, method, body, code] of cases) {
      const url = method === 'POST' ? `/api/mobile/sync/folders/${DEV}` : `/api/mobile/sync/folders/${folderId}`;
      const res = await call(method, url, body);
      assert.equal(res.statusCode, code, `${what}: ${res.body}`);
      assert.ok('detail' in res.json(), what);
    }
    assert.deepEqual(await list(), before);
  });

  test('another user neither sees, changes nor deletes the folder (404); its owner deletes it (204)', async () => {
    assert.deepEqual(await list(other), []);
    const put = await call('PUT', `/api/mobile/sync/folders/${folderId}`, { status: 'idle' }, other);
    assert.equal(put.statusCode, 404);
    assert.deepEqual(put.json(), { detail: 'Sync folder not found' });
    assert.equal((await call('DELETE', `/api/mobile/sync/folders/${folderId}`, undefined, other)).statusCode, 404);
    assert.equal((await list()).length, 1);
    const del = await call('DELETE', `/api/mobile/sync/folders/${folderId}`);
    assert.equal(del.statusCode, 204);
    assert.deepEqual(await list(), []);
    assert.equal((await call('PUT', `/api/mobile/sync/folders/${folderId}`, { status: 'idle' })).statusCode, 404);
  });
});

// GET /api/files/list as the clients parse it: BaluHost's 14 FileItem keys plus BaluDesk's, no nulls where a client
// dereferences, UTC `…Z` timestamps, directories first, SHA-256 checksums, stable ids, recursive folder sizes kept
// exact as files change, and the jail (Shared/ and the user's home; 403 elsewhere; 400 for traversal).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { testbed } from './testbed.ts';

const sha = (s: string) => createHash('sha256').update(s).digest('hex');
const BALUHOST_KEYS = ['name', 'path', 'size', 'type', 'modified_at', 'owner_id', 'owner_name', 'mime_type', 'file_id', 'checksum', 'sync_info', 'can_read', 'can_write', 'can_delete'];
const BALUDESK_KEYS = ['owner', 'created_at', 'updated_at', 'mount_id'];

test('a folder lists with every key, directories first, Z timestamps, SHA-256 checksums and recursive folder sizes', async () => {
  const tb = await testbed();
  try {
    await tb.put('alice/docs/b.txt', 'bee');
    await tb.put('alice/docs/A.txt', 'a');
    await tb.put('alice/docs/zeta/deep/x.bin', '12345');
    await tb.put('alice/docs/alpha/y.bin', '123');
    const res = await tb.app.inject({ url: '/api/files/list?path=alice%2Fdocs', headers: tb.alice });
    assert.equal(res.statusCode, 200);
    const files = res.json().files;
    assert.deepEqual(files.map((f: any) => f.name), ['alpha', 'zeta', 'A.txt', 'b.txt'], 'directories first, then case-insensitive names');
    for (const f of files) {
      assert.deepEqual(Object.keys(f).sort(), [...BALUHOST_KEYS, ...BALUDESK_KEYS].sort());
      assert.match(f.modified_at, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/, 'Instant.parse needs a Z');
      for (const k of ['name', 'path', 'type', 'owner', 'created_at', 'updated_at']) assert.equal(typeof f[k], 'string', `${k} is never null (BaluDesk)`);
      for (const k of ['size', 'file_id', 'mount_id']) assert.equal(typeof f[k], 'number', k);
      assert.equal(f.owner_name, 'alice');
      assert.equal(f.owner_id, '5', 'owner_id is a string');
    }
    const byName = Object.fromEntries(files.map((f: any) => [f.name, f]));
    assert.equal(byName['b.txt'].checksum, sha('bee'));
    assert.equal(byName['b.txt'].mime_type, 'text/plain');
    assert.equal(byName['b.txt'].path, 'alice/docs/b.txt', 'paths are relative to the root, without a leading slash');
    assert.equal(byName.zeta.type, 'directory');
    assert.equal(byName.zeta.size, 5, 'a folder size is recursive');
    assert.equal(byName.zeta.checksum, null);
    assert.equal(byName.zeta.mime_type, null);

    // Sizes stay exact as files change after the first listing (cached, kept up to date by change events).
    await tb.put('alice/docs/zeta/more.bin', '1234567');
    await tb.put('alice/docs/zeta/deep/x.bin', '1');
    await tb.store.delete('alice/docs/alpha/y.bin');
    const again = (await tb.app.inject({ url: '/api/files/list?path=alice/docs', headers: tb.alice })).json().files;
    const zeta = again.find((f: any) => f.name === 'zeta');
    assert.equal(zeta.size, 8);
    assert.equal(zeta.file_id, byName.zeta.file_id, 'ids are stable');
    assert.equal(again.find((f: any) => f.name === 'alpha'), undefined, 'an implied folder goes with its last file');

    // Desktop variants of the same path: a leading slash, the mount parameter.
    const desk = await tb.app.inject({ url: '/api/files/list?path=/alice/docs&mount=1', headers: tb.alice });
    assert.deepEqual(desk.json().files.map((f: any) => f.name), again.map((f: any) => f.name));
    // A folder that does not exist lists as empty (BaluHost), and so does a file.
    assert.deepEqual((await tb.app.inject({ url: '/api/files/list?path=alice/nope', headers: tb.alice })).json(), { files: [] });
    assert.deepEqual((await tb.app.inject({ url: '/api/files/list?path=alice/docs/b.txt', headers: tb.alice })).json(), { files: [] });
  } finally {
    await tb.close();
  }
});

test('the jail: a user sees Shared and the home at the root; other homes are 403, traversal 400; admins see everything', async () => {
  const tb = await testbed();
  try {
    await tb.put('alice/a.txt', 'a');
    await tb.put('bob/secret.txt', 'b');
    await tb.put('Shared/s.txt', 's');
    await tb.put('alice/.Trash-1000/hidden.txt', 'h');
    const root = (await tb.app.inject({ url: '/api/files/list?path=', headers: tb.alice })).json().files;
    assert.deepEqual(root.map((f: any) => [f.name, f.type, f.size, f.owner_id]), [['alice', 'directory', 0, '5'], ['Shared', 'directory', 0, null]]);
    const slashRoot = (await tb.app.inject({ url: '/api/files/list?path=%2F', headers: tb.alice })).json().files;
    assert.deepEqual(slashRoot.map((f: any) => f.name), ['alice', 'Shared'], 'path=/ (dashboard fallback, BaluDesk) is the root too');

    for (const [url, status, detail] of [
      ['/api/files/list?path=bob', 403, 'Access denied'],
      ['/api/files/list?path=alice/../bob', 400, 'Invalid path'],
      ['/api/files/list?path=alice%2F%2e%2e%2fbob', 400, 'Invalid path'],
      ['/api/files/list?path=alice%00x', 400, 'Invalid path'],
      ['/api/files/list?path=/etc', 403, 'Access denied'],
    ] as const) {
      const res = await tb.app.inject({ url, headers: tb.alice });
      assert.equal(res.statusCode, status, url);
      assert.deepEqual(res.json(), { detail }, url);
    }
    const home = (await tb.app.inject({ url: '/api/files/list?path=alice', headers: tb.alice })).json().files;
    assert.deepEqual(home.map((f: any) => f.name), ['a.txt'], 'system names are hidden from users');
    const adminRoot = (await tb.app.inject({ url: '/api/files/list?path=', headers: tb.admin })).json().files;
    assert.deepEqual(adminRoot.map((f: any) => f.name), ['alice', 'bob', 'Shared']);
    assert.equal(adminRoot.find((f: any) => f.name === 'bob').size, 1);
    const noToken = await tb.app.inject({ url: '/api/files/list?path=' });
    assert.equal(noToken.statusCode, 401);
    const forged = await tb.app.inject({ url: '/api/files/list?path=', headers: { authorization: 'Bearer ' + (await import('./testbed.ts').then((m) => m.token({ exp: 1 }))) } });
    assert.deepEqual([forged.statusCode, forged.json()], [401, { detail: 'Could not validate credentials' }], 'an expired token');
    assert.equal((await tb.store.stat('bob/secret.txt')).size, 1, 'nothing was harmed');
  } finally {
    await tb.close();
  }
});

test('mountpoints, storage/available and check-exists answer in BaluHost shape', async () => {
  const tb = await testbed();
  try {
    await tb.put('alice/up/dup.jpg', 'xyz');
    const m = (await tb.app.inject({ url: '/api/files/mountpoints', headers: tb.alice })).json();
    assert.equal(m.mountpoints.length, 1);
    for (const k of ['size_bytes', 'used_bytes', 'available_bytes']) assert.equal(typeof m.mountpoints[0][k], 'number', k);
    assert.equal(m.default_mountpoint, m.mountpoints[0].id);
    const a = (await tb.app.inject({ url: '/api/files/storage/available', headers: tb.alice })).json();
    assert.ok(a.available_bytes > 0 && a.used_bytes === 3 && a.quota_bytes === null, JSON.stringify(a));
    const c = await tb.app.inject({ method: 'POST', url: '/api/files/check-exists', headers: tb.alice, payload: { filenames: ['dup.jpg', 'new.jpg'], target_path: 'alice/up' } });
    assert.equal(c.statusCode, 200);
    assert.deepEqual(c.json().duplicates.map((d: any) => [d.filename, d.size_bytes, d.checksum]), [['dup.jpg', 3, sha('xyz')]]);
    assert.match(c.json().duplicates[0].modified_at, /\+00:00$/);
  } finally {
    await tb.close();
  }
});

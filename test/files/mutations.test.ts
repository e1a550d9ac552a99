// Delete (raw path, ?path=, JSON body, file id; idempotent), folder/mkdir, rename (old_path or file_id) and move
// (target_path or destination_path, "into" an existing folder) as BaluHost answers them; renames re-point records
// without copying bytes and keep file ids; refusals (other users, traversal, a folder into itself) change nothing.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { testbed, type Testbed } from './testbed.ts';

async function names(tb: Testbed, dir: string, who: Record<string, string>) {
  return (await tb.app.inject({ url: `/api/files/list?path=${encodeURIComponent(dir)}`, headers: who })).json().files.map((f: any) => f.name);
}
async function all(tb: Testbed): Promise<string[]> {
  const out: string[] = [];
  for await (const r of tb.store.filesUnder('')) out.push(r.path);
  return out;
}

test('delete in all three styles and by body, recursively, and idempotently', async () => {
  const tb = await testbed();
  try {
    for (const p of ['alice/a.txt', 'alice/b c.txt', 'alice/d/1.txt', 'alice/d/e/2.txt', 'alice/x.txt', 'alice/y.txt']) await tb.put(p, p);
    const id = (await tb.app.inject({ url: '/api/files/list?path=alice', headers: tb.alice })).json().files.find((f: any) => f.name === 'x.txt').file_id;
    const del = (url: string, extra: object = {}) => tb.app.inject({ method: 'DELETE', url, headers: { ...tb.alice, 'content-type': 'application/json' }, ...extra });
    for (const [url, gone] of [
      ['/api/files/alice/a.txt', 'alice/a.txt'], // BaluApp: raw path
      ['/api/files?path=alice%2Fb%20c.txt', 'alice/b c.txt'], // BaluDesk sync: ?path=, curl-escaped, JSON content type and no body
      [`/api/files/${id}`, 'alice/x.txt'], // BaluDesk explorer: file id
    ] as const) {
      const res = await del(url);
      assert.deepEqual([res.statusCode, res.json()], [200, { message: 'Deleted' }], url);
      assert.ok(!(await all(tb)).includes(gone), url);
    }
    const body = await tb.app.inject({ method: 'POST', url: '/api/files/delete', headers: tb.alice, payload: { path: 'alice/y.txt' } });
    assert.equal(body.statusCode, 200);
    const tree = await del('/api/files/alice/d');
    assert.equal(tree.statusCode, 200);
    assert.deepEqual(await all(tb), [], 'a folder goes with everything below it');
    assert.deepEqual((await del('/api/files/alice/never-was.txt')).json(), { message: 'Deleted' }, 'a missing path is deleted already');
    assert.deepEqual((await del('/api/files/424242')).json(), { message: 'Deleted' }, 'so is an unknown id');
    // The deletions reach the change feed as tombstones (what sync carries to the NAS).
    const tombs: string[] = [];
    for await (const r of tb.store.changesSince(0)) if (r.deleted) tombs.push(r.path);
    assert.equal(tombs.length, 6);
  } finally {
    await tb.close();
  }
});

test('refused deletes harm nothing: another home, the home itself, traversal', async () => {
  const tb = await testbed();
  try {
    await tb.put('bob/keep.txt', 'keep');
    await tb.put('alice/a.txt', 'a');
    for (const [url, status, detail] of [
      ['/api/files/bob/keep.txt', 403, 'Access denied'],
      ['/api/files?path=bob', 403, 'Access denied'],
      ['/api/files/alice', 403, 'Access denied'],
      ['/api/files/Shared', 403, 'Access denied'],
      ['/api/files/alice%2F..%2Fbob', 400, 'Invalid path'],
      ['/api/files?path=alice/../bob', 400, 'Invalid path'],
    ] as const) {
      const res = await tb.app.inject({ method: 'DELETE', url, headers: tb.alice });
      assert.deepEqual([res.statusCode, res.json()], [status, { detail }], url);
    }
    const bobId = (await tb.app.inject({ url: '/api/files/list?path=bob', headers: tb.bob })).json().files[0].file_id;
    assert.equal((await tb.app.inject({ method: 'DELETE', url: `/api/files/${bobId}`, headers: tb.alice })).statusCode, 403, 'another user\'s file id');
    assert.deepEqual(await all(tb), ['alice/a.txt', 'bob/keep.txt']);
  } finally {
    await tb.close();
  }
});

test('folders: POST folder and mkdir are mkdir -p, empty folders list, a file in the way is a conflict', async () => {
  const tb = await testbed();
  try {
    let res = await tb.app.inject({ method: 'POST', url: '/api/files/folder', headers: tb.alice, payload: { mount_id: '1', name: 'New Folder', path: '/alice/Docs' } });
    assert.deepEqual([res.statusCode, res.json()], [200, { message: 'Folder created' }]);
    assert.deepEqual(await names(tb, 'alice', tb.alice), ['Docs']);
    assert.deepEqual(await names(tb, 'alice/Docs', tb.alice), ['New Folder']);
    res = await tb.app.inject({ method: 'POST', url: '/api/files/mkdir', headers: tb.alice, payload: { path: '/alice/a/b/c' } });
    assert.equal(res.statusCode, 200);
    assert.deepEqual(await names(tb, 'alice/a/b', tb.alice), ['c']);
    res = await tb.app.inject({ method: 'POST', url: '/api/files/folder', headers: tb.alice, payload: { path: 'alice', name: 'Docs' } });
    assert.equal(res.statusCode, 200, 'an existing folder is fine');
    res = await tb.app.inject({ method: 'POST', url: '/api/files/folder', headers: tb.alice, payload: { path: 'alice', name: '' } });
    assert.deepEqual([res.statusCode, res.json()], [400, { detail: 'Folder name required' }]);
    await tb.put('alice/file.txt', 'f');
    res = await tb.app.inject({ method: 'POST', url: '/api/files/mkdir', headers: tb.alice, payload: { path: 'alice/file.txt/sub' } });
    assert.equal(res.statusCode, 409);
    res = await tb.app.inject({ method: 'POST', url: '/api/files/folder', headers: tb.alice, payload: { path: 'bob', name: 'x' } });
    assert.equal(res.statusCode, 403);
    res = await tb.app.inject({ method: 'POST', url: '/api/files/folder', headers: tb.alice, payload: { path: 'alice', name: '../bob' } });
    assert.equal(res.statusCode, 400);
    assert.deepEqual(await names(tb, 'bob', tb.bob), []);
  } finally {
    await tb.close();
  }
});

test('rename and move re-point files and folders without copying bytes; ids follow; "into" an existing folder', async () => {
  const tb = await testbed();
  try {
    const big = randomBytes(500_000);
    await tb.put('alice/Docs/photo.jpg', big);
    await tb.put('alice/Docs/sub/n.txt', 'n');
    const before = tb.store.stats();
    const list = (await tb.app.inject({ url: '/api/files/list?path=alice/Docs', headers: tb.alice })).json().files;
    const photoId = list.find((f: any) => f.name === 'photo.jpg').file_id;
    // BaluDesk: rename by id.
    let res = await tb.app.inject({ method: 'PUT', url: '/api/files/rename', headers: tb.alice, payload: { file_id: photoId, new_name: 'p2.jpg' } });
    assert.deepEqual([res.statusCode, res.json()], [200, { message: 'Renamed' }]);
    // BaluHost: rename by old_path.
    res = await tb.app.inject({ method: 'PUT', url: '/api/files/rename', headers: tb.alice, payload: { old_path: 'alice/Docs/sub', new_name: 'sub2' } });
    assert.equal(res.statusCode, 200);
    assert.deepEqual(await names(tb, 'alice/Docs', tb.alice), ['sub2', 'p2.jpg']);
    // BaluApp: move with destination_path = dir/name.
    res = await tb.app.inject({ method: 'PUT', url: '/api/files/move', headers: tb.alice, payload: { source_path: 'alice/Docs/p2.jpg', destination_path: 'alice/Archive/p3.jpg' } });
    assert.deepEqual([res.statusCode, res.json()], [200, { message: 'Moved' }]);
    // BaluHost: target_path an existing folder -> into it.
    res = await tb.app.inject({ method: 'PUT', url: '/api/files/move', headers: tb.alice, payload: { source_path: 'alice/Docs/sub2', target_path: 'alice/Archive' } });
    assert.equal(res.statusCode, 200);
    assert.deepEqual((await all(tb)).sort(), ['alice/Archive/p3.jpg', 'alice/Archive/sub2/n.txt']);
    const moved = (await tb.app.inject({ url: '/api/files/download/alice/Archive/p3.jpg', headers: tb.alice })).rawPayload;
    assert.ok(moved.equals(big));
    const after = tb.store.stats();
    assert.equal(after.storedBytes, before.storedBytes, 'no byte was copied');
    const archive = (await tb.app.inject({ url: '/api/files/list?path=alice/Archive', headers: tb.alice })).json().files;
    assert.equal(archive.find((f: any) => f.name === 'p3.jpg').file_id, photoId, 'the id followed the file');
    // Each move is a delete + an add in the change feed.
    const feed: string[] = [];
    for await (const r of tb.store.changesSince(0)) feed.push(`${r.deleted ? '-' : '+'}${r.path}`);
    assert.ok(feed.includes('-alice/Docs/photo.jpg') && feed.includes('+alice/Archive/p3.jpg'), feed.join(' '));
  } finally {
    await tb.close();
  }
});

test('refused renames and moves change nothing: another home, a folder into itself, missing source, bad names', async () => {
  const tb = await testbed();
  try {
    await tb.put('alice/d/f.txt', 'f');
    await tb.put('bob/b.txt', 'b');
    const cases: [string, string, object, number][] = [
      ['into another home', '/api/files/move', { source_path: 'alice/d/f.txt', target_path: 'bob/f.txt' }, 403],
      ['out of another home', '/api/files/move', { source_path: 'bob/b.txt', target_path: 'alice/b.txt' }, 403],
      ['a folder into itself', '/api/files/move', { source_path: 'alice/d', target_path: 'alice/d/inner' }, 409],
      ['a missing source', '/api/files/move', { source_path: 'alice/nope', target_path: 'alice/x' }, 404],
      ['traversal in the target', '/api/files/move', { source_path: 'alice/d/f.txt', destination_path: 'alice/../bob/f.txt' }, 400],
      ['a slash in new_name', '/api/files/rename', { old_path: 'alice/d/f.txt', new_name: '../../bob/f.txt' }, 400],
      ['renaming the home', '/api/files/rename', { old_path: 'alice', new_name: 'mallory' }, 403],
      ['an unknown id', '/api/files/rename', { file_id: 99999, new_name: 'x' }, 404],
    ];
    for (const [what, url, payload, status] of cases) {
      const res = await tb.app.inject({ method: 'PUT', url, headers: tb.alice, payload });
      assert.equal(res.statusCode, status, `${what}: ${res.body}`);
      assert.equal(typeof res.json().detail, 'string', what);
    }
    assert.deepEqual(await all(tb), ['alice/d/f.txt', 'bob/b.txt']);
  } finally {
    await tb.close();
  }
});

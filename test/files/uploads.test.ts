// POST /api/files/upload in every form the clients send it, and the bad inputs: a multipart without a file, another
// user's folder, traversal in the form, a file where a folder is, a client that vanishes mid-body (a real socket).
// Each refusal answers {"detail"} and stores nothing; files that were there survive unchanged.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { createHash, randomBytes } from 'node:crypto';
import { testbed, multipart, type Testbed } from './testbed.ts';

const sha = (d: Buffer | string) => createHash('sha256').update(d).digest('hex');

async function upload(tb: Testbed, headers: Record<string, string>, parts: Parameters<typeof multipart>[0], query = '') {
  const body = multipart(parts);
  return tb.app.inject({ method: 'POST', url: '/api/files/upload' + query, headers: { ...headers, ...body.headers }, payload: body.payload });
}

async function read(tb: Testbed, name: string): Promise<Buffer | null> {
  try {
    const chunks: Buffer[] = [];
    for await (const c of await tb.store.read(name)) chunks.push(c);
    return Buffer.concat(chunks);
  } catch {
    return null;
  }
}

test('every client variant lands where the client meant, with the SHA-256 recorded', async () => {
  const tb = await testbed();
  try {
    const big = randomBytes(700_000);
    // BaluApp Files screen: `files` first, then `path` = the folder.
    let res = await upload(tb, tb.alice, [{ name: 'files', filename: 'photo.jpg', data: big }, { name: 'path', value: 'alice/Docs' }]);
    assert.equal(res.statusCode, 200, res.body);
    assert.equal(res.json().message, 'Files uploaded');
    assert.equal(res.json().uploaded, 1);
    assert.equal(res.json().upload_ids.length, 1);
    assert.ok((await read(tb, 'alice/Docs/photo.jpg'))!.equals(big));
    assert.equal((await tb.store.stat('alice/Docs/photo.jpg')).sha256, sha(big));
    // BaluApp folder sync: `file` first, then `path` = the full file path, even without a dot in the name.
    res = await upload(tb, tb.alice, [{ name: 'file', filename: 'a.jpg', data: 'sync a' }, { name: 'path', value: 'alice/Photos/sub/a.jpg' }]);
    assert.equal(res.statusCode, 200, res.body);
    assert.equal((await read(tb, 'alice/Photos/sub/a.jpg'))?.toString(), 'sync a');
    res = await upload(tb, tb.alice, [{ name: 'file', filename: 'README', data: 'no dot' }, { name: 'path', value: 'alice/Photos/README' }]);
    assert.equal((await read(tb, 'alice/Photos/README'))?.toString(), 'no dot', 'the last segment equals the file name: a full path');
    // BaluDesk sync: `path` (a folder, /-prefixed) first, then several `files`, or one `file`.
    res = await upload(tb, tb.bob, [{ name: 'path', value: '/bob/Sync' }, { name: 'files', filename: 'x.txt', data: 'x' }, { name: 'files', filename: 'y.txt', data: 'yy' }]);
    assert.equal(res.json().uploaded, 2);
    assert.equal((await read(tb, 'bob/Sync/y.txt'))?.toString(), 'yy');
    // BaluDesk explorer: only `file`, the full path in the query.
    res = await upload(tb, tb.bob, [{ name: 'file', filename: 'report.pdf', data: 'pdf' }], '?path=/bob/Docs/report.pdf&mount=1');
    assert.equal(res.statusCode, 200, res.body);
    assert.equal((await read(tb, 'bob/Docs/report.pdf'))?.toString(), 'pdf');
    // An existing folder stays a folder even with a dot in its name; existing files are overwritten silently.
    await tb.app.inject({ method: 'POST', url: '/api/files/folder', headers: tb.bob, payload: { path: 'bob', name: 'v1.2' } });
    await upload(tb, tb.bob, [{ name: 'path', value: 'bob/v1.2' }, { name: 'file', filename: 'notes.txt', data: 'in folder' }]);
    assert.equal((await read(tb, 'bob/v1.2/notes.txt'))?.toString(), 'in folder');
    await upload(tb, tb.bob, [{ name: 'path', value: 'bob/Sync' }, { name: 'file', filename: 'x.txt', data: 'x v2' }]);
    assert.equal((await read(tb, 'bob/Sync/x.txt'))?.toString(), 'x v2');
    // Filenames are reduced to their last component, control characters dropped, empty ones named upload.bin.
    await upload(tb, tb.bob, [{ name: 'path', value: 'bob/Sync' }, { name: 'file', filename: '../../evil\u0001.txt', data: 'e' }, { name: 'file', filename: '', data: 'anon' }]);
    assert.equal((await read(tb, 'bob/Sync/evil.txt'))?.toString(), 'e');
    assert.equal((await read(tb, 'bob/Sync/upload.bin'))?.toString(), 'anon');
    // The folder stays when its last file goes (like a disk).
    await tb.app.inject({ method: 'DELETE', url: '/api/files/bob/Docs/report.pdf', headers: tb.bob });
    const docs = (await tb.app.inject({ url: '/api/files/list?path=bob', headers: tb.bob })).json().files.map((f: any) => f.name);
    assert.ok(docs.includes('Docs'), JSON.stringify(docs));
  } finally {
    await tb.close();
  }
});

test('refused uploads store nothing and harm nothing: no file part, other home, traversal, folder in the way, no multipart', async () => {
  const tb = await testbed();
  try {
    await tb.put('bob/keep.txt', 'bob keeps this');
    const cases: [string, Record<string, string>, Parameters<typeof multipart>[0], number, string][] = [
      ['a form without a file', tb.alice, [{ name: 'path', value: 'alice' }], 400, 'No file provided'],
      ['a file part under another name', tb.alice, [{ name: 'document', filename: 'a.txt', data: 'a' }, { name: 'path', value: 'alice' }], 400, 'No file provided'],
      ['into another user\'s home (path first)', tb.alice, [{ name: 'path', value: 'bob' }, { name: 'file', filename: 'keep.txt', data: 'overwrite!' }], 403, 'Access denied'],
      ['into another user\'s home (path after the file)', tb.alice, [{ name: 'file', filename: 'keep.txt', data: 'overwrite!' }, { name: 'path', value: 'bob/keep.txt' }], 403, 'Access denied'],
      ['traversal in the form', tb.alice, [{ name: 'file', filename: 'k.txt', data: 'x' }, { name: 'path', value: 'alice/../bob' }], 400, 'Invalid path'],
      ['encoded traversal is literal in a form: a name with %2e is refused by the jail', tb.alice, [{ name: 'file', filename: 'k.txt', data: 'x' }, { name: 'path', value: '/etc/k.txt' }], 403, 'Access denied'],
      ['a NUL in the path', tb.alice, [{ name: 'file', filename: 'k.txt', data: 'x' }, { name: 'path', value: 'alice/a\u0000b' }], 400, 'Invalid path'],
      ['at the root (no folder)', tb.alice, [{ name: 'file', filename: 'root.txt', data: 'x' }], 403, 'Access denied'],
    ];
    for (const [what, headers, parts, status, detail] of cases) {
      const res = await upload(tb, headers, parts);
      assert.deepEqual([res.statusCode, res.json()], [status, { detail }], what);
    }
    await tb.put('alice/dir/inner.txt', 'i');
    const clash = await upload(tb, tb.alice, [{ name: 'file', filename: 'dir', data: 'x' }, { name: 'path', value: 'alice' }]);
    assert.equal(clash.statusCode, 409, 'a file where a folder is');
    const notMultipart = await tb.app.inject({ method: 'POST', url: '/api/files/upload', headers: { ...tb.alice, 'content-type': 'application/json' }, payload: { path: 'alice' } });
    assert.equal(notMultipart.statusCode, 400);
    assert.equal((await read(tb, 'bob/keep.txt'))?.toString(), 'bob keeps this');
    const all: string[] = [];
    for await (const r of tb.store.filesUnder('')) all.push(r.path);
    assert.deepEqual(all, ['alice/dir/inner.txt', 'bob/keep.txt'], 'nothing else was stored');
  } finally {
    await tb.close();
  }
});

test('a client that vanishes mid-upload (a real socket closed mid-body) leaves no file, and no chunk behind', async () => {
  const tb = await testbed({ logLines: true });
  try {
    await tb.app.listen({ host: '127.0.0.1', port: 0 });
    const port = (tb.app.server.address() as net.AddressInfo).port;
    const body = multipart([{ name: 'files', filename: 'half.bin', data: randomBytes(2_000_000) }, { name: 'path', value: 'alice' }]);
    const sock = net.connect(port, '127.0.0.1');
    await new Promise((r) => sock.once('connect', r));
    const head = `POST /api/files/upload HTTP/1.1\r\nHost: x\r\nAuthorization: ${tb.alice.authorization}\r\nContent-Type: ${body.headers['content-type']}\r\nContent-Length: ${body.payload.length}\r\n\r\n`;
    sock.write(head);
    sock.write(body.payload.subarray(0, 1_200_000)); // more than a chunk's worth is stored already
    const done = tb.waitForLog((l) => l.msg === 'upload abandoned by the client; nothing stored');
    sock.destroy();
    await done;
    await assert.rejects(tb.store.stat('alice/half.bin'));
    const stats = tb.store.stats();
    assert.equal(stats.files, 0, 'no file under any name');
    assert.equal(stats.chunks, 0, 'no chunk rows');
    assert.equal((await tb.store.gc()).orphanFiles, 0, 'no chunk file left for gc to find');
  } finally {
    await tb.close();
  }
});

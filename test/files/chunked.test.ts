// BaluHost's chunked upload: init -> raw chunks strictly in order -> complete, or abort; and what it refuses: an
// out-of-sequence chunk, more bytes than announced, someone else's session, an unknown one, a bad filename, a target
// outside the jail. A refused chunk leaves the session where it was; nothing is visible before complete.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { testbed, type Testbed } from './testbed.ts';

const post = (tb: Testbed, url: string, headers: Record<string, string>, payload?: object | Buffer) =>
  tb.app.inject({ method: 'POST', url, headers: Buffer.isBuffer(payload) ? { ...headers, 'content-type': 'application/octet-stream', 'x-chunk-index': '0' } : headers, ...(payload ? { payload } : {}) });

test('init, sequential chunks, complete: the file appears only at complete, with its SHA-256', async () => {
  const tb = await testbed();
  try {
    const data = randomBytes(250_000);
    const init = await post(tb, '/api/files/upload/chunked/init', tb.alice, { filename: 'video.mp4', total_size: data.length, target_path: 'alice/Movies' });
    assert.equal(init.statusCode, 200, init.body);
    const { upload_id, chunk_size } = init.json();
    assert.equal(chunk_size, 32 * 1024 * 1024);
    const parts = [data.subarray(0, 100_000), data.subarray(100_000, 200_000), data.subarray(200_000)];
    let received = 0;
    for (const [i, part] of parts.entries()) {
      const res = await post(tb, `/api/files/upload/chunked/${upload_id}/chunk?chunk_index=${i}`, tb.alice, part);
      received += part.length;
      assert.deepEqual([res.statusCode, res.json()], [200, { received_bytes: received }]);
      await assert.rejects(tb.store.stat('alice/Movies/video.mp4'), 'nothing visible before complete');
    }
    const done = await post(tb, `/api/files/upload/chunked/${upload_id}/complete`, tb.alice);
    assert.deepEqual([done.statusCode, done.json()], [200, { path: 'alice/Movies/video.mp4', size: data.length }]);
    const rec = await tb.store.stat('alice/Movies/video.mp4');
    assert.equal(rec.sha256, createHash('sha256').update(data).digest('hex'));
    assert.deepEqual(await readdir(path.join(tb.dataDir, 'uploads')), [], 'the part file is gone');
    assert.equal((await post(tb, `/api/files/upload/chunked/${upload_id}/complete`, tb.alice)).statusCode, 404, 'the session is gone');
  } finally {
    await tb.close();
  }
});

test('refusals: out-of-sequence chunk, too many bytes, another user\'s session, unknown session, bad filename, jail', async () => {
  const tb = await testbed();
  try {
    const { upload_id } = (await post(tb, '/api/files/upload/chunked/init', tb.alice, { filename: 'a.bin', total_size: 10, target_path: 'alice' })).json();
    let res = await post(tb, `/api/files/upload/chunked/${upload_id}/chunk?chunk_index=1`, tb.alice, Buffer.from('12345'));
    assert.deepEqual([res.statusCode, res.json()], [400, { detail: 'Expected chunk 0, got 1' }]);
    res = await post(tb, `/api/files/upload/chunked/${upload_id}/chunk?chunk_index=0`, tb.alice, Buffer.from('12345'));
    assert.deepEqual(res.json(), { received_bytes: 5 }, 'the refused chunk did not move the session');
    res = await post(tb, `/api/files/upload/chunked/${upload_id}/chunk?chunk_index=0`, tb.alice, Buffer.from('12345'));
    assert.deepEqual([res.statusCode, res.json()], [400, { detail: 'Expected chunk 1, got 0' }], 'a repeated chunk');
    res = await post(tb, `/api/files/upload/chunked/${upload_id}/chunk?chunk_index=1`, tb.bob, Buffer.from('67890'));
    assert.deepEqual([res.statusCode, res.json()], [403, { detail: 'Not your upload session' }]);
    res = await post(tb, '/api/files/upload/chunked/00000000-0000-0000-0000-000000000000/chunk?chunk_index=0', tb.alice, Buffer.from('x'));
    assert.deepEqual([res.statusCode, res.json()], [404, { detail: 'Upload session not found' }]);
    res = await post(tb, `/api/files/upload/chunked/${upload_id}/chunk?chunk_index=1`, tb.alice, Buffer.from('6789012345'));
    assert.equal(res.statusCode, 400, 'more bytes than announced');
    assert.match(res.json().detail, /exceeds its declared size/);
    assert.equal((await post(tb, `/api/files/upload/chunked/${upload_id}/complete`, tb.alice)).statusCode, 404, 'and the session was aborted');
    await assert.rejects(tb.store.stat('alice/a.bin'));

    for (const [body, status] of [
      [{ filename: '..', total_size: 1, target_path: 'alice' }, 400],
      [{ filename: 'x.bin', total_size: 1, target_path: 'bob' }, 403],
      [{ filename: 'x.bin', total_size: 1, target_path: 'alice/../bob' }, 400],
      [{ filename: 'x.bin', total_size: -1, target_path: 'alice' }, 422],
      [{ filename: 'x.bin', total_size: 11 * 1024 ** 3, target_path: 'alice' }, 413],
    ] as const) {
      const r = await post(tb, '/api/files/upload/chunked/init', tb.alice, body);
      assert.equal(r.statusCode, status, JSON.stringify(body));
    }
    const abortable = (await post(tb, '/api/files/upload/chunked/init', tb.alice, { filename: 'b.bin', total_size: 3, target_path: 'alice' })).json().upload_id;
    await post(tb, `/api/files/upload/chunked/${abortable}/chunk?chunk_index=0`, tb.alice, Buffer.from('abc'));
    res = await tb.app.inject({ method: 'DELETE', url: `/api/files/upload/chunked/${abortable}`, headers: { ...tb.alice, 'content-type': 'application/json' } });
    assert.deepEqual([res.statusCode, res.json()], [200, { message: 'Upload aborted' }]);
    assert.deepEqual(await readdir(path.join(tb.dataDir, 'uploads')), []);
    await assert.rejects(tb.store.stat('alice/b.bin'));
  } finally {
    await tb.close();
  }
});

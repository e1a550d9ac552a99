// Downloads in every URL style the clients send, with Starlette's headers, Range/206/416, ETag, and the bad inputs:
// traversal in every encoding, another user's file, NUL bytes; each answers BaluHost's status and {"detail"} and
// leaves the stored files as they were.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { testbed } from './testbed.ts';
import { contentDisposition, parseRange } from '../../src/files/downloads.ts';

test('all four URL styles reach the same file: raw path, ?path=, %2F with + for space, leading //, and the file id', async () => {
  const tb = await testbed();
  try {
    const data = randomBytes(300_000);
    await tb.put('alice/Photos/my pic.jpg', data);
    await tb.put('alice/Photos/a+b.txt', 'literal plus');
    const list = (await tb.app.inject({ url: '/api/files/list?path=alice/Photos', headers: tb.alice })).json().files;
    const id = list.find((f: any) => f.name === 'my pic.jpg').file_id;
    const urls = [
      '/api/files/download/alice/Photos/my%20pic.jpg', // raw path (a space as %20)
      '/api/files/download/alice/Photos/my pic.jpg'.replace(' ', '%20'),
      '/api/files/download?path=alice%2FPhotos%2Fmy%20pic.jpg', // BaluApp Files (OkHttp query encoding)
      '/api/files/download?path=alice/Photos/my+pic.jpg', // a form-encoded query
      '/api/files/download/alice%2FPhotos%2Fmy+pic.jpg', // BaluApp media viewer (URLEncoder)
      '/api/files/download//alice/Photos/my%20pic.jpg', // BaluDesk with a /-prefixed path
      `/api/files/download/${id}`, // BaluDesk downloadFile(int)
    ];
    for (const url of urls) {
      const res = await tb.app.inject({ url, headers: tb.alice });
      assert.equal(res.statusCode, 200, url);
      assert.ok(res.rawPayload.equals(data), url);
      assert.equal(res.headers['content-length'], String(data.length));
      assert.equal(res.headers['content-type'], 'image/jpeg');
      assert.equal(res.headers['content-disposition'], "attachment; filename*=utf-8''my%20pic.jpg");
      assert.equal(res.headers['accept-ranges'], 'bytes');
      assert.equal(res.headers.etag, `"${(await tb.store.stat('alice/Photos/my pic.jpg')).hash}"`);
      assert.ok(res.headers['last-modified']);
    }
    const plus = await tb.app.inject({ url: '/api/files/download/alice/Photos/a+b.txt', headers: tb.alice });
    assert.equal(plus.body, 'literal plus', 'a raw + is a plus');
    assert.equal(plus.headers['content-disposition'], "attachment; filename*=utf-8''a%2Bb.txt");
    const plusEncoded = await tb.app.inject({ url: '/api/files/download/alice%2FPhotos%2Fa%2Bb.txt', headers: tb.alice });
    assert.equal(plusEncoded.body, 'literal plus', 'URLEncoder writes a real + as %2B');
    const stats = (await tb.app.inject({ url: '/api/cache/stats', headers: tb.alice })).json();
    assert.equal(stats.hits, urls.length + 2, 'every local download is a hit');
    assert.equal(stats.misses, 0);
    assert.equal(stats.hit_rate, 1);
  } finally {
    await tb.close();
  }
});

test('Range gives 206 with Content-Range, a range past the end 416, If-None-Match 304', async () => {
  const tb = await testbed();
  try {
    const data = randomBytes(200_000); // many 16 KiB chunks: ranges cross chunk boundaries
    await tb.put('Shared/big.bin', data);
    const get = (range: string) => tb.app.inject({ url: '/api/files/download/Shared/big.bin', headers: { ...tb.bob, range } });
    for (const [range, from, to] of [['bytes=0-0', 0, 0], ['bytes=1000-70000', 1000, 70000], ['bytes=199990-', 199990, 199999], ['bytes=-10', 199990, 199999], ['bytes=5-999999999', 5, 199999]] as const) {
      const res = await get(range);
      assert.equal(res.statusCode, 206, range);
      assert.equal(res.headers['content-range'], `bytes ${from}-${to}/200000`, range);
      assert.ok(res.rawPayload.equals(data.subarray(from, to + 1)), range);
    }
    const bad = await get('bytes=200000-');
    assert.equal(bad.statusCode, 416);
    assert.equal(bad.headers['content-range'], 'bytes */200000');
    assert.equal((await get('bytes=0-1,5-6')).statusCode, 200, 'several ranges: the whole file, as Starlette');
    const etag = (await get('bytes=0-0')).headers.etag as string;
    const cached = await tb.app.inject({ url: '/api/files/download/Shared/big.bin', headers: { ...tb.bob, 'if-none-match': etag } });
    assert.equal(cached.statusCode, 304);
    const stale = await tb.app.inject({ url: '/api/files/download/Shared/big.bin', headers: { ...tb.bob, range: 'bytes=0-9', 'if-range': '"other"' } });
    assert.equal(stale.statusCode, 200, 'If-Range with another ETag: the whole file');
  } finally {
    await tb.close();
  }
});

test('bad downloads: traversal in every encoding, absolute paths, NUL, another user\'s file, unknown files and ids', async () => {
  const tb = await testbed();
  try {
    await tb.put('bob/secret.txt', 'bob only');
    await tb.put('alice/mine.txt', 'alice');
    const bobId = (await tb.app.inject({ url: '/api/files/list?path=bob', headers: tb.bob })).json().files[0].file_id;
    const cases: [string, number, string][] = [
      // (inject, like a browser, resolves literal dots in the path itself: those arrive encoded or in the query)
      ['/api/files/download/alice/%2e%2e%2fbob%2fsecret.txt', 400, 'Invalid path'],
      ['/api/files/download/alice%2F..%2Fbob%2Fsecret.txt', 400, 'Invalid path'],
      ['/api/files/download?path=alice/../../etc/passwd', 400, 'Invalid path'],
      ['/api/files/download/bob/secret.txt', 403, 'Access denied'],
      ['/api/files/download//bob/secret.txt', 403, 'Access denied'],
      [`/api/files/download/${bobId}`, 403, 'Access denied'],
      ['/api/files/download/alice/mine.txt%00.jpg', 400, 'Invalid path'],
      ['/api/files/download/alice/%ZZ', 400, 'Invalid path'],
      ['/api/files/download/alice/none.txt', 404, 'File not found'],
      ['/api/files/download/987654', 404, 'File not found'],
      ['/api/files/download/alice', 404, 'File not found'],
    ];
    for (const [url, status, detail] of cases) {
      const res = await tb.app.inject({ url, headers: tb.alice });
      assert.deepEqual([res.statusCode, res.json()], [status, { detail }], url);
    }
    assert.equal((await tb.app.inject({ url: '/api/files/download/bob/secret.txt', headers: tb.bob })).body, 'bob only', 'bob still reads his file');
    assert.equal((await tb.app.inject({ url: '/api/files/download/bob/secret.txt', headers: tb.admin })).statusCode, 200, 'admins are not jailed');
  } finally {
    await tb.close();
  }
});

test('Content-Disposition follows Starlette; ranges parse like it', () => {
  assert.equal(contentDisposition('report.pdf'), 'attachment; filename="report.pdf"');
  assert.equal(contentDisposition('Bericht März.pdf'), "attachment; filename*=utf-8''Bericht%20M%C3%A4rz.pdf");
  assert.equal(contentDisposition('a"b.txt'), "attachment; filename*=utf-8''a%22b.txt");
  assert.equal(contentDisposition("it's.txt"), "attachment; filename*=utf-8''it%27s.txt");
  assert.deepEqual(parseRange('bytes=0-', 0), 'unsatisfiable');
  assert.equal(parseRange('items=0-1', 10), null);
  assert.equal(parseRange(undefined, 10), null);
});

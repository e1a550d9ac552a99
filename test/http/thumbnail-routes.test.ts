// GET /api/files/thumbnail/* through the real Fastify app (inject) over a real store and real sharp. The photos are
// made with sharp itself: 200×100 JPEGs whose left half is red and right half blue, tagged with EXIF orientation 6
// (rotate 90° clockwise to display), so an upright thumbnail is portrait with red on top.

import { test, before, after, describe } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { readdir } from 'node:fs/promises';
import { Readable } from 'node:stream';
import sharp from 'sharp';
import { SignJWT } from 'jose';
import type { FastifyInstance } from 'fastify';
import { buildApp } from '../../src/http/app.ts';
import { TokenVerifier } from '../../src/auth/tokens.ts';
import { createLogger } from '../../src/log.ts';
import { thumbnailRoutes } from '../../src/routes/thumbnails.ts';
import { ThumbnailService, type ThumbnailEvent } from '../../src/thumbnails/service.ts';
import { openStore, type Store } from '../../store/index.ts';
import { tempDir } from '../helpers/daemon-process.ts';

const SECRET = 'a-baluhost-secret-key-of-32-chars!!';

async function token(username: string, role: 'admin' | 'user', id: number): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  return new SignJWT({ sub: String(id), username, role, type: 'access', iat: now, exp: now + 900 })
    .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
    .sign(new TextEncoder().encode(SECRET));
}

/** 200×100, left half red, right half blue, EXIF orientation 6. `shade` varies the bytes so each photo has its own hash. */
async function orientedJpeg(shade = 0): Promise<Buffer> {
  const red = await sharp({ create: { width: 100, height: 100, channels: 3, background: { r: 255, g: shade, b: 0 } } }).png().toBuffer();
  return sharp({ create: { width: 200, height: 100, channels: 3, background: { r: 0, g: shade, b: 255 } } })
    .composite([{ input: red, left: 0, top: 0 }])
    .jpeg({ quality: 95 })
    .withMetadata({ orientation: 6 })
    .toBuffer();
}

const isJpeg = (b: Buffer) => b[0] === 0xff && b[1] === 0xd8 && b[2] === 0xff;
const isWebp = (b: Buffer) => b.subarray(0, 4).toString('latin1') === 'RIFF' && b.subarray(8, 12).toString('latin1') === 'WEBP';

function waitForEvent(svc: ThumbnailService, name: 'generated' | 'dropped', match: (e: ThumbnailEvent) => boolean): Promise<ThumbnailEvent> {
  return new Promise((resolve) => {
    const on = (e: ThumbnailEvent) => {
      if (!match(e)) return;
      svc.off(name, on);
      resolve(e);
    };
    svc.on(name, on);
  });
}

describe('thumbnail route over a real store and sharp', () => {
  let dir: Awaited<ReturnType<typeof tempDir>>;
  let store: Store;
  let thumbs: ThumbnailService;
  let app: FastifyInstance;
  let alice: string, admin: string;
  let photo: Buffer;

  const get = (url: string, tok = alice, headers: Record<string, string> = {}) =>
    app.inject({ url, headers: { authorization: `Bearer ${tok}`, ...headers } });

  before(async () => {
    dir = await tempDir('balupi-thumbs-');
    store = await openStore({ dir: join(dir.path, 'store') });
    // Eager generation of one size only, so the counters below count what the requests caused.
    thumbs = new ThumbnailService(store, { cacheDir: join(dir.path, 'thumbnails'), concurrency: 2, eager: [{ size: 128, format: 'jpeg' }] });
    app = await buildApp({
      logger: createLogger({ logLevel: 'silent', logFormat: 'json' }),
      verifier: new TokenVerifier(SECRET),
      plugins: [(a) => a.register(thumbnailRoutes, { thumbnails: thumbs })],
    });
    [alice, admin] = await Promise.all([token('alice', 'user', 5), token('root', 'admin', 1)]);
    photo = await orientedJpeg();
    // Ingested before start(): no eager work runs for these.
    await store.ingest('alice/Photos/cat.jpg', Readable.from([photo]));
    await store.ingest('alice/notes.txt', Readable.from([Buffer.from('not a picture')]));
    await store.ingest('alice/broken.jpg', Readable.from([Buffer.from('this is no JPEG at all, just text with a .jpg name')]));
    await store.ingest('bob/secret.jpg', Readable.from([await orientedJpeg(7)]));
    await thumbs.start();
  });

  after(async () => {
    await app.close();
    await thumbs.close();
    await store.close();
    await dir.remove();
  });

  test('a JPEG with EXIF orientation 6 comes out upright: portrait, red on top, blue below', async () => {
    const res = await get('/api/files/thumbnail/alice/Photos/cat.jpg?size=64');
    assert.equal(res.statusCode, 200, res.body);
    assert.equal(res.headers['content-type'], 'image/jpeg');
    const { data, info } = await sharp(res.rawPayload).raw().toBuffer({ resolveWithObject: true });
    // Stored 200×100 landscape; displayed (and thumbnailed) 100×200 portrait, scaled to fit 64.
    assert.deepEqual([info.width, info.height], [32, 64]);
    const px = (x: number, y: number) => [...data.subarray((y * info.width + x) * info.channels, (y * info.width + x) * info.channels + 3)];
    const [tr, tg, tb] = px(16, 12);
    const [br, bg, bb] = px(16, 52);
    assert.ok(tr! > 200 && tg! < 60 && tb! < 60, `top should be red, is ${[tr, tg, tb]}`);
    assert.ok(br! < 60 && bg! < 60 && bb! > 200, `bottom should be blue, is ${[br, bg, bb]}`);
    // The EXIF tag is gone, so a viewer does not rotate the thumbnail a second time.
    assert.equal((await sharp(res.rawPayload).metadata()).orientation, undefined);
  });

  test('concurrent requests for the same thumbnail run sharp once and all get the same bytes', async () => {
    const before = thumbs.stats();
    const responses = await Promise.all(Array.from({ length: 8 }, () => get('/api/files/thumbnail/alice/Photos/cat.jpg?size=512')));
    for (const r of responses) assert.equal(r.statusCode, 200, r.body);
    const after = thumbs.stats();
    assert.equal(after.jobs - before.jobs, 1, 'one sharp job for eight concurrent requests');
    assert.equal(after.joined - before.joined + (after.hits - before.hits), 7, 'the other seven joined the job or hit its result');
    for (const r of responses) assert.deepEqual(r.rawPayload, responses[0]!.rawPayload);
    // Cached: a later request runs nothing.
    const again = await get('/api/files/thumbnail/alice/Photos/cat.jpg?size=512');
    assert.equal(again.statusCode, 200);
    assert.equal(thumbs.stats().jobs, after.jobs);
  });

  test('WebP when Accept lists image/webp, JPEG otherwise; ETag, Cache-Control and Vary set; 304 on a matching If-None-Match', async () => {
    const webp = await get('/api/files/thumbnail/alice/Photos/cat.jpg', alice, { accept: 'image/avif,image/webp,*/*;q=0.8' });
    assert.equal(webp.statusCode, 200);
    assert.equal(webp.headers['content-type'], 'image/webp');
    assert.ok(isWebp(webp.rawPayload), 'RIFF....WEBP magic');
    const jpeg = await get('/api/files/thumbnail/alice/Photos/cat.jpg', alice, { accept: '*/*' });
    assert.equal(jpeg.headers['content-type'], 'image/jpeg');
    assert.ok(isJpeg(jpeg.rawPayload), 'FF D8 FF magic');
    const none = await get('/api/files/thumbnail/alice/Photos/cat.jpg');
    assert.ok(isJpeg(none.rawPayload), 'no Accept header: JPEG');
    // Default size 256 (the photo is 100×200 upright: not enlarged beyond it).
    assert.deepEqual([(await sharp(none.rawPayload).metadata()).height], [200]);
    assert.notEqual(webp.headers.etag, jpeg.headers.etag);
    assert.match(String(webp.headers['cache-control']), /max-age=\d+/);
    assert.equal(webp.headers.vary, 'Accept');
    assert.equal(Number(jpeg.headers['content-length']), jpeg.rawPayload.length);
    const notModified = await get('/api/files/thumbnail/alice/Photos/cat.jpg', alice, { accept: 'image/webp', 'if-none-match': String(webp.headers.etag) });
    assert.equal(notModified.statusCode, 304);
    assert.equal(notModified.rawPayload.length, 0);
  });

  test('sizes are clamped to 64..1024 and rounded up to a cached bucket; the ?path= form answers the same', async () => {
    const small = await get('/api/files/thumbnail/alice/Photos/cat.jpg?size=10');
    assert.deepEqual([(await sharp(small.rawPayload).metadata()).height], [64]);
    const odd = await get('/api/files/thumbnail?path=alice%2FPhotos%2Fcat.jpg&size=100');
    assert.equal(odd.statusCode, 200);
    assert.deepEqual([(await sharp(odd.rawPayload).metadata()).height], [128]);
    const bad = await get('/api/files/thumbnail/alice/Photos/cat.jpg?size=big');
    assert.equal(bad.statusCode, 422);
    assert.ok(Array.isArray(bad.json().detail));
  });

  test('non-images answer 415 {detail}; an undecodable .jpg too, and it is not decoded again', async () => {
    const txt = await get('/api/files/thumbnail/alice/notes.txt');
    assert.equal(txt.statusCode, 415);
    assert.equal(typeof txt.json().detail, 'string');
    const jobs = thumbs.stats().jobs;
    const broken = await get('/api/files/thumbnail/alice/broken.jpg');
    assert.equal(broken.statusCode, 415);
    assert.equal(broken.json().detail, 'Cannot decode this image');
    assert.equal(thumbs.stats().jobs, jobs + 1);
    const again = await get('/api/files/thumbnail/alice/broken.jpg?size=64');
    assert.equal(again.statusCode, 415);
    assert.equal(thumbs.stats().jobs, jobs + 1, 'the failed hash is remembered');
    // The file itself is untouched by the failed attempt.
    assert.equal((await store.stat('alice/broken.jpg')).size, 50);
  });

  test('traversal is 400, another user\'s file 403, a missing file 404; nothing is generated for them', async () => {
    const jobs = thumbs.stats().jobs;
    const dotdot = await get('/api/files/thumbnail?path=alice/../bob/secret.jpg');
    assert.equal(dotdot.statusCode, 400);
    assert.deepEqual(dotdot.json(), { detail: 'Invalid path' });
    const encoded = await get('/api/files/thumbnail/alice%2F..%2Fbob%2Fsecret.jpg');
    assert.equal(encoded.statusCode, 400);
    const other = await get('/api/files/thumbnail/bob/secret.jpg');
    assert.equal(other.statusCode, 403);
    assert.deepEqual(other.json(), { detail: 'Access denied' });
    const missing = await get('/api/files/thumbnail/alice/Photos/nope.jpg');
    assert.equal(missing.statusCode, 404);
    assert.deepEqual(missing.json(), { detail: 'File not found' });
    assert.equal(thumbs.stats().jobs, jobs);
    // The admin may see bob's photo (BaluHost's jail does not apply to admins).
    assert.equal((await get('/api/files/thumbnail/bob/secret.jpg', admin)).statusCode, 200);
    const noToken = await app.inject({ url: '/api/files/thumbnail/alice/Photos/cat.jpg' });
    assert.equal(noToken.statusCode, 401);
  });

  test('a new photo version gets its thumbnail made in the background; the first request is a cache hit', async () => {
    const fresh = await orientedJpeg(40);
    const made = waitForEvent(thumbs, 'generated', (e) => e.path === 'alice/Photos/new.jpg' && e.eager);
    await store.ingest('alice/Photos/new.jpg', Readable.from([fresh]));
    const event = await made;
    assert.equal(event.size, 128);
    assert.equal(event.format, 'jpeg');
    assert.equal(event.hash, (await store.stat('alice/Photos/new.jpg')).hash);
    const { jobs, hits } = thumbs.stats();
    const res = await get('/api/files/thumbnail/alice/Photos/new.jpg?size=128');
    assert.equal(res.statusCode, 200);
    assert.equal(thumbs.stats().jobs, jobs, 'no sharp run: made in the background');
    assert.equal(thumbs.stats().hits, hits + 1);
    // A text file ingested meanwhile starts nothing.
    await store.ingest('alice/more-notes.txt', Readable.from([Buffer.from('still not a picture')]));
    assert.equal(thumbs.stats().jobs, jobs + 0);
  });

  test('a file whose bytes are on the NAS only: a cached thumbnail is served, a new one is 404 without fetching', async () => {
    const ready = await get('/api/files/thumbnail/alice/Photos/cat.jpg?size=64');
    assert.equal(ready.statusCode, 200);
    const rec = await store.stat('alice/Photos/cat.jpg');
    // As after a sync: the hub has the chunks, so they may be evicted; then evict everything evictable.
    await store.markClean(rec.chunks.map((c) => c.hash));
    await store.evict(0);
    assert.equal((await store.stat('alice/Photos/cat.jpg')).state, 'remote');
    const cached = await get('/api/files/thumbnail/alice/Photos/cat.jpg?size=64');
    assert.equal(cached.statusCode, 200);
    assert.deepEqual(cached.rawPayload, ready.rawPayload);
    const uncached = await get('/api/files/thumbnail/alice/Photos/cat.jpg?size=1024');
    assert.equal(uncached.statusCode, 404);
    assert.match(uncached.json().detail, /NAS/);
    assert.equal((await store.stat('alice/Photos/cat.jpg')).state, 'remote', 'nothing was fetched');
  });

  test('the cache holds whole files only: no temporary files are left behind', async () => {
    const names: string[] = [];
    for (const sub of await readdir(join(dir.path, 'thumbnails'))) names.push(...(await readdir(join(dir.path, 'thumbnails', sub))));
    assert.ok(names.length > 0);
    assert.deepEqual(names.filter((n) => !/^[0-9a-f]{64}-\d+\.(jpg|webp)$/.test(n)), []);
  });
});

test('an unstarted service makes nothing in the background', async () => {
  const dir = await tempDir('balupi-thumbs-');
  const store = await openStore({ dir: join(dir.path, 'store') });
  const thumbs = new ThumbnailService(store, { cacheDir: join(dir.path, 'thumbnails') });
  try {
    await store.ingest('alice/a.jpg', Readable.from([await orientedJpeg(3)]));
    assert.equal(thumbs.stats().jobs, 0);
    // And once started, a request makes it on demand.
    await thumbs.start();
    const t = await thumbs.get('alice/a.jpg', 64, 'webp');
    assert.equal(t.format, 'webp');
    assert.equal(thumbs.stats().jobs, 1);
  } finally {
    await thumbs.close();
    await store.close();
    await dir.remove();
  }
});

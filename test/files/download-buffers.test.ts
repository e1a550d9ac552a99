// Cache-hit downloads read chunks into reused buffers (store ReadOptions.reuseBuffers): over a real socket, the bytes
// of the whole file and of ranges are exact, a corrupt chunk ends the response before any of its bytes, and a client
// that goes away leaves no buffer taken and no chunk held (store.stats() counters).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import fs from 'node:fs/promises';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { testbed, type Testbed } from './testbed.ts';

const FILE = 'Shared/big.bin';

/** Waits (polling, no fixed delay) until `cond` holds; gives up after 10 s saying what it last saw. */
async function until(cond: () => boolean, what: () => unknown): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (!cond()) {
    if (Date.now() > deadline) assert.fail(`condition not reached: ${JSON.stringify(what())}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

interface Got {
  status: number;
  body: Buffer;
  /** The response ended short of its Content-Length (the server cut the connection). */
  cut: boolean;
}

function get(port: number, headers: Record<string, string>): Promise<Got> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path: `/api/files/download/${FILE}`, headers, agent: false }, (res) => {
      const parts: Buffer[] = [];
      res.on('data', (c: Buffer) => parts.push(c));
      const done = (cut: boolean) => resolve({ status: res.statusCode!, body: Buffer.concat(parts), cut });
      res.on('end', () => done(!res.complete));
      res.on('aborted', () => done(true));
      res.on('error', () => done(true));
    });
    req.on('error', reject);
  });
}

async function setup(size: number): Promise<{ tb: Testbed; port: number; data: Buffer }> {
  const tb = await testbed({ workers: 1 });
  const data = randomBytes(size);
  await tb.put(FILE, data);
  await tb.app.listen({ host: '127.0.0.1', port: 0 });
  return { tb, port: (tb.app.server.address() as AddressInfo).port, data };
}

const counters = (tb: Testbed) => ({ buffers: tb.store.stats().readBuffersInUse, held: tb.store.stats().heldChunks });
/** Every read buffer given back and every chunk hold released. */
const idle = (tb: Testbed) => until(() => counters(tb).buffers === 0 && counters(tb).held === 0, () => counters(tb));

test('whole file and ranges (inside one chunk, across many, the last byte) are byte-identical; every buffer comes back', async () => {
  const { tb, port, data } = await setup(3 * 1024 * 1024 + 123);
  try {
    const whole = await get(port, tb.bob);
    assert.equal(whole.status, 200);
    assert.ok(whole.body.equals(data), 'the whole file');
    const chunks = (await tb.store.stat(FILE)).chunks;
    assert.ok(chunks.length > 20, `many chunks (${chunks.length})`);
    for (const [from, to] of [[10, 20], [chunks[0]!.size - 5, chunks[0]!.size + 5], [70_000, 2_500_000], [data.length - 1, data.length - 1]] as const) {
      const r = await get(port, { ...tb.bob, range: `bytes=${from}-${to}` });
      assert.equal(r.status, 206, `bytes=${from}-${to}`);
      assert.ok(r.body.equals(data.subarray(from, to + 1)), `bytes=${from}-${to}`);
    }
    await idle(tb);
  } finally {
    await tb.close();
  }
});

test('concurrent downloads share the pool without mixing bytes', async () => {
  const { tb, port, data } = await setup(2 * 1024 * 1024);
  try {
    const all = await Promise.all(Array.from({ length: 4 }, () => get(port, tb.bob)));
    for (const r of all) assert.ok(r.status === 200 && r.body.equals(data));
    await idle(tb);
  } finally {
    await tb.close();
  }
});

test('a corrupt chunk in the middle cuts the response before any of its bytes; one at the start answers 500', async () => {
  const { tb, port, data } = await setup(2 * 1024 * 1024);
  try {
    const chunks = (await tb.store.stat(FILE)).chunks;
    const corrupt = async (i: number) => {
      const file = path.join(tb.dataDir, 'store', 'chunks', chunks[i]!.hash.slice(0, 2), chunks[i]!.hash);
      const bytes = await fs.readFile(file);
      bytes[bytes.length >> 1]! ^= 0xff;
      await fs.writeFile(file, bytes);
    };
    const k = chunks.length >> 1;
    const start = chunks.slice(0, k).reduce((n, c) => n + c.size, 0);
    await corrupt(k);
    const mid = await get(port, tb.bob);
    assert.equal(mid.status, 200, 'headers went out with the first good chunks');
    assert.ok(mid.cut, 'the response ends short of its Content-Length');
    assert.ok(mid.body.length <= start, `no byte of chunk ${k} (starts at ${start}) was sent: got ${mid.body.length}`);
    assert.ok(mid.body.equals(data.subarray(0, mid.body.length)), 'what was sent is the good prefix');
    await idle(tb);

    await corrupt(0);
    const first = await get(port, tb.bob);
    assert.equal(first.status, 500);
    assert.ok(!first.body.includes(data.subarray(0, 64)), 'none of the first chunk');
    await idle(tb);
  } finally {
    await tb.close();
  }
});

test('a client that stops reading holds buffers; once it disconnects, every buffer and chunk hold is released', async () => {
  // Larger than the loopback socket buffers and the 8 MiB read-ahead together, so the server must wait on the client.
  const { tb, port } = await setup(24 * 1024 * 1024);
  try {
    let received = 0;
    const req = http.get({ host: '127.0.0.1', port, path: `/api/files/download/${FILE}`, headers: tb.bob, agent: false }, (res) => {
      res.once('data', (c: Buffer) => {
        received += c.length;
        res.pause();
      });
    });
    req.on('error', () => {});
    await until(() => received > 0 && counters(tb).buffers > 0 && counters(tb).held > 0, () => ({ received, ...counters(tb) }));
    req.destroy();
    await idle(tb);
  } finally {
    await tb.close();
  }
});

test('read through the store API without pipe(), reuseBuffers changes nothing: same bytes, no buffer taken', async () => {
  const { tb, data } = await setup(1024 * 1024);
  try {
    const opened = await tb.store.openRead(FILE, { offset: 1000, length: 500_000 }, { reuseBuffers: true });
    const parts: Buffer[] = [];
    for await (const c of opened.stream) {
      parts.push(c as Buffer);
      assert.equal(counters(tb).buffers, 0, 'a consumer that is not a pipe gets fresh buffers');
    }
    assert.ok(Buffer.concat(parts).equals(data.subarray(1000, 501_000)));
    await idle(tb);
  } finally {
    await tb.close();
  }
});

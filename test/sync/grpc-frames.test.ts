// gRPC framing for the copy-saving chunk paths: messages cut from arbitrary piece boundaries come out whole and
// exact, limits and truncation are errors, received chunk-size buffers are reused only once given back, and the
// pieces of a stream are read as they arrive, also from a stream that ended or closed before anyone read it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { Code, ConnectError } from '@connectrpc/connect';
import { Readable } from 'node:stream';
import { once } from 'node:events';
import { chunksOf, frame, grpcMessages, messageBuffers } from '../../src/sync/grpc-frames.ts';

async function* pieces(buf: Buffer, sizes: number[]): AsyncGenerator<Buffer> {
  let off = 0;
  for (let i = 0; off < buf.length; i++) {
    const n = sizes[i % sizes.length]!;
    yield buf.subarray(off, off + n);
    off += n;
  }
}

const collect = async (it: AsyncIterable<Buffer>) => {
  const out: Buffer[] = [];
  for await (const m of it) out.push(Buffer.from(m));
  return out;
};

test('messages split anywhere (1-byte pieces, prefixes cut in half) come out whole, in order, byte for byte', async () => {
  const msgs = [randomBytes(0), randomBytes(3), randomBytes(70_000), randomBytes(300_000)];
  const wire = Buffer.concat(msgs.map(frame));
  for (const sizes of [[1], [2, 7], [4096], [wire.length]]) {
    const got = await collect(grpcMessages(pieces(wire, sizes), 1 << 20, { reuse: true }));
    assert.deepEqual(got.map((b) => b.toString('hex')), msgs.map((b) => b.toString('hex')), `pieces of ${sizes}`);
  }
});

test('a message above the limit, a compressed one and a cut-off one are refused with the matching code', async () => {
  const err = (code: Code) => (e: unknown) => e instanceof ConnectError && e.code === code;
  await assert.rejects(collect(grpcMessages(pieces(frame(randomBytes(2000)), [100]), 1000)), err(Code.ResourceExhausted));
  const compressed = frame(randomBytes(10));
  compressed[0] = 1;
  await assert.rejects(collect(grpcMessages(pieces(compressed, [100]), 1000)), err(Code.Internal));
  await assert.rejects(collect(grpcMessages(pieces(frame(randomBytes(500)).subarray(0, 300), [100]), 1000)), err(Code.DataLoss));
  await assert.rejects(collect(grpcMessages(pieces(Buffer.from([0, 0]), [1]), 1000)), err(Code.DataLoss));
});

test('chunk-size message buffers are reused only after they were given back; foreign and repeated gives are ignored', async () => {
  const a = messageBuffers.take(300_000);
  const b = messageBuffers.take(300_000);
  assert.equal(a.length, 300_000);
  assert.notEqual(a.buffer, b.buffer, 'a buffer in use is never handed out twice');
  messageBuffers.give(a.subarray(10, 20)); // a view into it, as a decoded chunk's data is
  messageBuffers.give(a); // twice: ignored
  const c = messageBuffers.take(290_000);
  assert.equal(c.buffer, a.buffer, 'the given-back buffer is reused');
  assert.equal(c.length, 290_000);
  const d = messageBuffers.take(300_000);
  assert.notEqual(d.buffer, a.buffer, 'and only once');
  messageBuffers.give(Buffer.alloc(300_000)); // not ours: ignored
  const small = messageBuffers.take(1000);
  assert.equal(small.length, 1000);
  for (const x of [b, c, d, small]) messageBuffers.give(x);
});

/** Fails instead of hanging: a reader that misses an end that already happened would wait for ever. */
function within<T>(p: Promise<T>, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const watchdog = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what}: still waiting after 5 s`)), 5000)));
  return Promise.race([p, watchdog]).finally(() => clearTimeout(timer));
}

test('chunksOf: pieces as they arrive, in order, each one as written (no concatenation), and backpressure pauses the source', async () => {
  const parts = Array.from({ length: 40 }, (_, i) => randomBytes(1000 + i));
  const src = new Readable({ read() {} });
  for (const p of parts) src.push(p);
  src.push(null);
  const got: Buffer[] = [];
  for await (const d of chunksOf(src)) {
    got.push(d);
    if (got.length === 1) assert.ok(src.isPaused(), 'many queued pieces pause the source');
  }
  assert.equal(got.length, parts.length, 'one piece per push: nothing concatenated');
  assert.ok(got.every((d, i) => d.equals(parts[i]!)));
});

test('chunksOf: a stream that ended, closed early or failed before it was read ends the reader at once, with the matching outcome', async () => {
  // Ended and closed, every byte consumed elsewhere: nothing more, no wait.
  const ended = Readable.from([Buffer.from('abc')]);
  ended.resume();
  await once(ended, 'close');
  assert.deepEqual(await within(collect(chunksOf(ended)), 'ended stream'), []);
  // Destroyed without an end (a reset HTTP/2 stream): a premature close.
  const cut = new Readable({ read() {} });
  cut.destroy();
  await once(cut, 'close');
  await assert.rejects(within(collect(chunksOf(cut)), 'cut stream'), (err: NodeJS.ErrnoException) => err.code === 'ERR_STREAM_PREMATURE_CLOSE');
  // Failed: its error.
  const failed = new Readable({ read() {} });
  failed.on('error', () => {});
  failed.destroy(new Error('peer went away'));
  await new Promise((resolve) => failed.once('close', resolve)); // (events.once would reject with the error)
  await assert.rejects(within(collect(chunksOf(failed)), 'failed stream'), /peer went away/);
  // A consumer that stops early destroys the stream (the HTTP/2 stream is then reset, not left half-read).
  const long = new Readable({ read() { this.push(randomBytes(100)); } });
  for await (const _ of chunksOf(long)) break;
  assert.ok(long.destroyed);
});

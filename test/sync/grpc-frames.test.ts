// gRPC framing for the copy-saving chunk paths: messages cut from arbitrary piece boundaries come out whole and
// exact, limits and truncation are errors, received chunk-size buffers are reused only once given back, and a
// stream's messages are read as its pieces arrive, also from a stream that ended or closed before anyone read it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { Code, ConnectError } from '@connectrpc/connect';
import { Readable } from 'node:stream';
import { once } from 'node:events';
import { frame, grpcMessagesOf } from '../../src/sync/grpc-frames.ts';
import { messageBuffers } from '../../src/sync/message-buffers.ts';

/** `buf` as a stream of pieces of these sizes (in turn). */
function pieces(buf: Buffer, sizes: number[]): Readable {
  const out: Buffer[] = [];
  let off = 0;
  for (let i = 0; off < buf.length; i++) {
    const n = sizes[i % sizes.length]!;
    out.push(buf.subarray(off, off + n));
    off += n;
  }
  return Readable.from(out);
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
    const got = await collect(grpcMessagesOf(pieces(wire, sizes), 1 << 20, { reuse: true }));
    assert.deepEqual(got.map((b) => b.toString('hex')), msgs.map((b) => b.toString('hex')), `pieces of ${sizes}`);
  }
});

test('a message above the limit, a compressed one and a cut-off one are refused with the matching code', async () => {
  const err = (code: Code) => (e: unknown) => e instanceof ConnectError && e.code === code;
  await assert.rejects(collect(grpcMessagesOf(pieces(frame(randomBytes(2000)), [100]), 1000)), err(Code.ResourceExhausted));
  const compressed = frame(randomBytes(10));
  compressed[0] = 1;
  await assert.rejects(collect(grpcMessagesOf(pieces(compressed, [100]), 1000)), err(Code.Internal));
  await assert.rejects(collect(grpcMessagesOf(pieces(frame(randomBytes(500)).subarray(0, 300), [100]), 1000)), err(Code.DataLoss));
  await assert.rejects(collect(grpcMessagesOf(pieces(Buffer.from([0, 0]), [1]), 1000)), err(Code.DataLoss));
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

test('messages as their pieces arrive, in order; many queued pause the source, and reading on resumes it', async () => {
  const msgs = Array.from({ length: 40 }, (_, i) => randomBytes(1000 + i));
  const src = new Readable({ read() {} });
  for (const m of msgs) src.push(frame(m));
  src.push(null);
  const got: Buffer[] = [];
  for await (const m of grpcMessagesOf(src, 1 << 20)) {
    got.push(m);
    if (got.length === 1) assert.ok(src.isPaused(), 'many queued messages pause the source');
  }
  assert.equal(got.length, msgs.length);
  assert.ok(got.every((d, i) => d.equals(msgs[i]!)));
});

test('a stream that ended, closed early or failed before it was read ends the reader at once, with the matching outcome; messages completed before a failure come first', async () => {
  // Ended and closed, every byte consumed elsewhere: nothing more, no wait.
  const ended = Readable.from([Buffer.from('abc')]);
  ended.resume();
  await once(ended, 'close');
  assert.deepEqual(await within(collect(grpcMessagesOf(ended, 1000)), 'ended stream'), []);
  // Destroyed without an end (a reset HTTP/2 stream): a premature close.
  const cut = new Readable({ read() {} });
  cut.destroy();
  await once(cut, 'close');
  await assert.rejects(within(collect(grpcMessagesOf(cut, 1000)), 'cut stream'), (err: NodeJS.ErrnoException) => err.code === 'ERR_STREAM_PREMATURE_CLOSE');
  // Failed: its error.
  const failed = new Readable({ read() {} });
  failed.on('error', () => {});
  failed.destroy(new Error('peer went away'));
  await new Promise((resolve) => failed.once('close', resolve)); // (events.once would reject with the error)
  await assert.rejects(within(collect(grpcMessagesOf(failed, 1000)), 'failed stream'), /peer went away/);
  // Two whole messages and half of a third, then the peer goes away: the two, then its error.
  const half = new Readable({ read() {} });
  half.on('error', () => {});
  const two = [randomBytes(50), randomBytes(60)];
  half.push(Buffer.concat([...two.map(frame), frame(randomBytes(70)).subarray(0, 30)]));
  const got: Buffer[] = [];
  const reading = (async () => {
    for await (const m of grpcMessagesOf(half, 1000)) {
      got.push(Buffer.from(m));
      if (got.length === 2) half.destroy(new Error('peer went away mid-message'));
    }
  })();
  await assert.rejects(within(reading, 'half a message'), /mid-message/);
  assert.deepEqual(got.map((b) => b.toString('hex')), two.map((b) => b.toString('hex')));
  // A consumer that stops early destroys the stream (the HTTP/2 stream is then reset, not left half-read).
  const long = new Readable({ read() { this.push(frame(randomBytes(100))); } });
  for await (const _ of grpcMessagesOf(long, 1000)) break;
  assert.ok(long.destroyed);
  // keepOpen (a server that still answers on the stream): left open, the rest is the caller's to drop.
  const kept = new Readable({ read() { this.push(frame(randomBytes(100))); } });
  for await (const _ of grpcMessagesOf(kept, 1000, { keepOpen: true })) break;
  assert.ok(!kept.destroyed);
  kept.destroy();
});

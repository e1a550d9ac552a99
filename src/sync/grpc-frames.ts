// gRPC message framing over HTTP/2 for the copy-saving paths (chunk-stream.ts, chunk-upload.ts,
// commit-batch-call.ts): the 5-byte length prefix, the header of a chunk message (UploadChunksRequest and
// DownloadChunksResponse share their layout: `bytes hash = 1; bytes data = 2;`), a reader that cuts a byte stream into
// whole messages with one copy each, and the server side of a call answered with one message.

import type { ClientHttp2Stream, Http2ServerRequest, Http2ServerResponse } from 'node:http2';
import { finished, type Readable } from 'node:stream';
import { fromBinary, type DescMessage, type DescMethod, type MessageShape } from '@bufbuild/protobuf';
import { Code, ConnectError, createHandlerContext, type HandlerContext, type ServiceImpl } from '@connectrpc/connect';
import type { Http2SessionManager } from '@connectrpc/connect-node';
import type { SyncService } from '../gen/balupi/sync/v1/sync_pb.js';
import { checkPeerSecret } from '../rpc/peer-auth.ts';
import { toConnectError } from '../rpc/errors.ts';
import { messageBuffers } from './message-buffers.ts';

export const isGrpc = (contentType: string | undefined): boolean => contentType === 'application/grpc' || contentType === 'application/grpc+proto';

/**
 * An HTTP/2 request handler that serves one gRPC method at `path` with `serve` and returns true, or returns false for
 * anything else: another path, gRPC-Web or the Connect protocol, or a compressed request (we accept no compression),
 * all of which the generic handler answers.
 */
export function grpcRoute(path: string, serve: (req: Http2ServerRequest, res: Http2ServerResponse) => Promise<void>): (req: Http2ServerRequest, res: Http2ServerResponse) => boolean {
  return (req, res) => {
    if (req.method !== 'POST' || req.url !== path || !isGrpc(req.headers['content-type'])) return false;
    const enc = req.headers['grpc-encoding'];
    if (enc !== undefined && enc !== 'identity') return false;
    void serve(req, res);
    return true;
  };
}

/** What the hub's own handlers of the SyncService's calls need (chunk-upload.ts, commit-batch-call.ts). */
export interface ServiceCallDeps {
  peerSecret: string;
  /** The service whose implementation answers the call. */
  service: ServiceImpl<typeof SyncService>;
  maxMessageBytes: number;
  /** Aborted when in-flight RPCs must stop (server shutdown). */
  shutdown?: AbortSignal;
}

export interface OneAnswerCall {
  method: DescMethod;
  peerSecret: string;
  maxMessageBytes: number;
  /** Request messages in buffers of messageBuffers, which the answering code gives back (see Framer). */
  reuse?: boolean;
  /** Aborted when in-flight RPCs must stop (server shutdown). */
  shutdown?: AbortSignal;
}

/**
 * Serves a call that answers with one message (unary or client-streaming): checks the peer secret, hands the request's
 * messages and a handler context (aborted when the peer goes away or the server shuts down) to `answer`, and sends the
 * encoded answer it returns. Any failure becomes the call's gRPC status (rpc/errors.ts); what the peer still sends is
 * then dropped, so that it is not stuck behind flow control.
 */
export async function serveOneAnswer(
  call: OneAnswerCall,
  req: Http2ServerRequest,
  res: Http2ServerResponse,
  answer: (messages: AsyncIterable<Buffer>, ctx: HandlerContext) => Promise<Uint8Array>,
): Promise<void> {
  const ctx = createHandlerContext({
    service: call.method.parent,
    method: call.method,
    protocolName: 'grpc',
    requestMethod: 'POST',
    url: req.url,
    ...(call.shutdown ? { shutdownSignal: call.shutdown } : {}),
  });
  const stop = () => ctx.abort(new ConnectError('the peer went away', Code.Canceled));
  req.once('close', stop);
  res.writeHead(200, { 'content-type': 'application/grpc+proto', 'grpc-accept-encoding': 'identity' });
  let status: ConnectError | undefined;
  let encoded: Uint8Array | undefined;
  try {
    checkPeerSecret(req.headers.authorization, call.peerSecret);
    encoded = await answer(grpcMessagesOf(req.stream, call.maxMessageBytes, { reuse: call.reuse ?? false, keepOpen: true }), ctx);
  } catch (err) {
    status = toConnectError(ctx.signal.aborted ? ctx.signal.reason : err);
    req.stream.resume();
  } finally {
    req.off('close', stop);
  }
  if (encoded && !res.destroyed && !res.stream.closed) res.write(frame(encoded));
  endWithStatus(res, status);
}

/** A request message decoded; bytes that are no such message fail the call with INTERNAL, as gRPC servers do. */
export function decodeRequest<Desc extends DescMessage>(schema: Desc, bytes: Uint8Array): MessageShape<Desc> {
  try {
    return fromBinary(schema, bytes);
  } catch (err) {
    throw new ConnectError(`malformed ${schema.typeName}: ${(err as Error).message}`, Code.Internal);
  }
}

/** The only message of a unary call's request; INVALID_ARGUMENT for none or more than one. */
export async function onlyMessage(messages: AsyncIterable<Buffer>): Promise<Buffer> {
  let only: Buffer | undefined;
  for await (const m of messages) {
    if (only) throw new ConnectError('a unary call takes one request message, this one sent more', Code.InvalidArgument);
    only = m;
  }
  if (!only) throw new ConnectError('a unary call takes one request message, this one sent none', Code.InvalidArgument);
  return only;
}

/** Ends a gRPC response with its status in the trailers (nothing to do if the stream is gone). */
export function endWithStatus(res: Http2ServerResponse, status: ConnectError | undefined): void {
  if (res.destroyed || res.stream.closed) return;
  res.addTrailers(status ? { 'grpc-status': String(status.code), 'grpc-message': encodeURIComponent(status.rawMessage) } : { 'grpc-status': '0' });
  res.end();
}

/**
 * Starts a call of the copy-saving client paths on a session of `sessions`: plain gRPC, no compression either way,
 * the peer secret as bearer token. `headers` resolves with the response headers, or rejects with the stream's error,
 * or with `closed(stream)` when it closes before any.
 */
export async function openGrpcCall(
  sessions: Http2SessionManager,
  path: string,
  peerSecret: string,
  closed: (stream: ClientHttp2Stream) => Error,
): Promise<{ stream: ClientHttp2Stream; headers: Promise<Record<string, unknown>> }> {
  const stream = await sessions.request(
    'POST',
    path,
    { 'content-type': 'application/grpc+proto', te: 'trailers', authorization: `Bearer ${peerSecret}`, 'grpc-accept-encoding': 'identity' },
    {},
  );
  const headers = new Promise<Record<string, unknown>>((resolve, reject) => {
    stream.once('response', resolve);
    stream.once('error', reject);
    stream.once('close', () => reject(closed(stream)));
  });
  headers.catch(() => {}); // awaited by the caller once it has written its request
  return { stream, headers };
}

/**
 * The one answer message of a call whose request has been written (`headers` from openGrpcCall; `trailers()` what the
 * stream's 'trailers' event brought, if it came). Fails with the call's gRPC status, or UNAVAILABLE without one.
 */
export async function unaryAnswer(stream: ClientHttp2Stream, headers: Promise<Record<string, unknown>>, trailers: () => Record<string, unknown> | undefined, maxMessageBytes: number): Promise<Buffer> {
  const head = await headers;
  if (head[':status'] !== 200) throw new ConnectError(`HTTP ${String(head[':status'])} from the peer`, head[':status'] === 401 ? Code.Unauthenticated : Code.Unavailable);
  let answer: Buffer | undefined;
  for await (const m of grpcMessagesOf(stream, maxMessageBytes)) answer ??= m;
  const st = head['grpc-status'] !== undefined ? head : trailers() ?? (await new Promise<Record<string, unknown> | undefined>((r) => (stream.closed ? r(trailers()) : stream.once('close', () => r(trailers())))));
  const code = Number(st?.['grpc-status'] ?? NaN);
  if (!Number.isInteger(code)) throw closedWithoutStatus(stream);
  if (code !== 0) throw new ConnectError(decodeURIComponent(String(st?.['grpc-message'] ?? '')), code as Code);
  if (!answer) throw new ConnectError('the peer sent no answer', Code.Internal);
  return answer;
}

/**
 * How a call of the copy-saving client paths fails: CANCELED when the caller's `signal` aborted it, a ConnectError (the
 * peer's status) as it is, anything else (a broken stream or connection) as UNAVAILABLE, which the Pi takes for a lost
 * hub.
 */
export function callFailure(what: string, err: unknown, signal?: AbortSignal): ConnectError {
  if (signal?.aborted) return new ConnectError(`${what} cancelled`, Code.Canceled);
  return err instanceof ConnectError ? err : new ConnectError(`${what} failed: ${(err as Error)?.message ?? err}`, Code.Unavailable);
}

/** A client stream that ended without a gRPC status. */
export function closedWithoutStatus(stream: ClientHttp2Stream): ConnectError {
  return new ConnectError(`the stream closed without a status (HTTP/2 code ${stream.rstCode ?? 'none'})`, Code.Unavailable);
}

export function varint(n: number): number[] {
  const out: number[] = [];
  while (n > 0x7f) {
    out.push((n & 0x7f) | 0x80);
    n >>>= 7;
  }
  out.push(n);
  return out;
}

/** A whole gRPC message: prefix (uncompressed, length) + `msg`. */
export function frame(msg: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(5 + msg.length);
  out[0] = 0;
  out.writeUInt32BE(msg.length, 1);
  out.set(msg, 5);
  return out;
}

/**
 * gRPC prefix + `hash` (field 1, 32 bytes) + `place` if given (field 3, an encoded message; before the data, which
 * protobuf allows, so the data can follow as its own buffer) + the tag and length of `data` (field 2).
 */
export function chunkMessageHeader(hash: Uint8Array, dataLength: number, place?: Uint8Array): Buffer {
  const placeField = place ? [0x1a, ...varint(place.length)] : [];
  const dataTag = [0x12, ...varint(dataLength)];
  const headLen = 2 + hash.length + placeField.length + (place?.length ?? 0) + dataTag.length;
  const head = Buffer.allocUnsafe(5 + headLen);
  head[0] = 0;
  head.writeUInt32BE(headLen + dataLength, 1);
  head[5] = 0x0a;
  head[6] = hash.length;
  let at = 7;
  head.set(hash, at);
  at += hash.length;
  if (place) {
    head.set(placeField, at);
    head.set(place, at + placeField.length);
    at += placeField.length + place.length;
  }
  head.set(dataTag, at);
  return head;
}

/**
 * Cuts a byte stream into gRPC messages, each copied once into a buffer of the size its prefix announces (from
 * `messageBuffers` when `reuse`: the consumer then gives each back once done with it, or lets it be collected).
 * push() throws RESOURCE_EXHAUSTED for a message above `maxMessageBytes`, INTERNAL for a compressed one; end() throws
 * DATA_LOSS when the stream ended inside a message.
 */
class Framer {
  #prefix = Buffer.alloc(0);
  #msg: Buffer | null = null;
  #filled = 0;
  readonly #max: number;
  readonly #reuse: boolean;

  constructor(maxMessageBytes: number, reuse: boolean) {
    this.#max = maxMessageBytes;
    this.#reuse = reuse;
  }

  /** Takes the next piece of the stream; `whole` gets each message it completes, in order. */
  push(d: Buffer, whole: (m: Buffer) => void): void {
    let off = 0;
    while (off < d.length) {
      if (!this.#msg) {
        const need = 5 - this.#prefix.length;
        this.#prefix = Buffer.concat([this.#prefix, d.subarray(off, off + need)]);
        off += Math.min(need, d.length - off);
        if (this.#prefix.length < 5) break;
        if (this.#prefix[0] !== 0) throw new ConnectError('compressed message, but no compression was negotiated', Code.Internal);
        const len = this.#prefix.readUInt32BE(1);
        if (len > this.#max) throw new ConnectError(`message of ${len} bytes is larger than the limit of ${this.#max}`, Code.ResourceExhausted);
        this.#msg = this.#reuse ? messageBuffers.take(len) : Buffer.allocUnsafe(len);
        this.#filled = 0;
      }
      const take = Math.min(this.#msg.length - this.#filled, d.length - off);
      d.copy(this.#msg, this.#filled, off, off + take);
      this.#filled += take;
      off += take;
      if (this.#filled === this.#msg.length) {
        const m = this.#msg;
        this.#msg = null;
        this.#prefix = Buffer.alloc(0);
        whole(m);
      }
    }
  }

  end(): void {
    if (this.#msg || this.#prefix.length > 0) throw new ConnectError('the stream ended inside a message', Code.DataLoss);
  }
}

/** Whole messages queued before the source is paused (HTTP/2 flow control then holds the peer back). */
const QUEUED_MESSAGES = 8;
const QUEUED_BYTES = 4 * 1024 * 1024;

/**
 * The gRPC messages of a Readable (an HTTP/2 stream), cut as its pieces arrive (see Framer): the pieces are taken in
 * its 'data' handler, and only whole messages pass through the generator. A generator step per piece (tens of
 * thousands per gigabyte, through two generators: the pieces, then the messages) cost a promise and an iterator
 * result each, and was the largest item of what a hub receiving a push allocated after the HTTP/2 layer itself.
 * A Readable's own async iterator would be worse: its read() concatenates whatever is buffered into a fresh buffer.
 * `onBytes` sees each piece (HTTP/2 flow-control bookkeeping).
 *
 * Ends like that iterator: throws the stream's error, throws ERR_STREAM_PREMATURE_CLOSE if it closes before its end,
 * and destroys the stream if the consumer stops early (unless `keepOpen`: a server that still answers on the stream
 * stops reading and drops the rest itself); the messages completed before any of that come first. A stream
 * that already ended or closed before this call (a peer's trailers-only answer can close it while the request is still
 * being written) is handled by finished(), which looks at the stream's state as well as its events.
 */
export async function* grpcMessagesOf(source: Readable, maxMessageBytes: number, opts: { onBytes?: () => void; reuse?: boolean; keepOpen?: boolean } = {}): AsyncGenerator<Buffer> {
  const framer = new Framer(maxMessageBytes, opts.reuse ?? false);
  const ready: Buffer[] = [];
  let readyBytes = 0;
  let done = false;
  let failure: Error | undefined;
  let wake: (() => void) | undefined;
  const notify = () => {
    const w = wake;
    wake = undefined;
    w?.();
  };
  const onData = (d: Buffer) => {
    opts.onBytes?.();
    try {
      framer.push(d, (m) => {
        ready.push(m);
        readyBytes += m.length;
      });
    } catch (err) {
      failure = err as Error;
      source.off('data', onData);
      source.pause();
      return notify();
    }
    if (ready.length >= QUEUED_MESSAGES || readyBytes >= QUEUED_BYTES) source.pause();
    if (ready.length > 0) notify();
  };
  source.on('data', onData);
  const stopWatching = finished(source, { writable: false }, (err) => {
    done = true;
    failure ??= err ?? undefined;
    notify();
  });
  try {
    for (;;) {
      const m = ready.shift();
      if (m) {
        readyBytes -= m.length;
        if (ready.length === 0 && source.isPaused() && !failure) source.resume();
        yield m;
      } else if (failure) {
        throw failure;
      } else if (done) {
        framer.end();
        return;
      } else {
        await new Promise<void>((resolve) => (wake = resolve));
      }
    }
  } finally {
    stopWatching();
    source.off('data', onData);
    if (!done && !source.destroyed && !opts.keepOpen) source.destroy();
  }
}

/** Resolves when `w` can take more; rejects with the signal's reason if it aborts first. */
export function drained(w: NodeJS.EventEmitter, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const done = () => {
      w.off('drain', done);
      w.off('close', done);
      signal?.removeEventListener('abort', done);
      if (signal?.aborted) reject(signal.reason);
      else resolve();
    };
    w.on('drain', done);
    w.on('close', done);
    signal?.addEventListener('abort', done, { once: true });
  });
}

// CommitBatch without the generic RPC machinery, on both ends; the bytes on the wire are plain gRPC CommitBatch of
// sync.proto, so either end also works with any other gRPC implementation of it.
//
// The Pi lays the request out in one buffer (gRPC frame header, then the protobuf fields of CommitBatchRequest), into
// which the inline files' bytes are read where their `data` fields go. The generic client encoded the message and then
// copied it again into the gRPC envelope: with up to 8 MiB of inline bytes per call and three calls in flight, that
// cost the Pi ~100 MB of peak memory and its page faults. The hub cuts the request out of the HTTP/2 stream with one
// copy (grpc-frames.ts): the generic server's envelope reader copied each piece again and re-summed the pieces it held
// on every read (~80 ms of the hub's main thread per push of 1 GB) before the message was copied once more.

import type { Http2ServerRequest, Http2ServerResponse } from 'node:http2';
import { constants as h2 } from 'node:http2';
import { create, fromBinary, toBinary, type MessageInitShape } from '@bufbuild/protobuf';
import type { Http2SessionManager } from '@connectrpc/connect-node';
import { CommitBatchEntrySchema, CommitBatchRequestSchema, CommitBatchResponseSchema, SyncService, type CommitBatchResponse } from '../gen/balupi/sync/v1/sync_pb.js';
import { callFailure, closedWithoutStatus, decodeRequest, grpcRoute, onlyMessage, openGrpcCall, serveOneAnswer, unaryAnswer, varint, type ServiceCallDeps } from './grpc-frames.ts';
import { messageBuffers } from './message-buffers.ts';

export const COMMIT_BATCH_PATH = '/balupi.sync.v1.SyncService/CommitBatch';

/** An HTTP/2 request handler that serves gRPC CommitBatch and returns true, or returns false for anything else. */
export function commitBatchHandler(deps: ServiceCallDeps): (req: Http2ServerRequest, res: Http2ServerResponse) => boolean {
  const call = { method: SyncService.method.commitBatch, peerSecret: deps.peerSecret, maxMessageBytes: deps.maxMessageBytes, ...(deps.shutdown ? { shutdown: deps.shutdown } : {}) };
  return grpcRoute(COMMIT_BATCH_PATH, (req, res) =>
    serveOneAnswer(call, req, res, async (messages, ctx) => {
      const request = decodeRequest(CommitBatchRequestSchema, await onlyMessage(messages));
      return toBinary(CommitBatchResponseSchema, create(CommitBatchResponseSchema, await deps.service.commitBatch!(request, ctx)));
    }),
  );
}

/** A CommitBatch request ready to send; the `data` of entry i goes at frame[dataAt[i]] (-1: no data). */
export interface CommitBatchFrame {
  frame: Buffer;
  dataAt: number[];
  /** Gives the frame's memory back for the next request, once nothing reads it any more (idempotent). */
  done(): void;
}

const FIELD_PEER_ID = 0x0a; // CommitBatchRequest.peer_id: field 1, length-delimited
const FIELD_ENTRIES = 0x12; // CommitBatchRequest.entries: field 2, length-delimited
const FIELD_DATA = 0x1a; // CommitBatchEntry.data: field 3, length-delimited

/** Lays out a CommitBatch whose entry i carries `dataLengths[i]` bytes of data (0: none), to be filled in by the caller. */
export function layoutCommitBatch(peerId: string, entries: MessageInitShape<typeof CommitBatchEntrySchema>[], dataLengths: number[]): CommitBatchFrame {
  const id = Buffer.from(peerId);
  const metas = entries.map((e) => toBinary(CommitBatchEntrySchema, create(CommitBatchEntrySchema, { ...e, data: new Uint8Array() })));
  const lengths = metas.map((m, i) => m.length + (dataLengths[i]! > 0 ? 1 + varint(dataLengths[i]!).length + dataLengths[i]! : 0));
  const size = (id.length > 0 ? 1 + varint(id.length).length + id.length : 0) + lengths.reduce((s, n) => s + 1 + varint(n).length + n, 0);
  // From the message buffers (message-buffers.ts), given back once written: a fresh 8 MiB buffer per call had every page
  // faulted in as the inline bytes were read into it (~2,000 page faults per batch on the dev VM).
  const frame = messageBuffers.take(5 + size);
  let given = false;
  const done = (): void => {
    if (given) return; // once: the buffer may be another call's by a second time
    given = true;
    messageBuffers.give(frame);
  };
  frame[0] = 0;
  frame.writeUInt32BE(size, 1);
  let at = 5;
  const put = (bytes: ArrayLike<number>): void => {
    frame.set(bytes, at);
    at += bytes.length;
  };
  if (id.length > 0) put([FIELD_PEER_ID, ...varint(id.length), ...id]);
  const dataAt = metas.map((m, i) => {
    put([FIELD_ENTRIES, ...varint(lengths[i]!)]);
    put(m);
    if (dataLengths[i]! === 0) return -1;
    put([FIELD_DATA, ...varint(dataLengths[i]!)]);
    at += dataLengths[i]!;
    return at - dataLengths[i]!;
  });
  return { frame, dataAt, done };
}

/** The request of a laid-out frame, for clients that only take messages (it shares the frame's memory). */
export function requestOf(f: CommitBatchFrame): ReturnType<typeof fromBinary<typeof CommitBatchRequestSchema>> {
  return fromBinary(CommitBatchRequestSchema, f.frame.subarray(5));
}

/**
 * Sends a laid-out CommitBatch over an HTTP/2 session of `sessions` and returns the answer. The frame is given back
 * (f.done) once HTTP/2 has written it out, or the call failed before writing it.
 */
export async function commitBatchCall(sessions: Http2SessionManager, opts: { peerSecret: string; maxMessageBytes: number }, f: CommitBatchFrame, signal?: AbortSignal): Promise<CommitBatchResponse> {
  let writing = false;
  try {
    signal?.throwIfAborted();
    const { stream, headers } = await openGrpcCall(sessions, COMMIT_BATCH_PATH, opts.peerSecret, closedWithoutStatus);
    let trailers: Record<string, unknown> | undefined;
    stream.once('trailers', (t) => (trailers = t));
    const cancel = () => stream.close(h2.NGHTTP2_CANCEL);
    signal?.addEventListener('abort', cancel, { once: true });
    try {
      // The write's callback comes once HTTP/2 no longer holds the frame (sent, or dropped with the stream).
      writing = true;
      stream.write(f.frame, () => f.done());
      stream.end();
      return fromBinary(CommitBatchResponseSchema, await unaryAnswer(stream, headers, () => trailers, opts.maxMessageBytes));
    } finally {
      signal?.removeEventListener('abort', cancel);
      if (!stream.closed) stream.close(h2.NGHTTP2_CANCEL);
    }
  } catch (err) {
    throw callFailure('commit batch', err, signal);
  } finally {
    if (!writing) f.done();
  }
}

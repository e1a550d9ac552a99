// Worker-thread side of chunk-workers.ts. Two jobs, both kept off the main thread's event loop:
//   read   read one chunk file synchronously (blocking only this thread), hash each 256 KiB piece right after it
//          lands, hand the verified bytes back without copying (transferred ArrayBuffer);
//   hash   during an ingest: BLAKE3 of one chunk (a view on a SharedArrayBuffer, so nothing is copied) and, in
//          arrival order, the running BLAKE3 of the whole file for that ingest's session.

import fs from 'node:fs';
import { parentPort, workerData } from 'node:worker_threads';
import { blake3, toHex } from './hasher.ts';
import type { Blake3Choice, IncrementalHash } from './hasher.ts';

export interface ReadRequest {
  kind: 'read';
  id: number;
  file: string;
  hash: string;
  size: number;
  strict: boolean;
}

export type HashRequest =
  | { kind: 'hash'; id: number; session: number; data: Uint8Array }
  | { kind: 'digest'; id: number; session: number }
  | { kind: 'drop'; id: number; session: number };

export type ReadOutcome =
  | { id: number; ok: true; bytes: ArrayBuffer }
  | { id: number; ok: false; kind: 'missing' | 'size' | 'mismatch'; actualSize?: number; actual?: string }
  | { id: number; ok: false; kind: 'io'; code?: string; message: string };

export interface HashOutcome {
  id: number;
  ok: true;
  hash: string;
}

const PIECE = 256 * 1024;
const hasher = blake3((workerData as { blake3: Blake3Choice }).blake3);
const sessions = new Map<number, IncrementalHash>();

function readChunk(req: ReadRequest): ReadOutcome {
  let fd: number;
  try {
    fd = fs.openSync(req.file, 'r');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return { id: req.id, ok: false, kind: 'missing' };
    return { id: req.id, ok: false, kind: 'io', code, message: (err as Error).message };
  }
  const h = hasher.create();
  try {
    const buf = Buffer.allocUnsafeSlow(req.size); // its own ArrayBuffer, so it can be transferred
    let off = 0;
    while (off < req.size) {
      const n = fs.readSync(fd, buf, off, Math.min(PIECE, req.size - off), off);
      if (n === 0) break;
      h.update(buf.subarray(off, off + n));
      off += n;
    }
    const actualSize = off < req.size ? off : req.strict ? fs.fstatSync(fd).size : req.size;
    if (actualSize !== req.size) return { id: req.id, ok: false, kind: 'size', actualSize };
    const actual = toHex(h.digest());
    if (actual !== req.hash) return { id: req.id, ok: false, kind: 'mismatch', actual };
    return { id: req.id, ok: true, bytes: buf.buffer as ArrayBuffer };
  } catch (err) {
    return { id: req.id, ok: false, kind: 'io', code: (err as NodeJS.ErrnoException).code, message: (err as Error).message };
  } finally {
    h.dispose();
    fs.closeSync(fd);
  }
}

function hashRequest(req: HashRequest): HashOutcome {
  let file = sessions.get(req.session);
  if (req.kind === 'hash') {
    if (!file) sessions.set(req.session, (file = hasher.create()));
    file.update(req.data);
    return { id: req.id, ok: true, hash: toHex(hasher.hash(req.data)) };
  }
  sessions.delete(req.session);
  if (req.kind === 'digest') return { id: req.id, ok: true, hash: toHex((file ?? hasher.create()).digest()) };
  file?.dispose();
  return { id: req.id, ok: true, hash: '' };
}

parentPort?.on('message', (req: ReadRequest | HashRequest) => {
  if (req.kind === 'read') {
    const out = readChunk(req);
    parentPort!.postMessage(out, out.ok ? [out.bytes] : []);
  } else {
    parentPort!.postMessage(hashRequest(req));
  }
});

// Worker-thread side of read-workers.ts: reads one chunk file synchronously (blocking only this thread), hashes each
// 256 KiB piece right after it lands, and hands the verified bytes back without copying (transferred ArrayBuffer).

import fs from 'node:fs';
import { parentPort, workerData } from 'node:worker_threads';
import { blake3, toHex } from './hasher.ts';
import type { Blake3Choice } from './hasher.ts';

export interface ReadRequest {
  id: number;
  file: string;
  hash: string;
  size: number;
  strict: boolean;
}

export type ReadOutcome =
  | { id: number; ok: true; bytes: ArrayBuffer }
  | { id: number; ok: false; kind: 'missing' | 'size' | 'mismatch'; actualSize?: number; actual?: string }
  | { id: number; ok: false; kind: 'io'; code?: string; message: string };

const PIECE = 256 * 1024;
const hasher = blake3((workerData as { blake3: Blake3Choice }).blake3);

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

parentPort?.on('message', (req: ReadRequest) => {
  const out = readChunk(req);
  parentPort!.postMessage(out, out.ok ? [out.bytes] : []);
});

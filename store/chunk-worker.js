// Worker-thread side of chunk-workers.ts (the message types live there). Four jobs, all kept off the main thread:
//   read   read one chunk file synchronously (blocking only this thread), hash each 256 KiB piece right after it
//          lands, hand the verified bytes back without copying (transferred ArrayBuffer, or left in the
//          SharedArrayBuffer the request named; `verify: false`: the size is checked, not the hash); 'reads' does
//          that for several small chunks in one message;
//   write  the small chunk files of a received batch, with synchronous calls: a thread-pool round trip per call
//          (four per file) cost the main thread more than the calls themselves;
//   unlink chunk files the index no longer wants, many per message;
//   hash   during an ingest: BLAKE3 of one chunk and, in arrival order, the running BLAKE3 and SHA-256 (the
//          checksum BaluHost's clients compare) of the whole file for that ingest's session. The chunk's buffer is transferred here and back, so nothing is copied.
//
// Plain JavaScript on purpose, the one exception to the project's TypeScript: a worker that loads .ts files starts
// its own type-stripping compiler, which measured +41 MB RSS per worker instead of +22 MB (1 GB Pi). It only needs
// the BLAKE3 implementation the main thread chose (same digests either way, see hasher.ts).

import fs from 'node:fs';
import path from 'node:path';
import { createHash } from 'node:crypto';
import { parentPort, workerData } from 'node:worker_threads';
import { workerHasher } from './worker-hasher.js';

const PIECE = 256 * 1024;

const hasher = workerHasher(workerData.blake3);

/** Running whole-file hashes ({ file: BLAKE3, sha: SHA-256 }) of the ingests in progress, by session. */
const sessions = new Map();

function readChunk(req) {
  let fd;
  try {
    fd = fs.openSync(req.file, 'r');
  } catch (err) {
    if (err.code === 'ENOENT') return { id: req.id, ok: false, kind: 'missing' };
    return { id: req.id, ok: false, kind: 'io', code: err.code, message: err.message };
  }
  // `verify: false`: the size is checked, not the hash, so no hasher is made
  const h = req.verify === false ? undefined : hasher.create();
  try {
    // a new buffer has its own ArrayBuffer, so it can be transferred; a shared one stays where it is
    const buf = req.into ? Buffer.from(req.into, 0, req.size) : Buffer.allocUnsafeSlow(req.size);
    let off = 0;
    while (off < req.size) {
      const n = fs.readSync(fd, buf, off, Math.min(PIECE, req.size - off), req.offset + off);
      if (n === 0) break;
      h?.update(buf.subarray(off, off + n));
      off += n;
    }
    const actualSize = off < req.size ? off : req.strict ? fs.fstatSync(fd).size : req.size;
    if (actualSize !== req.size) return { id: req.id, ok: false, kind: 'size', actualSize };
    const actual = h ? h.digest().toString('hex') : req.hash;
    if (actual !== req.hash) return { id: req.id, ok: false, kind: 'mismatch', actual };
    return req.into ? { id: req.id, ok: true } : { id: req.id, ok: true, bytes: buf.buffer };
  } catch (err) {
    return { id: req.id, ok: false, kind: 'io', code: err.code, message: err.message };
  } finally {
    h?.dispose();
    fs.closeSync(fd);
  }
}

function hashRequest(req) {
  let s = sessions.get(req.session);
  if (req.kind === 'hash') {
    if (!s) sessions.set(req.session, (s = { file: hasher.create(), sha: req.sha256 === false ? null : createHash('sha256') }));
    const data = new Uint8Array(req.buffer, req.offset ?? 0, req.length);
    s.file.update(data);
    s.sha?.update(data);
    return { id: req.id, ok: true, hash: hasher.hash(data).toString('hex'), buffer: req.buffer };
  }
  sessions.delete(req.session);
  if (req.kind === 'digest') {
    s ??= { file: hasher.create(), sha: createHash('sha256') };
    return { id: req.id, ok: true, hash: s.file.digest().toString('hex'), sha256: s.sha?.digest('hex') };
  }
  s?.file.dispose();
  return { id: req.id, ok: true, hash: '' };
}

/**
 * write: small chunk files of one batch, each to its temp name and renamed into place, with plain synchronous calls
 * (no flush: the main thread flushes the batch with one syncfs). Stops at the first failure and removes that temp.
 */
function writeFiles(req) {
  const made = new Set();
  for (let i = 0; i < req.items.length; i++) {
    const { tmp, final, offset, length } = req.items[i];
    const data = new Uint8Array(req.arena, offset, length);
    let fd;
    try {
      fd = fs.openSync(tmp, 'wx', 0o644);
      let off = 0;
      while (off < data.length) off += fs.writeSync(fd, data, off, data.length - off, off);
      fs.closeSync(fd);
      fd = undefined;
      const dir = path.dirname(final);
      if (!made.has(dir)) {
        fs.mkdirSync(dir, { recursive: true });
        made.add(dir);
      }
      fs.renameSync(tmp, final);
    } catch (err) {
      if (fd !== undefined) fs.closeSync(fd);
      fs.rmSync(tmp, { force: true });
      return { id: req.id, ok: false, kind: 'io', index: i, code: err.code, message: err.message };
    }
  }
  return { id: req.id, ok: true };
}

/** unlink: chunk files the index no longer wants, one message for many (a thread-pool round trip each cost more). */
function unlinkFiles(req) {
  const errors = req.files.map((f) => {
    try {
      fs.unlinkSync(f);
      return null;
    } catch (err) {
      return err.code === 'ENOENT' ? null : { code: err.code, message: err.message };
    }
  });
  return { id: req.id, ok: true, errors };
}

parentPort.on('message', (req) => {
  if (req.kind === 'unlink') {
    parentPort.postMessage(unlinkFiles(req));
  } else if (req.kind === 'write') {
    parentPort.postMessage({ ...writeFiles(req), arena: req.arena }, [req.arena]); // the buffer goes back for reuse
  } else if (req.kind === 'read') {
    const out = readChunk(req);
    parentPort.postMessage(out, out.bytes ? [out.bytes] : []);
  } else if (req.kind === 'reads') {
    const outcomes = req.reads.map((r, i) => readChunk({ ...r, id: i }));
    parentPort.postMessage({ id: req.id, ok: true, outcomes }, outcomes.flatMap((o) => (o.bytes ? [o.bytes] : [])));
  } else {
    const out = hashRequest(req);
    parentPort.postMessage(out, out.buffer ? [out.buffer] : []);
  }
});

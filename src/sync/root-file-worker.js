// The worker thread of root-file-writer.ts: writes a batch of small root files with plain synchronous calls, as
// writeAtomic does one by one (temp file, write, permissions, mtime, stat by descriptor, flush, rename, flush of the
// names), each file placed only if its path still holds what the root writer saw there (put-in-place.js). Plain
// JavaScript, like store/chunk-worker.js: a worker needs no types.
//
// A file can also come as a chunk file of the hub's store to link into place (its only chunk, already durable there,
// checked against its hash here first): its bytes are then neither read into the main thread nor written again, and
// the store drops the chunk file once it knows the root holds them (HubRoot.noteWritten).
//
// A batch is flushed twice as a whole, by syncfs(2) (store/syncfs-helper.js): once for the temp
// files' bytes before any rename, once for the renames. An fdatasync per file is a journal commit each: 3,000 files of
// 1-64 KiB took 0.77-0.81 s that way on the dev VM, 0.24-0.28 s with two syncfs per 256 files. The large files a push
// brings beside them are written around the page cache (store/direct-io.ts), so a syncfs finds little else to flush.
// Without `sync`, each file is fdatasync'ed and each directory fsync'ed instead.
import fs from 'node:fs';
import path from 'node:path';
import { parentPort, workerData } from 'node:worker_threads';
import { SyncFsUnavailable, syncFileSystem } from '../../store/syncfs-helper.js';
import { workerHasher } from '../../store/worker-hasher.js';
import { putInPlaceSync } from './put-in-place.js';

const hasher = workerHasher(workerData?.blake3);

/** `fn()`, creating the directory of `file` and trying once more when the first try says it is missing. */
function inDir(file, fn) {
  try {
    return fn();
  } catch (err) {
    if (err.code !== 'ENOENT') throw err;
    fs.mkdirSync(path.dirname(file), { recursive: true });
    return fn();
  }
}

/** The temp file with its bytes, permissions and mtime, not flushed yet; its stat (and device) by descriptor. */
function writeTemp(item, arena) {
  const data = new Uint8Array(arena, item.offset, item.length);
  const fd = inDir(item.tmp, () => fs.openSync(item.tmp, 'wx', 0o600));
  try {
    let off = 0;
    while (off < data.length) off += fs.writeSync(fd, data, off, data.length - off, off);
    fs.fchmodSync(fd, item.mode);
    fs.futimesSync(fd, item.mtimeMs / 1000, item.mtimeMs / 1000);
    const st = fs.fstatSync(fd);
    return { dev: st.dev, stat: { size: st.size, mtimeMs: Math.floor(st.mtimeMs), mode: st.mode & 0o7777 } };
  } catch (err) {
    fs.rmSync(item.tmp, { force: true });
    throw err;
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * The temp file as a second name of a chunk file (`item.link`: its path, hash and size), with permissions and mtime.
 * The chunk file is read and hashed first: a chunk that rotted in the store must not become a root file. One that has
 * a second name already (another path of the same content, put in place before the store dropped the chunk file) is
 * not linked again: two root files must never share an inode, or an edit of one would change the other.
 */
function linkTemp(item) {
  const { file, hash, size } = item.link;
  if (fs.statSync(file).nlink !== 1) throw Object.assign(new Error(`chunk file ${file} is in the root already`), { code: 'ESHARED' });
  const data = fs.readFileSync(file);
  if (data.length !== size || hasher.hash(data).toString('hex') !== hash) {
    throw Object.assign(new Error(`chunk file ${file} does not hold chunk ${hash}`), { code: 'ECORRUPT' });
  }
  inDir(item.tmp, () => fs.linkSync(file, item.tmp));
  try {
    fs.chmodSync(item.tmp, item.mode);
    fs.utimesSync(item.tmp, item.mtimeMs / 1000, item.mtimeMs / 1000);
    const st = fs.lstatSync(item.tmp);
    return { dev: st.dev, stat: { size: st.size, mtimeMs: Math.floor(st.mtimeMs), mode: st.mode & 0o7777 } };
  } catch (err) {
    fs.rmSync(item.tmp, { force: true });
    throw err;
  }
}

function fsyncPath(p, dataOnly) {
  const fd = fs.openSync(p, 'r');
  try {
    if (dataOnly) fs.fdatasyncSync(fd);
    else fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

const failure = (err) => ({ ok: false, code: err.code, message: err.message });

/**
 * Makes what `files` (entries of one file system, all still standing) wrote durable: one syncfs, or, without `sync`,
 * fsyncs of `target(file)` (each distinct one once). A failed flush fails the entries it covered.
 */
async function flush(files, target, dataOnly, results) {
  try {
    await syncFileSystem(path.dirname(files[0].item.final));
    return;
  } catch (err) {
    if (!(err instanceof SyncFsUnavailable)) {
      for (const f of files) results[f.i] = failure(err);
      return;
    }
  }
  const failed = new Map();
  for (const f of files) {
    const t = target(f);
    if (!failed.has(t)) {
      try {
        fsyncPath(t, dataOnly);
        failed.set(t, null);
      } catch (err) {
        failed.set(t, err);
      }
    }
    if (failed.get(t)) results[f.i] = failure(failed.get(t));
  }
}

async function writeBatch(req) {
  const results = [];
  const written = [];
  req.items.forEach((item, i) => {
    try {
      const { dev, stat } = item.link ? linkTemp(item) : writeTemp(item, req.arena);
      results.push({ ok: true, stat });
      written.push({ i, item, dev });
    } catch (err) {
      results.push(failure(err));
    }
  });
  // A root may hold mount points: each file system is flushed for its own files.
  for (const files of Map.groupBy(written, (w) => w.dev).values()) {
    // (a linked chunk file's bytes are durable already)
    if (files.some((f) => !f.item.link)) await flush(files, (f) => f.item.tmp, true, results);
    const renamed = [];
    for (const f of files) {
      if (results[f.i].ok) {
        try {
          putInPlaceSync(f.item.tmp, f.item.final, f.item.expect);
          renamed.push(f);
          continue;
        } catch (err) {
          results[f.i] = failure(err);
        }
      }
      fs.rmSync(f.item.tmp, { force: true }); // its write, flush or rename failed
    }
    // The renames are durable once their directories are: a failed flush fails the files it covered.
    if (renamed.length > 0) await flush(renamed, (f) => path.dirname(f.item.final), false, results);
  }
  return results;
}

// One batch at a time: root-file-writer.ts sends the next once this one is answered.
parentPort.on('message', async (req) => {
  parentPort.postMessage({ results: await writeBatch(req), arena: req.arena }, [req.arena]);
});

// The worker thread of root-file-writer.ts: writes a batch of small root files with plain synchronous calls, as
// writeAtomic does one by one (temp file, write, permissions, mtime, fdatasync, stat by descriptor, rename), then
// fsyncs each directory of the batch once. Plain JavaScript, like store/chunk-worker.js: a worker needs no types.
import fs from 'node:fs';
import path from 'node:path';
import { parentPort } from 'node:worker_threads';

/** Opens a new temp file, creating its directory when the first try says it is missing. */
function openNew(tmp) {
  try {
    return fs.openSync(tmp, 'wx', 0o600);
  } catch (err) {
    if (err.code !== 'ENOENT') throw err;
    fs.mkdirSync(path.dirname(tmp), { recursive: true });
    return fs.openSync(tmp, 'wx', 0o600);
  }
}

function writeOne(item, arena) {
  const data = new Uint8Array(arena, item.offset, item.length);
  const fd = openNew(item.tmp);
  let st;
  try {
    let off = 0;
    while (off < data.length) off += fs.writeSync(fd, data, off, data.length - off, off);
    fs.fchmodSync(fd, item.mode);
    fs.futimesSync(fd, item.mtimeMs / 1000, item.mtimeMs / 1000);
    fs.fdatasyncSync(fd);
    st = fs.fstatSync(fd);
  } catch (err) {
    fs.closeSync(fd);
    fs.rmSync(item.tmp, { force: true });
    throw err;
  }
  fs.closeSync(fd);
  try {
    fs.renameSync(item.tmp, item.final);
  } catch (err) {
    fs.rmSync(item.tmp, { force: true });
    throw err;
  }
  return { size: st.size, mtimeMs: Math.floor(st.mtimeMs), mode: st.mode & 0o7777 };
}

function writeBatch(req) {
  const results = [];
  const dirs = new Set();
  for (const item of req.items) {
    try {
      results.push({ ok: true, stat: writeOne(item, req.arena) });
      dirs.add(path.dirname(item.final));
    } catch (err) {
      results.push({ ok: false, code: err.code, message: err.message });
    }
  }
  // The renames are durable once their directories are: a failure here fails every file renamed into that directory.
  for (const dir of dirs) {
    try {
      const fd = fs.openSync(dir, 'r');
      try {
        fs.fsyncSync(fd);
      } finally {
        fs.closeSync(fd);
      }
    } catch (err) {
      req.items.forEach((item, i) => {
        if (results[i].ok && path.dirname(item.final) === dir) results[i] = { ok: false, code: err.code, message: err.message };
      });
    }
  }
  return results;
}

parentPort.on('message', (req) => {
  parentPort.postMessage({ results: writeBatch(req), arena: req.arena }, [req.arena]);
});

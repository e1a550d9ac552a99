// syncfs(2) for Node, which has no binding for it: coreutils' `sync -f DIR` (8.24 and later) is that one system call.
// Starting a program from this process costs a fork of it, whose page tables grow with its memory: measured here,
// 2.5 ms per `sync -f` from a fresh Node and 9.2 ms (3.7 ms of it system time) from one of 400 MB, as the hub is in
// the middle of a push, which flushes dozens of times. So one small shell stays beside the process and starts `sync`
// for it, one request per line on its stdin, one answer per line on its stdout.
//
// Plain JavaScript: the root-file worker thread (src/sync/root-file-worker.js) uses it too; store/syncfs.ts gives the
// types to the TypeScript side. Each thread that flushes has its own helper.

import { execFile, spawn } from 'node:child_process';

/** syncFileSystem could not run `sync` at all (as opposed to: it ran and the flush failed). */
export class SyncFsUnavailable extends Error {}

// Exit 3: no `sync` here. One answer per request line, in order: "ok", or "err " and sync's message on one line.
const SCRIPT = [
  'command -v sync >/dev/null 2>&1 || exit 3',
  'while IFS= read -r d; do',
  '  if e=$(sync -f -- "$d" 2>&1); then echo ok; else printf "err %s\\n" "$(printf %s "$e" | tr "\\n" " ")"; fi',
  'done',
].join('\n');

/** A helper that died other than for lack of `sync` is started again, up to this many times; then each call forks. */
const RESTARTS = 3;

function flushFailed(dir, text) {
  const err = new Error(`flushing the file system of ${dir} failed: ${text}`);
  err.code = /No space left/.test(text) ? 'ENOSPC' : 'EIO';
  return err;
}

/** `sync -f dir` as its own process: the fallback when the helper cannot serve. */
function forkSync(dir) {
  return new Promise((resolve, reject) => {
    execFile('sync', ['-f', '--', dir], { timeout: 120_000 }, (err, _stdout, stderr) => {
      if (!err) return resolve();
      if (typeof err.code === 'string') return reject(new SyncFsUnavailable(`cannot run sync -f: ${err.message}`, { cause: err }));
      reject(flushFailed(dir, String(stderr).trim() || err.message));
    });
  });
}

class Helper {
  #child;
  /** Requests sent, in order, waiting for their answer line. */
  #waiting = [];
  #out = '';
  /** Set once it died: why (SyncFsUnavailable if there is no `sync`). */
  dead = undefined;

  constructor(onDeath) {
    this.#child = spawn('/bin/sh', ['-c', SCRIPT], { stdio: ['pipe', 'pipe', 'ignore'] });
    const die = (why) => {
      if (this.dead) return;
      this.dead = why;
      onDeath(this.#waiting.splice(0));
    };
    this.#child.on('error', (err) => die(err));
    this.#child.on('exit', (code) => die(code === 3 ? new SyncFsUnavailable('cannot run sync -f: no sync program') : new Error(`syncfs helper exited (${code})`)));
    this.#child.stdin.on('error', () => {}); // EPIPE once it died: 'exit' says why
    this.#child.stdout.setEncoding('utf8');
    this.#child.stdout.on('data', (text) => this.#answers(text));
    this.#idle();
  }

  sync(dir) {
    return new Promise((resolve, reject) => {
      this.#waiting.push({ dir, resolve, reject });
      // While an answer is due the helper keeps the process (or thread) alive; otherwise it does not.
      this.#child.ref();
      this.#child.stdout.ref();
      this.#child.stdin.write(`${dir}\n`);
    });
  }

  #answers(text) {
    this.#out += text;
    for (let nl = this.#out.indexOf('\n'); nl >= 0; nl = this.#out.indexOf('\n')) {
      const line = this.#out.slice(0, nl);
      this.#out = this.#out.slice(nl + 1);
      const w = this.#waiting.shift();
      if (!w) continue;
      if (line === 'ok') w.resolve();
      else w.reject(flushFailed(w.dir, line.replace(/^err /, '').trim()));
    }
    if (this.#waiting.length === 0) this.#idle();
  }

  #idle() {
    this.#child.unref();
    this.#child.stdout.unref();
    this.#child.stdin.unref?.();
  }
}

let helper;
let restarts = 0;
let missing;

/**
 * syncfs(2) of the file system holding `dir`. A flush that fails (EIO, ENOSPC) rejects with that code; a missing
 * `sync` program rejects with SyncFsUnavailable.
 */
export function syncFileSystem(dir) {
  if (missing) return Promise.reject(missing);
  if (dir.includes('\n')) return forkSync(dir); // one request per line
  if (!helper || helper.dead) {
    if (helper?.dead && !(helper.dead instanceof SyncFsUnavailable) && ++restarts > RESTARTS) return forkSync(dir);
    helper = new Helper((pending) => {
      // Requests in flight when it died may or may not have been flushed: a second flush is harmless.
      for (const w of pending) forkSync(w.dir).then(w.resolve, w.reject);
    });
  }
  if (helper.dead instanceof SyncFsUnavailable) {
    missing = helper.dead;
    return Promise.reject(missing);
  }
  return helper.sync(dir);
}

// POST /api/files/upload: every multipart variant the clients send (../shared/reference/clients.md §0.4, §A.3, §B.3)
//   BaluApp Files screen   part `files`, then `path` = target folder
//   BaluApp folder sync    part `file`, then `path` = full file path including the name
//   BaluDesk sync          `path` (folder) first, then `file` or repeated `files`
//   BaluDesk explorer      part `file` only, `?path=<full file path>` in the query
// Each file part streams straight into store.ingest. The part may arrive before the form says where it goes, so the
// ingest is started with a name that resolves once the form has been read (store IngestName): nothing is buffered
// and nothing is visible under any name until the whole file is stored and the target is known and allowed. A client
// that vanishes mid-file leaves no file (the ingest fails, its chunk files are removed).

import { randomUUID } from 'node:crypto';
import type { User } from '../auth/tokens.ts';
import type { FileTree } from './file-tree.ts';
import { asFacadeError } from './file-tree.ts';
import { FilesError } from './errors.ts';
import { authorize, baseName, joinPath, normalizePath } from './paths.ts';

/** BaluHost's filename rule: the last component, NUL (here: every control character) removed, never empty/./.. */
export function cleanFilename(raw: string | undefined): string {
  const last = (raw ?? '').split(/[/\\]/).pop()!.replace(/[\u0000-\u001f\u007f]/g, '');
  return last === '' || last === '.' || last === '..' ? 'upload.bin' : last;
}

/**
 * Where an upload named `filename` goes when the client said `rawPath`. BaluHost treats `path` as a folder unless its
 * last segment contains a dot (then it is the file's full path, BaluApp's folder sync). That rule is kept, with two
 * refinements so that the clients' intent wins over the guess: an existing folder stays a folder even with a dot in
 * its name, and a last segment equal to the file's own name (or naming an existing file) is a full path too.
 */
export async function uploadTarget(tree: FileTree, user: User, rawPath: string, filename: string): Promise<string> {
  const path = normalizePath(rawPath);
  let target = joinPath(path, filename);
  if (path !== '') {
    const last = baseName(path);
    const node = await tree.node(path);
    if (node?.type === 'file' || (node === undefined && (last.includes('.') || last === filename))) target = path;
  }
  authorize(user, target, 'write');
  if (await tree.folders.get(target)) throw new FilesError('path_conflict', `Cannot replace folder ${target} with a file`);
  return target;
}

interface Deferred<T> {
  promise: Promise<T>;
  resolve: (v: T) => void;
  reject: (e: unknown) => void;
}

function deferred<T>(): Deferred<T> {
  let resolve!: (v: T) => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise<T>((res, rej) => ((resolve = res), (reject = rej)));
  promise.catch(() => {}); // observed by the ingests that need it; a failed form must not be an unhandled rejection
  return { promise, resolve, reject };
}

/** One multipart upload request, fed part by part by the route. */
export class MultipartUpload {
  private readonly tree: FileTree;
  private readonly user: User;
  private readonly signal: AbortSignal;
  private formPath: string | undefined;
  private readonly queryPath: string | undefined;
  /** Resolves with the path once the whole form is read. */
  private readonly formDone = deferred<string>();
  private readonly ingests: Promise<string>[] = [];

  constructor(opts: { tree: FileTree; user: User; queryPath: string | undefined; signal: AbortSignal }) {
    this.tree = opts.tree;
    this.user = opts.user;
    this.queryPath = opts.queryPath;
    this.signal = opts.signal;
  }

  field(name: string, value: string): void {
    if (name === 'path') this.formPath = value;
  }

  /** A file part: its bytes start flowing into the store now. */
  async file(rawName: string | undefined, stream: AsyncIterable<Uint8Array>): Promise<void> {
    const filename = cleanFilename(rawName);
    // The target is known already when the path came first (BaluDesk): refuse a forbidden one before any byte.
    const early = this.formPath !== undefined ? await uploadTarget(this.tree, this.user, this.formPath, filename) : undefined;
    const name = async (): Promise<string> => early ?? uploadTarget(this.tree, this.user, await this.formDone.promise, filename);
    const ingest = this.tree.store.ingest(name, stream, {}, { signal: this.signal }).then((r) => r.file.path);
    ingest.catch(() => {}); // awaited in finish()
    this.ingests.push(ingest);
  }

  /** The whole form has been read: stores every file under its target; BaluHost's answer. */
  async finish(): Promise<{ message: string; uploaded: number; upload_ids: string[] }> {
    this.formDone.resolve(this.formPath ?? this.queryPath ?? '');
    if (this.ingests.length === 0) throw new FilesError('no_file', 'No file provided');
    const results = await Promise.allSettled(this.ingests);
    const failed = results.find((r) => r.status === 'rejected');
    if (failed) throw asFacadeError(failed.reason);
    for (const r of results) await this.tree.ensureParent((r as PromiseFulfilledResult<string>).value);
    return { message: 'Files uploaded', uploaded: results.length, upload_ids: results.map(() => randomUUID()) };
  }

  /** The form broke off (client gone, limit hit): every ingest still waiting fails, nothing becomes visible. */
  async abort(err: unknown): Promise<void> {
    this.formDone.reject(err);
    await Promise.allSettled(this.ingests);
  }
}

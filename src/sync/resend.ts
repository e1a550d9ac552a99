// The Pi's half of lost bytes (lost-versions.ts on the hub): the hub's feed marks a version it acknowledged but could
// not write out, because the file of its root that held some of its chunks was changed or removed on the NAS first
// (FileInfo.incomplete). This Pi uploads whichever of those chunks it holds (the hub says which it lacks), wherever
// they are here: the version may be this Pi's own push, a conflict copy of it, or a file that shares their bytes. The
// hub then writes the version out and lists it again, complete.

import type { ChunkRef } from '../../store/index.ts';
import type { SyncModel } from './model.ts';
import type { ChunkClient } from './transfer.ts';
import { uploadMissing } from './transfer.ts';
import type { RemoteFile } from './wire.ts';
import { errorMessage, isConnectionError } from './errors.ts';

/**
 * Uploads the chunks of `files` that this Pi holds and the hub lacks; returns how many went. A lost connection is
 * thrown (the feed page is read again next session, and with it these records); any other failure (a chunk evicted
 * here meanwhile) is logged: another peer may have the bytes.
 */
export async function resendLost(m: SyncModel, client: ChunkClient, files: RemoteFile[], signal?: AbortSignal): Promise<number> {
  const refs = new Map<string, ChunkRef>();
  for (const f of files) for (const c of f.chunks) refs.set(c.hash, c);
  const held = new Set(await m.store.hasChunks([...refs.keys()]));
  const mine = [...refs.values()].filter((c) => held.has(c.hash));
  if (mine.length === 0) return 0;
  try {
    const sent = await uploadMissing(client, m.store, mine, { ...(m.rate ? { rate: m.rate } : {}), ...(signal ? { signal } : {}) });
    if (sent.chunks > 0) m.log.info({ files: files.length, first: files[0]!.path, chunks: sent.chunks, bytes: sent.bytes }, 'sync sent the hub bytes it had lost again');
    return sent.chunks;
  } catch (err) {
    if (signal?.aborted || isConnectionError(err)) throw err;
    m.log.warn({ files: files.length, first: files[0]!.path, err: errorMessage(err) }, 'sync could not send the hub the bytes it lost');
    return 0;
  }
}

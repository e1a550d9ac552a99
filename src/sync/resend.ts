// The Pi's half of lost bytes (lost-versions.ts on the hub): the hub's feed marks a version it acknowledged but could
// not write out, because the file of its root that held some of its chunks was changed or removed on the NAS first
// (FileInfo.incomplete). This Pi uploads whichever of those chunks it holds (the hub says which it lacks), wherever
// they are here: the version may be this Pi's own push, a conflict copy of it, or a file that shares their bytes. The
// hub then writes the version out and lists it again, complete. Then it acknowledges the page (acknowledgeFeed): once
// every peer has, and a version is still incomplete, nobody has its bytes, and the hub drops it.

import { isStoreError, type ChunkRef } from '../../store/index.ts';
import type { SyncClient } from './client.ts';
import type { SyncModel } from './model.ts';
import type { ChunkClient } from './transfer.ts';
import { uploadMissing } from './transfer.ts';
import type { RemoteFile } from './wire.ts';
import { errorMessage, isConnectionError } from './errors.ts';

/**
 * Uploads the chunks of `files` that this Pi holds and the hub lacks; returns how many went. A chunk that went away here
 * meanwhile (evicted, or rotten) is logged: this Pi does not have it, another peer may. Any other error is thrown,
 * whether the connection was lost or the hub refused the upload (say, its disk is full): the session ends before the
 * cursor passes the page, so this Pi does not acknowledge it (the hub would drop a version this Pi can complete), and
 * the next session sends the bytes again.
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
    if (signal?.aborted || !isStoreError(err)) throw err;
    m.log.warn({ files: files.length, first: files[0]!.path, err: errorMessage(err) }, 'sync could not send the hub the bytes it lost: they are gone here too');
    return 0;
  }
}

/**
 * Tells the hub that this Pi has applied its feed of index `indexId` up to `sequence`, and sent what it held of the
 * incomplete versions up to there (SyncService.Acknowledge; only to a hub that lists "changes.acknowledge"). A lost
 * connection is thrown; any other failure is logged: the next such page, or the next session, acknowledges again.
 */
export async function acknowledgeFeed(m: SyncModel, client: Pick<SyncClient, 'acknowledge'>, indexId: string, sequence: number, signal?: AbortSignal): Promise<void> {
  try {
    await client.acknowledge({ peerId: m.state.peerId, indexId, sequence: BigInt(sequence) }, { signal, timeoutMs: 15_000 });
  } catch (err) {
    if (signal?.aborted || isConnectionError(err)) throw err;
    m.log.warn({ sequence, err: errorMessage(err) }, 'sync could not acknowledge the hub\'s feed');
  }
}

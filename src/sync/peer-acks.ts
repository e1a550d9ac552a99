// The peers a hub knows (every peer id that said Hello) and how far each has acknowledged its change feed
// (SyncService.Acknowledge), in the sublevel sync-peers of the daemon's LevelDB. A pi acknowledges once it has uploaded
// whatever it held of the versions the feed marked incomplete; when every known peer has acknowledged past such a
// version, nobody has its missing bytes any more (lost-versions.ts dropUnreachable). A peer that never comes back keeps
// that version waiting: it may hold the bytes.

import type { ClassicLevel } from 'classic-level';

interface PeerAck {
  /** The hub's index id the sequence belongs to ('' before the first acknowledgement). */
  indexId: string;
  sequence: number;
  /** When the peer last said Hello or acknowledged (ms since the epoch). */
  at: number;
}

type Db = ClassicLevel<string, string>;
type Peers = ReturnType<typeof peersOf>;

const peersOf = (db: Db) => db.sublevel<string, PeerAck>('sync-peers', { valueEncoding: 'json' });
/** Written through to disk before the answer (classic-level's option; abstract-level's types lack it). */
const DURABLY = { sync: true } as never;

export class PeerAcks {
  readonly #db: Peers;
  readonly #peers: Map<string, PeerAck>;

  private constructor(db: Peers, peers: Map<string, PeerAck>) {
    this.#db = db;
    this.#peers = peers;
  }

  static async open(db: Db): Promise<PeerAcks> {
    const sub = peersOf(db);
    const peers = new Map<string, PeerAck>();
    for await (const [id, ack] of sub.iterator()) peers.set(id, ack);
    return new PeerAcks(sub, peers);
  }

  /** A peer said Hello: known from now on. */
  async seen(peerId: string): Promise<void> {
    const cur = this.#peers.get(peerId);
    const next = { indexId: cur?.indexId ?? '', sequence: cur?.sequence ?? 0, at: Date.now() };
    this.#peers.set(peerId, next);
    if (!cur) await this.#db.put(peerId, next, DURABLY);
  }

  /** `peerId` has applied the records of index `indexId` up to `sequence` (durable when this resolves). */
  async acknowledge(peerId: string, indexId: string, sequence: number): Promise<void> {
    const cur = this.#peers.get(peerId);
    if (cur && cur.indexId === indexId && cur.sequence >= sequence) return;
    const next = { indexId, sequence, at: Date.now() };
    this.#peers.set(peerId, next);
    await this.#db.put(peerId, next, DURABLY);
  }

  /** Forgets `peerId` (a pi retired for good); false if it was not known. It is known again once it says Hello. */
  async forget(peerId: string): Promise<boolean> {
    if (!this.#peers.delete(peerId)) return false;
    await this.#db.del(peerId, DURABLY);
    return true;
  }

  /** The sequence of index `indexId` every known peer has acknowledged (0: some peer has not, or none is known). */
  floor(indexId: string): number {
    const acked = this.list(indexId).map((p) => p.acknowledged);
    return acked.length === 0 ? 0 : Math.min(...acked);
  }

  /** The known peers, with the sequence of index `indexId` each has acknowledged (0 for none or another index's). */
  list(indexId: string): { peerId: string; acknowledged: number; at: number }[] {
    return [...this.#peers].map(([peerId, p]) => ({ peerId, acknowledged: p.indexId === indexId ? p.sequence : 0, at: p.at }));
  }
}

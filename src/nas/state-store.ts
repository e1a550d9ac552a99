// Persistence of the NAS module in the daemon's LevelDB, sublevel `nas` (JSON values):
//   machine          the state machine document (state, since, reason, wake record, bounded history)
//   snapshot         the last body BaluHost sent with nas-going-offline, as received, and when
//   replay!<sig>     handshake signatures already accepted, until their window closes (replays stay refused
//                    across a restart)
// Machine writes are coalesced: while one write runs, only the newest document waits behind it.
import type { AbstractLevel } from 'abstract-level';
import type { NasMachineDoc } from './state-machine.ts';

export interface StoredSnapshot {
  receivedAt: number;
  /** The body text exactly as BaluHost sent it. */
  body: string;
}

type Json = AbstractLevel<any, string, any>;

export class NasStateStore {
  readonly #db: Json;
  #pending: NasMachineDoc | null = null;
  #writing: Promise<void> | null = null;
  #onError: (err: Error) => void;

  constructor(parent: AbstractLevel<any, any, any>, onError: (err: Error) => void = () => {}) {
    this.#db = parent.sublevel<string, any>('nas', { valueEncoding: 'json' });
    this.#onError = onError;
  }

  async loadMachine(): Promise<NasMachineDoc | null> {
    return ((await this.#db.get('machine')) as NasMachineDoc | undefined) ?? null;
  }

  /** Queues the document; resolves once it (or a newer one) is on disk. */
  saveMachine(doc: NasMachineDoc): Promise<void> {
    this.#pending = doc;
    this.#writing ??= (async () => {
      while (this.#pending) {
        const next = this.#pending;
        this.#pending = null;
        try {
          await this.#db.put('machine', next);
        } catch (err) {
          this.#onError(err as Error);
        }
      }
      this.#writing = null;
    })();
    return this.#writing;
  }

  /** Resolves when every queued write is done. */
  async flush(): Promise<void> {
    while (this.#writing) await this.#writing;
  }

  async saveSnapshot(s: StoredSnapshot): Promise<void> {
    await this.#db.put('snapshot', s);
  }

  async loadSnapshot(): Promise<StoredSnapshot | null> {
    const s = (await this.#db.get('snapshot')) as StoredSnapshot | undefined;
    return s && typeof s.body === 'string' && typeof s.receivedAt === 'number' ? s : null;
  }

  rememberSignature(signature: string, expiresAt: number): void {
    this.#db.put(`replay!${signature}`, expiresAt).catch((err: Error) => this.#onError(err));
  }

  /** Signatures still inside their window; expired ones are deleted. */
  async loadSignatures(now: number): Promise<[string, number][]> {
    const live: [string, number][] = [];
    const dead: string[] = [];
    for await (const [key, exp] of this.#db.iterator({ gte: 'replay!', lt: 'replay"' })) {
      if (typeof exp === 'number' && exp > now) live.push([key.slice('replay!'.length), exp]);
      else dead.push(key);
    }
    if (dead.length) await this.#db.batch(dead.map((key) => ({ type: 'del' as const, key })));
    return live;
  }
}

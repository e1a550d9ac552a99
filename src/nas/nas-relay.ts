// Passes a client's request on to BaluHost when the NAS is online, for the calls that are about the NAS itself (its
// sleep state, its push notifications, its sync schedules): the Pi has nothing of its own to say there while the
// NAS is up, and must not wake it just to ask. `null` means "not online": the caller answers from the Pi.
import type { ClientRequest, NasLink } from '../auth/sign-in.ts';
import { NasUnreachableError, type BaluHostClient, type ForwardResponse } from './baluhost-client.ts';

export class NasRelay {
  readonly #nas: NasLink;
  readonly #client: BaluHostClient;

  constructor(deps: { nas: NasLink; client: BaluHostClient }) {
    this.#nas = deps.nas;
    this.#client = deps.client;
  }

  online(): boolean {
    return this.#nas.online() && this.#nas.url() !== null;
  }

  /**
   * Forwards when the NAS is online (`background`: with `X-Sync-Trigger: auto`, so reading does not end BaluHost's
   * soft sleep); null when it is not, or when it stopped answering in between.
   */
  async ifOnline(method: 'GET' | 'POST', pathAndQuery: string, req: ClientRequest, opts: { background: boolean }): Promise<ForwardResponse | null> {
    if (!this.online()) return null;
    try {
      return await this.#client.forward({
        method, path: pathAndQuery, headers: req.headers, body: method === 'POST' ? req.rawBody : null, clientIp: req.ip,
        background: opts.background, timeoutMs: 5_000, ...(req.signal ? { signal: req.signal } : {}),
      });
    } catch (err) {
      if (err instanceof NasUnreachableError) return null;
      throw err;
    }
  }
}

// RPC peers prove they are paired by sending the shared peer secret as `Authorization: Bearer <secret>`.
// NodeService.GetStatus stays open: a peer (or an operator with buf curl) may ask who we are before pairing.
import { timingSafeEqual, createHash } from 'node:crypto';
import { Code, ConnectError, type Interceptor } from '@connectrpc/connect';
import { toConnectError } from './errors.ts';

/** Methods that answer without the secret. */
export const OPEN_METHODS: ReadonlySet<string> = new Set(['balupi.node.v1.NodeService/GetStatus']);

const digest = (s: string) => createHash('sha256').update(s).digest();

/** Throws UNAUTHENTICATED unless `header` is `Bearer <peerSecret>` (also used by handlers outside Connect). */
export function checkPeerSecret(header: string | undefined, peerSecret: string): void {
  const match = /^Bearer\s+(\S+)$/i.exec((header ?? '').trim());
  // Compare digests so that the comparison time does not depend on the secret's length either.
  if (!match || !timingSafeEqual(digest(match[1]!), digest(peerSecret))) {
    throw new ConnectError(match ? 'wrong peer secret' : 'peer secret required (Authorization: Bearer <BALUPI_PEER_SECRET>)', Code.Unauthenticated);
  }
}

export function peerAuthInterceptor(peerSecret: string, open: ReadonlySet<string> = OPEN_METHODS): Interceptor {
  return (next) => async (req) => {
    if (!open.has(`${req.service.typeName}/${req.method.name}`)) checkPeerSecret(req.header.get('authorization') ?? undefined, peerSecret);
    try {
      const res = await next(req);
      // A server stream's errors surface while its messages are read, after next() has returned: map them there.
      return res.stream ? { ...res, message: mapStreamErrors(res.message) } : res;
    } catch (err) {
      throw toConnectError(err);
    }
  };
}

async function* mapStreamErrors<T>(messages: AsyncIterable<T>): AsyncIterable<T> {
  try {
    yield* messages;
  } catch (err) {
    throw toConnectError(err);
  }
}

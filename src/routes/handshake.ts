// /api/handshake/*: BaluHost's calls when its backend stops and starts (HMAC-signed, no token: the token layer lets
// them through and the signature is checked here), and the two reads of the BaluHost-built Pi dashboard (token).
import type { FastifyPluginAsync, FastifyRequest } from 'fastify';
import type { NasService } from '../nas/service.ts';
import { ApiError } from '../http/errors.ts';

export interface HandshakeRoutesOptions {
  nas: NasService;
}

/** BaluHost's snapshot is ~50 KB at most. */
const BODY_LIMIT = 1024 * 1024;
const EMPTY = Buffer.alloc(0);

export const handshakeRoutes: FastifyPluginAsync<HandshakeRoutesOptions> = async (app, { nas }) => {
  // The signature covers the bytes as sent, so they must reach us untouched (and Python may send NaN, which
  // JSON.parse would refuse): every body arrives as a Buffer.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'buffer', bodyLimit: BODY_LIMIT }, (_req, body, done) => done(null, body));

  const header = (req: FastifyRequest, name: string): string | undefined => {
    const v = req.headers[name];
    return Array.isArray(v) ? v[0] : v;
  };
  const verify = (req: FastifyRequest) => {
    const body = Buffer.isBuffer(req.body) ? req.body : EMPTY;
    const form = nas.verifyHandshake({
      method: req.method,
      path: req.url.split('?')[0]!,
      timestamp: header(req, 'x-balupi-timestamp'),
      signature: header(req, 'x-balupi-signature'),
      body,
    });
    req.log.info({ handshake: req.url, signed: form, bytes: body.length }, 'BaluHost handshake accepted');
    return body;
  };
  const hmacRoute = { config: { public: true }, bodyLimit: BODY_LIMIT };

  app.post('/api/handshake/nas-going-offline', hmacRoute, async (req) => {
    const body = verify(req);
    const { snapshotStored } = await nas.goingOffline(body);
    // No Pi-hole switching in this version: dns_switched tells BaluHost so.
    return { acknowledged: true, dns_switched: false, snapshot_stored: snapshotStored, nas_state: nas.state };
  });

  app.post('/api/handshake/nas-coming-online', hmacRoute, async (req) => {
    verify(req);
    nas.comingOnline();
    // The upload queue flushes asynchronously (listeners of the 'online' event): BaluHost waits only 5 s.
    return { acknowledged: true, inbox_flushed: false, files_transferred: 0, dns_switched: false, upload_flush: 'triggered', nas_state: nas.state };
  });

  app.get('/api/handshake/status', async () => nas.handshakeStatus());

  app.get('/api/handshake/snapshot', async () => {
    const snap = await nas.snapshot();
    if (!snap) throw new ApiError(404, 'No snapshot available');
    return snap.body;
  });
};

// The sign-in routes in a real Fastify app (inject), with a real LevelDB user cache and the real NasService of
// test/nas/testbed.ts: the BaluHost stand-in on 127.0.0.1, a manual clock, Wake-on-LAN to a UDP listener on 127.0.0.1.
import { join } from 'node:path';
import { ClassicLevel } from 'classic-level';
import type { FastifyInstance } from 'fastify';
import { buildApp } from '../../src/http/app.ts';
import { TokenVerifier } from '../../src/auth/tokens.ts';
import { UserCache } from '../../src/auth/user-cache.ts';
import { SignInService, nasLinkFor } from '../../src/auth/sign-in.ts';
import { BaluHostClient } from '../../src/nas/baluhost-client.ts';
import { RateLimiter } from '../../src/http/rate-limit.ts';
import { authRoutes } from '../../src/routes/auth.ts';
import { pairingRoutes } from '../../src/routes/pairing.ts';
import { createLogger } from '../../src/log.ts';
import { SyncDevices } from '../../src/sync-api/devices.ts';
import { tempDir } from '../helpers/daemon-process.ts';
import { testbed, type Testbed } from '../nas/testbed.ts';

export interface Harness {
  app: FastifyInstance;
  users: UserCache;
  verifier: TokenVerifier;
  /** The Pi's record of BaluDesk devices (register-desktop writes it). */
  devices: SyncDevices;
  /** The NAS testbed; null for a standalone Pi (no NAS). */
  tb: Testbed | null;
  close(): Promise<void>;
}

export const EMULATOR_SECRET = 'baluhost-emulator-secret-key-of-32-chars';

export async function harness(opts: { standalone?: boolean; nas?: Parameters<typeof testbed>[0] } = {}): Promise<Harness> {
  const tb = opts.standalone ? null : await testbed(opts.nas);
  const dir = await tempDir('balupi-auth-');
  const db = new ClassicLevel<string, string>(join(dir.path, 'db'), { valueEncoding: 'utf8' });
  await db.open();
  const log = createLogger({ logLevel: 'silent', logFormat: 'json' });
  const users = new UserCache(db);
  const verifier = new TokenVerifier(tb?.emu.accounts.secret ?? EMULATOR_SECRET);
  const link = nasLinkFor(tb?.nas ?? null);
  const signIn = new SignInService({ users, tokens: verifier, nas: link, client: new BaluHostClient({ url: link.url, timeoutMs: 2_000 }), log });
  const limiter = new RateLimiter();
  const devices = new SyncDevices(db);
  const app = await buildApp({
    logger: log,
    verifier,
    plugins: [(a) => a.register(authRoutes, { signIn, limiter }), (a) => a.register(pairingRoutes, { signIn, limiter, devices })],
  });
  return {
    app, users, verifier, devices, tb,
    async close() {
      await app.close();
      await tb?.close();
      await db.close();
      await dir.remove();
    },
  };
}

/** Takes the NAS away: BaluHost stops answering and the plug reads 8 W until the state is standby. */
export async function sleepNas(tb: Testbed): Promise<void> {
  await tb.emu.goDown();
  await tb.run(4, 8);
  if (tb.nas.state !== 'standby') throw new Error(`NAS state is ${tb.nas.state}, not standby`);
}

/** Header and payload of a JWT, as the JSON texts they are encoded from. */
export function jwtParts(token: string): { header: string; payload: string; claims: Record<string, unknown> } {
  const [h, p] = token.split('.') as [string, string];
  const payload = Buffer.from(p, 'base64url').toString('utf8');
  return { header: Buffer.from(h, 'base64url').toString('utf8'), payload, claims: JSON.parse(payload) };
}

export const json = (body: unknown) => ({ 'content-type': 'application/json' as const, body: JSON.stringify(body) });

// Secrets that must exist for the daemon to run but that a newcomer has not configured yet. They are generated once
// and kept in the data directory (mode 0600) so that tokens and pairings stay valid across restarts.
import { randomBytes } from 'node:crypto';
import { mkdir, readFile, writeFile, rename } from 'node:fs/promises';
import { join } from 'node:path';

export interface Secrets {
  jwtSecret: string;
  peerSecret: string;
  /** Which of them came from the data directory rather than the configuration. */
  generated: { jwtSecret: boolean; peerSecret: boolean };
}

const FILE = 'secrets.json';

export async function loadSecrets(dataDir: string, configured: { jwtSecret: string | null; peerSecret: string | null }): Promise<Secrets> {
  if (configured.jwtSecret && configured.peerSecret) {
    return { jwtSecret: configured.jwtSecret, peerSecret: configured.peerSecret, generated: { jwtSecret: false, peerSecret: false } };
  }
  const path = join(dataDir, FILE);
  let stored: { jwt_secret?: string; peer_secret?: string } = {};
  try {
    stored = JSON.parse(await readFile(path, 'utf8'));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw new Error(`cannot read ${path}: ${(err as Error).message}`);
  }
  const next = {
    jwt_secret: stored.jwt_secret ?? randomBytes(32).toString('base64url'),
    peer_secret: stored.peer_secret ?? randomBytes(24).toString('base64url'),
  };
  if (next.jwt_secret !== stored.jwt_secret || next.peer_secret !== stored.peer_secret) {
    await mkdir(dataDir, { recursive: true });
    await writeFile(`${path}.tmp`, JSON.stringify(next, null, 2) + '\n', { mode: 0o600 });
    await rename(`${path}.tmp`, path);
  }
  return {
    jwtSecret: configured.jwtSecret ?? next.jwt_secret,
    peerSecret: configured.peerSecret ?? next.peer_secret,
    generated: { jwtSecret: !configured.jwtSecret, peerSecret: !configured.peerSecret },
  };
}

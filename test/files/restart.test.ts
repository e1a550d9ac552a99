// A chunked upload survives a real restart of the daemon (BaluHost loses its in-memory sessions): chunks sent before
// the restart are kept, the sequence continues where it stopped, and complete stores the whole file.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { SignJWT } from 'jose';
import { startDaemonProcess, tempDir } from '../helpers/daemon-process.ts';

const JWT_SECRET = 'a-baluhost-secret-key-of-32-chars!!';

test('chunks sent before a restart count after it; complete stores the whole file', async () => {
  const dir = await tempDir();
  const env = { BALUPI_JWT_SECRET: JWT_SECRET, BALUPI_PEER_SECRET: 'pairing-secret' };
  const now = Math.floor(Date.now() / 1000);
  const token = await new SignJWT({ sub: '5', username: 'alice', role: 'user', type: 'access', iat: now, exp: now + 900 }).setProtectedHeader({ alg: 'HS256', typ: 'JWT' }).sign(new TextEncoder().encode(JWT_SECRET));
  const headers = { authorization: `Bearer ${token}` };
  const data = randomBytes(3_000_000);
  const call = (port: number, url: string, body?: Buffer | object) =>
    fetch(`http://127.0.0.1:${port}${url}`, {
      method: 'POST',
      headers: { ...headers, 'content-type': Buffer.isBuffer(body) ? 'application/octet-stream' : 'application/json' },
      ...(body ? { body: Buffer.isBuffer(body) ? body : JSON.stringify(body) } : {}),
    });
  let d = await startDaemonProcess({ env, dataDir: dir.path });
  try {
    const init: any = await (await call(d.ports.http, '/api/files/upload/chunked/init', { filename: 'big.iso', total_size: data.length, target_path: 'alice' })).json();
    const id = init.upload_id;
    assert.equal((await call(d.ports.http, `/api/files/upload/chunked/${id}/chunk?chunk_index=0`, data.subarray(0, 1_000_000))).status, 200);
    assert.equal((await call(d.ports.http, `/api/files/upload/chunked/${id}/chunk?chunk_index=1`, data.subarray(1_000_000, 2_000_000))).status, 200);
    await d.stop();
    d = await startDaemonProcess({ env, dataDir: dir.path });
    const again = await call(d.ports.http, `/api/files/upload/chunked/${id}/chunk?chunk_index=1`, data.subarray(1_000_000, 2_000_000));
    assert.deepEqual([again.status, await again.json()], [400, { detail: 'Expected chunk 2, got 1' }], 'the session remembers where it was');
    const last = await call(d.ports.http, `/api/files/upload/chunked/${id}/chunk?chunk_index=2`, data.subarray(2_000_000));
    assert.deepEqual(await last.json(), { received_bytes: data.length });
    const done = await call(d.ports.http, `/api/files/upload/chunked/${id}/complete`);
    assert.deepEqual(await done.json(), { path: 'alice/big.iso', size: data.length });
    const got = Buffer.from(await (await fetch(`http://127.0.0.1:${d.ports.http}/api/files/download/alice/big.iso`, { headers })).arrayBuffer());
    assert.ok(got.equals(data));
    const list: any = await (await fetch(`http://127.0.0.1:${d.ports.http}/api/files/list?path=alice`, { headers })).json();
    assert.equal(list.files[0].checksum, createHash('sha256').update(data).digest('hex'));
  } finally {
    await d.stop();
    await dir.remove();
  }
});

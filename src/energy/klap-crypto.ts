// KLAP v2 key schedule and framing (the protocol Tapo P110/P115 firmware speaks on the LAN).
// Pure functions over Buffers so the client transport and the test emulator derive the same keys; the emulator is
// additionally checked against tp-link-tapo-connect's independent KLAP implementation, so a mistake here cannot hide
// behind a symmetric mistake on the other side.

import { createCipheriv, createDecipheriv, createHash } from 'node:crypto';

export const KLAP_SEED_BYTES = 16;
export const KLAP_HASH_BYTES = 32;

const sha256 = (...parts: Buffer[]): Buffer => {
  const h = createHash('sha256');
  for (const p of parts) h.update(p);
  return h.digest();
};
const sha1 = (text: string): Buffer => createHash('sha1').update(text, 'utf8').digest();

/** v2 auth hash: sha256(sha1(username) ‖ sha1(password)). Username is the TP-Link account e-mail. */
export function klapAuthHash(username: string, password: string): Buffer {
  return sha256(sha1(username), sha1(password));
}

/** What the plug proves in its handshake1 answer: sha256(local_seed ‖ remote_seed ‖ auth_hash). */
export function klapServerProof(localSeed: Buffer, remoteSeed: Buffer, authHash: Buffer): Buffer {
  return sha256(localSeed, remoteSeed, authHash);
}

/** What the client proves in handshake2: sha256(remote_seed ‖ local_seed ‖ auth_hash). */
export function klapClientProof(localSeed: Buffer, remoteSeed: Buffer, authHash: Buffer): Buffer {
  return sha256(remoteSeed, localSeed, authHash);
}

export interface KlapKeys {
  key: Buffer; // AES-128 key
  ivPrefix: Buffer; // first 12 bytes of the IV; the last 4 are the big-endian sequence number
  sig: Buffer; // 28-byte signing prefix
  initialSeq: number; // signed 32-bit
}

export function klapDeriveKeys(localSeed: Buffer, remoteSeed: Buffer, authHash: Buffer): KlapKeys {
  const iv = sha256(Buffer.from('iv'), localSeed, remoteSeed, authHash);
  return {
    key: sha256(Buffer.from('lsk'), localSeed, remoteSeed, authHash).subarray(0, 16),
    ivPrefix: iv.subarray(0, 12),
    sig: sha256(Buffer.from('ldk'), localSeed, remoteSeed, authHash).subarray(0, 28),
    initialSeq: iv.readInt32BE(28),
  };
}

/** Sequence numbers are signed 32-bit and wrap like the firmware's counter instead of throwing. */
export function nextSeq(seq: number): number {
  return seq === 0x7fffffff ? -0x80000000 : seq + 1;
}

function seqBytes(seq: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeInt32BE(seq);
  return b;
}

function iv(keys: KlapKeys, seq: number): Buffer {
  return Buffer.concat([keys.ivPrefix, seqBytes(seq)]);
}

/** One KLAP frame: sha256(sig ‖ seq ‖ ciphertext) ‖ AES-128-CBC(PKCS7(plaintext)). Used for requests and answers. */
export function klapSeal(keys: KlapKeys, seq: number, plaintext: Buffer): Buffer {
  const c = createCipheriv('aes-128-cbc', keys.key, iv(keys, seq));
  const ciphertext = Buffer.concat([c.update(plaintext), c.final()]);
  return Buffer.concat([sha256(keys.sig, seqBytes(seq), ciphertext), ciphertext]);
}

/** Checks the signature of a frame; false for a short frame or a signature that does not match. */
export function klapVerify(keys: KlapKeys, seq: number, frame: Buffer): boolean {
  if (frame.length < KLAP_HASH_BYTES + 16) return false;
  const expected = sha256(keys.sig, seqBytes(seq), frame.subarray(KLAP_HASH_BYTES));
  return expected.equals(frame.subarray(0, KLAP_HASH_BYTES));
}

/** Decrypts a frame (throws on bad padding, i.e. wrong key or sequence). */
export function klapOpen(keys: KlapKeys, seq: number, frame: Buffer): Buffer {
  const d = createDecipheriv('aes-128-cbc', keys.key, iv(keys, seq));
  return Buffer.concat([d.update(frame.subarray(KLAP_HASH_BYTES)), d.final()]);
}

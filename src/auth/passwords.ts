// Salted slow password hashes: for local users, and for BaluHost users after one sign-in that BaluHost confirmed,
// so the same password works at the Pi while the NAS sleeps. scrypt from node:crypto (no dependency; runs in the
// libuv thread pool, so a hash never blocks the event loop). N=2^14, r=8, p=1 is the "interactive" setting: 16 MiB
// and a fraction of a second on a Pi 3B+'s Cortex-A53, next to the 1 GB it has and a login rate of 5 a minute.
// The encoded form carries its parameters, so they can be raised later without invalidating stored hashes.
import { randomBytes, scrypt, timingSafeEqual, type ScryptOptions } from 'node:crypto';

const PARAMS = { N: 2 ** 14, r: 8, p: 1 } as const;
const KEY_LEN = 32;
const SALT_LEN = 16;
/** Large enough for N=2^14 (128·N·r = 16 MiB) with headroom; scrypt refuses to run above maxmem. */
const MAX_MEM = 64 * 1024 * 1024;

function derive(password: string, salt: Buffer, opts: ScryptOptions & { N: number }): Promise<Buffer> {
  return new Promise((resolve, reject) =>
    scrypt(password.normalize('NFC'), salt, KEY_LEN, { ...opts, maxmem: MAX_MEM }, (err, key) => (err ? reject(err) : resolve(key))),
  );
}

/** `scrypt$N$r$p$salt$hash` (base64url). */
export async function hashPassword(password: string): Promise<string> {
  const salt = randomBytes(SALT_LEN);
  const key = await derive(password, salt, PARAMS);
  return ['scrypt', PARAMS.N, PARAMS.r, PARAMS.p, salt.toString('base64url'), key.toString('base64url')].join('$');
}

/** Constant-time comparison; false for anything that is not a hash of ours (never throws for bad input). */
export async function verifyPassword(password: string, encoded: string): Promise<boolean> {
  const parts = encoded.split('$');
  if (parts.length !== 6 || parts[0] !== 'scrypt') return false;
  const [N, r, p] = parts.slice(1, 4).map(Number) as [number, number, number];
  if (![N, r, p].every((x) => Number.isInteger(x) && x > 0) || N > 2 ** 20 || r > 32 || p > 16) return false;
  const salt = Buffer.from(parts[4]!, 'base64url');
  const expected = Buffer.from(parts[5]!, 'base64url');
  if (expected.length !== KEY_LEN) return false;
  const key = await derive(password, salt, { N, r, p });
  return timingSafeEqual(key, expected);
}

/** A hash of nothing anyone knows: unknown users are checked against it so that their answer takes as long as a
 *  known user's (BaluHost does the same with a dummy bcrypt check). */
let dummy: Promise<string> | null = null;
export async function burnTime(password: string): Promise<false> {
  dummy ??= hashPassword(randomBytes(16).toString('hex'));
  await verifyPassword(password, await dummy);
  return false;
}

/** BaluHost's password policy for new accounts (register / change-password): 8–128 characters with upper case,
 *  lower case and a digit. Returns what is wrong, or null. */
export function passwordProblem(password: string): string | null {
  if (password.length < 8 || password.length > 128) return 'must be 8 to 128 characters long';
  if (!/[A-Z]/.test(password) || !/[a-z]/.test(password) || !/\d/.test(password)) {
    return 'must contain an upper-case letter, a lower-case letter and a digit';
  }
  return null;
}

/** BaluHost's username rule: 3–32 characters of A-Z, a-z, 0-9, _ and -. */
export function usernameProblem(name: string): string | null {
  return /^[A-Za-z0-9_-]{3,32}$/.test(name) ? null : 'must be 3 to 32 characters of A-Z, a-z, 0-9, _ and -';
}

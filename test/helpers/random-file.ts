// Incompressible test data written in pieces, so that files of any size never sit in memory whole (tests and benches).
import fs from 'node:fs/promises';
import path from 'node:path';
import { randomBytes } from 'node:crypto';

const PIECE = 4 * 1024 * 1024;

/** Writes `bytes` of random data to `file`, creating its directory. */
export async function writeRandomFile(file: string, bytes: number): Promise<void> {
  await fs.mkdir(path.dirname(file), { recursive: true });
  const fh = await fs.open(file, 'w');
  try {
    for (let off = 0; off < bytes; off += PIECE) await fh.write(randomBytes(Math.min(PIECE, bytes - off)));
  } finally {
    await fh.close();
  }
}

// One thumbnail, from a stream of the original's bytes to a file: decode (EXIF orientation applied), shrink to fit a
// size × size box (never enlarged), encode, write under a temporary name, fsync, rename. A reader therefore sees
// either no thumbnail or a whole one, also after a crash.

import { createWriteStream } from 'node:fs';
import { rename, rm, stat } from 'node:fs/promises';
import { pipeline } from 'node:stream/promises';
import type { Readable } from 'node:stream';
import type { ThumbFormat } from './formats.ts';

type Sharp = typeof import('sharp').default;

/**
 * Largest decoded image accepted, in pixels (2^27 ≈ 134 MP: a 108 MP phone photo passes). Above it sharp refuses
 * before decoding, so a crafted "decompression bomb" cannot take the Pi's 1 GB.
 */
export const MAX_INPUT_PIXELS = 2 ** 27;

/** sharp's input from a stream is collected in memory before decoding: originals above this are not thumbnailed. */
export const MAX_INPUT_BYTES = 64 * 1024 * 1024;

let loading: Promise<Sharp> | null = null;

/**
 * sharp, loaded at the first thumbnail: libvips costs ~23 MB of RSS, which an idle Pi that never shows a thumbnail
 * should not pay. Process-wide settings, once: one libvips thread per image (the job queue runs one image per core
 * instead, so a burst cannot start cores × cores threads), and no libvips operation cache (each image is decoded
 * once; on a 1 GB Pi the cache's default 50 MB is better left to the page cache).
 */
export function loadSharp(): Promise<Sharp> {
  const load = (loading ??= import('sharp').then(({ default: sharp }) => {
    sharp.concurrency(1);
    sharp.cache(false);
    return sharp;
  }));
  return load;
}

/** Writes the thumbnail of `source` to `target` atomically; rejects (and leaves nothing behind) if sharp fails. */
export async function renderThumbnail(source: Readable, target: string, size: number, format: ThumbFormat): Promise<number> {
  const sharp = await loadSharp();
  const transform = sharp({ limitInputPixels: MAX_INPUT_PIXELS, sequentialRead: true })
    .autoOrient()
    .resize(size, size, { fit: 'inside', withoutEnlargement: true });
  if (format === 'webp') transform.webp({ quality: 80, effort: 2 });
  else transform.jpeg({ quality: 80, progressive: false, mozjpeg: false });
  const tmp = `${target}.${process.pid}.${Math.random().toString(36).slice(2)}.tmp`;
  try {
    // flush: fsync before close, so the rename below never publishes a file whose bytes are not on the disk yet.
    await pipeline(source, transform, createWriteStream(tmp, { flush: true }));
    const { size: bytes } = await stat(tmp);
    await rename(tmp, target);
    return bytes;
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
}

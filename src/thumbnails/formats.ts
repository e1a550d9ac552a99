// What a thumbnail request can ask for: which files are images sharp decodes, which sizes exist, which output format
// an Accept header gets. Pure functions, shared by the service (eager generation) and the route.

/** Output formats: WebP for clients that say they take it, JPEG (which every client decodes) otherwise. */
export type ThumbFormat = 'webp' | 'jpeg';

export const CONTENT_TYPE: Record<ThumbFormat, string> = { webp: 'image/webp', jpeg: 'image/jpeg' };

/**
 * Longest side of a thumbnail, in pixels. A requested size is clamped to 64..1024 and rounded up to the next of these,
 * so each photo has at most five cached sizes per format however many sizes clients ask for.
 */
export const SIZES = [64, 128, 256, 512, 1024] as const;
export const DEFAULT_SIZE = 256;

/**
 * Extensions of the image formats the bundled libvips decodes (HEIC only where it was encoded with AV1: the prebuilt
 * libvips has no HEVC decoder, so most iPhone photos fail to decode and answer 415). SVG is left out on purpose: it
 * is a document that can reference other files, not a photo.
 */
const IMAGE_EXTENSIONS = new Set(['jpg', 'jpeg', 'jpe', 'jfif', 'png', 'webp', 'gif', 'avif', 'tif', 'tiff', 'heic', 'heif']);

export function isImagePath(path: string): boolean {
  const name = path.slice(path.lastIndexOf('/') + 1);
  const dot = name.lastIndexOf('.');
  return dot > 0 && IMAGE_EXTENSIONS.has(name.slice(dot + 1).toLowerCase());
}

export function sizeBucket(requested: number): number {
  for (const s of SIZES) if (requested <= s) return s;
  return SIZES[SIZES.length - 1]!;
}

/** WebP if the Accept header lists image/webp with a non-zero quality not below image/jpeg's, else JPEG. */
export function formatFor(accept: string | undefined): ThumbFormat {
  if (!accept) return 'jpeg';
  let webp = 0;
  let jpeg = 0;
  for (const part of accept.split(',')) {
    const [type, ...params] = part.trim().toLowerCase().split(';');
    const q = params.map((p) => p.trim()).find((p) => p.startsWith('q='));
    const quality = q === undefined ? 1 : Number(q.slice(2));
    if (!Number.isFinite(quality)) continue;
    if (type === 'image/webp') webp = Math.max(webp, quality);
    else if (type === 'image/jpeg') jpeg = Math.max(jpeg, quality);
  }
  // An explicit image/webp wins unless JPEG is explicitly preferred; wildcards alone keep the safe default, JPEG.
  return webp > 0 && webp >= jpeg ? 'webp' : 'jpeg';
}

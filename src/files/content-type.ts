// A file's media type from its name, as BaluHost's Python `mimetypes.guess_type` gives it for the names people keep
// on a NAS (listings show it as `mime_type`, downloads send it as Content-Type). Unknown extensions: null in listings,
// application/octet-stream on the wire.

const BY_EXTENSION: Record<string, string> = {
  // text and documents
  txt: 'text/plain', log: 'text/plain', md: 'text/markdown', csv: 'text/csv', tsv: 'text/tab-separated-values',
  html: 'text/html', htm: 'text/html', css: 'text/css', js: 'text/javascript', mjs: 'text/javascript', xml: 'text/xml',
  json: 'application/json', yaml: 'application/yaml', yml: 'application/yaml', rtf: 'application/rtf',
  pdf: 'application/pdf', epub: 'application/epub+zip',
  doc: 'application/msword', docx: 'application/vnd.openxmlformats-officedocument.wordprocessingml.document',
  xls: 'application/vnd.ms-excel', xlsx: 'application/vnd.openxmlformats-officedocument.spreadsheetml.sheet',
  ppt: 'application/vnd.ms-powerpoint', pptx: 'application/vnd.openxmlformats-officedocument.presentationml.presentation',
  odt: 'application/vnd.oasis.opendocument.text', ods: 'application/vnd.oasis.opendocument.spreadsheet',
  odp: 'application/vnd.oasis.opendocument.presentation',
  // images
  jpg: 'image/jpeg', jpeg: 'image/jpeg', png: 'image/png', gif: 'image/gif', webp: 'image/webp', bmp: 'image/bmp',
  svg: 'image/svg+xml', ico: 'image/vnd.microsoft.icon', tif: 'image/tiff', tiff: 'image/tiff', heic: 'image/heic',
  heif: 'image/heif', avif: 'image/avif',
  // audio and video
  mp3: 'audio/mpeg', m4a: 'audio/mp4', aac: 'audio/aac', wav: 'audio/x-wav', flac: 'audio/flac', ogg: 'audio/ogg',
  opus: 'audio/opus', mp4: 'video/mp4', m4v: 'video/mp4', mov: 'video/quicktime', mkv: 'video/x-matroska',
  webm: 'video/webm', avi: 'video/x-msvideo', mpg: 'video/mpeg', mpeg: 'video/mpeg', '3gp': 'video/3gpp',
  // archives and binaries
  zip: 'application/zip', gz: 'application/gzip', tgz: 'application/gzip', tar: 'application/x-tar',
  bz2: 'application/x-bzip2', xz: 'application/x-xz', '7z': 'application/x-7z-compressed', rar: 'application/vnd.rar',
  iso: 'application/x-iso9660-image', apk: 'application/vnd.android.package-archive', exe: 'application/x-msdownload',
  wasm: 'application/wasm', sh: 'application/x-sh',
};

/** The media type for a file name, or null if the extension is unknown. */
export function guessMediaType(name: string): string | null {
  const dot = name.lastIndexOf('.');
  if (dot <= 0 || dot === name.length - 1) return null;
  return BY_EXTENSION[name.slice(dot + 1).toLowerCase()] ?? null;
}

/** The Content-Type header for a download (text types in UTF-8, as Starlette sends them). */
export function contentTypeFor(name: string): string {
  const t = guessMediaType(name);
  if (!t) return 'application/octet-stream';
  return t.startsWith('text/') ? `${t}; charset=utf-8` : t;
}

// The answer a Tapo device sends to the port-20002 discovery probe: a 16-byte header (version 2, message type 0,
// op code 1, payload length, flags 0x11, a random serial, CRC32 of the whole datagram computed with the CRC field
// holding 0x5a6b7c8d) followed by the JSON result.

import { randomBytes } from 'node:crypto';

export function discoveryFrame(payload: unknown): Buffer {
  const body = Buffer.from(JSON.stringify(payload));
  const header = Buffer.alloc(16);
  header.writeUInt8(2, 0);
  header.writeUInt8(0, 1);
  header.writeUInt16BE(1, 2);
  header.writeUInt16BE(body.length, 4);
  header.writeUInt8(0x11, 6);
  header.writeUInt32BE(randomBytes(4).readUInt32BE(0), 8);
  header.writeUInt32BE(0x5a6b7c8d, 12);
  const frame = Buffer.concat([header, body]);
  frame.writeUInt32BE(crc32(frame), 12);
  return frame;
}

const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

export function crc32(buf: Buffer): number {
  let c = 0xffffffff;
  for (const byte of buf) c = (CRC_TABLE[(c ^ byte) & 0xff] ?? 0) ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

// A port on 127.0.0.1 that was free a moment ago, for a process the test starts later (a hub restarted on the port
// its pi knows, an mDNS group both ends must name).
import dgram from 'node:dgram';
import net from 'node:net';
import { once } from 'node:events';

export async function freeUdpPort(): Promise<number> {
  const s = dgram.createSocket('udp4');
  s.bind(0, '127.0.0.1');
  await once(s, 'listening');
  const port = s.address().port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

export async function freeTcpPort(): Promise<number> {
  const s = net.createServer().listen(0, '127.0.0.1');
  await once(s, 'listening');
  const port = (s.address() as net.AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

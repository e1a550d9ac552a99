// A UDP listener on 127.0.0.1 that keeps every datagram it receives (Wake-on-LAN tests point their target here).
import { createSocket, type Socket } from 'node:dgram';
import { once } from 'node:events';

export interface UdpListener {
  socket: Socket;
  /** `127.0.0.1:<port>` */
  address: string;
  packets: Buffer[];
  /** The oldest datagram not yet returned by next() (waits if there is none). */
  next(): Promise<Buffer>;
  /** Sends a marker from another socket and resolves once it arrived: everything sent before it is in `packets`
   *  (loopback queues a datagram on the receiving socket before sendto returns). Returns the packets before it. */
  drain(): Promise<Buffer[]>;
  close(): Promise<void>;
}

export async function udpListener(): Promise<UdpListener> {
  const socket = createSocket('udp4');
  socket.bind(0, '127.0.0.1');
  await once(socket, 'listening');
  const packets: Buffer[] = [];
  const waiters: (() => void)[] = [];
  let cursor = 0;
  socket.on('message', (msg) => {
    packets.push(msg);
    for (const w of waiters.splice(0)) w();
  });
  const arrival = () => new Promise<void>((resolve) => waiters.push(resolve));
  const port = socket.address().port;
  return {
    socket,
    address: `127.0.0.1:${port}`,
    packets,
    async next() {
      while (cursor >= packets.length) await arrival();
      return packets[cursor++]!;
    },
    async drain() {
      const marker = Buffer.from(`marker-${Math.random()}`);
      const s = createSocket('udp4');
      await new Promise<void>((resolve, reject) => s.send(marker, port, '127.0.0.1', (err) => (err ? reject(err) : resolve())));
      s.close();
      while (!packets.some((p) => p.equals(marker))) await arrival();
      return packets.slice(0, packets.findIndex((p) => p.equals(marker)));
    },
    close: () => new Promise<void>((resolve) => socket.close(() => resolve())),
  };
}

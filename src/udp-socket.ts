// A UDP socket for sending to `host` (IPv4 or IPv6), bound to an ephemeral port and allowed to reach broadcast
// addresses (Wake-on-LAN and Tapo discovery default to 255.255.255.255; the option changes nothing for a unicast
// target such as the loopback address tests use). The caller closes it.
import { createSocket, type Socket } from 'node:dgram';
import { isIPv6 } from 'node:net';

export async function openBroadcastSocket(host: string): Promise<Socket> {
  const socket = createSocket(isIPv6(host) ? 'udp6' : 'udp4');
  try {
    await new Promise<void>((resolve, reject) => {
      socket.once('error', reject);
      socket.bind(0, () => {
        socket.off('error', reject);
        resolve();
      });
    });
    socket.setBroadcast(true);
    return socket;
  } catch (err) {
    socket.close();
    throw err;
  }
}

/**
 * Small RTP-over-UDP pieces shared by the RTSP client and the audio transcoder: where an RTP
 * packet's payload is, and an even/odd UDP port pair (RTP and RTCP, RFC 3550 §11).
 */
import { createSocket, type Socket } from 'node:dgram';
import { randomInt } from 'node:crypto';

/** The payload of an RTP packet (after CSRCs and header extension, before padding), or undefined. */
export function rtpPayload(packet: Buffer): Buffer | undefined {
  if (packet.length < 12 || packet[0] >> 6 !== 2) return undefined;
  let offset = 12 + (packet[0] & 0x0f) * 4;
  if ((packet[0] & 0x10) !== 0) {
    if (packet.length < offset + 4) return undefined;
    offset += 4 + packet.readUInt16BE(offset + 2) * 4;
  }
  let end = packet.length;
  if ((packet[0] & 0x20) !== 0) end -= packet[packet.length - 1];
  return end > offset ? packet.subarray(offset, end) : undefined;
}

/** Binds two UDP sockets on an even port and the odd one above it, on `address`. */
export async function bindPortPair(address: string): Promise<[Socket, Socket]> {
  const family = address.includes(':') ? 'udp6' : 'udp4';
  for (let tries = 0; tries < 50; tries++) {
    const port = 2 * randomInt(10000, 32000);
    const rtp = createSocket(family);
    const rtcp = createSocket(family);
    try {
      await bind(rtp, port, address);
      await bind(rtcp, port + 1, address);
      return [rtp, rtcp];
    } catch {
      rtp.close();
      rtcp.close();
    }
  }
  throw new Error(`could not bind a UDP port pair on ${address}`);
}

function bind(socket: Socket, port: number, address: string): Promise<void> {
  return new Promise((resolve, reject) => {
    socket.once('error', reject);
    socket.bind(port, address, () => {
      socket.off('error', reject);
      resolve();
    });
  });
}

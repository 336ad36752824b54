/**
 * Creates werift peer connections configured for a server: no STUN/TURN (the server's own
 * addresses are its candidates), the configured UDP port range, loopback candidates on demand.
 */
import { createSecretKey, type KeyObject } from 'node:crypto';
import { RTCPeerConnection, useAbsSendTime, useSdesMid, type RTCRtpCodecParameters } from 'werift';
import { useFastRtpHeaderParser } from './rtp-header.ts';

/** ICE settings shared by every peer connection of a node. */
export interface IceSettings {
  portRange: [number, number] | undefined;
  announcedAddresses: string[];
  includeLoopback: boolean;
}

export interface PeerOptions {
  ice: IceSettings;
  video: RTCRtpCodecParameters[];
  audio: RTCRtpCodecParameters[];
}

export function createPeerConnection(options: PeerOptions): RTCPeerConnection {
  useFastRtpHeaderParser();
  const additional = [...options.ice.announcedAddresses];
  if (options.ice.includeLoopback && !additional.includes('127.0.0.1')) additional.push('127.0.0.1');
  return new RTCPeerConnection({
    iceServers: [],
    icePortRange: options.ice.portRange,
    iceAdditionalHostAddresses: additional,
    iceUseIpv6: false,
    iceUseTcp: false,
    bundlePolicy: 'max-bundle',
    codecs: { video: options.video, audio: options.audio },
    headerExtensions: { video: [useSdesMid(), useAbsSendTime()], audio: [useSdesMid()] },
  });
}

/** Resolves once ICE gathering is complete (or after `timeoutMs`), so answers carry candidates. */
export function gatheringComplete(pc: RTCPeerConnection, timeoutMs = 3000): Promise<void> {
  if (pc.iceGatheringState === 'complete') return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(done, timeoutMs);
    const { unSubscribe } = pc.iceGatheringStateChange.subscribe((state) => {
      if (state === 'complete') done();
    });
    function done() {
      clearTimeout(timer);
      unSubscribe();
      resolve();
    }
  });
}

/** DTLS alert record content type and close_notify (RFC 5246 §7.2.1), level warning. */
const DTLS_ALERT = 21;
const CLOSE_NOTIFY = Buffer.from([1, 0]);

interface DtlsSocketInternals {
  connected?: boolean;
  cipher: { encryptPacket: (pkt: { recordLayerHeader: { contentType: number } }) => unknown };
  send: (buf: Buffer) => Promise<void>;
}

/**
 * Sends a DTLS close_notify alert on each transport so the remote peer learns at once that the
 * connection is over (werift's own close does not: "todo impl send alert"). The record goes through
 * werift's send path for application data, with its content type switched to alert before it is
 * encrypted (the type is part of the AEAD additional data, so it stays authentic).
 */
export async function sendCloseNotify(pc: RTCPeerConnection): Promise<void> {
  await Promise.all(pc.dtlsTransports.map(async (transport) => {
    const socket = (transport as unknown as { dtls?: DtlsSocketInternals }).dtls;
    if (!socket || transport.state !== "connected") return;
    const cipher = socket.cipher;
    const encrypt = cipher.encryptPacket;
    cipher.encryptPacket = function (pkt) {
      cipher.encryptPacket = encrypt;
      pkt.recordLayerHeader.contentType = DTLS_ALERT;
      return encrypt.call(this, pkt);
    };
    try {
      await socket.send(CLOSE_NOTIFY);
    } catch {
      // The transport is going away anyway.
    } finally {
      cipher.encryptPacket = encrypt;
    }
  }));
}

/** Peer connections being closed; `closingPeers()` waits for them. */
const closing = new Set<Promise<void>>();

/**
 * Tells the remote peer the connection is closed, then closes it; never throws. The socket stays
 * open a moment after the alert: werift sends without a callback, and closing at once drops it.
 */
export function closePeerConnection(pc: RTCPeerConnection): Promise<void> {
  const done = (async () => {
    try {
      await sendCloseNotify(pc);
      await new Promise((r) => setTimeout(r, 50));
    } catch {
      // Best effort.
    }
    await pc.close().catch(() => {});
  })();
  closing.add(done);
  void done.finally(() => closing.delete(done));
  return done;
}

/** Resolves when every peer connection being closed is closed (used on shutdown). */
export async function closingPeers(): Promise<void> {
  while (closing.size > 0) await Promise.all([...closing]);
}

/**
 * Calls `onConnected` when the peer connection is up, and `onGone` once when the remote peer is
 * gone: the connection failed or closed, or the remote closed DTLS (close_notify).
 */
export function watchPeer(pc: RTCPeerConnection, onConnected: () => void, onGone: (reason: 'client-left' | 'connection-failed') => void): void {
  let gone = false;
  const leave = (reason: 'client-left' | 'connection-failed') => {
    if (gone) return;
    gone = true;
    onGone(reason);
  };
  pc.connectionStateChange.subscribe((state) => {
    if (state === 'connected') {
      useKeyObjects(pc);
      onConnected();
      for (const transport of pc.dtlsTransports) {
        transport.onStateChange.subscribe((s) => {
          if (s === 'closed') leave('client-left');
          else if (s === 'failed') leave('connection-failed');
        });
      }
    } else if (state === 'failed') leave('connection-failed');
    else if (state === 'closed') leave('client-left');
  });
}

interface SrtpCipherKeys {
  srtpSessionKey?: Buffer | KeyObject;
  srtcpSessionKey?: Buffer | KeyObject;
  srtpSessionAuthTag?: Buffer | KeyObject;
  srtcpSessionAuthTag?: Buffer | KeyObject;
}

/**
 * Hands werift's SRTP ciphers their session keys as KeyObjects. werift calls `createCipheriv`
 * (and `createHmac`) per packet with the raw key Buffer, and Node then re-validates and imports the
 * key every time: measured here, AES-128-GCM per 1200-byte packet costs 27 µs with a Buffer key and
 * 6.5 µs with a KeyObject. Every use of these fields accepts either.
 */
export function useKeyObjects(pc: RTCPeerConnection): void {
  for (const transport of pc.dtlsTransports) {
    const t = transport as unknown as Record<'srtp' | 'srtcp', { localContext?: { cipher?: SrtpCipherKeys }; remoteContext?: { cipher?: SrtpCipherKeys } } | undefined>;
    for (const session of [t.srtp, t.srtcp]) {
      for (const context of [session?.localContext, session?.remoteContext]) {
        const cipher = context?.cipher;
        if (!cipher) continue;
        for (const field of ['srtpSessionKey', 'srtcpSessionKey', 'srtpSessionAuthTag', 'srtcpSessionAuthTag'] as const) {
          const key = cipher[field];
          if (Buffer.isBuffer(key)) cipher[field] = createSecretKey(key);
        }
      }
    }
  }
}

/**
 * Readies a peer connection for its local description: no STUN query (werift falls back to a
 * public Google STUN server even with `iceServers: []`, and waits up to 5 s for it while gathering;
 * a server knows its own addresses), and, when answering, the DTLS server role (`a=setup:passive`),
 * under which Chromium agrees to AEAD_AES_128_GCM rather than AES-CM with HMAC-SHA1.
 * Call after setRemoteDescription (answering) or after adding transceivers (offering).
 */
export function prepareLocal(pc: RTCPeerConnection, answering: boolean): void {
  for (const t of pc.iceTransports) (t as unknown as { connection: { stunServer?: unknown } }).connection.stunServer = undefined;
  if (answering) for (const t of pc.dtlsTransports) t.role = 'server';
}


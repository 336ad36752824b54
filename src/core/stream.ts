/**
 * A Stream is one live source with its tracks, published into an application (SPEC.md §1).
 * It is owned by its source session: when that closes, the stream ends and so do its players.
 */
import { EventEmitter } from 'node:events';
import { randomUUID } from 'node:crypto';
import type { CloseReason, Session } from './session.ts';

export type SourceType = 'WebRTC' | 'RTSP' | 'OVT' | 'Room';

/** What is known of one track of a stream; codec facts are filled in as media arrives. */
export interface TrackInfo {
  id: number;
  kind: 'video' | 'audio';
  /** Codec name as OME reports it: H264, H265, VP8, VP9, AV1, OPUS, AAC, PCMU, PCMA. */
  codec: string;
  /** RTP clock rate (Hz). */
  clockRate: number;
  /** Audio channels; 0 for video. */
  channels: number;
  width: number;
  height: number;
  frameRate: number;
  /** Measured bits per second over the last second. */
  bitrate: number;
  /** Bits per second averaged since the track started. */
  bitrateAvg: number;
  /** Frames per second averaged since the track started (video). */
  frameRateAvg: number;
  /** Frames from the last key frame to the one before it (video); 0 until two were seen. */
  keyFrameInterval: number;
  /** Frames since the last key frame (video). */
  framesSinceKeyFrame: number;
  /** Set when the source's codec is transcoded into `codec` (pulled AAC/G.711 audio → Opus). */
  transcodedFrom?: { codec: string; clockRate: number; channels: number };
}

export interface StreamEvents {
  close: [reason: CloseReason];
  player: [session: Session];
}

export class Stream extends EventEmitter<StreamEvents> {
  readonly uuid = randomUUID();
  readonly vhost: string;
  readonly app: string;
  readonly name: string;
  readonly createdAt = new Date();
  readonly sourceType: SourceType;
  readonly source: Session;
  /** The URL a pull stream is read from, with any password masked. */
  sourceUrl: string | undefined;
  tracks: TrackInfo[] = [];
  /**
   * True for an on-demand relay: an OVT pull of a stream published on another node, made for this
   * node's viewers and dropped when the last one leaves. Default false.
   */
  relay = false;
  readonly players = new Map<string, Session>();
  closed = false;
  /** Who ended it, when someone did (an API and its user). */
  closedBy: string | undefined;

  constructor(vhost: string, app: string, name: string, sourceType: SourceType, source: Session) {
    super();
    this.vhost = vhost;
    this.app = app;
    this.name = name;
    this.sourceType = sourceType;
    this.source = source;
    source.once('close', (reason) => this.close(reason === 'kicked' ? 'stream-ended' : reason));
  }

  /** Adds a player; it leaves the stream when it closes. */
  addPlayer(session: Session): void {
    this.players.set(session.id, session);
    session.once('close', () => this.players.delete(session.id));
    this.emit('player', session);
  }

  /**
   * Ends the stream: its players close with `stream-ended`, then its source. `by` names who ended
   * it. Idempotent.
   */
  close(reason: CloseReason, by?: string): void {
    if (this.closed) return;
    this.closed = true;
    this.closedBy = by;
    for (const player of [...this.players.values()]) player.close(reason === 'server-stopping' ? reason : 'stream-ended');
    this.source.close(reason, by);
    this.emit('close', reason);
    this.removeAllListeners();
  }
}

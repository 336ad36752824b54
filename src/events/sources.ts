/**
 * Where the server's events come from: the catalogue (streams and sessions of every kind), the
 * rooms (room sessions and participants) and the recordings. Listeners only queue (EventLog never
 * throws), so they cannot break what they watch.
 */
import { randomUUID } from 'node:crypto';
import type { Catalog } from '../core/catalog.ts';
import type { Participant, RoomSession } from '../core/room.ts';
import type { Session } from '../core/session.ts';
import type { Stream } from '../core/stream.ts';
import type { RecordingRecord } from '../store/store.ts';
import type { EventLog } from './event-log.ts';

/** A pair key unique to one opening (ids can come back: a session name, a participant's reconnection). */
const pairKey = (kind: string, id: string): string => `${kind}:${id}:${randomUUID()}`;

function sessionData(s: Session): Record<string, unknown> {
  return {
    session: {
      id: s.id, kind: s.kind, protocol: s.protocol, vhost: s.vhost, app: s.app, stream: s.stream,
      remote_address: s.remoteAddress, remote_port: s.remotePort, user_agent: s.userAgent, user: s.user,
      room_session: s.roomSession ?? null, connected_at: s.connectedAt.toISOString(),
    },
  };
}

function streamData(s: Stream): Record<string, unknown> {
  return {
    stream: { uuid: s.uuid, vhost: s.vhost, app: s.app, name: s.name, source_type: s.sourceType, source_session: s.source.id, created_at: s.createdAt.toISOString() },
  };
}

function roomSessionData(rs: RoomSession): Record<string, unknown> {
  return { room_session: { id: rs.id, name: rs.name, room_id: rs.roomId, start_time: rs.startTime?.toISOString() ?? null } };
}

function participantData(rs: RoomSession, p: Participant): Record<string, unknown> {
  return { participant: { id: p.id, name: p.name, role: p.role, room_session_id: rs.id, room_session_name: rs.name, session: p.session.id, joined_at: p.joinedAt.toISOString() } };
}

/** Sessions and streams of the catalogue, opened and closed. */
export function watchCatalog(log: EventLog, catalog: Catalog): void {
  catalog.on('session', (session) => {
    const data = sessionData(session);
    // The pair's key is this session's alone: a client may reuse a session name once it closed.
    const key = pairKey('session', session.id);
    log.open('session.opened', key, session.id, data);
    session.once('close', (reason) => {
      const c = session.counters;
      log.close('session.closed', key, session.id, {
        ...data, reason, closed_by: session.closedBy ?? null,
        bytes_in: c.bytesIn, bytes_out: c.bytesOut, packets_in: c.packetsIn, packets_out: c.packetsOut,
        duration_ms: Date.now() - session.connectedAt.getTime(),
      });
    });
  });
  catalog.on('stream', (stream) => {
    // A relay is another node's stream brought here: that node tells of the stream (its OVT
    // connections are sessions, told of above).
    if (stream.relay) return;
    const data = streamData(stream);
    const subject = `${stream.vhost}/${stream.app}/${stream.name}`;
    log.open('stream.created', `stream:${stream.uuid}`, subject, data);
    stream.once('close', (reason) => {
      log.close('stream.destroyed', `stream:${stream.uuid}`, subject, { ...data, reason, closed_by: stream.closedBy ?? null });
    });
  });
}

/** Room sessions started and ended, participants joined and left. */
export function watchRoomSession(log: EventLog, rs: RoomSession): void {
  rs.once('started', () => log.open('room_session.started', `room_session:${rs.id}`, rs.id, roomSessionData(rs)));
  const keys = new WeakMap<Participant, string>();
  rs.on('joined', (p) => {
    const key = pairKey('participant', p.id);
    keys.set(p, key);
    log.open('participant.joined', key, p.id, participantData(rs, p));
  });
  rs.on('left', (p, reason) => {
    const key = keys.get(p);
    if (key) log.close('participant.left', key, p.id, { ...participantData(rs, p), reason, closed_by: p.session.closedBy ?? null });
  });
  rs.once('ended', (reason) => {
    log.close('room_session.ended', `room_session:${rs.id}`, rs.id, { ...roomSessionData(rs), reason, end_time: rs.endTime?.toISOString() ?? null });
  });
}

/** A recording's status changes. */
export function recordingEvent(log: EventLog, r: RecordingRecord): void {
  log.emit('recording.status', r.uuid, {
    recording: {
      id: r.id, uuid: r.uuid, room_session_id: r.roomSessionId, name: r.name, status: r.status,
      duration: r.duration, size: r.size, reason: r.reason, node: r.nodeId,
    },
  });
}

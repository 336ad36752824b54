/**
 * SignalWire Video's objects (seed 003 and SignalWire's Video REST reference): Room, RoomSession
 * (the 29 fields of the seed's schema, with its types and nulls) and Member, built from the store's
 * records.
 */
import { createHash } from 'node:crypto';
import { roomSettingsFromJson, type RoomSettings } from '../../core/room.ts';
import type { RecordingRecord, RoomMemberRecord, RoomRecord, RoomSessionRecord } from '../../store/store.ts';

/** ISO 8601 UTC to the second, as SignalWire writes times. */
export function isoSeconds(value: string | Date | null | undefined): string | null {
  if (value === null || value === undefined) return null;
  const d = typeof value === 'string' ? new Date(value) : value;
  return Number.isNaN(d.getTime()) ? null : d.toISOString().replace(/\.\d{3}Z$/, 'Z');
}

const wholeSeconds = (from: string, to: string) => Math.max(0, Math.floor((Date.parse(to) - Date.parse(from)) / 1000));

/** Dollars for `seconds` of member time at `pricePerMinute`, to the hundredth of a cent. */
export function costOf(seconds: number, pricePerMinute: number): number {
  return pricePerMinute > 0 ? Math.round((seconds / 60) * pricePerMinute * 10_000) / 10_000 : 0;
}

/** The settings a Room and a RoomSession both show, under SignalWire's names. */
function settingFields(s: RoomSettings, name: string): Record<string, unknown> {
  return {
    display_name: s.displayName ?? name,
    max_members: s.maxMembers,
    quality: s.quality,
    join_from: isoSeconds(s.joinFrom),
    join_until: isoSeconds(s.joinUntil),
    remove_at: isoSeconds(s.removeAt),
    remove_after_seconds_elapsed: s.removeAfterSecondsElapsed,
    layout: s.layout,
    record_on_start: s.recordOnStart,
    tone_on_entry_and_exit: s.toneOnEntryAndExit,
    room_join_video_off: s.roomJoinVideoOff,
    user_join_video_off: s.userJoinVideoOff,
    locked: s.locked,
    prioritize_handraise: s.prioritizeHandraise,
    sync_audio_video: s.syncAudioVideo,
    enable_room_previews: s.enableRoomPreviews,
    locked_cover: s.lockedCover,
  };
}

/** A room as SignalWire's `Room` object (fps a number, unlike a session's string). */
export function roomJson(r: RoomRecord): Record<string, unknown> {
  const s = roomSettingsFromJson(r.settings);
  const extra = r.settings;
  return {
    id: r.id,
    name: r.name,
    ...settingFields(s, r.name),
    description: typeof extra.description === 'string' ? extra.description : null,
    fps: s.fps,
    meta: extra.meta && typeof extra.meta === 'object' ? extra.meta : {},
    created_at: isoSeconds(r.createdAt),
    updated_at: isoSeconds(r.updatedAt),
  };
}

/** A room session as the seed's `RoomSession`; `memberSeconds` prices it when a price is set. */
export function roomSessionJson(r: RoomSessionRecord, memberSeconds: number, pricePerMinute: number): Record<string, unknown> {
  const s = roomSettingsFromJson(r.settings);
  return {
    id: r.id,
    room_id: r.roomId,
    name: r.name,
    ...settingFields(s, r.name),
    // The seed's schema has fps as a string enum ('20', '30').
    fps: String(s.fps),
    start_time: isoSeconds(r.startTime),
    end_time: isoSeconds(r.endTime),
    duration: r.status === 'completed' && r.startTime && r.endTime ? wholeSeconds(r.startTime, r.endTime) : null,
    status: r.status,
    created_at: isoSeconds(r.createdAt),
    updated_at: isoSeconds(r.updatedAt),
    preview_url: null,
    cost_in_dollars: costOf(memberSeconds, pricePerMinute),
  };
}

/** A member's UUID: derived from its room session and connection id (stable, no extra column). */
export function memberUuid(roomSessionId: string, memberId: string): string {
  const h = createHash('sha1').update(`${roomSessionId}/${memberId}`).digest();
  h[6] = (h[6] & 0x0f) | 0x50;
  h[8] = (h[8] & 0x3f) | 0x80;
  const x = h.subarray(0, 16).toString('hex');
  return `${x.slice(0, 8)}-${x.slice(8, 12)}-${x.slice(12, 16)}-${x.slice(16, 20)}-${x.slice(20, 32)}`;
}

/** A member of a room session; `now` measures a member still in. */
export function memberJson(m: RoomMemberRecord, now: string, pricePerMinute: number): Record<string, unknown> {
  const seconds = wholeSeconds(m.joinedAt, m.leftAt ?? now);
  return {
    id: memberUuid(m.roomSessionId, m.id),
    room_session_id: m.roomSessionId,
    name: m.name || m.id,
    join_time: isoSeconds(m.joinedAt),
    leave_time: isoSeconds(m.leftAt),
    duration: seconds,
    cost_in_dollars: costOf(seconds, pricePerMinute),
    // Kiln's own: the OpenVidu connection id, the role, and why it left.
    connection_id: m.id,
    role: m.role,
    leave_reason: m.leaveReason,
  };
}

/** SignalWire's status of a recording: `recording`, `processing` (stopped, being composed), `completed`, `failed`. */
function recordingStatus(r: RecordingRecord): string {
  switch (r.status) {
    case 'starting':
    case 'started':
      return 'recording';
    case 'stopped':
      return 'processing';
    case 'available':
      return 'completed';
    case 'failed':
      return 'failed';
  }
}

/** A RoomRecording as SignalWire's API shows it; `uri` is a temporary link to the file, or null. */
export function recordingJson(r: RecordingRecord, uri: string | null): Record<string, unknown> {
  const composed = r.status === 'available';
  const seconds = composed ? r.duration : r.stoppedAt ? (Date.parse(r.stoppedAt) - Date.parse(r.createdAt)) / 1000 : null;
  return {
    id: r.uuid,
    room_session_id: r.roomSessionId,
    status: recordingStatus(r),
    started_at: isoSeconds(r.createdAt),
    finished_at: isoSeconds(r.stoppedAt),
    duration: seconds === null ? null : Math.round(seconds),
    size_in_bytes: composed ? r.size : null,
    format: 'video/mp4',
    cost_in_dollars: 0,
    uri,
    created_at: isoSeconds(r.createdAt),
    updated_at: isoSeconds(r.updatedAt),
  };
}

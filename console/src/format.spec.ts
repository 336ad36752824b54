import { describe, expect, it } from 'vitest';
import * as fmt from './format.ts';

describe('format', () => {
  it('writes sizes, rates and durations', () => {
    expect(fmt.bytes(512)).toBe('512 B');
    expect(fmt.bytes(1536)).toBe('1.5 KiB');
    expect(fmt.bytes(5 * 1024 ** 3)).toBe('5.0 GiB');
    expect(fmt.bytes(null)).toBe('–');
    expect(fmt.bitrate(950)).toBe('950 bit/s');
    expect(fmt.bitrate(2_500)).toBe('2.5 kbit/s');
    expect(fmt.bitrate(1_234_567)).toBe('1.23 Mbit/s');
    expect(fmt.bitrate(-1)).toBe('–');
    expect(fmt.duration(7)).toBe('7s');
    expect(fmt.duration(125)).toBe('2m 05s');
    expect(fmt.duration(3723)).toBe('1h 02m 03s');
    expect(fmt.duration(undefined)).toBe('–');
    expect(fmt.resolution(1280, 720)).toBe('1280×720');
    expect(fmt.resolution(0, 0)).toBe('–');
    expect(fmt.time('not a date')).toBe('not a date');
    expect(fmt.time(null)).toBe('–');
  });
});

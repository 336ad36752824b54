/** Keys for one purpose each, derived from the node's signing key. */
import { createHmac } from 'node:crypto';

/** The key for `purpose` (HMAC-SHA256 of it under the master key): one leaked key opens nothing else. */
export function deriveKey(master: Buffer, purpose: string): Buffer {
  return createHmac('sha256', master).update(`kiln:${purpose}`).digest();
}

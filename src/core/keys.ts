/** Keys for one purpose each, derived from the node's signing key (HMAC-SHA256 of the purpose). */
import { createHmac } from 'node:crypto';

export function deriveKey(master: Buffer, purpose: string): Buffer {
  return createHmac('sha256', master).update(`kiln:${purpose}`).digest();
}

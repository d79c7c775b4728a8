import crypto from 'node:crypto';
import type { ApiToken } from '../config';
import { Forbidden, Unauthorized } from '../errors';
import type { Caller } from './route';

const BEARER = /^Bearer +(\S{1,1024})$/i;

export function sha256Hex(text: string): string {
  return crypto.createHash('sha256').update(text).digest('hex');
}

/**
 * The caller a bearer token belongs to, compared in constant time against every configured
 * sha256 (no early exit, so timing does not tell which entry matched or how many exist).
 * Throws Unauthorized for a missing, malformed or unknown token.
 */
export function authenticate(tokens: readonly ApiToken[], authorization: string | undefined): Caller {
  if (!authorization) throw new Unauthorized('missing bearer token (Authorization: Bearer <token>)');
  const m = BEARER.exec(authorization);
  if (!m) throw new Unauthorized('malformed Authorization header: expected "Bearer <token>"');
  const presented = crypto.createHash('sha256').update(m[1]).digest();
  let found: Caller | undefined;
  for (const t of tokens) {
    if (!t.sha256) continue;
    const expected = Buffer.from(t.sha256, 'hex');
    if (expected.length === presented.length && crypto.timingSafeEqual(expected, presented) && !found) {
      found = { name: t.name, role: t.role };
    }
  }
  if (!found) throw new Unauthorized('invalid token');
  return found;
}

/** reader: GET (and HEAD) only; admin: everything. */
export function authorize(caller: Caller, method: string): void {
  const readOnly = method === 'GET' || method === 'HEAD';
  if (!readOnly && caller.role !== 'admin') {
    throw new Forbidden(`token "${caller.name}" has role ${caller.role}: ${method} needs role admin`);
  }
}

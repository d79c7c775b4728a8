import { authenticate, authorize, sha256Hex } from '../../../services/api/auth';
import type { ApiToken } from '../../../services/config';
import { Forbidden, Unauthorized } from '../../../services/errors';

const tokens: ApiToken[] = [
  { name: 'ops', role: 'admin', sha256: sha256Hex('admin-token-0123456789') },
  { name: 'grafana', role: 'reader', sha256: sha256Hex('reader-token-0123456789') },
  { name: 'no-hash', role: 'admin' },
];

describe('bearer token auth', () => {
  test.each([
    ['Bearer admin-token-0123456789', { name: 'ops', role: 'admin' }],
    ['bearer reader-token-0123456789', { name: 'grafana', role: 'reader' }],
  ])('%s -> %j', (header, caller) => {
    expect(authenticate(tokens, header)).toEqual(caller);
  });

  test.each([
    ['missing', undefined, /missing bearer token/],
    ['other scheme', 'Basic YWxhZGRpbjpvcGVuc2VzYW1l', /malformed/],
    ['empty bearer', 'Bearer ', /malformed/],
    ['unknown token', 'Bearer not-a-token-0123456789', /invalid token/],
    ['the hash instead of the token', `Bearer ${sha256Hex('admin-token-0123456789')}`, /invalid token/],
  ])('%s is 401', (_what, header, message) => {
    expect(() => authenticate(tokens, header)).toThrow(Unauthorized);
    expect(() => authenticate(tokens, header)).toThrow(message);
  });

  test('no tokens configured: everything is 401', () => {
    expect(() => authenticate([], 'Bearer admin-token-0123456789')).toThrow(Unauthorized);
  });

  test.each([
    ['admin', 'GET', true], ['admin', 'POST', true], ['admin', 'DELETE', true],
    ['reader', 'GET', true], ['reader', 'HEAD', true], ['reader', 'POST', false], ['reader', 'DELETE', false], ['reader', 'PATCH', false],
  ] as const)('%s may %s: %s', (role, method, allowed) => {
    const f = () => authorize({ name: 'x', role }, method);
    if (allowed) expect(f).not.toThrow();
    else expect(f).toThrow(Forbidden);
  });
});

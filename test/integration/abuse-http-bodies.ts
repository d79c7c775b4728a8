/**
 * Malformed HTTP request bodies, as a table other API tests can reuse: every route that takes a
 * JSON body should answer each of these with a 4xx JSON error (never a 5xx, never a hang).
 *
 * `kind`:
 *   - `unparsable`: the body parser must refuse it (400 invalid_input, whatever the route);
 *   - `json`: syntactically valid JSON of the wrong shape: the route's validator must refuse it
 *     (today, with no body-taking route yet, an unknown route answers 404 first);
 *   - `transport`: broken encodings/charsets, refused by the body parser with 4xx.
 */
export interface MalformedBody {
  name: string;
  kind: 'unparsable' | 'json' | 'transport';
  contentType: string;
  headers?: Record<string, string>;
  body: string | Buffer;
}

const SHELL = '$(touch /tmp/api-abuse-canary)';

export const MALFORMED_BODIES: MalformedBody[] = [
  // ---- not JSON at all
  { name: 'truncated object', kind: 'unparsable', contentType: 'application/json', body: '{"server": {"name": "x"' },
  { name: 'trailing comma', kind: 'unparsable', contentType: 'application/json', body: '{"a": 1,}' },
  { name: 'single quotes', kind: 'unparsable', contentType: 'application/json', body: "{'a': 1}" },
  { name: 'bare word', kind: 'unparsable', contentType: 'application/json', body: 'server' },
  { name: 'NaN literal', kind: 'unparsable', contentType: 'application/json', body: '{"a": NaN}' },
  { name: 'comment', kind: 'unparsable', contentType: 'application/json', body: '{"a": 1 /* x */}' },
  { name: 'two documents', kind: 'unparsable', contentType: 'application/json', body: '{"a":1}{"b":2}' },
  { name: 'random bytes', kind: 'unparsable', contentType: 'application/json', body: Buffer.from([0xff, 0xfe, 0x00, 0x7b, 0x80, 0x81]) },
  { name: 'lone surrogate escape + garbage', kind: 'unparsable', contentType: 'application/json', body: '{"a": "\\ud800"' },
  { name: 'JSON primitive number (strict parser)', kind: 'unparsable', contentType: 'application/json', body: '42' },
  { name: 'JSON primitive string (strict parser)', kind: 'unparsable', contentType: 'application/json', body: '"server"' },
  { name: 'JSON null (strict parser)', kind: 'unparsable', contentType: 'application/json', body: 'null' },
  { name: 'deep nesting 100k', kind: 'unparsable', contentType: 'application/json', body: '['.repeat(100000) },
  { name: 'over 1 MB', kind: 'unparsable', contentType: 'application/json', body: `{"a": "${'x'.repeat(1100 * 1024)}"}` },
  { name: 'over 1 MB of whitespace', kind: 'unparsable', contentType: 'application/json', body: `{${' '.repeat(1100 * 1024)}}` },
  { name: 'json with +json suffix type, truncated', kind: 'unparsable', contentType: 'application/merge-patch+json', body: '{"a":' },
  // ---- valid JSON, wrong shape: for the route validators
  { name: 'empty object', kind: 'json', contentType: 'application/json', body: '{}' },
  { name: 'array at top', kind: 'json', contentType: 'application/json', body: '[{"name": "x"}]' },
  { name: '__proto__ pollution', kind: 'json', contentType: 'application/json', body: '{"__proto__": {"admin": true}, "constructor": {"prototype": {"x": 1}}}' },
  { name: 'shell metacharacters in names', kind: 'json', contentType: 'application/json', body: JSON.stringify({ server: { name: SHELL, hostname: `a;${SHELL}`, networks: [{ network: `br-int|${SHELL}` }] } }) },
  { name: 'path traversal in volumes and image', kind: 'json', contentType: 'application/json', body: JSON.stringify({ server: { image: '../../etc/passwd', volumes: [{ host_path: '/../../etc', container_path: '/etc/hosts' }] } }) },
  { name: 'negative and huge numbers', kind: 'json', contentType: 'application/json', body: '{"vcpus": -1, "memory_mb": 1e308, "tail": 99999999999999999999999, "pids_limit": -0}' },
  { name: 'wrong types everywhere', kind: 'json', contentType: 'application/json', body: '{"uuid": 5, "name": [], "flavor": "big", "networks": {"a": 1}, "volumes": true}' },
  { name: 'bad uuids', kind: 'json', contentType: 'application/json', body: '{"instance_uuid": "../../x", "migration_id": "\' OR 1=1 --"}' },
  { name: 'huge string under the limit', kind: 'json', contentType: 'application/json', body: JSON.stringify({ name: 'n'.repeat(900 * 1024) }) },
  { name: 'many keys', kind: 'json', contentType: 'application/json', body: JSON.stringify(Object.fromEntries(Array.from({ length: 20000 }, (_, i) => [`k${i}`, i]))) },
  { name: 'unicode and control chars', kind: 'json', contentType: 'application/json', body: JSON.stringify({ name: '\u0000\u202e\u0007名前💥', hostname: 'a\nb' }) },
  { name: 'duplicate keys', kind: 'json', contentType: 'application/json', body: '{"name": "a", "name": "b"}' },
  // ---- transport-level: charsets and encodings
  { name: 'utf-16 charset', kind: 'unparsable', contentType: 'application/json; charset=utf-16', body: '{"a":1}' },
  { name: 'unknown charset', kind: 'transport', contentType: 'application/json; charset=klingon', body: '{"a":1}' },
  { name: 'unknown content-encoding', kind: 'transport', contentType: 'application/json', headers: { 'Content-Encoding': 'bogus' }, body: '{"a":1}' },
  { name: 'gzip header on plain text', kind: 'transport', contentType: 'application/json', headers: { 'Content-Encoding': 'gzip' }, body: '{"a":1}' },
];

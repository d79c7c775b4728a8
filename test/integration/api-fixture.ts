import crypto from 'node:crypto';
import type { Server } from 'node:http';
import { createApiApp } from '../../services/api/app';
import { sha256Hex } from '../../services/api/auth';
import { specOperations } from '../../services/api/openapi';
import type { Config } from '../../services/config';
import type { ComputeHarness } from '../helpers/compute-harness';

/**
 * The admin API over real HTTP on 127.0.0.1:<free port>, in front of an in-process compute host
 * (startHarness): same database, same exchange/topic, calls through the harness's RpcClient.
 * `call` records which spec operation each request hit, so a test can prove it exercised them all.
 */
export interface ApiFixture {
  base: string;
  config: Config;
  tokens: { admin: string; reader: string };
  exercised: Set<string>;
  call(method: string, path: string, opts?: { token?: string | null; body?: unknown; rawBody?: string; headers?: Record<string, string> }): Promise<ApiResponse>;
  close(): Promise<void>;
}

export interface ApiResponse {
  status: number;
  headers: Headers;
  text: string;
  body: any;
}

const OPS = specOperations().map((o) => ({
  key: `${o.method.toUpperCase()} ${o.path}`,
  re: new RegExp(`^${o.path.replace(/[.]/g, '\\.').replace(/\{[^}]+\}/g, '[^/]+')}$`),
  method: o.method.toUpperCase(),
}));

export function specKeys(): string[] {
  return OPS.map((o) => o.key).sort();
}

export async function startApi(h: ComputeHarness, overrides: Partial<Config['api']> = {}): Promise<ApiFixture> {
  const admin = `adm-${crypto.randomBytes(16).toString('hex')}`;
  const reader = `rdr-${crypto.randomBytes(16).toString('hex')}`;
  const config: Config = {
    ...h.config,
    api: {
      ...h.config.api,
      tokens: [{ name: 'test-admin', role: 'admin', sha256: sha256Hex(admin) }, { name: 'test-reader', role: 'reader', sha256: sha256Hex(reader) }],
      hostStaleAfterSec: 60,
      ...overrides,
    },
  };
  const app = createApiApp({ config, db: h.t.db, rpc: h.client });
  const server: Server = await new Promise((resolve, reject) => {
    const s = app.listen(0, '127.0.0.1', () => resolve(s));
    s.on('error', reject);
  });
  const port = (server.address() as { port: number }).port;
  const base = `http://127.0.0.1:${port}`;
  const exercised = new Set<string>();
  return {
    base, config, tokens: { admin, reader }, exercised,
    async call(method, path, opts = {}) {
      const pathOnly = path.split('?')[0];
      const op = OPS.find((o) => o.method === method && o.re.test(pathOnly));
      if (op) exercised.add(op.key);
      const token = opts.token === undefined ? admin : opts.token;
      const headers: Record<string, string> = { ...(opts.headers ?? {}) };
      if (token !== null) headers.authorization = `Bearer ${token}`;
      let body: string | undefined;
      if (opts.rawBody !== undefined) body = opts.rawBody;
      else if (opts.body !== undefined) body = JSON.stringify(opts.body);
      if (body !== undefined && !headers['content-type']) headers['content-type'] = 'application/json';
      const r = await fetch(base + path, { method, headers, body });
      const text = await r.text();
      let parsed: unknown;
      try {
        parsed = text ? JSON.parse(text) : undefined;
      } catch {
        parsed = undefined;
      }
      return { status: r.status, headers: r.headers, text, body: parsed };
    },
    async close() {
      await new Promise<void>((r) => { server.close(() => r()); server.closeAllConnections(); });
    },
  };
}

/** A network of our reserved ranges: VLAN 3400-3499, 198.19.70.0/24..198.19.79.0/24. */
export function apiNetwork(name: string, third: number, vlan: number): Record<string, unknown> {
  if (third < 70 || third > 79 || vlan < 3400 || vlan > 3499) throw new Error('outside the API tests\' ranges');
  return {
    name, type: 'ovs-vlan', bridge: 'br-int', vlan, cidr: `198.19.${third}.0/24`, gateway: `198.19.${third}.1`,
    range_start: `198.19.${third}.10`, range_end: `198.19.${third}.200`, hostname_template: '{name}-{o4}', domain: 'api.test',
  };
}

export function expectErrorShape(r: ApiResponse, status: number, code: string): void {
  if (r.status !== status || r.body?.error?.code !== code) {
    throw new Error(`expected ${status} ${code}, got ${r.status}: ${r.text}`);
  }
  if (typeof r.body.error.message !== 'string' || !/^req-|^[A-Za-z0-9_.:-]+$/.test(r.body.error.request_id)) {
    throw new Error(`bad error shape: ${r.text}`);
  }
}

export function fieldsOf(r: ApiResponse): string[] {
  return ((r.body?.error?.details ?? []) as Array<{ field: string }>).map((d) => d.field).sort();
}

/**
 * The real `node dist/services/main.js` (what `npm start` runs): with no api.tokens configured it
 * writes an admin token to ${stateDir}/api-token (0600) and logs the path, never the token; the
 * API answers with it. `npm run cli -- audit host` checks the same host from the command line.
 */
import { execFile } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { freshDatabase, type TestDatabase } from '../helpers/db';
import { eventually, REPO_ROOT, startService, type ServiceProcess } from '../helpers/service-process';
import { freePort } from '../helpers/tcp-proxy';

jest.setTimeout(120000);
const run = promisify(execFile);

let t: TestDatabase;
let svc: ServiceProcess | undefined;
let stateDir: string;
let port: number;
const host = `apiproc-${crypto.randomBytes(3).toString('hex')}`;
let env: Record<string, string>;

beforeAll(async () => {
  t = await freshDatabase('apiproc');
  stateDir = await fs.mkdtemp(path.join(os.tmpdir(), 'compute-apiproc-'));
  port = await freePort();
  env = {
    COMPUTE_HOST: host,
    COMPUTE_DATABASE_URL: t.url,
    COMPUTE_API_PORT: String(port),
    COMPUTE_STATE_DIR: stateDir,
    COMPUTE_VOLUME_ROOTS: path.join(stateDir, 'volumes'),
    COMPUTE_CONTROL_EXCHANGE: `apiproc_${host.replace(/-/g, '_')}`,
    COMPUTE_RPC_TOPIC: `compute_${host.replace(/-/g, '_')}`,
  };
  svc = startService(env);
});

afterAll(async () => {
  await svc?.stop('SIGTERM');
  await t?.drop();
  await fs.rm(stateDir, { recursive: true, force: true });
});

test('no tokens configured: a 0600 admin token file is written and works; its path is logged, not the token', async () => {
  const file = path.join(stateDir, 'api-token');
  await eventually(() => fetch(`http://127.0.0.1:${port}/healthz`).then((r) => r.status), (s) => s === 200 || s === 503, 60000);
  const st = await fs.stat(file);
  expect(st.mode & 0o777).toBe(0o600);
  const token = (await fs.readFile(file, 'utf8')).trim();
  expect(token.length).toBeGreaterThanOrEqual(32);
  expect(svc!.output()).toContain(file);
  expect(svc!.output()).not.toContain(token);

  const anon = await fetch(`http://127.0.0.1:${port}/hosts`);
  expect(anon.status).toBe(401);
  const hosts = await eventually(
    () => fetch(`http://127.0.0.1:${port}/hosts/${host}`, { headers: { authorization: `Bearer ${token}` } }).then(async (r) => ({ status: r.status, body: (await r.json()) as any })),
    (r) => r.status === 200, 30000,
  );
  expect(hosts.body.host).toMatchObject({ name: host, up: true });

  // A mutating request is logged with the token's name.
  const d = await fetch(`http://127.0.0.1:${port}/hosts/${host}/disable`, { method: 'POST', headers: { authorization: `Bearer ${token}` } });
  expect(d.status).toBe(200);
  await eventually(async () => svc!.output(), (o) => /"token":"local-admin".*"path":"\/hosts\/[^"]+\/disable"/.test(o), 5000);
  // Over RPC on the real process: the audit of its own host.
  const audit = await fetch(`http://127.0.0.1:${port}/hosts/${host}/audit`, { headers: { authorization: `Bearer ${token}` } });
  expect(audit.status).toBe(200);
  expect(((await audit.json()) as { host: string }).host).toBe(host);
});

test('npm run cli -- audit host: the same read-only report from the command line', async () => {
  const r = await run(process.execPath, [path.join(REPO_ROOT, 'dist/services/cli/index.js'), 'audit', 'host', '--json'], {
    cwd: REPO_ROOT, env: { ...process.env, ...env, LOG_LEVEL: 'silent' }, timeout: 60000,
  }).catch((e: { stdout: string; code: number }) => ({ stdout: e.stdout, code: e.code }));
  const report = JSON.parse(r.stdout) as { host: string; instances: number; findings: Array<{ kind: string }> };
  expect(report).toMatchObject({ host, instances: 0 });
  // Exit 0 when consistent; other tests' links on this machine may show up as leaks (exit 1).
  const code = 'code' in r ? r.code : 0;
  expect(code === 0 ? report.findings : report.findings.filter((f) => !f.kind.startsWith('leaked_'))).toEqual([]);
});

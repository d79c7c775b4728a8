import crypto from 'node:crypto';
import { freshDatabase, type TestDatabase } from '../helpers/db';
import { eventually, startService, type ServiceProcess } from '../helpers/service-process';
import { TcpProxy, freePort } from '../helpers/tcp-proxy';

interface Health {
  status: string;
  dependencies: Record<string, { ok: boolean; latencyMs: number; error?: string }>;
}

async function health(port: number): Promise<Health> {
  const r = await fetch(`http://127.0.0.1:${port}/healthz`);
  return (await r.json()) as Health;
}

describe('npm start process: /healthz, heartbeat, outages, signals', () => {
  let t: TestDatabase;
  let svc: ServiceProcess | undefined;
  const pgProxy = new TcpProxy('127.0.0.1', 5432);
  const mqProxy = new TcpProxy('127.0.0.1', 5672);
  const host = `hz-${crypto.randomBytes(3).toString('hex')}`;
  let port = 0;

  beforeAll(async () => {
    t = await freshDatabase('health');
    const pg = await pgProxy.start();
    const mq = await mqProxy.start();
    port = await freePort();
    svc = startService({
      COMPUTE_HOST: host,
      COMPUTE_DATABASE_URL: t.url.replace(':5432/', `:${pg}/`),
      COMPUTE_AMQP_URL: `amqp://guest:guest@127.0.0.1:${mq}/`,
      COMPUTE_API_PORT: String(port),
      COMPUTE_HEARTBEAT_INTERVAL_SEC: '1',
      COMPUTE_CONTROL_EXCHANGE: `health_${host.replace(/-/g, '_')}`,
      COMPUTE_RPC_TOPIC: `compute_${host.replace(/-/g, '_')}`,
    });
  });

  afterAll(async () => {
    await svc?.stop('SIGKILL');
    await pgProxy.cut();
    await mqProxy.cut();
    await t?.drop();
  });

  test('all five dependencies report ok with a latency', async () => {
    const h = await eventually(() => health(port), (x) => x.status === 'ok', 30000);
    expect(Object.keys(h.dependencies).sort()).toEqual(['broker', 'database', 'docker', 'ovs', 'registry']);
    for (const d of Object.values(h.dependencies)) {
      expect(d.ok).toBe(true);
      expect(d.latencyMs).toBeGreaterThan(0);
    }
  });

  test('the host row is registered and its heartbeat advances', async () => {
    const first = await eventually(() => t.db('hosts').where({ name: host }).first(), (r) => !!r);
    expect(first.vcpus).toBeGreaterThan(0);
    expect(Number(first.memory_mb)).toBeGreaterThan(0);
    const later = await eventually(() => t.db('hosts').where({ name: host }).first(),
      (r) => new Date(r.heartbeat_at).getTime() > new Date(first.heartbeat_at).getTime(), 10000);
    expect(new Date(later.heartbeat_at).getTime()).toBeGreaterThan(new Date(first.heartbeat_at).getTime());
  });

  test('broker down: named as down, process keeps running, recovers by itself', async () => {
    await mqProxy.cut();
    const down = await eventually(() => health(port), (x) => !x.dependencies.broker.ok);
    expect(down.status).toBe('degraded');
    expect(down.dependencies.broker.error).toBeTruthy();
    expect(down.dependencies.database.ok).toBe(true);
    await mqProxy.restore();
    const up = await eventually(() => health(port), (x) => x.status === 'ok');
    expect(up.dependencies.broker.ok).toBe(true);
    expect(svc!.child.exitCode).toBeNull();
  });

  test('database down: named as down, process keeps running, recovers by itself', async () => {
    await pgProxy.cut();
    const down = await eventually(() => health(port), (x) => !x.dependencies.database.ok);
    expect(down.status).toBe('degraded');
    expect(down.dependencies.broker.ok).toBe(true);
    await pgProxy.restore();
    const up = await eventually(() => health(port), (x) => x.status === 'ok', 30000);
    expect(up.dependencies.database.ok).toBe(true);
    // heartbeats resume after the outage
    const before = (await t.db('hosts').where({ name: host }).first()).heartbeat_at;
    const after = await eventually(() => t.db('hosts').where({ name: host }).first(),
      (r) => new Date(r.heartbeat_at).getTime() > new Date(before).getTime(), 10000);
    expect(new Date(after.heartbeat_at).getTime()).toBeGreaterThan(new Date(before).getTime());
    expect(svc!.child.exitCode).toBeNull();
  });

  test('unknown routes and bad bodies get the one JSON error shape', async () => {
    const r = await fetch(`http://127.0.0.1:${port}/nope`);
    expect(r.status).toBe(404);
    const body = (await r.json()) as { error: { code: string; request_id: string } };
    expect(body.error.code).toBe('not_found');
    expect(body.error.request_id).toMatch(/^req-/);
  });

  test('SIGTERM stops it cleanly with exit code 0', async () => {
    const r = await svc!.stop('SIGTERM');
    expect(r.code).toBe(0);
    expect(svc!.output()).toContain('Stopped');
    svc = undefined;
  });
});

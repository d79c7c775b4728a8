/**
 * PostgreSQL restarted (`pg_ctlcluster --skip-systemctl-redirect <ver> main restart`, version
 * from /etc/postgresql) under a running compute service: every pooled connection dies. The
 * service recovers by itself: the heartbeat resumes, a call made while the database is going
 * down is requeued (not persisted = not acked) and answered once it is back, later calls and
 * a spawn succeed. PostgreSQL is always running again afterwards.
 * SERIAL ONLY: the restart cuts every database client on the machine.
 */
import crypto from 'node:crypto';
import { faultHost, pgReady, restartPostgres, TEST_IMAGE, waitFor, type FaultHost } from './fault-helpers';

jest.setTimeout(120000);

let fh: FaultHost;

beforeAll(async () => {
  fh = await faultHost('flt-pg', { heartbeatIntervalSec: 1 });
  await fh.start();
});

afterAll(async () => {
  if (!(await pgReady())) await restartPostgres().catch(() => undefined);
  await fh?.close();
});

const heartbeat = async (): Promise<number> => {
  const row = await fh.t.db('hosts').where({ name: fh.host }).first().catch(() => undefined);
  return row?.heartbeat_at ? new Date(row.heartbeat_at).getTime() : 0;
};

test('PostgreSQL restart: heartbeat resumes, calls in the outage are answered after it, spawns work', async () => {
  await fh.call('get_available_resource', {}, 30);
  const hbBefore = await waitFor('first heartbeat', heartbeat, (t) => t > 0, 10000);

  const t0 = Date.now();
  // A call racing the restart: persisted before ack, so it waits for the database instead of failing.
  const racing = fh.call('list_instances', {}, 90);
  racing.catch(() => undefined);
  await restartPostgres();
  const restartedAt = Date.now();

  const hbAfter = await waitFor('heartbeat after the restart', heartbeat, (t) => t > Math.max(hbBefore, restartedAt - 500), 30000, 250);
  const recoveredMs = Date.now() - restartedAt;
  await expect(racing).resolves.toBeDefined();
  const info = await fh.call('get_available_resource', {}, 30);
  expect(info).toBeTruthy();
  // A write-heavy request end to end (claim, actions, instance rows) after the restart.
  const spec = { uuid: crypto.randomUUID(), name: 'pg', project_id: 'fault', image: TEST_IMAGE, hostname: 'pg-after',
    flavor: { vcpus: 1, memory_mb: 32, cpu_policy: 'shared' }, networks: [] };
  const r = await fh.call('build_and_run_instance', { instance: spec }, 90);
  expect(r.vm_state).toBe('active');
  await fh.call('terminate_instance', { instance_uuid: spec.uuid }, 60);
  // eslint-disable-next-line no-console
  console.log(`fault-postgres summary ${JSON.stringify({ restartMs: restartedAt - t0, heartbeatBackWithinMs: recoveredMs, hbAfter: new Date(hbAfter).toISOString() })}`);
});

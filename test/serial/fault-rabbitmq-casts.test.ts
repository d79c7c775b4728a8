/**
 * RabbitMQ restarted (rabbitmqctl stop_app / start_app) in the middle of a batch of
 * build_and_run_instance casts to a running compute service. Every request the service accepted
 * (persisted in rpc_requests) is done exactly once: one row per _unique_id, status done,
 * attempts 1, one instance, one `create` action, one container. Casts still queued in the
 * broker when it stopped are lost with the non-durable queues (oslo's default topology, as
 * in oslo): they are counted and must have left no trace at all. RabbitMQ is always started again.
 * SERIAL ONLY: stop_app cuts every AMQP connection on the machine.
 */
import crypto from 'node:crypto';
import { bounceRabbitmq, containersOf, faultHost, rabbitmqctl, TEST_IMAGE, waitFor, type FaultHost } from './fault-helpers';

jest.setTimeout(150000);

let fh: FaultHost;

beforeAll(async () => {
  fh = await faultHost('flt-amqp');
  await fh.start();
});

afterAll(async () => {
  await rabbitmqctl('start_app').catch(() => undefined);
  await fh?.close();
});

test('broker restart during 30 casts: every accepted request done exactly once, nothing half-done', async () => {
  const N = 30;
  const specs = Array.from({ length: N }, (_, i) => ({
    uuid: crypto.randomUUID(), name: `q${i}`, project_id: 'fault', image: TEST_IMAGE, hostname: `q-${i}`,
    flavor: { vcpus: 1, memory_mb: 16, cpu_policy: 'shared' }, networks: [],
  }));
  await fh.call('get_available_resource', {}, 30);
  const sent: Array<{ uuid: string; ok: boolean; error?: string }> = [];
  // 10 casts/s; the broker goes away after ~1 s for 1.5 s.
  const sender = (async () => {
    for (const s of specs) {
      try {
        await fh.client.cast(fh.host, 'build_and_run_instance', { instance: s });
        sent.push({ uuid: s.uuid, ok: true });
      } catch (err) {
        sent.push({ uuid: s.uuid, ok: false, error: (err as Error).message });
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  })();
  await new Promise((r) => setTimeout(r, 1000));
  await bounceRabbitmq(1500);
  await sender;

  // Wait until every accepted request is finished.
  const uuids = specs.map((s) => s.uuid);
  const rows = await waitFor('accepted requests finished', async () =>
    fh.t.db('rpc_requests').where({ method: 'build_and_run_instance' }).select('unique_id', 'status', 'attempts', fh.t.db.raw(`args->'instance'->>'uuid' as uuid`)),
  (rs: Array<{ status: string }>) => rs.length > 0 && rs.every((r) => r.status === 'done' || r.status === 'failed'), 90000, 500);
  // Casts still in flight may land a little later: wait for the count to settle.
  await new Promise((r) => setTimeout(r, 3000));
  const finalRows = (await fh.t.db('rpc_requests').where({ method: 'build_and_run_instance' })
    .select('unique_id', 'status', 'attempts', fh.t.db.raw(`args->'instance'->>'uuid' as uuid`))) as Array<{ unique_id: string; status: string; attempts: number; uuid: string }>;
  expect(finalRows.length).toBeGreaterThanOrEqual(rows.length);

  const containers = await containersOf(fh.host);
  const actions = (await fh.t.db('instance_actions').where({ action: 'create' }).select('instance_uuid')) as Array<{ instance_uuid: string }>;
  const instances = (await fh.t.db('instances').select('uuid', 'vm_state', 'task_state')) as Array<{ uuid: string; vm_state: string; task_state: string | null }>;
  const count = <T>(xs: T[], f: (x: T) => boolean): number => xs.filter(f).length;
  const problems: string[] = [];
  let accepted = 0;
  let lost = 0;
  for (const u of uuids) {
    const reqs = finalRows.filter((r) => r.uuid === u);
    const nContainers = count(containers, (c) => c.uuid === u);
    const nActions = count(actions, (a) => a.instance_uuid === u);
    const inst = instances.find((i) => i.uuid === u);
    if (reqs.length === 0) {
      lost++;
      if (nContainers || nActions || inst) problems.push(`${u}: never accepted but has side effects (${nContainers} containers, ${nActions} actions, instance ${inst?.vm_state})`);
      continue;
    }
    accepted++;
    if (reqs.length !== 1) problems.push(`${u}: ${reqs.length} rpc_requests rows`);
    if (reqs[0]!.status !== 'done' || reqs[0]!.attempts !== 1) problems.push(`${u}: request ${reqs[0]!.status} after ${reqs[0]!.attempts} attempt(s)`);
    if (nContainers !== 1) problems.push(`${u}: ${nContainers} containers`);
    if (nActions !== 1) problems.push(`${u}: ${nActions} create actions`);
    if (inst?.vm_state !== 'active' || inst.task_state) problems.push(`${u}: instance ${inst?.vm_state}/${inst?.task_state}`);
  }
  // eslint-disable-next-line no-console
  console.log(`fault-rabbitmq summary ${JSON.stringify({ sent: N, publishFailed: sent.filter((s) => !s.ok).length, accepted, lostInBroker: lost,
    lostAfterConfirmedPublish: sent.filter((x) => x.ok && !finalRows.some((r) => r.uuid === x.uuid)).length, containers: containers.length })}`);
  expect(problems).toEqual([]);
  expect(accepted).toBeGreaterThanOrEqual(N / 2);
  // A publish that failed is reported to the sender, never silently dropped.
  for (const s of sent.filter((x) => !x.ok)) expect(s.error).toBeTruthy();
  // And the service serves normally afterwards.
  await expect(fh.call('list_instances', {}, 30)).resolves.toBeDefined();
});

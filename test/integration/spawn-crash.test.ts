import crypto from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { NetworksRepo } from '../../services/db/networks-repo';
import { RpcClient } from '../../services/rpc/client';
import { instanceKey } from '../../drivers/network/names';
import { freshDatabase, type TestDatabase } from '../helpers/db';
import { hostLinks, instanceSpec, ovsPorts, run } from '../helpers/compute-harness';
import { eventually, startService, type ServiceProcess } from '../helpers/service-process';

jest.setTimeout(180000);

describe('SIGKILL in the middle of a spawn', () => {
  let t: TestDatabase;
  let stateDir: string;
  let client: RpcClient;
  const procs: ServiceProcess[] = [];
  const suffix = crypto.randomBytes(3).toString('hex');
  const host = `crash-${suffix}`;
  const exchange = `test_crash_${suffix}`;

  const env = (extra: Record<string, string> = {}) => ({
    NODE_ENV: 'test', LOG_LEVEL: 'warn', COMPUTE_HOST: host, COMPUTE_DATABASE_URL: t.url, COMPUTE_CONTROL_EXCHANGE: exchange,
    COMPUTE_RPC_TOPIC: `compute_crash_${suffix}`, COMPUTE_STATE_DIR: stateDir, COMPUTE_VOLUME_ROOTS: path.join(stateDir, 'volumes'), COMPUTE_STOP_TIMEOUT_SEC: '1', ...extra,
  });

  beforeAll(async () => {
    t = await freshDatabase('crash');
    stateDir = await fs.mkdtemp(path.join(os.tmpdir(), 'compute-crash-'));
    await new NetworksRepo(t.db).create({ name: 'crashnet', type: 'ovs-vlan', bridge: 'br-int', vlan: 3201, cidr: '198.19.51.0/24',
      gateway: '198.19.51.1', rangeStart: '198.19.51.10', rangeEnd: '198.19.51.100', hostnameTemplate: 'c-{o4}', domain: 'crash.test' });
    client = await RpcClient.connect({ amqpUrl: 'amqp://guest:guest@127.0.0.1:5672/', controlExchange: exchange, topic: `compute_crash_${suffix}` });
  });

  afterAll(async () => {
    for (const p of procs) await p.stop('SIGKILL');
    const ids = (await run('docker', ['ps', '-aq', '--filter', `label=compute.host=${host}`])).stdout.split('\n').filter(Boolean);
    if (ids.length) await run('docker', ['rm', '-f', ...ids]);
    await client?.close();
    await t?.drop();
    await fs.rm(stateDir, { recursive: true, force: true });
  });

  test.each(['create', 'post_start'])('killed after %s: after restart the instance is in error and nothing leaked', async (step) => {
    const first = startService(env({ COMPUTE_TEST_HANG_AFTER_STEP: step }), ['--no-api']);
    procs.push(first);
    const s = instanceSpec({ networks: [{ network: 'crashnet' }], flavor: { vcpus: 1, memory_mb: 32, cpu_policy: 'dedicated' } });
    // The cast is accepted (persisted) by the service, which then hangs inside the pipeline.
    // Cast once the service's queue exists (a cast to a missing queue is dropped by the broker).
    await eventually(() => client.call(host, 'get_available_resource', {}, { timeout: 5 }), (r) => !!r, 60000, 300);
    await client.cast(host, 'build_and_run_instance', { instance: s });
    // Observable proof that the step's work was done before the kill.
    const reached = await eventually(() => t.db('instances').where({ uuid: s.uuid }).first(),
      (r) => (step === 'create' ? !!r?.container_id : r?.task_state === 'post_starting' && r?.vm_state === 'active'), 60000, 100);
    expect(reached).toBeTruthy();
    if (step === 'post_start') {
      expect((await run('docker', ['ps', '-q', '--filter', `label=compute.instance-uuid=${s.uuid}`])).stdout.trim()).not.toBe('');
    }
    await first.stop('SIGKILL');

    const second = startService(env(), ['--no-api']);
    procs.push(second);
    const inst = await eventually(() => t.db('instances').where({ uuid: s.uuid }).first(), (r) => r?.vm_state === 'error', 60000);
    expect(inst.vm_state).toBe('error');
    expect(inst.fault.message).toMatch(/interrupted by a restart/);
    expect(await t.db('cpu_pins').where({ instance_uuid: s.uuid })).toHaveLength(0);
    expect(await t.db('ip_allocations').where({ instance_uuid: s.uuid })).toHaveLength(0);
    expect((await run('docker', ['ps', '-aq', '--filter', `label=compute.instance-uuid=${s.uuid}`])).stdout.trim()).toBe('');
    expect((await hostLinks()).filter((l) => l.includes(instanceKey(s.uuid)))).toEqual([]);
    // (other test files create links in parallel: compare only what belongs to this instance)
    expect((await ovsPorts('br-int')).filter((p) => p.includes(instanceKey(s.uuid)))).toEqual([]);
    // the interrupted request was failed explicitly, not left hanging
    const req = await eventually(() => t.db('rpc_requests').where({ method: 'build_and_run_instance' }).whereRaw(`args->'instance'->>'uuid' = ?`, [s.uuid]).first(),
      (r) => r?.status === 'failed', 30000);
    expect(req.status).toBe('failed');
    await second.stop('SIGTERM');
  });
});

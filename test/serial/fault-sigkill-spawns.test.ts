/**
 * SIGKILL of the real service process (node dist/services/main.js) at seeded random moments
 * while 30 build_and_run_instance casts are being worked on; restarted after each kill. After the
 * last restart every instance ends active or error (none stuck building, no request left
 * accepted/running), the network leak audit (auditLeaks with the live set from the DB) finds
 * nothing of this test's instances, and every container with our host label belongs to a live
 * instance (and every active instance has its running container).
 * Seed: FAULT_SEED (default 30). Network: ovs-vlan 3530, 198.19.83.0/24.
 */
import crypto from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { ExecFileRunner } from '../../drivers/network/exec';
import { auditLeaks } from '../../drivers/network/leak-audit';
import { instanceKey } from '../../drivers/network/names';
import { RpcClient } from '../../services/rpc/client';
import { freshDatabase, type TestDatabase } from '../helpers/db';
import { startService, type ServiceProcess } from '../helpers/service-process';
import { AMQP_URL, containersOf, createNetwork, removeContainersOf, run, TEST_IMAGE, waitFor } from './fault-helpers';

jest.setTimeout(200000);

const SEED = Number(process.env.FAULT_SEED ?? 30);
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = Math.imul(a ^ (a >>> 15), a | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const suffix = crypto.randomBytes(3).toString('hex');
const host = `flt-kill-${suffix}`;
const topic = `compute_flt_kill_${suffix}`;
const exchange = `test_flt_kill_${suffix}`;
let t: TestDatabase;
let stateDir: string;
let client: RpcClient;
let proc: ServiceProcess | undefined;

const env = (): Record<string, string> => ({
  NODE_ENV: 'test', LOG_LEVEL: 'warn', COMPUTE_HOST: host, COMPUTE_DATABASE_URL: t.url, COMPUTE_CONTROL_EXCHANGE: exchange,
  COMPUTE_RPC_TOPIC: topic, COMPUTE_STATE_DIR: stateDir, COMPUTE_VOLUME_ROOTS: path.join(stateDir, 'volumes'), COMPUTE_STOP_TIMEOUT_SEC: '1',
});

async function startReady(): Promise<ServiceProcess> {
  const p = startService(env(), ['--no-api']);
  await waitFor('service answering', () => client.call(host, 'get_available_resource', {}, { timeout: 3 }), (r) => !!r, 60000, 200);
  return p;
}

beforeAll(async () => {
  t = await freshDatabase('fltkill');
  stateDir = await fs.mkdtemp(path.join(os.tmpdir(), 'compute-fltkill-'));
  await createNetwork(t, 'knet', 3530, 83);
  client = await RpcClient.connect({ amqpUrl: AMQP_URL, controlExchange: exchange, topic, defaultTimeoutSec: 60 });
});

afterAll(async () => {
  try {
    // Clean up through the service (unplug, release), then by label whatever is left.
    if (proc && proc.child.exitCode === null) {
      const live = await t.db('instances').whereNull('deleted_at').where({ host }).select('uuid').catch(() => []);
      for (const { uuid } of live) await client.call(host, 'terminate_instance', { instance_uuid: uuid }, { timeout: 30 }).catch(() => undefined);
    }
  } finally {
    await proc?.stop('SIGKILL');
    await removeContainersOf(host);
    const all = (await t.db('instances').select('uuid').catch(() => [])) as Array<{ uuid: string }>;
    for (const { uuid } of all) {
      const port = `cvh${instanceKey(uuid)}0`;
      await run('ovs-vsctl', ['--timeout=10', '--if-exists', 'del-port', 'br-int', port]).catch(() => undefined);
      await run('ip', ['link', 'del', port]).catch(() => undefined);
    }
    await client?.close();
    await t?.drop();
    await fs.rm(stateDir, { recursive: true, force: true });
  }
});

test('30 spawns, SIGKILL at seeded random points: all active or error, audit clean, no stray container', async () => {
  const rnd = prng(SEED);
  const N = 30;
  const specs = Array.from({ length: N }, (_, i) => ({
    uuid: crypto.randomUUID(), name: `k${i}`, project_id: 'fault', image: TEST_IMAGE,
    // some dedicated: with 2 CPUs most of those are refused (NoCapacity -> error), which is an outcome too
    flavor: { vcpus: 1, memory_mb: 16, cpu_policy: i % 6 === 0 ? 'dedicated' : 'shared', pids_limit: 64 }, networks: [{ network: 'knet' }],
  }));
  proc = await startReady();
  // Five rounds: cast six spawns, SIGKILL after a seeded random delay, restart. A kill lands
  // wherever the pipelines are (claim, create, start, post_start, hosts refresh, reply...).
  const kills: Array<{ afterMs: number; states: Record<string, number> }> = [];
  const KILLS = 5;
  for (let k = 0; k < KILLS; k++) {
    for (const s of specs.slice(k * 6, k * 6 + 6)) await client.cast(host, 'build_and_run_instance', { instance: s });
    const afterMs = Math.round(100 + rnd() * 2400);
    await new Promise((r) => setTimeout(r, afterMs));
    const states = Object.fromEntries(((await t.db('instances').select(t.db.raw(`coalesce(task_state, vm_state) as s`)).count('* as n').groupBy('s')) as Array<{ s: string; n: string }>)
      .map((r) => [r.s, Number(r.n)]));
    kills.push({ afterMs, states });
    await proc.stop('SIGKILL');
    proc = await startReady();
  }

  // Everything settles: every cast became an instance that is active or error, nothing in flight.
  const final = await waitFor('all instances active or error', async () => (await t.db('instances').select('uuid', 'vm_state', 'task_state')) as Array<{ uuid: string; vm_state: string; task_state: string | null }>,
    (rows) => rows.length === N && rows.every((r) => (r.vm_state === 'active' || r.vm_state === 'error') && !r.task_state), 120000, 500);
  await waitFor('no request accepted/running', () => t.db('rpc_requests').whereIn('status', ['accepted', 'running']).count('* as n').first(),
    (r) => Number(r?.n) === 0, 30000, 300);
  const liveUuids = final.filter((r) => r.vm_state === 'active').map((r) => r.uuid);
  // Both outcomes occur with this seed (a kill that hits nothing proves nothing).
  expect(liveUuids.length).toBeGreaterThan(0);
  expect(liveUuids.length).toBeLessThan(N);

  // Leak audit with the live set from the DB, restricted to this test's instances (other links may exist on the host).
  const ours = new Set(specs.map((s) => instanceKey(s.uuid)));
  const leaks = (await auditLeaks(new ExecFileRunner(), liveUuids, { ovsBridge: 'br-int' })).filter((l) => ours.has(l.instance) || specs.some((s) => s.uuid === l.instance));
  expect(leaks).toEqual([]);
  // No container without a live instance; every live instance has its running container.
  const containers = await containersOf(host);
  expect(containers.filter((c) => !liveUuids.includes(c.uuid))).toEqual([]);
  for (const u of liveUuids) expect(containers.filter((c) => c.uuid === u && c.running)).toHaveLength(1);
  // Error instances hold nothing.
  const errorUuids = final.filter((r) => r.vm_state === 'error').map((r) => r.uuid);
  if (errorUuids.length) {
    expect(await t.db('ip_allocations').whereIn('instance_uuid', errorUuids)).toHaveLength(0);
    expect(await t.db('cpu_pins').whereIn('instance_uuid', errorUuids)).toHaveLength(0);
  }
  const faults = (await t.db('instances').where({ vm_state: 'error' }).select('fault')) as Array<{ fault: { step?: string; message?: string } | null }>;
  const reasons: Record<string, number> = {};
  for (const f of faults) {
    const why = /interrupted by a restart/.test(f.fault?.message ?? '') ? `interrupted (${f.fault?.step})` : (f.fault?.message ?? 'none').split(':')[0]!.slice(0, 60);
    reasons[why] = (reasons[why] ?? 0) + 1;
  }
  // eslint-disable-next-line no-console
  console.log(`fault-sigkill summary ${JSON.stringify({ seed: SEED, kills, active: liveUuids.length, error: errorUuids.length, errorReasons: reasons })}`);
});

/**
 * Wire compatibility with the real thing: Debian's python3-oslo.messaging 14 RPCClient, unmodified,
 * calls our server. Its transport declares the control exchange, the fanout exchange and its reply
 * queue itself, so a declaration that differed from ours would make the broker refuse it.
 */
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { startComputeRpc, type ComputeRpcHandle } from '../../services/compute/rpc';
import { acquireRpcSuiteLock, AMQP_URL, newProbe, rand, rpcTestEnv, seedInstance, testEndpoints, waitFor, type Probe, type RpcTestEnv } from './rpc-harness';

const run = promisify(execFile);
let env: RpcTestEnv;
const host = `rpc-py-${rand()}`;
let server: ComputeRpcHandle;
let probe: Probe;
const pythonQueues: string[] = [];

let releaseLock: (() => void) | undefined;

beforeAll(async () => {
  releaseLock = await acquireRpcSuiteLock();
  env = await rpcTestEnv('py');
  probe = newProbe();
  server = await startComputeRpc({ config: env.config(host), db: env.tdb.db, endpoints: testEndpoints(env.tdb, host, probe) });
}, 120000);

afterAll(async () => {
  await server?.stop(5000);
  await env?.cleanup([host], pythonQueues);
});

// Separate hook: runs even if the clean-up above failed.
afterAll(() => releaseLock?.());

type Outcome = string & { ok?: unknown; remote_error?: { exc_type: string; value: string; str: string }; error?: { type: string; str: string } };

test('an unmodified oslo.messaging RPCClient calls, casts and gets RemoteError for refusals', async () => {
  const uuid = await seedInstance(env.tdb, host, { task_state: null });
  const script = path.join(__dirname, 'python', 'oslo_client.py');
  const { stdout } = await run('/usr/bin/python3', [script, AMQP_URL.replace(/^amqp:/, 'rabbit:'), env.exchange, env.topic, host, uuid], { timeout: 90000 });
  const out = JSON.parse(stdout.trim().split('\n').pop()!) as Record<string, Outcome>;
  if (!out.get_available_resource?.ok) throw new Error(`python client: ${stdout}`);
  if (typeof out.reply_q === 'string') pythonQueues.push(out.reply_q);

  expect(out.get_available_resource.ok).toMatchObject({ host, registered: true, vcpus: 8, memory_mb: 16384, running_instances: 1 });
  expect(out.get_info.ok).toMatchObject({ uuid, vm_state: 'active', power_state: 'running', task_state: null, host });

  expect(out.get_info_missing.remote_error).toMatchObject({ exc_type: 'NotFound', value: expect.stringContaining('could not be found') });
  expect(out.unknown_method.remote_error).toMatchObject({
    exc_type: 'NoSuchMethod',
    value: 'Endpoint does not support RPC method reticulate_splines',
  });
  expect(out.invalid_args.remote_error).toMatchObject({ exc_type: 'InvalidParameter', value: expect.stringContaining('unknown field "bogus"') });
  expect(out.bad_version.remote_error).toMatchObject({ exc_type: 'UnsupportedVersion', value: expect.stringContaining('RPC version 2.0') });
  expect(out.call_monitor.ok).toEqual({ tag: 'python-cm', host });
  expect(out.any_host.ok).toEqual({ host, value: 'py' });
  expect(out.cast).toEqual({ ok: null });
  expect(out.fanout).toEqual({ ok: null });

  await waitFor(() => probe.records.some((r) => r.value === 'python-cast') && probe.records.some((r) => r.value === 'python-fanout'), 5000, 'python casts');
  const rec = probe.records.find((r) => r.value === 'python-cast')!;
  expect(rec.ctx).toMatchObject({ requestId: 'req-python-1', userId: 'admin-user', projectId: 'admin-project', roles: ['admin'], isAdmin: true });
  expect(rec.ctx.raw.auth_token).toBe('***');
  expect(probe.runs.get('python-cm')).toBe(1);
}, 120000);

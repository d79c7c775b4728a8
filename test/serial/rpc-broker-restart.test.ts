/**
 * RabbitMQ restarts (rabbitmqctl stop_app / start_app) while a call runs: both sides reconnect
 * with backoff and declare their topology again; the call completes (or fails with a clear
 * Timeout) and the handler runs exactly once. The broker is always started again.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { startComputeRpc, type ComputeRpcHandle } from '../../services/compute/rpc';
import { Timeout } from '../../services/errors';
import { RpcClient } from '../../services/rpc/client';
import { acquireRpcSuiteLock, AMQP_URL, newProbe, rand, rpcTestEnv, testEndpoints, waitFor, type Probe, type RpcTestEnv } from '../integration/rpc-harness';

const run = promisify(execFile);
let env: RpcTestEnv;
const host = `rpc-br-${rand()}`;
let server: ComputeRpcHandle;
let client: RpcClient;
let probe: Probe;
const unhandled: unknown[] = [];
const onUnhandled = (r: unknown): void => void unhandled.push(r);

let releaseLock: (() => void) | undefined;

beforeAll(async () => {
  releaseLock = await acquireRpcSuiteLock();
  process.on('unhandledRejection', onUnhandled);
  env = await rpcTestEnv('brk');
  probe = newProbe();
  server = await startComputeRpc({ config: env.config(host, { heartbeatSec: 2 }), db: env.tdb.db, endpoints: testEndpoints(env.tdb, host, probe) });
  client = await RpcClient.connect({ amqpUrl: AMQP_URL, controlExchange: env.exchange, topic: env.topic, heartbeatSec: 2, defaultTimeoutSec: 30 });
}, 120000);

afterAll(async () => {
  process.off('unhandledRejection', onUnhandled);
  await client?.close();
  await server?.stop(5000);
  await env?.cleanup([host]);
});

// Separate hook: runs even if the clean-up above failed.
afterAll(() => releaseLock?.());

async function rabbitmqctl(cmd: 'stop_app' | 'start_app' | 'await_startup'): Promise<void> {
  await run('rabbitmqctl', [cmd], { timeout: 60000 });
}

test('a call in flight survives a broker restart and runs once', async () => {
  const tag = `restart-${rand()}`;
  const call = client.call(host, 'slow', { ms: 4000, tag }, { timeout: 40 });
  call.catch(() => undefined);
  await waitFor(() => probe.runs.get(tag) === 1, 5000, 'handler started');
  try {
    await rabbitmqctl('stop_app');
    await new Promise((r) => setTimeout(r, 700));
  } finally {
    await rabbitmqctl('start_app');
  }
  let outcome: unknown;
  try {
    outcome = await call;
  } catch (err) {
    // The only acceptable failure is a clear timeout, never a silent hang or a second run.
    expect(err).toBeInstanceOf(Timeout);
    outcome = err;
  }
  expect(outcome).toEqual({ tag, host });
  expect(probe.runs.get(tag)).toBe(1);
  const row = await env.tdb.db('rpc_requests').whereRaw(`args->>'tag' = ?`, [tag]).first();
  expect(row).toMatchObject({ status: 'done', attempts: 1 });

  // Topology is back: a fresh call, a cast and a fanout all work after the restart.
  await expect(client.call(host, 'echo', { value: 'after' }, { timeout: 20 })).resolves.toEqual({ host, value: 'after' });
  await client.fanoutCast('record', { value: `fan-${tag}` });
  await waitFor(() => probe.records.some((r) => r.value === `fan-${tag}`), 10000, 'fanout after restart');
  expect(unhandled).toEqual([]);
}, 90000);

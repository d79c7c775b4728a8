/**
 * TS client <-> TS server on the real RabbitMQ and PostgreSQL: call, cast, fanout, failures,
 * version/method/argument refusals, duplicates, call-monitor heartbeats, concurrency bounds,
 * instance locks, start-up recovery of unfinished requests, poison messages.
 */
import crypto from 'node:crypto';
import { connect, type ChannelModel } from 'amqplib';
import { startComputeRpc, type ComputeRpcHandle } from '../../services/compute/rpc';
import { Conflict, Internal, InvalidInput, NoSuchMethod, NotFound, Timeout, Unavailable, UnsupportedVersion } from '../../services/errors';
import { RpcClient } from '../../services/rpc/client';
import { buildRequest, encodeEnvelope, newId } from '../../services/rpc/envelope';
import { remoteClassOf } from '../../services/rpc/failures';
import { acquireRpcSuiteLock, AMQP_URL, newProbe, rand, rpcTestEnv, seedInstance, testEndpoints, waitFor, type Probe, type RpcTestEnv } from './rpc-harness';

let env: RpcTestEnv;
const hostA = `rpc-a-${rand()}`;
const hostB = `rpc-b-${rand()}`;
let probeA: Probe;
let probeB: Probe;
let serverA: ComputeRpcHandle;
let serverB: ComputeRpcHandle;
let client: RpcClient;
let raw: ChannelModel;
const extraQueues: string[] = [];

let releaseLock: (() => void) | undefined;

beforeAll(async () => {
  releaseLock = await acquireRpcSuiteLock();
  env = await rpcTestEnv('srv');
  probeA = newProbe();
  probeB = newProbe();
  const cfgA = env.config(hostA, { concurrency: 3 });
  serverA = await startComputeRpc({ config: cfgA, db: env.tdb.db, endpoints: testEndpoints(env.tdb, hostA, probeA) });
  serverB = await startComputeRpc({ config: env.config(hostB), db: env.tdb.db, endpoints: testEndpoints(env.tdb, hostB, probeB) });
  client = await RpcClient.connect({ amqpUrl: AMQP_URL, controlExchange: env.exchange, topic: env.topic, defaultTimeoutSec: 15 });
  raw = await connect(AMQP_URL);
}, 120000);

afterAll(async () => {
  await client?.close();
  await serverA?.stop(5000);
  await serverB?.stop(5000);
  await raw?.close().catch(() => undefined);
  await env?.cleanup([hostA, hostB], extraQueues);
});

// Separate hook: runs even if the clean-up above failed.
afterAll(() => releaseLock?.());

async function errorOf(p: Promise<unknown>): Promise<Error> {
  try {
    await p;
  } catch (err) {
    return err as Error;
  }
  throw new Error('expected a rejection');
}

/** A reply queue of our own, to look at the raw reply messages. */
async function rawReplyQueue(): Promise<{ name: string; messages: Array<Record<string, unknown> & { _props: Record<string, unknown> }> }> {
  const ch = await raw.createChannel();
  const name = `reply_${newId()}`;
  extraQueues.push(name);
  await ch.assertQueue(name, { durable: false, autoDelete: false, arguments: { 'x-expires': 1800000 } });
  const messages: Array<Record<string, unknown> & { _props: Record<string, unknown> }> = [];
  await ch.consume(name, (m) => {
    if (!m) return;
    const outer = JSON.parse(m.content.toString('utf8'));
    messages.push({ ...JSON.parse(outer['oslo.message']), _outer: outer, _props: { ...m.properties, exchange: m.fields.exchange, routingKey: m.fields.routingKey } });
  }, { noAck: true });
  return { name, messages };
}

async function publishRaw(routingKey: string, body: Buffer): Promise<void> {
  const ch = await raw.createConfirmChannel();
  await new Promise<void>((resolve, reject) => ch.publish(env.exchange, routingKey, body, { contentType: 'application/json' }, (e) => (e ? reject(e) : resolve())));
  await ch.close();
}

describe('calls to the compute endpoints', () => {
  test('get_available_resource reports capacity and usage of this host', async () => {
    await seedInstance(env.tdb, hostA, { vcpus: 2, memory_mb: 1024 });
    const r = await client.call<Record<string, unknown>>(hostA, 'get_available_resource', {});
    expect(r).toMatchObject({ host: hostA, registered: true, vcpus: 8, memory_mb: 16384, memory_mb_reserved: 512, dedicated_cpus: [0, 1, 2, 3] });
    expect(r.vcpus_used).toBeGreaterThanOrEqual(2);
    expect(r.memory_mb_used).toBeGreaterThanOrEqual(1024);
  });

  test('get_info returns the recorded state; NotFound for an unknown uuid', async () => {
    const uuid = await seedInstance(env.tdb, hostA, { task_state: 'rebooting' });
    const info = await client.call(hostA, 'get_info', { instance_uuid: uuid });
    expect(info).toMatchObject({ uuid, vm_state: 'active', power_state: 'running', task_state: 'rebooting', host: hostA });
    expect((info as { container_id: string }).container_id).toMatch(/^c0ffee/);

    const missing = crypto.randomUUID();
    const err = await errorOf(client.call(hostA, 'get_info', { instance_uuid: missing }));
    expect(err).toBeInstanceOf(NotFound);
    expect(err.message).toContain(missing);
    // The instance lives on A: B answers NotFound, naming where it is.
    const other = await errorOf(client.call(hostB, 'get_info', { instance_uuid: uuid }));
    expect(other).toBeInstanceOf(NotFound);
    expect(other.message).toContain(hostA);
  });

  test('list_instances lists only this host', async () => {
    const a = await seedInstance(env.tdb, hostA);
    const listA = await client.call<Array<{ uuid: string }>>(hostA, 'list_instances', {});
    expect(listA.map((i) => i.uuid)).toContain(a);
    const listB = await client.call<Array<{ uuid: string }>>(hostB, 'list_instances', {});
    expect(listB.map((i) => i.uuid)).not.toContain(a);
  });

  test('a call without host goes to the shared topic queue and is answered by one host', async () => {
    const r = await client.call<{ host: string; value: number }>(undefined, 'echo', { value: 7 });
    expect(r.value).toBe(7);
    expect([hostA, hostB]).toContain(r.host);
  });
});

describe('cast and fanout', () => {
  test('cast runs once on the named host and carries the context', async () => {
    const v = `cast-${rand()}`;
    await client.cast(hostB, 'record', { value: v }, { context: { request_id: 'req-cast-1', user_id: 'u1', project_id: 'p9', roles: ['admin'], is_admin: true } });
    await waitFor(() => probeB.records.some((r) => r.value === v), 5000, 'cast');
    const rec = probeB.records.find((r) => r.value === v)!;
    expect(rec.ctx).toMatchObject({ requestId: 'req-cast-1', userId: 'u1', projectId: 'p9', roles: ['admin'], isAdmin: true });
    expect(probeA.records.some((r) => r.value === v)).toBe(false);
  });

  test('fanout reaches every host once', async () => {
    const v = `fan-${rand()}`;
    await client.fanoutCast('record', { value: v });
    await waitFor(() => probeA.records.some((r) => r.value === v) && probeB.records.some((r) => r.value === v), 5000, 'fanout');
    await new Promise((r) => setTimeout(r, 300));
    expect(probeA.records.filter((r) => r.value === v)).toHaveLength(1);
    expect(probeB.records.filter((r) => r.value === v)).toHaveLength(1);
    // Both hosts stored it (same _unique_id, per-host key), neither skipped it as a duplicate.
    const rows = await env.tdb.db('rpc_requests').where({ method: 'record' }).whereRaw(`args->>'value' = ?`, [v]);
    expect(rows.map((r: { host: string }) => r.host).sort()).toEqual([hostA, hostB].sort());
  });

  test('cast to a host nobody serves fails fast instead of vanishing', async () => {
    const err = await errorOf(client.cast('no-such-host', 'record', { value: 1 }));
    expect(err).toBeInstanceOf(Unavailable);
    expect(err.message).toContain('no-such-host');
  });
});

describe('failures and refusals', () => {
  test('endpoint errors come back as the same ComputeError class with the remote message', async () => {
    const nf = await errorOf(client.call(hostA, 'fail', { kind: 'not_found' }));
    expect(nf).toBeInstanceOf(NotFound);
    expect(nf.message).toBe('widget 42 could not be found');
    const c = await errorOf(client.call(hostA, 'fail', { kind: 'conflict' }));
    expect(c).toBeInstanceOf(Conflict);
    expect(remoteClassOf(c as Conflict)).toBe('InstanceInvalidState');
    expect((c as Conflict).details).toMatchObject({ details: { vm_state: 'paused' }, remoteModule: 'container_compute.exception' });
    const crash = await errorOf(client.call(hostA, 'fail', { kind: 'crash' }));
    expect(crash).toBeInstanceOf(Internal);
    expect(crash.message).toContain('cannot read properties');
  });

  test('unknown method -> NoSuchMethod (oslo_messaging.rpc.dispatcher)', async () => {
    const err = await errorOf(client.call(hostA, 'reticulate_splines', {}));
    expect(err).toBeInstanceOf(NoSuchMethod);
    expect(err.message).toBe('Endpoint does not support RPC method reticulate_splines');
    expect((err as NoSuchMethod).details).toMatchObject({ remoteClass: 'NoSuchMethod', remoteModule: 'oslo_messaging.rpc.dispatcher' });
  });

  test('incompatible version or namespace -> UnsupportedVersion; compatible minor is accepted', async () => {
    for (const version of ['2.0', '1.1', '0.9']) {
      const err = await errorOf(client.call(hostA, 'echo', { value: 1 }, { version }));
      expect(err).toBeInstanceOf(UnsupportedVersion);
      expect(err.message).toContain(`RPC version ${version}`);
    }
    await expect(client.call(hostA, 'echo', { value: 1 }, { version: '1.0' })).resolves.toMatchObject({ value: 1 });
    const ns = await errorOf(client.call(hostA, 'echo', { value: 1 }, { namespace: 'baremetal' }));
    expect(ns).toBeInstanceOf(UnsupportedVersion);
    expect(ns.message).toContain('baremetal');
  });

  test('invalid args are refused before dispatch, naming the field', async () => {
    const extra = await errorOf(client.call(hostA, 'get_info', { instance_uuid: crypto.randomUUID(), flavour: 'x' }));
    expect(extra).toBeInstanceOf(InvalidInput);
    expect(extra.message).toContain('unknown field "flavour"');
    const missing = await errorOf(client.call(hostA, 'get_info', {}));
    expect(missing.message).toContain('missing required field "instance_uuid"');
    const bad = await errorOf(client.call(hostA, 'get_info', { instance_uuid: 'not-a-uuid' }));
    expect(bad.message).toContain('args.instance_uuid');
    expect((bad as InvalidInput).details).toMatchObject({ remoteClass: 'InvalidParameter' });
  });
});

describe('delivery guarantees', () => {
  test('a duplicate _unique_id runs once: the running duplicate waits, the late one gets the stored reply', async () => {
    const tag = `dup-${rand()}`;
    const uniqueId = newId();
    const first = client.call(hostA, 'slow', { ms: 800, tag }, { uniqueId });
    await new Promise((r) => setTimeout(r, 200));
    const second = client.call(hostA, 'slow', { ms: 800, tag }, { uniqueId });
    const [r1, r2] = await Promise.all([first, second]);
    expect(r1).toEqual({ tag, host: hostA });
    expect(r2).toEqual(r1);
    const r3 = await client.call(hostA, 'slow', { ms: 800, tag }, { uniqueId });
    expect(r3).toEqual(r1);
    expect(probeA.runs.get(tag)).toBe(1);
    const row = await env.tdb.db('rpc_requests').where({ unique_id: uniqueId }).first();
    expect(row).toMatchObject({ status: 'done', attempts: 1, kind: 'call', host: hostA, result: { tag, host: hostA } });

    // A stored failure is replayed too.
    const failId = newId();
    const e1 = await errorOf(client.call(hostA, 'fail', { kind: 'not_found' }, { uniqueId: failId }));
    const e2 = await errorOf(client.call(hostA, 'fail', { kind: 'not_found' }, { uniqueId: failId }));
    expect(e2).toBeInstanceOf(NotFound);
    expect(e2.message).toBe(e1.message);
  });

  test('a duplicate cast is skipped', async () => {
    const v = `dupcast-${rand()}`;
    const uniqueId = newId();
    await client.cast(hostA, 'record', { value: v }, { uniqueId });
    await client.cast(hostA, 'record', { value: v }, { uniqueId });
    await waitFor(() => probeA.records.some((r) => r.value === v), 5000, 'cast');
    await new Promise((r) => setTimeout(r, 400));
    expect(probeA.records.filter((r) => r.value === v)).toHaveLength(1);
  });

  test('the request is in rpc_requests before it runs (accepted/running), with context and no secrets', async () => {
    const tag = `persist-${rand()}`;
    const uniqueId = newId();
    const p = client.call(hostA, 'slow', { ms: 600, tag }, { uniqueId, context: { request_id: 'req-p', auth_token: 's3cret', roles: ['member'] } });
    await waitFor(async () => (await env.tdb.db('rpc_requests').where({ unique_id: uniqueId }).first())?.status === 'running', 3000, 'running row');
    await p;
    const row = await env.tdb.db('rpc_requests').where({ unique_id: uniqueId }).first();
    expect(row.context).toMatchObject({ request_id: 'req-p', auth_token: '***', roles: ['member'] });
    expect(row.args).toEqual({ ms: 600, tag });
  });
});

describe('replies on the wire', () => {
  test('exactly oslo: default exchange, routing key _reply_q, JSON utf-8, envelope 2.0, ending true; heartbeats only with _timeout', async () => {
    const q = await rawReplyQueue();
    const msgId = newId();
    await publishRaw(`${env.topic}.${hostA}`, encodeEnvelope(buildRequest({ method: 'slow', args: { ms: 2600, tag: `hb0-${rand()}` }, msgId, replyQ: q.name })));
    await waitFor(() => q.messages.length >= 1, 8000, 'reply');
    await new Promise((r) => setTimeout(r, 200));
    expect(q.messages).toHaveLength(1);
    const m = q.messages[0];
    expect(m._props).toMatchObject({ exchange: '', routingKey: q.name, contentType: 'application/json', contentEncoding: 'utf-8' });
    expect((m as unknown as { _outer: Record<string, unknown> })._outer['oslo.version']).toBe('2.0');
    expect(m).toMatchObject({ failure: null, ending: true, _msg_id: msgId });
    expect(typeof m._unique_id).toBe('string');

    const q2 = await rawReplyQueue();
    const msgId2 = newId();
    await publishRaw(
      `${env.topic}.${hostA}`,
      encodeEnvelope(buildRequest({ method: 'slow', args: { ms: 2600, tag: `hb1-${rand()}` }, msgId: msgId2, replyQ: q2.name, callMonitorTimeout: 2 })),
    );
    await waitFor(() => q2.messages.some((x) => x.ending === true), 8000, 'final reply');
    const beats = q2.messages.filter((x) => x.ending === false);
    expect(beats.length).toBeGreaterThanOrEqual(1);
    for (const b of beats) expect(b).toMatchObject({ result: null, failure: null, ending: false, _msg_id: msgId2 });
  });

  test('a call-monitor timeout shorter than the call succeeds thanks to heartbeats', async () => {
    const r = await client.call(hostA, 'slow', { ms: 4500, tag: `cm-${rand()}` }, { callMonitorTimeout: 2, timeout: 10 });
    expect(r).toMatchObject({ host: hostA });
  });

  test('a call to a host that never answers fails with a clear Timeout', async () => {
    // hostA has a queue; a handler slower than the timeout shows the client-side timeout.
    const err = await errorOf(client.call(hostA, 'slow', { ms: 2500, tag: `to-${rand()}` }, { timeout: 1 }));
    expect(err).toBeInstanceOf(Timeout);
    expect(err.message).toMatch(/Timed out waiting for a reply to message ID [0-9a-f]{32} \(slow on .*\) after 1s/);
  });
});

describe('concurrency', () => {
  test('at most config.rpc.concurrency requests run at once; one at a time per instance uuid', async () => {
    probeA.maxParallel = 0;
    const calls = Array.from({ length: 7 }, (_, i) => client.call(hostA, 'slow', { ms: 300, tag: `par-${i}-${rand()}` }));
    await Promise.all(calls);
    expect(probeA.maxParallel).toBe(3);

    probeA.maxParallelPerUuid = 0;
    const uuid = crypto.randomUUID();
    const t0 = Date.now();
    await Promise.all(Array.from({ length: 3 }, (_, i) => client.call(hostA, 'slow', { ms: 250, tag: `lock-${i}-${rand()}`, instance_uuid: uuid })));
    expect(probeA.maxParallelPerUuid).toBe(1);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(700);
  });
});

describe('poison messages', () => {
  test('are rejected without requeue, get a failure reply when an address is recoverable, and never block the queue', async () => {
    const key = `${env.topic}.${hostA}`;
    const q = await rawReplyQueue();
    const msgId = newId();
    await publishRaw(key, Buffer.from('{"oslo.version": "2.0", "oslo.message": "{not json'));
    await publishRaw(key, Buffer.from('[1,2,3]'));
    await publishRaw(key, Buffer.from('\x00\x01binary garbage'));
    await publishRaw(key, Buffer.from(JSON.stringify({ 'oslo.version': '3.0', 'oslo.message': '{}' })));
    await publishRaw(key, encodeEnvelope({ args: {}, _msg_id: msgId, _reply_q: q.name, _unique_id: newId() }));
    await publishRaw(key, encodeEnvelope({ method: 'echo', args: 'nope', _unique_id: newId() }));
    const bigMsgId = newId();
    const bigBody = encodeEnvelope({ method: 'echo', args: { value: 'a'.repeat(10 * 1024 * 1024) }, _msg_id: bigMsgId, _reply_q: q.name, _unique_id: newId() });
    expect(bigBody.length).toBeGreaterThan(10 * 1024 * 1024);
    await publishRaw(key, bigBody);

    // The queue keeps flowing: a normal call right behind them is answered.
    await expect(client.call(hostA, 'echo', { value: 'after-poison' })).resolves.toMatchObject({ value: 'after-poison' });
    await waitFor(() => q.messages.length >= 2, 5000, 'failure replies');
    const noMethod = q.messages.find((m) => m._msg_id === msgId)!;
    expect(JSON.parse(noMethod.failure as string)).toMatchObject({ class: 'InvalidParameter', message: expect.stringContaining('no "method"') });
    const tooBig = q.messages.find((m) => m._msg_id === bigMsgId)!;
    expect(JSON.parse(tooBig.failure as string).message).toContain('exceeds the limit');

    const ch = await raw.createChannel();
    const state = await ch.checkQueue(key);
    expect(state.messageCount).toBe(0);
    await ch.close();
  });
});

describe('start-up recovery', () => {
  test('accepted requests are run, running non-resumable ones are failed explicitly with a reply', async () => {
    const host = `rpc-rec-${rand()}`;
    const probe = newProbe();
    const q = await rawReplyQueue();
    const acceptedId = newId();
    const runningId = newId();
    const resumableId = newId();
    const v = `recovered-${rand()}`;
    const tag = `rec-${rand()}`;
    await env.tdb.db('rpc_requests').insert([
      { unique_id: acceptedId, method: 'record', kind: 'cast', host, status: 'accepted', args: JSON.stringify({ value: v }), context: JSON.stringify({ request_id: 'req-rec' }) },
      { unique_id: runningId, msg_id: 'm-running', method: 'slow', kind: 'call', host, status: 'running', reply_q: q.name, args: JSON.stringify({ ms: 1, tag }), attempts: 1 },
      { unique_id: resumableId, msg_id: 'm-resume', method: 'echo', kind: 'call', host, status: 'running', reply_q: q.name, args: JSON.stringify({ value: 5 }), attempts: 1 },
    ]);
    const srv = await startComputeRpc({ config: env.config(host), db: env.tdb.db, endpoints: testEndpoints(env.tdb, host, probe) });
    try {
      await waitFor(() => probe.records.some((r) => r.value === v), 5000, 'accepted cast resumed');
      expect(probe.records[0].ctx.requestId).toBe('req-rec');
      expect(probe.runs.get(tag)).toBeUndefined();
      await waitFor(() => q.messages.length >= 2, 5000, 'recovery replies');
      const failed = q.messages.find((m) => m._msg_id === 'm-running')!;
      expect(JSON.parse(failed.failure as string)).toMatchObject({ class: 'InternalError', message: expect.stringContaining('interrupted by a restart') });
      const resumed = q.messages.find((m) => m._msg_id === 'm-resume')!;
      expect(resumed).toMatchObject({ failure: null, result: { host, value: 5 } });
      const rows = await env.tdb.db('rpc_requests').whereIn('unique_id', [acceptedId, runningId, resumableId]).orderBy('unique_id');
      const byId = Object.fromEntries(rows.map((r: { unique_id: string; status: string; attempts: number }) => [r.unique_id, r]));
      expect(byId[acceptedId].status).toBe('done');
      expect(byId[runningId].status).toBe('failed');
      expect(byId[resumableId]).toMatchObject({ status: 'done', attempts: 2 });
    } finally {
      await srv.stop(5000);
      const ch = await raw.createChannel();
      ch.on('error', () => undefined);
      await ch.deleteQueue(`${env.topic}.${host}`).catch(() => undefined);
      await ch.close().catch(() => undefined);
    }
  });
});

/**
 * Shared set-up for the RPC integration tests: a private database, a unique control exchange,
 * topic and host per test file (queue names are global in a vhost), test endpoints with
 * observable side effects, and clean-up of every queue and exchange the file created.
 */
import crypto from 'node:crypto';
import { connect } from 'amqplib';
import { loadConfig, type Config } from '../../services/config';
import { createComputeEndpoints } from '../../services/compute/endpoints';
import { Conflict, NotFound } from '../../services/errors';
import type { EndpointTable, RequestContext } from '../../services/rpc/server';
import { freshDatabase, type TestDatabase } from '../helpers/db';

export const AMQP_URL = process.env.COMPUTE_TEST_AMQP_URL ?? 'amqp://guest:guest@127.0.0.1:5672/';

export function rand(): string {
  return crypto.randomBytes(4).toString('hex');
}

export interface RpcTestEnv {
  tdb: TestDatabase;
  exchange: string;
  topic: string;
  config(host: string, rpc?: Partial<Config['rpc']>): Config;
  /** Delete the topic queues of these hosts, the exchanges and anything else named. */
  cleanup(hosts: string[], extraQueues?: string[]): Promise<void>;
}

export async function rpcTestEnv(label: string): Promise<RpcTestEnv> {
  const tdb = await freshDatabase(label);
  const r = rand();
  const exchange = `test_${label}_${r}`;
  const topic = `compute_${label}_${r}`;
  return {
    tdb,
    exchange,
    topic,
    config(host, rpc = {}) {
      return loadConfig({
        argv: [],
        env: {},
        overrides: {
          host,
          amqpUrl: AMQP_URL,
          controlExchange: exchange,
          rpc: { topic, concurrency: 4, quorumQueues: false, heartbeatSec: 5, callTimeoutSec: 20, ...rpc },
        },
      });
    },
    async cleanup(hosts, extraQueues = []) {
      const conn = await connect(AMQP_URL);
      try {
        for (const q of [topic, ...hosts.map((h) => `${topic}.${h}`), ...extraQueues]) {
          const ch = await conn.createChannel();
          ch.on('error', () => undefined);
          await ch.deleteQueue(q).catch(() => undefined);
          await ch.close().catch(() => undefined);
        }
        for (const x of [exchange, `${topic}_fanout`]) {
          const ch = await conn.createChannel();
          ch.on('error', () => undefined);
          await ch.deleteExchange(x).catch(() => undefined);
          await ch.close().catch(() => undefined);
        }
      } finally {
        await conn.close();
        await tdb.drop();
      }
    },
  };
}

export interface Probe {
  /** Number of times each tag ran. */
  runs: Map<string, number>;
  /** Highest number of handlers running at the same time (overall / per instance uuid). */
  maxParallel: number;
  maxParallelPerUuid: number;
  records: Array<{ host: string; value: unknown; ctx: RequestContext }>;
}

export function newProbe(): Probe {
  return { runs: new Map(), maxParallel: 0, maxParallelPerUuid: 0, records: [] };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Compute endpoints plus test-only ones whose effects the tests can observe. */
export function testEndpoints(tdb: TestDatabase, host: string, probe: Probe): EndpointTable {
  let running = 0;
  const perUuid = new Map<string, number>();
  return {
    ...createComputeEndpoints({ db: tdb.db, host }),
    echo: {
      schema: { type: 'object', additionalProperties: false, properties: { value: {} } },
      resumable: true,
      async handler(_ctx, args: { value?: unknown }) {
        return { host, value: args.value ?? null };
      },
    },
    record: {
      schema: { type: 'object', additionalProperties: false, required: ['value'], properties: { value: {} } },
      resumable: true,
      async handler(ctx, args: { value: unknown }) {
        probe.records.push({ host, value: args.value, ctx });
        return null;
      },
    },
    slow: {
      schema: {
        type: 'object',
        additionalProperties: false,
        required: ['ms', 'tag'],
        properties: { ms: { type: 'integer', minimum: 0, maximum: 60000 }, tag: { type: 'string' }, instance_uuid: { type: 'string' } },
      },
      instanceUuidOf: (args: { instance_uuid?: string }) => args.instance_uuid,
      async handler(_ctx, args: { ms: number; tag: string; instance_uuid?: string }) {
        probe.runs.set(args.tag, (probe.runs.get(args.tag) ?? 0) + 1);
        running++;
        probe.maxParallel = Math.max(probe.maxParallel, running);
        if (args.instance_uuid) {
          const n = (perUuid.get(args.instance_uuid) ?? 0) + 1;
          perUuid.set(args.instance_uuid, n);
          probe.maxParallelPerUuid = Math.max(probe.maxParallelPerUuid, n);
        }
        try {
          await sleep(args.ms);
          return { tag: args.tag, host };
        } finally {
          running--;
          if (args.instance_uuid) perUuid.set(args.instance_uuid, (perUuid.get(args.instance_uuid) ?? 1) - 1);
        }
      },
    },
    fail: {
      schema: { type: 'object', additionalProperties: false, required: ['kind'], properties: { kind: { enum: ['not_found', 'conflict', 'crash'] } } },
      async handler(_ctx, args: { kind: string }) {
        if (args.kind === 'not_found') throw new NotFound('widget 42 could not be found');
        if (args.kind === 'conflict') throw new Conflict('instance is paused; cannot reboot', { details: { vm_state: 'paused' } });
        throw new TypeError('cannot read properties of undefined (reading "x")');
      },
    },
  };
}

/** Seed a host and an instance on it; returns the instance uuid. */
export async function seedInstance(tdb: TestDatabase, host: string, fields: Record<string, unknown> = {}): Promise<string> {
  await tdb.db('hosts')
    .insert({ name: host, vcpus: 8, memory_mb: 16384, memory_reserved_mb: 512, dedicated_cpus: [0, 1, 2, 3], shared_cpus: [4, 5, 6, 7] })
    .onConflict('name')
    .ignore();
  const uuid = crypto.randomUUID();
  await tdb.db('instances').insert({
    uuid,
    name: `vm-${uuid.slice(0, 8)}`,
    project_id: 'p1',
    host,
    vm_state: 'active',
    power_state: 'running',
    container_id: 'c0ffee' + uuid.replace(/-/g, '').slice(0, 10),
    hostname: `web-${uuid.slice(0, 4)}`,
    vcpus: 2,
    memory_mb: 1024,
    spec: JSON.stringify({ uuid }),
    ...fields,
  });
  return uuid;
}

export async function waitFor(cond: () => boolean | Promise<boolean>, timeoutMs = 10000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

const LOCK_FILE = '/tmp/compute-rpc-integration.lock';

/**
 * The broker-restart test bounces RabbitMQ, which would break calls of the other RPC test files
 * running in the other jest worker; these files take turns through this lock (a file created
 * with O_EXCL holding the owner's pid; a lock whose owner died is taken over).
 */
export async function acquireRpcSuiteLock(timeoutMs = 110000): Promise<() => void> {
  const fs = await import('node:fs');
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      fs.writeFileSync(LOCK_FILE, String(process.pid), { flag: 'wx' });
      let released = false;
      return () => {
        if (released) return;
        released = true;
        try {
          if (fs.readFileSync(LOCK_FILE, 'utf8') === String(process.pid)) fs.unlinkSync(LOCK_FILE);
        } catch {
          /* already gone */
        }
      };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      const owner = Number(fs.readFileSync(LOCK_FILE, 'utf8') || '0');
      let alive = owner > 0;
      try {
        if (alive) process.kill(owner, 0);
      } catch {
        alive = false;
      }
      if (!alive || owner === process.pid) {
        fs.rmSync(LOCK_FILE, { force: true });
        continue;
      }
      if (Date.now() > deadline) throw new Error(`RPC integration lock ${LOCK_FILE} held by pid ${owner} for too long`);
      await sleep(200);
    }
  }
}

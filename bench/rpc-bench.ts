/**
 * RPC benchmark: get_info round trips against
 *   (a) our TypeScript server (startComputeRpc: persist in rpc_requests, ack, run, store the
 *       outcome, reply) and
 *   (b) a plain Python oslo.messaging RPC server (executor 'threading') doing the same endpoint
 *       work: one PostgreSQL SELECT of the same instance row (bench/python/oslo_server.py),
 * both on one private database (one instance row), one private control exchange, one topic each.
 *
 * The same load generator drives both, in the same run: Debian's unmodified oslo.messaging
 * RPCClient (bench/python/oslo_load.py) and, as a second opinion, our TypeScript RpcClient
 * (bench/ts-load.ts), each in its own process. Phases: sequential (concurrency 1) and concurrent,
 * each preceded by warm-up calls; the order of the two servers alternates between phases.
 *
 * Knobs (environment): BENCH_RPC_SEQ_CALLS (2000), BENCH_RPC_CONC_CALLS (4000),
 * BENCH_RPC_CONCURRENCY (8), BENCH_RPC_WARMUP (200), BENCH_RPC_CLIENTS (python,ts),
 * BENCH_RPC_SERVER_CONCURRENCY (16: our rpc.concurrency default = the Python executor's threads),
 * BENCH_RPC_DB_POOL (10: knex's pool max in createDb = the Python server's psycopg2 pool).
 */
import crypto from 'node:crypto';
import path from 'node:path';
import { connect } from 'amqplib';
import type { ChildProcess } from 'node:child_process';
import { startComputeRpc, type ComputeRpcHandle } from '../services/compute/rpc';
import { loadConfig } from '../services/config';
import { createDb, type Db } from '../services/db/knex';
import { describeError } from '../services/errors';
import { logger } from '../services/logger';
import { ensureTemplateDatabase, freshDatabase, type TestDatabase } from '../test/helpers/db';
import { seedInstance } from '../test/integration/rpc-harness';
import {
  lastJsonLine,
  round,
  runChild,
  spawnTracked,
  stopChild,
  summarise,
  type BenchContext,
  type BenchModule,
  type BenchModuleResult,
  type BenchRatio,
  type BenchRow,
} from './lib';

const PYTHON = '/usr/bin/python3';
const AMQP_URL = process.env.COMPUTE_BENCH_AMQP_URL ?? 'amqp://guest:guest@127.0.0.1:5672/';

function envInt(name: string, dflt: number): number {
  const v = process.env[name];
  if (v === undefined || v === '') return dflt;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) throw new Error(`${name} must be a non-negative integer, got ${JSON.stringify(v)}`);
  return n;
}

type ClientKind = 'python' | 'ts';
type SubjectKind = 'ours' | 'oslo';

const CLIENT_LABEL: Record<ClientKind, string> = { python: 'oslo RPCClient (Py)', ts: 'our RpcClient (TS)' };
const SUBJECT_LABEL: Record<SubjectKind, string> = { ours: 'ours (TS)', oslo: 'oslo server (Py)' };

interface LoadOutput {
  latencies_ms?: number[];
  elapsed_s?: number;
  errors: number;
  first_error: string | null;
  reply_q: string | null;
}

interface PythonServer {
  child: ChildProcess;
  queues: string[];
  stderrTail(): string;
}

/** Start bench/python/oslo_server.py; resolves once it prints its ready line. */
async function startPythonServer(script: string, cfg: Record<string, unknown>, timeoutMs = 30000): Promise<PythonServer> {
  const child = spawnTracked(PYTHON, [script, JSON.stringify(cfg)]);
  let err = '';
  child.stderr!.on('data', (d: Buffer) => (err = (err + d.toString()).slice(-4000)));
  const server: PythonServer = { child, queues: [], stderrTail: () => err.trim().slice(-1500) };
  try {
    await new Promise<void>((resolve, reject) => {
      let out = '';
      const timer = setTimeout(() => reject(new Error(`oslo_server.py not ready after ${timeoutMs} ms; stderr: ${server.stderrTail()}`)), timeoutMs);
      const onData = (d: Buffer): void => {
        out += d.toString();
        let nl: number;
        while ((nl = out.indexOf('\n')) >= 0) {
          const line = out.slice(0, nl).trim();
          out = out.slice(nl + 1);
          if (!line.startsWith('{')) continue;
          try {
            const msg = JSON.parse(line) as { ready?: boolean; queues?: string[] };
            if (msg.ready) {
              server.queues = msg.queues ?? [];
              clearTimeout(timer);
              child.stdout!.off('data', onData);
              child.stdout!.resume();
              resolve();
            }
          } catch {
            /* not ours */
          }
        }
      };
      child.stdout!.on('data', onData);
      child.once('exit', (code, signal) => {
        clearTimeout(timer);
        reject(new Error(`oslo_server.py exited with ${code ?? signal} before it was ready; stderr: ${server.stderrTail()}`));
      });
      child.once('error', (e) => {
        clearTimeout(timer);
        reject(e);
      });
    });
  } catch (e) {
    await stopChild(child, 2000);
    throw e;
  }
  return server;
}


/** Delete what this run declared; every step best effort, the first failure reported. */
async function cleanupBroker(queues: string[], exchanges: string[], prefix: string, progress: (m: string) => void): Promise<void> {
  // Safety net for queue names we could not learn (oslo's fanout queue has a random suffix).
  try {
    const listed = await runChild('rabbitmqctl', ['list_queues', '-q', '--no-table-headers', 'name'], { timeoutMs: 20000 });
    for (const q of listed.split('\n').map((l) => l.trim())) if (q.startsWith(prefix) && !queues.includes(q)) queues.push(q);
  } catch (err) {
    progress(`rpc: could not list queues with rabbitmqctl (${describeError(err).slice(0, 200)}); deleting the known ones only`);
  }
  const conn = await connect(AMQP_URL);
  try {
    for (const q of queues) {
      const ch = await conn.createChannel();
      ch.on('error', () => undefined);
      await ch.deleteQueue(q).catch(() => undefined);
      await ch.close().catch(() => undefined);
    }
    for (const x of exchanges) {
      const ch = await conn.createChannel();
      ch.on('error', () => undefined);
      await ch.deleteExchange(x).catch(() => undefined);
      await ch.close().catch(() => undefined);
    }
  } finally {
    await conn.close().catch(() => undefined);
  }
}

async function versions(root: string): Promise<Record<string, unknown>> {
  const out: Record<string, unknown> = {};
  try {
    const conn = await connect(AMQP_URL);
    const props = (conn as unknown as { connection?: { serverProperties?: Record<string, unknown> } }).connection?.serverProperties;
    out.rabbitmq = props?.version ?? null;
    await conn.close();
  } catch {
    out.rabbitmq = null;
  }
  try {
    const py = await runChild(
      PYTHON,
      ['-c', 'import json,sys; from importlib.metadata import version as v; print(json.dumps({"python": sys.version.split()[0], "oslo.messaging": v("oslo.messaging"), "psycopg2": v("psycopg2")}))'],
      { timeoutMs: 20000, cwd: root },
    );
    Object.assign(out, lastJsonLine<Record<string, unknown>>(py));
  } catch (err) {
    out.python = `unknown (${describeError(err).slice(0, 100)})`;
  }
  return out;
}

export const rpcBench: BenchModule = {
  name: 'rpc',
  description: 'get_info round trips: our TS server vs a Python oslo.messaging server, same client, same run',
  async run(ctx: BenchContext): Promise<BenchModuleResult> {
    const seqCalls = envInt('BENCH_RPC_SEQ_CALLS', 2000);
    const concCalls = envInt('BENCH_RPC_CONC_CALLS', 4000);
    const concurrency = Math.max(1, envInt('BENCH_RPC_CONCURRENCY', 8));
    const warmup = envInt('BENCH_RPC_WARMUP', 200);
    const serverConcurrency = Math.max(1, envInt('BENCH_RPC_SERVER_CONCURRENCY', 16));
    const dbPool = Math.max(1, envInt('BENCH_RPC_DB_POOL', 10));
    const clients = (process.env.BENCH_RPC_CLIENTS ?? 'python,ts')
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean) as ClientKind[];
    for (const c of clients) if (c !== 'python' && c !== 'ts') throw new Error(`BENCH_RPC_CLIENTS: unknown client ${c} (python, ts)`);
    const phases = [
      { name: 'sequential', calls: seqCalls, concurrency: 1 },
      { name: 'concurrent', calls: concCalls, concurrency },
    ].filter((p) => p.calls > 0);

    const r = crypto.randomBytes(4).toString('hex');
    const prefix = `bench_${r}`;
    const exchange = prefix;
    const topics: Record<SubjectKind, string> = { ours: `${prefix}_ts`, oslo: `${prefix}_py` };
    const host = `bench-${r}`;
    const serverScript = path.join(ctx.root, 'bench', 'python', 'oslo_server.py');
    const loadScript = path.join(ctx.root, 'bench', 'python', 'oslo_load.py');
    const tsLoad = path.join(__dirname, 'ts-load.js');

    const rows: BenchRow[] = [];
    const errors: string[] = [];
    const queues = [topics.ours, `${topics.ours}.${host}`, topics.oslo, `${topics.oslo}.${host}`];
    const exchanges = [exchange, `${topics.ours}_fanout`, `${topics.oslo}_fanout`];
    let tdb: TestDatabase | undefined;
    let serverDb: Db | undefined;
    let ours: ComputeRpcHandle | undefined;
    let py: PythonServer | undefined;
    const config: Record<string, unknown> = {
      sequentialCalls: seqCalls,
      concurrentCalls: concCalls,
      concurrency,
      warmupCallsPerRun: warmup,
      serverConcurrency,
      dbPool,
      clients,
    };

    try {
      Object.assign(config, { versions: await versions(ctx.root) });
      ctx.progress('rpc: preparing a private database');
      await ensureTemplateDatabase();
      tdb = await freshDatabase('bench');
      const uuid = await seedInstance(tdb, host, { project_id: 'bench' });
      const pgVersion = await tdb.db.raw('show server_version').then((res: { rows: Array<{ server_version: string }> }) => res.rows[0]?.server_version);
      Object.assign(config.versions as Record<string, unknown>, { postgresql: pgVersion });

      // (a) ours, in this process (the load generators are other processes).
      serverDb = createDb(tdb.url, { max: dbPool });
      const cfg = loadConfig({
        argv: [],
        env: {},
        overrides: {
          host,
          databaseUrl: tdb.url,
          amqpUrl: AMQP_URL,
          controlExchange: exchange,
          rpc: { topic: topics.ours, concurrency: serverConcurrency, quorumQueues: false, heartbeatSec: 30, callTimeoutSec: 30 },
        },
      });
      ctx.progress(`rpc: starting our server (topic ${topics.ours}) and the oslo server (topic ${topics.oslo})`);
      ours = await startComputeRpc({ config: cfg, db: serverDb, log: logger.child({ bench: 'rpc' }, { level: 'warn' }) });
      queues.push(ours.server.queues.fanout);

      // (b) the Python oslo.messaging server.
      py = await startPythonServer(serverScript, {
        url: AMQP_URL.replace(/^amqp:/, 'rabbit:'),
        exchange,
        topic: topics.oslo,
        host,
        dsn: tdb.url,
        threads: serverConcurrency,
        db_pool: dbPool,
      });
      queues.push(...py.queues);

      const runLoad = async (client: ClientKind, subject: SubjectKind, phase: { name: string; calls: number; concurrency: number }): Promise<void> => {
        const base = { exchange, topic: topics[subject], server: host, uuid, calls: phase.calls, concurrency: phase.concurrency, warmup, timeout: 30 };
        const timeoutMs = 60000 + phase.calls * 30;
        const stdout =
          client === 'python'
            ? await runChild(PYTHON, [loadScript, JSON.stringify({ ...base, url: AMQP_URL.replace(/^amqp:/, 'rabbit:') })], { timeoutMs, cwd: ctx.root })
            : await runChild(process.execPath, [tsLoad, JSON.stringify({ ...base, amqpUrl: AMQP_URL })], { timeoutMs, cwd: ctx.root, env: { ...process.env, LOG_LEVEL: 'warn' } });
        const out = lastJsonLine<LoadOutput>(stdout);
        if (out.reply_q) queues.push(out.reply_q);
        const s = summarise(out.latencies_ms ?? [], out.elapsed_s ?? 0);
        const row: BenchRow = {
          case: 'get_info',
          subject: SUBJECT_LABEL[subject],
          client: CLIENT_LABEL[client],
          phase: phase.name,
          concurrency: phase.concurrency,
          ...s,
          errors: out.errors,
        };
        rows.push(row);
        if (out.errors > 0) errors.push(`${row.subject} / ${row.client} / ${row.phase}: ${out.errors} failed call(s), first: ${out.first_error}`);
        ctx.progress(
          `rpc: ${row.phase.padEnd(10)} ${row.client.padEnd(19)} -> ${row.subject.padEnd(16)} ${round(row.callsPerSec, 0)} calls/s, p50 ${round(row.p50Ms)} ms, p99 ${round(row.p99Ms)} ms${out.errors ? `, ${out.errors} errors` : ''}`,
        );
      };

      let turn = 0;
      for (const phase of phases) {
        for (const client of clients) {
          // Alternate who goes first so drift (caches, broker state, CPU clocks) favours neither.
          const order: SubjectKind[] = turn++ % 2 === 0 ? ['ours', 'oslo'] : ['oslo', 'ours'];
          for (const subject of order) {
            if (py.child.exitCode !== null || py.child.signalCode !== null) throw new Error(`oslo_server.py died: ${py.stderrTail()}`);
            await runLoad(client, subject, phase);
          }
        }
      }
    } finally {
      const steps: Array<[string, () => Promise<unknown>]> = [
        ['stop the oslo server', async () => py && stopChild(py.child, 12000)],
        ['stop our server', async () => ours?.stop(5000)],
        ['close the server pool', async () => serverDb?.destroy()],
        ['delete queues and exchanges', () => cleanupBroker(queues, exchanges, prefix, ctx.progress)],
        ['drop the database', async () => tdb?.drop()],
      ];
      for (const [what, fn] of steps) {
        try {
          await fn();
        } catch (err) {
          errors.push(`clean-up: could not ${what}: ${describeError(err)}`);
        }
      }
    }

    const ratios: BenchRatio[] = [];
    for (const phase of phases) {
      for (const client of clients) {
        const a = rows.find((x) => x.phase === phase.name && x.client === CLIENT_LABEL[client] && x.subject === SUBJECT_LABEL.ours);
        const b = rows.find((x) => x.phase === phase.name && x.client === CLIENT_LABEL[client] && x.subject === SUBJECT_LABEL.oslo);
        if (!a || !b) continue;
        ratios.push({
          case: 'get_info',
          client: CLIENT_LABEL[client],
          phase: phase.name,
          callsPerSec: a.callsPerSec / b.callsPerSec,
          p50: a.p50Ms / b.p50Ms,
          p99: a.p99Ms / b.p99Ms,
        });
      }
    }

    return {
      rows,
      ratios,
      config,
      errors,
      notes: [
        'ours persists every request in rpc_requests before acking (for idempotent methods like get_info: one insert as running before the handler, the outcome stored alongside the reply) on top of the SELECT; oslo acks before dispatch and does only the SELECT.',
        'ratio = ours / oslo server: calls/s > 1 and p50/p99 < 1 favour ours.',
        `each run: ${warmup} warm-up calls (not measured) at the phase's concurrency, then the measured calls; servers alternate who goes first.`,
        'client, servers, RabbitMQ and PostgreSQL share this machine; on few cores the client is part of what is measured (same client for both servers).',
      ],
    };
  },
};

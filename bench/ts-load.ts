/**
 * Load generator for `npm run bench` using our TypeScript RpcClient, run as its own process (so it
 * never shares an event loop with the server under test). Same protocol as python/oslo_load.py:
 *
 *   node dist/bench/ts-load.js CONFIG_JSON
 *   CONFIG_JSON: {"amqpUrl", "exchange", "topic", "server", "uuid", "calls", "concurrency", "warmup", "timeout"}
 *
 * Prints one JSON line: latencies_ms, elapsed_s, errors, first_error, reply_q (null: the client
 * deletes its reply queue on close).
 */
import { performance } from 'node:perf_hooks';
import { RpcClient } from '../services/rpc/client';
import { describeError } from '../services/errors';

interface LoadConfig {
  amqpUrl: string;
  exchange: string;
  topic: string;
  server: string;
  uuid: string;
  calls: number;
  concurrency: number;
  warmup?: number;
  timeout?: number;
}

async function phase(client: RpcClient, o: LoadConfig, calls: number, latencies: number[], errors: string[]): Promise<number> {
  let left = calls;
  const context = { request_id: 'req-bench', user_id: 'bench', project_id: 'bench', roles: ['admin'], is_admin: true };
  const worker = async (): Promise<void> => {
    while (left > 0) {
      left--;
      const t0 = performance.now();
      try {
        const r = await client.call<{ uuid?: string }>(o.server, 'get_info', { instance_uuid: o.uuid }, { timeout: o.timeout ?? 30, context });
        if (!r || r.uuid !== o.uuid) throw new Error(`unexpected result ${JSON.stringify(r)}`);
        latencies.push(Math.round((performance.now() - t0) * 10000) / 10000);
      } catch (err) {
        errors.push(describeError(err).slice(0, 300));
      }
    }
  };
  const t0 = performance.now();
  await Promise.all(Array.from({ length: Math.max(1, o.concurrency) }, worker));
  return (performance.now() - t0) / 1000;
}

async function main(): Promise<void> {
  const o = JSON.parse(process.argv[2] ?? '') as LoadConfig;
  const client = await RpcClient.connect({ amqpUrl: o.amqpUrl, controlExchange: o.exchange, topic: o.topic, defaultTimeoutSec: o.timeout ?? 30 });
  const out: Record<string, unknown> = { errors: 0, first_error: null, reply_q: null };
  try {
    const warmErrors: string[] = [];
    await phase(client, o, o.warmup ?? 0, [], warmErrors);
    const latencies: number[] = [];
    const errors: string[] = [...warmErrors];
    if (warmErrors.length === 0) out.elapsed_s = await phase(client, o, o.calls, latencies, errors);
    out.latencies_ms = latencies;
    out.errors = errors.length;
    out.first_error = errors[0] ?? null;
  } finally {
    await client.close();
  }
  process.stdout.write(JSON.stringify(out) + '\n');
}

main().then(
  () => process.exit(0),
  (err) => {
    process.stderr.write(`ts-load: ${describeError(err)}\n`);
    process.exit(1);
  },
);

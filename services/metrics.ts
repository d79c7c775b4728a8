/**
 * Process-wide Prometheus metrics (prom-client's default registry). The compute service records
 * into them (RPC server, spawn steps); the API serves them on GET /metrics together with the
 * per-instance numbers it collects at scrape time. One process running both (`npm start`) shows
 * everything on one endpoint.
 */
import client from 'prom-client';

export const registry = client.register;

let defaultsCollected = false;
/** Node process metrics (CPU, heap, event loop); idempotent. */
export function collectProcessMetrics(): void {
  if (defaultsCollected) return;
  defaultsCollected = true;
  client.collectDefaultMetrics({ register: registry, prefix: 'compute_process_' });
}

export const rpcServerRequests = new client.Counter({
  name: 'compute_rpc_server_requests_total',
  help: 'RPC requests run by this host, by method and result (success or the error code)',
  labelNames: ['method', 'result'] as const,
  registers: [registry],
});

export const rpcServerDuration = new client.Histogram({
  name: 'compute_rpc_server_request_duration_seconds',
  help: 'Time an RPC handler ran, by method and result',
  labelNames: ['method', 'result'] as const,
  buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300],
  registers: [registry],
});

export const spawnStepDuration = new client.Histogram({
  name: 'compute_spawn_step_duration_seconds',
  help: 'Duration of each build_and_run_instance step (claim, create, start, post_start), by result',
  labelNames: ['step', 'result'] as const,
  buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60],
  registers: [registry],
});

export const containerEvents = new client.Counter({
  name: 'compute_container_events_total',
  help: 'Docker events of instance containers on this host (oom, die), by event',
  labelNames: ['host', 'event'] as const,
  registers: [registry],
});

export const apiRequests = new client.Counter({
  name: 'compute_api_requests_total',
  help: 'Admin API requests, by method, route and status code',
  labelNames: ['method', 'route', 'status'] as const,
  registers: [registry],
});

/** `success` or the ComputeError code of a failure (a bounded set of label values). */
export function resultLabel(err: unknown): string {
  if (err === undefined) return 'success';
  const code = (err as { code?: unknown }).code;
  return typeof code === 'string' && /^[a-z_]{1,32}$/.test(code) ? code : 'internal';
}

/**
 * Per-instance numbers for GET /metrics, collected at scrape time: get_diagnostics on the host
 * of every running or paused instance (hosts with a fresh heartbeat only), a few at a time, each
 * with a short timeout. A host that does not answer is counted in
 * compute_metrics_scrape_errors and its instances are left out of this scrape.
 */
import client from 'prom-client';
import { heartbeatAgeSec } from '../db/hosts-repo';
import { describeError } from '../errors';
import { logger } from '../logger';
import { callHost } from './host-rpc';
import type { ApiDeps } from './route';

interface Diagnostics {
  cgroup: {
    cpu: { usageNs: number | null };
    memory: { usageBytes: number | null; limitBytes: number | null };
    io: { readBytes: number | null; writeBytes: number | null; readOps: number | null; writeOps: number | null };
    pids: { current: number | null };
  } | null;
  nics: Array<{ network: string; container_rx_bytes: number | null; container_tx_bytes: number | null }>;
}

export interface ScrapeOptions {
  concurrency?: number;
  timeoutSec?: number;
}

async function pool<T>(items: T[], n: number, fn: (t: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const i = next++;
      await fn(items[i]);
    }
  };
  await Promise.all(Array.from({ length: Math.min(n, items.length) }, worker));
}

export async function collectInstanceMetrics(deps: ApiDeps, requestId: string, opts: ScrapeOptions = {}): Promise<client.Registry> {
  const reg = new client.Registry();
  const L = ['instance_uuid', 'name', 'project_id', 'host'] as const;
  const g = (name: string, help: string, extra: string[] = []) => new client.Gauge({ name, help, labelNames: [...L, ...extra], registers: [reg] });
  const c = (name: string, help: string, extra: string[] = []) => new client.Counter({ name, help, labelNames: [...L, ...extra], registers: [reg] });
  const cpu = c('compute_instance_cpu_seconds_total', 'CPU time used by the instance\'s container (cgroup)');
  const memUse = g('compute_instance_memory_usage_bytes', 'Memory used by the container (cgroup; v1 includes page cache)');
  const memLimit = g('compute_instance_memory_limit_bytes', 'Memory limit of the container (absent when unlimited)');
  const blkBytes = c('compute_instance_blkio_bytes_total', 'Block IO bytes, summed over devices', ['direction']);
  const blkOps = c('compute_instance_blkio_ops_total', 'Block IO operations, summed over devices', ['direction']);
  const rx = c('compute_instance_net_rx_bytes_total', 'Bytes received by the container on a NIC', ['network']);
  const tx = c('compute_instance_net_tx_bytes_total', 'Bytes sent by the container on a NIC', ['network']);
  const pids = g('compute_instance_pids', 'Processes/threads in the container');
  const instances = new client.Gauge({ name: 'compute_instances', help: 'Instances by host and vm_state (database)', labelNames: ['host', 'vm_state'], registers: [reg] });
  const hostUp = new client.Gauge({ name: 'compute_host_up', help: '1 when the host\'s heartbeat is fresh', labelNames: ['host'], registers: [reg] });
  const hbAge = new client.Gauge({ name: 'compute_host_heartbeat_age_seconds', help: 'Seconds since the host\'s last heartbeat', labelNames: ['host'], registers: [reg] });
  const scrapeErrors = new client.Gauge({ name: 'compute_metrics_scrape_errors', help: 'Instances whose host did not give diagnostics in this scrape', labelNames: ['host'], registers: [reg] });

  const hosts = (await deps.db('hosts').select('name', 'heartbeat_at')) as Array<{ name: string; heartbeat_at: Date | null }>;
  const up = new Set<string>();
  for (const h of hosts) {
    const age = heartbeatAgeSec(h);
    const isUp = age <= deps.config.api.hostStaleAfterSec;
    if (isUp) up.add(h.name);
    hostUp.set({ host: h.name }, isUp ? 1 : 0);
    if (Number.isFinite(age)) hbAge.set({ host: h.name }, age);
    scrapeErrors.set({ host: h.name }, 0);
  }
  const counts = (await deps.db('instances').whereNull('deleted_at').select(deps.db.raw(`coalesce(host, '') AS host`), 'vm_state')
    .count<Array<{ host: string; vm_state: string; count: string }>>('* as count').groupByRaw(`coalesce(host, ''), vm_state`));
  for (const r of counts) instances.set({ host: r.host, vm_state: r.vm_state }, Number(r.count));

  const live = (await deps.db('instances').whereNull('deleted_at').whereIn('vm_state', ['active', 'paused']).whereNotNull('host')
    .select('uuid', 'name', 'project_id', 'host')) as Array<{ uuid: string; name: string; project_id: string; host: string }>;
  await pool(live.filter((i) => up.has(i.host)), opts.concurrency ?? 4, async (i) => {
    const labels = { instance_uuid: i.uuid, name: i.name, project_id: i.project_id, host: i.host };
    try {
      const d = await callHost<Diagnostics>(deps, i.host, 'get_diagnostics', { instance_uuid: i.uuid }, { requestId }, { timeoutSec: opts.timeoutSec ?? 5 });
      const cg = d.cgroup;
      if (cg) {
        if (cg.cpu.usageNs !== null) cpu.inc(labels, cg.cpu.usageNs / 1e9);
        if (cg.memory.usageBytes !== null) memUse.set(labels, cg.memory.usageBytes);
        if (cg.memory.limitBytes !== null) memLimit.set(labels, cg.memory.limitBytes);
        if (cg.io.readBytes !== null) blkBytes.inc({ ...labels, direction: 'read' }, cg.io.readBytes);
        if (cg.io.writeBytes !== null) blkBytes.inc({ ...labels, direction: 'write' }, cg.io.writeBytes);
        if (cg.io.readOps !== null) blkOps.inc({ ...labels, direction: 'read' }, cg.io.readOps);
        if (cg.io.writeOps !== null) blkOps.inc({ ...labels, direction: 'write' }, cg.io.writeOps);
        if (cg.pids.current !== null) pids.set(labels, cg.pids.current);
      }
      for (const n of d.nics ?? []) {
        if (n.container_rx_bytes !== null) rx.inc({ ...labels, network: n.network }, n.container_rx_bytes);
        if (n.container_tx_bytes !== null) tx.inc({ ...labels, network: n.network }, n.container_tx_bytes);
      }
    } catch (err) {
      scrapeErrors.inc({ host: i.host });
      logger.debug({ instanceUuid: i.uuid, host: i.host, err: describeError(err) }, 'no diagnostics for /metrics');
    }
  });
  return reg;
}

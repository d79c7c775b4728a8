import os from 'node:os';
import type { Db } from '../db/knex';
import { getHost } from '../db/hosts-repo';
import type { RequestContext, RpcEndpoint } from '../rpc/server';
import { loadRpcSchema } from '../rpc/schemas';

export interface GetAvailableResourceArgs {
  nodename?: string;
}

export interface AvailableResource {
  host: string;
  /** false when the host never registered (values come from the OS, not the hosts table). */
  registered: boolean;
  disabled: boolean;
  vcpus: number;
  vcpus_used: number;
  memory_mb: number;
  memory_mb_reserved: number;
  memory_mb_used: number;
  memory_mb_free: number;
  dedicated_cpus: number[];
  dedicated_cpus_used: number[];
  shared_cpus: number[];
  running_instances: number;
}

/**
 * get_available_resource(): this host's capacity (hosts table, refreshed by the heartbeat; the OS
 * if the host has not registered yet) and what the instances placed here use of it.
 */
export function getAvailableResourceEndpoint(deps: { db: Db; host: string }): RpcEndpoint<GetAvailableResourceArgs, AvailableResource> {
  return {
    schema: loadRpcSchema('get_available_resource'),
    resumable: true,
    async handler(_ctx: RequestContext): Promise<AvailableResource> {
      const host = await getHost(deps.db, deps.host);
      const used = await deps.db('instances')
        .where({ host: deps.host })
        .whereNull('deleted_at')
        .whereNot({ vm_state: 'deleted' })
        .select(deps.db.raw('count(*)::int AS n, coalesce(sum(vcpus), 0)::int AS vcpus, coalesce(sum(memory_mb), 0)::bigint AS memory_mb'))
        .first<{ n: number; vcpus: number; memory_mb: string | number }>();
      const pins = await deps.db('cpu_pins').where({ host: deps.host }).orderBy('cpu').pluck<number[]>('cpu');
      const cpus = os.cpus().length;
      const all = Array.from({ length: cpus }, (_, i) => i);
      const vcpus = host?.vcpus ?? cpus;
      const memoryMb = host?.memory_mb ?? Math.floor(os.totalmem() / (1024 * 1024));
      const reserved = host?.memory_reserved_mb ?? 0;
      const memUsed = Number(used?.memory_mb ?? 0);
      return {
        host: deps.host,
        registered: host !== undefined,
        disabled: host?.disabled ?? false,
        vcpus,
        vcpus_used: used?.vcpus ?? 0,
        memory_mb: memoryMb,
        memory_mb_reserved: reserved,
        memory_mb_used: memUsed,
        memory_mb_free: Math.max(0, memoryMb - reserved - memUsed),
        dedicated_cpus: host?.dedicated_cpus ?? all,
        dedicated_cpus_used: pins,
        shared_cpus: host?.shared_cpus ?? all,
        running_instances: used?.n ?? 0,
      };
    },
  };
}

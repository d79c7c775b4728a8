import { heartbeatAgeSec, setHostDisabled } from '../../db/hosts-repo';
import { NotFound } from '../../errors';
import { callHost } from '../host-rpc';
import { readHostUsage, type HostUsage } from '../host-usage';
import type { ApiDeps, ApiRoute } from '../route';

export function presentHost(u: HostUsage, staleAfterSec: number, now = new Date()): Record<string, unknown> {
  const age = heartbeatAgeSec(u, now);
  const pinned = new Set(u.pinned.map((p) => p.cpu));
  return {
    name: u.name,
    up: age <= staleAfterSec,
    disabled: u.disabled,
    disabled_reason: u.disabled_reason,
    heartbeat_at: u.heartbeat_at ? new Date(u.heartbeat_at).toISOString() : null,
    heartbeat_age_sec: Number.isFinite(age) ? Math.round(age * 10) / 10 : null,
    capacity: {
      vcpus: u.vcpus,
      memory_mb: u.memory_mb,
      memory_reserved_mb: u.memory_reserved_mb,
      dedicated_cpus: u.dedicated_cpus,
      shared_cpus: u.shared_cpus,
    },
    usage: {
      instances: u.instances,
      vcpus: u.vcpus_used,
      memory_mb: u.memory_used_mb,
      memory_free_mb: Math.max(0, u.memory_mb - u.memory_reserved_mb - u.memory_used_mb),
      dedicated_cpus_free: u.dedicated_cpus.filter((c) => !pinned.has(c)).length,
    },
    pinned_cpus: u.pinned,
  };
}

async function oneHost(deps: ApiDeps, name: string): Promise<HostUsage> {
  const [u] = await readHostUsage(deps.db, name);
  if (!u) throw new NotFound(`host ${name} not found`);
  return u;
}

export function hostRoutes(deps: ApiDeps): ApiRoute[] {
  const stale = deps.config.api.hostStaleAfterSec;
  const show = async (name: string) => ({ body: { host: presentHost(await oneHost(deps, name), stale) } });
  return [
    {
      method: 'get', path: '/hosts',
      handler: async () => ({ body: { hosts: (await readHostUsage(deps.db)).map((u) => presentHost(u, stale)) } }),
    },
    { method: 'get', path: '/hosts/{name}', handler: async ({ v }) => show(v.params.name) },
    {
      method: 'post', path: '/hosts/{name}/enable',
      handler: async ({ v }) => {
        if ((await setHostDisabled(deps.db, v.params.name, false, null)) === 0) throw new NotFound(`host ${v.params.name} not found`);
        return show(v.params.name);
      },
    },
    {
      method: 'post', path: '/hosts/{name}/disable',
      handler: async ({ v, caller }) => {
        const reason = v.body?.reason ?? `disabled by ${caller?.name ?? 'an admin'}`;
        if ((await setHostDisabled(deps.db, v.params.name, true, reason)) === 0) throw new NotFound(`host ${v.params.name} not found`);
        return show(v.params.name);
      },
    },
    {
      method: 'get', path: '/hosts/{name}/audit',
      handler: async ({ v, requestId, caller }) => {
        await oneHost(deps, v.params.name);
        return { body: await callHost(deps, v.params.name, 'audit_host', {}, { requestId, caller }, { timeoutSec: 60 }) };
      },
    },
  ];
}

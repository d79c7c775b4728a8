import crypto from 'node:crypto';
import { getInstance, listInstances, type InstanceRow } from '../../db/instances-repo';
import type { Db } from '../../db/knex';
import { NetworksRepo } from '../../db/networks-repo';
import { Conflict, InvalidInput, NotFound, Unavailable } from '../../errors';
import { logger } from '../../logger';
import { KeyedMutex } from '../../rpc/keyed-mutex';
import { callHost, type CallerContext } from '../host-rpc';
import type { FieldProblem } from '../openapi';
import type { ApiDeps, ApiRoute, RouteContext } from '../route';
import { assertGroupPolicy, chooseHost, GROUP_LABEL, GROUP_POLICY_LABEL, groupMembers, loadHostStates, type GroupPolicy } from '../scheduler';
import { heartbeatAgeSec, getHost } from '../../db/hosts-repo';

/** Builds, migrations and snapshots can take minutes; a dead host is noticed by missing heartbeats. */
const LONG_CALL = { timeoutSec: 1800, monitorSec: 30 };

interface Address { instance_uuid: string; network: string; address: string; mac: string | null; nic_index: number }

async function addressesOf(db: Db, uuids: string[]): Promise<Map<string, Address[]>> {
  const out = new Map<string, Address[]>();
  if (uuids.length === 0) return out;
  const rows = (await db('ip_allocations').whereIn('instance_uuid', uuids).orderBy(['instance_uuid', 'nic_index'])
    .select('instance_uuid', 'network', db.raw('host(address) AS address'), 'mac', 'nic_index')) as Address[];
  for (const r of rows) {
    const list = out.get(r.instance_uuid) ?? [];
    list.push(r);
    out.set(r.instance_uuid, list);
  }
  return out;
}

const iso = (d: Date | string | null | undefined): string | null => (d ? new Date(d).toISOString() : null);

export function presentInstance(row: InstanceRow, addresses: Address[] = []): Record<string, unknown> {
  const spec = (row.spec ?? {}) as { image?: string; flavor?: Record<string, unknown>; labels?: Record<string, string> };
  return {
    uuid: row.uuid,
    name: row.name,
    project_id: row.project_id,
    user_id: row.user_id,
    host: row.host,
    vm_state: row.vm_state,
    task_state: row.task_state,
    power_state: row.power_state,
    hostname: row.hostname,
    image: spec.image ?? null,
    flavor: spec.flavor ?? {},
    vcpus: row.vcpus,
    memory_mb: Number(row.memory_mb),
    server_group: row.server_group ?? spec.labels?.[GROUP_LABEL] ?? null,
    addresses: addresses.map((a) => ({ network: a.network, address: a.address, mac: a.mac })),
    fault: row.fault,
    created_at: iso(row.created_at),
    updated_at: iso(row.updated_at),
    launched_at: iso(row.launched_at),
  };
}

export async function showInstance(db: Db, uuid: string): Promise<Record<string, unknown>> {
  const row = await getInstance(db, uuid);
  if (!row) throw new NotFound(`instance ${uuid} not found`);
  return presentInstance(row, (await addressesOf(db, [uuid])).get(uuid));
}

/** The live instance and the host it is on; 404 if unknown, 409 if it has no host (failed build). */
async function placedInstance(db: Db, uuid: string): Promise<InstanceRow & { host: string }> {
  const row = await getInstance(db, uuid);
  if (!row) throw new NotFound(`instance ${uuid} not found`);
  if (!row.host) throw new Conflict(`instance ${uuid} is not on any host (vm_state ${row.vm_state})`, { details: { vm_state: row.vm_state } });
  return row as InstanceRow & { host: string };
}

const ctxOf = (c: RouteContext, projectId?: string): CallerContext => ({ requestId: c.requestId, caller: c.caller, ...(projectId ? { projectId } : {}) });

/** One create per server group at a time in this process: schedule + build start are not interleaved. */
const groupLocks = new KeyedMutex();

async function checkNetworks(db: Db, networks: Array<{ network: string }>): Promise<void> {
  const repo = new NetworksRepo(db);
  const problems: FieldProblem[] = [];
  for (const [i, n] of networks.entries()) {
    await repo.get(n.network).catch(() => problems.push({ field: `body.networks.${i}.network`, message: `network ${n.network} does not exist` }));
  }
  if (problems.length) throw new InvalidInput(problems.map((p) => `${p.field}: ${p.message}`).join('; '), { details: problems });
}

/** An explicitly named host must exist and be alive (a disabled one is allowed: the admin chose it). */
async function checkTargetHost(deps: ApiDeps, host: string, field: string): Promise<void> {
  const row = await getHost(deps.db, host);
  if (!row) throw new InvalidInput(`${field}: host ${host} does not exist`, { details: [{ field, message: `host ${host} does not exist` }] });
  const age = heartbeatAgeSec(row);
  if (!(age <= deps.config.api.hostStaleAfterSec)) {
    throw new Unavailable(`host ${host} is down: last heartbeat ${Number.isFinite(age) ? `${Math.round(age)} s ago` : 'never'}`, { details: { host } });
  }
}

async function createInstance(deps: ApiDeps, c: RouteContext): Promise<{ status: number; body: unknown }> {
  const b = c.v.body as Record<string, any>;
  const uuid: string = b.uuid ?? crypto.randomUUID();
  if (await deps.db('instances').where({ uuid }).first()) throw new Conflict(`instance ${uuid} already exists`);
  const networks = (b.networks ?? []) as Array<{ network: string; fixed_ip?: string }>;
  await checkNetworks(deps.db, networks);
  const group = b.server_group as { name: string; policy: GroupPolicy } | undefined;
  const { host: _host, server_group: _group, uuid: _uuid, ...rest } = b;
  const spec = {
    ...rest,
    uuid,
    networks,
    ...(group ? { labels: { ...(b.labels ?? {}), [GROUP_LABEL]: group.name, [GROUP_POLICY_LABEL]: group.policy } } : {}),
  };
  const build = async (): Promise<string> => {
    let host: string;
    if (b.host) {
      await checkTargetHost(deps, b.host, 'body.host');
      host = b.host;
      if (group) {
        const members = await groupMembers(deps.db, group.name);
        assertGroupPolicy(group.name, group.policy, members.policy);
        if (group.policy === 'anti-affinity' && members.hosts.includes(host)) {
          throw new Conflict(`host ${host} already runs a member of anti-affinity server group ${group.name}`, { details: { server_group: group.name, hosts: members.hosts } });
        }
      }
    } else {
      const members = group ? await groupMembers(deps.db, group.name) : undefined;
      if (group) assertGroupPolicy(group.name, group.policy, members!.policy);
      host = chooseHost(await loadHostStates(deps.db), {
        vcpus: b.flavor.vcpus, memoryMb: b.flavor.memory_mb, cpuPolicy: b.flavor.cpu_policy ?? 'shared',
        maxHeartbeatAgeSec: deps.config.api.hostStaleAfterSec,
        ...(group ? { group: { name: group.name, policy: group.policy, memberHosts: members!.hosts } } : {}),
      }).host;
      logger.info({ requestId: c.requestId, instanceUuid: uuid, host }, 'Scheduled instance');
    }
    try {
      await callHost(deps, host, 'build_and_run_instance', { instance: spec }, ctxOf(c, b.project_id), LONG_CALL);
    } finally {
      if (group) await deps.db('instances').where({ uuid }).update({ server_group: group.name }).catch(() => undefined);
    }
    return host;
  };
  await (group ? groupLocks.runExclusive(`group:${group.name}`, build) : build());
  return { status: 201, body: { instance: await showInstance(deps.db, uuid) } };
}

function nextLink(q: Record<string, any>, limit: number, marker: string): string {
  const p = new URLSearchParams();
  for (const k of ['host', 'state', 'project']) if (q[k] !== undefined) p.set(k, String(q[k]));
  p.set('limit', String(limit));
  p.set('marker', marker);
  return `/instances?${p.toString()}`;
}

type ActionName = 'start' | 'stop' | 'reboot' | 'pause' | 'unpause' | 'resize-resources' | 'snapshot' | 'migrate' | 'confirm' | 'revert';

const SIMPLE: Partial<Record<ActionName, string>> = {
  start: 'start_instance', stop: 'stop_instance', pause: 'pause_instance', unpause: 'unpause_instance',
};

async function migrationAwaitingConfirm(db: Db, uuid: string): Promise<{ id: number; source_host: string; dest_host: string }> {
  const m = await db('migrations').where({ instance_uuid: uuid, status: 'finished' }).orderBy('id', 'desc').first();
  if (!m) throw new Conflict(`instance ${uuid} has no migration waiting for confirm or revert (status finished / VERIFY_RESIZE)`);
  return m;
}

async function runAction(deps: ApiDeps, c: RouteContext): Promise<{ body: unknown }> {
  const uuid = c.v.params.uuid as string;
  const [name, arg] = Object.entries(c.v.body as Record<string, any>)[0] as [ActionName, any];
  const inst = await placedInstance(deps.db, uuid);
  const ctx = ctxOf(c, inst.project_id);
  let host = inst.host;
  let result: unknown;
  switch (name) {
    case 'start': case 'stop': case 'pause': case 'unpause':
      result = await callHost(deps, host, SIMPLE[name]!, { instance_uuid: uuid }, ctx);
      break;
    case 'reboot':
      result = await callHost(deps, host, 'reboot_instance', { instance_uuid: uuid, reboot_type: arg?.type ?? 'SOFT' }, ctx);
      break;
    case 'resize-resources':
      result = await callHost(deps, host, 'update_instance_resources', { instance_uuid: uuid, ...arg }, ctx);
      break;
    case 'snapshot':
      result = await callHost(deps, host, 'snapshot_instance', { instance_uuid: uuid, image_name: arg.image_name }, ctx, LONG_CALL);
      break;
    case 'migrate': {
      let dest: string | undefined = arg?.host;
      if (dest === host) {
        throw new InvalidInput(`body.migrate.host: instance ${uuid} is already on ${host}`, { details: [{ field: 'body.migrate.host', message: `is the instance's current host (${host})` }] });
      }
      const active = await deps.db('migrations').where({ instance_uuid: uuid }).whereNotIn('status', ['confirmed', 'reverted', 'error']).first();
      if (active) throw new Conflict(`instance ${uuid} already has migration ${active.id} in status ${active.status}`, { details: { migration_id: active.id, status: active.status } });
      if (dest) await checkTargetHost(deps, dest, 'body.migrate.host');
      else {
        const flavor = ((inst.spec as { flavor?: { cpu_policy?: 'dedicated' | 'shared' } }).flavor) ?? {};
        const grp = inst.server_group ?? (inst.spec as { labels?: Record<string, string> }).labels?.[GROUP_LABEL];
        const members = grp ? await groupMembers(deps.db, grp) : undefined;
        const policy = members?.policy;
        dest = chooseHost(await loadHostStates(deps.db), {
          vcpus: inst.vcpus, memoryMb: Number(inst.memory_mb), cpuPolicy: flavor.cpu_policy ?? 'shared',
          maxHeartbeatAgeSec: deps.config.api.hostStaleAfterSec, excludeHosts: [host],
          ...(grp && policy ? { group: { name: grp, policy, memberHosts: members!.hosts } } : {}),
        }).host;
      }
      result = await callHost(deps, host, 'migrate_instance', {
        instance_uuid: uuid, dest_host: dest, ...(arg?.auto_confirm !== undefined ? { auto_confirm: arg.auto_confirm } : {}),
      }, ctx, LONG_CALL);
      break;
    }
    case 'confirm': {
      const m = await migrationAwaitingConfirm(deps.db, uuid);
      host = m.source_host;
      result = await callHost(deps, host, 'confirm_resize', { instance_uuid: uuid, migration_id: m.id }, ctx, LONG_CALL);
      break;
    }
    case 'revert': {
      const m = await migrationAwaitingConfirm(deps.db, uuid);
      host = m.dest_host;
      result = await callHost(deps, host, 'revert_resize', { instance_uuid: uuid, migration_id: m.id }, ctx, LONG_CALL);
      break;
    }
  }
  return { body: { action: name, instance_uuid: uuid, host, request_id: c.requestId, result } };
}

export function instanceRoutes(deps: ApiDeps): ApiRoute[] {
  return [
    {
      method: 'get', path: '/instances',
      handler: async ({ v }) => {
        const q = v.query;
        const limit: number = q.limit ?? 100;
        if (q.marker && !(await deps.db('instances').where({ uuid: q.marker }).first())) {
          throw new InvalidInput(`query.marker: no instance ${q.marker}`, { details: [{ field: 'query.marker', message: `no instance ${q.marker}` }] });
        }
        const rows = await listInstances(deps.db, { host: q.host, vmState: q.state, projectId: q.project, marker: q.marker, limit: limit + 1 });
        const page = rows.slice(0, limit);
        const addrs = await addressesOf(deps.db, page.map((r) => r.uuid));
        return {
          body: {
            instances: page.map((r) => presentInstance(r, addrs.get(r.uuid))),
            next: rows.length > limit ? nextLink(q, limit, page[page.length - 1].uuid) : null,
          },
        };
      },
    },
    { method: 'post', path: '/instances', handler: (c) => createInstance(deps, c) },
    { method: 'get', path: '/instances/{uuid}', handler: async ({ v }) => ({ body: { instance: await showInstance(deps.db, v.params.uuid) } }) },
    {
      method: 'delete', path: '/instances/{uuid}',
      handler: async (c) => {
        const uuid = c.v.params.uuid as string;
        const row = await getInstance(deps.db, uuid);
        if (!row) throw new NotFound(`instance ${uuid} not found`);
        if (row.host) {
          await callHost(deps, row.host, 'terminate_instance', { instance_uuid: uuid }, ctxOf(c, row.project_id), LONG_CALL);
        } else {
          // A failed build left nothing on any host (its undo released everything): only the row remains.
          await deps.db.transaction(async (trx) => {
            await trx('ip_allocations').where({ instance_uuid: uuid }).del();
            await trx('instances').where({ uuid }).update({
              vm_state: 'deleted', task_state: null, terminated_at: trx.fn.now(), deleted_at: trx.fn.now(), updated_at: trx.fn.now(),
            });
          });
        }
        return { status: 204 };
      },
    },
    { method: 'post', path: '/instances/{uuid}/action', handler: (c) => runAction(deps, c) },
    {
      method: 'get', path: '/instances/{uuid}/console',
      handler: async (c) => {
        const inst = await placedInstance(deps.db, c.v.params.uuid);
        const output = await callHost<string>(deps, inst.host, 'get_console_output', { instance_uuid: inst.uuid, tail: c.v.query.tail ?? 100 }, ctxOf(c, inst.project_id));
        return { body: { output } };
      },
    },
    {
      method: 'get', path: '/instances/{uuid}/diagnostics',
      handler: async (c) => {
        const inst = await placedInstance(deps.db, c.v.params.uuid);
        return { body: await callHost(deps, inst.host, 'get_diagnostics', { instance_uuid: inst.uuid }, ctxOf(c, inst.project_id)) };
      },
    },
  ];
}

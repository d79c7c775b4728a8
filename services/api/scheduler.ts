/**
 * Placement for `POST /instances` without a host (and `migrate` without one): filter, then pick
 * the least loaded. Pure function `chooseHost` over a snapshot of host state; `loadHostStates`
 * and `groupMembers` are the thin DB reads. The claim on the chosen host stays the authority:
 * a host that filled up in between refuses with NoCapacity.
 */
import { heartbeatAgeSec } from '../db/hosts-repo';
import type { Db } from '../db/knex';
import { Conflict, NoCapacity } from '../errors';
import { readHostUsage } from './host-usage';

export interface HostState {
  name: string;
  disabled: boolean;
  /** Infinity if it never reported. */
  heartbeatAgeSec: number;
  memoryMb: number;
  memoryReservedMb: number;
  memoryUsedMb: number;
  dedicatedCpus: number;
  pinnedCpus: number;
  instances: number;
}

export type GroupPolicy = 'anti-affinity' | 'affinity';

export interface PlacementRequest {
  vcpus: number;
  memoryMb: number;
  cpuPolicy: 'dedicated' | 'shared';
  maxHeartbeatAgeSec: number;
  /** Hosts that must not be chosen (a migration's source). */
  excludeHosts?: string[];
  group?: { name: string; policy: GroupPolicy; memberHosts: string[] };
}

export interface Placement {
  host: string;
  /** Why each other host was filtered out (shown in NoCapacity details too). */
  rejected: Record<string, string>;
}

/** Why `h` cannot take the request, or undefined if it can. Filters in a fixed order. */
export function rejectReason(h: HostState, req: PlacementRequest): string | undefined {
  if (req.excludeHosts?.includes(h.name)) return 'excluded (source of the migration)';
  if (h.disabled) return 'disabled';
  if (!(h.heartbeatAgeSec <= req.maxHeartbeatAgeSec)) {
    return Number.isFinite(h.heartbeatAgeSec) ? `heartbeat ${Math.round(h.heartbeatAgeSec)} s old (max ${req.maxHeartbeatAgeSec} s)` : 'never sent a heartbeat';
  }
  const free = h.memoryMb - h.memoryReservedMb - h.memoryUsedMb;
  if (free < req.memoryMb) return `memory: needs ${req.memoryMb} MB, ${Math.max(0, free)} MB free`;
  if (req.cpuPolicy === 'dedicated') {
    const freeCpus = h.dedicatedCpus - h.pinnedCpus;
    if (freeCpus < req.vcpus) return `dedicated CPUs: needs ${req.vcpus}, ${Math.max(0, freeCpus)} free`;
  }
  if (req.group) {
    const { name, policy, memberHosts } = req.group;
    if (policy === 'anti-affinity' && memberHosts.includes(h.name)) return `anti-affinity: a member of server group ${name} is already on this host`;
    if (policy === 'affinity' && memberHosts.length > 0 && !memberHosts.includes(h.name)) {
      return `affinity: server group ${name} lives on ${[...new Set(memberHosts)].join(', ')}`;
    }
  }
  return undefined;
}

/** Memory use after placing the request, as a fraction of what the host may give out. */
function loadAfter(h: HostState, req: PlacementRequest): number {
  const usable = Math.max(1, h.memoryMb - h.memoryReservedMb);
  return (h.memoryUsedMb + req.memoryMb) / usable;
}

export function chooseHost(hosts: readonly HostState[], req: PlacementRequest): Placement {
  const rejected: Record<string, string> = {};
  const fit: HostState[] = [];
  for (const h of hosts) {
    const why = rejectReason(h, req);
    if (why) rejected[h.name] = why;
    else fit.push(h);
  }
  if (fit.length === 0) {
    const lines = Object.entries(rejected).map(([n, r]) => `${n}: ${r}`);
    throw new NoCapacity(
      `no host can take ${req.vcpus} vCPU(s) (${req.cpuPolicy}) and ${req.memoryMb} MB${req.group ? ` in server group ${req.group.name} (${req.group.policy})` : ''}` +
        (lines.length ? `: ${lines.join('; ')}` : ': no hosts registered'),
      { details: { rejected } },
    );
  }
  fit.sort((a, b) => loadAfter(a, req) - loadAfter(b, req) || a.instances - b.instances || a.name.localeCompare(b.name));
  return { host: fit[0].name, rejected };
}

/** Host state as the scheduler sees it (same memory model as the claims: in-flight migrations count on both ends). */
export async function loadHostStates(db: Db, now = new Date()): Promise<HostState[]> {
  return (await readHostUsage(db)).map((u) => ({
    name: u.name,
    disabled: u.disabled,
    heartbeatAgeSec: heartbeatAgeSec(u, now),
    memoryMb: u.memory_mb,
    memoryReservedMb: u.memory_reserved_mb,
    memoryUsedMb: u.memory_used_mb,
    dedicatedCpus: u.dedicated_cpus.length,
    pinnedCpus: u.pinned.length,
    instances: u.instances,
  }));
}

/** Labels an instance carries in its spec for its server group (the row's server_group column is set after the build). */
export const GROUP_LABEL = 'compute.server-group';
export const GROUP_POLICY_LABEL = 'compute.server-group-policy';

/**
 * Hosts holding members of a server group (both ends of an in-flight migration count), and the
 * group's policy as its members recorded it. A member is recognised by the label in its spec
 * as soon as its build starts, so a concurrent create sees it.
 */
export async function groupMembers(db: Db, group: string): Promise<{ hosts: string[]; policy?: GroupPolicy; count: number }> {
  const rows = (await db('instances')
    .whereNull('deleted_at')
    .whereNotIn('vm_state', ['deleted'])
    .where((q) => q.where({ server_group: group }).orWhereRaw(`spec->'labels'->>? = ?`, [GROUP_LABEL, group]))
    .select('uuid', 'host', db.raw(`spec->'labels'->>? AS policy`, [GROUP_POLICY_LABEL]))) as Array<{ uuid: string; host: string | null; policy: string | null }>;
  const hosts = new Set<string>();
  for (const r of rows) if (r.host) hosts.add(r.host);
  if (rows.length > 0) {
    const migs = (await db('migrations')
      .whereIn('instance_uuid', rows.map((r) => r.uuid))
      .whereNotIn('status', ['confirmed', 'reverted', 'error'])
      .select('source_host', 'dest_host')) as Array<{ source_host: string; dest_host: string }>;
    for (const m of migs) {
      hosts.add(m.source_host);
      hosts.add(m.dest_host);
    }
  }
  const policy = rows.find((r) => r.policy === 'anti-affinity' || r.policy === 'affinity')?.policy as GroupPolicy | undefined;
  return { hosts: [...hosts].sort(), policy, count: rows.length };
}

export function assertGroupPolicy(group: string, wanted: GroupPolicy, existing: GroupPolicy | undefined): void {
  if (existing && existing !== wanted) {
    throw new Conflict(`server group ${group} has policy ${existing}, not ${wanted}`, { details: { server_group: group, policy: existing } });
  }
}

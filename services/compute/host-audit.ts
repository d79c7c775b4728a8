/**
 * Read-only consistency check of this host (CNI's CHECK): the database's instances against
 * Docker's containers (by our labels), each running instance's NICs against what plug would
 * make (network driver `check`), and host links / OVS ports whose instance is gone
 * (`auditLeaks`). Nothing is changed; the reconciler and `audit network --fix` repair.
 */
import { INSTANCE_LABEL } from '../../drivers/docker';
import { auditLeaks } from '../../drivers/network';
import { ExecFileRunner, type CommandRunner } from '../../drivers/network/exec';
import { listInstances, type InstanceRow } from '../db/instances-repo';
import { describeError } from '../errors';
import type { RpcEndpoint } from '../rpc/server';
import { loadRpcSchema } from '../rpc/schemas';
import { HOST_LABEL, type ComputeDeps } from './compute-deps';
import { driverFor, nicsOf } from './networking';

export type AuditKind =
  | 'missing_container' | 'container_mismatch' | 'orphan_container' | 'power_state_mismatch'
  | 'nic_drift' | 'leaked_link' | 'leaked_ovs_port';

export interface AuditFinding {
  kind: AuditKind;
  instance_uuid: string | null;
  detail: string;
}

export interface HostAuditReport {
  host: string;
  ok: boolean;
  checked_at: string;
  instances: number;
  /** Instances with an operation in progress (task_state set): not judged. */
  skipped: string[];
  findings: AuditFinding[];
}

const EXPECTS_CONTAINER = new Set(['active', 'stopped', 'paused', 'resized']);
const ACTIVE_MIGRATION = ['pre-migrating', 'migrating', 'post-migrating', 'finished', 'confirming', 'reverting'];

function powerOf(status: string): string {
  if (status === 'running' || status === 'restarting') return 'running';
  if (status === 'paused') return 'paused';
  return 'shutdown';
}

export async function auditHost(deps: ComputeDeps, runner: CommandRunner = new ExecFileRunner()): Promise<HostAuditReport> {
  const host = deps.config.host;
  const findings: AuditFinding[] = [];
  const skipped: string[] = [];
  const rows: InstanceRow[] = await listInstances(deps.db, { host });
  const containers = new Map((await deps.docker.listByLabel([INSTANCE_LABEL, `${HOST_LABEL}=${host}`])).map((c) => [c.labels[INSTANCE_LABEL], c]));
  // A migration keeps a container on both ends until confirm/revert: neither is an orphan.
  const migrating = new Set(((await deps.db('migrations').whereIn('status', ACTIVE_MIGRATION)
    .where((q) => q.where({ source_host: host }).orWhere({ dest_host: host })).select('instance_uuid')) as Array<{ instance_uuid: string }>).map((r) => r.instance_uuid));

  for (const inst of rows) {
    if (inst.task_state || inst.vm_state === 'building') {
      skipped.push(inst.uuid);
      continue;
    }
    const c = containers.get(inst.uuid);
    if (!c) {
      if (EXPECTS_CONTAINER.has(inst.vm_state)) {
        findings.push({ kind: 'missing_container', instance_uuid: inst.uuid, detail: `vm_state ${inst.vm_state} but no container labelled ${INSTANCE_LABEL}=${inst.uuid} on ${host}` });
      }
      continue;
    }
    if (inst.container_id && !c.id.startsWith(inst.container_id) && !inst.container_id.startsWith(c.id)) {
      findings.push({ kind: 'container_mismatch', instance_uuid: inst.uuid, detail: `database says container ${inst.container_id.slice(0, 12)}, Docker has ${c.id.slice(0, 12)} (${c.name})` });
    }
    const power = powerOf(c.status);
    if (inst.vm_state !== 'error' && power !== inst.power_state) {
      findings.push({ kind: 'power_state_mismatch', instance_uuid: inst.uuid, detail: `database power_state ${inst.power_state}, container is ${c.status}` });
    }
    if (power !== 'running') continue;
    try {
      const info = await deps.docker.inspect(c.id);
      if (!info.state.running) continue;
      for (const nic of await nicsOf(deps, inst.uuid)) {
        const r = await driverFor(deps, nic.network).check({
          instanceUuid: inst.uuid, nicIndex: nic.nicIndex, network: nic.network, containerPid: info.state.pid, address: nic.address,
          ...(nic.mac ? { mac: nic.mac } : {}),
        });
        if (!r.ok) {
          findings.push({
            kind: 'nic_drift', instance_uuid: inst.uuid,
            detail: `eth${nic.nicIndex} on ${nic.network.name}: ${r.drift.map((d) => `${d.kind}${d.expected !== undefined ? ` expected ${d.expected}` : ''}${d.actual !== undefined ? ` actual ${d.actual}` : ''}`).join(', ')}`,
          });
        }
      }
    } catch (err) {
      findings.push({ kind: 'nic_drift', instance_uuid: inst.uuid, detail: `could not check: ${describeError(err)}` });
    }
  }

  const onHost = new Set(rows.map((r) => r.uuid));
  for (const [uuid, c] of containers) {
    if (!onHost.has(uuid) && !migrating.has(uuid)) {
      findings.push({ kind: 'orphan_container', instance_uuid: uuid, detail: `container ${c.name} (${c.id.slice(0, 12)}, ${c.status}) has no live instance on ${host}` });
    }
  }

  // Links and ports are per machine, not per host record: any live instance of the cloud owns its own.
  const live = ((await deps.db('instances').whereNull('deleted_at').select('uuid')) as Array<{ uuid: string }>).map((r) => r.uuid);
  for (const l of await auditLeaks(runner, live, { ovsBridge: deps.config.ovs.bridge })) {
    findings.push({
      kind: l.kind === 'ovs-port' ? 'leaked_ovs_port' : 'leaked_link',
      instance_uuid: /^[0-9a-f-]{36}$/.test(l.instance) ? l.instance : null,
      detail: `${l.kind} ${l.name}${l.bridge ? ` on ${l.bridge}` : ''} belongs to instance ${l.instance}, which this cloud no longer has`,
    });
  }
  return { host, ok: findings.length === 0, checked_at: new Date().toISOString(), instances: rows.length, skipped, findings };
}

/** audit_host(): the report above, over RPC for `GET /hosts/{name}/audit`. */
export function auditHostEndpoint(deps: ComputeDeps): RpcEndpoint<Record<string, never>, HostAuditReport> {
  return { schema: loadRpcSchema('audit_host'), resumable: true, handler: () => auditHost(deps) };
}

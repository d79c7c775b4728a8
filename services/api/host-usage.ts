import type { CpuPinRow } from '../db/claims-repo';
import type { HostRow } from '../db/hosts-repo';
import type { Db } from '../db/knex';

export interface HostUsage extends Omit<HostRow, 'info' | 'created_at' | 'updated_at'> {
  instances: number;
  vcpus_used: number;
  /** Same model as claims-repo: instances on the host plus in-flight migrations touching it. */
  memory_used_mb: number;
  pinned: Array<Pick<CpuPinRow, 'cpu' | 'instance_uuid' | 'migration_id'>>;
}

/** Every host (or one) with what its instances use: one query for rows and usage, one for pins. */
export async function readHostUsage(db: Db, name?: string): Promise<HostUsage[]> {
  const rows = (await db.raw(
    `SELECT h.name, h.vcpus, h.memory_mb, h.memory_reserved_mb, h.dedicated_cpus, h.shared_cpus, h.disabled,
            h.disabled_reason, h.heartbeat_at,
            (SELECT count(*) FROM instances i
              WHERE i.host = h.name AND i.deleted_at IS NULL AND i.vm_state <> 'deleted')::int AS instances,
            (SELECT coalesce(sum(i.vcpus), 0) FROM instances i
              WHERE i.host = h.name AND i.deleted_at IS NULL AND i.vm_state <> 'deleted')::int AS vcpus_used,
            (SELECT coalesce(sum(i.memory_mb), 0) FROM instances i
              WHERE i.deleted_at IS NULL AND i.vm_state <> 'deleted'
                AND (i.host = h.name OR EXISTS (
                  SELECT 1 FROM migrations m WHERE m.instance_uuid = i.uuid AND h.name IN (m.source_host, m.dest_host)
                     AND m.status NOT IN ('confirmed', 'reverted', 'error'))))::bigint AS memory_used_mb
       FROM hosts h ${name === undefined ? '' : 'WHERE h.name = ?'} ORDER BY h.name`,
    name === undefined ? [] : [name],
  )).rows as Array<Record<string, unknown>>;
  const pinsQ = db('cpu_pins').select('host', 'cpu', 'instance_uuid', 'migration_id').orderBy(['host', 'cpu']);
  if (name !== undefined) pinsQ.where({ host: name });
  const pins = (await pinsQ) as Array<CpuPinRow>;
  return rows.map((r) => ({
    name: r.name as string,
    vcpus: Number(r.vcpus),
    memory_mb: Number(r.memory_mb),
    memory_reserved_mb: Number(r.memory_reserved_mb),
    dedicated_cpus: r.dedicated_cpus as number[],
    shared_cpus: r.shared_cpus as number[],
    disabled: r.disabled as boolean,
    disabled_reason: r.disabled_reason as string | null,
    heartbeat_at: r.heartbeat_at as Date | null,
    instances: Number(r.instances),
    vcpus_used: Number(r.vcpus_used),
    memory_used_mb: Number(r.memory_used_mb),
    pinned: pins.filter((p) => p.host === r.name).map((p) => ({ cpu: p.cpu, instance_uuid: p.instance_uuid, migration_id: p.migration_id })),
  }));
}

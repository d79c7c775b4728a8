import type { Db } from './knex';

export interface HostRow {
  name: string;
  vcpus: number;
  memory_mb: number;
  memory_reserved_mb: number;
  dedicated_cpus: number[];
  shared_cpus: number[];
  disabled: boolean;
  disabled_reason: string | null;
  info: Record<string, unknown>;
  heartbeat_at: Date | null;
  created_at: Date;
  updated_at: Date;
}

export interface HostCapacity {
  vcpus: number;
  memoryMb: number;
  memoryReservedMb: number;
  dedicatedCpus: number[];
  sharedCpus: number[];
  info?: Record<string, unknown>;
}

function normalise(row: HostRow): HostRow {
  return { ...row, memory_mb: Number(row.memory_mb), memory_reserved_mb: Number(row.memory_reserved_mb) };
}

/** Register this host or refresh its capacity and heartbeat (one statement, idempotent). */
export async function upsertHostHeartbeat(db: Db, name: string, cap: HostCapacity): Promise<void> {
  await db('hosts')
    .insert({
      name,
      vcpus: cap.vcpus,
      memory_mb: cap.memoryMb,
      memory_reserved_mb: cap.memoryReservedMb,
      dedicated_cpus: cap.dedicatedCpus,
      shared_cpus: cap.sharedCpus,
      info: cap.info ?? {},
      heartbeat_at: db.fn.now(),
    })
    .onConflict('name')
    .merge(['vcpus', 'memory_mb', 'memory_reserved_mb', 'dedicated_cpus', 'shared_cpus', 'info', 'heartbeat_at', 'updated_at']);
}

export async function getHost(db: Db, name: string): Promise<HostRow | undefined> {
  const row = await db<HostRow>('hosts').where({ name }).first();
  return row ? normalise(row) : undefined;
}

export async function listHosts(db: Db): Promise<HostRow[]> {
  return (await db<HostRow>('hosts').orderBy('name')).map(normalise);
}

export async function setHostDisabled(db: Db, name: string, disabled: boolean, reason: string | null): Promise<number> {
  return db('hosts').where({ name }).update({ disabled, disabled_reason: reason, updated_at: db.fn.now() });
}

/** Seconds since the last heartbeat, or Infinity if the host never reported. */
export function heartbeatAgeSec(row: Pick<HostRow, 'heartbeat_at'>, now = new Date()): number {
  return row.heartbeat_at ? (now.getTime() - new Date(row.heartbeat_at).getTime()) / 1000 : Infinity;
}

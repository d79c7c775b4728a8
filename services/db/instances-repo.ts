import type { Db } from './knex';

export type VmState = 'building' | 'active' | 'stopped' | 'paused' | 'resized' | 'error' | 'deleted';
export type PowerState = 'nostate' | 'running' | 'paused' | 'shutdown' | 'crashed';

export interface InstanceRow {
  uuid: string;
  name: string;
  project_id: string;
  user_id: string | null;
  host: string | null;
  vm_state: VmState;
  task_state: string | null;
  power_state: PowerState;
  container_id: string | null;
  hostname: string | null;
  vcpus: number;
  memory_mb: number;
  spec: Record<string, unknown>;
  fault: { step?: string; message: string; at?: string } | null;
  server_group: string | null;
  launched_at: Date | null;
  terminated_at: Date | null;
  deleted_at: Date | null;
  created_at: Date;
  updated_at: Date;
}

function normalise(row: InstanceRow): InstanceRow {
  return { ...row, memory_mb: Number(row.memory_mb) };
}

export async function getInstance(db: Db, uuid: string): Promise<InstanceRow | undefined> {
  const row = await db<InstanceRow>('instances').where({ uuid }).whereNull('deleted_at').first();
  return row ? normalise(row) : undefined;
}

export interface InstanceFilter {
  host?: string;
  vmState?: VmState;
  projectId?: string;
  limit?: number;
  /** uuid to start after (keyset pagination, ordered by created_at then uuid). */
  marker?: string;
}

export async function listInstances(db: Db, f: InstanceFilter = {}): Promise<InstanceRow[]> {
  const q = db<InstanceRow>('instances').whereNull('deleted_at').orderBy([{ column: 'created_at' }, { column: 'uuid' }]);
  if (f.host) q.where({ host: f.host });
  if (f.vmState) q.where({ vm_state: f.vmState });
  if (f.projectId) q.where({ project_id: f.projectId });
  if (f.marker) {
    // Compared in SQL: a JS Date keeps milliseconds only, so a round-tripped created_at would be
    // earlier than the stored microseconds and the marker row would come back on the next page.
    q.whereRaw('(created_at, uuid) > (SELECT m.created_at, m.uuid FROM instances m WHERE m.uuid = ?)', [f.marker]);
  }
  if (f.limit) q.limit(f.limit);
  return (await q).map(normalise);
}

export async function updateInstance(db: Db, uuid: string, fields: Partial<Omit<InstanceRow, 'uuid'>>): Promise<number> {
  return db('instances').where({ uuid }).update({ ...fields, updated_at: db.fn.now() });
}

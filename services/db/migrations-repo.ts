import type { Db } from './knex';
import { Conflict, NotFound } from '../errors';

export type MigrationStatus =
  | 'pre-migrating' | 'migrating' | 'post-migrating' | 'finished' | 'confirming' | 'confirmed'
  | 'reverting' | 'reverted' | 'error';

export const ACTIVE_MIGRATION_STATUSES: MigrationStatus[] = ['pre-migrating', 'migrating', 'post-migrating', 'finished', 'confirming', 'reverting'];

/** Per-step record kept in `progress`: when each step started/finished and what it produced. */
export interface MigrationProgress {
  steps?: Record<string, { started_at?: string; finished_at?: string; ms?: number }>;
  power_before?: 'running' | 'shutdown';
  source_container_id?: string;
  dest_container_id?: string;
  dest_cpuset?: string;
  auto_confirm?: boolean;
  /** When the instance stopped answering on the source and came back on the destination. */
  downtime_ms?: number;
  stopped_at?: string;
}

export interface MigrationRow {
  id: number;
  instance_uuid: string;
  source_host: string;
  dest_host: string;
  status: MigrationStatus;
  step: string | null;
  image_ref: string | null;
  image_digest: string | null;
  progress: MigrationProgress;
  error: string | null;
  auto_confirm_at: Date | null;
  created_at: Date;
  updated_at: Date;
}

const UNIQUE_VIOLATION = '23505';

export async function createMigration(db: Db, m: { instanceUuid: string; sourceHost: string; destHost: string; progress: MigrationProgress }): Promise<MigrationRow> {
  try {
    const [row] = await db('migrations')
      .insert({ instance_uuid: m.instanceUuid, source_host: m.sourceHost, dest_host: m.destHost, status: 'pre-migrating', step: 'created', progress: JSON.stringify(m.progress) })
      .returning('*');
    return row as MigrationRow;
  } catch (err) {
    if ((err as { code?: string }).code === UNIQUE_VIOLATION) {
      const active = await activeMigrationOf(db, m.instanceUuid);
      throw new Conflict(`instance ${m.instanceUuid} already has migration ${active?.id ?? '?'} in progress (status ${active?.status ?? '?'})`, { cause: err });
    }
    throw err;
  }
}

export async function getMigration(db: Db, id: number): Promise<MigrationRow> {
  const row = await db<MigrationRow>('migrations').where({ id }).first();
  if (!row) throw new NotFound(`migration ${id} not found`);
  return row;
}

export async function activeMigrationOf(db: Db, instanceUuid: string): Promise<MigrationRow | undefined> {
  return db<MigrationRow>('migrations').where({ instance_uuid: instanceUuid }).whereIn('status', ACTIVE_MIGRATION_STATUSES).first();
}

export async function listMigrations(db: Db, f: { instanceUuid?: string; host?: string; status?: MigrationStatus; limit?: number } = {}): Promise<MigrationRow[]> {
  const q = db<MigrationRow>('migrations').orderBy('id', 'desc').limit(f.limit ?? 100);
  if (f.instanceUuid) q.where({ instance_uuid: f.instanceUuid });
  if (f.status) q.where({ status: f.status });
  if (f.host) q.where((w) => w.where({ source_host: f.host }).orWhere({ dest_host: f.host }));
  return q;
}

/**
 * Compare-and-set of the status: moves `id` to `to` only from one of `from`. Confirm runs on the
 * source and revert on the destination, in two processes: only one of them can win.
 */
export async function transitionMigration(db: Db, id: number, from: MigrationStatus[], to: MigrationStatus, step?: string): Promise<boolean> {
  const n = await db('migrations').where({ id }).whereIn('status', from).update({ status: to, ...(step ? { step } : {}), updated_at: db.fn.now() });
  return n > 0;
}

/** Update status/step/fields and merge `progress` (JSONB ||), in one statement. */
export async function updateMigration(
  db: Db,
  id: number,
  fields: Partial<Pick<MigrationRow, 'status' | 'step' | 'image_ref' | 'image_digest' | 'error' | 'auto_confirm_at'>>,
  progress?: MigrationProgress,
): Promise<void> {
  const update: Record<string, unknown> = { ...fields, updated_at: db.fn.now() };
  if (progress) update.progress = db.raw(`progress || ?::jsonb`, [JSON.stringify(progress)]);
  await db('migrations').where({ id }).update(update);
}

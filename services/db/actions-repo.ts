import type { Db } from './knex';

/** nova's os-instance-actions: one row per operation, one event per step. */
export interface ActionContext {
  requestId?: string;
  userId?: string;
  projectId?: string;
}

export interface InstanceActionRow {
  id: number;
  instance_uuid: string;
  action: string;
  request_id: string | null;
  user_id: string | null;
  project_id: string | null;
  host: string | null;
  start_time: Date;
  finish_time: Date | null;
  result: 'Success' | 'Error' | null;
  message: string | null;
}

export interface InstanceActionEventRow {
  id: number;
  action_id: number;
  event: string;
  host: string | null;
  start_time: Date;
  finish_time: Date | null;
  result: 'Success' | 'Error' | null;
  traceback: string | null;
  details: unknown;
}

export async function startAction(db: Db, instanceUuid: string, action: string, host: string, ctx: ActionContext): Promise<number> {
  const [row] = await db('instance_actions')
    .insert({
      instance_uuid: instanceUuid,
      action,
      host,
      request_id: ctx.requestId ?? null,
      user_id: ctx.userId ?? null,
      project_id: ctx.projectId ?? null,
    })
    .returning('id');
  return (row as { id: number }).id;
}

export async function finishAction(db: Db, actionId: number, result: 'Success' | 'Error', message?: string): Promise<void> {
  await db('instance_actions').where({ id: actionId }).update({ finish_time: db.fn.now(), result, message: message ?? null });
}

export async function startEvent(db: Db, actionId: number, event: string, host: string): Promise<number> {
  const [row] = await db('instance_action_events').insert({ action_id: actionId, event, host }).returning('id');
  return (row as { id: number }).id;
}

export async function finishEvent(
  db: Db,
  eventId: number,
  result: 'Success' | 'Error',
  extra: { traceback?: string; details?: unknown } = {},
): Promise<void> {
  await db('instance_action_events').where({ id: eventId }).update({
    finish_time: db.fn.now(),
    result,
    traceback: extra.traceback ?? null,
    details: extra.details === undefined ? null : JSON.stringify(extra.details),
  });
}

export async function listActions(db: Db, instanceUuid: string): Promise<InstanceActionRow[]> {
  return db<InstanceActionRow>('instance_actions').where({ instance_uuid: instanceUuid }).orderBy('id');
}

export async function listEvents(db: Db, actionId: number): Promise<InstanceActionEventRow[]> {
  return db<InstanceActionEventRow>('instance_action_events').where({ action_id: actionId }).orderBy('id');
}

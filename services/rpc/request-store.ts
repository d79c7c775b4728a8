/**
 * rpc_requests: every request is written here before its AMQP message is acked, so a crash
 * never loses it, and a redelivered or duplicated message (same `_unique_id`) finds the row
 * instead of running again. (Kept beside the RPC server because nothing else reads it.)
 */
import type { Db } from '../db/knex';
import type { RpcFailure } from '../errors';

export type RpcRequestStatus = 'accepted' | 'running' | 'done' | 'failed';

export interface RpcRequestRow {
  unique_id: string;
  msg_id: string | null;
  method: string;
  kind: 'call' | 'cast';
  host: string;
  status: RpcRequestStatus;
  reply_q: string | null;
  args: Record<string, unknown>;
  context: Record<string, unknown>;
  result: unknown;
  failure: RpcFailure | null;
  attempts: number;
  received_at: Date;
  started_at: Date | null;
  finished_at: Date | null;
}

export interface NewRpcRequest {
  uniqueId: string;
  msgId?: string;
  method: string;
  kind: 'call' | 'cast';
  host: string;
  replyQ?: string;
  args: Record<string, unknown>;
  context: Record<string, unknown>;
  /**
   * Store it as already `running` (one write instead of two) — only for idempotent methods that
   * start at once: after a crash a running resumable request is re-run, exactly like an accepted one.
   */
  startNow?: boolean;
}

/** jsonb through knex/pg: arrays would otherwise become PostgreSQL arrays. */
const json = (v: unknown): string => JSON.stringify(v === undefined ? null : v);

/**
 * INSERT ... ON CONFLICT DO NOTHING. Returns `{ inserted: true }` for a new request, or the row
 * already stored under this id (a duplicate or redelivery).
 */
export async function acceptRequest(db: Db, r: NewRpcRequest): Promise<{ inserted: true } | { inserted: false; row: RpcRequestRow }> {
  const inserted = await db('rpc_requests')
    .insert({
      unique_id: r.uniqueId,
      msg_id: r.msgId ?? null,
      method: r.method,
      kind: r.kind,
      host: r.host,
      status: r.startNow ? 'running' : 'accepted',
      ...(r.startNow ? { started_at: db.fn.now(), attempts: 1 } : {}),
      reply_q: r.replyQ ?? null,
      args: json(r.args),
      context: json(r.context),
    })
    .onConflict('unique_id')
    .ignore()
    .returning('unique_id');
  if (inserted.length > 0) return { inserted: true };
  const row = await getRequest(db, r.uniqueId);
  // Deleted between the two statements (an operator purge): treat as new next time.
  if (!row) throw new Error(`rpc request ${r.uniqueId} conflicted but is gone`);
  return { inserted: false, row };
}

export async function getRequest(db: Db, uniqueId: string): Promise<RpcRequestRow | undefined> {
  return db<RpcRequestRow>('rpc_requests').where({ unique_id: uniqueId }).first();
}

export async function markRunning(db: Db, uniqueId: string): Promise<void> {
  await db('rpc_requests')
    .where({ unique_id: uniqueId })
    .update({ status: 'running', started_at: db.fn.now(), attempts: db.raw('attempts + 1') });
}

export async function finishRequest(db: Db, uniqueId: string, outcome: { result: unknown } | { failure: RpcFailure }): Promise<void> {
  const fields =
    'failure' in outcome
      ? { status: 'failed', failure: json(outcome.failure), result: null }
      : { status: 'done', result: json(outcome.result), failure: null };
  await db('rpc_requests')
    .where({ unique_id: uniqueId })
    .update({ ...fields, finished_at: db.fn.now() });
}

/** Requests of this host accepted or started but never finished (the process died). */
export async function listUnfinished(db: Db, host: string): Promise<RpcRequestRow[]> {
  return db<RpcRequestRow>('rpc_requests').where({ host }).whereIn('status', ['accepted', 'running']).orderBy('received_at');
}

import type { Knex } from 'knex';
import { chooseDedicatedCpus, cpuSharesFor, formatCpuList, sharedCpuset, type CpuPolicy } from '../compute/cpuset';
import { Conflict, InvalidInput, NoCapacity, NotFound } from '../errors';
import type { Db } from './knex';

/**
 * Host resource claims: CPUs and memory, in one transaction per call.
 *
 * How it stays correct under concurrency:
 * - Every claim and release on a host first takes `SELECT ... FOR UPDATE` on that host's row,
 *   so claimers of one host run one after another and each sees what the previous committed.
 * - cpu_pins has PRIMARY KEY (host, cpu): even if this code were wrong a CPU cannot be pinned
 *   twice; a unique violation is reported as NoCapacity.
 *
 * How memory is accounted (the simplest model the schema allows without a new table):
 * the instances row *is* the reservation. A claim without `migrationId` writes the instance's
 * `host`, `vcpus` and `memory_mb`; memory in use on a host is the sum of `memory_mb` of
 * non-deleted instances whose `host` is it, plus instances with an in-flight migration
 * (status not confirmed/reverted/error) whose source or dest is it, so a cold migration holds
 * memory on both ends until confirm/revert. `releaseResources` without `migrationId` sets
 * `host` back to NULL (as nova does on a failed build), which is what frees the memory.
 *
 * Contract for callers (spawn pipeline, migration steps, update_instance_resources):
 * - the instances row must exist (not deleted) before claiming; a migration claim needs its
 *   migrations row (dest_host = host, in flight) first;
 * - a claim is declarative and idempotent: "this instance holds `vcpus` dedicated CPUs (or the
 *   shared pool) and `memoryMb` on `host`". Re-running it returns the pins already held; a
 *   changed vcpus keeps the CPUs already held and adds/drops the highest; switching to shared
 *   drops the pins;
 * - a migration claim does not touch the instance row: its memory on the destination is the
 *   instance's recorded memory_mb (cold migration keeps the flavor). New pins carry
 *   `migration_id`; `releaseResources({migrationId})` drops only those (revert on the dest);
 * - pass a transaction as `db` to make the claim part of a larger one (e.g. with the IP claim):
 *   it then runs in a savepoint.
 */
export interface ClaimRequest {
  host: string;
  instanceUuid: string;
  vcpus: number;
  cpuPolicy: CpuPolicy;
  memoryMb: number;
  /** flavor.cpu_shares; default 1024 * vcpus. */
  cpuShares?: number | null;
  /** Set when claiming on a cold migration's destination. */
  migrationId?: number;
}

export interface ResourceClaim {
  /** CPUs the container may run on: its pins (dedicated) or the host's shared pool. */
  cpus: number[];
  /** `cpus` as Docker's CpusetCpus ("0-1,3"). */
  cpuset: string;
  cpuShares: number;
  memoryMb: number;
}

export interface ReleaseRequest {
  host: string;
  instanceUuid: string;
  /** Release only the pins this migration took on `host` and leave the instance row alone. */
  migrationId?: number;
}

export interface CpuPinRow {
  host: string;
  cpu: number;
  instance_uuid: string;
  migration_id: number | null;
  created_at: Date;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const PG_UNIQUE_VIOLATION = '23505';
const ACTIVE_MIGRATION_SQL = `status NOT IN ('confirmed', 'reverted', 'error')`;

function validate(req: { host: string; instanceUuid: string; migrationId?: number }): void {
  if (typeof req.host !== 'string' || req.host === '') throw new InvalidInput('host is required');
  if (!UUID.test(req.instanceUuid)) throw new InvalidInput(`instance uuid "${req.instanceUuid}" is not a UUID`);
  if (req.migrationId !== undefined && (!Number.isInteger(req.migrationId) || req.migrationId < 1)) {
    throw new InvalidInput(`migrationId must be a positive integer, got ${req.migrationId}`);
  }
}

interface LockedHost {
  name: string;
  dedicated_cpus: number[];
  shared_cpus: number[];
  memory_mb: string | number;
  memory_reserved_mb: string | number;
}

async function lockHost(trx: Knex.Transaction, host: string): Promise<LockedHost | undefined> {
  return trx<LockedHost>('hosts')
    .select('name', 'dedicated_cpus', 'shared_cpus', 'memory_mb', 'memory_reserved_mb')
    .where({ name: host })
    .forUpdate()
    .first();
}

/** MB of memory held on `host` by every instance but `excludeUuid` (see the model above). */
async function memoryUsedMb(trx: Knex.Transaction, host: string, excludeUuid: string): Promise<number> {
  const row = await trx.raw<{ rows: Array<{ used: string }> }>(
    `SELECT COALESCE(SUM(i.memory_mb), 0) AS used
       FROM instances i
      WHERE i.deleted_at IS NULL AND i.vm_state <> 'deleted' AND i.uuid <> ?
        AND (i.host = ? OR EXISTS (
              SELECT 1 FROM migrations m
               WHERE m.instance_uuid = i.uuid AND ? IN (m.source_host, m.dest_host) AND m.${ACTIVE_MIGRATION_SQL}))`,
    [excludeUuid, host, host],
  );
  return Number(row.rows[0].used);
}

export async function claimResources(db: Db, req: ClaimRequest): Promise<ResourceClaim> {
  validate(req);
  if (req.cpuPolicy !== 'dedicated' && req.cpuPolicy !== 'shared') throw new InvalidInput(`cpuPolicy must be dedicated or shared, got ${req.cpuPolicy}`);
  if (!Number.isInteger(req.memoryMb) || req.memoryMb < 0) throw new InvalidInput(`memoryMb must be a non-negative integer, got ${req.memoryMb}`);
  // Validates vcpus and cpuShares before touching the DB.
  const cpuShares = cpuSharesFor({ vcpus: req.vcpus, cpu_shares: req.cpuShares });

  try {
    return await db.transaction(async (trx) => {
      const host = await lockHost(trx, req.host);
      if (!host) throw new NotFound(`host ${req.host} is not registered`);

      const instance = await trx('instances').select('uuid', 'host').where({ uuid: req.instanceUuid }).whereNull('deleted_at').first();
      if (!instance) throw new NotFound(`instance ${req.instanceUuid} does not exist or is deleted`);
      if (req.migrationId !== undefined) {
        const mig = await trx('migrations')
          .select('id')
          .where({ id: req.migrationId, instance_uuid: req.instanceUuid, dest_host: req.host })
          .whereRaw(ACTIVE_MIGRATION_SQL)
          .first();
        if (!mig) throw new Conflict(`migration ${req.migrationId} is not an in-flight migration of ${req.instanceUuid} to ${req.host}`);
      }

      const capacity = Number(host.memory_mb) - Number(host.memory_reserved_mb);
      const used = await memoryUsedMb(trx, req.host, req.instanceUuid);
      if (used + req.memoryMb > capacity) {
        const free = Math.max(0, capacity - used);
        throw new NoCapacity(
          `not enough memory on host ${req.host}: need ${req.memoryMb} MB, ${free} MB free (${capacity} MB usable, ${used} MB claimed)`,
          { details: { resource: 'memory_mb', needed: req.memoryMb, free, capacity, used } },
        );
      }

      const held: number[] = (
        await trx('cpu_pins').select('cpu').where({ host: req.host, instance_uuid: req.instanceUuid }).orderBy('cpu')
      ).map((r: { cpu: number }) => r.cpu);

      let cpus: number[];
      let cpuset: string;
      if (req.cpuPolicy === 'shared') {
        ({ cpus, cpuset } = sharedCpuset(host.shared_cpus));
        if (held.length > 0) await trx('cpu_pins').where({ host: req.host, instance_uuid: req.instanceUuid }).delete();
      } else {
        const keep = held.slice(0, req.vcpus);
        const drop = held.slice(req.vcpus);
        if (drop.length > 0) await trx('cpu_pins').where({ host: req.host, instance_uuid: req.instanceUuid }).whereIn('cpu', drop).delete();
        let added: number[] = [];
        if (keep.length < req.vcpus) {
          const pinned = new Set<number>(
            (await trx('cpu_pins').select('cpu').where({ host: req.host })).map((r: { cpu: number }) => r.cpu),
          );
          try {
            added = chooseDedicatedCpus(host.dedicated_cpus, pinned, req.vcpus - keep.length);
          } catch (err) {
            if (err instanceof NoCapacity && keep.length > 0) {
              throw new NoCapacity(`${err.message}; instance already holds ${formatCpuList(keep)} on ${req.host}`, { cause: err, details: err.details });
            }
            throw err;
          }
          await trx('cpu_pins').insert(
            added.map((cpu) => ({ host: req.host, cpu, instance_uuid: req.instanceUuid, migration_id: req.migrationId ?? null })),
          );
        }
        cpus = [...keep, ...added].sort((a, b) => a - b);
        cpuset = formatCpuList(cpus);
      }

      if (req.migrationId === undefined) {
        await trx('instances')
          .where({ uuid: req.instanceUuid })
          .update({ host: req.host, vcpus: req.vcpus, memory_mb: req.memoryMb, updated_at: trx.fn.now() });
      }
      return { cpus, cpuset, cpuShares, memoryMb: req.memoryMb };
    });
  } catch (err) {
    if ((err as { code?: string }).code === PG_UNIQUE_VIOLATION) {
      // Only reachable if a claimer bypassed the host lock: the schema still refused the double pin.
      throw new NoCapacity(`a dedicated CPU on host ${req.host} was pinned concurrently by another instance`, { cause: err });
    }
    throw err;
  }
}

/**
 * Give back what `claimResources` took. Idempotent: releasing twice, or for an unknown host or
 * instance, is not an error. Returns the CPUs unpinned.
 */
export async function releaseResources(db: Db, req: ReleaseRequest): Promise<{ releasedCpus: number[] }> {
  validate(req);
  return db.transaction(async (trx) => {
    // Same lock as claims, so a claimer never sees half a release.
    await lockHost(trx, req.host);
    const q = trx('cpu_pins').where({ host: req.host, instance_uuid: req.instanceUuid });
    if (req.migrationId !== undefined) q.where({ migration_id: req.migrationId });
    const released = ((await q.delete().returning('cpu')) as Array<{ cpu: number }>).map((r) => r.cpu).sort((a, b) => a - b);
    if (req.migrationId === undefined) {
      await trx('instances').where({ uuid: req.instanceUuid, host: req.host }).update({ host: null, updated_at: trx.fn.now() });
    }
    return { releasedCpus: released };
  });
}

/** Every pin on a host, lowest CPU first (inventory, audits). */
export async function listCpuPins(db: Db, host: string): Promise<CpuPinRow[]> {
  return db<CpuPinRow>('cpu_pins').where({ host }).orderBy('cpu');
}

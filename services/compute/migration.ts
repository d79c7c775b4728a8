/**
 * Cold migration, nova-shaped. The source host's `migrate_instance` orchestrates; each step runs
 * on the host that owns what it touches and is idempotent, and the migration row records the
 * last finished step so `resume_migration` continues after a crash of either service.
 *
 *   source: preflight -> [dest] prep_resize (claim) -> stop + unplug -> commit -> push
 *        -> [dest] finish_resize (pull, create with the same name/hostname/IP/MAC, start, plug)
 *        => status finished (VERIFY_RESIZE), instance.host = dest, vm_state resized
 *   confirm_resize (source): remove the old container, free its pins -> confirmed
 *   revert_resize (dest): remove the new container, free its pins -> [source] finish_revert_resize:
 *        start + re-plug the old one -> reverted
 *
 * Any failure before `finished` rolls back by itself: the destination is told to abort (its
 * claim and any container it made go away) and the source container is started and re-plugged.
 */
import http from 'node:http';
import { INSTANCE_LABEL } from '../../drivers/docker';
import type { ActionContext } from '../db/actions-repo';
import { claimResources } from '../db/claims-repo';
import { heartbeatAgeSec, getHost } from '../db/hosts-repo';
import { getInstance, updateInstance, type InstanceRow } from '../db/instances-repo';
import {
  activeMigrationOf, createMigration, getMigration, transitionMigration, updateMigration, type MigrationProgress, type MigrationRow, type MigrationStatus,
} from '../db/migrations-repo';
import { Conflict, describeError, InvalidInput, NotFound, Unavailable } from '../errors';
import { childLogger } from '../logger';
import { containerNameFor, type ComputeDeps } from './compute-deps';
import { removeInstanceFiles } from './hosts-file-writer';
import { writeInstanceNetFiles } from './hosts-sync';
import { InstanceAction } from './instance-action';
import type { InstanceSpec } from './instance-spec';
import { localInstance, postStart } from './lifecycle';
import { unplugAll } from './networking';
import { commitAndPush, imageRefFor } from './snapshot';
import { blkioFor, containerSpecFor } from './spawn';
import { checkTransition } from './state-machine';

/** Source-side steps in order; `migration.step` holds the last one finished. */
/** Pull (30 min) + create + start on the destination, with margin. */
export const DEST_CALL_TIMEOUT_SEC = 2400;

/** Label of a destination container: which migration made it. */
export const MIGRATION_LABEL = 'compute.migration-id';

export const SOURCE_STEPS = ['created', 'prep_resize', 'stopped', 'pushed', 'finish_resize'] as const;
type SourceStep = (typeof SOURCE_STEPS)[number];

const now = () => new Date().toISOString();

function hostsOf(deps: ComputeDeps) {
  if (!deps.hosts) throw new Unavailable('this compute service has no RPC client to reach other hosts');
  return deps.hosts;
}

/** Registry answers /v2/ (200 or 401). */
export function registryReachable(registry: string, timeoutMs = 3000): Promise<void> {
  const [hostname, port] = registry.split(':');
  return new Promise((resolve, reject) => {
    const req = http.get({ hostname, port: port ? Number(port) : 80, path: '/v2/', timeout: timeoutMs }, (res) => {
      res.resume();
      if (res.statusCode === 200 || res.statusCode === 401) resolve();
      else reject(new Unavailable(`registry ${registry} answered ${res.statusCode}`));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', (err) => reject(new Unavailable(`registry ${registry} is not reachable: ${err.message}`, { cause: err })));
  });
}

/** Pre-flight checks that need nothing but the DB and the registry; each refusal names its reason. */
export async function preflight(deps: ComputeDeps, inst: InstanceRow, destHost: string): Promise<void> {
  if (destHost === deps.config.host) throw new InvalidInput(`instance ${inst.uuid} is already on ${destHost}`);
  const spec = inst.spec as unknown as InstanceSpec;
  if (spec.volumes && spec.volumes.length > 0) {
    const list = spec.volumes.map((v) => `${v.container_path} <- ${v.host_path}`).join(', ');
    throw new Conflict(`instance ${inst.uuid} has local bind volumes that a cold migration would not carry (${list}); detach them or copy the data first: nothing was stopped`, {
      details: { volumes: spec.volumes },
    });
  }
  const dest = await getHost(deps.db, destHost);
  if (!dest) throw new NotFound(`destination host ${destHost} is not registered`);
  if (dest.disabled) throw new Conflict(`destination host ${destHost} is disabled${dest.disabled_reason ? `: ${dest.disabled_reason}` : ''}`);
  const age = heartbeatAgeSec(dest);
  if (age > deps.config.migration.destHeartbeatMaxAgeSec) {
    throw new Unavailable(`destination host ${destHost} last reported ${Number.isFinite(age) ? `${Math.round(age)} s ago` : 'never'} (limit ${deps.config.migration.destHeartbeatMaxAgeSec} s)`);
  }
  await registryReachable(deps.config.registry);
}

async function timed(deps: ComputeDeps, mig: MigrationRow, step: string, fn: () => Promise<void>): Promise<void> {
  const started = Date.now();
  await fn();
  await updateMigration(deps.db, mig.id, { step }, { steps: { ...(mig.progress.steps ?? {}), [step]: { started_at: new Date(started).toISOString(), finished_at: now(), ms: Date.now() - started } } });
  mig.progress.steps = { ...(mig.progress.steps ?? {}), [step]: { ms: Date.now() - started } };
  mig.step = step;
}

async function setStatus(deps: ComputeDeps, mig: MigrationRow, status: MigrationStatus, extra: Partial<MigrationRow> = {}, progress?: MigrationProgress) {
  await updateMigration(deps.db, mig.id, { status, ...extra }, progress);
  mig.status = status;
  if (progress) mig.progress = { ...mig.progress, ...progress };
}

/** migrate_instance: pre-flight, record, then run the flow (and confirm when asked). */
export async function migrateInstance(deps: ComputeDeps, ctx: ActionContext, args: { instance_uuid: string; dest_host: string; auto_confirm?: boolean }): Promise<MigrationRow> {
  const inst = await localInstance(deps, args.instance_uuid);
  checkTransition('migrate', inst.vm_state, inst.task_state);
  await preflight(deps, inst, args.dest_host);
  const mig = await createMigration(deps.db, {
    instanceUuid: inst.uuid,
    sourceHost: deps.config.host,
    destHost: args.dest_host,
    progress: {
      power_before: inst.power_state === 'running' ? 'running' : 'shutdown',
      source_container_id: inst.container_id ?? undefined,
      auto_confirm: args.auto_confirm ?? false,
    },
  });
  return runMigration(deps, ctx, mig);
}

/** resume_migration: continue an interrupted migration from its last finished step. */
export async function resumeMigration(deps: ComputeDeps, ctx: ActionContext, args: { migration_id: number }): Promise<MigrationRow> {
  const mig = await getMigration(deps.db, args.migration_id);
  if (mig.source_host !== deps.config.host) throw new InvalidInput(`migration ${mig.id} is resumed on its source host ${mig.source_host}, not ${deps.config.host}`);
  if (mig.status === 'finished' || mig.status === 'confirmed' || mig.status === 'reverted') return mig;
  if (mig.status === 'confirming') return confirmResize(deps, ctx, { instance_uuid: mig.instance_uuid, migration_id: mig.id });
  if (mig.status === 'error') throw new Conflict(`migration ${mig.id} ended in error (${mig.error ?? 'unknown'}); start a new one`);
  if (mig.status === 'reverting') throw new Conflict(`migration ${mig.id} is being reverted; run revert on ${mig.dest_host} again`);
  return runMigration(deps, ctx, mig);
}

async function runMigration(deps: ComputeDeps, ctx: ActionContext, mig: MigrationRow): Promise<MigrationRow> {
  const log = childLogger({ instanceUuid: mig.instance_uuid, requestId: ctx.requestId, migrationId: mig.id });
  const hosts = hostsOf(deps);
  const done = (s: SourceStep) => SOURCE_STEPS.indexOf((mig.step ?? 'created') as SourceStep) >= SOURCE_STEPS.indexOf(s);
  const inst = (await getInstance(deps.db, mig.instance_uuid))!;
  const callCtx = { request_id: ctx.requestId, user_id: ctx.userId, project_id: ctx.projectId };
  return InstanceAction.run(deps.db, mig.instance_uuid, 'migrate', deps.config.host, ctx, async (a) => {
    try {
      if (!done('prep_resize')) {
        await a.event('compute_prep_resize', () => timed(deps, mig, 'prep_resize', async () => {
          await updateInstance(deps.db, inst.uuid, { task_state: 'resize_prep' });
          const r = await hosts.call<{ cpuset: string }>(mig.dest_host, 'prep_resize', { instance_uuid: inst.uuid, migration_id: mig.id }, { context: callCtx });
          await updateMigration(deps.db, mig.id, {}, { dest_cpuset: r.cpuset });
        }));
      }
      if (!done('stopped')) {
        await setStatus(deps, mig, 'migrating');
        await a.event('compute_stop_and_unplug', () => timed(deps, mig, 'stopped', async () => {
          await updateInstance(deps.db, inst.uuid, { task_state: 'resize_migrating' });
          await deps.docker.stop(containerNameFor(inst.uuid), deps.config.stopTimeoutSec);
          await unplugAll(deps, inst.uuid);
          await updateMigration(deps.db, mig.id, {}, { stopped_at: now() });
          mig.progress.stopped_at = now();
        }));
      }
      if (!done('pushed')) {
        await a.event('compute_commit_and_push', () => timed(deps, mig, 'pushed', async () => {
          const ref = imageRefFor(deps.config.registry, inst.project_id, inst.uuid, `mig-${mig.id}`);
          await deps.faults?.afterStep?.('mig_before_commit', inst.uuid);
          const r = await commitAndPush(deps, containerNameFor(inst.uuid), ref, { [INSTANCE_LABEL]: inst.uuid, [MIGRATION_LABEL]: String(mig.id) }, false);
          await updateMigration(deps.db, mig.id, { image_ref: r.image_ref, image_digest: r.digest });
          mig.image_ref = r.image_ref;
          await deps.faults?.afterStep?.('mig_committed', inst.uuid);
        }));
        await setStatus(deps, mig, 'post-migrating');
      }
      if (!done('finish_resize')) {
        await a.event('compute_finish_resize', () => timed(deps, mig, 'finish_resize', async () => {
          // Longer than the destination's own pull/create/start deadlines, so we never give up
          // (and roll back) while the destination is still working.
          await hosts.call(mig.dest_host, 'finish_resize', { instance_uuid: inst.uuid, migration_id: mig.id }, { context: callCtx, timeout: DEST_CALL_TIMEOUT_SEC });
        }));
      }
      // Outside the step block: a crash between recording the step and this status must not
      // leave the migration stuck in post-migrating (resume lands here again).
      if (mig.status !== 'finished') {
        const stoppedAt = mig.progress.stopped_at ?? (await getMigration(deps.db, mig.id)).progress.stopped_at;
        const downtime = stoppedAt ? Date.now() - new Date(stoppedAt).getTime() : undefined;
        const autoAt = deps.config.migration.autoConfirmSec > 0 ? new Date(Date.now() + deps.config.migration.autoConfirmSec * 1000) : null;
        await setStatus(deps, mig, 'finished', { auto_confirm_at: autoAt }, downtime !== undefined ? { downtime_ms: downtime } : undefined);
        log.info({ downtimeMs: downtime }, 'Migration finished (VERIFY_RESIZE)');
      }
    } catch (err) {
      log.error({ step: mig.step, err: describeError(err) }, 'Migration failed; rolling back to the source');
      await rollback(deps, mig, err).catch((e) => log.error({ err: describeError(e) }, 'rollback failed'));
      throw err;
    }
    if (mig.progress.auto_confirm) {
      // We are the source and already hold the instance lock: confirm in-process.
      await confirmResize(deps, ctx, { instance_uuid: mig.instance_uuid, migration_id: mig.id });
    }
    return getMigration(deps.db, mig.id);
  });
}

/**
 * Undo a migration that did not reach `finished`: the status goes to `error` first (so a crash
 * mid-rollback never looks resumable), the destination aborts, the source runs again. If the
 * destination may be running a copy (finish_resize was sent) and did not confirm the abort, the
 * source is NOT restarted: two copies with one IP and MAC would be worse than a stopped one.
 */
async function rollback(deps: ComputeDeps, mig: MigrationRow, cause: unknown): Promise<void> {
  const notes: string[] = [];
  const finishSent = mig.step === 'pushed' || mig.step === 'finish_resize';
  await setStatus(deps, mig, 'error', { error: `${describeError(cause)} (rolling back)` });
  let aborted = true;
  try {
    await hostsOf(deps).call(mig.dest_host, 'abort_migration', { instance_uuid: mig.instance_uuid, migration_id: mig.id }, { timeout: DEST_CALL_TIMEOUT_SEC });
  } catch (err) {
    aborted = false;
    notes.push(`destination ${mig.dest_host} did not confirm the abort: ${describeError(err)}`);
  }
  const inst = (await getInstance(deps.db, mig.instance_uuid))!;
  const containerId = mig.progress.source_container_id ?? containerNameFor(inst.uuid);
  const restart = mig.progress.power_before !== 'shutdown' && (aborted || !finishSent);
  await updateInstance(deps.db, inst.uuid, { host: deps.config.host, container_id: containerId });
  if (restart) {
    await deps.docker.start(containerId);
    await postStart(deps, { ...inst, host: deps.config.host, container_id: containerId });
  } else if (mig.progress.power_before !== 'shutdown') {
    notes.push(`the source container was left stopped: check ${mig.dest_host} for instance-${inst.uuid}, then start it on ${deps.config.host}`);
  }
  await updateInstance(deps.db, inst.uuid, {
    task_state: null,
    vm_state: restart ? 'active' : 'stopped',
    power_state: restart ? 'running' : 'shutdown',
  });
  await updateMigration(deps.db, mig.id, { error: [describeError(cause), ...notes].join('; ') });
}

/** The instance as the destination sees it during a migration (its host is still the source). */
async function migratingInstance(deps: ComputeDeps, uuid: string, migrationId: number): Promise<{ inst: InstanceRow; mig: MigrationRow }> {
  const mig = await getMigration(deps.db, migrationId);
  if (mig.instance_uuid !== uuid) throw new InvalidInput(`migration ${migrationId} is not for instance ${uuid}`);
  const inst = await getInstance(deps.db, uuid);
  if (!inst) throw new NotFound(`Instance ${uuid} could not be found.`);
  return { inst, mig };
}

function claimFor(deps: ComputeDeps, inst: InstanceRow, mig: MigrationRow) {
  const spec = inst.spec as unknown as InstanceSpec;
  return claimResources(deps.db, {
    host: deps.config.host, instanceUuid: inst.uuid, vcpus: spec.flavor.vcpus, cpuPolicy: spec.flavor.cpu_policy ?? 'shared',
    memoryMb: spec.flavor.memory_mb, cpuShares: spec.flavor.cpu_shares, migrationId: mig.id,
  });
}

/** prep_resize (destination): claim CPUs and memory for the incoming instance (idempotent). */
export async function prepResize(deps: ComputeDeps, args: { instance_uuid: string; migration_id: number }) {
  const { inst, mig } = await migratingInstance(deps, args.instance_uuid, args.migration_id);
  if (mig.dest_host !== deps.config.host) throw new InvalidInput(`migration ${mig.id} goes to ${mig.dest_host}, not ${deps.config.host}`);
  for (const t of new Set((await deps.db('ip_allocations as a').join('networks as n', 'n.name', 'a.network').where('a.instance_uuid', inst.uuid).select('n.type')).map((r: { type: string }) => r.type))) {
    if (!deps.networkDrivers.has(t as never)) throw new Conflict(`destination ${deps.config.host} has no ${t} network driver`);
  }
  // Pins left here by an earlier migration of this instance that failed without an abort.
  await deps.db('cpu_pins').where({ host: deps.config.host, instance_uuid: inst.uuid }).whereNotNull('migration_id').whereNot({ migration_id: mig.id }).del();
  const claim = await claimFor(deps, inst, mig);
  return { cpuset: claim.cpuset, cpus: claim.cpus };
}

/** finish_resize (destination): pull, create with the same identity, start, plug. */
export async function finishResize(deps: ComputeDeps, args: { instance_uuid: string; migration_id: number }) {
  const { inst, mig } = await migratingInstance(deps, args.instance_uuid, args.migration_id);
  if (!mig.image_ref) throw new Conflict(`migration ${mig.id} has no pushed image yet`);
  const spec = inst.spec as unknown as InstanceSpec;
  const claim = await claimFor(deps, inst, mig);
  await deps.docker.pull(mig.image_ref, { timeoutMs: 1_800_000 });
  const domain = spec.networks.length ? (await deps.networks.get(spec.networks[0].network)).domain : undefined;
  // Hosts files first (they are bind-mounted), then the container from the migrated image.
  await writeInstanceNetFiles(deps, inst.uuid);
  const cspec = containerSpecFor(deps, { ...spec, image: mig.image_ref }, inst.hostname!, claim, [], await blkioFor(deps, spec.io), domain);
  cspec.labels[MIGRATION_LABEL] = String(mig.id);
  // A container of this instance left by an earlier, failed migration must not be reused.
  const existing = await deps.docker.inspect(containerNameFor(inst.uuid)).catch((e) => (e instanceof NotFound ? undefined : Promise.reject(e)));
  if (existing && existing.labels[MIGRATION_LABEL] !== String(mig.id)) await deps.docker.remove(existing.id, { force: true });
  const id = await deps.docker.create(cspec);
  await updateMigration(deps.db, mig.id, {}, { dest_container_id: id });
  // The source may have given up (timeout, rollback) while we pulled: take over only if the
  // migration is still in flight, in the same transaction that moves the instance here.
  const tookOver = await deps.db.transaction(async (trx) => {
    const row = await trx('migrations').where({ id: mig.id }).forUpdate().first();
    if (!row || !['migrating', 'post-migrating'].includes(row.status)) return false;
    await trx('instances').where({ uuid: inst.uuid }).update({ host: deps.config.host, container_id: id, vm_state: 'resized', task_state: 'resize_finish', updated_at: trx.fn.now() });
    return true;
  });
  if (!tookOver) {
    await deps.docker.remove(id, { force: true });
    throw new Conflict(`migration ${mig.id} is no longer in flight (the source gave up); nothing was started here`);
  }
  if (mig.progress.power_before !== 'shutdown') {
    await deps.docker.start(id);
    await postStart(deps, { ...inst, host: deps.config.host, container_id: id });
  }
  await updateInstance(deps.db, inst.uuid, { task_state: null, power_state: mig.progress.power_before === 'shutdown' ? 'shutdown' : 'running' });
  return { container_id: id };
}

/** abort_migration (destination): undo prep/finish; nothing of the instance stays here. */
export async function abortMigration(deps: ComputeDeps, args: { instance_uuid: string; migration_id: number }) {
  const { mig } = await migratingInstance(deps, args.instance_uuid, args.migration_id);
  if (mig.dest_host !== deps.config.host) throw new InvalidInput(`migration ${mig.id} goes to ${mig.dest_host}, not ${deps.config.host}`);
  await deps.docker.remove(containerNameFor(args.instance_uuid), { force: true });
  await unplugAll(deps, args.instance_uuid);
  await deps.db('cpu_pins').where({ host: deps.config.host, instance_uuid: args.instance_uuid, migration_id: mig.id }).del();
  await removeInstanceFiles(deps.config.stateDir, args.instance_uuid);
  if (mig.image_ref) await deps.docker.removeImage(mig.image_ref).catch(() => undefined);
  return { aborted: true };
}

/** confirm_resize (source): delete the old container, free its pins; the new one stays. */
export async function confirmResize(deps: ComputeDeps, ctx: ActionContext, args: { instance_uuid: string; migration_id: number }): Promise<MigrationRow> {
  const { mig } = await migratingInstance(deps, args.instance_uuid, args.migration_id);
  if (mig.source_host !== deps.config.host) throw new InvalidInput(`confirm_resize runs on the source ${mig.source_host}, not ${deps.config.host}`);
  if (mig.status === 'confirmed') return mig;
  if (!(await transitionMigration(deps.db, mig.id, ['finished', 'confirming'], 'confirming'))) {
    const now = await getMigration(deps.db, mig.id);
    if (now.status === 'confirmed') return now;
    throw new Conflict(`migration ${mig.id} is ${now.status}; only a finished migration can be confirmed`);
  }
  mig.status = 'confirming';
  await InstanceAction.run(deps.db, mig.instance_uuid, 'confirmResize', deps.config.host, ctx, async (a) => {
    await a.event('compute_confirm_resize', async () => {
      await deps.docker.remove(containerNameFor(mig.instance_uuid), { force: true });
      if (mig.image_ref) await deps.docker.removeImage(mig.image_ref).catch(() => undefined);
      await deps.db.transaction(async (trx) => {
        await trx('cpu_pins').where({ host: mig.source_host, instance_uuid: mig.instance_uuid }).whereNull('migration_id').del();
        await trx('cpu_pins').where({ host: mig.dest_host, instance_uuid: mig.instance_uuid, migration_id: mig.id }).update({ migration_id: null });
        await trx('instances').where({ uuid: mig.instance_uuid }).update({
          vm_state: mig.progress.power_before === 'shutdown' ? 'stopped' : 'active', task_state: null, updated_at: trx.fn.now(),
        });
        await trx('migrations').where({ id: mig.id }).update({ status: 'confirmed', step: 'confirmed', updated_at: trx.fn.now() });
      });
      // The source's copy of the managed files is no longer mounted anywhere.
      if (deps.config.stateDir) await removeInstanceFiles(deps.config.stateDir, mig.instance_uuid).catch(() => undefined);
    });
  });
  return getMigration(deps.db, mig.id);
}

/** revert_resize (destination): remove the new container, then the source restarts the old one. */
export async function revertResize(deps: ComputeDeps, ctx: ActionContext, args: { instance_uuid: string; migration_id: number }): Promise<MigrationRow> {
  const { mig } = await migratingInstance(deps, args.instance_uuid, args.migration_id);
  if (mig.dest_host !== deps.config.host) throw new InvalidInput(`revert_resize runs on the destination ${mig.dest_host}, not ${deps.config.host}`);
  if (mig.status === 'reverted') return mig;
  if (!(await transitionMigration(deps.db, mig.id, ['finished', 'reverting'], 'reverting'))) {
    const now = await getMigration(deps.db, mig.id);
    if (now.status === 'reverted') return now;
    throw new Conflict(`migration ${mig.id} is ${now.status}; only a finished migration can be reverted`);
  }
  mig.status = 'reverting';
  await updateInstance(deps.db, mig.instance_uuid, { task_state: 'resize_reverting' });
  await InstanceAction.run(deps.db, mig.instance_uuid, 'revertResize', deps.config.host, ctx, async (a) => {
    await a.event('compute_revert_resize', () => abortMigration(deps, args));
    await a.event('compute_finish_revert_resize', () =>
      hostsOf(deps).call(mig.source_host, 'finish_revert_resize', { instance_uuid: mig.instance_uuid, migration_id: mig.id }, { context: { request_id: ctx.requestId } }));
  });
  return getMigration(deps.db, mig.id);
}

/** finish_revert_resize (source): the old container runs again here with its old pins. */
export async function finishRevertResize(deps: ComputeDeps, args: { instance_uuid: string; migration_id: number }) {
  const { inst, mig } = await migratingInstance(deps, args.instance_uuid, args.migration_id);
  if (mig.source_host !== deps.config.host) throw new InvalidInput(`finish_revert_resize runs on the source ${mig.source_host}, not ${deps.config.host}`);
  if (mig.status === 'reverted') return { reverted: true };
  if (mig.status !== 'reverting') throw new Conflict(`migration ${mig.id} is ${mig.status}, not reverting: the source container is not restarted`);
  const containerId = mig.progress.source_container_id ?? containerNameFor(inst.uuid);
  await updateInstance(deps.db, inst.uuid, { host: deps.config.host, container_id: containerId });
  await writeInstanceNetFiles(deps, inst.uuid);
  if (mig.progress.power_before !== 'shutdown') {
    await deps.docker.start(containerId);
    await postStart(deps, { ...inst, host: deps.config.host, container_id: containerId });
  }
  await updateInstance(deps.db, inst.uuid, {
    vm_state: mig.progress.power_before === 'shutdown' ? 'stopped' : 'active',
    power_state: mig.progress.power_before === 'shutdown' ? 'shutdown' : 'running',
    task_state: null,
  });
  await transitionMigration(deps.db, mig.id, ['reverting'], 'reverted', 'reverted');
  return { reverted: true };
}

/** Confirm finished migrations of this source whose auto_confirm_at has passed (periodic task). */
export async function autoConfirmDue(deps: ComputeDeps): Promise<number[]> {
  const due = (await deps.db('migrations').where({ source_host: deps.config.host, status: 'finished' })
    .whereNotNull('auto_confirm_at').where('auto_confirm_at', '<=', deps.db.fn.now()).select('id', 'instance_uuid')) as Array<{ id: number; instance_uuid: string }>;
  const out: number[] = [];
  for (const m of due) {
    try {
      await deps.instanceLocks.runExclusive(m.instance_uuid, () => confirmResize(deps, { requestId: 'auto-confirm' }, { instance_uuid: m.instance_uuid, migration_id: m.id }));
      out.push(m.id);
    } catch (err) {
      deps.log.warn({ migrationId: m.id, instanceUuid: m.instance_uuid, err: describeError(err) }, 'auto-confirm failed; will retry');
    }
  }
  return out;
}

export { activeMigrationOf };

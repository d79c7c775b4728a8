import { INSTANCE_LABEL } from '../../drivers/docker';
import { getInstance, listInstances, updateInstance, type InstanceRow, type PowerState, type VmState } from '../db/instances-repo';
import { describeError, NotFound } from '../errors';
import { containerNameFor, HOST_LABEL, type ComputeDeps } from './compute-deps';
import { removeInstanceFiles } from './hosts-file-writer';
import { networksOf, refreshHostsEverywhere } from './hosts-sync';
import { postStart, powerStateOf, replugAfterDockerStart, terminateInstance } from './lifecycle';
import { releaseResources } from '../db/claims-repo';
import { containerEvents } from '../metrics';
import { InstanceAction } from './instance-action';
import { activeMigrationOf } from '../db/migrations-repo';
import { autoConfirmDue } from './migration';
import { driverFor, nicsOf, unplugAll } from './networking';

export interface ReconcileReport {
  checked: number;
  /** Power state written from Docker's view. */
  synced: Array<{ uuid: string; from: string; to: string }>;
  /** Half-built instances after a crash, cleaned and put in error. */
  failedBuilds: string[];
  /** Transient task_states left by a crash, cleared. */
  clearedTasks: Array<{ uuid: string; task_state: string }>;
  /** Terminations interrupted by a crash, finished. */
  finishedDeletes: string[];
  /** Running instances whose networking was re-plugged (netns changed or drifted). */
  replugged: string[];
  /** Containers with our labels and no live instance row: reported, never removed. */
  orphans: Array<{ containerId: string; name: string; instanceUuid: string }>;
  errors: Array<{ uuid: string; error: string }>;
}

const BUILD_TASKS = new Set(['spawning', 'creating', 'starting', 'post_starting']);

function vmStateFor(power: PowerState, current: VmState): VmState {
  if (power === 'running') return current === 'paused' ? 'active' : current === 'stopped' ? 'active' : current;
  if (power === 'paused') return 'paused';
  if (power === 'shutdown' || power === 'crashed') return current === 'active' || current === 'paused' ? 'stopped' : current;
  return current;
}

/** Undo whatever a crashed build left: container, links, IPs, pins, files. */
async function cleanFailedBuild(deps: ComputeDeps, inst: InstanceRow): Promise<void> {
  const networks = await networksOf(deps.db, inst.uuid);
  await unplugAll(deps, inst.uuid);
  await deps.docker.remove(containerNameFor(inst.uuid), { force: true });
  await deps.db('ip_allocations').where({ instance_uuid: inst.uuid }).del();
  await releaseResources(deps.db, { host: deps.config.host, instanceUuid: inst.uuid });
  await removeInstanceFiles(deps.config.stateDir, inst.uuid);
  await updateInstance(deps.db, inst.uuid, {
    vm_state: 'error', task_state: null, power_state: 'nostate', container_id: null, host: null,
    fault: { step: inst.task_state ?? 'building', message: 'interrupted by a restart of the compute service; cleaned up', at: new Date().toISOString() },
  });
  await refreshHostsEverywhere(deps, networks);
}

/**
 * Compare the DB with Docker (and the network drivers' view) for this host and repair what is
 * safe to repair. Run at start-up before the RPC server accepts work (no instance lock is then
 * held, so any task_state is a leftover of a crash) and periodically with `startup: false`
 * (then instances with a task in progress or a held lock are skipped).
 */
export async function reconcile(deps: ComputeDeps, opts: { startup: boolean }): Promise<ReconcileReport> {
  const report: ReconcileReport = { checked: 0, synced: [], failedBuilds: [], clearedTasks: [], finishedDeletes: [], replugged: [], orphans: [], errors: [] };
  const rows = await listInstances(deps.db, { host: deps.config.host });
  for (const listed of rows) {
    // A failed terminate leaves `deleting`: finishing it is idempotent, so the periodic pass does it too.
    if (!opts.startup && ((listed.task_state && listed.task_state !== 'deleting') || deps.instanceLocks.isLocked(listed.uuid))) continue;
    report.checked++;
    try {
      await deps.instanceLocks.runExclusive(listed.uuid, async () => {
        // Re-read under the lock: an operation may have run between the listing and now.
        const inst = await getInstance(deps.db, listed.uuid);
        if (!inst || inst.host !== deps.config.host) return;
        if (!opts.startup && inst.task_state && inst.task_state !== 'deleting') return;
        // A migration in flight owns the instance's state on both hosts: resume_migration,
        // confirm or revert decide, not the reconciler.
        if (await activeMigrationOf(deps.db, inst.uuid)) return;
        if (inst.vm_state === 'building' || (inst.task_state && BUILD_TASKS.has(inst.task_state))) {
          await cleanFailedBuild(deps, inst);
          report.failedBuilds.push(inst.uuid);
          return;
        }
        if (inst.task_state === 'deleting') {
          await updateInstance(deps.db, inst.uuid, { task_state: null });
          await terminateInstance(deps, { requestId: 'reconciler' }, inst.uuid);
          report.finishedDeletes.push(inst.uuid);
          return;
        }
        if (inst.task_state) {
          await updateInstance(deps.db, inst.uuid, { task_state: null });
          report.clearedTasks.push({ uuid: inst.uuid, task_state: inst.task_state });
        }
        if (inst.vm_state === 'error' || inst.vm_state === 'resized') return;
        const power = await powerStateOf(deps, inst);
        const vm = vmStateFor(power, inst.vm_state);
        if (power !== inst.power_state || vm !== inst.vm_state) {
          await updateInstance(deps.db, inst.uuid, { power_state: power, vm_state: vm });
          report.synced.push({ uuid: inst.uuid, from: `${inst.vm_state}/${inst.power_state}`, to: `${vm}/${power}` });
        }
        if (power === 'running' && await needsReplug(deps, inst)) {
          await postStart(deps, inst);
          report.replugged.push(inst.uuid);
        }
      });
    } catch (err) {
      report.errors.push({ uuid: listed.uuid, error: describeError(err) });
      deps.log.warn({ instanceUuid: listed.uuid, err: describeError(err) }, 'reconcile failed for instance');
    }
  }
  // Containers we labelled on this host without a live instance row.
  const known = new Set((await deps.db('instances').whereNull('deleted_at').select('uuid')).map((r: { uuid: string }) => r.uuid));
  for (const c of await deps.docker.listByLabel([INSTANCE_LABEL, `${HOST_LABEL}=${deps.config.host}`])) {
    const uuid = c.labels[INSTANCE_LABEL];
    if (!known.has(uuid)) report.orphans.push({ containerId: c.id, name: c.name, instanceUuid: uuid });
  }
  if (report.orphans.length) deps.log.warn({ orphans: report.orphans }, 'containers with our labels and no instance');
  return report;
}

/** True when a NIC of a running instance is missing or drifted (e.g. dockerd restarted it: new netns). */
async function needsReplug(deps: ComputeDeps, inst: InstanceRow): Promise<boolean> {
  const info = await deps.docker.inspect(inst.container_id ?? containerNameFor(inst.uuid)).catch((e) => {
    if (e instanceof NotFound) return undefined;
    throw e;
  });
  if (!info?.state.running) return false;
  for (const nic of await nicsOf(deps, inst.uuid)) {
    const r = await driverFor(deps, nic.network).check({
      instanceUuid: inst.uuid, nicIndex: nic.nicIndex, network: nic.network, containerPid: info.state.pid, address: nic.address,
      ...(nic.mac ? { mac: nic.mac } : {}),
    });
    if (!r.ok) return true;
  }
  return false;
}

/**
 * Docker `start` events of this host's instance containers -> re-plug (replugAfterDockerStart).
 * The subscription is renewed when dockerd closes it (e.g. dockerd restarted), with backoff;
 * each renewal runs one reconcile pass, because starts that happened while we were not
 * subscribed (dockerd starting `unless-stopped` containers at boot) were not seen.
 */
/**
 * Count an OOM kill or a container death and record it as an instance action (`containerEvent`)
 * with one event (`docker_oom` / `docker_die` + exit code), so admins see it in the actions log.
 * A death we caused ourselves (a stop, reboot, delete or migration in progress) is only counted.
 */
export async function recordContainerEvent(deps: ComputeDeps, uuid: string, action: 'die' | 'oom', attributes: Record<string, string>): Promise<void> {
  containerEvents.inc({ host: deps.config.host, event: action });
  const inst = await getInstance(deps.db, uuid);
  if (!inst || inst.host !== deps.config.host) return;
  if (action === 'die' && (inst.task_state || inst.vm_state !== 'active' || deps.instanceLocks.isLocked(uuid))) return;
  const details = { exitCode: attributes.exitCode !== undefined ? Number(attributes.exitCode) : null, container: attributes.name ?? null };
  await InstanceAction.run(deps.db, uuid, 'containerEvent', deps.config.host, { requestId: `docker-${action}` }, (a) =>
    a.event(`docker_${action}`, async () => undefined, details));
  deps.log.warn({ instanceUuid: uuid, event: action, ...details }, action === 'oom' ? 'Instance hit its memory limit (OOM kill)' : 'Instance container died');
}

export function startDockerEventWatcher(deps: ComputeDeps, opts: { retryMs?: number } = {}): { stop(): void } {
  let stopped = false;
  let unsubscribe: (() => void) | undefined;
  let timer: NodeJS.Timeout | undefined;
  let failures = 0;
  const subscribe = async (afterGap: boolean): Promise<void> => {
    if (stopped) return;
    let lost = false;
    const onLost = (err: Error): void => {
      if (lost || stopped) return;
      lost = true;
      unsubscribe?.();
      deps.log.warn({ err: describeError(err) }, 'docker event stream lost; resubscribing');
      schedule();
    };
    try {
      unsubscribe = await deps.docker.events(
        { type: ['container'], event: ['start', 'die', 'oom'], label: [INSTANCE_LABEL, `${HOST_LABEL}=${deps.config.host}`] },
        (ev) => {
          const uuid = ev.attributes[INSTANCE_LABEL];
          if (!uuid) return;
          if (ev.action === 'die' || ev.action === 'oom') {
            recordContainerEvent(deps, uuid, ev.action, ev.attributes).catch((err) =>
              deps.log.warn({ instanceUuid: uuid, err: describeError(err) }, 'could not record container event'));
            return;
          }
          replugAfterDockerStart(deps, uuid).catch((err) =>
            deps.log.warn({ instanceUuid: uuid, err: describeError(err) }, 're-plug after docker start failed; the reconciler retries'));
        },
        onLost,
      );
      if (stopped) {
        unsubscribe();
        return;
      }
      failures = 0;
      if (afterGap) {
        const report = await reconcile(deps, { startup: false });
        if (report.replugged.length) deps.log.info({ replugged: report.replugged }, 'Re-plugged instances started while the event stream was down');
      }
    } catch (err) {
      if (!lost) {
        lost = true;
        deps.log.debug({ err: describeError(err) }, 'docker events: not subscribed yet');
        schedule();
      }
    }
  };
  const schedule = (): void => {
    if (stopped) return;
    failures++;
    timer = setTimeout(() => void subscribe(true), Math.min(5000, (opts.retryMs ?? 250) * 2 ** Math.min(failures, 5)));
    timer.unref();
  };
  void subscribe(false);
  return {
    stop() {
      stopped = true;
      if (timer) clearTimeout(timer);
      unsubscribe?.();
    },
  };
}

export function startReconcileLoop(deps: ComputeDeps): { stop(): void } {
  let running = false;
  const timer = setInterval(async () => {
    if (running) return;
    running = true;
    try {
      await reconcile(deps, { startup: false });
      if (deps.config.migration.autoConfirmSec > 0) await autoConfirmDue(deps);
    } catch (err) {
      deps.log.warn({ err: describeError(err) }, 'periodic reconcile failed');
    } finally {
      running = false;
    }
  }, deps.config.reconcileIntervalSec * 1000);
  timer.unref();
  return { stop: () => clearInterval(timer) };
}

import { setIoThrottle } from '../../drivers/cgroups';
import type { ActionContext } from '../db/actions-repo';
import { releaseResources } from '../db/claims-repo';
import { activeMigrationOf } from '../db/migrations-repo';
import { getInstance, updateInstance, type InstanceRow, type PowerState, type VmState } from '../db/instances-repo';
import { Conflict, NotFound } from '../errors';
import { childLogger } from '../logger';
import { containerNameFor, type ComputeDeps } from './compute-deps';
import { removeInstanceFiles } from './hosts-file-writer';
import { networksOf, refreshHostsEverywhere, writeInstanceNetFiles } from './hosts-sync';
import { InstanceAction } from './instance-action';
import type { InstanceSpec } from './instance-spec';
import { plugAll, unplugAll } from './networking';
import { checkTransition, type Operation } from './state-machine';

export interface LifecycleResult {
  uuid: string;
  vm_state: VmState;
  power_state: PowerState;
  /** False when the instance already was in the wanted state ("not modified"). */
  changed: boolean;
}

/** The instance of THIS host, or NotFound naming where it is. */
export async function localInstance(deps: ComputeDeps, uuid: string): Promise<InstanceRow> {
  const inst = await getInstance(deps.db, uuid);
  if (!inst) throw new NotFound(`Instance ${uuid} could not be found.`);
  if (inst.host !== deps.config.host) {
    throw new NotFound(`Instance ${uuid} could not be found on host ${deps.config.host} (it is on ${inst.host ?? 'no host'}).`);
  }
  return inst;
}

/**
 * Local hosts refresh (+ peer fanout), coalesced per network set. Every spawn and terminate
 * rewrites the files of every local peer on its networks; N concurrent ones each did a full
 * pass (O(N x peers): the largest cost of a spawn at concurrency 16 in `npm run bench`). A
 * caller now gets a pass that *started after its call*: it joins the queued pass if there is
 * one, otherwise queues one behind the running pass; the queued pass then covers every caller
 * that arrived meanwhile. Same outcome (files reflect the DB as of after the call), one pass.
 */
const refreshSlots = new WeakMap<object, Map<string, { running: Promise<void> | null; pending: Promise<void> | null }>>();
export function refreshHostsCoalesced(deps: ComputeDeps, networks: string[]): Promise<void> {
  const set = [...new Set(networks)].sort();
  if (set.length === 0) return Promise.resolve();
  let slots = refreshSlots.get(deps.db);
  if (!slots) refreshSlots.set(deps.db, (slots = new Map()));
  const key = set.join(',');
  let slot = slots.get(key);
  if (!slot) slots.set(key, (slot = { running: null, pending: null }));
  const s = slot;
  const start = (): Promise<void> => {
    const p = refreshHostsEverywhere(deps, set).finally(() => {
      if (s.running === p) s.running = null;
    });
    s.running = p;
    return p;
  };
  if (s.pending) return s.pending;
  if (!s.running) return start();
  s.pending = s.running.catch(() => undefined).then(() => {
    s.pending = null;
    return start();
  });
  return s.pending;
}

/** The container PID each instance was last plugged into, per service (deps). */
const pluggedPids = new WeakMap<object, Map<string, number>>();

/** Remember that `uuid` is wired into the netns of `pid` (a Docker start event for that PID is ours). */
export function notePlugged(deps: ComputeDeps, uuid: string, pid: number): void {
  let m = pluggedPids.get(deps);
  if (!m) pluggedPids.set(deps, (m = new Map()));
  m.set(uuid, pid);
}

/** Re-plug networking into the container's current netns and refresh its files (after any start). */
export async function postStart(deps: ComputeDeps, inst: InstanceRow): Promise<void> {
  const info = await deps.docker.inspect(inst.container_id ?? containerNameFor(inst.uuid));
  if (!info.state.running) throw new NotFound(`container of instance ${inst.uuid} is not running after start`);
  await plugAll(deps, inst.uuid, info.state.pid, (inst.spec as unknown as InstanceSpec).net);
  notePlugged(deps, inst.uuid, info.state.pid);
  await writeInstanceNetFiles(deps, inst.uuid);
  await applyIoThrottle(deps, inst, info.state.pid);
}

/**
 * Block IO limits changed by update_instance_resources live only in the cgroup (Docker's update
 * API cannot change throttle devices): re-apply the recorded ones on every start.
 */
async function applyIoThrottle(deps: ComputeDeps, inst: InstanceRow, pid: number): Promise<void> {
  const io = (inst.spec as unknown as InstanceSpec).io;
  if (!io || !Object.values(io).some((v) => v)) return;
  const disk = await deps.cgroups.wholeDiskFor(deps.config.dockerDataRoot);
  await setIoThrottle(await deps.cgroups.locate(pid), {
    majorMinor: disk.majorMinor, readBps: io.read_bps, writeBps: io.write_bps, readIops: io.read_iops, writeIops: io.write_iops,
  });
}

/**
 * dockerd (re)started the container of `uuid` by itself (restart policy after a crash or a
 * daemon restart): a new PID is a new netns without our NICs. Under the instance lock, re-plug
 * if the instance is one we run and its PID is not the one we plugged. Starts we made
 * ourselves (spawn, start, reboot) hold the lock and record their PID first, so they are skipped.
 */
export async function replugAfterDockerStart(deps: ComputeDeps, uuid: string): Promise<'replugged' | 'skipped'> {
  return deps.instanceLocks.runExclusive(uuid, async () => {
    const inst = await getInstance(deps.db, uuid);
    if (!inst || inst.host !== deps.config.host || inst.vm_state === 'deleted' || inst.task_state) return 'skipped';
    if (!['active', 'stopped', 'paused'].includes(inst.vm_state)) return 'skipped';
    let info;
    try {
      info = await deps.docker.inspect(inst.container_id ?? containerNameFor(uuid));
    } catch (err) {
      if (err instanceof NotFound) return 'skipped';
      throw err;
    }
    if (!info.state.running || info.state.pid === pluggedPids.get(deps)?.get(uuid)) return 'skipped';
    await postStart(deps, inst);
    if (inst.vm_state !== 'active' || inst.power_state !== 'running') {
      await updateInstance(deps.db, uuid, { vm_state: info.state.paused ? 'paused' : 'active', power_state: info.state.paused ? 'paused' : 'running' });
    }
    childLogger({ instanceUuid: uuid }).info({ pid: info.state.pid }, 'Re-plugged instance after dockerd started its container');
    return 'replugged';
  });
}

interface OperationDef {
  op: Operation;
  action: string;
  taskState: string;
  run(deps: ComputeDeps, inst: InstanceRow, a: InstanceAction): Promise<{ vm: VmState; power: PowerState }>;
}

const id = (inst: InstanceRow) => inst.container_id ?? containerNameFor(inst.uuid);

export const OPERATIONS: Record<'stop' | 'start' | 'reboot_soft' | 'reboot_hard' | 'pause' | 'unpause', OperationDef> = {
  stop: {
    op: 'stop', action: 'stop', taskState: 'powering_off',
    async run(deps, inst, a) {
      await a.event('compute_stop_instance', () => deps.docker.stop(id(inst), deps.config.stopTimeoutSec));
      // The netns is gone with the process; remove the host side (OVS port, IFB) too.
      await a.event('compute_unplug', () => unplugAll(deps, inst.uuid));
      return { vm: 'stopped', power: 'shutdown' };
    },
  },
  start: {
    op: 'start', action: 'start', taskState: 'powering_on',
    async run(deps, inst, a) {
      await a.event('compute_start_instance', () => deps.docker.start(id(inst)));
      await a.event('compute_post_start', () => postStart(deps, inst));
      return { vm: 'active', power: 'running' };
    },
  },
  reboot_soft: {
    op: 'reboot_soft', action: 'reboot', taskState: 'rebooting',
    async run(deps, inst, a) {
      await a.event('compute_stop_instance', () => deps.docker.stop(id(inst), deps.config.stopTimeoutSec));
      await a.event('compute_start_instance', () => deps.docker.start(id(inst)));
      await a.event('compute_post_start', () => postStart(deps, inst));
      return { vm: 'active', power: 'running' };
    },
  },
  reboot_hard: {
    op: 'reboot_hard', action: 'reboot', taskState: 'rebooting',
    async run(deps, inst, a) {
      await a.event('compute_unpause', () => deps.docker.unpause(id(inst)));
      await a.event('compute_kill', () => deps.docker.kill(id(inst)));
      await a.event('compute_start_instance', () => deps.docker.start(id(inst)));
      await a.event('compute_post_start', () => postStart(deps, inst));
      return { vm: 'active', power: 'running' };
    },
  },
  pause: {
    op: 'pause', action: 'pause', taskState: 'pausing',
    async run(deps, inst, a) {
      await a.event('compute_pause_instance', () => deps.docker.pause(id(inst)));
      return { vm: 'paused', power: 'paused' };
    },
  },
  unpause: {
    op: 'unpause', action: 'unpause', taskState: 'unpausing',
    async run(deps, inst, a) {
      await a.event('compute_unpause_instance', () => deps.docker.unpause(id(inst)));
      return { vm: 'active', power: 'running' };
    },
  },
};

/**
 * Run one lifecycle operation: state machine check, task_state while it runs, instance action
 * with one event per step, and the final vm/power state. On failure the instance keeps its
 * vm_state, task_state is cleared and the real power state is read back from Docker.
 */
export async function runLifecycle(deps: ComputeDeps, ctx: ActionContext, uuid: string, name: keyof typeof OPERATIONS): Promise<LifecycleResult> {
  const def = OPERATIONS[name];
  const inst = await localInstance(deps, uuid);
  if (checkTransition(def.op, inst.vm_state, inst.task_state) === 'noop') {
    return { uuid, vm_state: inst.vm_state, power_state: inst.power_state, changed: false };
  }
  const log = childLogger({ instanceUuid: uuid, requestId: ctx.requestId });
  await updateInstance(deps.db, uuid, { task_state: def.taskState });
  try {
    const out = await InstanceAction.run(deps.db, uuid, def.action, deps.config.host, ctx, (a) => def.run(deps, inst, a));
    await updateInstance(deps.db, uuid, { vm_state: out.vm, power_state: out.power, task_state: null });
    log.info({ operation: name }, `Instance ${out.vm}`);
    return { uuid, vm_state: out.vm, power_state: out.power, changed: true };
  } catch (err) {
    const power = await powerStateOf(deps, inst).catch(() => inst.power_state);
    await updateInstance(deps.db, uuid, { task_state: null, power_state: power });
    throw err;
  }
}

/** Docker's view of the container, as nova's power_state. */
export async function powerStateOf(deps: ComputeDeps, inst: InstanceRow): Promise<PowerState> {
  try {
    const info = await deps.docker.inspect(id(inst));
    if (info.state.paused) return 'paused';
    if (info.state.running) return 'running';
    return info.state.exitCode === 0 ? 'shutdown' : 'crashed';
  } catch (err) {
    if (err instanceof NotFound) return 'nostate';
    throw err;
  }
}

/**
 * terminate_instance: unplug, remove the container, free IPs and CPU pins, drop its files,
 * mark it deleted and refresh its peers' hosts files. Idempotent: a deleted or unknown
 * instance is success.
 */
export async function terminateInstance(deps: ComputeDeps, ctx: ActionContext, uuid: string): Promise<{ uuid: string; vm_state: 'deleted'; changed: boolean }> {
  const inst = await getInstance(deps.db, uuid);
  if (!inst || inst.vm_state === 'deleted') return { uuid, vm_state: 'deleted', changed: false };
  if (inst.host !== null && inst.host !== deps.config.host) {
    throw new NotFound(`Instance ${uuid} could not be found on host ${deps.config.host} (it is on ${inst.host}).`);
  }
  checkTransition('terminate', inst.vm_state, inst.task_state);
  const mig = await activeMigrationOf(deps.db, uuid);
  if (mig) {
    throw new Conflict(`instance ${uuid} has migration ${mig.id} in flight (${mig.status}, ${mig.source_host} -> ${mig.dest_host}): ` +
      `confirm or revert it (or resume it) first, so neither host keeps a copy`, { details: { migration_id: mig.id, status: mig.status } });
  }
  const log = childLogger({ instanceUuid: uuid, requestId: ctx.requestId });
  await updateInstance(deps.db, uuid, { task_state: 'deleting' });
  const networks = await networksOf(deps.db, uuid);
  await InstanceAction.run(deps.db, uuid, 'delete', deps.config.host, ctx, async (a) => {
    await a.event('compute_unplug', () => unplugAll(deps, uuid));
    await a.event('compute_remove_container', () => deps.docker.remove(containerNameFor(uuid), { force: true }));
    await a.event('compute_release', async () => {
      await deps.db.transaction(async (trx) => {
        await trx('ip_allocations').where({ instance_uuid: uuid }).del();
        await releaseResources(trx, { host: deps.config.host, instanceUuid: uuid });
        await trx('instances').where({ uuid }).update({
          vm_state: 'deleted', task_state: null, power_state: 'nostate', terminated_at: trx.fn.now(),
          deleted_at: trx.fn.now(), updated_at: trx.fn.now(),
        });
      });
      await removeInstanceFiles(deps.config.stateDir, uuid);
    });
    await a.event('compute_refresh_hosts', () => refreshHostsCoalesced(deps, networks));
  });
  log.info('Terminated instance');
  return { uuid, vm_state: 'deleted', changed: true };
}

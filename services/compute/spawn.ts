import { INSTANCE_LABEL, type BlkioThrottle, type ContainerSpec } from '../../drivers/docker';
import { renderHostname } from '../../drivers/network';
import type { ActionContext } from '../db/actions-repo';
import { claimResources, releaseResources, type ResourceClaim } from '../db/claims-repo';
import { getInstance, updateInstance, type InstanceRow } from '../db/instances-repo';
import { Conflict, describeError, InvalidInput } from '../errors';
import { childLogger } from '../logger';
import { resultLabel, spawnStepDuration } from '../metrics';
import { containerNameFor, HOST_LABEL, type ComputeDeps } from './compute-deps';
import { hostsPath, removeInstanceFiles, resolvPath } from './hosts-file-writer';
import { networksOf, writeInstanceNetFiles } from './hosts-sync';
import { InstanceAction } from './instance-action';
import { MB, type InstanceSpec } from './instance-spec';
import { notePlugged, refreshHostsCoalesced } from './lifecycle';
import { plugAll, unplugAll } from './networking';
import { runPipeline, StepFailed, type Step } from './pipeline';
import { resolveVolumes } from './volumes';

interface SpawnState {
  spec: InstanceSpec;
  claim?: ResourceClaim;
  containerId?: string;
  pid?: number;
}

/** Docker blkio throttles for the spec's io limits, on the whole disk holding Docker's data. */
export async function blkioFor(deps: ComputeDeps, io: InstanceSpec['io']): Promise<BlkioThrottle | undefined> {
  if (!io || Object.values(io).every((v) => !v)) return undefined;
  const disk = await deps.cgroups.wholeDiskFor(deps.config.dockerDataRoot);
  const dev = disk.devNode ? { path: disk.devNode } : { major: disk.major, minor: disk.minor };
  const one = (rate?: number) => (rate ? [{ ...dev, rate }] : []);
  return { readBps: one(io.read_bps), writeBps: one(io.write_bps), readIops: one(io.read_iops), writeIops: one(io.write_iops) };
}

/** The container to create for an instance (pure apart from the claim already made). */
export function containerSpecFor(
  deps: Pick<ComputeDeps, 'config'>,
  spec: InstanceSpec,
  hostname: string,
  claim: { cpuset: string; cpuShares: number },
  binds: ContainerSpec['binds'],
  blkio: BlkioThrottle | undefined,
  domain: string | undefined,
): ContainerSpec {
  const memoryBytes = spec.flavor.memory_mb * MB;
  return {
    name: containerNameFor(spec.uuid),
    image: spec.image,
    ...(spec.command && spec.command.length ? { command: spec.command } : {}),
    env: spec.env ?? {},
    hostname,
    ...(domain ? { domainName: domain } : {}),
    labels: { ...(spec.labels ?? {}), [INSTANCE_LABEL]: spec.uuid, [HOST_LABEL]: deps.config.host },
    networkMode: 'none',
    cpusetCpus: claim.cpuset,
    cpuShares: claim.cpuShares,
    memoryBytes,
    memorySwapBytes: memoryBytes + (spec.flavor.swap_mb ?? 0) * MB,
    pidsLimit: spec.flavor.pids_limit ?? 0,
    ...(blkio ? { blkio } : {}),
    binds,
    hostsFile: hostsPath(deps.config.stateDir, spec.uuid),
    resolvConfFile: resolvPath(deps.config.stateDir, spec.uuid),
    stopTimeoutSec: deps.config.stopTimeoutSec,
    // dockerd brings running instances back after a crash or its own restart; the service then
    // re-plugs them (Docker `start` events, reconciler as fallback). `stop` is never undone.
    restartPolicy: 'unless-stopped',
  };
}

function spawnSteps(deps: ComputeDeps): Array<Step<SpawnState>> {
  const host = deps.config.host;
  const steps: Array<Step<SpawnState>> = [
    {
      name: 'claim',
      async do(s) {
        const { spec } = s;
        s.claim = await claimResources(deps.db, {
          host,
          instanceUuid: spec.uuid,
          vcpus: spec.flavor.vcpus,
          cpuPolicy: spec.flavor.cpu_policy ?? 'shared',
          memoryMb: spec.flavor.memory_mb,
          cpuShares: spec.flavor.cpu_shares,
        });
        const allocations = [];
        for (const [nicIndex, n] of spec.networks.entries()) {
          allocations.push(await deps.networks.allocate(n.network, spec.uuid, { nicIndex, ...(n.fixed_ip ? { fixedIp: n.fixed_ip } : {}) }));
        }
        let hostname = spec.hostname;
        if (!hostname) {
          if (allocations.length === 0) throw new InvalidInput('an instance without networks needs an explicit hostname');
          const net0 = await deps.networks.get(spec.networks[0].network);
          hostname = renderHostname(net0.hostnameTemplate, { name: spec.name, ip: allocations[0].address, network: net0.name, uuid: spec.uuid });
        }
        await updateInstance(deps.db, spec.uuid, { hostname });
      },
      async undo(s) {
        for (const n of s.spec.networks) await deps.networks.release(n.network, s.spec.uuid);
        await releaseResources(deps.db, { host, instanceUuid: s.spec.uuid });
      },
    },
    {
      name: 'create',
      async do(s) {
        const { spec } = s;
        await updateInstance(deps.db, spec.uuid, { task_state: 'creating' });
        const inst = (await getInstance(deps.db, spec.uuid))!;
        const binds = await resolveVolumes(spec.volumes ?? [], deps.config.volumeRoots);
        await writeInstanceNetFiles(deps, spec.uuid);
        const domain = spec.networks.length ? (await deps.networks.get(spec.networks[0].network)).domain : undefined;
        const cspec = containerSpecFor(deps, spec, inst.hostname!, s.claim!, binds, await blkioFor(deps, spec.io), domain);
        s.containerId = await deps.docker.create(cspec);
        await updateInstance(deps.db, spec.uuid, { container_id: s.containerId });
      },
      async undo(s) {
        // By name: the container may exist even if create() failed before returning its id.
        await deps.docker.remove(containerNameFor(s.spec.uuid), { force: true });
        await removeInstanceFiles(deps.config.stateDir, s.spec.uuid);
        await updateInstance(deps.db, s.spec.uuid, { container_id: null });
      },
    },
    {
      name: 'start',
      async do(s) {
        await updateInstance(deps.db, s.spec.uuid, { task_state: 'starting' });
        await deps.docker.start(s.containerId!);
      },
      async undo(s) {
        await deps.docker.stop(containerNameFor(s.spec.uuid), 0);
      },
    },
    {
      name: 'post_start',
      async do(s) {
        await updateInstance(deps.db, s.spec.uuid, { task_state: 'post_starting' });
        const info = await deps.docker.inspect(s.containerId!);
        if (!info.state.running) throw new Conflict(`container exited right after start (exit code ${info.state.exitCode})`);
        s.pid = info.state.pid;
        await plugAll(deps, s.spec.uuid, s.pid, s.spec.net);
        notePlugged(deps, s.spec.uuid, s.pid);
        await updateInstance(deps.db, s.spec.uuid, { vm_state: 'active', power_state: 'running' });
        await refreshHostsCoalesced(deps, s.spec.networks.map((n) => n.network));
      },
      async undo(s) {
        await unplugAll(deps, s.spec.uuid);
      },
    },
  ];
  return steps;
}

export interface SpawnResult {
  uuid: string;
  vm_state: string;
  hostname: string | null;
  container_id: string | null;
  addresses: Array<{ network: string; address: string; mac: string | null }>;
}

async function resultFor(deps: ComputeDeps, uuid: string): Promise<SpawnResult> {
  const inst = (await getInstance(deps.db, uuid))!;
  const addrs = (await deps.db('ip_allocations').where({ instance_uuid: uuid }).orderBy('nic_index')
    .select('network', deps.db.raw('host(address) as address'), 'mac')) as SpawnResult['addresses'];
  return { uuid, vm_state: inst.vm_state, hostname: inst.hostname, container_id: inst.container_id, addresses: addrs };
}

/**
 * build_and_run_instance: claim -> create -> start -> post_start. The instance row is written
 * first (vm_state building); on failure every finished step is undone in reverse order and the
 * instance ends in vm_state error with the failing step and its cause in `fault`.
 * Calling it again for an instance that is already active returns it unchanged.
 */
export async function buildAndRunInstance(deps: ComputeDeps, ctx: ActionContext, spec: InstanceSpec): Promise<SpawnResult> {
  const log = childLogger({ instanceUuid: spec.uuid, requestId: ctx.requestId });
  const existing = await deps.db<InstanceRow>('instances').where({ uuid: spec.uuid }).first();
  if (existing) {
    if (existing.vm_state === 'active' && existing.host === deps.config.host) return resultFor(deps, spec.uuid);
    throw new Conflict(`instance ${spec.uuid} already exists (vm_state ${existing.vm_state}, host ${existing.host ?? 'none'})`);
  }
  await deps.db('instances').insert({
    uuid: spec.uuid,
    name: spec.name,
    project_id: spec.project_id,
    user_id: ctx.userId ?? null,
    host: deps.config.host,
    vm_state: 'building',
    task_state: 'spawning',
    power_state: 'nostate',
    vcpus: spec.flavor.vcpus,
    memory_mb: spec.flavor.memory_mb,
    spec: JSON.stringify(spec),
  });
  return InstanceAction.run(deps.db, spec.uuid, 'create', deps.config.host, ctx, async (action) => {
    let current: string | undefined;
    let stepStarted = Date.now();
    const state: SpawnState = { spec };
    try {
      log.info('Spawning instance');
      await runPipeline(spawnSteps(deps), state, log, {
        beforeStep: async (name) => {
          current = name;
          stepStarted = Date.now();
          await action.beginEvent(`compute_${name}`);
        },
        afterStep: async (name, err) => {
          spawnStepDuration.observe({ step: name, result: resultLabel(err) }, (Date.now() - stepStarted) / 1000);
          await action.endEvent(err);
        },
        faultAfter: async (name) => deps.faults?.afterStep?.(name, spec.uuid),
      });
      await updateInstance(deps.db, spec.uuid, { task_state: null, vm_state: 'active', power_state: 'running', launched_at: new Date() });
      log.info({ containerId: state.containerId }, 'Spawned instance');
    } catch (err) {
      const step = err instanceof StepFailed ? err.step : current ?? 'unknown';
      const cause = err instanceof StepFailed ? err.original : err;
      const cleanup = err instanceof StepFailed ? err.cleanupErrors.map((c) => `${c.step}: ${describeError(c.error)}`) : [];
      log.error({ step, err: describeError(cause), cleanupErrors: cleanup }, 'Spawn failed');
      // When an undo failed, something may be left here: keep the instance on this host (with
      // its container name) so terminate_instance and the audit can still find and remove it.
      await updateInstance(deps.db, spec.uuid, {
        vm_state: 'error',
        task_state: null,
        power_state: 'nostate',
        ...(cleanup.length ? { container_id: containerNameFor(spec.uuid) } : { container_id: null, host: null }),
        fault: { step, message: describeError(cause), at: new Date().toISOString(), ...(cleanup.length ? { cleanup_errors: cleanup } : {}) },
      } as Partial<InstanceRow>).catch(() => undefined);
      await refreshHostsCoalesced(deps, spec.networks.map((n) => n.network)).catch(() => undefined);
      throw cause;
    }
    return resultFor(deps, spec.uuid);
  });
}

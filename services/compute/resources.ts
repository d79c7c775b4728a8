import type { ActionContext } from '../db/actions-repo';
import { claimResources } from '../db/claims-repo';
import { updateInstance } from '../db/instances-repo';
import { describeError } from '../errors';
import fs from 'node:fs/promises';
import { nicNames } from '../../drivers/network';
import { setIoThrottle } from '../../drivers/cgroups';
import type { ComputeDeps } from './compute-deps';
import { InstanceAction } from './instance-action';
import { MB, type InstanceSpec } from './instance-spec';
import { localInstance, powerStateOf } from './lifecycle';
import { nicsOf } from './networking';
import { checkTransition } from './state-machine';

export interface UpdateResourcesArgs {
  instance_uuid: string;
  vcpus?: number;
  memory_mb?: number;
  cpu_shares?: number;
  pids_limit?: number;
  io?: InstanceSpec['io'];
}

/**
 * update_instance_resources: re-claim (CPUs, memory against host capacity) in one transaction,
 * then `docker update` the running container's cgroups live. The new flavor is recorded only
 * once Docker accepted it; a refused claim changes nothing.
 */
export async function updateInstanceResources(deps: ComputeDeps, ctx: ActionContext, args: UpdateResourcesArgs) {
  const inst = await localInstance(deps, args.instance_uuid);
  checkTransition('update_resources', inst.vm_state, inst.task_state);
  const spec = inst.spec as unknown as InstanceSpec;
  const flavor = {
    ...spec.flavor,
    ...(args.vcpus !== undefined ? { vcpus: args.vcpus } : {}),
    ...(args.memory_mb !== undefined ? { memory_mb: args.memory_mb } : {}),
    ...(args.cpu_shares !== undefined ? { cpu_shares: args.cpu_shares } : {}),
    ...(args.pids_limit !== undefined ? { pids_limit: args.pids_limit } : {}),
  };
  const io = args.io ?? spec.io;
  await updateInstance(deps.db, inst.uuid, { task_state: 'updating_resources' });
  try {
    return await InstanceAction.run(deps.db, inst.uuid, 'resize_resources', deps.config.host, ctx, async (a) => {
      const claim = await a.event('compute_claim', () => claimResources(deps.db, {
        host: deps.config.host, instanceUuid: inst.uuid, vcpus: flavor.vcpus, cpuPolicy: flavor.cpu_policy ?? 'shared',
        memoryMb: flavor.memory_mb, cpuShares: flavor.cpu_shares,
      }));
      const memoryBytes = flavor.memory_mb * MB;
      await a.event('compute_docker_update', async () => deps.docker.update(inst.container_id!, {
        cpusetCpus: claim.cpuset,
        cpuShares: claim.cpuShares,
        memoryBytes,
        memorySwapBytes: memoryBytes + (flavor.swap_mb ?? 0) * MB,
        ...(flavor.pids_limit !== undefined ? { pidsLimit: flavor.pids_limit } : {}),
      }));
      if (args.io) {
        await a.event('compute_io_throttle', async () => {
          const info = await deps.docker.inspect(inst.container_id!);
          if (!info.state.running) return; // stored in the spec below; postStart applies it at the next start
          const disk = await deps.cgroups.wholeDiskFor(deps.config.dockerDataRoot);
          const io = args.io!;
          await setIoThrottle(await deps.cgroups.locate(info.state.pid), {
            majorMinor: disk.majorMinor, readBps: io.read_bps, writeBps: io.write_bps, readIops: io.read_iops, writeIops: io.write_iops,
          });
        });
      }
      const newSpec: InstanceSpec = { ...spec, flavor, ...(io ? { io } : {}) };
      await updateInstance(deps.db, inst.uuid, { spec: newSpec as unknown as Record<string, unknown>, vcpus: flavor.vcpus, memory_mb: flavor.memory_mb, task_state: null });
      return { uuid: inst.uuid, cpuset: claim.cpuset, cpu_shares: claim.cpuShares, memory_mb: flavor.memory_mb, vcpus: flavor.vcpus, pids_limit: flavor.pids_limit ?? null };
    });
  } catch (err) {
    // A later step failed after the claim (and maybe Docker) changed: put both back to the
    // recorded flavor, so the container never runs on CPUs its claim no longer holds.
    try {
      const old = await claimResources(deps.db, {
        host: deps.config.host, instanceUuid: inst.uuid, vcpus: spec.flavor.vcpus, cpuPolicy: spec.flavor.cpu_policy ?? 'shared',
        memoryMb: spec.flavor.memory_mb, cpuShares: spec.flavor.cpu_shares,
      });
      const mem = spec.flavor.memory_mb * MB;
      await deps.docker.update(inst.container_id!, {
        cpusetCpus: old.cpuset, cpuShares: old.cpuShares, memoryBytes: mem, memorySwapBytes: mem + (spec.flavor.swap_mb ?? 0) * MB,
        ...(spec.flavor.pids_limit !== undefined ? { pidsLimit: spec.flavor.pids_limit } : {}),
      });
    } catch (e) {
      deps.log.error({ instanceUuid: inst.uuid, err: describeError(e) }, 'could not restore the claim and cgroups after a failed update');
    }
    await updateInstance(deps.db, inst.uuid, { task_state: null });
    throw err;
  }
}

export async function getConsoleOutput(deps: ComputeDeps, uuid: string, tail: number): Promise<string> {
  const inst = await localInstance(deps, uuid);
  return deps.docker.logs(inst.container_id!, tail);
}

async function readCounter(file: string): Promise<number | null> {
  try {
    return Number((await fs.readFile(file, 'utf8')).trim());
  } catch {
    return null;
  }
}

/** get_diagnostics: cgroup stats of the running container and rx/tx of its host-side veths. */
export async function getDiagnostics(deps: ComputeDeps, uuid: string) {
  const inst = await localInstance(deps, uuid);
  const info = await deps.docker.inspect(inst.container_id!);
  const cgroup = info.state.running ? await deps.cgroups.statsForPid(info.state.pid) : null;
  const nics = [];
  for (const nic of await nicsOf(deps, uuid)) {
    const veth = nicNames(uuid, nic.nicIndex).hostVeth;
    // The host end's rx is what the container sent, its tx what the container received.
    const rx = await readCounter(`/sys/class/net/${veth}/statistics/rx_bytes`);
    const tx = await readCounter(`/sys/class/net/${veth}/statistics/tx_bytes`);
    nics.push({ network: nic.network.name, address: nic.address, host_veth: veth, container_tx_bytes: rx, container_rx_bytes: tx });
  }
  return {
    uuid,
    power_state: await powerStateOf(deps, inst),
    state: info.state,
    cgroup,
    nics,
  };
}

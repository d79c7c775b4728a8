import type { NetworkDriver, NetworkRecord, PlugResult } from '../../drivers/network';
import { Internal } from '../errors';
import type { ComputeDeps } from './compute-deps';

export interface InstanceNic {
  nicIndex: number;
  network: NetworkRecord;
  address: string;
  mac: string | null;
}

/** The NICs an instance holds (its IP allocations), in NIC order, with their network records. */
export async function nicsOf(deps: Pick<ComputeDeps, 'db' | 'networks'>, instanceUuid: string): Promise<InstanceNic[]> {
  const rows = (await deps.db('ip_allocations').where({ instance_uuid: instanceUuid }).orderBy('nic_index')
    .select('network', deps.db.raw('host(address) as address'), 'nic_index', 'mac')) as Array<{ network: string; address: string; nic_index: number; mac: string | null }>;
  const out: InstanceNic[] = [];
  for (const r of rows) {
    out.push({ nicIndex: r.nic_index, network: await deps.networks.get(r.network), address: r.address, mac: r.mac });
  }
  return out;
}

export function driverFor(deps: Pick<ComputeDeps, 'networkDrivers'>, network: NetworkRecord): NetworkDriver {
  const d = deps.networkDrivers.get(network.type);
  if (!d) throw new Internal(`no network driver loaded for type ${network.type} (network ${network.name})`);
  return d;
}

/**
 * Plug every NIC into the container's current netns. Run after every start: a new PID is a new
 * netns, and plug is idempotent for the same one. Shaping applies to the first NIC.
 */
export async function plugAll(deps: ComputeDeps, instanceUuid: string, pid: number, net?: { egress_kbit?: number; ingress_kbit?: number }): Promise<PlugResult[]> {
  const out: PlugResult[] = [];
  for (const nic of await nicsOf(deps, instanceUuid)) {
    out.push(await driverFor(deps, nic.network).plug({
      instanceUuid,
      nicIndex: nic.nicIndex,
      network: nic.network,
      containerPid: pid,
      address: nic.address,
      ...(nic.mac ? { mac: nic.mac } : {}),
      bandwidth: nic.nicIndex === 0 && net ? { egressKbit: net.egress_kbit, ingressKbit: net.ingress_kbit } : undefined,
    }));
  }
  return out;
}

/** Unplug every NIC (idempotent: gone is success). */
export async function unplugAll(deps: ComputeDeps, instanceUuid: string): Promise<void> {
  for (const nic of await nicsOf(deps, instanceUuid)) {
    await driverFor(deps, nic.network).unplug({ instanceUuid, nicIndex: nic.nicIndex, network: nic.network });
  }
}

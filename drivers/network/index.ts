import { InvalidInput } from '../../services/errors';
import { ExecFileRunner, type CommandRunner } from './exec';
import { LinuxBridgeDriver } from './linux-bridge-driver';
import type { NetworkDriver } from './network-driver';
import { NETWORK_TYPES, type NetworkType } from './network-record';
import { OvsVlanDriver, type DatapathType } from './ovs-vlan-driver';

export * from './network-driver';
export { validateNetworkRecord, NETWORK_TYPES, type NetworkRecord, type NetworkType } from './network-record';
export { renderHostname, renderHostsFile, type HostsEntry } from './hostname';
export { chooseAddress, isAllocatable } from './ip-math';
export { macFor, nicNames } from './names';
export { auditLeaks, fixLeaks, type Leak } from './leak-audit';
export { OvsVlanDriver } from './ovs-vlan-driver';
export { LinuxBridgeDriver } from './linux-bridge-driver';

export interface NetworkDriverConfig {
  ovs: { bridge: string; datapathType: DatapathType };
}

type DriverFactory = (runner: CommandRunner, cfg: NetworkDriverConfig) => NetworkDriver;

/** The explicit table of network backends (macvlan comes later). */
export const NETWORK_DRIVERS: Record<NetworkType, DriverFactory> = {
  'ovs-vlan': (runner, cfg) => new OvsVlanDriver(runner, { bridge: cfg.ovs.bridge, datapathType: cfg.ovs.datapathType }),
  'linux-bridge': (runner) => new LinuxBridgeDriver(runner),
};

/**
 * Build and initialise the drivers for the network types this host serves. A type without a
 * driver, or a driver whose init fails (OVS down, datapath mismatch, tool missing), fails
 * start-up with every problem listed.
 */
export async function loadNetworkDrivers(
  cfg: NetworkDriverConfig,
  types: readonly string[] = NETWORK_TYPES,
  runner: CommandRunner = new ExecFileRunner(),
): Promise<Map<NetworkType, NetworkDriver>> {
  const out = new Map<NetworkType, NetworkDriver>();
  const problems: string[] = [];
  for (const t of types) {
    const factory = (NETWORK_DRIVERS as Record<string, DriverFactory | undefined>)[t];
    if (!factory) {
      problems.push(`no network driver for type ${JSON.stringify(t)} (known: ${Object.keys(NETWORK_DRIVERS).join(', ')})`);
      continue;
    }
    try {
      const d = factory(runner, cfg);
      await d.init();
      out.set(t as NetworkType, d);
    } catch (err) {
      problems.push(`${t}: ${(err as Error).message}`);
    }
  }
  if (problems.length > 0) {
    throw new InvalidInput(`network drivers failed to start: ${problems.join('; ')}`, { details: problems });
  }
  return out;
}

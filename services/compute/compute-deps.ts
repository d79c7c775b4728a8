import type { CgroupReader } from '../../drivers/cgroups';
import type { DockerDriver } from '../../drivers/docker';
import type { NetworkDriver, NetworkType } from '../../drivers/network';
import type { Config } from '../config';
import type { Db } from '../db/knex';
import type { NetworksRepo } from '../db/networks-repo';
import type { Logger } from '../logger';
import type { KeyedMutex } from '../rpc/keyed-mutex';

/**
 * Test-only fault injection (never set in production): throwing from `afterStep` makes the
 * named pipeline step fail after its `do` ran, to prove the undo path leaves nothing behind.
 */
export interface FaultInjector {
  afterStep?(step: string, instanceUuid: string): Promise<void> | void;
}

/** Tell the other compute hosts that a network's peers changed (refresh_hosts fanout). */
export type PeerNotifier = (network: string) => Promise<void>;

/** Calls to other compute hosts (cold migration steps run on the host that owns the resource). */
export interface HostCaller {
  call<T = unknown>(host: string, method: string, args: Record<string, unknown>, opts?: { timeout?: number; context?: Record<string, unknown> }): Promise<T>;
}

/** Everything the compute operations depend on: narrow interfaces, no dockerode, no amqplib. */
export interface ComputeDeps {
  config: Config;
  db: Db;
  docker: DockerDriver;
  networkDrivers: Map<NetworkType, NetworkDriver>;
  networks: NetworksRepo;
  cgroups: CgroupReader;
  instanceLocks: KeyedMutex;
  log: Logger;
  notifyPeers?: PeerNotifier;
  /** RPC to other hosts; absent in single-host unit setups (migration then refuses). */
  hosts?: HostCaller;
  faults?: FaultInjector;
}

/** Docker container name of an instance: derived from the uuid, so a re-run finds it. */
export function containerNameFor(instanceUuid: string): string {
  return `instance-${instanceUuid}`;
}

export const HOST_LABEL = 'compute.host';

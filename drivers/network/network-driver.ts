import { InvalidInput } from '../../services/errors';
import { isAllocatable, parseCidr } from './ip-math';
import { assertNicIndex, assertUuid, MAC_PATTERN, macFor } from './names';
import { validateNetworkRecord, type NetworkRecord, type NetworkType } from './network-record';

/** Limits from the container's point of view, in kbit/s. */
export interface Bandwidth {
  /** Traffic the container sends (ingress of the host veth). */
  egressKbit?: number;
  /** Traffic the container receives (egress of the host veth). */
  ingressKbit?: number;
}

export interface NicRef {
  instanceUuid: string;
  nicIndex: number;
  network: NetworkRecord;
}

export interface PlugRequest extends NicRef {
  /** PID of a process in the container (Docker `State.Pid`); its netns receives the NIC. */
  containerPid: number;
  /** Fixed address, already claimed through IPAM; must be inside the network's range. */
  address: string;
  /** Defaults to `macFor(instanceUuid, nicIndex)`; a migrated instance passes its recorded MAC. */
  mac?: string;
  bandwidth?: Bandwidth;
}

export interface PlugResult {
  hostVeth: string;
  containerIfname: string;
  mac: string;
  address: string;
  prefix: number;
  /** False when everything already existed (a repeated plug). */
  created: boolean;
}

export interface Drift {
  /** e.g. `host-veth-missing`, `ovs-tag`, `container-address`. */
  kind: string;
  expected?: string;
  actual?: string;
}

export interface CheckResult {
  ok: boolean;
  drift: Drift[];
}

/**
 * What the spawn pipeline (post_start) and the reconciler need from a network backend.
 * Implementations are idempotent: plug twice leaves one interface; unplug of something already
 * gone succeeds; check compares the real host/netns state with what plug would make.
 */
export interface NetworkDriver {
  readonly type: NetworkType;
  /** Start-up check (tools present, bridge usable, datapath as configured); throws with a clear message. */
  init(): Promise<void>;
  plug(req: PlugRequest): Promise<PlugResult>;
  unplug(nic: NicRef): Promise<void>;
  check(req: PlugRequest): Promise<CheckResult>;
}

export const MIN_KBIT = 8;
export const MAX_KBIT = 100_000_000;

export function validateBandwidth(b: unknown): Bandwidth {
  if (b === undefined || b === null) return {};
  if (typeof b !== 'object' || Array.isArray(b)) throw new InvalidInput('bandwidth must be an object');
  const out: Bandwidth = {};
  for (const [k, v] of Object.entries(b as Record<string, unknown>)) {
    if (k !== 'egressKbit' && k !== 'ingressKbit') throw new InvalidInput(`unknown bandwidth field ${JSON.stringify(k)}`);
    if (v === undefined || v === null || v === 0) continue;
    if (typeof v !== 'number' || !Number.isInteger(v) || v < MIN_KBIT || v > MAX_KBIT) {
      throw new InvalidInput(`${k} must be an integer ${MIN_KBIT}..${MAX_KBIT} (kbit/s), got ${JSON.stringify(v)}`);
    }
    out[k] = v;
  }
  return out;
}

export function validateNicRef(nic: NicRef, type: NetworkType): NicRef {
  assertUuid(nic?.instanceUuid);
  assertNicIndex(nic.nicIndex);
  const network = validateNetworkRecord(nic.network);
  if (network.type !== type) throw new InvalidInput(`network ${network.name} is ${network.type}, not ${type}`);
  return { instanceUuid: nic.instanceUuid, nicIndex: nic.nicIndex, network };
}

export interface ValidPlug extends PlugRequest {
  mac: string;
  prefix: number;
  bandwidth: Bandwidth;
}

/** Every field checked before any command runs. */
export function validatePlugRequest(req: PlugRequest, type: NetworkType): ValidPlug {
  const nic = validateNicRef(req, type);
  if (!Number.isInteger(req.containerPid) || req.containerPid < 2 || req.containerPid > 4_194_304) {
    throw new InvalidInput(`containerPid must be a process id, got ${JSON.stringify(req.containerPid)}`);
  }
  if (!isAllocatable(nic.network, req.address)) {
    throw new InvalidInput(`address ${JSON.stringify(req.address)} is not allocatable in ${nic.network.name} (range ${nic.network.rangeStart}-${nic.network.rangeEnd}, gateway/network/broadcast excluded)`);
  }
  const mac = req.mac ?? macFor(req.instanceUuid, req.nicIndex);
  if (typeof mac !== 'string' || !MAC_PATTERN.test(mac) || (parseInt(mac.slice(0, 2), 16) & 1) === 1) {
    throw new InvalidInput(`mac must be a lowercase unicast MAC, got ${JSON.stringify(mac)}`);
  }
  return {
    ...req,
    network: nic.network,
    mac,
    prefix: parseCidr(nic.network.cidr).prefix,
    bandwidth: validateBandwidth(req.bandwidth),
  };
}

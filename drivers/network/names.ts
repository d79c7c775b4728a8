import crypto from 'node:crypto';
import { InvalidInput } from '../../services/errors';

/**
 * Names and identifiers derived from an instance uuid and a NIC index. Deterministic so a
 * re-run of post_start (or the reconciler) finds what an earlier run made instead of making a
 * second one, and short enough for IFNAMSIZ (15 usable characters).
 */
export const UUID_PATTERN = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
/** Linux interface names we accept anywhere: no leading dash (would read as an option), <= 15. */
export const IFNAME_PATTERN = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,14}$/;
export const MAC_PATTERN = /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/;
export const MAX_NICS = 16;

/** Prefixes of everything this driver creates on a host; the leak audit looks for these. */
export const HOST_VETH_PREFIX = 'cvh';
export const IFB_PREFIX = 'cvi';
/** 10 hex characters (40 bits) of the uuid: collisions need ~1M instances on one host. */
const KEY_LEN = 10;

export function assertUuid(uuid: unknown): asserts uuid is string {
  if (typeof uuid !== 'string' || !UUID_PATTERN.test(uuid)) {
    throw new InvalidInput(`not a lowercase instance uuid: ${JSON.stringify(uuid)}`);
  }
}

export function assertNicIndex(index: unknown): asserts index is number {
  if (typeof index !== 'number' || !Number.isInteger(index) || index < 0 || index >= MAX_NICS) {
    throw new InvalidInput(`NIC index must be an integer 0..${MAX_NICS - 1}, got ${JSON.stringify(index)}`);
  }
}

export function assertIfname(name: unknown, what = 'interface name'): asserts name is string {
  if (typeof name !== 'string' || !IFNAME_PATTERN.test(name)) {
    throw new InvalidInput(`${what} must match ${IFNAME_PATTERN} (<= 15 chars), got ${JSON.stringify(name)}`);
  }
}

/** The part of every host-side name that identifies the instance. */
export function instanceKey(uuid: string): string {
  assertUuid(uuid);
  return uuid.replace(/-/g, '').slice(0, KEY_LEN);
}

export interface NicNames {
  /** Host end of the veth pair, the OVS port / bridge member. */
  hostVeth: string;
  /** IFB device carrying the container's egress (host veth ingress) for shaping. */
  ifb: string;
  /** Name inside the container. */
  containerIfname: string;
}

export function nicNames(uuid: string, nicIndex: number): NicNames {
  assertNicIndex(nicIndex);
  const key = instanceKey(uuid);
  const idx = nicIndex.toString(16);
  return {
    hostVeth: `${HOST_VETH_PREFIX}${key}${idx}`,
    ifb: `${IFB_PREFIX}${key}${idx}`,
    containerIfname: `eth${nicIndex}`,
  };
}

/** Inverse of `nicNames` for the audit: which instance key and NIC a host link belongs to. */
export function parseHostLinkName(name: string): { kind: 'veth' | 'ifb'; key: string; nicIndex: number } | null {
  const m = /^(cvh|cvi)([0-9a-f]{10})([0-9a-f])$/.exec(name);
  if (!m) return null;
  return { kind: m[1] === HOST_VETH_PREFIX ? 'veth' : 'ifb', key: m[2], nicIndex: parseInt(m[3], 16) };
}

function digest(uuid: string, nicIndex: number, purpose: string): Buffer {
  assertUuid(uuid);
  assertNicIndex(nicIndex);
  return crypto.createHash('sha256').update(`${purpose}:${uuid}:${nicIndex}`).digest();
}

/**
 * A locally administered (bit 1 of the first octet set), unicast (bit 0 clear) MAC. Stable for
 * an instance's NIC so a cold migration keeps the MAC and peers' ARP caches stay right.
 */
export function macFor(uuid: string, nicIndex: number): string {
  const d = digest(uuid, nicIndex, 'mac');
  const b = [...d.subarray(0, 6)];
  b[0] = (b[0] & 0xfe) | 0x02;
  return b.map((x) => x.toString(16).padStart(2, '0')).join(':');
}

/** OVS `iface-id`: a uuid-shaped id per NIC (OVN and neutron agents expect one per port). */
export function ifaceIdFor(uuid: string, nicIndex: number): string {
  if (nicIndex === 0) {
    assertUuid(uuid);
    return uuid;
  }
  const h = digest(uuid, nicIndex, 'iface').toString('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-5${h.slice(13, 16)}-8${h.slice(17, 20)}-${h.slice(20, 32)}`;
}

export function isLocallyAdministeredUnicast(mac: string): boolean {
  if (!MAC_PATTERN.test(mac)) return false;
  const first = parseInt(mac.slice(0, 2), 16);
  return (first & 0x02) === 0x02 && (first & 0x01) === 0;
}

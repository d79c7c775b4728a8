import { NAME_PATTERN } from '../../services/config';
import { InvalidInput } from '../../services/errors';
import { cidrContains, ipToInt, isIpv4, parseCidr } from './ip-math';
import { isDomainName, parseTemplate, renderHostname } from './hostname';
import { IFNAME_PATTERN } from './names';

export const NETWORK_TYPES = ['ovs-vlan', 'linux-bridge'] as const;
export type NetworkType = (typeof NETWORK_TYPES)[number];

/** A network as the drivers and the repository see it (camelCase of the `networks` row). */
export interface NetworkRecord {
  name: string;
  type: NetworkType;
  bridge: string;
  vlan: number | null;
  cidr: string;
  gateway: string | null;
  rangeStart: string;
  rangeEnd: string;
  hostnameTemplate: string;
  domain: string;
  uplink: string | null;
  mtu: number | null;
}

/** Bridge names: interface names that start with a letter (what ovs-vsctl and `ip` accept). */
export const BRIDGE_PATTERN = /^[A-Za-z][A-Za-z0-9_-]{0,14}$/;
const NETWORK_NAME = new RegExp(NAME_PATTERN);
const KEYS = new Set(['name', 'type', 'bridge', 'vlan', 'cidr', 'gateway', 'rangeStart', 'rangeEnd', 'hostnameTemplate', 'domain', 'uplink', 'mtu']);

/**
 * Validate a network definition completely, listing every problem at once. The DB repeats the
 * essential constraints (type, VLAN range, range inside CIDR), this adds what a CHECK cannot
 * say well: name patterns, gateway placement, a template that yields a valid hostname.
 */
export function validateNetworkRecord(input: unknown): NetworkRecord {
  const problems: string[] = [];
  if (typeof input !== 'object' || input === null || Array.isArray(input)) {
    throw new InvalidInput('network must be an object');
  }
  const r = input as Record<string, unknown>;
  for (const k of Object.keys(r)) if (!KEYS.has(k)) problems.push(`unknown field "${k}"`);

  const name = r.name;
  if (typeof name !== 'string' || !NETWORK_NAME.test(name)) problems.push(`name must match ${NAME_PATTERN}`);
  const type = r.type;
  if (!(NETWORK_TYPES as readonly unknown[]).includes(type)) problems.push(`type must be one of ${NETWORK_TYPES.join(', ')}`);
  if (typeof r.bridge !== 'string' || !BRIDGE_PATTERN.test(r.bridge)) problems.push(`bridge must match ${BRIDGE_PATTERN}`);

  const vlan = r.vlan ?? null;
  if (type === 'ovs-vlan') {
    if (typeof vlan !== 'number' || !Number.isInteger(vlan) || vlan < 1 || vlan > 4094) problems.push('vlan must be an integer 1..4094 for ovs-vlan');
  } else if (vlan !== null) {
    // The kernel here has no 802.1q module and no bridge VLAN filtering: flat bridges only.
    problems.push('vlan is not supported on linux-bridge networks (flat only)');
  }

  let cidr: ReturnType<typeof parseCidr> | null = null;
  try {
    cidr = parseCidr(r.cidr);
    if (cidr.prefix < 8 || cidr.prefix > 30) problems.push('cidr prefix must be 8..30');
  } catch (e) {
    problems.push((e as Error).message);
  }
  const gateway = r.gateway ?? null;
  if (gateway !== null) {
    if (!isIpv4(gateway)) problems.push('gateway must be an IPv4 address');
    else if (cidr && (!cidrContains(cidr, gateway) || ipToInt(gateway) === cidr.network || ipToInt(gateway) === cidr.broadcast)) {
      problems.push(`gateway ${gateway} must be a host address inside ${cidr.text}`);
    }
  }
  const rs = r.rangeStart;
  const re = r.rangeEnd;
  if (!isIpv4(rs) || !isIpv4(re)) problems.push('rangeStart and rangeEnd must be IPv4 addresses');
  else if (cidr) {
    const s = ipToInt(rs);
    const e = ipToInt(re);
    if (s <= cidr.network || e >= cidr.broadcast || s > e) {
      problems.push(`range ${rs}-${re} must lie inside ${cidr.text}, exclude its network and broadcast addresses, and start <= end`);
    } else {
      const gw = typeof gateway === 'string' && isIpv4(gateway) ? ipToInt(gateway) : -1;
      if (s === e && s === gw) problems.push('range holds only the gateway');
    }
  }

  const template = r.hostnameTemplate ?? '{name}';
  try {
    parseTemplate(template);
    // Render with a plausible instance: the template's literal parts must already be valid.
    if (isIpv4(rs) && typeof name === 'string' && NETWORK_NAME.test(name)) {
      renderHostname(template as string, { name: 'a', ip: rs, network: name, uuid: '00000000-0000-4000-8000-000000000000' });
      if (isIpv4(re)) renderHostname(template as string, { name: 'a', ip: re, network: name, uuid: 'ffffffff-ffff-4fff-bfff-ffffffffffff' });
    }
  } catch (e) {
    problems.push((e as Error).message);
  }
  const domain = r.domain ?? 'local';
  if (!isDomainName(domain)) problems.push('domain must be a DNS name of RFC 1123 labels');
  const uplink = r.uplink ?? null;
  if (uplink !== null) {
    if (type !== 'linux-bridge') problems.push('uplink is only for linux-bridge networks');
    if (typeof uplink !== 'string' || !IFNAME_PATTERN.test(uplink)) problems.push(`uplink must match ${IFNAME_PATTERN}`);
  }
  const mtu = r.mtu ?? null;
  if (mtu !== null && (typeof mtu !== 'number' || !Number.isInteger(mtu) || mtu < 576 || mtu > 9000)) problems.push('mtu must be an integer 576..9000');

  if (problems.length > 0) {
    throw new InvalidInput(`invalid network ${typeof name === 'string' ? JSON.stringify(name) : ''}: ${problems.join('; ')}`, { details: problems });
  }
  return {
    name: name as string,
    type: type as NetworkType,
    bridge: r.bridge as string,
    vlan: vlan as number | null,
    cidr: cidr!.text,
    gateway: gateway as string | null,
    rangeStart: rs as string,
    rangeEnd: re as string,
    hostnameTemplate: template as string,
    domain: domain as string,
    uplink: uplink as string | null,
    mtu: mtu as number | null,
  };
}

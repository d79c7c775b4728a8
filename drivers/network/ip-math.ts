import ipaddr from 'ipaddr.js';
import { InvalidInput, NoCapacity } from '../../services/errors';

/**
 * IPv4 range arithmetic for IPAM. Addresses are handled as unsigned 32-bit integers so range
 * walks are plain loops; parsing and formatting go through ipaddr.js, which rejects the odd
 * forms (`010.1.1.1`, `1.2.3`) that `inet_aton` would accept.
 */
export interface Ipv4Cidr {
  /** Normalised text, e.g. `198.18.0.0/24`. */
  text: string;
  network: number;
  prefix: number;
  broadcast: number;
}

const STRICT_DOTTED_QUAD = /^(25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])(\.(25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])){3}$/;

export function isIpv4(text: unknown): text is string {
  return typeof text === 'string' && STRICT_DOTTED_QUAD.test(text) && ipaddr.IPv4.isValid(text);
}

export function ipToInt(text: string): number {
  if (!isIpv4(text)) throw new InvalidInput(`not an IPv4 address: ${JSON.stringify(text)}`);
  const b = ipaddr.IPv4.parse(text).octets;
  return ((b[0] << 24) | (b[1] << 16) | (b[2] << 8) | b[3]) >>> 0;
}

export function intToIp(n: number): string {
  if (!Number.isInteger(n) || n < 0 || n > 0xffffffff) throw new InvalidInput(`not a 32-bit address: ${n}`);
  return [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.');
}

function maskOf(prefix: number): number {
  return prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
}

/**
 * Parse `a.b.c.d/p`. With `strict` (the default) host bits must be zero, so a network record
 * cannot be stored as `198.18.0.7/24` and later disagree with PostgreSQL's `cidr` type.
 */
export function parseCidr(text: unknown, strict = true): Ipv4Cidr {
  if (typeof text !== 'string') throw new InvalidInput(`not a CIDR: ${JSON.stringify(text)}`);
  const m = /^([0-9.]+)\/([0-9]{1,2})$/.exec(text);
  if (!m || !isIpv4(m[1])) throw new InvalidInput(`not an IPv4 CIDR: ${JSON.stringify(text)}`);
  const prefix = Number(m[2]);
  if (prefix > 32) throw new InvalidInput(`prefix length out of range in ${text}`);
  const addr = ipToInt(m[1]);
  const mask = maskOf(prefix);
  const network = (addr & mask) >>> 0;
  if (strict && network !== addr) {
    throw new InvalidInput(`${text} has host bits set (network is ${intToIp(network)}/${prefix})`);
  }
  const broadcast = (network | (~mask >>> 0)) >>> 0;
  return { text: `${intToIp(network)}/${prefix}`, network, prefix, broadcast };
}

export function cidrContains(cidr: Ipv4Cidr, ip: string): boolean {
  const n = ipToInt(ip);
  return n >= cidr.network && n <= cidr.broadcast;
}

/** Netmask in dotted form (for tools that want it) and prefix length (for `ip addr`). */
export function netmaskOf(prefix: number): string {
  return intToIp(maskOf(prefix));
}

/** `198.18.3.4` -> `198-18-3-4`; octets for hostname templates. */
export function octets(ip: string): [number, number, number, number] {
  const n = ipToInt(ip);
  return [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255];
}

export interface AllocationPool {
  cidr: string;
  gateway?: string | null;
  rangeStart: string;
  rangeEnd: string;
}

/** Addresses no instance may get: the network address, the broadcast address and the gateway. */
export function reservedAddresses(pool: AllocationPool): Set<number> {
  const c = parseCidr(pool.cidr);
  const out = new Set<number>([c.network, c.broadcast]);
  if (pool.gateway) out.add(ipToInt(pool.gateway));
  return out;
}

/** Number of addresses of the range an instance could get, ignoring current allocations. */
export function poolSize(pool: AllocationPool): number {
  const reserved = reservedAddresses(pool);
  const start = ipToInt(pool.rangeStart);
  const end = ipToInt(pool.rangeEnd);
  let n = end - start + 1;
  for (const r of reserved) if (r >= start && r <= end) n--;
  return Math.max(0, n);
}

/** Whether `ip` may be handed to an instance: inside the range, not reserved. */
export function isAllocatable(pool: AllocationPool, ip: string): boolean {
  if (!isIpv4(ip)) return false;
  const n = ipToInt(ip);
  return n >= ipToInt(pool.rangeStart) && n <= ipToInt(pool.rangeEnd) && !reservedAddresses(pool).has(n);
}

/**
 * Choose a free address of the range. `startOffset` spreads concurrent allocators over the range
 * (each starts its walk at a different place and wraps around), so the unique constraint that
 * arbitrates races is hit rarely instead of on every concurrent claim.
 */
export function chooseAddress(pool: AllocationPool, taken: Iterable<string>, startOffset = 0): string {
  const start = ipToInt(pool.rangeStart);
  const end = ipToInt(pool.rangeEnd);
  if (end < start) throw new InvalidInput(`range ${pool.rangeStart}-${pool.rangeEnd} is empty`);
  const excluded = reservedAddresses(pool);
  for (const t of taken) excluded.add(ipToInt(t));
  const span = end - start + 1;
  const first = ((Math.floor(startOffset) % span) + span) % span;
  for (let i = 0; i < span; i++) {
    const n = start + ((first + i) % span);
    if (!excluded.has(n)) return intToIp(n);
  }
  throw new NoCapacity(`no free address in ${pool.rangeStart}-${pool.rangeEnd} (${pool.cidr})`);
}

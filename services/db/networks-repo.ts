import crypto from 'node:crypto';
import type { Knex } from 'knex';
import { Conflict, InvalidInput, NoCapacity, NotFound } from '../errors';
import { chooseAddress, isAllocatable, poolSize } from '../../drivers/network/ip-math';
import { assertNicIndex, assertUuid, macFor } from '../../drivers/network/names';
import { validateNetworkRecord, type NetworkRecord } from '../../drivers/network/network-record';

export interface IpAllocation {
  network: string;
  address: string;
  instanceUuid: string;
  nicIndex: number;
  mac: string | null;
}

interface NetworkRow {
  name: string; type: string; bridge: string; vlan: number | null; cidr: string; gateway: string | null;
  range_start: string; range_end: string; hostname_template: string; domain: string; uplink: string | null; mtu: number | null;
}

interface AllocationRow { network: string; address: string; instance_uuid: string; nic_index: number; mac: string | null }

const UNIQUE_VIOLATION = '23505';
const MAX_ATTEMPTS = 20;

/** PostgreSQL prints `inet` host addresses without /32; strip a mask if one appears anyway. */
const host = (inet: string | null): string | null => (inet === null ? null : inet.replace(/\/32$/, ''));

function fromRow(r: NetworkRow): NetworkRecord {
  return {
    name: r.name, type: r.type as NetworkRecord['type'], bridge: r.bridge, vlan: r.vlan, cidr: r.cidr,
    gateway: host(r.gateway), rangeStart: host(r.range_start)!, rangeEnd: host(r.range_end)!,
    hostnameTemplate: r.hostname_template, domain: r.domain, uplink: r.uplink, mtu: r.mtu,
  };
}

function allocFromRow(r: AllocationRow): IpAllocation {
  return { network: r.network, address: host(r.address)!, instanceUuid: r.instance_uuid, nicIndex: r.nic_index, mac: r.mac };
}

function constraintOf(err: unknown): string | undefined {
  const e = err as { code?: string; constraint?: string };
  return e.code === UNIQUE_VIOLATION ? e.constraint ?? 'unique' : undefined;
}

/**
 * networks + ip_allocations. Double allocation of an address is made impossible by the primary
 * key (network, address); this code picks a candidate, inserts, and on a unique violation picks
 * again. `unique(network, instance_uuid)` makes allocate idempotent per instance.
 */
export class NetworksRepo {
  constructor(private readonly db: Knex) {}

  async create(input: unknown): Promise<NetworkRecord> {
    const n = validateNetworkRecord(input);
    try {
      await this.db('networks').insert({
        name: n.name, type: n.type, bridge: n.bridge, vlan: n.vlan, cidr: n.cidr, gateway: n.gateway,
        range_start: n.rangeStart, range_end: n.rangeEnd, hostname_template: n.hostnameTemplate, domain: n.domain,
        uplink: n.uplink, mtu: n.mtu,
      });
    } catch (err) {
      const c = constraintOf(err);
      if (c === 'networks_pkey') throw new Conflict(`network ${n.name} already exists`, { cause: err });
      if (c === 'networks_bridge_vlan') throw new Conflict(`VLAN ${n.vlan} is already used on bridge ${n.bridge}`, { cause: err });
      throw err;
    }
    return this.get(n.name);
  }

  async list(): Promise<NetworkRecord[]> {
    return ((await this.db('networks').select('*').orderBy('name')) as NetworkRow[]).map(fromRow);
  }

  async get(name: string, trx: Knex = this.db): Promise<NetworkRecord> {
    const row = (await trx('networks').where({ name }).first()) as NetworkRow | undefined;
    if (!row) throw new NotFound(`network ${name} not found`);
    return fromRow(row);
  }

  /** Refused while addresses are allocated (the FK is RESTRICT too). */
  async delete(name: string): Promise<void> {
    const used = await this.db('ip_allocations').where({ network: name }).count<{ count: string }[]>('* as count');
    if (Number(used[0].count) > 0) throw new Conflict(`network ${name} still has ${used[0].count} allocated address(es)`);
    const n = await this.db('networks').where({ name }).del();
    if (n === 0) throw new NotFound(`network ${name} not found`);
  }

  async allocationsOf(network: string): Promise<IpAllocation[]> {
    const rows = (await this.db('ip_allocations').where({ network }).orderBy('address')) as AllocationRow[];
    return rows.map(allocFromRow);
  }

  /**
   * Claim an address for an instance's NIC. Returns the existing claim if the instance already
   * has one on this network (a re-run of claim after a crash), honours `fixedIp`, otherwise
   * picks a free address starting at a random offset and retries on a lost race.
   */
  async allocate(networkName: string, instanceUuid: string, opts: { nicIndex?: number; fixedIp?: string; mac?: string } = {}): Promise<IpAllocation> {
    assertUuid(instanceUuid);
    const nicIndex = opts.nicIndex ?? 0;
    assertNicIndex(nicIndex);
    const mac = opts.mac ?? macFor(instanceUuid, nicIndex);
    for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
      try {
        return await this.db.transaction(async (trx) => {
          const net = await this.get(networkName, trx);
          const existing = (await trx('ip_allocations').where({ network: networkName, instance_uuid: instanceUuid }).first()) as AllocationRow | undefined;
          if (existing) {
            if (opts.fixedIp && host(existing.address) !== opts.fixedIp) {
              throw new Conflict(`instance ${instanceUuid} already holds ${host(existing.address)} on ${networkName}, not ${opts.fixedIp}`);
            }
            return allocFromRow(existing);
          }
          let address: string;
          if (opts.fixedIp !== undefined) {
            if (!isAllocatable(net, opts.fixedIp)) {
              throw new InvalidInput(`fixed IP ${JSON.stringify(opts.fixedIp)} is not allocatable in ${networkName} (${net.rangeStart}-${net.rangeEnd}, gateway/network/broadcast excluded)`);
            }
            address = opts.fixedIp;
          } else {
            const taken = ((await trx('ip_allocations').where({ network: networkName }).select('address')) as Array<{ address: string }>).map((r) => host(r.address)!);
            if (taken.length >= poolSize(net)) throw new NoCapacity(`network ${networkName} has no free address`);
            address = chooseAddress(net, taken, crypto.randomInt(0, 1 << 30));
          }
          const [row] = (await trx('ip_allocations')
            .insert({ network: networkName, address, instance_uuid: instanceUuid, nic_index: nicIndex, mac })
            .returning('*')) as AllocationRow[];
          return allocFromRow(row);
        });
      } catch (err) {
        const c = constraintOf(err);
        if (c === 'ip_allocations_pkey') {
          if (opts.fixedIp !== undefined) throw new Conflict(`address ${opts.fixedIp} is already allocated on ${networkName}`, { cause: err });
          continue; // lost a race for this address: choose again
        }
        if (c !== undefined) continue; // same instance raced itself: the next round returns its claim
        throw err;
      }
    }
    throw new Conflict(`could not allocate an address on ${networkName} after ${MAX_ATTEMPTS} attempts (heavy contention)`);
  }

  /** Idempotent: releasing nothing is fine. Returns how many rows went. */
  async release(networkName: string, instanceUuid: string): Promise<number> {
    assertUuid(instanceUuid);
    return this.db('ip_allocations').where({ network: networkName, instance_uuid: instanceUuid }).del();
  }
}

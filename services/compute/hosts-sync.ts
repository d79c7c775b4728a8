import { renderHostsFile, type HostsEntry } from '../../drivers/network';
import type { Db } from '../db/knex';
import { describeError } from '../errors';
import type { ComputeDeps } from './compute-deps';
import fs from 'node:fs/promises';
import { KeyedMutex } from '../rpc/keyed-mutex';
import { hostsPath, instanceDir, resolvPath, writeInPlace } from './hosts-file-writer';

/** Instances whose lines peers should see: everything that holds its address and a name. */
const LISTED_STATES = ['building', 'active', 'stopped', 'paused', 'resized'];

interface PeerRow {
  uuid: string;
  hostname: string;
  address: string;
  domain: string;
  network: string;
}

/** `IP FQDN SHORT` entries for every instance on any network `instanceUuid` is attached to. */
export async function hostsEntriesFor(db: Db, instanceUuid: string): Promise<HostsEntry[]> {
  const rows = (await db('ip_allocations as a')
    .join('instances as i', 'i.uuid', 'a.instance_uuid')
    .join('networks as n', 'n.name', 'a.network')
    .whereIn('a.network', db('ip_allocations').select('network').where({ instance_uuid: instanceUuid }))
    .whereNull('i.deleted_at')
    .whereIn('i.vm_state', LISTED_STATES)
    .whereNotNull('i.hostname')
    .select('i.uuid', 'i.hostname', db.raw('host(a.address) as address'), 'n.domain', 'a.network')) as PeerRow[];
  return rows.map((r) => ({ ip: r.address, hostname: r.hostname, domain: r.domain }));
}

export async function resolvConfFor(db: Db, instanceUuid: string): Promise<string> {
  const rows = (await db('ip_allocations as a').join('networks as n', 'n.name', 'a.network')
    .where({ 'a.instance_uuid': instanceUuid }).orderBy('a.nic_index').select('n.domain')) as Array<{ domain: string }>;
  const domains = [...new Set(rows.map((r) => r.domain))];
  // No nameserver: names of peers come from /etc/hosts; the operator adds resolvers per network later.
  return `# Managed by the compute service\n${domains.length ? `search ${domains.join(' ')}\n` : ''}options ndots:1\n`;
}

/** Write (in place) the hosts and resolv.conf files of one local instance. */
/** One writer per instance's files at a time (local refresh, fanout and start can overlap). */
const fileLocks = new KeyedMutex();

export async function writeInstanceNetFiles(
  deps: Pick<ComputeDeps, 'db' | 'config'>,
  instanceUuid: string,
  opts: { onlyIfPresent?: boolean } = {},
): Promise<boolean> {
  return fileLocks.runExclusive(instanceUuid, async () => {
    // A refresh racing with a terminate must not recreate the directory the terminate removed.
    if (opts.onlyIfPresent && !(await fs.stat(instanceDir(deps.config.stateDir, instanceUuid)).then(() => true, () => false))) return false;
    // Entries are read inside the lock, so the last writer always writes the newest peers.
    const text = renderHostsFile(await hostsEntriesFor(deps.db, instanceUuid));
    const changed = await writeInPlace(hostsPath(deps.config.stateDir, instanceUuid), text);
    await writeInPlace(resolvPath(deps.config.stateDir, instanceUuid), await resolvConfFor(deps.db, instanceUuid));
    return changed;
  });
}

/**
 * Rewrite the hosts file of every instance of THIS host attached to one of `networks`.
 * Returns how many files changed. Errors on one instance are logged and do not stop the rest.
 */
export async function refreshLocalHosts(deps: Pick<ComputeDeps, 'db' | 'config' | 'log'>, networks: string[]): Promise<number> {
  if (networks.length === 0) return 0;
  const locals = (await deps.db('ip_allocations as a')
    .join('instances as i', 'i.uuid', 'a.instance_uuid')
    .whereIn('a.network', networks)
    .where('i.host', deps.config.host)
    .whereNull('i.deleted_at')
    .whereIn('i.vm_state', LISTED_STATES)
    .whereNotNull('i.container_id')
    .distinct('i.uuid')) as Array<{ uuid: string }>;
  let changed = 0;
  for (const { uuid } of locals) {
    try {
      if (await writeInstanceNetFiles(deps, uuid, { onlyIfPresent: true })) changed++;
    } catch (err) {
      deps.log.warn({ instanceUuid: uuid, err: describeError(err) }, 'could not refresh hosts file');
    }
  }
  return changed;
}

/** Local refresh, then tell the other hosts (refresh_hosts fanout) so their peers follow. */
export async function refreshHostsEverywhere(deps: Pick<ComputeDeps, 'db' | 'config' | 'log' | 'notifyPeers'>, networks: string[]): Promise<void> {
  await refreshLocalHosts(deps, networks);
  for (const n of networks) {
    try {
      await deps.notifyPeers?.(n);
    } catch (err) {
      deps.log.warn({ network: n, err: describeError(err) }, 'could not notify peers (refresh_hosts fanout)');
    }
  }
}

export async function networksOf(db: Db, instanceUuid: string): Promise<string[]> {
  const rows = (await db('ip_allocations').where({ instance_uuid: instanceUuid }).orderBy('nic_index').select('network')) as Array<{ network: string }>;
  return rows.map((r) => r.network);
}

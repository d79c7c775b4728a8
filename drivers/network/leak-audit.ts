import { isGone, type CommandRunner } from './exec';
import { HOST_VETH_PREFIX, instanceKey, parseHostLinkName } from './names';
import { parseOvsJson } from './ovs-vlan-driver';

/** Something on the host that belongs to an instance this host no longer has. */
export interface Leak {
  kind: 'veth' | 'ifb' | 'ovs-port';
  name: string;
  /** Full uuid when known (OVS external-ids), else the 10-hex key from the link name. */
  instance: string;
  bridge?: string;
}

/**
 * List host veths, IFBs and OVS ports made by this driver whose instance is not in `live`.
 * OVS ports are matched by `external-ids:vm-uuid` or by our name prefix, so a port whose veth
 * is already gone (an error row in OVSDB) is found too.
 */
export async function auditLeaks(runner: CommandRunner, live: Iterable<string>, opts: { ovsBridge?: string } = {}): Promise<Leak[]> {
  const liveUuids = new Set(live);
  const liveKeys = new Set([...liveUuids].map(instanceKey));
  const leaks: Leak[] = [];
  const { stdout } = await runner.run('ip', ['-json', 'link', 'show']);
  for (const l of JSON.parse(stdout.trim() || '[]') as Array<{ ifname: string }>) {
    const p = parseHostLinkName(l.ifname);
    if (p && !liveKeys.has(p.key)) leaks.push({ kind: p.kind, name: l.ifname, instance: p.key });
  }
  if (opts.ovsBridge) {
    let ports: Array<Record<string, unknown>> = [];
    try {
      const out = await runner.run('ovs-vsctl', ['--timeout=10', '--format=json', '--columns=name,external_ids', 'list', 'Interface']);
      ports = parseOvsJson(out.stdout);
    } catch (err) {
      if (!isGone(err)) throw err;
    }
    for (const p of ports) {
      const name = String(p.name);
      const ids = (p.external_ids ?? {}) as Record<string, string>;
      const parsed = parseHostLinkName(name);
      const vm = ids['vm-uuid'];
      const ours = name.startsWith(HOST_VETH_PREFIX) && parsed !== null;
      if (!ours) continue;
      const isLive = vm ? liveUuids.has(vm) : liveKeys.has(parsed.key);
      if (!isLive) leaks.push({ kind: 'ovs-port', name, instance: vm ?? parsed.key, bridge: opts.ovsBridge });
    }
  }
  return leaks;
}

/** Remove what `auditLeaks` found (OVS ports first, then links). Already gone counts as done. */
export async function fixLeaks(runner: CommandRunner, leaks: readonly Leak[]): Promise<{ removed: Leak[]; failed: Array<{ leak: Leak; error: string }> }> {
  const removed: Leak[] = [];
  const failed: Array<{ leak: Leak; error: string }> = [];
  const order = [...leaks].sort((a, b) => Number(b.kind === 'ovs-port') - Number(a.kind === 'ovs-port'));
  for (const leak of order) {
    try {
      if (!parseHostLinkName(leak.name)) throw new Error(`not a name this driver makes: ${leak.name}`);
      if (leak.kind === 'ovs-port') await runner.run('ovs-vsctl', ['--timeout=10', '--if-exists', 'del-port', leak.name]);
      else {
        try {
          await runner.run('ip', ['link', 'del', 'dev', leak.name]);
        } catch (err) {
          if (!isGone(err)) throw err;
        }
      }
      removed.push(leak);
    } catch (err) {
      failed.push({ leak, error: (err as Error).message });
    }
  }
  return { removed, failed };
}

import { InvalidInput } from '../../services/errors';
import { logger } from '../../services/logger';
import { isGone, registerTrustedLiteral, type CommandRunner } from './exec';
import { nicNames, type NicNames } from './names';
import type { Drift, ValidPlug } from './network-driver';

export interface LinkInfo {
  ifindex: number;
  ifname: string;
  address?: string;
  mtu?: number;
  operstate?: string;
  flags?: string[];
  master?: string;
  link_index?: number;
  linkinfo?: { info_kind?: string };
  addr_info?: Array<{ family: string; local: string; prefixlen: number }>;
}

/**
 * Disable TX checksum offload on a veth when ethtool is missing: struct ethtool_value
 * {ETHTOOL_STXCSUM=0x17, 0} through SIOCETHTOOL (0x8946). Constant text, interface name in argv.
 */
const TX_CSUM_OFF_PY = registerTrustedLiteral(
  'import array,fcntl,socket,struct,sys\n' +
  "s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\n" +
  "b=array.array('B',struct.pack('II',0x17,0))\n" +
  "fcntl.ioctl(s.fileno(),0x8946,struct.pack('16sP',sys.argv[1].encode(),b.buffer_info()[0]))\n",
);

export interface VethOptions {
  /**
   * The OVS userspace (netdev) datapath forwards frames it read from an AF_PACKET socket
   * without completing CHECKSUM_PARTIAL checksums, so TCP from a veth with TX checksum offload
   * arrives with bad checksums and is dropped (ICMP works, which hides the problem). Turning TX
   * checksumming off on the container end makes the kernel compute full checksums.
   * (Known limitation of the userspace datapath with kernel-offloading interfaces; ethtool
   * is not installed on these machines, hence the ioctl fallback below.)
   */
  disableTxChecksum: boolean;
}

function parseLinks(stdout: string): LinkInfo[] {
  const v = JSON.parse(stdout.trim() || '[]') as LinkInfo[];
  return Array.isArray(v) ? v : [];
}

/** The veth pair of one NIC: host end in the host netns, container end in the netns of a PID. */
export class VethPlumbing {
  private ethtoolPresent: boolean | undefined;

  constructor(private readonly runner: CommandRunner, private readonly opts: VethOptions) {}

  names(req: { instanceUuid: string; nicIndex: number }): NicNames {
    return nicNames(req.instanceUuid, req.nicIndex);
  }

  async hostLink(name: string): Promise<LinkInfo | null> {
    try {
      const { stdout } = await this.runner.run('ip', ['-json', '-details', 'link', 'show', 'dev', name]);
      return parseLinks(stdout)[0] ?? null;
    } catch (err) {
      if (isGone(err)) return null;
      throw err;
    }
  }

  async containerLink(pid: number, ifname: string): Promise<LinkInfo | null> {
    try {
      const { stdout } = await this.runner.run('nsenter', ['-t', String(pid), '-n', 'ip', '-json', '-details', 'addr', 'show', 'dev', ifname]);
      return parseLinks(stdout)[0] ?? null;
    } catch (err) {
      if (isGone(err)) return null;
      throw err;
    }
  }

  async containerDefaultRoute(pid: number): Promise<{ gateway?: string; dev?: string } | null> {
    const { stdout } = await this.runner.run('nsenter', ['-t', String(pid), '-n', 'ip', '-json', 'route', 'show', 'default']);
    const routes = JSON.parse(stdout.trim() || '[]') as Array<{ gateway?: string; dev?: string }>;
    return routes[0] ?? null;
  }

  async deleteHostLink(name: string): Promise<void> {
    try {
      await this.runner.run('ip', ['link', 'del', 'dev', name]);
    } catch (err) {
      if (!isGone(err)) throw err;
    }
  }

  /**
   * Make the pair exist and the container end configured. Returns whether a new pair was
   * created. A pair is reused only when both ends exist and point at each other.
   */
  async ensure(req: ValidPlug): Promise<{ created: boolean; names: NicNames }> {
    const n = this.names(req);
    const pid = req.containerPid;
    const [host, cont] = await Promise.all([this.hostLink(n.hostVeth), this.containerLink(pid, n.containerIfname)]);
    const paired = !!host && !!cont && host.link_index === cont.ifindex && cont.link_index === host.ifindex
      && cont.linkinfo?.info_kind === 'veth';
    let created = false;
    if (!paired) {
      if (host) {
        // Left by a crash between create and move, or its container end is in an old netns.
        logger.warn({ instanceUuid: req.instanceUuid, hostVeth: n.hostVeth }, 'Replacing stale host veth');
        await this.deleteHostLink(n.hostVeth);
      }
      if (cont) {
        throw new InvalidInput(`container (pid ${pid}) already has ${n.containerIfname} that is not this NIC's veth; refusing to touch it`);
      }
      const mtu = req.network.mtu ? ['mtu', String(req.network.mtu)] : [];
      // The peer is created directly inside the container's netns under its final name: no
      // temporary name in the host netns, and no /var/run/netns entry to go stale.
      await this.runner.run('ip', ['link', 'add', 'name', n.hostVeth, ...mtu, 'type', 'veth', 'peer', 'name', n.containerIfname,
        'address', req.mac, ...mtu, 'netns', String(pid)]);
      created = true;
    }
    await this.configureContainerEnd(req, n, created ? null : cont);
    if (this.opts.disableTxChecksum) await this.disableTxChecksum(pid, n.containerIfname);
    await this.runner.run('ip', ['link', 'set', 'dev', n.hostVeth, 'up']);
    return { created, names: n };
  }

  /** One `ip -batch` in the netns instead of five processes. */
  private async configureContainerEnd(req: ValidPlug, n: NicNames, existing: LinkInfo | null): Promise<void> {
    const lines: string[] = ['link set dev lo up'];
    lines.push(`link set dev ${n.containerIfname} address ${req.mac}${req.network.mtu ? ` mtu ${req.network.mtu}` : ''}`);
    const want = `${req.address}/${req.prefix}`;
    const have = (existing?.addr_info ?? []).filter((a) => a.family === 'inet').map((a) => `${a.local}/${a.prefixlen}`);
    if (have.some((a) => a !== want)) lines.push(`addr flush dev ${n.containerIfname}`);
    lines.push(`addr replace ${want} dev ${n.containerIfname}`);
    lines.push(`link set dev ${n.containerIfname} up`);
    if (req.nicIndex === 0 && req.network.gateway) {
      lines.push(`route replace default via ${req.network.gateway} dev ${n.containerIfname}`);
    }
    await this.runner.run('nsenter', ['-t', String(req.containerPid), '-n', 'ip', '-batch', '-'], { input: lines.join('\n') + '\n' });
  }

  private async disableTxChecksum(pid: number, ifname: string): Promise<void> {
    if (this.ethtoolPresent === undefined) {
      try {
        await this.runner.run('ethtool', ['--version']);
        this.ethtoolPresent = true;
      } catch {
        this.ethtoolPresent = false;
      }
    }
    if (this.ethtoolPresent) {
      await this.runner.run('nsenter', ['-t', String(pid), '-n', 'ethtool', '-K', ifname, 'tx', 'off']);
    } else {
      await this.runner.run('nsenter', ['-t', String(pid), '-n', '/usr/bin/python3', '-c', TX_CSUM_OFF_PY, ifname]);
    }
  }

  /** Drift of the pair itself (attachment drift is the driver's business). */
  async check(req: ValidPlug): Promise<{ drift: Drift[]; host: LinkInfo | null }> {
    const n = this.names(req);
    const drift: Drift[] = [];
    const host = await this.hostLink(n.hostVeth);
    if (!host) drift.push({ kind: 'host-veth-missing', expected: n.hostVeth });
    else if (!(host.flags ?? []).includes('UP')) drift.push({ kind: 'host-veth-down', expected: 'UP', actual: (host.flags ?? []).join(',') });
    let cont: LinkInfo | null = null;
    try {
      cont = await this.containerLink(req.containerPid, n.containerIfname);
    } catch (err) {
      drift.push({ kind: 'container-netns-unreachable', actual: (err as Error).message });
      return { drift, host };
    }
    if (!cont) {
      drift.push({ kind: 'container-nic-missing', expected: n.containerIfname });
      return { drift, host };
    }
    if (host && (host.link_index !== cont.ifindex || cont.link_index !== host.ifindex)) {
      drift.push({ kind: 'veth-peer-mismatch', expected: n.hostVeth });
    }
    if (cont.address !== req.mac) drift.push({ kind: 'container-mac', expected: req.mac, actual: cont.address });
    const addrs = (cont.addr_info ?? []).filter((a) => a.family === 'inet').map((a) => `${a.local}/${a.prefixlen}`);
    const want = `${req.address}/${req.prefix}`;
    if (addrs.length !== 1 || addrs[0] !== want) drift.push({ kind: 'container-address', expected: want, actual: addrs.join(',') });
    if (!(cont.flags ?? []).includes('UP')) drift.push({ kind: 'container-nic-down', expected: 'UP' });
    if (req.nicIndex === 0 && req.network.gateway) {
      const r = await this.containerDefaultRoute(req.containerPid);
      if (!r || r.gateway !== req.network.gateway || r.dev !== n.containerIfname) {
        drift.push({ kind: 'container-default-route', expected: `${req.network.gateway} dev ${n.containerIfname}`, actual: r ? `${r.gateway} dev ${r.dev}` : 'none' });
      }
    }
    return { drift, host };
  }
}

import { InvalidInput, Unavailable } from '../../services/errors';
import { isGone, type CommandRunner } from './exec';
import { assertIfname, ifaceIdFor, type NicNames } from './names';
import { BRIDGE_PATTERN } from './network-record';
import type { Drift, NicRef, ValidPlug } from './network-driver';
import { TcShaper } from './shaping';
import { VethPlumbing, type LinkInfo } from './veth-plumbing';
import { VethNetworkDriver } from './veth-network-driver';

export type DatapathType = 'auto' | 'system' | 'netdev';

export interface OvsVlanOptions {
  /** Integration bridge (config.ovs.bridge). */
  bridge: string;
  /** config.ovs.datapathType; `auto` takes what the existing bridge has (system if created). */
  datapathType: DatapathType;
  /**
   * `tc` (default): TBF/IFB as for Linux bridges. `ovs-policing`: OVS ingress_policing_rate
   * and _burst on the Interface for the container's egress (OVS implements it with the tc police
   * action on system interfaces, which this kernel lacks; production kernels have it).
   */
  egressShaping?: 'tc' | 'ovs-policing';
}

const VSCTL_TIMEOUT = '--timeout=10';

/** Parse `ovs-vsctl --format=json list` output into objects keyed by column. */
export function parseOvsJson(stdout: string): Array<Record<string, unknown>> {
  const t = JSON.parse(stdout) as { headings: string[]; data: unknown[][] };
  const decode = (v: unknown): unknown => {
    if (Array.isArray(v) && v[0] === 'map') return Object.fromEntries((v[1] as Array<[string, unknown]>).map(([k, x]) => [k, decode(x)]));
    if (Array.isArray(v) && v[0] === 'set') return (v[1] as unknown[]).length === 0 ? null : (v[1] as unknown[]).map(decode);
    if (Array.isArray(v) && v[0] === 'uuid') return v[1];
    return v;
  };
  return t.data.map((row) => Object.fromEntries(t.headings.map((h, i) => [h, decode(row[i])])));
}

/** Host end on an OVS integration bridge as an access port (`tag=VLAN`), with neutron-style external-ids. */
export class OvsVlanDriver extends VethNetworkDriver {
  readonly type = 'ovs-vlan' as const;
  private resolvedDatapath: 'system' | 'netdev' | undefined;
  private initPromise: Promise<void> | undefined;

  constructor(runner: CommandRunner, private readonly opts: OvsVlanOptions) {
    super(runner, { disableTxChecksum: false, egressMode: 'ifb' });
    if (!BRIDGE_PATTERN.test(opts.bridge)) throw new InvalidInput(`ovs bridge must match ${BRIDGE_PATTERN}, got ${JSON.stringify(opts.bridge)}`);
  }

  get datapath(): 'system' | 'netdev' | undefined {
    return this.resolvedDatapath;
  }

  /**
   * The datapath decides two things: the TX checksum workaround and where container egress is
   * shaped (see shaping.ts and veth-plumbing.ts).
   */
  private useDatapath(dp: 'system' | 'netdev'): void {
    this.resolvedDatapath = dp;
    this.veth = new VethPlumbing(this.runner, { disableTxChecksum: dp === 'netdev' });
    this.shaper = new TcShaper(this.runner, dp === 'netdev' ? 'container' : 'ifb');
  }

  async init(): Promise<void> {
    const br = this.opts.bridge;
    try {
      await this.runner.run('ovs-vsctl', [VSCTL_TIMEOUT, 'show']);
    } catch (err) {
      throw new Unavailable(`ovs-vlan driver: cannot talk to ovsdb-server (is openvswitch running?): ${(err as Error).message}`, { cause: err });
    }
    let current: string | null = null;
    try {
      const { stdout } = await this.runner.run('ovs-vsctl', [VSCTL_TIMEOUT, 'get', 'Bridge', br, 'datapath_type']);
      current = stdout.trim().replace(/^"|"$/g, '') || 'system';
    } catch (err) {
      if (!isGone(err)) throw err;
    }
    const wanted = this.opts.datapathType;
    if (current === null) {
      const dp = wanted === 'auto' ? 'system' : wanted;
      await this.runner.run('ovs-vsctl', [VSCTL_TIMEOUT, '--may-exist', 'add-br', br, '--', 'set', 'Bridge', br, `datapath_type=${dp}`]);
      current = dp;
    }
    if (current !== 'system' && current !== 'netdev') {
      throw new InvalidInput(`ovs-vlan driver: bridge ${br} has unsupported datapath_type ${current}`);
    }
    if (wanted !== 'auto' && wanted !== current) {
      throw new InvalidInput(`ovs-vlan driver: bridge ${br} has datapath_type=${current} but config ovs.datapathType is ${wanted}; fix one of them`);
    }
    this.useDatapath(current);
  }

  protected override async ready(): Promise<void> {
    if (this.resolvedDatapath) return;
    this.initPromise ??= this.init().catch((err) => {
      this.initPromise = undefined;
      throw err;
    });
    await this.initPromise;
  }

  private bridgeFor(req: NicRef): string {
    if (req.network.bridge !== this.opts.bridge) {
      throw new InvalidInput(`network ${req.network.name} uses OVS bridge ${req.network.bridge}, this host's integration bridge is ${this.opts.bridge}`);
    }
    return this.opts.bridge;
  }

  protected async attach(req: ValidPlug, n: NicNames, fresh: boolean): Promise<void> {
    const br = this.bridgeFor(req);
    if (fresh) {
      // A port row left from an earlier veth of the same name (deleted behind our back, or a
      // container restart) keeps ovs-vswitchd's AF_PACKET socket bound to the dead ifindex on
      // the netdev datapath, and re-setting identical columns does not make it reopen. Remove
      // the row in its own transaction so the add below opens the new device.
      await this.runner.run('ovs-vsctl', [VSCTL_TIMEOUT, '--if-exists', 'del-port', n.hostVeth]);
    }
    const ifaceArgs = [
      `external-ids:iface-id=${ifaceIdFor(req.instanceUuid, req.nicIndex)}`,
      `external-ids:attached-mac=${req.mac}`,
      `external-ids:vm-uuid=${req.instanceUuid}`,
      'external-ids:iface-status=active',
    ];
    if (this.opts.egressShaping === 'ovs-policing' && req.bandwidth.egressKbit) {
      ifaceArgs.push(`ingress_policing_rate=${req.bandwidth.egressKbit}`, `ingress_policing_burst=${Math.max(8, Math.ceil(req.bandwidth.egressKbit / 10))}`);
    }
    // One transaction: port, tag (also corrects a port that exists with another tag) and ids.
    const args = [VSCTL_TIMEOUT, '--', '--may-exist', 'add-port', br, n.hostVeth, '--', 'set', 'Port', n.hostVeth, `tag=${req.network.vlan}`,
      '--', 'set', 'Interface', n.hostVeth, ...ifaceArgs];
    try {
      await this.runner.run('ovs-vsctl', args);
    } catch (err) {
      // On another bridge (network moved): take it off there and try once more.
      if (!/already exists on bridge/.test((err as { details?: { stderr?: string } }).details?.stderr ?? '')) throw err;
      await this.runner.run('ovs-vsctl', [VSCTL_TIMEOUT, '--if-exists', 'del-port', n.hostVeth]);
      await this.runner.run('ovs-vsctl', args);
    }
  }

  protected async detach(_nic: NicRef, n: NicNames): Promise<void> {
    assertIfname(n.hostVeth);
    await this.runner.run('ovs-vsctl', [VSCTL_TIMEOUT, '--if-exists', 'del-port', n.hostVeth]);
  }

  protected async checkAttachment(req: ValidPlug, n: NicNames, _host: LinkInfo | null): Promise<Drift[]> {
    const drift: Drift[] = [];
    const { stdout: brOut } = await this.runner.run('ovs-vsctl', [VSCTL_TIMEOUT, '--format=json', '--columns=name,ports', 'find', 'Bridge', `name=${req.network.bridge}`]);
    const { stdout: portOut } = await this.runner.run('ovs-vsctl', [VSCTL_TIMEOUT, '--format=json', '--columns=_uuid,name,tag', 'find', 'Port', `name=${n.hostVeth}`]);
    const port = parseOvsJson(portOut)[0];
    if (!port) {
      drift.push({ kind: 'ovs-port-missing', expected: `${n.hostVeth} on ${req.network.bridge}` });
      return drift;
    }
    const bridgePorts = (parseOvsJson(brOut)[0]?.ports ?? []) as unknown;
    const onBridge = Array.isArray(bridgePorts) ? bridgePorts.includes(port._uuid) : bridgePorts === port._uuid;
    if (!onBridge) drift.push({ kind: 'ovs-bridge', expected: req.network.bridge });
    if (port.tag !== req.network.vlan) drift.push({ kind: 'ovs-tag', expected: String(req.network.vlan), actual: String(port.tag) });
    const { stdout: ifOut } = await this.runner.run('ovs-vsctl', [VSCTL_TIMEOUT, '--format=json', '--columns=external_ids,ofport', 'find', 'Interface', `name=${n.hostVeth}`]);
    const iface = parseOvsJson(ifOut)[0] ?? {};
    const ids = (iface.external_ids ?? {}) as Record<string, string>;
    if (ids['vm-uuid'] !== req.instanceUuid) drift.push({ kind: 'ovs-vm-uuid', expected: req.instanceUuid, actual: ids['vm-uuid'] });
    if (ids['attached-mac'] !== req.mac) drift.push({ kind: 'ovs-attached-mac', expected: req.mac, actual: ids['attached-mac'] });
    if (typeof iface.ofport === 'number' && iface.ofport < 0) drift.push({ kind: 'ovs-interface-error', actual: `ofport ${iface.ofport}` });
    return drift;
  }
}

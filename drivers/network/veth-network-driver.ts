import { childLogger } from '../../services/logger';
import type { CommandRunner } from './exec';
import type { NicNames } from './names';
import { nicNames } from './names';
import type { NetworkType } from './network-record';
import {
  validateNicRef, validatePlugRequest, type CheckResult, type Drift, type NetworkDriver, type NicRef,
  type PlugRequest, type PlugResult, type ValidPlug,
} from './network-driver';
import { TcShaper, type EgressMode } from './shaping';
import { VethPlumbing, type LinkInfo } from './veth-plumbing';

/**
 * Shared plug/unplug/check of a veth-based NIC; subclasses only attach the host end (OVS port
 * or bridge member). Order of plug: pair -> container end -> attach -> shaping; each step finds
 * what exists, so a retry after any failure converges instead of duplicating.
 */
export abstract class VethNetworkDriver implements NetworkDriver {
  abstract readonly type: NetworkType;
  protected veth: VethPlumbing;
  protected shaper: TcShaper;

  constructor(protected readonly runner: CommandRunner, opts: { disableTxChecksum: boolean; egressMode: EgressMode }) {
    this.veth = new VethPlumbing(runner, { disableTxChecksum: opts.disableTxChecksum });
    this.shaper = new TcShaper(runner, opts.egressMode);
  }

  abstract init(): Promise<void>;
  /** `fresh`: the veth pair was just (re)created, so any earlier attachment refers to a dead link. */
  protected abstract attach(req: ValidPlug, names: NicNames, fresh: boolean): Promise<void>;
  protected abstract detach(nic: NicRef, names: NicNames): Promise<void>;
  protected abstract checkAttachment(req: ValidPlug, names: NicNames, host: LinkInfo | null): Promise<Drift[]>;
  /** Called before plug/unplug, e.g. to finish a lazy init. */
  protected async ready(): Promise<void> {}

  async plug(request: PlugRequest): Promise<PlugResult> {
    const req = validatePlugRequest(request, this.type);
    await this.ready();
    const log = childLogger({ instanceUuid: req.instanceUuid, nic: req.nicIndex, network: req.network.name });
    log.info('Plugging NIC...');
    const { created, names } = await this.veth.ensure(req);
    await this.attach(req, names, created);
    await this.shaper.apply({ hostVeth: names.hostVeth, ifb: names.ifb, containerPid: req.containerPid, containerIfname: names.containerIfname }, req.bandwidth);
    log.info({ hostVeth: names.hostVeth, created }, 'Plugged NIC');
    return { hostVeth: names.hostVeth, containerIfname: names.containerIfname, mac: req.mac, address: req.address, prefix: req.prefix, created };
  }

  async unplug(nicRef: NicRef): Promise<void> {
    const nic = validateNicRef(nicRef, this.type);
    await this.ready();
    const names = nicNames(nic.instanceUuid, nic.nicIndex);
    // Detach first: an OVS port row without its interface would linger in the DB as an error.
    await this.detach(nic, names);
    await this.shaper.remove(names);
    await this.veth.deleteHostLink(names.hostVeth);
    childLogger({ instanceUuid: nic.instanceUuid, nic: nic.nicIndex }).info({ hostVeth: names.hostVeth }, 'Unplugged NIC');
  }

  async check(request: PlugRequest): Promise<CheckResult> {
    const req = validatePlugRequest(request, this.type);
    await this.ready();
    const names = nicNames(req.instanceUuid, req.nicIndex);
    const { drift, host } = await this.veth.check(req);
    drift.push(...await this.checkAttachment(req, names, host));
    if (host) {
      const bw = await this.shaper.read({ hostVeth: names.hostVeth, ifb: names.ifb, containerPid: req.containerPid, containerIfname: names.containerIfname });
      for (const k of ['egressKbit', 'ingressKbit'] as const) {
        if ((bw[k] ?? 0) !== (req.bandwidth[k] ?? 0)) drift.push({ kind: `shaping-${k}`, expected: String(req.bandwidth[k] ?? 'none'), actual: String(bw[k] ?? 'none') });
      }
    }
    return { ok: drift.length === 0, drift };
  }
}

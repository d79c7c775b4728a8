import { InvalidInput } from '../../services/errors';
import { isGone, type CommandRunner } from './exec';
import type { NicNames } from './names';
import type { Drift, NicRef, ValidPlug } from './network-driver';
import { VethPlumbing, type LinkInfo } from './veth-plumbing';
import { VethNetworkDriver } from './veth-network-driver';

/**
 * Host end as a member of a Linux bridge, one bridge per network, created if missing, with an
 * optional uplink enslaved to it. Bridges are never deleted on unplug (other instances use
 * them); `removeBridgeIfUnused` is for operators and tests.
 */
export class LinuxBridgeDriver extends VethNetworkDriver {
  readonly type = 'linux-bridge' as const;
  private readonly links: VethPlumbing;

  constructor(runner: CommandRunner) {
    super(runner, { disableTxChecksum: false, egressMode: 'ifb' });
    this.links = new VethPlumbing(runner, { disableTxChecksum: false });
  }

  async init(): Promise<void> {
    // Tools present? `ip` is needed by everything; a missing one fails here, not mid-plug.
    await this.runner.run('ip', ['-json', 'link', 'show', 'dev', 'lo']);
    await this.runner.run('tc', ['-V']);
  }

  async ensureBridge(bridge: string, uplink: string | null): Promise<void> {
    let br = await this.links.hostLink(bridge);
    if (!br) {
      try {
        await this.runner.run('ip', ['link', 'add', 'name', bridge, 'type', 'bridge']);
      } catch (err) {
        // Another plug created it concurrently.
        if (!/File exists/.test((err as { details?: { stderr?: string } }).details?.stderr ?? '')) throw err;
      }
      br = await this.links.hostLink(bridge);
    }
    if (br?.linkinfo?.info_kind !== 'bridge') throw new InvalidInput(`${bridge} exists but is not a bridge (${br?.linkinfo?.info_kind ?? 'unknown'})`);
    if (!(br.flags ?? []).includes('UP')) await this.runner.run('ip', ['link', 'set', 'dev', bridge, 'up']);
    if (uplink) {
      const up = await this.links.hostLink(uplink);
      if (!up) throw new InvalidInput(`uplink ${uplink} of bridge ${bridge} does not exist`);
      if (up.master !== bridge) await this.runner.run('ip', ['link', 'set', 'dev', uplink, 'master', bridge, 'up']);
    }
  }

  protected async attach(req: ValidPlug, n: NicNames, _fresh: boolean): Promise<void> {
    await this.ensureBridge(req.network.bridge, req.network.uplink);
    await this.runner.run('ip', ['link', 'set', 'dev', n.hostVeth, 'master', req.network.bridge, 'up']);
  }

  protected async detach(_nic: NicRef, _n: NicNames): Promise<void> {
    // Deleting the veth removes it from the bridge.
  }

  protected async checkAttachment(req: ValidPlug, _n: NicNames, host: LinkInfo | null): Promise<Drift[]> {
    if (!host) return [];
    return host.master === req.network.bridge ? [] : [{ kind: 'bridge-master', expected: req.network.bridge, actual: host.master ?? 'none' }];
  }

  /** Delete the bridge when no member but its uplink is left. Returns whether it was deleted. */
  async removeBridgeIfUnused(bridge: string, uplink: string | null = null): Promise<boolean> {
    try {
      const { stdout } = await this.runner.run('ip', ['-json', 'link', 'show', 'master', bridge]);
      const members = (JSON.parse(stdout.trim() || '[]') as Array<{ ifname: string }>).filter((m) => m.ifname !== uplink);
      if (members.length > 0) return false;
      await this.runner.run('ip', ['link', 'del', 'dev', bridge]);
      return true;
    } catch (err) {
      if (isGone(err)) return false;
      throw err;
    }
  }
}

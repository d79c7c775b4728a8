import { Internal } from '../../services/errors';
import { isGone, type CommandRunner } from './exec';
import { assertIfname } from './names';
import type { Bandwidth } from './network-driver';

/**
 * tc shaping of one NIC, always configured from the host.
 *
 * - Container ingress = egress of the host veth: a TBF root qdisc on the host veth.
 * - Container egress = ingress of the host veth. The kernel here has no `police` action, so
 *   instead of policing we redirect the host veth's ingress to an IFB device (ingress qdisc +
 *   u32 match-all + mirred) and shape with TBF on the IFB's egress, which also queues instead of
 *   dropping (TCP backs off smoothly).
 * - `container` egress mode: TBF on the container end's root qdisc, set through nsenter. Needed
 *   for the OVS *netdev* datapath: ovs-vswitchd reads the host veth through an AF_PACKET socket,
 *   and packet taps see a frame in __netif_receive_skb_core *before* the tc ingress hook, so an
 *   IFB redirect there would not delay anything OVS forwards. Bridge and OVS kernel datapath
 *   (rx_handler, after tc ingress) use the IFB mode.
 */
export type EgressMode = 'ifb' | 'container';

export interface ShapingTarget {
  hostVeth: string;
  ifb: string;
  containerPid: number;
  containerIfname: string;
}

/** Burst big enough for a few full frames and ~20 ms at the rate, so the rate stays accurate. */
export function tbfArgs(kbit: number): string[] {
  const bytesPerSec = (kbit * 1000) / 8;
  const burst = Math.max(4 * 1514, Math.ceil(bytesPerSec * 0.02));
  return ['tbf', 'rate', `${kbit}kbit`, 'burst', String(burst), 'latency', '100ms'];
}

async function ignoreGone(p: Promise<unknown>): Promise<void> {
  try {
    await p;
  } catch (err) {
    // "RTNETLINK answers: No such file or directory" / "Invalid handle": nothing to delete.
    const stderr = (err as { details?: { stderr?: string } }).details?.stderr ?? '';
    if (isGone(err) || /No such file or directory|Invalid handle|Cannot delete qdisc with handle of zero|Cannot find specified qdisc/i.test(stderr)) return;
    throw err;
  }
}

export class TcShaper {
  constructor(private readonly runner: CommandRunner, private readonly egressMode: EgressMode) {}

  async apply(t: ShapingTarget, bw: Bandwidth): Promise<void> {
    assertIfname(t.hostVeth);
    assertIfname(t.ifb);
    assertIfname(t.containerIfname);
    if (bw.ingressKbit) {
      await this.runner.run('tc', ['qdisc', 'replace', 'dev', t.hostVeth, 'root', ...tbfArgs(bw.ingressKbit)]);
    } else {
      await ignoreGone(this.runner.run('tc', ['qdisc', 'del', 'dev', t.hostVeth, 'root']));
    }
    if (this.egressMode === 'container') {
      const ns = ['-t', String(t.containerPid), '-n', 'tc'];
      if (bw.egressKbit) await this.runner.run('nsenter', [...ns, 'qdisc', 'replace', 'dev', t.containerIfname, 'root', ...tbfArgs(bw.egressKbit)]);
      else await ignoreGone(this.runner.run('nsenter', [...ns, 'qdisc', 'del', 'dev', t.containerIfname, 'root']));
      return;
    }
    // Drop the previous redirect first: re-adding a filter to an existing ingress qdisc would
    // stack a second one (tc has no idempotent "ensure filter").
    await ignoreGone(this.runner.run('tc', ['qdisc', 'del', 'dev', t.hostVeth, 'ingress']));
    if (!bw.egressKbit) {
      await ignoreGone(this.runner.run('ip', ['link', 'del', 'dev', t.ifb]));
      return;
    }
    try {
      await this.runner.run('ip', ['link', 'add', 'name', t.ifb, 'type', 'ifb']);
    } catch (err) {
      if (!/File exists/.test((err as { details?: { stderr?: string } }).details?.stderr ?? '')) throw err;
    }
    await this.runner.run('ip', ['link', 'set', 'dev', t.ifb, 'up']);
    await this.runner.run('tc', ['qdisc', 'replace', 'dev', t.ifb, 'root', ...tbfArgs(bw.egressKbit)]);
    await this.runner.run('tc', ['qdisc', 'add', 'dev', t.hostVeth, 'handle', 'ffff:', 'ingress']);
    await this.runner.run('tc', ['filter', 'add', 'dev', t.hostVeth, 'parent', 'ffff:', 'protocol', 'all', 'prio', '1',
      'u32', 'match', 'u32', '0', '0', 'action', 'mirred', 'egress', 'redirect', 'dev', t.ifb]);
  }

  /** Remove host-side state. The container side disappears with the veth pair. */
  async remove(t: Pick<ShapingTarget, 'hostVeth' | 'ifb'>): Promise<void> {
    assertIfname(t.hostVeth);
    assertIfname(t.ifb);
    await ignoreGone(this.runner.run('ip', ['link', 'del', 'dev', t.ifb]));
  }

  /** Current rates in kbit/s as tc reports them (for `check`). */
  async read(t: ShapingTarget): Promise<Bandwidth> {
    const out: Bandwidth = {};
    const rateOf = async (tool: 'tc' | 'nsenter', args: string[]): Promise<number | undefined> => {
      try {
        const { stdout } = await this.runner.run(tool, args);
        const q = (JSON.parse(stdout || '[]') as Array<{ kind?: string; root?: boolean; options?: { rate?: number } }>)
          .find((x) => x.kind === 'tbf' && x.root);
        return q?.options?.rate !== undefined ? Math.round((q.options.rate * 8) / 1000) : undefined;
      } catch (err) {
        if (isGone(err)) return undefined;
        throw err instanceof Error ? err : new Internal(String(err));
      }
    };
    out.ingressKbit = await rateOf('tc', ['-json', 'qdisc', 'show', 'dev', t.hostVeth]);
    out.egressKbit = this.egressMode === 'container'
      ? await rateOf('nsenter', ['-t', String(t.containerPid), '-n', 'tc', '-json', 'qdisc', 'show', 'dev', t.containerIfname])
      : await rateOf('tc', ['-json', 'qdisc', 'show', 'dev', t.ifb]);
    return out;
  }
}

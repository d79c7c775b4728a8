import { ExecFileRunner } from '../../drivers/network/exec';
import { auditLeaks, fixLeaks } from '../../drivers/network/leak-audit';
import { LinuxBridgeDriver } from '../../drivers/network/linux-bridge-driver';
import { instanceKey, nicNames, parseHostLinkName } from '../../drivers/network/names';
import type { PlugRequest } from '../../drivers/network/network-driver';
import { OvsVlanDriver } from '../../drivers/network/ovs-vlan-driver';
import {
  bridgeNet, hostLinks, measureTransfer, ovsNet, ovsPorts, quiet, rand, removeContainers, startContainer, uuid, type TestContainer,
} from '../integration/network-fixtures';

// VLANs 150 and 151 belong to this file.
const NET150 = ovsNet('t-cyc-v150', 150, 150);
const NET151 = ovsNet('t-cyc-v151', 151, 151);
const BRIDGE = `tbr-${rand(6)}`;
const LIMIT_KBIT = 1000;

/**
 * Other test files create and delete links and ports in parallel; count everything except
 * what belongs to *other* instances of this driver's naming scheme, so the comparison is exact
 * for this file and for anything else on the host.
 */
function countable(mine: Set<string>) {
  return (names: string[]) => names.filter((n) => {
    if (/^tbr-/.test(n) && n !== BRIDGE) return false; // other test files' bridges
    const p = parseHostLinkName(n);
    return p === null || mine.has(p.key);
  }).length;
}

describe('plug/unplug cycles, leak audit and OVS shaping with real containers', () => {
  const runner = new ExecFileRunner();
  const ovs = new OvsVlanDriver(runner, { bridge: 'br-int', datapathType: 'auto' });
  const lb = new LinuxBridgeDriver(runner);
  const containers: TestContainer[] = [];
  const uuids: string[] = [];
  const newUuid = () => { const u = uuid(); uuids.push(u); return u; };

  afterAll(async () => {
    await removeContainers(containers.map((c) => c.id));
    for (const u of uuids) for (const i of [0, 1]) {
      const n = nicNames(u, i);
      await quiet('ovs-vsctl', ['--if-exists', 'del-port', n.hostVeth]);
      await quiet('ip', ['link', 'del', n.hostVeth]);
      await quiet('ip', ['link', 'del', n.ifb]);
    }
    await quiet('ip', ['link', 'del', BRIDGE]);
  });

  test('50 plug -> unplug cycles (OVS with shaping, and Linux bridge with IFB) leave link and port counts as before', async () => {
    const [c] = await Promise.all([startContainer()]);
    containers.push(c);
    const u = newUuid();
    const mine = new Set([instanceKey(u)]);
    const count = countable(mine);
    // The bridge itself is created by the first plug and stays; create it up front so the
    // before/after comparison is about per-NIC state.
    await lb.ensureBridge(BRIDGE, null);
    const linksBefore = count(await hostLinks());
    const portsBefore = count(await ovsPorts());
    const t0 = Date.now();
    for (let i = 0; i < 50; i++) {
      const req: PlugRequest = { instanceUuid: u, nicIndex: 0, containerPid: c.pid, network: NET150, address: '198.18.150.20', bandwidth: { egressKbit: 2000, ingressKbit: 3000 } };
      await ovs.plug(req);
      const lreq: PlugRequest = { instanceUuid: u, nicIndex: 1, containerPid: c.pid, network: bridgeNet('t-cyc-flat', BRIDGE, 152), address: '198.18.152.20', bandwidth: { egressKbit: 2000, ingressKbit: 3000 } };
      await lb.plug(lreq);
      if (i === 0) {
        expect(count(await hostLinks())).toBe(linksBefore + 3); // 2 host veths + 1 IFB (OVS netdev shapes egress in the netns)
        expect(count(await ovsPorts())).toBe(portsBefore + 1);
      }
      await ovs.unplug(req);
      await lb.unplug(lreq);
    }
    // eslint-disable-next-line no-console
    console.log(`50 cycles (2 NICs each) in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    expect(count(await hostLinks())).toBe(linksBefore);
    expect(count(await ovsPorts())).toBe(portsBefore);
    expect((await ovsPorts()).some((p) => parseHostLinkName(p)?.key === instanceKey(u))).toBe(false);
  }, 180000);

  test('leak audit finds the veth, OVS port and IFB of an instance that is gone, and --fix removes them', async () => {
    const [c1, c2] = await Promise.all([startContainer(), startContainer()]);
    containers.push(c1, c2);
    const liveU = newUuid();
    const goneU = newUuid();
    await ovs.plug({ instanceUuid: liveU, nicIndex: 0, containerPid: c1.pid, network: NET150, address: '198.18.150.30' });
    await ovs.plug({ instanceUuid: goneU, nicIndex: 0, containerPid: c2.pid, network: NET150, address: '198.18.150.31' });
    await lb.plug({ instanceUuid: goneU, nicIndex: 1, containerPid: c2.pid, network: bridgeNet('t-cyc-flat', BRIDGE, 152), address: '198.18.152.31', bandwidth: { egressKbit: 1000 } });
    // The instance "goes away" behind the driver's back: container deleted without unplug.
    await removeContainers([c2.id]);
    const goneKey = instanceKey(goneU);
    // The kernel tears a dead netns down asynchronously (cleanup_net workqueue): its veths
    // vanish a little after `docker rm` returns. Wait for that so the expected set is exact.
    for (let i = 0; i < 50 && (await hostLinks()).some((n) => n === nicNames(goneU, 0).hostVeth || n === nicNames(goneU, 1).hostVeth); i++) {
      await new Promise((r) => setTimeout(r, 100));
    }
    // Only judge this file's instances: others' tests run in parallel on the same host.
    const all = await auditLeaks(runner, [liveU], { ovsBridge: 'br-int' });
    const leaks = all.filter((l) => l.instance === goneU || l.instance === goneKey);
    expect(leaks.map((l) => `${l.kind}:${l.name}`).sort()).toEqual([
      `ifb:${nicNames(goneU, 1).ifb}`,
      `ovs-port:${nicNames(goneU, 0).hostVeth}`,
    ]);
    expect(all.some((l) => l.instance === liveU || l.instance === instanceKey(liveU))).toBe(false);
    const fixed = await fixLeaks(runner, leaks);
    expect(fixed.failed).toEqual([]);
    const after = (await auditLeaks(runner, [liveU], { ovsBridge: 'br-int' })).filter((l) => l.instance === goneU || l.instance === goneKey);
    expect(after).toEqual([]);
    await ovs.unplug({ instanceUuid: liveU, nicIndex: 0, network: NET150 });
  }, 60000);

  test(`OVS netdev: egress limit ${LIMIT_KBIT} kbit/s (TBF on the container end) measures within +-20%`, async () => {
    const [c1, c2] = await Promise.all([startContainer(), startContainer()]);
    containers.push(c1, c2);
    const a: PlugRequest = { instanceUuid: newUuid(), nicIndex: 0, containerPid: c1.pid, network: NET151, address: '198.18.151.11', bandwidth: { egressKbit: LIMIT_KBIT } };
    const b: PlugRequest = { instanceUuid: newUuid(), nicIndex: 0, containerPid: c2.pid, network: NET151, address: '198.18.151.12' };
    await ovs.plug(a);
    await ovs.plug(b);
    expect(await ovs.check(a)).toEqual({ ok: true, drift: [] });
    const shaped = await measureTransfer(c1, c2, b.address, 375_000, 5301);
    // eslint-disable-next-line no-console
    console.log(`ovs-vlan (netdev) egress limited to ${LIMIT_KBIT}: ${shaped.kbit.toFixed(1)} kbit/s over ${shaped.seconds.toFixed(2)} s`);
    expect(shaped.kbit).toBeGreaterThan(LIMIT_KBIT * 0.8);
    expect(shaped.kbit).toBeLessThan(LIMIT_KBIT * 1.2);
    await ovs.unplug(a);
    await ovs.unplug(b);
  }, 60000);
});

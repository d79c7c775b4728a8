import { ExecFileRunner } from '../../drivers/network/exec';
import { LinuxBridgeDriver } from '../../drivers/network/linux-bridge-driver';
import { nicNames } from '../../drivers/network/names';
import type { PlugRequest } from '../../drivers/network/network-driver';
import {
  bridgeNet, dockerExec, measureTransfer, ping, quiet, rand, removeContainers, sh, startContainer, uuid, type TestContainer,
} from './network-fixtures';

const BRIDGE = `tbr-${rand(6)}`;
const NET = bridgeNet('t-flat', BRIDGE, 110);
const LIMIT_KBIT = 1000;

describe('linux-bridge driver with real containers', () => {
  const driver = new LinuxBridgeDriver(new ExecFileRunner());
  const containers: TestContainer[] = [];
  const plugged: PlugRequest[] = [];
  let a: PlugRequest; let b: PlugRequest;

  beforeAll(async () => {
    await driver.init();
    const [ca, cb] = await Promise.all([startContainer(), startContainer()]);
    containers.push(ca, cb);
    a = { instanceUuid: uuid(), nicIndex: 0, containerPid: ca.pid, network: NET, address: '198.18.110.11' };
    b = { instanceUuid: uuid(), nicIndex: 0, containerPid: cb.pid, network: NET, address: '198.18.110.12' };
    plugged.push(a, b);
    await driver.plug(a);
    await driver.plug(b);
  });

  afterAll(async () => {
    for (const p of plugged) await driver.unplug(p).catch(() => undefined);
    await removeContainers(containers.map((x) => x.id));
    for (const p of plugged) {
      const n = nicNames(p.instanceUuid, p.nicIndex);
      await quiet('ip', ['link', 'del', n.hostVeth]);
      await quiet('ip', ['link', 'del', n.ifb]);
    }
    await quiet('ip', ['link', 'del', BRIDGE]);
  });

  test('the bridge was created and two containers on it ping each other', async () => {
    const br = JSON.parse(await sh('ip', ['-json', '-details', 'link', 'show', 'dev', BRIDGE]))[0];
    expect(br.linkinfo.info_kind).toBe('bridge');
    expect(await ping(containers[0], b.address)).toBe(true);
    expect(await ping(containers[1], a.address)).toBe(true);
  });

  test('check: clean, then bridge drift when the veth is taken off the bridge', async () => {
    expect(await driver.check(a)).toEqual({ ok: true, drift: [] });
    await sh('ip', ['link', 'set', 'dev', nicNames(a.instanceUuid, 0).hostVeth, 'nomaster']);
    expect((await driver.check(a)).drift).toEqual([{ kind: 'bridge-master', expected: BRIDGE, actual: 'none' }]);
    await driver.plug(a);
    expect((await driver.check(a)).ok).toBe(true);
  });

  test(`egress limit ${LIMIT_KBIT} kbit/s through IFB measures within +-20%`, async () => {
    const unshaped = await measureTransfer(containers[0], containers[1], b.address, 2_000_000, 5201);
    await driver.plug({ ...a, bandwidth: { egressKbit: LIMIT_KBIT } });
    expect(await driver.check({ ...a, bandwidth: { egressKbit: LIMIT_KBIT } })).toEqual({ ok: true, drift: [] });
    const shaped = await measureTransfer(containers[0], containers[1], b.address, 375_000, 5202);
    // eslint-disable-next-line no-console
    console.log(`linux-bridge egress: unshaped ${unshaped.kbit.toFixed(0)} kbit/s, limited to ${LIMIT_KBIT}: ${shaped.kbit.toFixed(1)} kbit/s over ${shaped.seconds.toFixed(2)} s`);
    expect(unshaped.kbit).toBeGreaterThan(LIMIT_KBIT * 5);
    expect(shaped.kbit).toBeGreaterThan(LIMIT_KBIT * 0.8);
    expect(shaped.kbit).toBeLessThan(LIMIT_KBIT * 1.2);
    // Unshaping removes the IFB.
    await driver.plug({ ...a, bandwidth: {} });
    expect(await sh('ip', ['-o', 'link', 'show']).then((o) => o.includes(nicNames(a.instanceUuid, 0).ifb))).toBe(false);
  }, 60000);

  test(`ingress limit ${LIMIT_KBIT} kbit/s (TBF on the host veth) measures within +-20%`, async () => {
    await driver.plug({ ...b, bandwidth: { ingressKbit: LIMIT_KBIT } });
    const shaped = await measureTransfer(containers[0], containers[1], b.address, 375_000, 5203);
    // eslint-disable-next-line no-console
    console.log(`linux-bridge ingress limited to ${LIMIT_KBIT}: ${shaped.kbit.toFixed(1)} kbit/s over ${shaped.seconds.toFixed(2)} s`);
    expect(shaped.kbit).toBeGreaterThan(LIMIT_KBIT * 0.8);
    expect(shaped.kbit).toBeLessThan(LIMIT_KBIT * 1.2);
  }, 60000);

  test('unplug removes veth and IFB; a second unplug is a no-op', async () => {
    await driver.plug({ ...a, bandwidth: { egressKbit: 5000 } });
    const n = nicNames(a.instanceUuid, 0);
    await driver.unplug(a);
    await driver.unplug(a);
    const links = await sh('ip', ['-o', 'link', 'show']);
    expect(links.includes(n.hostVeth)).toBe(false);
    expect(links.includes(n.ifb)).toBe(false);
    expect((await dockerExec(containers[0].id, ['ip', '-o', 'link'])).stdout.trim().split('\n').length).toBe(1);
  });
});

import { ExecFileRunner, RecordingRunner } from '../../drivers/network/exec';
import { nicNames } from '../../drivers/network/names';
import type { PlugRequest } from '../../drivers/network/network-driver';
import { OvsVlanDriver } from '../../drivers/network/ovs-vlan-driver';
import {
  dockerExec, measureTransfer, ovsNet, ovsPorts, ping, quiet, removeContainers, sh, startContainer, uuid, type TestContainer,
} from './network-fixtures';

// VLANs 100 and 200 belong to this file; both networks share 198.18.100.0/24 so that only the
// VLAN tag, not routing, can keep VLAN 200 away from VLAN 100.
const NET100 = ovsNet('t-ovs-v100', 100, 100);
const NET200 = { ...ovsNet('t-ovs-v200', 200, 100), name: 't-ovs-v200' };

describe('ovs-vlan driver on the userspace datapath with real containers', () => {
  const runner = new ExecFileRunner();
  const driver = new OvsVlanDriver(runner, { bridge: 'br-int', datapathType: 'auto' });
  const containers: TestContainer[] = [];
  const plugged: PlugRequest[] = [];
  let a: PlugRequest; let b: PlugRequest; let c: PlugRequest;

  const plug = async (req: PlugRequest) => {
    plugged.push(req);
    return driver.plug(req);
  };

  beforeAll(async () => {
    await driver.init();
    const [ca, cb, cc] = await Promise.all([startContainer(), startContainer(), startContainer()]);
    containers.push(ca, cb, cc);
    a = { instanceUuid: uuid(), nicIndex: 0, containerPid: ca.pid, network: NET100, address: '198.18.100.11' };
    b = { instanceUuid: uuid(), nicIndex: 0, containerPid: cb.pid, network: NET100, address: '198.18.100.12' };
    c = { instanceUuid: uuid(), nicIndex: 0, containerPid: cc.pid, network: NET200, address: '198.18.100.13' };
    await plug(a);
    await plug(b);
    await plug(c);
  });

  afterAll(async () => {
    for (const p of plugged) await driver.unplug(p).catch(() => undefined);
    await removeContainers(containers.map((x) => x.id));
    for (const p of plugged) {
      const n = nicNames(p.instanceUuid, p.nicIndex);
      await quiet('ovs-vsctl', ['--if-exists', 'del-port', n.hostVeth]);
      await quiet('ip', ['link', 'del', n.hostVeth]);
      await quiet('ip', ['link', 'del', n.ifb]);
    }
  });

  test('datapath auto resolves to netdev here', () => {
    expect(driver.datapath).toBe('netdev');
  });

  test('two containers on VLAN 100 ping each other; the one on VLAN 200 reaches neither', async () => {
    expect(await ping(containers[0], b.address)).toBe(true);
    expect(await ping(containers[1], a.address)).toBe(true);
    expect(await ping(containers[2], a.address, 2)).toBe(false);
    expect(await ping(containers[0], c.address, 2)).toBe(false);
  });

  test('the container sees eth0 with the derived MAC, the address and the default route', async () => {
    const r = await dockerExec(containers[0].id, ['ip', '-o', 'addr', 'show', 'dev', 'eth0']);
    expect(r.stdout).toContain('198.18.100.11/24');
    const route = await dockerExec(containers[0].id, ['ip', 'route', 'show', 'default']);
    expect(route.stdout).toContain('default via 198.18.100.1 dev eth0');
    const ids = await sh('ovs-vsctl', ['get', 'Interface', nicNames(a.instanceUuid, 0).hostVeth, 'external_ids']);
    expect(ids).toContain(`vm-uuid="${a.instanceUuid}"`);
    expect(ids).toContain('iface-id=');
    expect(await sh('ovs-vsctl', ['get', 'Port', nicNames(a.instanceUuid, 0).hostVeth, 'tag'])).toBe('100\n');
  });

  test('TCP works across OVS netdev (TX checksum workaround on the container end)', async () => {
    // measureTransfer only returns once every byte arrived; without the workaround the SYN
    // itself is dropped for a bad checksum and this times out.
    const t = await measureTransfer(containers[0], containers[1], b.address, 200_000, 5101);
    expect(t.seconds).toBeGreaterThanOrEqual(0);
  });

  test('plug twice = one interface, one port, created=false', async () => {
    const again = await driver.plug(a);
    expect(again.created).toBe(false);
    const links = await dockerExec(containers[0].id, ['ip', '-o', 'link']);
    expect(links.stdout.trim().split('\n').length).toBe(2); // lo + eth0
    const ports = (await ovsPorts()).filter((p) => p === nicNames(a.instanceUuid, 0).hostVeth);
    expect(ports.length).toBe(1);
    expect(await ping(containers[0], b.address)).toBe(true);
  });

  test('check reports drift (tag, address, missing veth) and plug repairs it', async () => {
    expect(await driver.check(a)).toEqual({ ok: true, drift: [] });
    const host = nicNames(a.instanceUuid, 0).hostVeth;
    await sh('ovs-vsctl', ['set', 'Port', host, 'tag=199']);
    await sh('nsenter', ['-t', String(a.containerPid), '-n', 'ip', 'addr', 'flush', 'dev', 'eth0']);
    const drift = await driver.check(a);
    expect(drift.ok).toBe(false);
    expect(drift.drift.map((d) => d.kind).sort()).toEqual(['container-address', 'container-default-route', 'ovs-tag']);
    await driver.plug(a);
    expect(await driver.check(a)).toEqual({ ok: true, drift: [] });
    await sh('ip', ['link', 'del', host]);
    const gone = await driver.check(a);
    expect(gone.drift.map((d) => d.kind)).toEqual(expect.arrayContaining(['host-veth-missing', 'container-nic-missing']));
    await driver.plug(a);
    expect(await driver.check(a)).toEqual({ ok: true, drift: [] });
    expect(await ping(containers[0], b.address)).toBe(true);
  });

  test('unplug of something already gone succeeds', async () => {
    const ghost = { instanceUuid: uuid(), nicIndex: 3, network: NET100 };
    await expect(driver.unplug(ghost)).resolves.toBeUndefined();
    await expect(driver.unplug(ghost)).resolves.toBeUndefined();
  });

  test('hostile input is refused before any command runs', async () => {
    const rec = new RecordingRunner(runner);
    const d = new OvsVlanDriver(rec, { bridge: 'br-int', datapathType: 'netdev' });
    const bad: Array<[string, PlugRequest]> = [
      ['shell metacharacters in the bridge', { ...a, network: { ...NET100, bridge: 'br-int;reboot' } }],
      ['shell metacharacters in the uuid', { ...a, instanceUuid: '$(reboot)' }],
      ['16-char bridge name', { ...a, network: { ...NET100, bridge: 'br-0123456789abc' } }],
      ['16-char uplink', { ...a, network: { ...NET100, type: 'linux-bridge', vlan: null, uplink: 'eth0123456789abc' } as never }],
      ['IP outside the range', { ...a, address: '198.18.100.251' }],
      ['IP outside the CIDR', { ...a, address: '10.0.0.5' }],
      ['the gateway as address', { ...a, address: '198.18.100.1' }],
      ['VLAN 4095', { ...a, network: { ...NET100, vlan: 4095 } }],
      ['template yielding an invalid hostname', { ...a, network: { ...NET100, hostnameTemplate: '{name}_{o4}' } }],
      ['multicast MAC', { ...a, mac: '01:00:5e:00:00:01' }],
      ['NIC index 99', { ...a, nicIndex: 99 }],
      ['pid 0', { ...a, containerPid: 0 }],
      ['bandwidth as a string', { ...a, bandwidth: { egressKbit: '1000; reboot' as never } }],
    ];
    for (const [what, req] of bad) {
      await expect(d.plug(req)).rejects.toMatchObject({ code: 'invalid_input' });
      await expect(d.check(req)).rejects.toMatchObject({ code: 'invalid_input' });
      expect([what, rec.calls]).toEqual([what, []]);
    }
    await expect(d.unplug({ ...a, instanceUuid: 'x;y' })).rejects.toMatchObject({ code: 'invalid_input' });
    expect(rec.calls).toEqual([]);
  });

  test('datapath mismatch between config and bridge fails init with a clear message', async () => {
    const d = new OvsVlanDriver(runner, { bridge: 'br-int', datapathType: 'system' });
    await expect(d.init()).rejects.toThrow(/datapath_type=netdev but config ovs.datapathType is system/);
  });
});

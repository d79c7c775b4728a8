import { NetworksRepo } from '../../services/db/networks-repo';
import { instanceSpec, startHarness, type ComputeHarness } from '../helpers/compute-harness';
import { eventually } from '../helpers/service-process';

jest.setTimeout(120000);

describe('peers on another host follow through the refresh_hosts fanout', () => {
  let a: ComputeHarness;
  let b: ComputeHarness;
  beforeAll(async () => {
    a = await startHarness('fan-a');
    b = await startHarness('fan-b', { sameCloudAs: a });
    await new NetworksRepo(a.t.db).create({ name: 'fan', type: 'ovs-vlan', bridge: a.config.ovs.bridge, vlan: 3301, cidr: '198.19.61.0/24',
      gateway: '198.19.61.1', rangeStart: '198.19.61.10', rangeEnd: '198.19.61.200', hostnameTemplate: 'n-{o4}', domain: 'fan.test' });
  });
  afterAll(async () => {
    await b?.close();
    await a?.close();
  });

  test('an instance on host A appears in and disappears from /etc/hosts of an instance on host B', async () => {
    const onB = instanceSpec({ name: 'b1', networks: [{ network: 'fan', fixed_ip: '198.19.61.20' }] });
    await b.call('build_and_run_instance', { instance: onB });
    const onA = instanceSpec({ name: 'a1', networks: [{ network: 'fan', fixed_ip: '198.19.61.30' }] });
    await a.call('build_and_run_instance', { instance: onA });
    // B's instance learns about A's through the fanout (A only writes its own host's files)
    const seen = await eventually(() => b.execIn(onB.uuid, 'cat', '/etc/hosts'), (t) => t.includes('198.19.61.30\tn-30.fan.test\tn-30'), 5000, 100);
    expect(seen).toContain('198.19.61.30\tn-30.fan.test\tn-30');
    // and they reach each other by name across the two "hosts" on the shared OVS VLAN
    await expect(b.execIn(onB.uuid, 'ping', '-c', '1', '-W', '3', 'n-30')).resolves.toContain('1 packets received');
    await a.call('terminate_instance', { instance_uuid: onA.uuid });
    const gone = await eventually(() => b.execIn(onB.uuid, 'cat', '/etc/hosts'), (t) => !t.includes('198.19.61.30'), 2000, 50);
    expect(gone).not.toContain('198.19.61.30');
  });
});

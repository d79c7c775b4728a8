import { instanceSpec, run, startHarness, TEST_IMAGE, type ComputeHarness } from '../helpers/compute-harness';
import { startApi, type ApiFixture } from './api-fixture';

jest.setTimeout(300000);

const HOST_B_SOCK = '/var/lib/compute/host-b/docker.sock';

/** Value of a metric series with these labels in Prometheus text, or undefined. */
function metric(text: string, name: string, labels: Record<string, string>): number | undefined {
  for (const line of text.split('\n')) {
    if (!line.startsWith(name + '{')) continue;
    if (Object.entries(labels).every(([k, v]) => line.includes(`${k}="${v}"`))) return Number(line.split(' ').pop());
  }
  return undefined;
}

describe('end to end over HTTP: network, three instances, migrate, confirm, delete', () => {
  let a: ComputeHarness;
  let b: ComputeHarness;
  let api: ApiFixture;
  const uuids: string[] = [];

  beforeAll(async () => {
    a = await startHarness('e2e-a');
    b = await startHarness('e2e-b', { sameCloudAs: a, overrides: { dockerSocket: HOST_B_SOCK, dockerDataRoot: '/var/lib/compute/host-b/data' } });
    api = await startApi(a);
  });
  afterAll(async () => {
    await api?.close();
    for (const id of (await run('docker', ['-H', `unix://${HOST_B_SOCK}`, 'ps', '-aq', '--filter', `label=compute.host=${b?.host}`])).stdout.split('\n').filter(Boolean)) {
      await run('docker', ['-H', `unix://${HOST_B_SOCK}`, 'rm', '-f', id]);
    }
    await b?.close();
    await a?.close();
  });

  test('the whole story', async () => {
    const net = await api.call('POST', '/networks', { body: {
      name: 'e2e', type: 'ovs-vlan', bridge: 'br-int', vlan: 3699, cidr: '198.19.93.0/24', gateway: '198.19.93.1',
      range_start: '198.19.93.10', range_end: '198.19.93.200', hostname_template: '{name}-{o4}', domain: 'e2e.test' } });
    expect(net.status).toBe(201);

    for (const name of ['web', 'app', 'db']) {
      const s = instanceSpec({ name, image: TEST_IMAGE, networks: [{ network: 'e2e' }] });
      const r = await api.call('POST', '/instances', { body: { ...s, uuid: undefined, host: a.host } });
      expect(r.status).toBe(201);
      uuids.push(r.body.instance.uuid);
    }
    const list = await api.call('GET', `/instances?host=${a.host}`);
    expect(list.body.instances.map((i: { uuid: string }) => i.uuid).sort()).toEqual([...uuids].sort());

    const m1 = (await api.call('GET', '/metrics')).text;
    for (const u of uuids) {
      expect(metric(m1, 'compute_instance_memory_limit_bytes', { instance_uuid: u, host: a.host })).toBe(64 * 1024 * 1024);
    }

    const [mover] = uuids;
    const mig = await api.call('POST', `/instances/${mover}/action`, { body: { migrate: { host: b.host } } });
    expect(mig.status).toBe(200);
    expect(mig.body.result).toMatchObject({ status: 'finished', dest_host: b.host });
    const conf = await api.call('POST', `/instances/${mover}/action`, { body: { confirm: {} } });
    expect(conf.status).toBe(200);
    expect(conf.body.result).toMatchObject({ status: 'confirmed' });
    const shown = await api.call('GET', `/instances/${mover}`);
    expect(shown.body.instance).toMatchObject({ host: b.host, vm_state: 'active' });
    const migs = await api.call('GET', `/migrations?instance_uuid=${mover}`);
    expect(migs.body.migrations[0]).toMatchObject({ status: 'confirmed', source_host: a.host, dest_host: b.host });

    const m2 = (await api.call('GET', '/metrics')).text;
    expect(metric(m2, 'compute_instance_memory_limit_bytes', { instance_uuid: mover, host: b.host })).toBe(64 * 1024 * 1024);
    expect(metric(m2, 'compute_instance_memory_limit_bytes', { instance_uuid: mover, host: a.host })).toBeUndefined();

    const actions = await api.call('GET', `/instances/${mover}/actions`);
    const names = actions.body.instanceActions.map((x: { action: string }) => x.action);
    expect(names).toEqual(expect.arrayContaining(['create', 'migrate', 'confirmResize']));
    const migAction = actions.body.instanceActions.find((x: { action: string }) => x.action === 'migrate');
    const detail = await api.call('GET', `/instances/${mover}/actions/${migAction.id}`);
    const events = (detail.body.instanceAction?.events ?? []).map((e: { event: string }) => e.event);
    expect(events).toEqual(['compute_prep_resize', 'compute_stop_and_unplug', 'compute_commit_and_push', 'compute_finish_resize']);

    for (const u of uuids) expect((await api.call('DELETE', `/instances/${u}`)).status).toBeLessThan(300);
    expect((await api.call('GET', '/instances')).body.instances).toEqual([]);
    const m3 = (await api.call('GET', '/metrics')).text;
    for (const u of uuids) expect(metric(m3, 'compute_instance_memory_limit_bytes', { instance_uuid: u })).toBeUndefined();
    expect((await api.call('DELETE', '/networks/e2e')).status).toBeLessThan(300);
  });
});

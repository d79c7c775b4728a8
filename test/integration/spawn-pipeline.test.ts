import { NetworksRepo } from '../../services/db/networks-repo';
import { instanceKey } from '../../drivers/network/names';
import { hostLinks, instanceSpec, ovsPorts, startHarness, type ComputeHarness } from '../helpers/compute-harness';
import { eventually } from '../helpers/service-process';

jest.setTimeout(240000);

let failAt: string | undefined;
let h: ComputeHarness;

beforeAll(async () => {
  h = await startHarness('spawn', { faults: { afterStep: (step) => { if (step === failAt) throw new Error(`injected fault after ${step}`); } } });
  const nets = new NetworksRepo(h.t.db);
  await nets.create({ name: 'vlan-a', type: 'ovs-vlan', bridge: h.config.ovs.bridge, vlan: 3101, cidr: '198.19.31.0/24',
    gateway: '198.19.31.1', rangeStart: '198.19.31.10', rangeEnd: '198.19.31.250', hostnameTemplate: 'web-{o3}-{o4}', domain: 'test.local' });
  await nets.create({ name: 'vlan-b', type: 'ovs-vlan', bridge: h.config.ovs.bridge, vlan: 3102, cidr: '198.19.32.0/24',
    gateway: '198.19.32.1', rangeStart: '198.19.32.10', rangeEnd: '198.19.32.250', hostnameTemplate: 'db-{o4}', domain: 'test.local' });
});

afterAll(async () => {
  await h?.close();
});

describe('spawn pipeline through RPC on real Docker + OVS', () => {
  test('peers on one VLAN ping by hostname; another VLAN is isolated; a terminated peer leaves /etc/hosts', async () => {
    const a = instanceSpec({ name: 'alpha', networks: [{ network: 'vlan-a' }] });
    const b = instanceSpec({ name: 'beta', networks: [{ network: 'vlan-a', fixed_ip: '198.19.31.77' }] });
    const c = instanceSpec({ name: 'gamma', networks: [{ network: 'vlan-b' }] });
    const [ra, rb, rc] = await Promise.all([a, b, c].map((s) => h.call('build_and_run_instance', { instance: s })));
    expect(rb.addresses[0].address).toBe('198.19.31.77');
    expect(rb.hostname).toBe('web-31-77');
    const ipA = ra.addresses[0].address as string;
    expect(ra.hostname).toBe(`web-31-${ipA.split('.')[3]}`);
    expect(await h.execIn(a.uuid, 'hostname')).toBe(ra.hostname);
    expect(rc.hostname).toMatch(/^db-\d+$/);

    const hostsA = await h.execIn(a.uuid, 'cat', '/etc/hosts');
    expect(hostsA).toContain(`198.19.31.77\tweb-31-77.test.local\tweb-31-77`);
    expect(hostsA).not.toContain(rc.addresses[0].address); // other network's instances are not listed
    // by hostname, resolved through the injected /etc/hosts, across the VLAN
    await expect(h.execIn(a.uuid, 'ping', '-c', '1', '-W', '3', 'web-31-77')).resolves.toContain('1 packets received');
    await expect(h.execIn(b.uuid, 'ping', '-c', '1', '-W', '3', `${ra.hostname}.test.local`)).resolves.toContain('1 packets received');
    // VLAN 3102 cannot reach VLAN 3101 (put an address of vlan-a's subnet on c's side to try L2 reach)
    await expect(h.execIn(c.uuid, 'ping', '-c', '1', '-W', '1', ipA)).rejects.toBeTruthy();

    await h.call('terminate_instance', { instance_uuid: b.uuid });
    const t0 = Date.now();
    const after = await eventually(() => h.execIn(a.uuid, 'cat', '/etc/hosts'), (txt) => !txt.includes('198.19.31.77'), 2000, 50);
    expect(after).not.toContain('198.19.31.77');
    expect(Date.now() - t0).toBeLessThan(2000);
    await h.call('terminate_instance', { instance_uuid: a.uuid });
    await h.call('terminate_instance', { instance_uuid: c.uuid });
  });

  test('cgroup files inside equal the flavor; update_instance_resources changes them live', async () => {
    const s = instanceSpec({ flavor: { vcpus: 1, memory_mb: 96, cpu_policy: 'dedicated', pids_limit: 77 }, hostname: 'limits', io: { read_bps: 1048576 } });
    await h.call('build_and_run_instance', { instance: s });
    const cat = (f: string) => h.execIn(s.uuid, 'cat', f);
    const pins = await h.t.db('cpu_pins').where({ instance_uuid: s.uuid }).select('cpu');
    expect(pins).toHaveLength(1);
    expect(await cat('/sys/fs/cgroup/cpuset/cpuset.cpus')).toBe(String(pins[0].cpu));
    expect(await cat('/sys/fs/cgroup/memory/memory.limit_in_bytes')).toBe(String(96 * 1024 * 1024));
    expect(await cat('/sys/fs/cgroup/pids/pids.max')).toBe('77');
    expect(await cat('/sys/fs/cgroup/blkio/blkio.throttle.read_bps_device')).toMatch(/^\d+:\d+ 1048576$/);

    const r = await h.call('update_instance_resources', { instance_uuid: s.uuid, memory_mb: 128, pids_limit: 99, io: { read_bps: 2097152 } });
    expect(r.memory_mb).toBe(128);
    expect(await cat('/sys/fs/cgroup/memory/memory.limit_in_bytes')).toBe(String(128 * 1024 * 1024));
    expect(await cat('/sys/fs/cgroup/pids/pids.max')).toBe('99');
    expect(await cat('/sys/fs/cgroup/blkio/blkio.throttle.read_bps_device')).toMatch(/^\d+:\d+ 2097152$/);
    await h.call('terminate_instance', { instance_uuid: s.uuid });
    expect(await h.t.db('cpu_pins').where({ instance_uuid: s.uuid })).toHaveLength(0);
  });

  test('volumes bind only under the allowed roots; data written inside lands there', async () => {
    const root = h.config.volumeRoots[0];
    const ok = instanceSpec({ hostname: 'vol', volumes: [{ host_path: `${root}/data1`, container_path: '/data' }] });
    await h.call('build_and_run_instance', { instance: ok });
    await h.execIn(ok.uuid, 'sh', '-c', 'echo hello > /data/f.txt');
    const fs = await import('node:fs/promises');
    expect(await fs.readFile(`${root}/data1/f.txt`, 'utf8')).toBe('hello\n');
    await h.call('terminate_instance', { instance_uuid: ok.uuid });
    expect(await fs.readFile(`${root}/data1/f.txt`, 'utf8')).toBe('hello\n'); // data outlives the instance

    for (const bad of ['/etc', `${root}/../../etc`]) {
      const s = instanceSpec({ hostname: 'badvol', volumes: [{ host_path: bad, container_path: '/data' }] });
      await expect(h.call('build_and_run_instance', { instance: s })).rejects.toThrow(/outside the allowed roots|must not contain/);
      expect(await h.docker('ps', '-aq', '--filter', `label=compute.instance-uuid=${s.uuid}`)).toBe('');
      expect((await h.t.db('instances').where({ uuid: s.uuid }).first()).fault.step).toBe('create');
    }
  });

  test('20 concurrent dedicated-CPU spawns: exactly as many as fit, clear refusals, no CPU pinned twice', async () => {
    const host = await h.t.db('hosts').where({ name: h.host }).first();
    const fit = host.dedicated_cpus.length;
    const specs = Array.from({ length: 20 }, (_, i) => instanceSpec({ name: `ded-${i}`, hostname: `ded-${i}`, flavor: { vcpus: 1, memory_mb: 16, cpu_policy: 'dedicated' } }));
    const results = await Promise.allSettled(specs.map((s) => h.call('build_and_run_instance', { instance: s })));
    const ok = results.filter((r) => r.status === 'fulfilled');
    const failed = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
    expect(ok).toHaveLength(fit);
    for (const f of failed) expect(String(f.reason.message)).toMatch(/not enough dedicated CPUs/);
    const pins = await h.t.db('cpu_pins').where({ host: h.host }).select('cpu', 'instance_uuid');
    expect(pins).toHaveLength(fit);
    expect(new Set(pins.map((p: { cpu: number }) => p.cpu)).size).toBe(fit);
    const cpusets = await Promise.all(pins.map((p: { instance_uuid: string }) => h.execIn(p.instance_uuid, 'cat', '/sys/fs/cgroup/cpuset/cpuset.cpus')));
    expect(new Set(cpusets).size).toBe(fit);
    const running = (await h.docker('ps', '-q', '--filter', `label=compute.host=${h.host}`)).split('\n').filter(Boolean);
    expect(running).toHaveLength(fit);
    for (const p of pins) await h.call('terminate_instance', { instance_uuid: p.instance_uuid });
  });

  test.each(['claim', 'create', 'start', 'post_start'])('a failure after %s leaves nothing behind and names the step', async (step) => {
    const s = instanceSpec({ name: `fail-${step}`, flavor: { vcpus: 1, memory_mb: 32, cpu_policy: 'dedicated' }, networks: [{ network: 'vlan-a' }], net: { egress_kbit: 8000 } });
    failAt = step;
    try {
      await expect(h.call('build_and_run_instance', { instance: s })).rejects.toThrow(`injected fault after ${step}`);
    } finally {
      failAt = undefined;
    }
    const inst = await h.t.db('instances').where({ uuid: s.uuid }).first();
    expect(inst.vm_state).toBe('error');
    expect(inst.fault.step).toBe(step);
    expect(await h.t.db('ip_allocations').where({ instance_uuid: s.uuid })).toHaveLength(0);
    expect(await h.t.db('cpu_pins').where({ instance_uuid: s.uuid })).toHaveLength(0);
    expect(await h.docker('ps', '-aq', '--filter', `label=compute.instance-uuid=${s.uuid}`)).toBe('');
    const key = instanceKey(s.uuid);
    expect((await hostLinks()).filter((l) => l.includes(key))).toEqual([]);
    // (other test files create links in parallel: compare only what belongs to this instance)
    expect((await ovsPorts(h.config.ovs.bridge)).filter((p) => p.includes(key))).toEqual([]);
    const events = await h.t.db('instance_action_events as e').join('instance_actions as a', 'a.id', 'e.action_id')
      .where('a.instance_uuid', s.uuid).orderBy('e.id').select('e.event', 'e.result');
    expect(events.map((e: { event: string }) => e.event)).toEqual(['compute_claim', 'compute_create', 'compute_start', 'compute_post_start'].slice(0, ['claim', 'create', 'start', 'post_start'].indexOf(step) + 1));
    expect(events[events.length - 1].result).toBe('Error');
  });
});

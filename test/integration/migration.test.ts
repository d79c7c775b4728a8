import { NetworksRepo } from '../../services/db/networks-repo';
import { instanceSpec, run, startHarness, type ComputeHarness } from '../helpers/compute-harness';
import { TcpProxy } from '../helpers/tcp-proxy';

jest.setTimeout(300000);

const HOST_B_SOCK = '/var/lib/compute/host-b/docker.sock';
const dockerB = async (...args: string[]) => (await run('docker', ['-H', `unix://${HOST_B_SOCK}`, ...args])).stdout.trim();

describe('cold migration between two real dockerd hosts through a real registry', () => {
  let a: ComputeHarness;
  let b: ComputeHarness;
  const registry = new TcpProxy('127.0.0.1', 5000);
  let cutRegistryBeforeCommit = false;
  const peer = instanceSpec({ name: 'peer', networks: [{ network: 'mig' }] });

  beforeAll(async () => {
    const port = await registry.start();
    const overrides = { registry: `127.0.0.1:${port}` };
    a = await startHarness('mig-a', {
      overrides,
      faults: { afterStep: async (step) => { if (step === 'mig_before_commit' && cutRegistryBeforeCommit) await registry.cut(); } },
    });
    b = await startHarness('mig-b', { sameCloudAs: a, overrides: { ...overrides, dockerSocket: HOST_B_SOCK, dockerDataRoot: '/var/lib/compute/host-b/data' } });
    await new NetworksRepo(a.t.db).create({ name: 'mig', type: 'ovs-vlan', bridge: a.config.ovs.bridge, vlan: 3601, cidr: '198.19.90.0/24',
      gateway: '198.19.90.1', rangeStart: '198.19.90.10', rangeEnd: '198.19.90.200', hostnameTemplate: 'm-{o4}', domain: 'mig.test' });
    await a.call('build_and_run_instance', { instance: peer });
  });

  afterAll(async () => {
    // B first: instances that ended there are terminated by B's harness
    for (const id of (await dockerB('ps', '-aq', '--filter', `label=compute.host=${b?.host}`)).split('\n').filter(Boolean)) await dockerB('rm', '-f', id);
    await b?.close();
    await a?.close();
    await registry.cut().catch(() => undefined);
  });

  const identity = async (uuid: string, inB: boolean) => {
    const exec = (...argv: string[]) => (inB ? dockerB('exec', `instance-${uuid}`, ...argv) : a.execIn(uuid, ...argv));
    return { hostname: await exec('hostname'), addr: await exec('ip', '-o', '-4', 'addr', 'show', 'eth0'), mac: await exec('cat', '/sys/class/net/eth0/address') };
  };

  test('moves host A -> B keeping data, hostname, IP, MAC and reachability; confirm frees the source', async () => {
    const x = instanceSpec({ name: 'mover', networks: [{ network: 'mig' }], flavor: { vcpus: 1, memory_mb: 32, cpu_policy: 'dedicated' } });
    await a.call('build_and_run_instance', { instance: x });
    await a.execIn(x.uuid, 'sh', '-c', 'echo precious > /root/data.txt');
    const before = await identity(x.uuid, false);

    const mig = await a.call('migrate_instance', { instance_uuid: x.uuid, dest_host: b.host });
    expect(mig.status).toBe('finished');
    expect(mig.image_ref).toContain(`/${x.uuid}:mig-${mig.id}`);
    expect(mig.progress.downtime_ms).toBeGreaterThan(0);
    expect(Object.keys(mig.progress.steps)).toEqual(expect.arrayContaining(['prep_resize', 'stopped', 'pushed', 'finish_resize']));

    expect(await dockerB('exec', `instance-${x.uuid}`, 'cat', '/root/data.txt')).toBe('precious');
    expect(await identity(x.uuid, true)).toEqual(before);
    const peerIp = (await a.t.db('ip_allocations').where({ instance_uuid: peer.uuid }).select(a.t.db.raw('host(address) as ip')).first()).ip;
    const peerName = `m-${peerIp.split('.')[3]}`;
    await expect(dockerB('exec', `instance-${x.uuid}`, 'ping', '-c', '1', '-W', '3', peerName)).resolves.toContain('1 packets received');
    const info = await b.call('get_info', { instance_uuid: x.uuid });
    expect(info).toMatchObject({ vm_state: 'resized', host: b.host });
    // during VERIFY_RESIZE the old container is kept (stopped) on A for a revert
    expect(await a.docker('ps', '-aq', '--filter', `label=compute.instance-uuid=${x.uuid}`)).not.toBe('');

    const confirmed = await a.call('confirm_resize', { instance_uuid: x.uuid, migration_id: mig.id });
    expect(confirmed.status).toBe('confirmed');
    expect(await a.docker('ps', '-aq', '--filter', `label=compute.instance-uuid=${x.uuid}`)).toBe('');
    const pins = await a.t.db('cpu_pins').where({ instance_uuid: x.uuid });
    expect(pins.map((p: { host: string; migration_id: number | null }) => [p.host, p.migration_id])).toEqual([[b.host, null]]);
    expect((await b.call('get_info', { instance_uuid: x.uuid })).vm_state).toBe('active');
    await b.call('terminate_instance', { instance_uuid: x.uuid });
  });

  test('revert brings it back running on host A with the same identity', async () => {
    const y = instanceSpec({ name: 'back', networks: [{ network: 'mig' }] });
    await a.call('build_and_run_instance', { instance: y });
    const before = await identity(y.uuid, false);
    const mig = await a.call('migrate_instance', { instance_uuid: y.uuid, dest_host: b.host });
    expect(mig.status).toBe('finished');
    const reverted = await b.call('revert_resize', { instance_uuid: y.uuid, migration_id: mig.id });
    expect(reverted.status).toBe('reverted');
    expect(await dockerB('ps', '-aq', '--filter', `label=compute.instance-uuid=${y.uuid}`)).toBe('');
    expect(await a.t.db('cpu_pins').where({ instance_uuid: y.uuid, host: b.host })).toHaveLength(0);
    expect(await identity(y.uuid, false)).toEqual(before);
    expect(await a.call('get_info', { instance_uuid: y.uuid })).toMatchObject({ vm_state: 'active', power_state: 'running', host: a.host });
    await expect(a.execIn(y.uuid, 'ping', '-c', '1', '-W', '3', `m-${(await a.t.db('ip_allocations').where({ instance_uuid: peer.uuid }).select(a.t.db.raw('host(address) as ip')).first()).ip.split('.')[3]}`))
      .resolves.toContain('1 packets received');
    await a.call('terminate_instance', { instance_uuid: y.uuid });
  });

  test('confirm and revert racing: exactly one wins and the instance keeps running; terminate waits for the decision', async () => {
    const r = instanceSpec({ name: 'race', networks: [{ network: 'mig' }] });
    await a.call('build_and_run_instance', { instance: r });
    const mig = await a.call('migrate_instance', { instance_uuid: r.uuid, dest_host: b.host });
    await expect(b.call('terminate_instance', { instance_uuid: r.uuid })).rejects.toThrow(new RegExp(`migration ${mig.id} in flight.*confirm or revert`));
    const [c, v] = await Promise.allSettled([
      a.call('confirm_resize', { instance_uuid: r.uuid, migration_id: mig.id }),
      b.call('revert_resize', { instance_uuid: r.uuid, migration_id: mig.id }),
    ]);
    expect([c.status, v.status].sort()).toEqual(['fulfilled', 'rejected']);
    const loser = (c.status === 'rejected' ? c : v) as PromiseRejectedResult;
    expect(String(loser.reason.message)).toMatch(/only a finished migration can be/);
    const row = await a.t.db('migrations').where({ id: mig.id }).first();
    const info = await (row.status === 'confirmed' ? b : a).call('get_info', { instance_uuid: r.uuid });
    expect(info).toMatchObject({ vm_state: 'active', power_state: 'running' });
    const onA = await a.docker('ps', '-q', '--filter', `label=compute.instance-uuid=${r.uuid}`);
    const onB = await dockerB('ps', '-q', '--filter', `label=compute.instance-uuid=${r.uuid}`);
    expect([onA, onB].filter(Boolean)).toHaveLength(1); // one running copy, never two, never none
    await (row.status === 'confirmed' ? b : a).call('terminate_instance', { instance_uuid: r.uuid });
  });

  test('registry down before the push: the migration fails, B did nothing, the instance runs again on A', async () => {
    const z = instanceSpec({ name: 'stay', networks: [{ network: 'mig' }], flavor: { vcpus: 1, memory_mb: 32, cpu_policy: 'dedicated' } });
    await a.call('build_and_run_instance', { instance: z });
    const before = await identity(z.uuid, false);
    cutRegistryBeforeCommit = true;
    try {
      await expect(a.call('migrate_instance', { instance_uuid: z.uuid, dest_host: b.host })).rejects.toThrow(/127\.0\.0\.1|registry|connect|refused/i);
    } finally {
      cutRegistryBeforeCommit = false;
      await registry.restore();
    }
    const mig = await a.t.db('migrations').where({ instance_uuid: z.uuid }).first();
    expect(mig.status).toBe('error');
    expect(mig.error).toBeTruthy();
    expect(await dockerB('ps', '-aq', '--filter', `label=compute.instance-uuid=${z.uuid}`)).toBe('');
    expect(await a.t.db('cpu_pins').where({ instance_uuid: z.uuid, host: b.host })).toHaveLength(0);
    expect(await a.call('get_info', { instance_uuid: z.uuid })).toMatchObject({ vm_state: 'active', power_state: 'running', host: a.host });
    expect(await identity(z.uuid, false)).toEqual(before);
    await a.call('terminate_instance', { instance_uuid: z.uuid });
  });

  test('snapshot_instance commits and pushes; the image runs elsewhere with the data', async () => {
    const s = instanceSpec({ name: 'snap', hostname: 'snap' });
    await a.call('build_and_run_instance', { instance: s });
    await a.execIn(s.uuid, 'sh', '-c', 'echo snapped > /root/s.txt');
    const r = await a.call('snapshot_instance', { instance_uuid: s.uuid, image_name: 'golden:v1' });
    expect(r.image_ref).toBe(`${a.config.registry}/proj-test/golden:v1`);
    expect(r.digest).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(await a.docker('inspect', '-f', '{{.State.Running}}', `instance-${s.uuid}`)).toBe('true'); // unpaused after
    await dockerB('pull', r.image_ref);
    expect(await dockerB('run', '--rm', '--net=none', r.image_ref, 'cat', '/root/s.txt')).toBe('snapped');
    await dockerB('rmi', r.image_ref);
    await expect(a.call('snapshot_instance', { instance_uuid: s.uuid, image_name: 'Bad;Name' })).rejects.toThrow(/image_name/);
    await a.call('terminate_instance', { instance_uuid: s.uuid });
  });

  test('no free dedicated CPU on the destination: refused by prep_resize, the source never stopped', async () => {
    const fillers = [0, 1].map((i) => instanceSpec({ name: `fill${i}`, hostname: `fill${i}`, flavor: { vcpus: 1, memory_mb: 16, cpu_policy: 'dedicated' } }));
    const spawned: string[] = [];
    for (const f of fillers) {
      try { await b.call('build_and_run_instance', { instance: f }); spawned.push(f.uuid); } catch { /* B may have fewer CPUs */ }
    }
    const d = instanceSpec({ name: 'ded', networks: [{ network: 'mig' }], flavor: { vcpus: 1, memory_mb: 16, cpu_policy: 'dedicated' } });
    await a.call('build_and_run_instance', { instance: d });
    const pidBefore = await a.docker('inspect', '-f', '{{.State.Pid}}', `instance-${d.uuid}`);
    await expect(a.call('migrate_instance', { instance_uuid: d.uuid, dest_host: b.host })).rejects.toThrow(/not enough dedicated CPUs/);
    expect(await a.docker('inspect', '-f', '{{.State.Pid}}', `instance-${d.uuid}`)).toBe(pidBefore); // never stopped
    expect((await a.t.db('migrations').where({ instance_uuid: d.uuid }).first()).status).toBe('error');
    expect(await a.call('get_info', { instance_uuid: d.uuid })).toMatchObject({ vm_state: 'active', host: a.host });
    for (const u of spawned) await b.call('terminate_instance', { instance_uuid: u });
    await a.call('terminate_instance', { instance_uuid: d.uuid });
  });

  test('a finished migration past its auto_confirm_at is confirmed by the periodic task', async () => {
    const { autoConfirmDue } = await import('../../services/compute/migration');
    const s = instanceSpec({ name: 'auto', networks: [{ network: 'mig' }] });
    await a.call('build_and_run_instance', { instance: s });
    const mig = await a.call('migrate_instance', { instance_uuid: s.uuid, dest_host: b.host });
    expect(mig.status).toBe('finished');
    expect(await autoConfirmDue(a.service.deps)).toEqual([]); // no deadline set (autoConfirmSec 0)
    await a.t.db('migrations').where({ id: mig.id }).update({ auto_confirm_at: new Date(Date.now() - 1000) });
    expect(await autoConfirmDue(a.service.deps)).toEqual([mig.id]);
    expect((await a.t.db('migrations').where({ id: mig.id }).first()).status).toBe('confirmed');
    expect(await a.docker('ps', '-aq', '--filter', `label=compute.instance-uuid=${s.uuid}`)).toBe('');
    await b.call('terminate_instance', { instance_uuid: s.uuid });
  });

  test('registry unreachable at pre-flight: refused before anything is stopped', async () => {
    const s = instanceSpec({ name: 'pre', hostname: 'pre' });
    await a.call('build_and_run_instance', { instance: s });
    await registry.cut();
    try {
      await expect(a.call('migrate_instance', { instance_uuid: s.uuid, dest_host: b.host })).rejects.toThrow(/registry .* not reachable/);
    } finally {
      await registry.restore();
    }
    expect(await a.docker('inspect', '-f', '{{.State.Running}}', `instance-${s.uuid}`)).toBe('true');
    expect(await a.t.db('migrations').where({ instance_uuid: s.uuid })).toHaveLength(0);
    await a.call('terminate_instance', { instance_uuid: s.uuid });
  });

  test('pre-flight refusals name the reason and touch nothing', async () => {
    const v = instanceSpec({ name: 'vol', hostname: 'vol', volumes: [{ host_path: `${a.config.volumeRoots[0]}/v1`, container_path: '/data' }] });
    await a.call('build_and_run_instance', { instance: v });
    await expect(a.call('migrate_instance', { instance_uuid: v.uuid, dest_host: b.host })).rejects.toThrow(/local bind volumes.*\/data <- .*v1.*nothing was stopped/);
    const w = instanceSpec({ name: 'w', hostname: 'w' });
    await a.call('build_and_run_instance', { instance: w });
    await expect(a.call('migrate_instance', { instance_uuid: w.uuid, dest_host: 'nosuchhost' })).rejects.toThrow(/not registered/);
    await expect(a.call('migrate_instance', { instance_uuid: w.uuid, dest_host: a.host })).rejects.toThrow(/already on/);
    // a destination whose heartbeat is stale (B's heartbeat timer is stopped for the check)
    b.service.stopHeartbeat?.();
    await a.t.db('hosts').where({ name: b.host }).update({ heartbeat_at: new Date(Date.now() - 3600_000) });
    await expect(a.call('migrate_instance', { instance_uuid: w.uuid, dest_host: b.host })).rejects.toThrow(/last reported \d+ s ago/);
    expect(await a.docker('inspect', '-f', '{{.State.Running}}', `instance-${v.uuid}`)).toBe('true');
    expect(await a.docker('inspect', '-f', '{{.State.Running}}', `instance-${w.uuid}`)).toBe('true');
    expect(await a.t.db('migrations').whereIn('instance_uuid', [v.uuid, w.uuid])).toHaveLength(0);
  });
});

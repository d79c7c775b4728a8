import { NetworksRepo } from '../../services/db/networks-repo';
import { instanceSpec, startHarness, type ComputeHarness } from '../helpers/compute-harness';

jest.setTimeout(180000);

let h: ComputeHarness;
const peer = instanceSpec({ name: 'peer', networks: [{ network: 'flat' }] });
const inst = instanceSpec({ name: 'life', networks: [{ network: 'flat' }], command: ['/bin/sh', '-c', 'echo booted; exec /sbin/init-wait'] });

beforeAll(async () => {
  h = await startHarness('life');
  const bridge = `tbl${h.host.slice(-6)}`;
  await new NetworksRepo(h.t.db).create({ name: 'flat', type: 'linux-bridge', bridge, vlan: null, cidr: '198.19.41.0/24',
    gateway: '198.19.41.1', rangeStart: '198.19.41.10', rangeEnd: '198.19.41.200', hostnameTemplate: '{name}-{o4}', domain: 'life.test' });
  await h.call('build_and_run_instance', { instance: peer });
  await h.call('build_and_run_instance', { instance: inst });
});

afterAll(async () => {
  const bridge = `tbl${h?.host.slice(-6)}`;
  await h?.close();
  await h?.docker('version').catch(() => undefined);
  await import('node:child_process').then(({ execFileSync }) => { try { execFileSync('ip', ['link', 'del', bridge]); } catch { /* gone */ } });
});

const pingPeer = async () => {
  const ip = (await h.t.db('ip_allocations').where({ instance_uuid: peer.uuid }).select(h.t.db.raw('host(address) as a')).first()).a;
  return h.execIn(inst.uuid, 'ping', '-c', '1', '-W', '3', ip);
};
const info = () => h.call('get_info', { instance_uuid: inst.uuid });

describe('lifecycle through RPC on a flat Linux bridge network', () => {
  test('two instances on a flat bridge ping each other', async () => {
    await expect(pingPeer()).resolves.toContain('1 packets received');
  });

  test('stop -> stopped (again: not modified) -> start re-plugs into the new netns', async () => {
    const r = await h.call('stop_instance', { instance_uuid: inst.uuid });
    expect(r).toMatchObject({ vm_state: 'stopped', power_state: 'shutdown', changed: true });
    expect((await h.call('stop_instance', { instance_uuid: inst.uuid })).changed).toBe(false);
    expect(await h.docker('inspect', '-f', '{{.State.Running}}', `instance-${inst.uuid}`)).toBe('false');
    await expect(h.call('pause_instance', { instance_uuid: inst.uuid })).rejects.toThrow(/cannot pause instance in vm_state stopped/);
    await h.call('start_instance', { instance_uuid: inst.uuid });
    expect((await info()).vm_state).toBe('active');
    await expect(pingPeer()).resolves.toContain('1 packets received');
  });

  test('reboot SOFT and HARD keep the network working', async () => {
    const pidBefore = await h.docker('inspect', '-f', '{{.State.Pid}}', `instance-${inst.uuid}`);
    await h.call('reboot_instance', { instance_uuid: inst.uuid, reboot_type: 'SOFT' });
    await expect(pingPeer()).resolves.toContain('1 packets received');
    await h.call('reboot_instance', { instance_uuid: inst.uuid, reboot_type: 'HARD' });
    expect(await h.docker('inspect', '-f', '{{.State.Pid}}', `instance-${inst.uuid}`)).not.toBe(pidBefore);
    await expect(pingPeer()).resolves.toContain('1 packets received');
  });

  test('pause / unpause change the real container state', async () => {
    await h.call('pause_instance', { instance_uuid: inst.uuid });
    expect(await h.docker('inspect', '-f', '{{.State.Paused}}', `instance-${inst.uuid}`)).toBe('true');
    expect((await info()).power_state).toBe('paused');
    await h.call('unpause_instance', { instance_uuid: inst.uuid });
    expect(await h.docker('inspect', '-f', '{{.State.Paused}}', `instance-${inst.uuid}`)).toBe('false');
  });

  test('console output and diagnostics come from the real container', async () => {
    const out = await h.call('get_console_output', { instance_uuid: inst.uuid, tail: 10 });
    expect(out).toContain('booted');
    const d = await h.call('get_diagnostics', { instance_uuid: inst.uuid });
    expect(d.cgroup.memory.limitBytes).toBe(64 * 1024 * 1024);
    expect(d.cgroup.pids.current).toBeGreaterThanOrEqual(1);
    expect(d.cgroup.cpu.usageNs).toBeGreaterThan(0);
    expect(d.nics[0].container_tx_bytes).toBeGreaterThan(0); // the pings above went out
  });

  test('every operation is in the actions log with its events', async () => {
    const actions = await h.t.db('instance_actions').where({ instance_uuid: inst.uuid }).orderBy('id');
    expect(actions.map((a: { action: string }) => a.action)).toEqual(['create', 'stop', 'start', 'reboot', 'reboot', 'pause', 'unpause']);
    expect(actions.every((a: { result: string }) => a.result === 'Success')).toBe(true);
    const ev = await h.t.db('instance_action_events').where({ action_id: actions[1].id }).select('event');
    expect(ev.map((e: { event: string }) => e.event)).toEqual(['compute_stop_instance', 'compute_unplug']);
  });

  test('terminate is idempotent and frees everything', async () => {
    expect((await h.call('terminate_instance', { instance_uuid: inst.uuid })).changed).toBe(true);
    expect((await h.call('terminate_instance', { instance_uuid: inst.uuid })).changed).toBe(false);
    expect(await h.docker('ps', '-aq', '--filter', `label=compute.instance-uuid=${inst.uuid}`)).toBe('');
    expect(await h.t.db('ip_allocations').where({ instance_uuid: inst.uuid })).toHaveLength(0);
    await expect(info()).rejects.toThrow(/could not be found/);
  });
});

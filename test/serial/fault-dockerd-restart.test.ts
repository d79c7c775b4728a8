/**
 * dockerd restarted (SIGTERM by its pid file, started again the way scripts/bootstrap starts it):
 * running instances come back by themselves (restart policy unless-stopped), in new network
 * namespaces, and the compute service re-plugs them (Docker `start` events; the event stream
 * is renewed after the daemon comes back and one reconcile pass covers starts it missed):
 * eth0 with the same IP and MAC, OVS port with the VLAN tag, and real traffic between them.
 * A stopped instance stays stopped. dockerd is always started again, even on failure.
 * SERIAL ONLY: a dockerd restart stops every container on the machine.
 * Network: ovs-vlan 3540, 198.19.85.0/24.
 */
import crypto from 'node:crypto';
import { instanceKey } from '../../drivers/network/names';
import { containersOf, createNetwork, dockerPing, faultHost, restartDockerd, run, startDockerd, TEST_IMAGE, waitFor, type FaultHost } from './fault-helpers';

jest.setTimeout(180000);

let fh: FaultHost;

beforeAll(async () => {
  await startDockerd();
  fh = await faultHost('flt-dockerd');
  await createNetwork(fh.t, 'dnet', 3540, 85);
  await fh.start();
});

afterAll(async () => {
  // dockerd first: every clean-up below needs it.
  if (!(await dockerPing())) await startDockerd();
  await fh?.close();
});

const spec = () => ({
  uuid: crypto.randomUUID(), name: 'd', project_id: 'fault', image: TEST_IMAGE,
  flavor: { vcpus: 1, memory_mb: 32, cpu_policy: 'shared', pids_limit: 64 }, networks: [{ network: 'dnet' }],
});

async function nicIn(pid: number): Promise<{ address?: string; mac?: string }> {
  const out = (await run('nsenter', ['-t', String(pid), '-n', 'ip', '-json', 'addr', 'show', 'dev', 'eth0'])).stdout;
  const l = (JSON.parse(out) as Array<{ address: string; addr_info: Array<{ family: string; local: string }> }>)[0];
  return { address: l?.addr_info.find((a) => a.family === 'inet')?.local, mac: l?.address };
}

test('dockerd restart: running instances come back re-plugged (same IP, MAC, VLAN), stopped ones stay stopped', async () => {
  const a = spec();
  const b = spec();
  const c = spec();
  const ra = await fh.call('build_and_run_instance', { instance: a }, 90);
  const rb = await fh.call('build_and_run_instance', { instance: b }, 90);
  await fh.call('build_and_run_instance', { instance: c }, 90);
  await fh.call('stop_instance', { instance_uuid: c.uuid }, 60);
  const ipA = ra.addresses[0].address as string;
  const ipB = rb.addresses[0].address as string;
  const before = new Map((await containersOf(fh.host)).map((x) => [x.uuid, x]));
  const nicBeforeA = await nicIn(before.get(a.uuid)!.pid);
  expect(nicBeforeA.address).toBe(ipA);
  await run('docker', ['exec', `instance-${a.uuid}`, 'ping', '-c', '1', '-W', '2', ipB]);

  const { downMs } = await restartDockerd();

  // Both running instances are started again by dockerd, with new PIDs...
  const after = await waitFor('containers running again', async () => new Map((await containersOf(fh.host)).map((x) => [x.uuid, x])),
    (m) => [a, b].every((i) => !!m.get(i.uuid)?.running && m.get(i.uuid)!.pid > 0), 60000, 300);
  expect(after.get(a.uuid)!.pid).not.toBe(before.get(a.uuid)!.pid);
  // ...and re-plugged by the service: same address and MAC inside the new netns.
  const t0 = Date.now();
  for (const [inst, ip] of [[a, ipA], [b, ipB]] as const) {
    const nic = await waitFor(`eth0 of ${inst.uuid} in its new netns`, () => nicIn(after.get(inst.uuid)!.pid), (n) => n.address === ip, 30000, 200);
    const port = `cvh${instanceKey(inst.uuid)}0`;
    // The host side is attached after the container side: wait for the port as well.
    const tag = await waitFor(`OVS port ${port} tagged`, () => run('ovs-vsctl', ['--timeout=10', 'get', 'Port', port, 'tag']).then((r) => r.stdout.trim(), () => ''),
      (t) => t === '3540', 15000, 100);
    expect(tag).toBe('3540');
  }
  const replugMs = Date.now() - t0;
  // Real traffic over the re-plugged wiring (OVS VLAN 3540).
  await waitFor('ping a -> b after the restart', () => run('docker', ['exec', `instance-${a.uuid}`, 'ping', '-c', '1', '-W', '2', ipB]).then(() => true), (ok) => ok, 20000, 500);
  // The MAC is the instance's own (derived from uuid + NIC index), not a new one.
  const nicA = await nicIn(after.get(a.uuid)!.pid);
  expect(nicA.mac).toBe(nicBeforeA.mac);

  // The stopped instance stayed stopped (unless-stopped honours an explicit stop).
  expect(after.get(c.uuid)?.running).toBe(false);
  const info = await fh.call('get_info', { instance_uuid: c.uuid }, 30);
  expect(info.vm_state).toBe('stopped');
  const infoA = await fh.call('get_info', { instance_uuid: a.uuid }, 30);
  expect(infoA).toMatchObject({ vm_state: 'active', power_state: 'running' });
  // eslint-disable-next-line no-console
  console.log(`fault-dockerd summary ${JSON.stringify({ dockerdDownMs: downMs, replugVisibleWithinMs: replugMs })}`);
});

test('a crashed instance process is restarted by dockerd and re-plugged from its Docker start event', async () => {
  const d = spec();
  const r = await fh.call('build_and_run_instance', { instance: d }, 90);
  const ip = r.addresses[0].address as string;
  const before = (await containersOf(fh.host)).find((x) => x.uuid === d.uuid)!;
  // The container's init dies (as on an OOM kill): restart policy -> new PID, new netns.
  process.kill(before.pid, 'SIGKILL');
  const after = await waitFor('container restarted by dockerd', async () => (await containersOf(fh.host)).find((x) => x.uuid === d.uuid),
    (x) => !!x?.running && x.pid > 0 && x.pid !== before.pid, 30000, 100);
  const t0 = Date.now();
  // No reconcile runs here (interval 3600 s, event stream never lost): only the start event can re-plug.
  await waitFor('eth0 re-plugged in the new netns', () => nicIn(after!.pid), (n) => n.address === ip, 20000, 100);
  // eslint-disable-next-line no-console
  console.log(`fault-dockerd crash re-plug after ${Date.now() - t0} ms`);
});


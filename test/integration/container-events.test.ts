import { instanceSpec, run, startHarness, type ComputeHarness } from '../helpers/compute-harness';
import { eventually } from '../helpers/service-process';
import { freePort } from '../helpers/tcp-proxy';

jest.setTimeout(120000);

function counter(text: string, host: string, event: string): number {
  const line = text.split('\n').find((l) => l.startsWith('compute_container_events_total{') && l.includes(`host="${host}"`) && l.includes(`event="${event}"`));
  return line ? Number(line.split(' ').pop()) : 0;
}

describe('Docker OOM and die events are counted on the compute /metrics and recorded as instance events', () => {
  let h: ComputeHarness;
  let port: number;
  beforeAll(async () => {
    port = await freePort();
    h = await startHarness('cev', { overrides: { metricsPort: port } });
  });
  afterAll(async () => h?.close());

  const metrics = async () => (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  const events = (uuid: string) => h.t.db('instance_action_events as e').join('instance_actions as a', 'a.id', 'e.action_id')
    .where({ 'a.instance_uuid': uuid, 'a.action': 'containerEvent' }).whereNotNull('e.finish_time').select('e.event', 'e.details');

  test('an OOM kill inside the instance and a crash of its init', async () => {
    const s = instanceSpec({ hostname: 'oom', flavor: { vcpus: 1, memory_mb: 16, cpu_policy: 'shared' } });
    await h.call('build_and_run_instance', { instance: s });
    const before = await metrics();
    // a process inside exceeds the 16 MiB limit and is OOM-killed by the kernel
    await expect(h.execIn(s.uuid, 'sh', '-c', 'head -c 100000000 /dev/zero | tail > /dev/null')).rejects.toBeTruthy();
    const oom = await eventually(() => events(s.uuid), (r) => r.some((e: { event: string }) => e.event === 'docker_oom'), 15000);
    expect(oom.map((e: { event: string }) => e.event)).toContain('docker_oom');
    expect(counter(await metrics(), h.host, 'oom')).toBeGreaterThan(counter(before, h.host, 'oom'));

    // the container's init dies (not a stop we asked for): counted and recorded with its exit code
    const pid = (await run('docker', ['inspect', '-f', '{{.State.Pid}}', `instance-${s.uuid}`])).stdout.trim();
    await run('kill', ['-9', pid]);
    const died = await eventually(() => events(s.uuid), (r) => r.some((e: { event: string; details: unknown }) => e.event === 'docker_die' && e.details !== null), 15000);
    expect(died.find((e: { event: string }) => e.event === 'docker_die').details).toMatchObject({ exitCode: 137 });
    expect(counter(await metrics(), h.host, 'die')).toBeGreaterThanOrEqual(1);

    // our own stop is counted but not recorded as an unexpected death
    await eventually(() => h.call('get_info', { instance_uuid: s.uuid }), () => true, 1000);
    const recorded = (await events(s.uuid)).length;
    await eventually(async () => (await run('docker', ['inspect', '-f', '{{.State.Running}}', `instance-${s.uuid}`])).stdout.trim(), (x) => x === 'true', 15000);
    await h.call('stop_instance', { instance_uuid: s.uuid });
    await new Promise((r) => setTimeout(r, 500));
    expect((await events(s.uuid)).length).toBe(recorded);
  });
});
